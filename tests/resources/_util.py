"""Helpers for the resource tests: JSON:API answers and the requests a router saw."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

BASE = "https://acme.api.kustomerapp.com"
#: A key value holding every character that could change the endpoint if not encoded.
NASTY = "a/b?c#d%e=f&g h"
#: ``NASTY`` percent-encoded as one path segment.
NASTY_PATH = "a%2Fb%3Fc%23d%25e%3Df%26g%20h"
#: ``NASTY`` as httpx encodes it in a query string.
NASTY_QUERY = "a%2Fb%3Fc%23d%25e%3Df%26g+h"


def customer(cid: str, *, company: str | None = None, **attributes: Any) -> dict[str, Any]:
    """A customer resource object as Kustomer returns it."""
    rel: dict[str, Any] = {"company": {"data": {"type": "company", "id": company}
                                       if company else None}}
    return {"type": "customer", "id": cid, "attributes": attributes, "relationships": rel}


def company(cid: str, **attributes: Any) -> dict[str, Any]:
    """A company resource object as Kustomer returns it."""
    return {"type": "company", "id": cid, "attributes": attributes}


def one(resource: dict[str, Any], status: int = 200) -> httpx.Response:
    """A single-object answer."""
    return httpx.Response(status, json={"data": resource})


def many(*resources: dict[str, Any]) -> httpx.Response:
    """A list answer (search, company lookups)."""
    return httpx.Response(200, json={"data": list(resources),
                                     "meta": {"page": 1, "totalPages": 1}})


def not_found() -> httpx.Response:
    return httpx.Response(404, json={"errors": [{"code": "not_found", "message": "no match"}]})


def duplicate(status: int = 409) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{
        "status": str(status), "code": "duplicate", "title": "duplicate detected",
        "detail": "externalId already belongs to another customer"}]})


def echo(cid: str, kind: str = "customer") -> Any:
    """A respx side effect answering a write with the body it got, as object ``cid``."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        status = 201 if request.method == "POST" else 200
        return httpx.Response(status, json={"data": {"type": kind, "id": cid,
                                                     "attributes": body}})

    return answer


def sent(router: respx.MockRouter) -> list[tuple[str, str, Any]]:
    """Every request the router saw: (method, raw path with query, JSON body or None)."""
    out = []
    for call in router.calls:
        req = call.request
        body = json.loads(req.content) if req.content else None
        out.append((req.method, req.url.raw_path.decode("ascii"), body))
    return out
