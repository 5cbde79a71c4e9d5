"""plan_create / plan_update: minimal, safe writes."""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_activations.errors import InvalidRecordError
from kustomer_activations.mapping import Field, FieldMapping, MappedRecord
from kustomer_activations.merge import CreatePlan, UpdatePlan, plan_create, plan_update
from kustomer_activations.models import Company, Customer, SyncKey

EXT = SyncKey.external_id()
EMAIL = SyncKey.email()


def customer(**attributes: Any) -> Customer:
    # An answer that shows the link (none, unless given): see test_unknown_company_link_*.
    shown: dict[str, Any] = {} if "company" in attributes else {"company": {"data": None}}
    relationships = attributes.pop("relationships", shown)
    return Customer.from_api({"type": "customer", "id": "c1", "attributes": attributes,
                              "relationships": relationships})


def company(**attributes: Any) -> Company:
    return Company.from_api({"type": "company", "id": "co1", "attributes": attributes})


def mapped(payload: dict[str, Any], object_type: Any = "customer") -> MappedRecord:
    return FieldMapping.identity(object_type).apply(payload)


def test_create_customer() -> None:
    rec = mapped({"externalId": "u-1", "name": None, "custom": {"tierStr": "a", "xNum": None}})
    plan = plan_create(rec, object_type="customer", company_id="co-9")
    assert plan == CreatePlan(
        {"externalId": "u-1", "custom": {"tierStr": "a"}, "company": "co-9"},
        ("externalId", "custom.tierStr", "company"),
    )


def test_create_company_needs_a_name() -> None:
    with pytest.raises(InvalidRecordError) as info:
        plan_create(mapped({"externalId": "c-1"}, "company"), object_type="company")
    assert info.value.field == "name"
    plan = plan_create(mapped({"externalId": "c-1", "name": "Acme", "deleted": False}, "company"),
                       object_type="company", company_id="ignored")
    assert plan.body == {"externalId": "c-1", "name": "Acme"}


def test_unchanged_returns_none() -> None:
    existing = customer(externalId="u-1", name="Ada", emails=[{"email": "ada@x.io"}],
                        tags=["vip", "beta"], custom={"scoreNum": 5, "signupAt":
                                                      "2024-05-01T10:00:00Z"},
                        relationships={"company": {"data": {"id": "co-1"}}})
    rec = mapped({"externalId": "u-1", "name": "Ada", "emails": ["ADA@x.io"], "tags": ["beta"],
                  "custom": {"scoreNum": 5.0, "signupAt": "2024-05-01T12:00:00+02:00"}})
    assert plan_update(existing, rec, EXT) is None
    assert plan_update(existing, rec, EXT, company_id="co-1") is None


def test_only_changed_mapped_fields_are_written_and_company_resent() -> None:
    existing = customer(externalId="u-1", name="Ada", username="ada",
                        custom={"tierStr": "a", "otherStr": "keep"},
                        relationships={"company": {"data": {"id": "co-1"}}})
    rec = mapped({"externalId": "u-1", "name": "Ada L", "custom": {"tierStr": "b"}})
    plan = plan_update(existing, rec, EXT, custom_mode="changed")
    assert plan == UpdatePlan({"name": "Ada L", "custom": {"tierStr": "b"}, "company": "co-1"},
                              ("name", "custom.tierStr"))
    # The default sends the whole custom object: right if Kustomer replaces it on update.
    merged = plan_update(existing, rec, EXT)
    assert merged == UpdatePlan(
        {"name": "Ada L", "custom": {"tierStr": "b", "otherStr": "keep"}, "company": "co-1"},
        ("name", "custom.tierStr"))


def test_company_omitted_when_customer_has_none() -> None:
    plan = plan_update(customer(name="A"), mapped({"name": "B"}), EXT)
    assert plan is not None and plan.body == {"name": "B"}


def test_company_change_alone_is_a_change() -> None:
    existing = customer(externalId="u-1", company="co-1")
    rec = mapped({"externalId": "u-1", "companyExternalId": "acme"})
    plan = plan_update(existing, rec, EXT, company_id="co-2")
    assert plan == UpdatePlan({"company": "co-2"}, ("company",))
    # a mapped company id; the engine's resolution wins over it
    rec2 = mapped({"externalId": "u-1", "company": "co-3"})
    assert plan_update(existing, rec2, EXT) == UpdatePlan({"company": "co-3"}, ("company",))
    assert plan_update(existing, rec2, EXT, company_id="co-4") == UpdatePlan(
        {"company": "co-4"}, ("company",))


def test_company_explicit_null_unlinks() -> None:
    existing = customer(company="co-1")
    plan = plan_update(existing, mapped({"company": None}), EXT)
    assert plan == UpdatePlan({"company": None}, ("company",))


