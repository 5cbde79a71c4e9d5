"""The SDK under every reading of Kustomer's unclear behaviour (KUSTOMER_API.md,
"Where the public material disagrees").

Each test sets the emulator to answer one way public material reads, runs
the public API (single upsert and batch, sync/asyncio/trio), and checks what
a user's org would hold: no duplicate, no lost company link, no wiped value,
one true outcome per row. Each of these scenarios damaged data before the
SDK learned to read back what an answer does not show.
"""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_activations import FieldMapping, Outcome, SyncReport
from kustomer_activations.testing import KustomerEmulator, Readings, VirtualClock

from ..helpers import drive, make_client

CUSTOM = "custom.accountStr"


def _emulator(readings: Any = None, **options: Any) -> KustomerEmulator:
    emu = KustomerEmulator(clock=VirtualClock(), readings=readings, **options)
    for name in ("accountStr", "tierStr", "noteStr", "bioTxt"):
        emu.define_custom_attribute("customer", name)
    emu.define_custom_attribute("company", "dunsStr")
    emu.define_custom_attribute("company", "segmentStr")
    return emu


def _client(flavor: str, emu: KustomerEmulator, **options: Any) -> Any:
    return make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock,
                       **options)


def _sync(flavor: str, client: Any, rows: Any, *, resource: str = "customers",
          **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client,
                               lambda c: getattr(c, resource).upsert_many(rows, **kw))
    return report


def _one(flavor: str, client: Any, row: Any, *, resource: str = "customers", **kw: Any) -> Any:
    return drive(flavor, client, lambda c: getattr(c, resource).upsert(row, **kw))


def _no_duplicates(emu: KustomerEmulator, field: str = "accountStr") -> None:
    values = [c.get("custom", {}).get(field) for c in emu.customers.all()]
    values = [v for v in values if v is not None]
    assert len(values) == len(set(values)), "a custom key value is held twice"


def _seed_linked(emu: KustomerEmulator, n: int) -> tuple[str, list[str]]:
    company = emu.seed_company({"name": "Acme Corp", "externalId": "co-1"})
    ids = [emu.seed_customer({"name": f"Old {i}", "externalId": f"e-{i}", "company": company,
                              "emails": [{"email": f"p{i}@example.com"}],
                              "custom": {"accountStr": f"a-{i}", "noteStr": f"keep {i}"}})
           for i in range(n)]
    return company, ids


# -- search hits with few attributes -------------------------------------------------------

@pytest.mark.parametrize("key", [CUSTOM, "externalId", "email"])
def test_minimal_search_hits_are_confirmed_not_missed(flavor: str, key: str) -> None:
    emu = _emulator({"search_hits": "minimal"})
    company, ids = _seed_linked(emu, 5)
    client = _client(flavor, emu)
    rows = [{"externalId": f"e-{i}", "name": f"New {i}", "emails": [{"email": f"p{i}@example.com"}],
             "custom": {"accountStr": f"a-{i}"}} for i in range(5)]
    report = _sync(flavor, client, rows, key=key)
    assert report.updated == 5 and report.ok, report.summary()
    assert len(emu.customers.all()) == 5
    _no_duplicates(emu)
    single = _one(flavor, client, {"custom": {"accountStr": "a-0"}, "name": "Single"}, key=CUSTOM)
    assert single.outcome is Outcome.UPDATED and single.id == ids[0]
    assert len(emu.customers.all()) == 5
    assert all(emu.customers[i]["company"] == company for i in ids)


# -- where the company link lives ----------------------------------------------------------

@pytest.mark.parametrize("link", ["relationships", "attribute"])
def test_updates_keep_a_company_link_the_answers_show(flavor: str, link: str) -> None:
    emu = _emulator({"company_link": link})
    company, ids = _seed_linked(emu, 5)
    client = _client(flavor, emu)
    rows = [{"externalId": f"e-{i}", "name": f"New {i}"} for i in range(5)]
    report = _sync(flavor, client, rows)
    assert report.updated == 5, report.summary()
    single = _one(flavor, client, {"externalId": "e-0", "name": "Single"})
    assert single.outcome is Outcome.UPDATED
    assert [emu.customers[i]["company"] for i in ids] == [company] * 5


