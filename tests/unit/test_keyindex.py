"""The compact index of key values seen in an input."""

from __future__ import annotations

from kustomer_activations.sync.keyindex import KeyIndex


def test_first_row_is_remembered_across_growth() -> None:
    index = KeyIndex(capacity=4)
    for row in range(5000):
        assert index.first_row(f"key-{row}", row) == row
    assert len(index) == 5000
    assert index.first_row("key-0", 9999) == 0
    assert index.first_row("key-4321", 9999) == 4321
    assert index.first_row("new", 7) == 7
    assert len(index) == 5001


def test_keys_differing_only_in_case_are_different() -> None:
    index = KeyIndex()
    assert index.first_row("ABC", 1) == 1
    assert index.first_row("abc", 2) == 2
    assert index.first_row("", 3) == 3
    assert index.first_row("", 4) == 3
