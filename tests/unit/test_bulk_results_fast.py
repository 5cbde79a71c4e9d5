"""The documented ``/batches`` shape is read without a walk, and reads as the walk reads it.

``_results`` takes a fast path for the documented answer (a list of batches,
each with a ``results`` list); any other answer goes to the general walk.
These tests hold the fast path to the walk's answer on every body, and check
that it is taken for the documented shape (or it would save nothing).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kustomer_activations.upsert.batch import _documented_results, _results, _walk_results

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "x1"]))
KEYS = st.sampled_from(["_clientRef", "objectId", "status", "error", "index", "results",
                        "attributes", "successCount", "objectIds", "data"])
JSON: Any = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)
ITEM = st.fixed_dictionaries(
    {"status": st.sampled_from(["created", "updated", "error"])},
    optional={"_clientRef": st.sampled_from(["r1", "r2"]), "objectId": st.just("o1"),
              "error": JSON, "index": st.integers(0, 5) | st.booleans(), "extra": JSON},
)
BATCH = st.fixed_dictionaries(
    {"results": st.lists(ITEM | JSON, max_size=5)},
    optional={"successCount": st.integers(0, 5), "objectIds": st.lists(SCALARS, max_size=3),
              "status": SCALARS, "objectId": SCALARS, "nested": JSON},
)
BODIES = st.lists(BATCH, max_size=4) | JSON


@settings(max_examples=600)
@given(BODIES)
def test_fast_path_answers_as_the_walk_does(body: Any) -> None:
    fast = _documented_results(body)
    if fast is not None:
        assert fast == _walk_results(body)
    assert _results(body) == _walk_results(body)


def test_the_documented_shape_takes_the_fast_path() -> None:
    body = [{"successCount": 1, "failureCount": 1, "objectIds": ["o1"], "results": [
        {"_clientRef": "r0", "objectId": "o1", "status": "created"},
        {"_clientRef": "r1", "status": "error", "error": {"title": "duplicate"}},
    ]}]
    fast = _documented_results(body)
    assert fast is not None and [r["_clientRef"] for r in fast] == ["r0", "r1"]


def test_other_shapes_go_to_the_walk() -> None:
    enveloped = {"data": [{"results": [{"objectId": "o1", "status": "created"}]}]}
    assert _documented_results(enveloped) is None
    assert [r["objectId"] for r in _results(enveloped)] == ["o1"]
    # An item the walk would look into (no item key): not the fast path's to answer.
    nested = [{"results": [{"status": "done", "inner": {"objectId": "o2", "status": "created"}}]}]
    assert _documented_results(nested) is None
    assert [r["objectId"] for r in _results(nested)] == ["o2"]