def test_company_link_set_if_empty() -> None:
    m = FieldMapping({"externalId": "id", "companyExternalId": Field("cid", set_if_empty=True)},
                     object_type="customer")
    rec = m.apply({"id": "u-1", "cid": "acme"})
    assert plan_update(customer(externalId="u-1", company="co-1"), rec, EXT,
                       company_id="co-2") is None
    plan = plan_update(customer(externalId="u-1"), rec, EXT, company_id="co-2")
    assert plan == UpdatePlan({"company": "co-2"}, ("company",))


def test_set_if_empty_is_honoured() -> None:
    m = FieldMapping(
        {"externalId": "id", "name": Field("n", set_if_empty=True),
         "custom.signupAt": Field("s", set_if_empty=True), "tags": Field("t", set_if_empty=True)},
        object_type="customer",
    )
    rec = m.apply({"id": "u-1", "n": "New", "s": "2024-01-01", "t": "x"})
    full = customer(externalId="u-1", name="Old", tags=["a"],
                    custom={"signupAt": "2020-01-01T00:00:00Z"})
    assert plan_update(full, rec, EXT) is None
    empty = customer(externalId="u-1", name="", tags=[], custom={"signupAt": None})
    plan = plan_update(empty, rec, EXT)
    assert plan is not None
    assert plan.body == {"name": "New", "custom": {"signupAt": "2024-01-01T00:00:00.000Z"},
                         "tags": ["x"]}


def test_custom_only_mapped_keys_and_null_clears() -> None:
    existing = customer(custom={"aStr": "1", "bStr": "2", "cNum": 3})
    plan = plan_update(existing, mapped({"custom": {"aStr": "1", "cNum": None}}), EXT,
                       custom_mode="changed")
    assert plan == UpdatePlan({"custom": {"cNum": None}}, ("custom.cNum",))
    merged = plan_update(existing, mapped({"custom": {"aStr": "1", "cNum": None}}), EXT)
    assert merged == UpdatePlan({"custom": {"aStr": "1", "bStr": "2", "cNum": None}},
                                ("custom.cNum",))
    assert plan_update(existing, mapped({"custom": {"zStr": None}}), EXT) is None


def test_numbers_and_instants_in_standard_fields() -> None:
    co = company(name="Acme", employeeCount=5)
    assert plan_update(co, mapped({"employeeCount": 5.0}, "company"), EXT) is None
    c = customer(signedUpAt="2024-05-01T10:00:00Z")
    assert plan_update(c, mapped({"signedUpAt": "2024-05-01T10:00:00.000+00:00"}), EXT) is None
    plan = plan_update(c, mapped({"signedUpAt": "2024-05-01T10:00:01Z"}), EXT)
    assert plan is not None and plan.fields == ("signedUpAt",)


def test_emails_merge_keeps_existing_and_adds_new() -> None:
    existing = customer(emails=[{"email": "a@x.io", "type": "work", "verified": True, "id": None}])
    plan = plan_update(existing, mapped({"emails": ["b@x.io", "A@X.IO"]}), EXT)
    assert plan == UpdatePlan(
        {"emails": [{"type": "work", "email": "a@x.io", "verified": True},
                    {"type": "home", "email": "b@x.io"}]},
        ("emails",),
    )


def test_email_key_already_default_is_unchanged() -> None:
    existing = customer(emails=[{"email": "Ada@x.io"}, {"email": "old@x.io"}])
    assert plan_update(existing, mapped({"emails": ["ada@X.io"]}), EMAIL) is None


def test_email_key_matched_on_a_non_default_email_moves_to_front() -> None:
    existing = customer(emails=[{"email": "old@x.io"}, {"email": "ada@x.io", "type": "work"}],
                        company="co-1")
    plan = plan_update(existing, mapped({"emails": ["Ada@X.io"]}), EMAIL)
    assert plan == UpdatePlan(
        {"emails": [{"type": "work", "email": "ada@x.io"}, {"type": "home", "email": "old@x.io"}],
         "company": "co-1"},
        ("emails",),
    )
    # with an externalId key the order is left alone
    assert plan_update(existing, mapped({"emails": ["Ada@X.io"]}), EXT) is None


def test_email_key_new_email_goes_first() -> None:
    existing = customer(emails=[{"email": "old@x.io"}])
    plan = plan_update(existing, mapped({"emails": ["new@x.io"]}), EMAIL)
    assert plan is not None
    assert [e["email"] for e in plan.body["emails"]] == ["new@x.io", "old@x.io"]


def test_email_merge_over_the_limit_is_invalid() -> None:
    existing = customer(emails=[{"email": f"u{i}@x.io"} for i in range(10)])
    with pytest.raises(InvalidRecordError) as info:
        plan_update(existing, mapped({"emails": ["new@x.io"]}), EXT)
    assert info.value.field == "emails"


def test_phones_merge_on_digits() -> None:
    existing = customer(phones=[{"phone": "+1 555-0001", "type": "home"}])
    assert plan_update(existing, mapped({"phones": ["+15550001"]}), EXT) is None
    plan = plan_update(existing, mapped({"phones": ["+15550002"]}), EXT)
    assert plan is not None
    assert plan.body["phones"] == [{"type": "home", "phone": "+1 555-0001"},
                                   {"type": "mobile", "phone": "+15550002"}]


