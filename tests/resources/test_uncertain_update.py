"""An update whose answer is lost or unreadable: settled by reading the object, the same way
by the single upsert and by the batch engine (``upsert.readback.send_update_flow``).

Each case runs through ``customers.upsert`` and through ``customers.upsert_many`` of one row
(a sync's last few writes go as single requests), in every flavor, with no automatic
retries: what is sent again is the reconciliation's decision alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
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


@attrs.frozen
class Case:
    """A fault on the update (and on reads of the object after it), and how the row ends."""

    put: Fault
    outcome: Outcome
    name: str | None  # the customer's name afterwards (None: not checked)
    puts: list[str | None]  # the fault of each PUT sent
    put_times: int = 1
    read: Fault | None = None
    reason: str = ""  # in the reason of a failed row
    not_in_reason: str = ""
    error: bool = False  # the failed row carries the error
    fields: bool = False  # the updated row names the object and the fields written


CASES = {
    # Applied, answer lost: read back, not sent again.
    "applied": Case(Fault.lost_response(), Outcome.UPDATED, "New", ["lost_response"],
                    fields=True),
    # Not applied: read back, sent once more.
    "not applied": Case(Fault.timeout(), Outcome.UPDATED, "New", ["timeout", None]),
    "unanswered twice": Case(Fault.timeout(), Outcome.FAILED, "Old", ["timeout", "timeout"],
                             put_times=2, reason=MAY_HAVE, error=True),
    # Kustomer has the update, but nothing the client read says so: never "updated" on a
    # guess, never "rejected" or a plain failure that hides the write.
    "unreadable after": Case(Fault.lost_response(), Outcome.FAILED, "New", ["lost_response"],
                             read=Fault.status(500), reason=MAY_HAVE),
    "gone after": Case(Fault.timeout(), Outcome.FAILED, None, ["timeout"],
                       read=Fault.status(404), reason="not written", not_in_reason=MAY_HAVE),
}


@ENTRIES
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_uncertain_update_ends_with_one_true_outcome(
    entry: str, flavor: str, emu: KustomerEmulator, client: Any,
    setup: tuple[str, dict[str, Any]], case: Case,
) -> None:
    cid, record = setup
    emu.faults.add(case.put, match=f"PUT /v1/customers/{cid}", times=case.put_times)
    if case.read is not None:
        _after_put(emu, cid, case.read)
    result = _run(entry, flavor, client, record)
    assert result.outcome is case.outcome, result.describe()
    if case.fields:
        assert result.id == cid and "name" in result.fields_written
    if case.error:
        assert result.error is not None
    assert case.reason in (result.reason or ""), result.reason
    assert not case.not_in_reason or case.not_in_reason not in (result.reason or "")
    if case.name is not None:
        assert emu.customers[cid]["name"] == case.name
    assert _puts(emu, cid) == case.puts


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