def test_hidden_company_link_is_never_unlinked(flavor: str) -> None:
    emu = _emulator({"company_link": "hidden"})
    company, ids = _seed_linked(emu, 5)
    client = _client(flavor, emu)
    rows = [{"externalId": f"e-{i}", "name": f"New {i}"} for i in range(5)]
    report = _sync(flavor, client, rows)
    assert report.counts[Outcome.FAILED] == 5 and report.updated == 0, report.summary()
    assert all("companyExternalId" in (f.reason or "") for f in report.failures)
    single = _one(flavor, client, {"externalId": "e-0", "name": "Single"})
    assert single.outcome is Outcome.FAILED and "companyExternalId" in (single.reason or "")
    assert [emu.customers[i]["company"] for i in ids] == [company] * 5
    assert [emu.customers[i]["name"] for i in ids] == [f"Old {i}" for i in range(5)]
    # Unchanged rows need no write, so no link is at risk: they stay "unchanged".
    same = _sync(flavor, client, [{"externalId": f"e-{i}", "name": f"Old {i}"} for i in range(5)])
    assert same.unchanged == 5, same.summary()
    # Mapping the link makes every update safe: it is resent.
    mapping = FieldMapping({"externalId": "id", "name": "name", "companyExternalId": "co"},
                           object_type="customer")
    linked = [{"id": f"e-{i}", "name": f"New {i}", "co": "co-1"} for i in range(5)]
    report = _sync(flavor, client, linked, mapping=mapping)
    assert report.updated == 5 and report.ok, report.summary()
    assert [emu.customers[i]["name"] for i in ids] == [f"New {i}" for i in range(5)]
    assert [emu.customers[i]["company"] for i in ids] == [company] * 5


# -- search forms Kustomer may refuse ------------------------------------------------------

@pytest.mark.parametrize("search_in", ["refused", "max:20", "max:100"])
@pytest.mark.parametrize("key", [CUSTOM, "externalId"])
def test_refused_in_searches_step_down_once_per_sync(flavor: str, search_in: str, key: str) -> None:
    emu = _emulator({"search_in": search_in})
    for i in range(0, 200, 2):
        emu.seed_customer({"externalId": f"r-{i}", "name": "old", "custom": {"accountStr": f"a-{i}"}})
    client = _client(flavor, emu)
    rows = [{"externalId": f"r-{i}", "name": f"Row {i}", "custom": {"accountStr": f"a-{i}"}}
            for i in range(200)]
    report = _sync(flavor, client, rows, key=key)
    assert (report.created, report.updated) == (100, 100) and report.ok, report.summary()
    assert len(emu.customers.all()) == 200
    _no_duplicates(emu)
    assert report.notes and "refused" in report.notes[0]
    searches = emu.count("POST", "/v1/customers/search")
    gets = emu.count("GET", "/v1/customers/externalId=")
    assert searches + gets <= 30, (searches, gets)  # not one lookup per row


def test_company_external_id_not_searchable_uses_direct_lookups(flavor: str) -> None:
    emu = _emulator({"company_externalId_searchable": False})
    existing = emu.seed_company({"name": "Old name", "externalId": "c-0"})
    client = _client(flavor, emu)
    companies = [{"externalId": f"c-{i}", "name": f"Company {i}"} for i in range(6)]
    report = _sync(flavor, client, companies, resource="companies")
    assert (report.created, report.updated) == (5, 1) and report.ok, report.summary()
    assert emu.companies[existing]["name"] == "Company 0"
    mapping = FieldMapping({"externalId": "id", "name": "name", "companyExternalId": "co"},
                           object_type="customer")
    people = [{"id": f"p-{i}", "name": f"P {i}", "co": f"c-{i % 6}"} for i in range(12)]
    report = _sync(flavor, client, people, mapping=mapping)
    assert report.created == 12 and report.ok, report.summary()
    assert all(c["company"] for c in emu.customers.all())


