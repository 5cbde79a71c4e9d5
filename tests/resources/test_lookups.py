"""Lookups: get, get_by_external_id, get_by_email, find; encoding, confirmation, ambiguity."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import Outcome, SyncKey
from kustomer_activations.errors import NotFoundError
from kustomer_activations.models import Company, Customer
from kustomer_activations.resources._base import AmbiguousMatchError
from kustomer_activations.testing import KustomerEmulator

from ..helpers import assert_link_refused, drive, link_hidden
from ._util import NASTY, NASTY_PATH, NASTY_QUERY, company, customer, many, not_found, one, sent

# --- respx: exact requests ---------------------------------------------------------------


def test_get_encodes_the_id(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get(path__regex=r"^/v1/customers/").mock(
        return_value=one(customer(NASTY, name="Ada", externalId="x")))
    got = drive(flavor, client, lambda c: c.customers.get(NASTY))
    assert isinstance(got, Customer)
    assert (got.id, got.name, got.external_id) == (NASTY, "Ada", "x")
    assert sent(router) == [("GET", f"/v1/customers/{NASTY_PATH}", None)]


def test_get_company(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/companies/co1").mock(return_value=one(company("co1", name="Acme")))
    got = drive(flavor, client, lambda c: c.companies.get("co1"))
    assert isinstance(got, Company)
    assert got.name == "Acme"


def test_get_unknown_raises_not_found(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/nope").mock(return_value=not_found())
    with pytest.raises(NotFoundError):
        drive(flavor, client, lambda c: c.customers.get("nope"))


@pytest.mark.parametrize("obj", ["customers", "companies"])
def test_get_empty_id_fails_before_io(flavor: str, client: Any, router: respx.MockRouter, obj: str) -> None:
    with pytest.raises(ValueError):
        drive(flavor, client, lambda c: getattr(c, obj).get(""))
    assert not router.calls


def test_get_by_external_id_customer(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get(path__regex=r"^/v1/customers/externalId=").mock(
        return_value=one(customer("c1", externalId=NASTY)))
    got = drive(flavor, client, lambda c: c.customers.get_by_external_id(NASTY))
    assert got is not None and got.id == "c1"
    assert sent(router) == [("GET", f"/v1/customers/externalId={NASTY_PATH}", None)]


def test_get_by_external_id_none(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/externalId=x").mock(return_value=not_found())
    router.get("/v1/companies").mock(return_value=many())
    assert drive(flavor, client, lambda c: c.customers.get_by_external_id("x")) is None
    assert drive(flavor, client, lambda c: c.companies.get_by_external_id("x")) is None


def test_get_by_external_id_company_uses_the_list_query(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/companies").mock(return_value=many(company("co1", externalId=NASTY, name="A")))
    got = drive(flavor, client, lambda c: c.companies.get_by_external_id(NASTY))
    assert got is not None and got.id == "co1"
    # externalId alone: with "filter" too Kustomer would ignore both
    assert sent(router) == [("GET", f"/v1/companies?externalId={NASTY_QUERY}", None)]


def test_company_external_id_ambiguity(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/companies").mock(return_value=many(
        company("co1", externalId="e", name="A"), company("co2", externalId="e", name="B"),
        company("co3", externalId="other", name="C")))
    found = drive(flavor, client, lambda c: c.companies.find("externalId", "e"))
    assert [f.id for f in found] == ["co1", "co2"]
    with pytest.raises(AmbiguousMatchError) as info:
        drive(flavor, client, lambda c: c.companies.get_by_external_id("e"))
    assert info.value.ids == ("co1", "co2")


def test_get_by_email_any_email_case_insensitive(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/customers/email=Second%2Btag%40Ex.com").mock(return_value=one(customer(
        "c1", emails=[{"type": "home", "email": "first@ex.com"},
                      {"type": "work", "email": "second+tag@ex.com"}])))
    got = drive(flavor, client, lambda c: c.customers.get_by_email("Second+tag@Ex.com"))
    assert got is not None and got.id == "c1"
    assert got.default_email == "first@ex.com"


def test_get_by_email_none(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/email=a%40ex.com").mock(return_value=not_found())
    assert drive(flavor, client, lambda c: c.customers.get_by_email("a@ex.com")) is None


def test_find_custom_pages_through_search(flavor: str, client: Any, router: respx.MockRouter) -> None:
    page1 = [customer(f"c{i}", custom={"tierStr": "gold"}) for i in range(500)]
    route = router.post("/v1/customers/search").mock(side_effect=[
        httpx.Response(200, json={"data": page1, "meta": {"page": 1, "totalPages": 2}}),
        many(customer("c500", custom={"tierStr": "gold"}), customer("x", custom={"tierStr": "Gold"})),
    ])
    found = drive(flavor, client, lambda c: c.customers.find(SyncKey.custom("tierStr"), "gold"))
    assert len(found) == 501
    assert route.call_count == 2
    body = {"and": [{"customer_custom_tierStr": {"equals": "gold"}}], "queryContext": "customer"}
    assert sent(router) == [
        ("POST", "/v1/customers/search?page=1&pageSize=500", body),
        ("POST", "/v1/customers/search?page=2&pageSize=500", body),
    ]


def test_find_custom_company(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.post("/v1/customers/search").mock(return_value=many(
        company("co1", custom={"seatsNum": 10.0}), company("co2", custom={"seatsNum": 11})))
    found = drive(flavor, client, lambda c: c.companies.find("custom.seatsNum", "10"))
    assert [f.id for f in found] == ["co1"]
    assert sent(router)[0][2] == {"and": [{"company_custom_seatsNum": {"equals": 10}}],
                                  "queryContext": "company"}


def test_find_string_keys(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/externalId=e").mock(return_value=one(customer("c1", externalId="e")))
    router.get("/v1/customers/email=a%40ex.com").mock(return_value=one(
        customer("c2", emails=[{"type": "home", "email": "A@ex.com"}])))
    assert [c.id for c in drive(flavor, client, lambda c: c.customers.find("externalId", "e"))] == ["c1"]
    assert [c.id for c in drive(flavor, client, lambda c: c.customers.find("email", "a@ex.com"))] == ["c2"]


def test_find_returns_nothing_on_404(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/externalId=e").mock(return_value=not_found())
    assert drive(flavor, client, lambda c: c.customers.find("externalId", "e")) == []


def test_find_confirms_direct_answers(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/externalId=e").mock(return_value=one(customer("c1", externalId="E")))
    assert drive(flavor, client, lambda c: c.customers.find("externalId", "e")) == []


@pytest.mark.parametrize("key", ["phone", "custom.tier", "custom.", "externalid"])
def test_find_bad_key_fails_before_io(flavor: str, client: Any, router: respx.MockRouter, key: str) -> None:
    with pytest.raises(ValueError):
        drive(flavor, client, lambda c: c.customers.find(key, "x"))
    assert not router.calls


@pytest.mark.parametrize("value", ["", None])
def test_find_empty_value_fails_before_io(
    flavor: str, client: Any, router: respx.MockRouter, value: Any
) -> None:
    with pytest.raises(ValueError):
        drive(flavor, client, lambda c: c.customers.find("externalId", value))
    assert not router.calls


def test_find_companies_by_email_is_refused(flavor: str, client: Any, router: respx.MockRouter) -> None:
    with pytest.raises(ValueError, match="customers only"):
        drive(flavor, client, lambda c: c.companies.find("email", "a@ex.com"))
    assert not router.calls


# --- emulator: behaviour -------------------------------------------------------------------


def test_emulator_lookups(flavor: str, emu: KustomerEmulator, eclient: Any) -> None:
    cid = emu.seed_customer({"externalId": NASTY, "name": "Ada",
                             "emails": [{"type": "home", "email": "ada@ex.com"},
                                        {"type": "work", "email": "ada+w@ex.com"}],
                             "custom": {"tierStr": "gold"}})
    emu.seed_customer({"externalId": "other", "custom": {"tierStr": "gold"}})
    co1 = emu.seed_company({"name": "Acme", "externalId": "dup"})
    co2 = emu.seed_company({"name": "Acme 2", "externalId": "dup"})
    co3 = emu.seed_company({"name": "Solo", "externalId": NASTY})

    def run(c: Any, fn: Any) -> Any:
        return drive(flavor, c, fn)

    assert run(eclient, lambda c: c.customers.get(cid)).name == "Ada"
    assert run(eclient, lambda c: c.customers.get_by_external_id(NASTY)).id == cid
    assert run(eclient, lambda c: c.customers.get_by_external_id("nope")) is None
    assert run(eclient, lambda c: c.customers.get_by_email("ADA+W@ex.com")).id == cid
    assert run(eclient, lambda c: c.customers.get_by_email("nobody@ex.com")) is None
    gold = run(eclient, lambda c: c.customers.find("custom.tierStr", "gold"))
    assert len(gold) == 2
    assert run(eclient, lambda c: c.companies.get_by_external_id(NASTY)).id == co3
    assert run(eclient, lambda c: c.companies.get(co3)).name == "Solo"
    assert [c.id for c in run(eclient, lambda c: c.companies.find("externalId", "dup"))] == [co1, co2]
    with pytest.raises(AmbiguousMatchError):
        run(eclient, lambda c: c.companies.get_by_external_id("dup"))
    with pytest.raises(NotFoundError):
        run(eclient, lambda c: c.customers.get("000000000000000000000000"))


def test_emulator_lookups_show_the_company_link_or_that_it_is_unknown(
    flavor: str, emu: KustomerEmulator, eclient: Any
) -> None:
    co = emu.seed_company({"name": "Acme", "externalId": "co-1"})
    cid = emu.seed_customer({"externalId": "x-1", "name": "Ada", "company": co,
                             "emails": [{"email": "ada@ex.com"}], "custom": {"tierStr": "gold"}})
    hidden = link_hidden(emu)

    def run(fn: Any) -> Any:
        return drive(flavor, eclient, fn)

    found = [
        run(lambda c: c.customers.get(cid)),
        run(lambda c: c.customers.get_by_external_id("x-1")),
        run(lambda c: c.customers.get_by_email("ada@ex.com")),
        *run(lambda c: c.customers.find("custom.tierStr", "gold")),
    ]
    assert [f.id for f in found] == [cid] * 4
    # An answer that does not show the link makes it unknown, never "no company".
    assert {(f.company_id, f.company_known) for f in found} == {
        (None, False) if hidden else (co, True)}

    # So an upsert that does not set the link is refused when the link is unknown: an update
    # without 'company' would unlink. Nothing is written, the link stays.
    before = emu.customers[cid]
    result = run(lambda c: c.customers.upsert({"externalId": "x-1", "name": "Ada L"}))
    if hidden:
        assert_link_refused(result, cid, before, emu.customers[cid])
    else:
        assert result.outcome is Outcome.UPDATED, result.describe()
        assert emu.customers[cid]["name"] == "Ada L"
    assert emu.customers[cid]["company"] == co
    # With the link set, the update is written under every reading.
    result = run(lambda c: c.customers.upsert({"externalId": "x-1", "name": "Ada M",
                                               "companyExternalId": "co-1"}))
    assert result.outcome is Outcome.UPDATED, result.describe()
    assert emu.customers[cid]["name"] == "Ada M"
    assert emu.customers[cid]["company"] == co
