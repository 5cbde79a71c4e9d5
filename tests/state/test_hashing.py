"""Payload hashes are stable across dict order and float noise; fingerprints track structure."""

from __future__ import annotations

import decimal
import math
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kustomer_activations.mapping import Field, FieldMapping, MappedRecord
from kustomer_activations.state import canonical_json, mapped_hash, mapping_fingerprint, payload_hash

# decimal numbers with at most 15 significant digits, as a person or a database writes them
decimals = st.builds(lambda m, e: float(f"{m}e{e}"),
                     st.integers(-(10**15) + 1, 10**15 - 1), st.integers(-30, 30))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), decimals, st.text(max_size=8))
payloads = st.recursive(
    st.dictionaries(st.text(max_size=6), scalars, max_size=6),
    lambda inner: st.dictionaries(st.text(max_size=6), st.one_of(inner, st.lists(inner, max_size=3)),
                                  max_size=4),
    max_leaves=12,
)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def _noisy(value: Any, rng: random.Random) -> Any:
    # one ulp up or down: what binary arithmetic and text round trips leave behind
    # (relative noise; a zero stays zero: 5e-324 is a different number, not a spelling of 0)
    if isinstance(value, float) and value != 0:
        return math.nextafter(value, rng.choice([math.inf, -math.inf]))
    if isinstance(value, dict):
        return {k: _noisy(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_noisy(v, rng) for v in value]
    return value


@settings(max_examples=60)
@given(payloads, st.randoms(use_true_random=False))
def test_dict_order_never_changes_the_hash(payload: dict[str, Any], rng: random.Random) -> None:
    assert payload_hash(_shuffled(payload, rng)) == payload_hash(payload)


@settings(max_examples=60)
@given(payloads, st.randoms(use_true_random=False))
def test_float_noise_never_changes_the_hash(payload: dict[str, Any], rng: random.Random) -> None:
    assert payload_hash(_noisy(payload, rng)) == payload_hash(payload)


@given(decimals, decimals)
def test_distinct_decimals_hash_differently(a: float, b: float) -> None:
    assert (payload_hash({"v": a}) == payload_hash({"v": b})) == (a == b)


def test_integral_numbers_hash_alike_in_every_spelling() -> None:
    same = [1, 1.0, 1.0000000000000002, 0.9999999999999999, decimal.Decimal("1.000")]
    assert len({payload_hash({"n": v}) for v in same}) == 1
    assert payload_hash({"n": 0.1 + 0.2}) == payload_hash({"n": 0.3})
    assert payload_hash({"n": -0.0}) == payload_hash({"n": 0})
    # a real difference in the 12th digit is data, not noise
    assert payload_hash({"n": 1.00000000001}) != payload_hash({"n": 1})
    # booleans are not numbers, and text is not a number
    assert payload_hash({"n": True}) != payload_hash({"n": 1})
    assert payload_hash({"n": "1"}) != payload_hash({"n": 1})


def test_canonical_json_is_compact_sorted_and_utf8() -> None:
    assert canonical_json({"b": [2.50, 1.0], "a": {"é": None}}) == '{"a":{"é":null},"b":[2.5,1]}'
    assert canonical_json({"x": math.nan}) != canonical_json({"x": "nan"})
    assert len(payload_hash({})) == 32


def test_list_order_is_data() -> None:
    assert payload_hash({"tags": ["a", "b"]}) != payload_hash({"tags": ["b", "a"]})


def test_unknown_types_are_refused() -> None:
    try:
        payload_hash({"x": object()})
    except TypeError as exc:
        assert "object" in str(exc)
    else:
        raise AssertionError("an object without a stable text form was hashed")


def test_mapped_hash_covers_what_the_payload_does_not_show() -> None:
    plain = MappedRecord(payload={"name": "Ann"})
    assert mapped_hash(plain) == payload_hash({"name": "Ann"})
    linked = MappedRecord(payload={"name": "Ann"}, company_external_id="acme")
    guarded = MappedRecord(payload={"name": "Ann"}, set_if_empty=frozenset({"name"}))
    assert len({mapped_hash(plain), mapped_hash(linked), mapped_hash(guarded)}) == 3


def test_mapping_fingerprint_follows_structure_not_order() -> None:
    a = FieldMapping({"externalId": "id", "name": "full_name"}, object_type="customer")
    b = FieldMapping({"name": "full_name", "externalId": "id"}, object_type="customer")
    assert mapping_fingerprint(a) == mapping_fingerprint(b)
    other_column = FieldMapping({"externalId": "id", "name": "display"}, object_type="customer")
    guarded = FieldMapping({"externalId": "id", "name": Field("full_name", set_if_empty=True)},
                           object_type="customer")
    fingerprints = {mapping_fingerprint(x) for x in (a, other_column, guarded)}
    fingerprints.add(mapping_fingerprint(a, extra={"arrays": "replace"}))
    fingerprints.add(mapping_fingerprint(FieldMapping.identity("customer")))
    assert len(fingerprints) == 5
    assert mapping_fingerprint({"name": "n"}) == mapping_fingerprint({"name": "n"})