def test_short_search_pages_are_followed_to_the_end(flavor: str) -> None:
    emu = _emulator({"search_page_cap": 100})
    for i in range(400):
        emu.seed_customer({"name": "old", "custom": {"accountStr": f"a-{i}"}})
    client = _client(flavor, emu)
    rows = [{"name": f"Row {i}", "custom": {"accountStr": f"a-{i}"}} for i in range(400)]
    report = _sync(flavor, client, rows, key=CUSTOM)
    assert report.updated == 400 and report.created == 0, report.summary()
    assert len(emu.customers.all()) == 400


# -- request size -------------------------------------------------------------------------

def _big_rows(n: int) -> list[dict[str, Any]]:
    return [{"externalId": f"b-{i}", "name": f"Big {i}",
             "custom": {"bioTxt": ("x" * 1000), "noteStr": "y" * 1000, "tierStr": "z" * 500}}
            for i in range(n)]


def test_bulk_requests_are_packed_under_the_byte_budget(flavor: str) -> None:
    emu = _emulator({"max_body_bytes": 100_000})
    report = _sync(flavor, _client(flavor, emu), _big_rows(300))
    assert report.created == 300 and report.ok, report.summary()
    assert not [r for r in emu.requests if r.status == 413]


def test_a_413_splits_the_request_and_no_row_is_misreported(flavor: str) -> None:
    # Kustomer's real limit lower than the SDK's budget: the first bulk of each size is refused.
    emu = _emulator({"max_body_bytes": 60_000})
    report = _sync(flavor, _client(flavor, emu), _big_rows(300))
    assert report.created == 300 and report.ok, report.summary()
    assert len(emu.customers.all()) == 300
    assert [r for r in emu.requests if r.status == 413]  # it did happen, and was handled


def test_a_failure_after_accepted_jobs_still_reads_those_jobs(flavor: str) -> None:
    from kustomer_activations.testing import Fault

    emu = _emulator()
    # The 3rd bulk POST of the chunk is refused outright (a 4xx that is not a 400).
    calls = {"n": 0}

    def third(method: str, path: str) -> bool:
        if method == "POST" and path == "/v1/customers/bulk":
            calls["n"] += 1
            return calls["n"] == 3
        return False

    emu.faults.add(Fault.status(422), match=third)
    rows = [{"externalId": f"x-{i}", "name": f"X {i}"} for i in range(500)]
    report = _sync(flavor, _client(flavor, emu), rows)
    assert report.created == 400 and report.counts[Outcome.REJECTED] == 100, report.summary()
    stored = {c["externalId"] for c in emu.customers.all()}
    assert len(stored) == 400
    rejected = {f.key_value for f in report.failures}
    assert not (rejected & stored)  # no "rejected" row was written


# -- partial-update semantics ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_unmapped_custom_values_survive_either_update_semantics(flavor: str, mode: str) -> None:
    emu = _emulator({"custom_update": mode})
    _, ids = _seed_linked(emu, 4)
    client = _client(flavor, emu)
    rows = [{"externalId": f"e-{i}", "custom": {"accountStr": f"changed-{i}"}} for i in range(3)]
    report = _sync(flavor, client, rows)
    assert report.updated == 3, report.summary()
    single = _one(flavor, client, {"externalId": "e-3", "custom": {"accountStr": "changed-3"}})
    assert single.outcome is Outcome.UPDATED
    for i, cid in enumerate(ids):
        assert emu.customers[cid]["custom"] == {"accountStr": f"changed-{i}", "noteStr": f"keep {i}"}


