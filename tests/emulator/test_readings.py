"""Readings of unclear Kustomer behaviour, and what issue "reliability" needs.

Every reading is asserted on real answers, at its default and at its other
values (``KUSTOMER_API.md``, "Where the public material disagrees").
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import pytest

from kustomer_activations.testing import Fault, KustomerEmulator, Readings, VirtualClock
from kustomer_activations.testing.__main__ import main as cli_main

from .conftest import AUTH

Make = Callable[..., tuple[KustomerEmulator, httpx.Client]]


@pytest.fixture
def make() -> Iterator[Make]:
    """``make(readings=None, **emulator_kwargs) -> (emu, client)`` on a VirtualClock."""
    with contextlib.ExitStack() as stack:
        def _make(readings: Any = None, **kwargs: Any) -> tuple[KustomerEmulator, httpx.Client]:
            kwargs.setdefault("clock", VirtualClock())
            emu = KustomerEmulator(readings=readings, **kwargs)
            client = stack.enter_context(httpx.Client(base_url=emu.base_url,
                                                      transport=emu.transport, headers=AUTH))
            return emu, client
        yield _make


def _data(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()["data"]


def _search(c: httpx.Client, body: dict[str, Any], **params: Any) -> httpx.Response:
    return c.post("/v1/customers/search", json=body, params=params)


def _ext(value: str, context: str = "customer") -> dict[str, Any]:
    return {"queryContext": context, "and": [{f"{context}_externalId": {"equals": value}}]}


def _finish_jobs(emu: KustomerEmulator, seconds: float = 10.0) -> None:
    emu.clock.sleep(seconds)
    emu.advance_jobs()


# -- the Readings value ------------------------------------------------------------------
STRICTEST = {"search_hits": "minimal", "company_link": "hidden", "search_in": "max:20",
             "company_externalId_searchable": False, "max_body_bytes": 100_000,
             "custom_update": "replace", "company_update": "replace",
             "bulk_results": "documented", "client_ref_on": "customer-create",
             "search_docs": "indexed", "rev": "enforced", "search_page_cap": 100,
             "bulk_job_ttl": 600.0}
DEFAULTS = {"search_hits": "full", "company_link": "relationships", "search_in": "any",
            "company_externalId_searchable": True, "max_body_bytes": None,
            "custom_update": "merge", "company_update": "partial",
            "bulk_results": "documented", "client_ref_on": "all", "search_docs": "live",
            "rev": "enforced", "search_page_cap": None, "bulk_job_ttl": None}


def test_defaults_and_strictest() -> None:
    assert attrs.asdict(Readings()) == DEFAULTS
    assert attrs.asdict(Readings.strictest()) == STRICTEST
    assert Readings.preset("default") == Readings()
    assert Readings.preset("strictest") == Readings.strictest()
    assert Readings.parse("strictest") == Readings.strictest()
    assert Readings.parse("") == Readings() == Readings.parse("default")
    assert str(Readings()) == "default"
    assert Readings.parse(str(Readings.strictest())) == Readings.strictest()


def test_parse_replace_evolve_and_mappings() -> None:
    r = Readings.parse("search_hits=minimal, company_link=hidden")
    assert (r.search_hits, r.company_link, r.rev) == ("minimal", "hidden", "enforced")
    r = Readings.parse("strictest,rev=ignored,max_body_bytes=none,bulk_job_ttl=1.5,"
                       "company_externalId_searchable=yes,search_page_cap=7")
    assert (r.rev, r.max_body_bytes, r.bulk_job_ttl, r.company_externalId_searchable,
            r.search_page_cap, r.search_hits) == ("ignored", None, 1.5, True, 7, "minimal")
    assert Readings().replace(rev="ignored") == attrs.evolve(Readings(), rev="ignored") \
        == Readings(rev="ignored")
    assert Readings.from_mapping({"max_body_bytes": "1000", "search_in": "max:3"}) \
        == Readings(max_body_bytes=1000, search_in="max:3")
    with pytest.raises(TypeError):
        Readings("full")  # type: ignore[misc]  # keyword-only
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Readings().rev = "ignored"  # type: ignore[misc]


@pytest.mark.parametrize(("changes", "message"), [
    ({"search_hits": "some"}, "search_hits must be one of"),
    ({"company_link": "body"}, "company_link must be one of"),
    ({"search_in": "max:0"}, "search_in must be"),
    ({"search_in": "max:x"}, "search_in must be"),
    ({"search_in": "many"}, "search_in must be"),
    ({"company_externalId_searchable": "no"}, "must be true or false"),
    ({"max_body_bytes": 0}, "max_body_bytes must be a positive integer"),
    ({"max_body_bytes": 1.5}, "max_body_bytes must be a positive integer"),
    ({"search_page_cap": -1}, "search_page_cap must be a positive integer"),
    ({"bulk_job_ttl": 0}, "bulk_job_ttl must be a positive number"),
    ({"rev": "strict"}, "rev must be one of"),
    ({"bulk_results": "nested"}, "bulk_results must be one of"),
])
def test_invalid_values_are_clear_value_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Readings(**changes)
    with pytest.raises(ValueError, match=message):
        Readings().replace(**changes)


@pytest.mark.parametrize(("text", "message"), [
    ("bogus=1", "unknown reading 'bogus'"), ("nonsense", "unknown readings preset"),
    ("search_page_cap=many", "must be an integer"), ("bulk_job_ttl=soon", "number of seconds"),
    ("company_externalId_searchable=maybe", "true or false"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Readings.parse(text)


def test_emulator_accepts_every_form() -> None:
    clock = VirtualClock()
    assert KustomerEmulator(clock=clock).readings == Readings()
    assert KustomerEmulator(clock=clock, readings="strictest").readings == Readings.strictest()
    assert KustomerEmulator(clock=clock, readings={"rev": "ignored"}).readings \
        == Readings(rev="ignored")
    given = Readings(search_hits="minimal")
    assert KustomerEmulator(clock=clock, readings=given).readings is given
    with pytest.raises(ValueError, match="unknown reading"):
        KustomerEmulator(clock=clock, readings={"nope": 1})
    with pytest.raises(TypeError):
        KustomerEmulator(clock=clock, readings=3)  # type: ignore[arg-type]


# -- search_hits ---------------------------------------------------------------------------
def test_search_hits_full_by_default(make: Make) -> None:
    emu, c = make()
    emu.seed_customer({"name": "Ada", "externalId": "h-1", "emails": [{"email": "a@x.com"}],
                       "custom": {"tierStr": "gold"}})
    [hit] = _data(_search(c, _ext("h-1")))
    assert hit["attributes"]["emails"][0]["email"] == "a@x.com"
    assert hit["attributes"]["custom"] == {"tierStr": "gold"}
    assert hit["attributes"]["externalId"] == "h-1"


def test_search_hits_minimal(make: Make) -> None:
    emu, c = make({"search_hits": "minimal"})
    ident = emu.seed_customer({"name": "Ada", "externalId": "h-1",
                               "emails": [{"email": "a@x.com"}], "custom": {"tierStr": "g"}})
    co = emu.seed_company({"name": "Acme", "externalId": "co-1", "custom": {"tierStr": "g"}})
    [hit] = _data(_search(c, _ext("h-1")))
    assert set(hit) == {"type", "id", "attributes", "relationships", "links"}
    assert set(hit["attributes"]) == {"name", "displayName", "createdAt", "updatedAt",
                                      "lastActivityAt", "verified", "rev"}
    assert set(hit["relationships"]) == {"org"}
    assert hit["links"] == {"self": f"/v1/customers/{ident}"} and hit["id"] == ident
    [company_hit] = _data(_search(c, _ext("co-1", "company")))
    assert set(company_hit["attributes"]) == {"name", "createdAt", "updatedAt", "rev"}
    assert set(company_hit["relationships"]) == {"org"} and company_hit["id"] == co
    # reads by id stay full
    assert _data(c.get(f"/v1/customers/{ident}"))["attributes"]["custom"] == {"tierStr": "g"}


# -- company_link --------------------------------------------------------------------------
def _customer_answers(c: httpx.Client, co: str) -> list[dict[str, Any]]:
    """Every kind of customer answer, for one customer linked to ``co``."""
    made = _data(c.post("/v1/customers", json={"name": "Ada", "externalId": "l-1",
                                               "emails": [{"email": "l@x.com"}],
                                               "company": co}), 201)
    ident = made["id"]
    return [made,
            _data(c.get(f"/v1/customers/{ident}")),
            _data(c.get("/v1/customers/externalId=l-1")),
            _data(c.get("/v1/customers/email=" + quote("l@x.com"))),
            _data(_search(c, _ext("l-1")))[0],
            _data(c.put(f"/v1/customers/{ident}", json={"name": "Ada", "company": co})),
            _data(c.patch(f"/v1/customers/{ident}", json={"name": "Ada L", "company": co}))]


def test_company_link_in_relationships_by_default(make: Make) -> None:
    emu, c = make()
    co = emu.seed_company({"name": "Acme"})
    for answer in _customer_answers(c, co):
        assert answer["relationships"]["company"]["data"] == {"type": "company", "id": co}
        assert "company" not in answer["attributes"]


def test_company_link_as_attribute(make: Make) -> None:
    emu, c = make({"company_link": "attribute"})
    co = emu.seed_company({"name": "Acme"})
    answers = _customer_answers(c, co)
    for answer in answers:
        assert answer["attributes"]["company"] == co
        assert "company" not in answer["relationships"]
    # the trap still unlinks, shown as null
    gone = _data(c.put(f"/v1/customers/{answers[0]['id']}", json={"name": "B"}))
    assert gone["attributes"]["company"] is None
    assert emu.customers[answers[0]["id"]]["company"] is None


def test_company_link_hidden_everywhere(make: Make) -> None:
    emu, c = make({"company_link": "hidden"})
    co = emu.seed_company({"name": "Acme"})
    answers = _customer_answers(c, co)
    ident = answers[0]["id"]
    for answer in answers:
        assert "company" not in answer["attributes"]
        assert "company" not in answer["relationships"]
        assert co not in str(answer)  # the id appears nowhere
    assert emu.customers[ident]["company"] == co  # stored all the same
    # the unlink trap is unchanged: an update without company unlinks, silently
    answer = _data(c.patch(f"/v1/customers/{ident}", json={"name": "Ada L"}))
    assert co not in str(answer)
    assert emu.customers[ident]["company"] is None
    # bulk updates too
    c.put(f"/v1/customers/{ident}", json={"company": co})
    assert emu.customers[ident]["company"] == co
    assert c.put("/v1/customers/bulk", json=[{"id": ident, "name": "X"}]).status_code == 201
    _finish_jobs(emu)
    assert emu.customers[ident]["company"] is None


# -- search_in and company_externalId_searchable -----------------------------------------------
def test_search_in_any_by_default(make: Make) -> None:
    emu, c = make()
    ids = [emu.seed_customer({"externalId": f"k{i}"}) for i in range(30)]
    r = _search(c, {"and": [{"customer_externalId": {"in": [f"k{i}" for i in range(30)]}}]})
    assert [d["id"] for d in _data(r)] == ids


def test_search_in_refused(make: Make) -> None:
    emu, c = make({"search_in": "refused"})
    emu.seed_customer({"externalId": "k1"})
    for body in ({"and": [{"customer_externalId": {"in": ["k1"]}}]},
                 {"or": [{"customer_externalId": {"equals": "k2"}},
                         {"customer_externalId": {"in": ["k1"]}}]}):
        r = _search(c, body)
        assert r.status_code == 400
        err = r.json()["errors"][0]
        assert set(err) == {"code", "message", "meta"} and err["code"] == "invalid_search"
        assert "'in'" in err["message"]
    or_equals = {"or": [{"customer_externalId": {"equals": "k1"}}]}
    assert len(_data(_search(c, or_equals))) == 1


def test_search_in_max(make: Make) -> None:
    emu, c = make({"search_in": "max:3"})
    emu.seed_customer({"externalId": "k1"})
    ok = _search(c, {"and": [{"customer_externalId": {"in": ["k1", "k2", "k3"]}}]})
    assert len(_data(ok)) == 1
    r = _search(c, {"and": [{"customer_externalId": {"in": ["k1", "k2", "k3", "k4"]}}]})
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["code"] == "invalid_search" and "at most 3 values" in err["message"]


def test_company_external_id_searchable(make: Make) -> None:
    emu, c = make()
    co = emu.seed_company({"name": "Acme", "externalId": "co-1"})
    assert [d["id"] for d in _data(_search(c, _ext("co-1", "company")))] == [co]
    emu, c = make({"company_externalId_searchable": False})
    emu.seed_company({"name": "Acme", "externalId": "co-1", "custom": {"keyStr": "co-1"}})
    r = _search(c, _ext("co-1", "company"))
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["code"] == "invalid_search" and "unknown attribute" in err["message"]
    assert "company_externalId" in err["message"]
    # other company attributes and customer_externalId still work
    body = {"queryContext": "company", "and": [{"company_custom_keyStr": {"equals": "co-1"}}]}
    assert len(_data(_search(c, body))) == 1
    assert _search(c, _ext("x")).status_code == 200


# -- max_body_bytes ------------------------------------------------------------------------
def _big_custom(n_bytes: int) -> dict[str, Any]:
    return {"notesTxt": "x" * 1000, **{f"k{i}Str": "y" * 1000 for i in range(n_bytes // 1000)}}


def test_body_size_unlimited_by_default(make: Make) -> None:
    _, c = make()
    items = [{"name": f"n{i}", "custom": _big_custom(5000)} for i in range(100)]
    assert c.post("/v1/customers/bulk", json=items).status_code == 201  # ~600 KB


def _assert_413(r: httpx.Response, limit: int) -> None:
    assert r.status_code == 413, r.text
    [err] = r.json()["errors"]
    assert (err["status"], err["code"], err["title"]) == ("413", "payload_too_large",
                                                          "payload too large")
    assert str(limit) in err["detail"]


def test_body_over_the_limit_is_413_and_nothing_applied(make: Make) -> None:
    emu, c = make({"max_body_bytes": 2000})
    ident = emu.seed_customer({"name": "Ada"})
    co = emu.seed_company({"name": "Acme"})
    big = {"name": "Big", "custom": {"notesTxt": "x" * 1000, "moreTxt": "y" * 1000}}
    calls = [("POST", "/v1/customers", big), ("PUT", f"/v1/customers/{ident}", big),
             ("PATCH", f"/v1/customers/{ident}", big), ("PUT", f"/v1/companies/{co}", big),
             ("POST", "/v1/customers/bulk", [big]), ("PUT", "/v1/customers/bulk",
                                                      [{"id": ident, **big}]),
             ("POST", "/v1/companies/bulk", [big]),
             ("POST", "/v1/customers/search",
              {"or": [{"customer_name": {"equals": "x" * 1000}}] * 3})]
    for method, path, body in calls:
        _assert_413(c.request(method, path, json=body), 2000)
    _finish_jobs(emu)
    assert [d["name"] for d in emu.customers.all()] == ["Ada"]
    assert [d["name"] for d in emu.companies.all()] == ["Acme"]
    assert not emu.count("GET", "/v1/bulk")
    # the limit counts raw bytes: exactly the limit passes
    body = b'{"name": "' + b"a" * 100 + b'"}'
    pad = b" " * (2000 - len(body))
    assert c.post("/v1/customers", content=body + pad).status_code == 201
    _assert_413(c.post("/v1/customers", content=body + pad + b" "), 2000)
    # refused in front of the API: a 413 spends no budget
    r = c.post("/v1/customers", content=body + pad + b" ")
    assert r.headers["x-ratelimit-remaining"] == str(1000 - 1)


def test_body_over_the_limit_over_loopback_http(make: Make) -> None:
    emu, _ = make("strictest")
    items = [{"name": f"n{i}", "custom": _big_custom(1000)} for i in range(100)]  # ~210 KB
    with emu.serve() as server, httpx.Client(base_url=server.url, headers=AUTH) as c:
        _assert_413(c.post("/v1/customers/bulk", json=items), 100_000)
        assert c.post("/v1/customers/bulk", json=items[:40]).status_code == 201
        assert c.get("/v1/klasses").status_code == 200  # the connection is still usable
    _finish_jobs(emu)
    assert len(emu.customers) == 40


# -- custom_update -------------------------------------------------------------------------
def _custom_after_updates(make: Make, readings: Any) -> list[dict[str, Any]]:
    emu, c = make(readings)
    start = {"a1Str": "keep", "b1Str": "old"}
    cust = emu.seed_customer({"name": "Ada", "custom": start})
    cust2 = emu.seed_customer({"name": "Bob", "custom": start})
    cust3 = emu.seed_customer({"name": "Cy", "custom": start})
    co = emu.seed_company({"name": "Acme", "custom": start})
    co2 = emu.seed_company({"name": "Beta", "custom": start})
    change = {"b1Str": "new", "c1Str": None, "d1Num": 4}
    out = [_data(c.put(f"/v1/customers/{cust}", json={"custom": change}))["attributes"]["custom"],
           _data(c.patch(f"/v1/customers/{cust2}", json={"custom": change}))["attributes"]
           ["custom"],
           _data(c.put(f"/v1/companies/{co}", json={"custom": change}))["attributes"]["custom"]]
    assert c.put("/v1/customers/bulk", json=[{"id": cust3, "custom": change}]).status_code == 201
    assert c.put("/v1/companies/bulk", json=[{"id": co2, "custom": change}]).status_code == 201
    _finish_jobs(emu)
    out += [emu.customers[cust3]["custom"], emu.companies[co2]["custom"]]
    # an update without custom leaves it alone in both readings
    assert _data(c.patch(f"/v1/customers/{cust}", json={"name": "A"}))["attributes"]["custom"] \
        == out[0]
    return out


def test_custom_update_merges_by_default(make: Make) -> None:
    assert _custom_after_updates(make, None) == [
        {"a1Str": "keep", "b1Str": "new", "d1Num": 4}] * 5


def test_custom_update_replace(make: Make) -> None:
    assert _custom_after_updates(make, {"custom_update": "replace"}) == [
        {"b1Str": "new", "d1Num": 4}] * 5


# -- company_update ------------------------------------------------------------------------
def test_company_update_partial_by_default(make: Make) -> None:
    emu, c = make()
    co = emu.seed_company({"name": "Acme", "externalId": "c-1", "tags": ["t"],
                           "custom": {"tierStr": "a"}})
    a = _data(c.put(f"/v1/companies/{co}", json={"employeeCount": 5}))["attributes"]
    assert (a["name"], a["externalId"], a["tags"], a["custom"], a["employeeCount"]) \
        == ("Acme", "c-1", ["t"], {"tierStr": "a"}, 5)


def test_company_update_replace(make: Make) -> None:
    emu, c = make({"company_update": "replace"})
    co = emu.seed_company({"name": "Acme", "externalId": "c-1", "tags": ["t"],
                           "domains": [{"domain": "acme.com"}], "custom": {"tierStr": "a"}})
    co2 = emu.seed_company({"name": "Beta", "externalId": "c-2", "employeeCount": 9})
    before = emu.companies[co]
    emu.clock.sleep(5)
    a = _data(c.put(f"/v1/companies/{co}", json={"name": "Acme Inc", "custom": {"xNum": 1}}))
    att = a["attributes"]
    assert a["id"] == co and att["name"] == "Acme Inc" and att["custom"] == {"xNum": 1}
    assert (att["externalId"], att["tags"], att["domains"]) == (None, [], [])
    assert att["createdAt"] == before["createdAt"] != att["updatedAt"]
    assert att["rev"] == before["rev"] + 1
    assert c.get("/v1/companies", params={"externalId": "c-1"}).json()["data"] == []
    # bulk update too; a customer update is unaffected
    assert c.put("/v1/companies/bulk", json=[{"id": co2, "name": "Beta 2"}]).status_code == 201
    _finish_jobs(emu)
    assert (emu.companies[co2]["externalId"], emu.companies[co2]["employeeCount"]) \
        == (None, None)
    cust = emu.seed_customer({"name": "Ada", "externalId": "p-1"})
    assert _data(c.put(f"/v1/customers/{cust}", json={"name": "A"}))["attributes"][
        "externalId"] == "p-1"


# -- bulk_results --------------------------------------------------------------------------
def _bulk_outcomes(make: Make, readings: Any) -> tuple[KustomerEmulator, httpx.Client, str,
                                                       list[Any]]:
    emu, c = make(readings)
    emu.seed_customer({"externalId": "taken"})
    job = _data(c.post("/v1/customers/bulk", json=[
        {"externalId": "n-1", "_clientRef": "r1"}, {"externalId": "taken", "_clientRef": "r2"},
        {"externalId": "n-3", "_clientRef": "r3"}]), 201)
    before = c.get(f"/v1/bulk/{job['id']}/batches")
    assert before.status_code == 200
    _finish_jobs(emu)
    after = c.get(f"/v1/bulk/{job['id']}/batches")
    assert after.status_code == 200
    status = _data(c.get(f"/v1/bulk/{job['id']}"))
    assert status["type"] == "bulk" and status["attributes"]["status"] == "complete"
    assert status["attributes"]["counts"] == {"created": 2, "updated": 0, "error": 1}
    return emu, c, job["id"], [before.json(), after.json()]


def test_bulk_results_documented_by_default(make: Make) -> None:
    emu, _, _, (before, after) = _bulk_outcomes(make, None)
    assert before == []
    ids = [emu.find_customers(externalId=e)[0]["id"] for e in ("n-1", "n-3")]
    assert after == [{"successCount": 2, "failureCount": 1, "objectIds": ids, "results": [
        {"_clientRef": "r1", "objectId": ids[0], "status": "created"},
        {"_clientRef": "r2", "status": "error", "error": "duplicate detected"},
        {"_clientRef": "r3", "objectId": ids[1], "status": "created"}]}]


def test_bulk_results_jsonapi(make: Make) -> None:
    emu, _, job, (before, after) = _bulk_outcomes(make, {"bulk_results": "jsonapi"})
    assert before["data"][0]["attributes"]["items"] == []
    assert before["meta"]["status"] == "queued"
    items = after["data"][0]["attributes"]["items"]
    assert after["links"] == {"self": f"/v1/bulk/{job}/batches"}
    assert [(i["index"], i["_clientRef"], i["status"]) for i in items] == [
        (0, "r1", "created"), (1, "r2", "error"), (2, "r3", "created")]
    assert items[1]["error"]["code"] == "duplicate" and items[1]["objectId"] is None
    assert items[0]["objectId"] == emu.find_customers(externalId="n-1")[0]["id"]


# -- client_ref_on -------------------------------------------------------------------------
def test_client_ref_on_every_bulk_endpoint_by_default(make: Make) -> None:
    emu, c = make()
    cust = emu.seed_customer({"name": "Ada"})
    co = emu.seed_company({"name": "Acme"})
    for method, path, item in (("POST", "/v1/customers/bulk", {"name": "x"}),
                               ("PUT", "/v1/customers/bulk", {"id": cust, "name": "y"}),
                               ("POST", "/v1/companies/bulk", {"name": "xyz"}),
                               ("PUT", "/v1/companies/bulk", {"id": co, "name": "abc"})):
        r = c.request(method, path, json=[{**item, "_clientRef": "r0"}])
        assert r.status_code == 201, (path, r.text)
        _finish_jobs(emu)
        [batch] = c.get(f"/v1/bulk/{r.json()['data']['id']}/batches").json()
        assert batch["results"][0]["_clientRef"] == "r0"


def test_client_ref_on_customer_create_only(make: Make) -> None:
    emu, c = make({"client_ref_on": "customer-create"})
    cust = emu.seed_customer({"name": "Ada"})
    co = emu.seed_company({"name": "Acme"})
    assert c.post("/v1/customers/bulk", json=[{"name": "x", "_clientRef": "r0"}]
                  ).status_code == 201
    for method, path, item in (("PUT", "/v1/customers/bulk", {"id": cust, "name": "y"}),
                               ("POST", "/v1/companies/bulk", {"name": "xyz"}),
                               ("PUT", "/v1/companies/bulk", {"id": co, "name": "abc"})):
        r = c.request(method, path, json=[item, {**item, "_clientRef": "r1"}])
        assert r.status_code == 400, path
        err = r.json()["errors"][0]
        assert err["code"] == "invalid" and err["source"]["pointer"] == "/1/_clientRef"
        # without _clientRef the same request is fine
        assert c.request(method, path, json=[item]).status_code == 201
    _finish_jobs(emu)
    assert sorted(d["name"] for d in emu.customers.all()) == ["x", "y"]
    assert sorted(d["name"] for d in emu.companies.all()) == ["abc", "xyz"]


# -- search_docs ---------------------------------------------------------------------------
def _lagged_hit(make: Make, readings: Any) -> tuple[dict[str, Any], str]:
    emu, c = make(readings, search_lag=5.0)
    co = emu.seed_company({"name": "Acme"})
    ident = emu.seed_customer({"name": "Old", "externalId": "d-1", "company": co,
                               "custom": {"tierStr": "a"}})
    _data(c.patch(f"/v1/customers/{ident}", json={"name": "New", "custom": {"tierStr": "b"}}))
    # the index still matches on the old value ...
    [hit] = _data(_search(c, {"and": [{"customer_custom_tierStr": {"equals": "a"}}]}))
    assert _data(_search(c, {"and": [{"customer_custom_tierStr": {"equals": "b"}}]})) == []
    emu.clock.advance(5)
    [later] = _data(_search(c, {"and": [{"customer_custom_tierStr": {"equals": "b"}}]}))
    assert later["attributes"]["name"] == "New"
    assert later["relationships"]["company"]["data"] is None
    return hit, co


def test_search_docs_live_by_default(make: Make) -> None:
    hit, _ = _lagged_hit(make, None)
    # ... but the hit renders the live object
    assert hit["attributes"]["name"] == "New" and hit["attributes"]["custom"] == {"tierStr": "b"}
    assert hit["relationships"]["company"]["data"] is None
    assert hit["attributes"]["rev"] == 2


def test_search_docs_indexed(make: Make) -> None:
    hit, co = _lagged_hit(make, {"search_docs": "indexed"})
    # ... and the hit is the document as the index saw it
    assert hit["attributes"]["name"] == "Old" and hit["attributes"]["custom"] == {"tierStr": "a"}
    assert hit["relationships"]["company"]["data"] == {"type": "company", "id": co}
    assert hit["attributes"]["rev"] == 1


def test_search_docs_indexed_snapshots_are_not_shared(make: Make) -> None:
    emu, c = make({"search_docs": "indexed"}, search_lag=1.0)
    ident = _data(c.post("/v1/customers", json={"externalId": "s-1", "tags": ["a"],
                                                "custom": {"listId": "x"}}), 201)["id"]
    emu.clock.advance(1)
    _data(c.patch(f"/v1/customers/{ident}", json={"tags": ["b"], "custom": {"listId": "y"}}))
    [hit] = _data(_search(c, _ext("s-1")))
    assert hit["attributes"]["tags"] == ["a"] and hit["attributes"]["custom"] == {"listId": "x"}
    emu.clock.advance(1)
    [hit] = _data(_search(c, _ext("s-1")))
    assert hit["attributes"]["tags"] == ["b"] and hit["attributes"]["custom"] == {"listId": "y"}


# -- rev -----------------------------------------------------------------------------------
def test_rev_enforced_by_default(make: Make) -> None:
    emu, c = make()
    ident = emu.seed_customer({"name": "Ada"})
    co = emu.seed_company({"name": "Acme"})
    a = _data(c.put(f"/v1/customers/{ident}", json={"name": "A2", "rev": 1}))["attributes"]
    assert a["rev"] == 2
    for method in ("PUT", "PATCH"):
        r = c.request(method, f"/v1/customers/{ident}", json={"name": "stale", "rev": 1})
        assert r.status_code == 409
        assert r.json() == {"errors": [{"status": "409", "code": "conflict", "title": "conflict",
                                        "detail": "rev 1 is stale; the current rev is 2"}]}
    r = c.put(f"/v1/companies/{co}", json={"name": "Stale", "rev": 7})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "conflict"
    assert emu.customers[ident]["name"] == "A2" and emu.customers[ident]["rev"] == 2
    assert _data(c.patch(f"/v1/customers/{ident}", json={"name": "A3", "rev": 2.0})
                 )["attributes"]["rev"] == 3
    # without rev there is no check; every write increments it
    assert _data(c.patch(f"/v1/customers/{ident}", json={"name": "A4"}))["attributes"]["rev"] == 4
    # bulk update: a per-item error
    job = _data(c.put("/v1/customers/bulk", json=[{"id": ident, "name": "B", "rev": 3},
                                                  {"id": ident, "name": "C", "rev": 4}]), 201)
    _finish_jobs(emu)
    [batch] = c.get(f"/v1/bulk/{job['id']}/batches").json()
    assert batch["results"] == [
        {"status": "error", "error": "conflict: stale rev 3; the current rev is 4"},
        {"objectId": ident, "status": "updated"}]
    assert emu.customers[ident]["name"] == "C" and emu.customers[ident]["rev"] == 5


def test_rev_stale_bulk_item_in_jsonapi_results(make: Make) -> None:
    emu, c = make({"bulk_results": "jsonapi"})
    co = emu.seed_company({"name": "Acme"})
    job = _data(c.put("/v1/companies/bulk", json=[{"id": co, "name": "Beta", "rev": 9}]), 201)
    _finish_jobs(emu)
    [item] = c.get(f"/v1/bulk/{job['id']}/batches").json()["data"][0]["attributes"]["items"]
    assert item["status"] == "error"
    assert item["error"] == {"status": 409, "code": "conflict", "title": "conflict",
                             "detail": "rev 9 is stale; the current rev is 1"}


def test_rev_ignored(make: Make) -> None:
    emu, c = make({"rev": "ignored"})
    ident = emu.seed_customer({"name": "Ada"})
    a = _data(c.put(f"/v1/customers/{ident}", json={"name": "A2", "rev": 99}))["attributes"]
    assert a["rev"] == 2
    c.put("/v1/customers/bulk", json=[{"id": ident, "name": "B", "rev": 1}])
    _finish_jobs(emu)
    assert emu.customers[ident]["name"] == "B" and emu.customers[ident]["rev"] == 3


# -- search_page_cap -----------------------------------------------------------------------
def test_search_page_cap(make: Make) -> None:
    emu, c = make({"search_page_cap": 100})
    ids = [emu.seed_customer({"externalId": f"p{i}"}) for i in range(250)]
    r = _search(c, {}, pageSize=500)
    body = r.json()
    assert len(body["data"]) == 100 and body["meta"]["pageSize"] == 100
    assert (body["meta"]["total"], body["meta"]["totalPages"]) == (250, 3)
    seen = [d["id"] for d in body["data"]]
    while body["links"]["next"]:
        body = c.post(body["links"]["next"], json={}).json()
        seen += [d["id"] for d in body["data"]]
    assert seen == ids
    # a smaller pageSize is kept; without the reading a page holds what pageSize asks
    assert len(_data(_search(c, {}, pageSize=30))) == 30
    emu, c = make()
    for i in range(250):
        emu.seed_customer({"externalId": f"p{i}"})
    assert len(_data(_search(c, {}, pageSize=500))) == 250


# -- bulk_job_ttl --------------------------------------------------------------------------
def test_bulk_jobs_kept_by_default(make: Make) -> None:
    emu, c = make()
    job = _data(c.post("/v1/customers/bulk", json=[{"name": "x"}]), 201)["id"]
    emu.clock.advance(86400 * 30)
    assert c.get(f"/v1/bulk/{job}").status_code == 200
    assert c.get(f"/v1/bulk/{job}/batches").status_code == 200


def test_bulk_job_ttl(make: Make) -> None:
    emu, c = make({"bulk_job_ttl": 60}, bulk_delay=100.0)
    job = _data(c.post("/v1/customers/bulk", json=[{"name": "x"}]), 201)["id"]
    emu.clock.advance(99)  # still queued after longer than the TTL: kept
    assert _data(c.get(f"/v1/bulk/{job}"))["attributes"]["status"] == "queued"
    emu.clock.advance(1.01 + 59.9)  # complete at 100.01; 59.9 s later: kept
    assert _data(c.get(f"/v1/bulk/{job}"))["attributes"]["status"] == "complete"
    assert c.get(f"/v1/bulk/{job}/batches").status_code == 200
    emu.clock.advance(0.2)
    for path in (f"/v1/bulk/{job}", f"/v1/bulk/{job}/batches"):
        r = c.get(path)
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "not_found"
    assert len(emu.customers) == 1  # the work itself stays done


# -- command line --------------------------------------------------------------------------
def test_cli_rejects_bad_readings(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--reading", "bogus=1"], ["--readings", "loose"], ["--reading", "minimal"],
                 ["--reading", "rev=maybe"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        assert exc.value.code == 2
    assert "unknown reading 'bogus'" in capsys.readouterr().err


def test_cli_readings() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kustomer_activations.testing", "--port", "0",
         "--readings", "strictest", "--reading", "search_in=max:2",
         "--reading", "max_body_bytes=500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().split()[4]
        assert "search_hits=minimal" in proc.stderr.readline()
        with httpx.Client(base_url=url, headers=AUTH) as c:
            two = {"and": [{"customer_externalId": {"in": ["a", "b"]}}]}
            three = {"and": [{"customer_externalId": {"in": ["a", "b", "c"]}}]}
            assert _search(c, two).status_code == 200
            assert _search(c, three).status_code == 400
            _assert_413(c.post("/v1/customers", json={"name": "x" * 600}), 500)
            made = _data(c.post("/v1/customers", json={"name": "Ada"}), 201)
            assert "company" not in made["relationships"]  # hidden
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- what issue "reliability" needs ----------------------------------------------------------
def test_applied_then_status(make: Make) -> None:
    emu, c = make()
    emu.faults.add(Fault.applied_then_status(), match="POST /v1/customers")
    r = c.post("/v1/customers", json={"externalId": "a-1"})
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "server_error"
    assert "x-ratelimit-limit" in r.headers
    assert len(emu.find_customers(externalId="a-1")) == 1  # applied all the same
    assert emu.requests[-1].fault == "applied_then_status:503"
    assert Fault.applied_then_status(502).label == "applied_then_status:502"
    # a retry collides with the applied write
    assert c.post("/v1/customers", json={"externalId": "a-1"}).status_code == 409
    # a bulk submit: the job exists and runs although the client saw an error
    emu.faults.add(Fault.applied_then_status(500), match="POST /v1/customers/bulk")
    assert c.post("/v1/customers/bulk", json=[{"externalId": "b-1"}]).status_code == 500
    _finish_jobs(emu)
    assert len(emu.find_customers(externalId="b-1")) == 1


def test_applied_then_status_in_random_faults(make: Make) -> None:
    emu, c = make()
    emu.faults.random(rate=1.0, kinds=["applied_then_status:502"], seed=3)
    for i in range(3):
        assert c.post("/v1/customers", json={"externalId": f"r-{i}"}).status_code == 502
    assert len(emu.customers) == 3
    emu.faults.random(rate=1.0, kinds=["applied_then_status"], seed=3)
    assert c.get("/v1/klasses").status_code == 503
    with pytest.raises(ValueError, match="bad status code"):
        emu.faults.random(rate=1.0, kinds=["applied_then_status:abc"])


@pytest.mark.parametrize("email", ["@", "user@", "@example.com", "a@@b.com", "a b@c.com",
                                   "ab@com", "a@.com", "a@com.", "a\t@b.com", "a@b.com\n",
                                   "a\x00b@c.com", "a@b\u00a0c.com", "plain"])
def test_email_relaxed_refuses(make: Make, email: str) -> None:
    emu, c = make()
    for path, extra in (("/v1/customers", {}), ("/v1/companies", {"name": "Acme"})):
        r = c.post(path, json={**extra, "emails": [{"email": email}]})
        assert r.status_code == 400, (path, email)
        assert r.json()["errors"][0]["source"]["pointer"] == "/emails/0/email"
    r = c.post("/v1/customers", json={"sharedEmails": [{"email": email}]})
    assert r.status_code == 400
    assert len(emu.customers) == 0


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.com", "x@a..b",
                                   "O'Brien@example.ie", "ü@exämple.de"])
def test_email_relaxed_accepts(make: Make, email: str) -> None:
    _, c = make()
    assert c.post("/v1/customers", json={"emails": [{"email": email}]}).status_code == 201


def test_txt_values_limited_to_1024(make: Make) -> None:
    _, c = make()
    assert c.post("/v1/customers", json={"custom": {"notesTxt": "x" * 1024}}).status_code == 201
    r = c.post("/v1/companies", json={"name": "Acme", "custom": {"notesTxt": "x" * 1025}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"]["pointer"] == "/custom/notesTxt"
    assert "1024" in r.json()["errors"][0]["detail"]


@pytest.mark.parametrize(("field", "value", "other"), [
    ("externalIds", [{"externalId": "x-1"}], [{"externalId": "x-2"}]),
    ("whatsapps", [{"phone": "+1555"}], [{"phone": "+1666"}]),
    ("socials", [{"type": "twitter", "username": "ada"}],
     [{"type": "instagram", "username": "ada"}]),
])
def test_list_values_are_unique_across_customers(make: Make, field: str, value: Any,
                                                 other: Any) -> None:
    emu, c = make()
    first = _data(c.post("/v1/customers", json={field: value}), 201)["id"]
    r = c.post("/v1/customers", json={"name": "Two", field: value})
    assert r.status_code == 409
    err = r.json()["errors"][0]
    assert err["code"] == "duplicate" and err["source"]["pointer"] == f"/{field}"
    second = _data(c.post("/v1/customers", json={"name": "Two", field: other}), 201)["id"]
    assert c.patch(f"/v1/customers/{second}", json={field: value}).status_code == 409
    # its owner may resend it; once released, another customer may take it
    assert c.patch(f"/v1/customers/{first}", json={field: value}).status_code == 200
    job = _data(c.post("/v1/customers/bulk", json=[{"name": "Bulk", field: value,
                                                    "_clientRef": "r0"}]), 201)
    _finish_jobs(emu)
    [batch] = c.get(f"/v1/bulk/{job['id']}/batches").json()
    assert batch["results"] == [{"_clientRef": "r0", "status": "error",
                                 "error": "duplicate detected"}]
    assert c.patch(f"/v1/customers/{first}", json={field: []}).status_code == 200
    assert c.patch(f"/v1/customers/{second}", json={field: value}).status_code == 200
    # companies are not part of it (they have no externalIds list)
    if field != "externalIds":
        assert c.post("/v1/companies", json={"name": "Acme", field: value}).status_code == 201


def test_multi_valued_id_attribute(make: Make) -> None:
    emu, c = make()
    # today's rule: an Id attribute takes one id string
    assert c.post("/v1/customers", json={"custom": {"ordersId": "o-1"}}).status_code == 201
    assert c.post("/v1/customers", json={"custom": {"ordersId": ["o-1"]}}).status_code == 400
    emu.define_custom_attribute("customer", "ordersId", "Orders", multi=True,
                                target="kobject.order")
    props = _data(c.get("/v1/metadata/customer"))["attributes"]["properties"]
    assert props["ordersId"]["multi"] is True and props["ordersId"]["target"] == "kobject.order"
    made = _data(c.post("/v1/customers", json={"externalId": "m-1",
                                               "custom": {"ordersId": ["o-1", "o-2"]}}), 201)
    assert made["attributes"]["custom"]["ordersId"] == ["o-1", "o-2"]
    for bad in ("o-3", ["o-3", 4], [""], {"id": "o-3"}):
        r = c.post("/v1/customers", json={"custom": {"ordersId": bad}})
        assert r.status_code == 400, bad
        assert r.json()["errors"][0]["source"]["pointer"] == "/custom/ordersId"
    assert c.post("/v1/customers", json={"custom": {"ordersId": []}}).status_code == 201
    assert c.post("/v1/customers", json={"custom": {"ordersId": None}}).status_code == 201
    r = c.post("/v1/customers/bulk", json=[{"custom": {"ordersId": "o-9"}}])
    assert r.status_code == 400
    # search matches any element of the list
    [hit] = _data(_search(c, {"and": [{"customer_custom_ordersId": {"equals": "o-2"}}]}))
    assert hit["id"] == made["id"]
    # other attributes and companies keep the single-string rule
    assert c.post("/v1/companies", json={"name": "Acme", "custom": {"ordersId": ["o-1"]}}
                  ).status_code == 400
    with pytest.raises(ValueError):
        emu.seed_customer({"custom": {"ordersId": "o-1"}})
