"""The reliability suite's harness: emulators, clients, rows, and runs that never lose an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kustomer_activations import SyncAbortedError, SyncReport, UpsertResult
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, link_hidden, make_client
from ._invariants import Verdict, check_single, check_sync, snapshot

__all__ = [
    "CUSTOM",
    "KEYS",
    "LINKED_COMPANY",
    "Run",
    "check_run",
    "link_rows",
    "new_client",
    "new_emulator",
    "rows_for",
    "seed",
    "sync",
    "upsert_one",
    "write_requests",
]

CUSTOM = "accountStr"
KEYS = ("externalId", "email", f"custom.{CUSTOM}")
#: The company rows link where no customer answer shows the link (see :func:`link_rows`).
LINKED_COMPANY = "co-h"


def new_emulator(**options: Any) -> KustomerEmulator:
    """An org on a virtual clock with the custom attributes the rows use."""
    options.setdefault("clock", VirtualClock())
    emu = KustomerEmulator(**options)
    emu.define_custom_attribute("customer", CUSTOM)
    emu.define_custom_attribute("customer", "ltvNum")
    return emu


def new_client(flavor: str, emu: KustomerEmulator, transport: Any = None, **options: Any) -> Any:
    """A client of ``flavor`` talking to ``emu`` (through ``transport`` when given)."""
    return make_client(flavor, transport=transport if transport is not None else emu.transport,
                       base_url=emu.base_url, clock=emu.clock, **options)


def rows_for(n: int, start: int = 0, *, shape: str = "all", tag: str = "") -> list[dict[str, Any]]:
    """Kustomer-shaped rows. ``shape``: ``all`` (externalId, email, custom), ``email``
    (email and custom: no externalId), ``custom`` (the custom key alone: no unique anchor)."""
    out: list[dict[str, Any]] = []
    for i in range(start, start + n):
        row: dict[str, Any] = {"name": f"Customer {i}{tag}"}
        if shape == "all":
            row["externalId"] = f"ext-{i}"
        if shape in ("all", "email"):
            row["emails"] = [{"email": f"c{i}@example.com"}]
        row["custom"] = {CUSTOM: f"acct-{i}"}
        out.append(row)
    return out


def link_rows(emu: KustomerEmulator, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` as they must be to be updatable under ``emu``'s readings.

    Where no customer answer shows the company link (``company_link="hidden"``, part
    of ``Readings.strictest()``), the SDK updates a customer only when the row sets
    the link itself, else the update would unlink it (docs/compatibility.rst): each
    row then gets ``companyExternalId`` :data:`LINKED_COMPANY`, a company seeded here
    once. Under any other reading the rows are returned unchanged.
    """
    if not link_hidden(emu):
        return rows
    if not any(c.get("externalId") == LINKED_COMPANY for c in emu.companies.all()):
        emu.seed_company({"name": "Linked Co", "externalId": LINKED_COMPANY})
    return [dict(row, companyExternalId=LINKED_COMPANY) for row in rows]


def _company_id(emu: KustomerEmulator, external_id: Any) -> str:
    ids = [c["id"] for c in emu.companies.all() if c.get("externalId") == external_id]
    if len(ids) != 1:
        raise ValueError(f"{len(ids)} companies have externalId {external_id!r}: seed exactly one")
    return str(ids[0])


def seed(emu: KustomerEmulator, rows: Sequence[Mapping[str, Any]], **changes: Any) -> list[str]:
    """Store older versions of ``rows`` (``changes`` applied, default an old name).

    A row's ``companyExternalId`` becomes the stored customer's company link (the
    company must be seeded), so the store agrees with the input on the link."""
    ids = []
    for row in rows:
        doc = {k: v for k, v in row.items() if k != "companyExternalId"}
        if row.get("companyExternalId") is not None:
            doc["company"] = _company_id(emu, row["companyExternalId"])
        doc.update(changes or {"name": f"Old {row['name']}"})
        ids.append(emu.seed_customer(doc))
    return ids


def write_requests(emu: KustomerEmulator) -> int:
    """Write requests the emulator received (creates, updates, bulk), searches excluded."""
    return sum(n for endpoint, n in emu.counts_by_endpoint().items()
               if endpoint.split()[0] in ("POST", "PUT", "PATCH") and "search" not in endpoint)


@dataclass
class Run:
    """What one sync (or upsert) gave back: its report/results, or what it raised."""

    rows: list[dict[str, Any]]
    key: str
    before: dict[str, dict[str, Any]]
    report: SyncReport | None = None
    results: list[UpsertResult] | None = None
    error: BaseException | None = None
    elapsed: float = 0.0
    single: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.error is not None:
            return f"raised {type(self.error).__name__}: {self.error}"
        if self.report is not None:
            return self.report.summary()
        return "; ".join(r.describe() for r in self.results or [])


def sync(flavor: str, client: Any, emu: KustomerEmulator, rows: list[dict[str, Any]], key: str,
         *, via: str = "many", **options: Any) -> Run:
    """Run ``upsert_many`` (``via="many"``) or ``stream_upsert`` (``via="stream"``).

    Any exception is caught and kept in ``Run.error`` with whatever was
    reported before it, so the checks still see every row accounted for.
    """
    run = Run(rows=rows, key=key, before=snapshot(emu))
    start = emu.clock.now()
    if via == "many":
        report = SyncReport()
        run.report = report
        try:
            drive(flavor, client, lambda c: c.customers.upsert_many(rows, key=key, report=report,
                                                                    **options))
        except Exception as exc:
            run.error = exc
    elif via == "stream":
        collected: list[UpsertResult] = []
        run.results = collected
        try:
            if flavor == "sync":
                with client.customers.stream_upsert(rows, key=key, **options) as results:
                    collected.extend(results)
            else:
                async def main(c: Any) -> None:
                    async with c.customers.stream_upsert(rows, key=key, **options) as results:
                        async for result in results:
                            collected.append(result)

                drive(flavor, client, main)
        except Exception as exc:
            run.error = exc
    else:
        raise ValueError(via)
    run.elapsed = emu.clock.now() - start
    return run


def upsert_one(flavor: str, client: Any, emu: KustomerEmulator, row: dict[str, Any], key: str,
               **options: Any) -> Run:
    """Run one ``client.customers.upsert``; an exception is kept in ``Run.error``."""
    run = Run(rows=[row], key=key, before=snapshot(emu), single=True)
    start = emu.clock.now()
    try:
        result = drive(flavor, client, lambda c: c.customers.upsert(row, key=key, **options))
        run.results = [result]
    except Exception as exc:
        run.error = exc
    run.elapsed = emu.clock.now() - start
    return run


def check_run(emu: KustomerEmulator, run: Run, label: str = "") -> Verdict:
    """The invariants of ``_invariants`` for this run (an aborted sync's report included)."""
    name = label or ("upsert" if run.single else "sync")
    if run.single:
        result = run.results[0] if run.results else None
        return check_single(emu, run.rows[0], run.key, before=run.before, result=result,
                            error=run.error if result is None else None, label=name)
    report = run.report
    if isinstance(run.error, SyncAbortedError):
        report = run.error.report
    partial = run.error is not None
    if report is None and run.results is None:
        raise AssertionError(f"{name}: nothing reported")
    return check_sync(emu, run.rows, run.key, before=run.before, report=report,
                      results=run.results, partial=partial, label=name)