@pytest.mark.parametrize("mode", ["partial", "replace"])
def test_company_documents_survive_either_put_semantics(flavor: str, mode: str) -> None:
    emu = _emulator({"company_update": mode})
    ids = [emu.seed_company({"name": f"Co {i}", "externalId": f"c-{i}", "domains": [
        {"domain": f"co{i}.io"}], "tags": ["vip"], "employeeCount": 10 + i,
        "custom": {"dunsStr": f"d-{i}", "segmentStr": "smb"}}) for i in range(4)]
    client = _client(flavor, emu)
    rows = [{"externalId": f"c-{i}", "name": f"Renamed {i}"} for i in range(3)]
    report = _sync(flavor, client, rows, resource="companies")
    assert report.updated == 3, report.summary()
    single = _one(flavor, client, {"externalId": "c-3", "name": "Renamed 3"}, resource="companies")
    assert single.outcome is Outcome.UPDATED
    for i, cid in enumerate(ids):
        doc = emu.companies[cid]
        assert doc["name"] == f"Renamed {i}"
        assert [d["domain"] for d in doc["domains"]] == [f"co{i}.io"]
        assert doc["tags"] == ["vip"] and doc["employeeCount"] == 10 + i
        assert doc["custom"] == {"dunsStr": f"d-{i}", "segmentStr": "smb"}


# -- bulk results and _clientRef ------------------------------------------------------------

@pytest.mark.parametrize("shape", ["documented", "jsonapi"])
@pytest.mark.parametrize("refs", ["all", "customer-create"])
def test_bulk_outcomes_read_under_every_result_shape(flavor: str, shape: str, refs: str) -> None:
    emu = _emulator({"bulk_results": shape, "client_ref_on": refs})
    emu.seed_customer({"name": "Holder", "emails": [{"email": "taken@example.com"}]})
    client = _client(flavor, emu)
    rows = [{"externalId": f"k-{i}", "name": f"K {i}"} for i in range(50)]
    rows[7]["emails"] = [{"email": "taken@example.com"}]  # refused item: duplicate email
    report = _sync(flavor, client, rows)
    assert report.created == 49 and report.counts[Outcome.REJECTED] == 1, report.summary()
    assert report.failures[0].row == 7
    changed = [dict(r, name=f"K2 {i}") for i, r in enumerate(rows) if i != 7]
    report = _sync(flavor, client, changed)
    assert report.updated == 49 and report.ok, report.summary()
    companies = [{"externalId": f"q-{i}", "name": f"Q {i}"} for i in range(30)]
    report = _sync(flavor, client, companies, resource="companies")
    assert report.created == 30 and report.ok, report.summary()
    report = _sync(flavor, client, [dict(c, name=c["name"] + "!") for c in companies],
                   resource="companies")
    assert report.updated == 30 and report.ok, report.summary()
    assert not [r for r in emu.requests if r.status == 400]


def test_expired_bulk_jobs_are_settled_by_lookups(flavor: str) -> None:
    emu = _emulator({"bulk_job_ttl": 0.5})
    report = _sync(flavor, _client(flavor, emu),
                   [{"externalId": f"t-{i}", "name": f"T {i}"} for i in range(250)])
    assert report.created == 250 and report.ok, report.summary()
    assert len(emu.customers.all()) == 250


# -- the index lags, and rev ----------------------------------------------------------------

def _other_writer_changes_note(emu: KustomerEmulator, ids: list[str]) -> None:
    """Another system edits an unmapped custom value just before our sync."""
    import httpx

    with httpx.Client(base_url=emu.base_url, transport=emu.transport,
                      headers={"Authorization": "Bearer other"}) as other:
        for i, cid in enumerate(ids):
            current = emu.customers[cid]
            custom = {**current["custom"], "noteStr": f"edited {i}"}
            response = other.put(f"/v1/customers/{cid}", json={
                "custom": custom, "company": current["company"]})
            assert response.status_code == 200


