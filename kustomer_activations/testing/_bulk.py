"""Bulk jobs: accepted at once, applied later, outcomes per item.

A job is ``queued`` for ``bulk_delay`` seconds after submission, then
``running`` until ``submit + bulk_delay + n * bulk_item_delay``, then
``complete``. Items are applied at the completion time, lazily: before each
request the emulator applies every due job, in submission order. Each item
succeeds or fails on its own (``created`` / ``updated`` / ``error``); a
duplicate unique value — against stored data or an earlier item of the same
job — is a per-item ``duplicate detected`` error.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._store import Conflict, Invalid, NotFound, Store, iso

__all__ = ["BulkJob", "BulkJobs"]


@attrs.define
class BulkJob:
    """One submitted bulk request."""

    id: str
    kind: str            # customer | company
    operation: str       # create | update
    items: list[dict[str, Any]]
    client_refs: list[str | None]
    submitted: float
    starts: float
    completes: float
    results: list[dict[str, Any]] | None = None
    applied_at: float | None = None

    def status(self, now: float) -> str:
        """``queued``, ``running`` or ``complete`` at ``now``."""
        if self.results is not None:
            return "complete"
        return "queued" if now < self.starts else "running"

    def resource(self, now: float) -> dict[str, Any]:
        """The ``{"type": "bulk", ...}`` resource for responses."""
        status = self.status(now)
        plural = "customers" if self.kind == "customer" else "companies"
        attributes: dict[str, Any] = {
            "status": status,
            "count": len(self.items),
            "context": f"api.sobjects.{plural}.bulk-{self.operation}",
            "completed": status == "complete",
            "createdAt": iso(self.submitted),
            "updatedAt": iso(self.applied_at if self.applied_at is not None
                             else max(min(now, self.starts), self.submitted)),
            "ids": [],
        }
        if self.results is not None:
            counts = {"created": 0, "updated": 0, "error": 0}
            for r in self.results:
                counts[r["status"]] += 1
            attributes["counts"] = counts
            attributes["ids"] = [r["objectId"] for r in self.results if r["objectId"]]
        return {"type": "bulk", "id": self.id, "attributes": attributes,
                "links": {"self": f"/v1/bulk/{self.id}"}}


def _error(status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    return {"status": status, "code": code, "title": title, "detail": detail}


class BulkJobs:
    """All bulk jobs of the org."""

    def __init__(self, store: Store, bulk_delay: float, bulk_item_delay: float) -> None:
        self.store = store
        self.bulk_delay = bulk_delay
        self.bulk_item_delay = bulk_item_delay
        self.jobs: dict[str, BulkJob] = {}
        self._pending: list[BulkJob] = []

    def submit(self, kind: str, operation: str, items: list[dict[str, Any]],
               now: float) -> BulkJob:
        """Accept a validated job."""
        refs = [it.get("_clientRef") for it in items]
        clean = [{k: v for k, v in it.items() if k != "_clientRef"} for it in items]
        starts = now + self.bulk_delay
        job = BulkJob(self.store.new_id(), kind, operation, clean, refs, now, starts,
                      starts + len(items) * self.bulk_item_delay)
        self.jobs[job.id] = job
        self._pending.append(job)
        return job

    def apply_due(self, now: float) -> None:
        """Apply every job whose completion time has passed, in submission order."""
        if not self._pending:
            return
        still = []
        for job in self._pending:
            if job.completes <= now:
                self._apply(job)
            else:
                still.append(job)
        self._pending = still

    def _apply(self, job: BulkJob) -> None:
        at = job.completes
        results = []
        for item, ref in zip(job.items, job.client_refs, strict=True):
            out: dict[str, Any] = {"_clientRef": ref, "objectId": None, "status": "error",
                                   "error": None}
            try:
                if job.operation == "create":
                    rec = self.store.create(job.kind, item, at)
                    out.update(objectId=rec.id, status="created")
                else:
                    ident = item["id"]
                    out["objectId"] = ident
                    body = {k: v for k, v in item.items() if k != "id"}
                    self.store.update(job.kind, ident, body, at)
                    out["status"] = "updated"
            except Conflict as exc:
                out["error"] = _error(409, "duplicate", "duplicate detected", str(exc))
            except NotFound as exc:
                out["error"] = _error(404, "not_found", "not found",
                                      f"{job.kind} {exc} does not exist")
            except Invalid as exc:
                out["error"] = _error(400, "invalid", "invalid", exc.message)
            results.append(out)
        job.results = results
        job.applied_at = at
