"""Contract check of outgoing requests against Kustomer's published OpenAPI subset.

``validate_request(method, path, body)`` returns a list of problems (empty =
OK). ``path`` may start with ``/v1`` and carry a query string; both are
stripped. The spec (tests/data/kustomer-openapi) is loaded once per process.

Exactly the known gaps listed in tests/data/kustomer-openapi/README.md are
allowed, each marked GAP below; nothing wider.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]

__all__ = ["validate_request"]

SPEC_PATH = Path(__file__).parent / "data" / "kustomer-openapi" / "core-resources.subset.json"

# GAP 1: the spec declares ``custom`` as ``{additionalProperties: false,
# maxProperties: 100}``, which forbids every custom attribute. Kustomer's guides:
# a free-form object of at most 100 keys whose names end in a type suffix.
CUSTOM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 100,
    "patternProperties": {r"^[A-Za-z][A-Za-z0-9_]*(Str|Txt|Num|At|Bool|Url|Id)$": {}},
    "additionalProperties": False,
}

# GAP 2: bulk items may carry ``_clientRef`` (<= 255 chars; unique within the
# request; on all items or none), from Kustomer's bulk-operations guide.
BULK_PATHS = {("POST", "/customers/bulk"), ("PUT", "/customers/bulk"),
              ("POST", "/companies/bulk"), ("PUT", "/companies/bulk")}
CLIENT_REF_SCHEMA: dict[str, Any] = {"type": "string", "maxLength": 255}

# GAP 3: documented in Kustomer's guides, absent from the spec; checked against
# KUSTOMER_API.md instead: GETs without a body.
EXTRA_OPERATIONS = {("GET", "/bulk/{id}"), ("GET", "/bulk/{id}/batches"),
                    ("GET", "/auth/tokens/current")}


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` → JSON Schema ``type: [t, "null"]`` (recursively)."""
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable(v) for k, v in schema.items() if k not in ("nullable", "example")}
    if "properties" in schema:
        out["properties"] = {k: _nullable(v) for k, v in schema["properties"].items()}
    if schema.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _patch_custom(schema: Any) -> Any:
    if isinstance(schema, dict):
        if "properties" in schema and "custom" in schema["properties"]:
            schema["properties"]["custom"] = copy.deepcopy(CUSTOM_SCHEMA)
        for v in schema.values():
            _patch_custom(v)
    elif isinstance(schema, list):
        for v in schema:
            _patch_custom(v)
    return schema


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p)
                                    for p in parts) + "$")


@functools.lru_cache(maxsize=1)
def _spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


@functools.lru_cache(maxsize=1)
def _templates() -> list[tuple[str, re.Pattern[str], int]]:
    templates = [*_spec()["paths"], *{t for _, t in EXTRA_OPERATIONS}]
    # Most literal characters first, so /customers/search beats /customers/{id}.
    ranked = [(t, _template_regex(t), len(re.sub(r"\{[^}]+\}", "", t))) for t in templates]
    return sorted(ranked, key=lambda x: -x[2])


@functools.cache
def _validator(template: str, method: str) -> jsonschema.Draft4Validator | None:
    op = _spec()["paths"][template][method.lower()]
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get(
        "schema")
    if schema is None:
        return None
    schema = _patch_custom(_nullable(schema))
    if (method, template) in BULK_PATHS:
        schema["items"].setdefault("properties", {})["_clientRef"] = CLIENT_REF_SCHEMA
    return jsonschema.Draft4Validator(schema)


def _match(path: str) -> list[str]:
    found = [t for t, rx, _ in _templates() if rx.match(path)]
    if not found:
        return []
    best = max(n for t, rx, n in _templates() if t in found)
    return [t for t, _, n in _templates() if t in found and n == best]


def validate_request(method: str, path: str, body: Any) -> list[str]:
    """Problems of one request (method, path after the host, JSON body or None)."""
    method = method.upper()
    path = path.split("?", 1)[0]
    if path.startswith("/v1/"):
        path = path[3:]
    templates = _match(path)
    if not templates:
        return [f"{path}: no such path in the spec"]
    spec_paths = _spec()["paths"]
    problems: list[str] = []
    for template in templates:
        if (method, template) in EXTRA_OPERATIONS:
            return [] if body is None else [f"{method} {template} takes no body"]
        if template in spec_paths and method.lower() in spec_paths[template]:
            validator = _validator(template, method)
            if validator is None:
                return [] if body is None else [f"{method} {template} takes no body"]
            if body is None:
                return [f"{method} {template} needs a JSON body"]
            for err in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
                pointer = "/" + "/".join(str(p) for p in err.path)
                problems.append(f"{method} {template} {pointer}: {err.message}")
            if (method, template) in BULK_PATHS and isinstance(body, list):
                refs = [i.get("_clientRef") for i in body if isinstance(i, dict)
                        and "_clientRef" in i]
                if refs and len(refs) != len(body):
                    problems.append("_clientRef must be on all items or none")
                if len(set(map(str, refs))) != len(refs):
                    problems.append("_clientRef values must be unique")
            return problems
    return [f"{method} is not an operation of {' / '.join(templates)}"]