def test_tags_union_preserves_order() -> None:
    existing = customer(tags=["b", "a"])
    assert plan_update(existing, mapped({"tags": ["a"]}), EXT) is None
    plan = plan_update(existing, mapped({"tags": ["c", "a", "d"]}), EXT)
    assert plan == UpdatePlan({"tags": ["b", "a", "c", "d"]}, ("tags",))


def test_other_lists_union_without_server_keys() -> None:
    existing = customer(urls=[{"url": "https://a.io", "type": "website", "id": None}])
    assert plan_update(existing, mapped({"urls": [{"url": "https://a.io", "type": "website"}]}),
                       EXT) is None
    plan = plan_update(existing, mapped({"urls": [{"url": "https://b.io"}]}), EXT)
    assert plan is not None
    assert plan.body["urls"] == [{"url": "https://a.io", "type": "website"},
                                 {"url": "https://b.io"}]


def test_company_update() -> None:
    co = company(name="Acme", domains=[{"domain": "acme.io"}], createdAt="2020-01-01T00:00:00Z")
    rec = mapped({"name": "Acme", "domains": ["ACME.io", "acme.com"],
                  "createdAt": "2021-01-01T00:00:00Z"}, "company")
    plan = plan_update(co, rec, EXT)
    assert plan == UpdatePlan({"domains": [{"domain": "acme.io"}, {"domain": "acme.com"}]},
                              ("domains",))
    assert "company" not in plan.body


def test_rev_is_sent_only_when_asked_and_known() -> None:
    existing = customer(name="A", rev=7)
    plan = plan_update(existing, mapped({"name": "B"}), EXT, with_rev=True)
    assert plan is not None and plan.body == {"name": "B", "rev": 7}
    plan = plan_update(customer(name="A"), mapped({"name": "B"}), EXT, with_rev=True)
    assert plan is not None and "rev" not in plan.body
    assert plan_update(existing, mapped({"name": "A"}), EXT, with_rev=True) is None


def test_full_company_document_keeps_every_writable_attribute() -> None:
    co = company(name="Acme", externalId="c-1", domains=[{"domain": "acme.io"}],
                 emails=[{"type": "work", "email": "hi@acme.io", "verified": False, "id": None}],
                 employeeCount=5, tags=["t"], custom={"tierStr": "a", "goneStr": None},
                 createdAt="2024-01-01T00:00:00Z", displayName="Acme", rev=3)
    plan = plan_update(co, mapped({"externalId": "c-1", "name": "Acme Inc"}, "company"), EXT,
                       full_document=True, with_rev=True)
    assert plan is not None and plan.fields == ("name",)
    assert plan.body == {
        "name": "Acme Inc", "externalId": "c-1", "domains": [{"domain": "acme.io"}],
        "emails": [{"type": "work", "email": "hi@acme.io", "verified": False}],
        "employeeCount": 5, "tags": ["t"], "custom": {"tierStr": "a"}, "rev": 3,
    }
    assert plan_update(co, mapped({"name": "Acme"}, "company"), EXT, full_document=True) is None


def test_unknown_company_link_blocks_an_update_that_would_omit_it() -> None:
    from kustomer_activations.errors import UnknownCompanyLinkError

    hidden = Customer.from_api({"type": "customer", "id": "c1", "attributes": {"name": "A"}})
    assert not hidden.company_known and hidden.company_id is None
    assert plan_update(hidden, mapped({"name": "A"}), EXT) is None  # nothing to write: fine
    with pytest.raises(UnknownCompanyLinkError, match="companyExternalId"):
        plan_update(hidden, mapped({"name": "B"}), EXT)
    # A record that sets the link can always be written: the link is resent.
    plan = plan_update(hidden, mapped({"name": "A"}), EXT, company_id="co-5")
    assert plan == UpdatePlan({"company": "co-5"}, ("company",))
    plan = plan_update(hidden, mapped({"name": "B", "company": None}), EXT)
    assert plan == UpdatePlan({"name": "B", "company": None}, ("name", "company"))


@pytest.mark.parametrize(("resource", "link", "known"), [
    ({"relationships": {"company": {"data": {"type": "company", "id": "co-1"}}}}, "co-1", True),
    ({"relationships": {"company": {"data": None}}}, None, True),
    ({"attributes": {"company": "co-2"}}, "co-2", True),
    ({"attributes": {"company": None}}, None, True),
    ({"relationships": {"org": {"data": {"type": "org", "id": "o"}}}}, None, False),
    ({}, None, False),
])
def test_company_link_readings(resource: dict[str, Any], link: str | None, known: bool) -> None:
    c = Customer.from_api({"type": "customer", "id": "c1", "attributes": {}, **resource})
    assert (c.company_id, c.company_known) == (link, known)
