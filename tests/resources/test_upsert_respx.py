"""Upserts against respx: the exact requests (method, raw path with the encoded key, body).

Every test runs three times (sync client, async on asyncio, async on trio).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import SyncKey
from kustomer_activations.errors import (
    AuthenticationError,
    PermissionDeniedError,
    UnknownFieldError,
)
from kustomer_activations.results import Outcome

from ..helpers import drive
from ._util import (
    NASTY,
    NASTY_PATH,
    NASTY_QUERY,
    company,
    customer,
    duplicate,
    echo,
    many,
    not_found,
    one,
    sent,
)

SEARCH = "/v1/customers/search?page=1&pageSize=500"


def upsert(flavor: str, client: Any, obj: str, record: Any, **kw: Any) -> Any:
    return drive(flavor, client, lambda c: getattr(c, obj).upsert(record, **kw))


# --- customers, externalId ------------------------------------------------------------


def test_customer_external_id_create(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get(path__regex=r"^/v1/customers/externalId=").mock(return_value=not_found())
    router.post("/v1/customers").mock(side_effect=echo("c1"))
    record = {"externalId": NASTY, "name": "Ada", "emails": [{"email": "ada@ex.com"}],
              "tags": ["vip"], "custom": {"tierStr": "gold", "scoreNum": 5}}
    result = upsert(flavor, client, "customers", record)
    assert sent(router) == [
        ("GET", f"/v1/customers/externalId={NASTY_PATH}", None),
        ("POST", "/v1/customers", {
            "externalId": NASTY, "name": "Ada", "emails": [{"type": "home", "email": "ada@ex.com"}],
            "tags": ["vip"], "custom": {"tierStr": "gold", "scoreNum": 5}}),
    ]
    assert result.outcome is Outcome.CREATED
    assert result.id == "c1"
    assert result.key == "externalId"
    assert result.key_value == NASTY
    assert set(result.fields_written) == {"externalId", "name", "emails", "tags", "custom.tierStr",
                                          "custom.scoreNum"}
    assert result.error is None


def test_customer_external_id_update_merges_arrays_and_keeps_company(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    existing = customer(
        "c1", company="co9", externalId="x-1", name="Old",
        emails=[{"type": "work", "email": "old@ex.com", "verified": True, "id": None}],
        phones=[{"type": "mobile", "phone": "+15550001", "id": None}],
        tags=["a", "b"], custom={"tierStr": "gold", "keepStr": "k"},
    )
    router.get("/v1/customers/externalId=x-1").mock(return_value=one(existing))
    router.put("/v1/customers/c1").mock(side_effect=echo("c1"))
    result = upsert(flavor, client, "customers", {
        "externalId": "x-1", "name": "New", "tags": ["b", "c"],
        "emails": [{"email": "new@ex.com"}], "custom": {"tierStr": "gold", "scoreNum": 3},
    })
    assert sent(router) == [
        ("GET", "/v1/customers/externalId=x-1", None),
        ("PUT", "/v1/customers/c1", {
            "name": "New",
            "tags": ["a", "b", "c"],
            "emails": [{"type": "work", "email": "old@ex.com", "verified": True},
                       {"type": "home", "email": "new@ex.com"}],
            # The whole custom object: right whether Kustomer merges or replaces it.
            "custom": {"tierStr": "gold", "keepStr": "k", "scoreNum": 3},
            "company": "co9",
        }),
    ]
    assert result.outcome is Outcome.UPDATED
    assert result.id == "c1"
    assert set(result.fields_written) == {"name", "tags", "emails", "custom.scoreNum"}


def test_customer_unchanged_sends_no_write(flavor: str, client: Any, router: respx.MockRouter) -> None:
    existing = customer("c1", company="co9", externalId="x-1", name="Same", tags=["a"],
                        emails=[{"type": "home", "email": "s@ex.com"}],
                        custom={"scoreNum": 5.0, "seenAt": "2024-01-02T03:04:05Z"})
    router.get("/v1/customers/externalId=x-1").mock(return_value=one(existing))
    result = upsert(flavor, client, "customers", {
        "externalId": "x-1", "name": "Same", "tags": ["a"], "emails": ["S@ex.com"],
        "custom": {"scoreNum": 5, "seenAt": "2024-01-02T03:04:05.000Z"}})
    assert [m for m, _, _ in sent(router)] == ["GET"]
    assert result.outcome is Outcome.UNCHANGED
    assert result.id == "c1"
    assert result.fields_written == ()


def test_customer_update_without_company_omits_it(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/customers/externalId=x-1").mock(
        return_value=one(customer("c1", externalId="x-1", name="Old")))
    router.put("/v1/customers/c1").mock(side_effect=echo("c1"))
    upsert(flavor, client, "customers", {"externalId": "x-1", "name": "New"})
    assert sent(router)[1] == ("PUT", "/v1/customers/c1", {"name": "New"})


def test_customer_company_external_id_links(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/companies", params={"externalId": "co-ext"}).mock(
        return_value=many(company("co2", externalId="co-ext", name="Acme")))
    router.get("/v1/customers/externalId=x-1").mock(
        return_value=one(customer("c1", company="co1", externalId="x-1")))
    router.put("/v1/customers/c1").mock(side_effect=echo("c1"))
    result = upsert(flavor, client, "customers", {"externalId": "x-1", "companyExternalId": "co-ext"})
    assert sent(router) == [
        ("GET", "/v1/companies?externalId=co-ext", None),
        ("GET", "/v1/customers/externalId=x-1", None),
        ("PUT", "/v1/customers/c1", {"company": "co2"}),
    ]
    assert result.fields_written == ("company",)


# --- customers, email -----------------------------------------------------------------


def test_customer_email_create(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get(path__regex=r"^/v1/customers/email=").mock(return_value=not_found())
    router.post("/v1/customers").mock(side_effect=echo("c1"))
    result = upsert(flavor, client, "customers",
                    {"emails": [{"email": "A+b/c@Ex.com"}], "name": "A"}, key=SyncKey.email())
    assert sent(router) == [
        ("GET", "/v1/customers/email=a%2Bb%2Fc%40ex.com", None),
        ("POST", "/v1/customers", {"emails": [{"type": "home", "email": "A+b/c@Ex.com"}],
                                   "name": "A"}),
    ]
    assert result.outcome is Outcome.CREATED
    assert result.key == "email"
    assert result.key_value == "a+b/c@ex.com"


def test_customer_email_matched_on_other_email_moves_key_first(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    # Kustomer's email= lookup matches any of the customer's emails: that counts as the match
    # (merge.py) and the key email becomes the default (first) email.
    existing = customer("c1", company="co1", emails=[
        {"type": "home", "email": "first@ex.com"}, {"type": "work", "email": "key@ex.com"}])
    router.get("/v1/customers/email=key%40ex.com").mock(return_value=one(existing))
    router.put("/v1/customers/c1").mock(side_effect=echo("c1"))
    result = upsert(flavor, client, "customers", {"emails": ["key@ex.com"]}, key="email")
    assert sent(router)[1] == ("PUT", "/v1/customers/c1", {
        "emails": [{"type": "work", "email": "key@ex.com"}, {"type": "home", "email": "first@ex.com"}],
        "company": "co1",
    })
    assert result.outcome is Outcome.UPDATED
    assert result.fields_written == ("emails",)


def test_customer_email_key_already_first_is_unchanged(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    existing = customer("c1", emails=[{"type": "home", "email": "Key@ex.com"},
                                      {"type": "work", "email": "other@ex.com"}])
    router.get("/v1/customers/email=key%40ex.com").mock(return_value=one(existing))
    result = upsert(flavor, client, "customers", {"emails": ["key@ex.com"]}, key="email")
    assert result.outcome is Outcome.UNCHANGED
    assert len(router.calls) == 1


def test_customer_email_lookup_answer_without_the_email_is_no_match(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    # Answers are candidates, confirmed client-side: a customer not holding the email is not a match.
    router.get("/v1/customers/email=k%40ex.com").mock(
        return_value=one(customer("c1", emails=[{"type": "home", "email": "else@ex.com"}])))
    router.post("/v1/customers").mock(side_effect=echo("c2"))
    result = upsert(flavor, client, "customers", {"emails": ["k@ex.com"]}, key="email")
    assert result.outcome is Outcome.CREATED
    assert result.id == "c2"


# --- custom keys (search) -------------------------------------------------------------


def _search_body(attr: str, value: Any, context: str = "customer") -> dict[str, Any]:
    return {"and": [{attr: {"equals": value}}], "queryContext": context}


def test_customer_custom_key_create(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.post("/v1/customers/search").mock(return_value=many())
    router.post("/v1/customers").mock(side_effect=echo("c1"))
    result = upsert(flavor, client, "customers", {"custom": {"skuStr": NASTY}, "name": "N"},
                    key="custom.skuStr")
    assert sent(router) == [
        ("POST", SEARCH, _search_body("customer_custom_skuStr", NASTY)),
        ("POST", "/v1/customers", {"custom": {"skuStr": NASTY}, "name": "N"}),
    ]
    assert result.outcome is Outcome.CREATED
    assert result.key == "custom.skuStr"
    assert result.key_value == NASTY


def test_customer_custom_num_key_searches_a_number_and_updates(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.post("/v1/customers/search").mock(return_value=many(
        customer("c1", company="co1", custom={"accountNum": 42, "tierStr": "a"})))
    router.put("/v1/customers/c1").mock(side_effect=echo("c1"))
    result = upsert(flavor, client, "customers", {"custom": {"accountNum": 42, "tierStr": "b"}},
                    key=SyncKey.custom("accountNum"))
    assert sent(router) == [
        ("POST", SEARCH, _search_body("customer_custom_accountNum", 42)),
        ("PUT", "/v1/customers/c1", {"custom": {"accountNum": 42, "tierStr": "b"},
                                     "company": "co1"}),
    ]
    assert result.outcome is Outcome.UPDATED
    assert result.key_value == "42"
    assert result.fields_written == ("custom.tierStr",)


def test_customer_custom_key_two_hits_is_ambiguous(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.post("/v1/customers/search").mock(return_value=many(
        customer("c1", custom={"skuStr": "s"}), customer("c2", custom={"skuStr": "s"})))
    result = upsert(flavor, client, "customers", {"custom": {"skuStr": "s"}, "name": "x"},
                    key="custom.skuStr")
    assert len(router.calls) == 1
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.candidates == ("c1", "c2")
    assert result.id is None
    assert not result.ok


def test_search_hits_not_holding_the_value_are_ignored(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.post("/v1/customers/search").mock(return_value=many(
        customer("c1", custom={"skuStr": "S"}), customer("c2", custom={"skuStr": "s"})))
    # The hit does not show "name": it is read by id before it is compared.
    router.get("/v1/customers/c2").mock(
        return_value=one(customer("c2", custom={"skuStr": "s"}, name="y")))
    router.put("/v1/customers/c2").mock(side_effect=echo("c2"))
    result = upsert(flavor, client, "customers", {"custom": {"skuStr": "s"}, "name": "x"},
                    key="custom.skuStr")
    assert result.outcome is Outcome.UPDATED
    assert result.id == "c2"


# --- companies ------------------------------------------------------------------------


def test_company_external_id_create(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/companies").mock(return_value=many())
    router.post("/v1/companies").mock(side_effect=echo("co1", "company"))
    result = upsert(flavor, client, "companies", {"externalId": NASTY, "name": "Acme",
                                                  "domains": ["acme.com"]})
    assert sent(router) == [
        ("GET", f"/v1/companies?externalId={NASTY_QUERY}", None),
        ("POST", "/v1/companies", {"externalId": NASTY, "name": "Acme",
                                   "domains": [{"domain": "acme.com"}]}),
    ]
    assert result.outcome is Outcome.CREATED
    assert result.object_type == "company"
    assert result.id == "co1"


def test_company_update_merges_domains_never_sends_company(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/companies").mock(return_value=many(company(
        "co1", externalId="e1", name="Acme", domains=[{"domain": "acme.com"}], tags=["t"])))
    # A list entry may be partial, and a company PUT may replace the document: read it first.
    router.get("/v1/companies/co1").mock(return_value=one(company(
        "co1", externalId="e1", name="Acme", domains=[{"domain": "acme.com"}], tags=["t"],
        rev=4)))
    router.put("/v1/companies/co1").mock(side_effect=echo("co1", "company"))
    result = upsert(flavor, client, "companies",
                    {"externalId": "e1", "name": "Acme Inc", "domains": ["ACME.com", "acme.io"]})
    assert sent(router)[1:] == [("GET", "/v1/companies/co1", None), ("PUT", "/v1/companies/co1", {
        "name": "Acme Inc", "externalId": "e1", "tags": ["t"], "rev": 4,
        "domains": [{"domain": "acme.com"}, {"domain": "acme.io"}]})]
    assert result.outcome is Outcome.UPDATED
    assert set(result.fields_written) == {"name", "domains"}


def test_company_two_with_external_id_is_ambiguous(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/companies").mock(return_value=many(
        company("co1", externalId="e1", name="A1"), company("co2", externalId="e1", name="A2")))
    result = upsert(flavor, client, "companies", {"externalId": "e1", "name": "Acme"})
    assert sent(router) == [("GET", "/v1/companies?externalId=e1", None)]
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.candidates == ("co1", "co2")


def test_company_create_needs_a_name(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/companies").mock(return_value=many())
    result = upsert(flavor, client, "companies", {"externalId": "e1", "tags": ["x"]})
    assert [m for m, _, _ in sent(router)] == ["GET"]  # looked up, never created
    assert result.outcome is Outcome.INVALID
    assert result.error is not None and result.error.field == "name"


@pytest.mark.parametrize("name", ["ab", "x" * 256])
def test_company_name_length_is_invalid_before_io(
    flavor: str, client: Any, router: respx.MockRouter, name: str
) -> None:
    result = upsert(flavor, client, "companies", {"externalId": "e1", "name": name})
    assert result.outcome is Outcome.INVALID
    assert result.error is not None and result.error.field == "name"
    assert not router.calls


def test_company_custom_key(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.post("/v1/customers/search").mock(return_value=many(
        company("co1", name="Acme", custom={"dunsStr": "123"})))
    router.get("/v1/companies/co1").mock(return_value=one(
        company("co1", name="Acme", custom={"dunsStr": "123"}, employeeCount=None)))
    router.put("/v1/companies/co1").mock(side_effect=echo("co1", "company"))
    result = upsert(flavor, client, "companies",
                    {"custom": {"dunsStr": "123"}, "employeeCount": 10}, key="custom.dunsStr")
    assert sent(router) == [
        ("POST", SEARCH, _search_body("company_custom_dunsStr", "123", "company")),
        ("GET", "/v1/companies/co1", None),
        ("PUT", "/v1/companies/co1", {"employeeCount": 10, "name": "Acme",
                                      "custom": {"dunsStr": "123"}}),
    ]
    assert result.outcome is Outcome.UPDATED


def test_company_email_key_is_refused(flavor: str, client: Any, router: respx.MockRouter) -> None:
    with pytest.raises(ValueError, match="customers only"):
        upsert(flavor, client, "companies", {"emails": ["a@ex.com"], "name": "Acme"}, key="email")
    assert not router.calls


# --- modes ----------------------------------------------------------------------------


def test_update_only_skips_when_missing(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/externalId=x-1").mock(return_value=not_found())
    result = upsert(flavor, client, "customers", {"externalId": "x-1", "name": "n"},
                    mode="update_only")
    assert result.outcome is Outcome.SKIPPED
    assert len(router.calls) == 1


def test_create_only_skips_when_present(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/companies").mock(return_value=many(company("co1", externalId="e", name="Old")))
    result = upsert(flavor, client, "companies", {"externalId": "e", "name": "New"},
                    mode="create_only")
    assert result.outcome is Outcome.SKIPPED
    assert result.id == "co1"
    assert len(router.calls) == 1


def test_unknown_mode_raises(flavor: str, client: Any, router: respx.MockRouter) -> None:
    with pytest.raises(ValueError, match="mode"):
        upsert(flavor, client, "customers", {"externalId": "x"}, mode="merge")
    assert not router.calls


# --- the duplicate-on-create race and lost answers -------------------------------------


@pytest.mark.parametrize("status", [409, 400])
def test_duplicate_on_create_is_recovered_by_update(
    flavor: str, client: Any, router: respx.MockRouter, status: int
) -> None:
    winner = customer("c7", company="co1", externalId="x-1", name="Other writer")
    router.get("/v1/customers/externalId=x-1").mock(side_effect=[not_found(), one(winner)])
    router.post("/v1/customers").mock(return_value=duplicate(status))
    router.put("/v1/customers/c7").mock(side_effect=echo("c7"))
    result = upsert(flavor, client, "customers", {"externalId": "x-1", "name": "Me"})
    assert sent(router) == [
        ("GET", "/v1/customers/externalId=x-1", None),
        ("POST", "/v1/customers", {"externalId": "x-1", "name": "Me"}),
        ("GET", "/v1/customers/externalId=x-1", None),
        ("PUT", "/v1/customers/c7", {"name": "Me", "company": "co1"}),
    ]
    assert result.outcome is Outcome.UPDATED
    assert result.id == "c7"
    assert result.error is None


def test_duplicate_on_create_with_custom_key(flavor: str, client: Any, router: respx.MockRouter) -> None:
    winner = customer("c7", custom={"skuStr": "s1"}, name="Me")
    router.post("/v1/customers/search").mock(side_effect=[many(), many(winner)])
    router.post("/v1/customers").mock(return_value=duplicate())
    result = upsert(flavor, client, "customers", {"custom": {"skuStr": "s1"}, "name": "Me"},
                    key="custom.skuStr")
    assert [(m, p) for m, p, _ in sent(router)] == [
        ("POST", SEARCH), ("POST", "/v1/customers"), ("POST", SEARCH)]
    assert result.outcome is Outcome.UNCHANGED
    assert result.id == "c7"


def test_duplicate_on_create_then_two_matches_is_ambiguous(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    # Two writers got there first (custom values are not unique): never an arbitrary pick.
    router.post("/v1/customers/search").mock(side_effect=[many(), many(
        customer("c7", custom={"skuStr": "s1"}), customer("c8", custom={"skuStr": "s1"}))])
    router.post("/v1/customers").mock(return_value=duplicate())
    result = upsert(flavor, client, "customers",
                    {"custom": {"skuStr": "s1"}, "externalId": "x", "name": "Me"},
                    key="custom.skuStr")
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.candidates == ("c7", "c8")
    assert [m for m, _, _ in sent(router)] == ["POST", "POST", "POST"]


def test_lost_create_answer_with_custom_key_checks_the_external_id(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    # Search may lag behind the create that landed: the consistent externalId lookup is asked too.
    landed = customer("c1", externalId="x-1", custom={"skuStr": "s1"})
    router.post("/v1/customers/search").mock(return_value=many())
    router.post("/v1/customers").mock(side_effect=httpx.RemoteProtocolError("closed"))
    router.get("/v1/customers/externalId=x-1").mock(return_value=one(landed))
    result = upsert(flavor, client, "customers", {"custom": {"skuStr": "s1"}, "externalId": "x-1"},
                    key="custom.skuStr")
    assert [(m, p) for m, p, _ in sent(router)] == [
        ("POST", SEARCH), ("POST", "/v1/customers"), ("POST", SEARCH),
        ("GET", "/v1/customers/externalId=x-1")]
    assert result.outcome is Outcome.CREATED
    assert result.id == "c1"


def test_duplicate_on_create_that_is_not_about_the_key_is_rejected(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    # The email belongs to another customer: looking the key up again finds nothing.
    router.get("/v1/customers/externalId=x-1").mock(return_value=not_found())
    router.post("/v1/customers").mock(return_value=duplicate())
    result = upsert(flavor, client, "customers", {"externalId": "x-1", "emails": ["t@ex.com"]})
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None
    assert [m for m, _, _ in sent(router)] == ["GET", "POST", "GET"]


def test_lost_create_answer_is_not_resent_when_it_landed(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    landed = customer("c1", externalId="x-1", name="Ada")
    router.get("/v1/customers/externalId=x-1").mock(side_effect=[not_found(), one(landed)])
    router.post("/v1/customers").mock(side_effect=httpx.RemoteProtocolError("closed"))
    result = upsert(flavor, client, "customers", {"externalId": "x-1", "name": "Ada"})
    assert [m for m, _, _ in sent(router)] == ["GET", "POST", "GET"]
    assert result.outcome is Outcome.CREATED
    assert result.id == "c1"


def test_lost_create_answer_is_resent_when_it_did_not_land(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/customers/externalId=x-1").mock(return_value=not_found())
    router.post("/v1/customers").mock(side_effect=[httpx.ConnectError("refused"), echo("c1")])
    result = upsert(flavor, client, "customers", {"externalId": "x-1", "name": "Ada"})
    assert [m for m, _, _ in sent(router)] == ["GET", "POST", "GET", "POST"]
    assert result.outcome is Outcome.CREATED
    assert result.id == "c1"


# --- invalid records: nothing is sent ---------------------------------------------------


@pytest.mark.parametrize("obj, key, record", [
    ("customers", "externalId", {"name": "no key"}),
    ("customers", "externalId", {"externalId": "", "name": "empty"}),
    ("customers", "email", {"name": "no email"}),
    ("customers", "custom.skuStr", {"custom": {"otherStr": "x"}}),
    ("companies", "externalId", {"name": "Acme"}),
    ("companies", "custom.dunsStr", {"name": "Acme", "custom": {"dunsStr": None}}),
])
def test_missing_key_is_invalid_without_io(
    flavor: str, client: Any, router: respx.MockRouter, obj: str, key: str, record: Any
) -> None:
    result = upsert(flavor, client, obj, record, key=key)
    assert result.outcome is Outcome.INVALID
    assert result.error is not None
    assert not router.calls


@pytest.mark.parametrize("obj, custom, field", [
    ("customers", {"scoreNum": "abc"}, "custom.scoreNum"),
    ("customers", {"noteStr": "x" * 2000}, "custom.noteStr"),
    ("customers", {"seenAt": "yesterday"}, "custom.seenAt"),
    ("companies", {"vipBool": "maybe"}, "custom.vipBool"),
    ("companies", {"siteUrl": "not a url"}, "custom.siteUrl"),
])
def test_invalid_custom_value_is_invalid_without_io(
    flavor: str, client: Any, router: respx.MockRouter, obj: str, custom: Any, field: str
) -> None:
    result = upsert(flavor, client, obj, {"externalId": "e1", "name": "Acme", "custom": custom})
    assert result.outcome is Outcome.INVALID
    assert result.error is not None and result.error.field == field
    assert field in result.describe() or field in str(result.error)
    assert not router.calls


def test_unknown_custom_suffix_is_invalid_without_io(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    result = upsert(flavor, client, "customers", {"externalId": "e1", "custom": {"tierString": "x"}})
    assert result.outcome is Outcome.INVALID
    assert isinstance(result.error, UnknownFieldError)
    assert result.error.field == "custom.tierString"
    assert not router.calls


# --- validate_fields: metadata fetched once, typos caught -------------------------------

_METADATA = {"data": {"type": "metadata", "id": "customer", "attributes": {"properties": {
    "tierStr": {"type": "string", "displayName": "Tier"},
    "scoreNum": {"type": "number", "displayName": "Score"},
}}}}


def test_validate_fields_fetches_metadata_once_and_catches_typos(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    meta = router.get("/v1/metadata/customer").mock(return_value=httpx.Response(200, json=_METADATA))
    router.get(path__regex=r"^/v1/customers/externalId=").mock(return_value=not_found())
    router.post("/v1/customers").mock(side_effect=echo("c1"))


    def run(c: Any) -> Any:
        records = [
            {"externalId": "1", "custom": {"tierStr": "a"}},
            {"externalId": "2", "custom": {"teirStr": "b"}},
            {"externalId": "3", "custom": {"scoreNum": 1}},
        ]
        if flavor == "sync":
            return [c.customers.upsert(r, validate_fields=True) for r in records]

        async def go() -> list[Any]:
            return [await c.customers.upsert(r, validate_fields=True) for r in records]

        return go()

    results = drive(flavor, client, run)
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.INVALID, Outcome.CREATED]
    bad = results[1]
    assert isinstance(bad.error, UnknownFieldError)
    assert bad.error.field == "custom.teirStr"
    assert "did you mean 'tierStr'" in str(bad.error)
    assert meta.call_count == 1
    # the typo'd record never reached a lookup or a write
    assert [p for _, p, _ in sent(router)].count("/v1/customers/externalId=2") == 0


def test_without_validate_fields_no_metadata_is_read(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get(path__regex=r"^/v1/customers/externalId=").mock(return_value=not_found())
    router.post("/v1/customers").mock(side_effect=echo("c1"))
    upsert(flavor, client, "customers", {"externalId": "1", "custom": {"teirStr": "b"}})
    assert all(not p.startswith("/v1/metadata") for _, p, _ in sent(router))


# --- errors that concern the whole client raise ------------------------------------------


@pytest.mark.parametrize("status, exc", [(401, AuthenticationError), (403, PermissionDeniedError)])
def test_auth_errors_raise(
    flavor: str, client: Any, router: respx.MockRouter, status: int, exc: type[Exception]
) -> None:
    router.get(path__regex=r"^/v1/customers/externalId=").mock(return_value=httpx.Response(
        status, json={"errors": [{"code": "unauthorized", "message": "no"}]}))
    with pytest.raises(exc):
        upsert(flavor, client, "customers", {"externalId": "1", "name": "n"})


@pytest.mark.parametrize("status, exc", [(401, AuthenticationError), (403, PermissionDeniedError)])
def test_auth_errors_on_write_raise(
    flavor: str, client: Any, router: respx.MockRouter, status: int, exc: type[Exception]
) -> None:
    router.get("/v1/companies").mock(return_value=many())
    router.post("/v1/companies").mock(return_value=httpx.Response(
        status, json={"errors": [{"code": "forbidden", "message": "no"}]}))
    with pytest.raises(exc):
        upsert(flavor, client, "companies", {"externalId": "1", "name": "Acme"})


def test_other_4xx_on_write_is_rejected_not_raised(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/companies").mock(return_value=many())
    router.post("/v1/companies").mock(return_value=httpx.Response(400, json={"errors": [{
        "status": "400", "code": "invalid", "title": "validation failed", "detail": "/name: bad"}]}))
    result = upsert(flavor, client, "companies", {"externalId": "1", "name": "Acme"})
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None


# --- create() and update() -------------------------------------------------------------


def test_update_resends_the_current_company(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/customers/c%2F1").mock(return_value=one(customer("c/1", company="co1")))
    router.put("/v1/customers/c%2F1").mock(side_effect=echo("c/1"))
    drive(flavor, client, lambda c: c.customers.update("c/1", {"name": "New"}))
    assert sent(router) == [
        ("GET", "/v1/customers/c%2F1", None),
        ("PUT", "/v1/customers/c%2F1", {"name": "New", "company": "co1"}),
    ]


def test_update_with_company_set_does_not_read(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.put("/v1/customers/c1").mock(side_effect=echo("c1"))
    drive(flavor, client, lambda c: c.customers.update("c1", {"name": "New", "company": "co2"}))
    assert sent(router) == [("PUT", "/v1/customers/c1", {"name": "New", "company": "co2"})]


def test_company_update_and_create(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.put("/v1/companies/co1").mock(side_effect=echo("co1", "company"))
    router.post("/v1/companies").mock(side_effect=echo("co2", "company"))
    updated = drive(flavor, client, lambda c: c.companies.update("co1", {"employeeCount": 3}))
    created = drive(flavor, client, lambda c: c.companies.create({"name": "Acme", "externalId": "e"}))
    assert sent(router) == [
        ("PUT", "/v1/companies/co1", {"employeeCount": 3}),
        ("POST", "/v1/companies", {"name": "Acme", "externalId": "e"}),
    ]
    assert (updated.id, created.id, created.name) == ("co1", "co2", "Acme")


def test_create_validates_before_io(flavor: str, client: Any, router: respx.MockRouter) -> None:
    from kustomer_activations.errors import InvalidRecordError

    with pytest.raises(InvalidRecordError):
        drive(flavor, client, lambda c: c.companies.create({"externalId": "e"}))
    with pytest.raises(InvalidRecordError):
        drive(flavor, client, lambda c: c.customers.create({"custom": {"scoreNum": "abc"}}))
    assert not router.calls