@pytest.mark.parametrize(("rev", "fresh_reads"), [("enforced", False), ("ignored", True)])
def test_stale_index_documents_are_never_written_back(flavor: str, rev: str,
                                                      fresh_reads: bool) -> None:
    emu = _emulator({"search_docs": "indexed", "rev": rev, "custom_update": "replace"},
                    search_lag=30.0)
    _, ids = _seed_linked(emu, 4)
    _other_writer_changes_note(emu, ids)  # the index still shows "keep i"
    client = _client(flavor, emu)
    rows = [{"custom": {"accountStr": f"a-{i}", "tierStr": "gold"}} for i in range(4)]
    report = _sync(flavor, client, rows, key=CUSTOM, fresh_reads=fresh_reads)
    assert report.updated == 4 and report.ok, report.summary()
    for i, cid in enumerate(ids):
        assert emu.customers[cid]["custom"] == {
            "accountStr": f"a-{i}", "noteStr": f"edited {i}", "tierStr": "gold"}


# -- everything at once ---------------------------------------------------------------------

def test_strictest_cold_warm_and_changed_syncs_hold_the_inputs_final_values(flavor: str) -> None:
    emu = _emulator("strictest", search_lag=1.0)
    assert emu.readings == Readings.strictest()
    client = _client(flavor, emu)
    companies = [{"externalId": f"co-{i}", "name": f"Company {i}", "custom": {"dunsStr": f"d{i}"}}
                 for i in range(20)]
    report = _sync(flavor, client, companies, resource="companies")
    assert report.created == 20 and report.ok, report.summary()
    mapping = FieldMapping({"externalId": "id", "name": "name", "email": "mail",
                            "companyExternalId": "co", "custom.accountStr": "acct",
                            "custom.tierStr": "tier"}, object_type="customer")
    people = [{"id": f"p-{i}", "name": f"Person {i}", "mail": f"p{i}@example.com",
               "co": f"co-{i % 20}", "acct": f"a-{i}", "tier": "bronze"} for i in range(600)]
    for key in ("externalId", "email", CUSTOM):
        report = _sync(flavor, client, people, key=key, mapping=mapping)
        assert report.ok and report.rows == 600, (key, report.summary())
        changed = [dict(p, tier="gold", co=f"co-{(i + 1) % 20}") if i % 10 == 0 else p
                   for i, p in enumerate(people)]
        report = _sync(flavor, client, changed, key=key, mapping=mapping)
        assert report.ok and report.updated >= 60, (key, report.summary())
        people = [dict(p, tier="bronze") for p in changed]
    stored = {c["externalId"]: c for c in emu.customers.all()}
    assert len(stored) == 600
    _no_duplicates(emu)
    company_ids = {c["externalId"]: cid for cid, c in emu.companies.items()}
    for p in changed:
        doc = stored[p["id"]]
        assert doc["custom"]["tierStr"] == p["tier"]
        assert doc["company"] == company_ids[p["co"]]
    assert len(emu.companies) == 20
    assert all(c["custom"] == {"dunsStr": f"d{c['externalId'][3:]}"} for c in emu.companies.values())


@pytest.mark.parametrize("key", ["externalId", CUSTOM])
def test_an_unreadable_hit_fails_only_the_rows_it_may_hold(flavor: str, key: str) -> None:
    from kustomer_activations.testing import Fault

    emu = _emulator({"search_hits": "minimal"})
    _, ids = _seed_linked(emu, 5)
    broken = ids[2]
    emu.faults.add(Fault.status(503), match=lambda m, p: m == "GET" and p.endswith(broken),
                   times=None)
    rows = [{"externalId": f"e-{i}", "name": f"New {i}", "custom": {"accountStr": f"a-{i}"}}
            for i in range(5)]
    report = _sync(flavor, _client(flavor, emu, max_retries=1), rows, key=key)
    assert report.created == 0 and len(emu.customers.all()) == 5, report.summary()
    failed = {f.row for f in report.failures}
    if key == "externalId":
        # Unique key: the four values other objects hold are settled; only row 2 is unknown.
        assert failed == {2} and report.updated == 4, report.summary()
    else:
        # A custom value is not unique: the unreadable hit may hold any value of that search.
        assert failed == {0, 1, 2, 3, 4}, report.summary()
    assert all("could not be read" in (f.reason or "") and "not written" in (f.reason or "")
               for f in report.failures)
    assert emu.customers[broken]["name"] == "Old 2"
