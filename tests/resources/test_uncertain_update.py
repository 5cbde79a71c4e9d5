"""An update whose answer is lost or unreadable: settled by reading the object, the same way
by the single upsert and by the batch engine (``upsert.readback.send_update_flow``).

Each case runs through ``customers.upsert`` and through ``customers.upsert_many`` of one row
(a sync's last few writes go as single requests), in every flavor, with no automatic
retries: what is sent again is the reconciliation's decision alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kustomer_activations import Outcome
from kustomer_activations.testing import Fault, KustomerEmulator

from ..helpers import drive

MAY_HAVE = "may have been written"


@pytest.fixture
def setup(emu: KustomerEmulator) -> tuple[str, dict[str, Any]]:
    """A customer to update and the record that changes its name (the link set: safe under
    every reading)."""
    co = emu.seed_company({"name": "Acme", "externalId": "co-1"})
    cid = emu.seed_customer({"externalId": "u1", "name": "Old", "company": co,
                             "emails": [{"email": "u1@ex.com"}]})
    return cid, {"externalId": "u1", "name": "New", "company": co}


def _after_put(emu: KustomerEmulator, cid: str, fault: Fault, times: int | None = None) -> None:
    """``fault`` for reads of the customer once an update of it has been sent."""
    put = f"/v1/customers/{cid}"
    emu.faults.add(fault, times=times, match=lambda m, p: m == "GET" and p == put and any(
        r.method == "PUT" and r.path == put for r in emu.requests))


def _puts(emu: KustomerEmulator, cid: str) -> list[str | None]:
    return [r.fault for r in emu.requests if r.method == "PUT" and r.path == f"/v1/customers/{cid}"]


def _run(entry: str, flavor: str, client: Any, record: dict[str, Any]) -> Any:
    """The record's result, through the single upsert or a one-row ``upsert_many``."""
    if entry == "upsert":
        return drive(flavor, client, lambda c: c.customers.upsert(record, key="externalId"))
    report = drive(flavor, client, lambda c: c.customers.upsert_many(
        [record], key="externalId", keep="all"))
    assert report.rows == 1 and sum(report.counts.values()) == 1
    (result,) = report.row_results
    return result


ENTRIES = pytest.mark.parametrize("entry", ["upsert", "upsert_many"])


@pytest.fixture
def client(new_eclient: Callable[..., Any]) -> Any:
    return new_eclient(max_retries=0)


@ENTRIES
def test_an_applied_update_whose_answer_is_lost_is_read_and_not_sent_again(
    entry: str, flavor: str, emu: KustomerEmulator, client: Any, setup: tuple[str, dict[str, Any]]
) -> None:
    cid, record = setup
    emu.faults.add(Fault.lost_response(), match=f"PUT /v1/customers/{cid}")
    result = _run(entry, flavor, client, record)
    assert result.outcome is Outcome.UPDATED, result.describe()
    assert result.id == cid and "name" in result.fields_written
    assert emu.customers[cid]["name"] == "New"
    assert _puts(emu, cid) == ["lost_response"]


@ENTRIES
def test_an_update_not_applied_is_sent_once_more(
    entry: str, flavor: str, emu: KustomerEmulator, client: Any, setup: tuple[str, dict[str, Any]]
) -> None:
    cid, record = setup
    emu.faults.add(Fault.timeout(), match=f"PUT /v1/customers/{cid}")
    result = _run(entry, flavor, client, record)
    assert result.outcome is Outcome.UPDATED, result.describe()
    assert emu.customers[cid]["name"] == "New"
    assert _puts(emu, cid) == ["timeout", None]


@ENTRIES
def test_an_update_unanswered_twice_is_failed_as_may_have_been_written(
    entry: str, flavor: str, emu: KustomerEmulator, client: Any, setup: tuple[str, dict[str, Any]]
) -> None:
    cid, record = setup
    emu.faults.add(Fault.timeout(), match=f"PUT /v1/customers/{cid}", times=2)
    result = _run(entry, flavor, client, record)
    assert result.outcome is Outcome.FAILED, result.describe()
    assert MAY_HAVE in (result.reason or ""), result.reason
    assert result.error is not None
    assert emu.customers[cid]["name"] == "Old"
    assert _puts(emu, cid) == ["timeout", "timeout"]


@ENTRIES
def test_an_unreadable_object_after_an_uncertain_update_is_failed_as_may_have_been_written(
    entry: str, flavor: str, emu: KustomerEmulator, client: Any, setup: tuple[str, dict[str, Any]]
) -> None:
    cid, record = setup
    emu.faults.add(Fault.lost_response(), match=f"PUT /v1/customers/{cid}")
    _after_put(emu, cid, Fault.status(500))
    result = _run(entry, flavor, client, record)
    # Kustomer has the update, but nothing the client read says so: never "updated" on a guess,
    # never "rejected" or a plain failure that hides the write.
    assert result.outcome is Outcome.FAILED, result.describe()
    assert MAY_HAVE in (result.reason or ""), result.reason
    assert emu.customers[cid]["name"] == "New"
    assert _puts(emu, cid) == ["lost_response"]


@ENTRIES
def test_an_object_gone_after_an_uncertain_update_is_failed_as_not_written(
    entry: str, flavor: str, emu: KustomerEmulator, client: Any, setup: tuple[str, dict[str, Any]]
) -> None:
    cid, record = setup
    emu.faults.add(Fault.timeout(), match=f"PUT /v1/customers/{cid}")
    _after_put(emu, cid, Fault.status(404))
    result = _run(entry, flavor, client, record)
    assert result.outcome is Outcome.FAILED, result.describe()
    assert "not written" in (result.reason or "") and MAY_HAVE not in (result.reason or "")
    assert _puts(emu, cid) == ["timeout"]


@pytest.mark.parametrize("fault, singles", [(Fault.lost_response(), 0), (Fault.timeout(), 8)])
def test_a_bulk_update_whose_answer_is_lost_is_settled_row_by_row(
    flavor: str, emu: KustomerEmulator, client: Any, fault: Fault, singles: int
) -> None:
    # Enough rows for a bulk job; its answer lost after it ran (each row read, none sent
    # again) or before it ran (each row read, then sent once more on its own).
    co = emu.seed_company({"name": "Acme", "externalId": "co-1"})
    ids = [emu.seed_customer({"externalId": f"u{i}", "name": "Old", "company": co})
           for i in range(8)]
    emu.faults.add(fault, match="PUT /v1/customers/bulk")
    rows = [{"externalId": f"u{i}", "name": f"New {i}", "company": co} for i in range(8)]
    report = drive(flavor, client, lambda c: c.customers.upsert_many(
        rows, key="externalId", keep="all"))
    assert [r.outcome for r in report.row_results] == [Outcome.UPDATED] * 8, report.summary()
    assert [emu.customers[cid]["name"] for cid in ids] == [f"New {i}" for i in range(8)]
    assert [r.fault for r in emu.requests if r.method == "PUT" and r.path.endswith("/bulk")] == [
        fault.label]
    assert sum(r.method == "PUT" and not r.path.endswith("/bulk") for r in emu.requests) == singles
