"""ErrorDetail reads ``source.parameter`` and ``source.parameters``, and integer statuses."""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_activations.errors import BadRequestError, ErrorDetail

# 400 body of GET /v1/conversations/{id}: Kustomer "Core Resources" OpenAPI,
# paths./conversations/{id}.get.responses.400 example (LarisLab/kustomer-client,
# openapi.json @ 1d997b720e12093667f9b070e04153de8f833584); the only error example
# in the spec, with its placeholder values. 401 and 404 use the same body.
OPENAPI_400: dict[str, Any] = {
    "errors": [
        {"status": "<integer>", "code": "<string>", "title": "<string>",
         "source": {"parameters": "<string>"}},
        {"status": "<integer>", "code": "<string>", "title": "<string>",
         "source": {"parameters": "<string>"}},
    ]
}


def test_openapi_error_example_is_read() -> None:
    details = [ErrorDetail.from_api(e) for e in OPENAPI_400["errors"]]
    assert [d.parameter for d in details] == ["<string>", "<string>"]
    assert [d.status for d in details] == ["<integer>", "<integer>"]
    assert "(at <string>)" in details[0].text


@pytest.mark.parametrize(
    ("source", "parameter"),
    [
        ({"parameters": "email"}, "email"),
        ({"parameter": "email"}, "email"),
        ({"parameter": "email", "parameters": "other"}, "email"),
        ({"parameters": ["email", "page"]}, "email, page"),
        ({"parameters": []}, None),
        ({"parameters": None}, None),
        ({}, None),
        ("not an object", None),
    ],
)
def test_both_spellings_of_the_parameter(source: Any, parameter: str | None) -> None:
    detail = ErrorDetail.from_api({"status": 400, "title": "Bad", "source": source})
    assert detail.parameter == parameter
    assert detail.status == "400"


def test_an_integer_status_and_parameters_reach_the_raised_error() -> None:
    body = {"errors": [{"status": 400, "code": "invalid", "title": "Invalid value",
                        "source": {"parameters": "pageSize"}}]}
    error = BadRequestError(status=400, method="GET", path="/v1/customers",
                            errors=[ErrorDetail.from_api(e) for e in body["errors"]], body=body)
    assert error.errors[0].status == "400"
    assert error.errors[0].parameter == "pageSize"
    assert "(at pageSize)" in str(error)
