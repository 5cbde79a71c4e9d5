"""The per-client caches stay bounded however many rows a client writes."""

from __future__ import annotations

import pytest

from kustomer_activations.models import SyncKey
from kustomer_activations.upsert.flows import BoundedMap, Caches


def test_a_bounded_map_keeps_at_most_its_limit_and_the_recent_half() -> None:
    seen: BoundedMap[int, str] = BoundedMap(10)
    for n in range(100):
        seen[n] = str(n)
        assert len(seen) <= 10
        assert all(seen.get(m) == str(m) for m in range(max(0, n - 4), n + 1))
    assert 0 not in seen and seen.get(0) is None
    assert sorted(seen) == sorted(k for k in range(100) if k in seen)


def test_a_bounded_map_keeps_an_entry_that_keeps_being_used() -> None:
    seen: BoundedMap[str, int] = BoundedMap(4)
    seen["hot"] = 1
    for n in range(50):
        seen[f"cold-{n}"] = n
        assert seen["hot"] == 1  # each hit moves it to the young generation
    del seen["hot"]
    assert "hot" not in seen
    with pytest.raises(KeyError):
        del seen["hot"]
    with pytest.raises(KeyError):
        seen["never"]


def test_a_bounded_map_replaces_a_value_without_duplicating_the_key() -> None:
    seen: BoundedMap[str, int] = BoundedMap(4)
    seen["a"], seen["b"] = 1, 2  # "a" and "b" move to the old generation
    seen["a"] = 3
    assert (seen["a"], len(seen), sorted(seen)) == (3, 2, ["a", "b"])


class SmallCaches(Caches):
    RECENT_MAX = 8
    COMPANY_IDS_MAX = 6


def test_recent_writes_are_remembered_for_a_while_and_bounded() -> None:
    caches = SmallCaches()
    key = SyncKey.external_id()
    caches.remember("customer", key, "e-1", "id-1", now=100.0)
    assert caches.recent_id("customer", key, "e-1", now=100.0 + Caches.RECENT_SECONDS) == "id-1"
    assert caches.recent_id("customer", key, "e-1", now=101.0 + Caches.RECENT_SECONDS) is None
    assert caches.recent_id("company", key, "e-1", now=100.0) is None
    assert caches.recent_id("customer", key, "e-2", now=100.0) is None
    for n in range(100):
        caches.remember("customer", key, f"k-{n}", f"id-{n}", now=200.0)
        assert len(caches._recent) <= SmallCaches.RECENT_MAX
    assert caches.recent_id("customer", key, "k-99", now=200.0) == "id-99"
    assert caches.recent_id("customer", key, "k-0", now=200.0) is None


def test_company_ids_are_bounded() -> None:
    caches = SmallCaches()
    for n in range(40):
        caches.company_ids[f"co-{n}"] = f"id-{n}"
    assert len(caches.company_ids) <= SmallCaches.COMPANY_IDS_MAX
    assert caches.company_ids.get("co-39") == "id-39" and "co-0" not in caches.company_ids


def test_get_moves_a_hit_to_the_young_generation_and_set_many_bounds_too() -> None:
    seen: BoundedMap[str, int] = BoundedMap(4)
    assert seen.empty and seen.get("x", -1) == -1
    seen["a"], seen["b"] = 1, 2           # both now in the old generation
    assert seen.get("a") == 1              # a hit there moves "a" back to the young one
    seen.set_many([("c", 3), ("d", 4)])    # "b" is dropped with the old generation
    assert (seen.get("b"), seen.get("a"), seen.get("d")) == (None, 1, 4)
    seen.set_many((f"k{n}", n) for n in range(50))
    assert len(seen) <= 4 and seen.get("k49") == 49 and not seen.empty


def test_remember_many_is_remember_for_each_row() -> None:
    one, many = SmallCaches(), SmallCaches()
    key = SyncKey.external_id()
    written = [(f"e-{n}", f"id-{n}") for n in range(6)]
    for value, object_id in written:
        one.remember("customer", key, value, object_id, now=50.0)
    many.remember_many("customer", key, written, now=50.0)
    for value, object_id in written[-3:]:
        assert many.recent_id("customer", key, value, now=60.0) == object_id
        assert one.recent_id("customer", key, value, now=60.0) == object_id
    assert sorted(one._recent) == sorted(many._recent)
