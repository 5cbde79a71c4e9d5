"""Fixtures shared by the pure unit tests: examples and schemas from the OpenAPI subset."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

SPEC = Path(__file__).resolve().parents[1] / "data" / "kustomer-openapi" / "core-resources.subset.json"


@lru_cache(maxsize=1)
def _openapi() -> dict[str, Any]:
    with SPEC.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _example(path: str) -> dict[str, Any]:
    ex: dict[str, Any] = _openapi()["paths"][path]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    return ex


@pytest.fixture
def customer_example() -> dict[str, Any]:
    """The 200 example of ``GET /customers/{id}``."""
    return _example("/customers/{id}")


@pytest.fixture
def company_example() -> dict[str, Any]:
    """The 200 example of ``GET /companies/{id}``."""
    return _example("/companies/{id}")


@pytest.fixture
def metadata_example() -> dict[str, Any]:
    """The 200 example of ``GET /metadata/{resource}``."""
    return _example("/metadata/{resource}")


@pytest.fixture
def request_schema() -> Callable[[str, str], dict[str, Any]]:
    """Look up the JSON request body schema of one operation."""

    def get(path: str, method: str) -> dict[str, Any]:
        schema: dict[str, Any] = _openapi()["paths"][path][method]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        return schema

    return get
