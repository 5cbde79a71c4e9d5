"""Multi-valued custom ``Id`` attributes (``"multi": true`` in the metadata): lists of ids."""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_activations import FieldMapping
from kustomer_activations.errors import CustomFieldError, InvalidRecordError
from kustomer_activations.models import CustomSchema, coerce_custom, same_custom_value
from kustomer_activations.models.validation import validate_customer_payload

# GET /v1/metadata/customer, trimmed: Kustomer "Core Resources" OpenAPI,
# paths./metadata/{resource}.get.responses.200 example (LarisLab/kustomer-client,
# openapi.json @ 1d997b720e12093667f9b070e04153de8f833584).
METADATA = {
    "data": {
        "type": "metadata",
        "id": "customer",
        "attributes": {
            "properties": {
                "ordersId": {
                    "modifiedBy": "57fd2d309d0ef811009cfdd6",
                    "modifiedAt": "2016-11-08T12:53:21.532Z",
                    "updatedAt": "2016-11-08T12:53:21.532Z",
                    "type": "string",
                    "target": "kobject.order",
                    "multi": True,
                    "displayName": "Orders",
                },
            },
        },
    },
}


def test_metadata_keeps_the_multi_flag() -> None:
    schema = CustomSchema.from_api(METADATA)
    assert "ordersId" in schema
    assert schema.attributes["ordersId"].raw["multi"] is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5f1a", "5f1a"),
        (["5f1a", "5f1b"], ["5f1a", "5f1b"]),
        (("5f1a", "5f1b"), ["5f1a", "5f1b"]),
        ([], []),
    ],
)
def test_id_takes_one_id_or_a_list_of_ids(value: Any, expected: Any) -> None:
    out = coerce_custom("ordersId", value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (["a", ["b"]], "custom.ordersId[1]"),
        ([["a", "b"]], "custom.ordersId[0]"),
        (["a", {"id": "b"}], "custom.ordersId[1]"),
        (["a", 5], "custom.ordersId[1]"),
        (["a", None], "custom.ordersId[1]"),
        (["a", ""], "custom.ordersId[1]"),
        ({"a"}, "custom.ordersId"),
        ({"id": "a"}, "custom.ordersId"),
        (5, "custom.ordersId"),
        (b"a", "custom.ordersId"),
    ],
)
def test_id_refuses_nested_junk_with_its_index(value: Any, field: str) -> None:
    with pytest.raises(CustomFieldError) as info:
        coerce_custom("ordersId", value)
    assert info.value.field == field


def test_id_lists_through_validation_and_mappings() -> None:
    body = validate_customer_payload({"custom": {"ordersId": ("o1", "o2")}})
    assert body == {"custom": {"ordersId": ["o1", "o2"]}}
    mapping = FieldMapping({"externalId": "id", "custom.ordersId": "orders"},
                           object_type="customer")
    assert mapping.apply({"id": "u", "orders": ["o1", "o2"]}).payload["custom"] == {
        "ordersId": ["o1", "o2"]}
    with pytest.raises(InvalidRecordError) as info:
        mapping.apply({"id": "u", "orders": ["o1", ["o2"]]})
    assert info.value.field == "custom.ordersId[1]"


@pytest.mark.parametrize(
    ("current", "new", "same"),
    [
        (["a", "b"], ["a", "b"], True),
        (("a", "b"), ["a", "b"], True),
        (["a", "b"], ("a", "b"), True),
        (["a", "b"], ["b", "a"], False),  # a reorder is written
        (["a"], ["a", "b"], False),
        (["a", "b"], ["a"], False),
        ("a", ["a"], True),
        (["a"], "a", True),
        ("a", "a", True),
        ("a", "b", False),
        (None, None, True),
        (None, [], True),
        ([], None, True),
        (None, ["a"], False),
        (["a"], None, False),
        ([1], ["1"], False),
        ([["a"]], [["a"]], False),  # junk read back never counts as the same
        ({"a": 1}, ["a"], False),
    ],
)
def test_same_custom_value_for_id_lists(current: Any, new: Any, same: bool) -> None:
    assert same_custom_value("ordersId", current, new) is same

