"""Every rule and limit of the emulator, through every way a client can reach it.

Each scenario is written once, as a plain function of a :class:`Channel`, and
runs over six channels:

- ``sync-transport``: ``httpx.Client`` + ``emu.transport``;
- ``asyncio-transport`` / ``trio-transport``: ``httpx.AsyncClient`` +
  ``emu.transport`` in an asyncio / trio event loop;
- ``sync-http``: ``httpx.Client`` to ``emu.serve()`` on 127.0.0.1;
- ``asyncio-http`` / ``trio-http``: ``httpx.AsyncClient`` to ``emu.serve()``.

The async channels keep the scenarios sync-looking: an anyio blocking portal
runs an event loop (asyncio or trio) in a helper thread, and every request is
``portal.call(async_client.request, ...)``, so the request really goes through
``httpx.AsyncClient`` on that backend. Time moves with a ``VirtualClock``
(the HTTP server reads the same ``emu.clock``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from kustomer_activations.testing import (
    DEFAULT_ROLES,
    Fault,
    KustomerEmulator,
    TokenSpec,
    VirtualClock,
)

CHANNELS = ["sync-transport", "asyncio-transport", "trio-transport",
            "sync-http", "asyncio-http", "trio-http"]
_KEY = "test-key"
_NO_KEY = object()


@attrs.frozen
class Resp:
    """What a client saw: status, headers (case-insensitive), parsed JSON body."""

    status: int
    headers: httpx.Headers
    body: Any

    def error(self) -> dict[str, Any]:
        """The first error object of an error body."""
        err: dict[str, Any] = self.body["errors"][0]
        return err


class Channel:
    """One way of talking to one emulator; ``call`` is sync whatever the client."""

    def __init__(self, name: str, emu: KustomerEmulator, stack: contextlib.ExitStack) -> None:
        self.name, self.emu = name, emu
        backend, _, via = name.partition("-")
        self.http = via == "http"
        base_url = stack.enter_context(emu.serve()).url if self.http else emu.base_url
        transport = None if self.http else emu.transport
        self._portal: BlockingPortal | None = None
        if backend == "sync":
            self._sync = stack.enter_context(httpx.Client(base_url=base_url,
                                                          transport=transport))
        else:
            portal = stack.enter_context(start_blocking_portal(backend=backend))

            async def make() -> httpx.AsyncClient:
                return httpx.AsyncClient(base_url=base_url, transport=transport)

            self._async = portal.call(make)
            stack.callback(portal.call, self._async.aclose)
            self._portal = portal

    def call(self, method: str, path: str, *, json: Any = None,
             params: dict[str, Any] | None = None, key: object = _KEY,
             timeout: float | None = None) -> Resp:
        """Send one request; transport errors propagate as httpx raises them."""
        headers = {} if key is _NO_KEY else {"Authorization": f"Bearer {key}"}
        kwargs: dict[str, Any] = {"json": json, "params": params, "headers": headers}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if self._portal is None:
            r = self._sync.request(method, path, **kwargs)
        else:
            r = self._portal.call(functools.partial(self._async.request, method, path,
                                                    **kwargs))
        return Resp(r.status_code, r.headers, r.json() if r.content else None)

    def transport_error(self, kind: str) -> type[httpx.TransportError]:
        """The httpx exception a client of this channel sees for an injected fault."""
        if kind == "timeout":
            # Transport: raised directly. HTTP: the server holds the connection
            # open without answering until the client gives up, so a client
            # with a (short) read timeout sees a genuine httpx.ReadTimeout.
            return httpx.ReadTimeout
        if kind == "connection_reset":
            # Transport: httpx.ConnectError. HTTP: the server resets the TCP
            # connection (RST) after reading the request; httpx reports the
            # reset while reading the response as httpx.ReadError.
            return httpx.ReadError if self.http else httpx.ConnectError
        # lost_response: the server closes the socket without an answer; both
        # channels raise RemoteProtocolError ("Server disconnected ...").
        return httpx.RemoteProtocolError


Connect = Callable[..., Channel]


@pytest.fixture(params=CHANNELS)
def connect(request: pytest.FixtureRequest) -> Iterator[Connect]:
    """``connect(**emulator_kwargs) -> Channel`` on a fresh VirtualClock emulator."""
    with contextlib.ExitStack() as stack:
        def make(**kwargs: Any) -> Channel:
            kwargs.setdefault("clock", VirtualClock())
            return Channel(str(request.param), KustomerEmulator(**kwargs), stack)
        yield make


def _create(ch: Channel, path: str = "/v1/customers", **body: Any) -> Resp:
    return ch.call("POST", path, json=body)


def _ok(r: Resp, status: int = 200) -> Any:
    """The ``data`` of a successful answer (an object or a list)."""
    assert r.status == status, r.body
    return r.body["data"]


def _invalid(r: Resp, pointer: str | None = None) -> None:
    assert r.status == 400, r.body
    err = r.error()
    assert err["code"] == "invalid" and err["status"] == "400"
    if pointer is not None:
        assert err["source"]["pointer"] == pointer, err


# -- customers and companies ----------------------------------------------------------
def test_lookup_by_external_id_and_email(connect: Connect) -> None:
    ch = connect()
    key = "a/b?c#d%e=f"
    made = _ok(_create(ch, name="Ada", externalId=key,
                       emails=[{"email": "ada@x.com"}, {"email": "Second@X.com"}]), 201)
    assert _ok(ch.call("GET", f"/v1/customers/{made['id']}"))["attributes"]["externalId"] == key
    assert _ok(ch.call("GET", "/v1/customers/externalId=" + quote(key, safe="")))["id"] \
        == made["id"]
    assert _ok(ch.call("GET", "/v1/customers/email=second%40x.COM"))["id"] == made["id"]
    assert _ok(ch.call("GET", "/v1/customers/email=ADA@x.com"))["id"] == made["id"]
    r = ch.call("GET", "/v1/customers/externalId=" + quote("a/b", safe=""))
    assert r.status == 404 and r.error()["code"] == "not_found"
    assert ch.call("GET", "/v1/customers/email=nobody@x.com").status == 404


def test_uniqueness_conflicts(connect: Connect) -> None:
    ch = connect()
    _ok(_create(ch, externalId="u-1", emails=[{"email": "u@x.com"}],
                phones=[{"phone": "+15550001"}]), 201)
    for body in ({"externalId": "u-1"}, {"emails": [{"email": "U@X.COM"}]},
                 {"phones": [{"phone": "+15550001"}]}):
        r = ch.call("POST", "/v1/customers", json=body)
        assert r.status == 409, body
        assert r.error()["code"] == "duplicate" and r.error()["title"] == "duplicate detected"
    assert len(ch.emu.customers) == 1


def test_name_lengths(connect: Connect) -> None:
    ch = connect()
    _invalid(_create(ch, "/v1/companies", name="ab"), "/name")
    _invalid(_create(ch, "/v1/companies", name="x" * 256), "/name")
    _ok(_create(ch, "/v1/companies", name="abc"), 201)
    _ok(_create(ch, "/v1/companies", name="y" * 255), 201)
    _invalid(_create(ch, name="n" * 257), "/name")
    _ok(_create(ch, name="n" * 256), 201)
    assert (len(ch.emu.companies), len(ch.emu.customers)) == (2, 1)


def test_unknown_top_level_field(connect: Connect) -> None:
    ch = connect()
    _invalid(_create(ch, name="x", favouriteColour="blue"))
    assert len(ch.emu.customers) == 0


def test_custom_attribute_suffix_types(connect: Connect) -> None:
    ch = connect()
    made = _ok(_create(ch, custom={"scoreNum": 3.5, "renewAt": "2026-01-02T03:04:05Z"}), 201)
    assert made["attributes"]["custom"]["scoreNum"] == 3.5
    _invalid(_create(ch, custom={"scoreNum": "abc"}))
    _invalid(_create(ch, custom={"scoreXyz": 1}))
    _invalid(_create(ch, custom={"renewAt": "next tuesday"}))
    assert len(ch.emu.customers) == 1


def test_company_unlink_trap(connect: Connect) -> None:
    ch = connect()
    co = _ok(_create(ch, "/v1/companies", name="Acme"), 201)["id"]
    cust = _ok(_create(ch, name="Ada", company=co), 201)
    assert cust["relationships"]["company"]["data"] == {"type": "company", "id": co}
    kept = _ok(ch.call("PUT", f"/v1/customers/{cust['id']}", json={"name": "A", "company": co}))
    assert kept["relationships"]["company"]["data"]["id"] == co
    gone = _ok(ch.call("PUT", f"/v1/customers/{cust['id']}", json={"name": "B"}))
    assert gone["relationships"]["company"]["data"] is None


def test_put_replace_false_merges_true_replaces(connect: Connect) -> None:
    ch = connect()
    ident = _ok(_create(ch, name="Ada", externalId="r-1", tags=["a"]), 201)["id"]
    merged = _ok(ch.call("PUT", f"/v1/customers/{ident}", params={"replace": "false"},
                         json={"tags": ["b"]}))["attributes"]
    assert (merged["name"], merged["externalId"], merged["tags"]) == ("Ada", "r-1", ["b"])
    replaced = _ok(ch.call("PUT", f"/v1/customers/{ident}", params={"replace": "true"},
                           json={"name": "New"}))["attributes"]
    assert replaced["name"] == "New" and replaced["externalId"] is None
    assert replaced["tags"] == []
    # the external id is free again
    _ok(_create(ch, externalId="r-1"), 201)


def test_company_external_id_list_and_filter_quirk(connect: Connect) -> None:
    ch = connect()
    a = ch.emu.seed_company({"name": "Dup One", "externalId": "dup"})
    b = ch.emu.seed_company({"name": "Dup Two", "externalId": "dup"})
    ch.emu.seed_company({"name": "Other", "externalId": "other"})
    r = ch.call("GET", "/v1/companies", params={"externalId": "dup"})
    assert [d["id"] for d in _ok(r)] == [a, b]
    assert _ok(ch.call("GET", "/v1/companies", params={"externalId": "none"})) == []
    both = ch.call("GET", "/v1/companies", params={"externalId": "dup", "filter": "zzz"})
    assert len(_ok(both)) == 3  # externalId + filter: Kustomer ignores both


# -- search ---------------------------------------------------------------------------
def _search(ch: Channel, body: dict[str, Any], **params: Any) -> Resp:
    return ch.call("POST", "/v1/customers/search", json=body, params=params or None)


def _ids(r: Resp) -> list[str]:
    return [d["id"] for d in _ok(r)]


def test_search_operators(connect: Connect) -> None:
    ch = connect()
    p = [ch.emu.seed_customer({"name": f"Person {i}", "externalId": f"p{i}",
                               "custom": {"scoreNum": i, **({"vipBool": True} if i == 0 else {})}})
         for i in range(4)]
    assert _ids(_search(ch, {"and": [{"customer_externalId": {"equals": "p2"}}]})) == [p[2]]
    assert _ids(_search(ch, {"and": [{"customer_externalId": {"in": ["p1", "p3", "zz"]}}]})) \
        == [p[1], p[3]]
    assert _ids(_search(ch, {"and": [{"customer_name": {"contains": "son 1"}}]})) == [p[1]]
    assert _ids(_search(ch, {"and": [{"customer_custom_vipBool": {"not_set": True}}]})) == p[1:]
    assert _ids(_search(ch, {"and": [{"customer_custom_scoreNum": {"gte": 1, "lt": 3}}]})) \
        == p[1:3]
    r = _search(ch, {"and": [{"customer_externalId": {"equals": "p0"}}]})
    assert r.body["meta"]["total"] == 1


def test_search_paging_caps(connect: Connect) -> None:
    ch = connect()
    assert _search(ch, {}, pageSize=500).status == 200
    for params in ({"pageSize": 501}, {"page": 101}):
        r = _search(ch, {}, **params)
        assert r.status == 400 and r.error()["code"] == "invalid_parameter", params
        assert r.error()["meta"]["parameter"] == next(iter(params))
    assert _search(ch, {}, page=100).status == 200


def test_search_lag(connect: Connect) -> None:
    ch = connect(search_lag=5.0)
    ident = _ok(_create(ch, externalId="late"), 201)["id"]
    query = {"and": [{"customer_externalId": {"equals": "late"}}]}
    assert _ids(_search(ch, query)) == []
    # a direct read sees it at once; only the index lags
    assert _ok(ch.call("GET", "/v1/customers/externalId=late"))["id"] == ident
    ch.emu.clock.advance(4.9)
    assert _ids(_search(ch, query)) == []
    ch.emu.clock.advance(0.1)
    assert _ids(_search(ch, query)) == [ident]


# -- bulk -----------------------------------------------------------------------------
def test_bulk_rejects_more_than_100_items(connect: Connect) -> None:
    ch = connect()
    r = ch.call("POST", "/v1/customers/bulk", json=[{"name": f"n{i}"} for i in range(101)])
    _invalid(r, "/")
    assert "100" in r.error()["detail"]
    assert _ok(ch.call("POST", "/v1/customers/bulk", json=[{"name": "x"}] * 100), 201)


def test_bulk_one_invalid_item_rejects_all(connect: Connect) -> None:
    ch = connect()
    r = ch.call("POST", "/v1/customers/bulk",
                json=[{"name": "ok", "externalId": "b-1"}, {"name": "bad", "bogus": 1}])
    _invalid(r)
    assert any(s["source"]["pointer"].startswith("/1")
               for s in r.error()["meta"]["subErrors"])
    ch.emu.clock.advance(60)
    ch.emu.advance_jobs()
    assert len(ch.emu.customers) == 0


def test_bulk_client_ref_all_or_none(connect: Connect) -> None:
    ch = connect()
    r = ch.call("POST", "/v1/customers/bulk",
                json=[{"name": "a", "_clientRef": "r1"}, {"name": "b"}])
    _invalid(r)
    assert any("all items or on none" in s["detail"] for s in r.error()["meta"]["subErrors"])


def test_bulk_lifecycle_and_outcomes(connect: Connect) -> None:
    ch = connect(bulk_delay=1.0, bulk_item_delay=0.5)
    ch.emu.seed_customer({"externalId": "taken"})
    job = _ok(ch.call("POST", "/v1/customers/bulk", json=[
        {"name": "New", "externalId": "n-1", "_clientRef": "r1"},
        {"name": "Dup", "externalId": "taken", "_clientRef": "r2"}]), 201)
    assert job["type"] == "bulk" and job["attributes"]["status"] == "queued"
    status = f"/v1/bulk/{job['id']}"
    ch.emu.clock.advance(1.0)
    assert _ok(ch.call("GET", status))["attributes"]["status"] == "running"
    assert not ch.emu.find_customers(externalId="n-1")
    ch.emu.clock.advance(1.0)
    done = _ok(ch.call("GET", status))["attributes"]
    assert done["status"] == "complete" and done["counts"] == {
        "created": 1, "updated": 0, "error": 1}
    r = ch.call("GET", status + "/batches")
    assert r.status == 200
    [batch] = r.body  # the documented shape: a top-level list of batches
    by_ref = {i["_clientRef"]: i for i in batch["results"]}
    created = ch.emu.find_customers(externalId="n-1")
    assert by_ref["r1"]["status"] == "created" and by_ref["r1"]["objectId"] == created[0]["id"]
    assert by_ref["r2"] == {"_clientRef": "r2", "status": "error", "error": "duplicate detected"}
    assert (batch["successCount"], batch["failureCount"], batch["objectIds"]) \
        == (1, 1, [created[0]["id"]])


# -- metadata, auth, roles -------------------------------------------------------------
def test_metadata_lists_defined_attributes(connect: Connect) -> None:
    ch = connect()
    ch.emu.define_custom_attribute("customer", "tierStr", "Tier")
    ch.emu.define_custom_attribute("company", "seatsNum")
    props = _ok(ch.call("GET", "/v1/metadata/customer"))["attributes"]["properties"]
    assert set(props) == {"tierStr"}
    assert (props["tierStr"]["type"], props["tierStr"]["displayName"]) == ("string", "Tier")
    props = _ok(ch.call("GET", "/v1/metadata/company"))["attributes"]["properties"]
    assert props["seatsNum"]["type"] == "number"


def test_token_endpoint_roles(connect: Connect) -> None:
    ch = connect(api_keys={"full": TokenSpec(name="sync"), "reader": ["org.admin.search.read"]})
    full = _ok(ch.call("GET", "/v1/auth/tokens/current", key="full"))["attributes"]
    assert full["roles"] == list(DEFAULT_ROLES) and full["name"] == "sync"
    assert (full["region"], full["pod"]) == ("us", "prod1")
    reader = _ok(ch.call("GET", "/v1/auth/tokens/current", key="reader"))["attributes"]
    assert reader["roles"] == ["org.admin.search.read"]


def test_missing_role_is_403(connect: Connect) -> None:
    ch = connect(api_keys={"reader": ["org.admin.search.read"]})
    r = ch.call("POST", "/v1/customers", json={"name": "x"}, key="reader")
    assert r.status == 403 and r.error()["code"] == "forbidden"
    assert r.error()["meta"] == {"resource": "customer", "action": "write"}
    assert _search(ch, {}).status == 401  # test-key is not a known key here
    r = ch.call("POST", "/v1/customers/search", json={}, key="reader")
    assert r.status == 200
    assert len(ch.emu.customers) == 0


def test_missing_or_invalid_auth_is_401(connect: Connect) -> None:
    ch = connect(api_keys={"good": TokenSpec()})
    r = ch.call("GET", "/v1/auth/tokens/current", key=_NO_KEY)
    assert r.status == 401 and "x-ratelimit-limit" in r.headers
    assert r.error()["message"] == "missing or malformed bearer token"
    r = ch.call("GET", "/v1/auth/tokens/current", key="nope")
    assert r.status == 401 and r.error()["message"] == "invalid or expired token"
    assert ch.call("GET", "/v1/auth/tokens/current", key="good").status == 200


def test_wrong_region_key_names_the_pod(connect: Connect) -> None:
    ch = connect(api_keys={"eu-key": TokenSpec(region="eu")})
    r = ch.call("GET", "/v1/klasses", key="eu-key")
    assert r.status == 401 and r.error()["code"] == "wrong_pod"
    assert "prod2" in r.error()["message"]
    assert "https://api.prod2.kustomerapp.com" in r.error()["message"]
    assert r.error()["meta"] == {"pod": "prod2", "region": "eu"}


# -- rate limits ----------------------------------------------------------------------
def test_rate_limit_headers_429_and_window_reset(connect: Connect) -> None:
    ch = connect(requests_per_minute=3)
    start = ch.emu.clock.now()
    window_end = str(int(start // 60 * 60 + 60))
    seen = [ch.call("GET", "/v1/klasses"),
            ch.call("GET", "/v1/customers/externalId=nobody"),   # an error answer
            ch.call("POST", "/v1/companies", json={"name": "x"})]  # another one
    assert [r.status for r in seen] == [200, 404, 400]
    for left, r in zip(("2", "1", "0"), seen, strict=True):
        assert (r.headers["x-ratelimit-limit"], r.headers["x-ratelimit-remaining"],
                r.headers["x-ratelimit-reset"]) == ("3", left, window_end)
    ch.emu.clock.advance(20)
    limited = [ch.call("GET", "/v1/klasses") for _ in range(2)]
    for r in limited:
        assert r.status == 429 and r.error()["code"] == "rate_limited"
        assert r.headers["retry-after"] == "40"
        assert (r.headers["x-ratelimit-remaining"], r.headers["x-ratelimit-reset"]) \
            == ("0", window_end)
    ch.emu.clock.advance(int(limited[-1].headers["retry-after"]))
    r = ch.call("GET", "/v1/klasses")
    assert r.status == 200 and r.headers["x-ratelimit-remaining"] == "2"
    assert ch.emu.rate_limited == 2


def test_search_budget_is_separate(connect: Connect) -> None:
    ch = connect(requests_per_minute=10, searches_per_minute=2)
    assert [_search(ch, {}).status for _ in range(2)] == [200, 200]
    r = _search(ch, {})
    assert r.status == 429 and int(r.headers["retry-after"]) >= 1
    # the refused search spent nothing: 10 - 2 searches = 8 left
    assert r.headers["x-ratelimit-remaining"] == "8"
    r = ch.call("GET", "/v1/klasses")
    assert r.status == 200 and r.headers["x-ratelimit-remaining"] == "7"
    ch.emu.clock.advance(60)
    assert _search(ch, {}).status == 200


# -- faults ---------------------------------------------------------------------------
def test_fault_status(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.status(503), match="POST /v1/customers")
    r = _create(ch, externalId="f-1")
    assert r.status == 503 and r.error()["code"] == "server_error"
    assert "x-ratelimit-limit" in r.headers
    assert not ch.emu.find_customers(externalId="f-1")
    _ok(_create(ch, externalId="f-1"), 201)


def test_fault_rate_limit(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.rate_limit(retry_after=3))
    r = _create(ch, externalId="f-1")
    assert r.status == 429 and r.headers["retry-after"] == "3"
    assert not ch.emu.find_customers(externalId="f-1") and ch.emu.rate_limited == 1


def test_fault_timeout(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.timeout())
    with pytest.raises(ch.transport_error("timeout")):
        ch.call("POST", "/v1/customers", json={"externalId": "t-1"}, timeout=0.3)
    assert not ch.emu.find_customers(externalId="t-1")
    assert [(r.status, r.fault) for r in ch.emu.requests] == [(0, "timeout")]
    _ok(_create(ch, externalId="t-1"), 201)


def test_fault_connection_reset(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.connection_reset())
    with pytest.raises(ch.transport_error("connection_reset")):
        _create(ch, externalId="c-1")
    assert not ch.emu.find_customers(externalId="c-1")
    _ok(_create(ch, externalId="c-1"), 201)


def test_fault_lost_response(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.lost_response(), match="POST /v1/customers")
    with pytest.raises(ch.transport_error("lost_response")):
        _create(ch, externalId="lost")
    assert len(ch.emu.find_customers(externalId="lost")) == 1  # the write IS stored
    assert _create(ch, externalId="lost").status == 409       # a naive retry collides


def test_fault_slow(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.slow(7.5), match="GET /v1/klasses")
    before = ch.emu.clock.now()
    assert ch.call("GET", "/v1/klasses").status == 200
    assert ch.emu.clock.now() == before + 7.5
    assert ch.call("GET", "/v1/klasses").status == 200
    assert ch.emu.clock.now() == before + 7.5


def test_fault_applied_then_status(connect: Connect) -> None:
    ch = connect()
    ch.emu.faults.add(Fault.applied_then_status(503), match="POST /v1/customers")
    r = _create(ch, externalId="applied")
    assert r.status == 503 and r.error()["code"] == "server_error"
    assert len(ch.emu.find_customers(externalId="applied")) == 1  # the write IS stored
    assert _create(ch, externalId="applied").status == 409


# -- readings (see test_readings.py for each one in depth) -------------------------------
def test_reading_body_limit_413(connect: Connect) -> None:
    ch = connect(readings={"max_body_bytes": 1000})
    r = _create(ch, custom={"notesTxt": "x" * 1000})
    assert r.status == 413
    assert r.body == {"errors": [{"status": "413", "code": "payload_too_large",
                                  "title": "payload too large",
                                  "detail": r.error()["detail"]}]}
    r = ch.call("POST", "/v1/customers/bulk", json=[{"name": "y" * 200}] * 5)
    assert r.status == 413
    ch.emu.clock.advance(60)
    ch.emu.advance_jobs()
    assert len(ch.emu.customers) == 0
    _ok(_create(ch, custom={"notesTxt": "x" * 900}), 201)


def test_reading_minimal_hits_and_hidden_link(connect: Connect) -> None:
    ch = connect(readings={"search_hits": "minimal", "company_link": "hidden"})
    co = _ok(_create(ch, "/v1/companies", name="Acme"), 201)["id"]
    made = _ok(_create(ch, name="Ada", externalId="m-1", company=co), 201)
    [hit] = _ok(_search(ch, {"and": [{"customer_externalId": {"equals": "m-1"}}]}))
    assert set(hit["attributes"]) == {"name", "displayName", "createdAt", "updatedAt",
                                      "lastActivityAt", "verified", "rev"}
    assert set(hit["relationships"]) == {"org"}
    got = _ok(ch.call("GET", f"/v1/customers/{made['id']}"))
    assert co not in str(got) and co not in str(made)
    assert ch.emu.customers[made["id"]]["company"] == co


def test_reading_stale_rev(connect: Connect) -> None:
    ch = connect(readings="strictest")
    ident = _ok(_create(ch, name="Ada"), 201)["id"]
    _ok(ch.call("PATCH", f"/v1/customers/{ident}", json={"name": "B", "rev": 1}))
    r = ch.call("PATCH", f"/v1/customers/{ident}", json={"name": "C", "rev": 1})
    assert r.status == 409 and r.error() == {
        "status": "409", "code": "conflict", "title": "conflict",
        "detail": "rev 1 is stale; the current rev is 2"}
    assert ch.emu.customers[ident]["name"] == "B"
