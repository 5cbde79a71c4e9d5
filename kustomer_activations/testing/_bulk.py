"""Bulk jobs: accepted at once, applied later, outcomes per item.

A job is ``queued`` for ``bulk_delay`` seconds after submission, then
``running`` until ``submit + bulk_delay + n * bulk_item_delay``, then
``complete``. Items are applied at the completion time, lazily: before each
request the emulator applies every due job, in submission order. Each item
succeeds or fails on its own (``created`` / ``updated`` / ``error``); a
duplicate unique value — against stored data or an earlier item of the same
job — is a per-item ``duplicate detected`` error, a stale ``rev`` (under the
``rev="enforced"`` reading) a ``conflict: stale rev ...`` one.

The per-item outcomes are answered in one of two shapes (the ``bulk_results``
reading): :meth:`BulkJob.documented` (the developer guide's list of batches)
or :meth:`BulkJob.jsonapi`. Under the ``bulk_job_ttl`` reading a job is
forgotten that many seconds after it completed.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._store import Conflict, Invalid, NotFound, StaleRev, Store, iso

__all__ = ["ORG_ID", "USER_ID", "BulkJob", "BulkJobs"]

ORG_ID = "5f0000000000000000000001"
"""The emulated org's id."""
USER_ID = "5f0000000000000000000002"
"""The id of the (API) user every write is attributed to."""


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
    # Per item: the documented error string (None on success).
    error_texts: list[str | None] = attrs.field(factory=list)

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
        attributes["v2"] = True
        return {"type": "bulk", "id": self.id, "attributes": attributes,
                "relationships": {
                    "org": {"links": {"self": f"/v1/orgs/{ORG_ID}"},
                            "data": {"type": "org", "id": ORG_ID}},
                    "createdBy": {"links": {"self": f"/v1/users/{USER_ID}"},
                                  "data": {"type": "user", "id": USER_ID}}},
                "links": {"self": f"/v1/bulk/{self.id}"}}

    def documented(self) -> list[dict[str, Any]]:
        """The batches answer as the developer guide shows it: ``[]`` until the job
        is complete, then one batch ``{"successCount", "failureCount",
        "objectIds", "results"}``; each result has ``_clientRef`` (when the item
        had one), ``objectId`` (on success), ``status`` and ``error`` (a string,
        on error), in item order."""
        if self.results is None:
            return []
        results: list[dict[str, Any]] = []
        object_ids: list[str] = []
        for r, text in zip(self.results, self.error_texts, strict=True):
            out: dict[str, Any] = {}
            if r["_clientRef"] is not None:
                out["_clientRef"] = r["_clientRef"]
            if r["status"] == "error":
                out.update(status="error", error=text)
            else:
                out.update(objectId=r["objectId"], status=r["status"])
                object_ids.append(r["objectId"])
            results.append(out)
        return [{"successCount": len(object_ids), "failureCount": len(results) - len(object_ids),
                 "objectIds": object_ids, "results": results}]

    def jsonapi(self, now: float) -> dict[str, Any]:
        """The batches answer in a JSON:API envelope (``bulk_results="jsonapi"``):
        ``error`` is an object ``{"status", "code", "title", "detail"}``."""
        items = [] if self.results is None else [
            {"index": i, **r} for i, r in enumerate(self.results)]
        status = self.status(now)
        batch = {"type": "bulk_batch", "id": f"{self.id}-1",
                 "attributes": {"status": status, "count": len(self.items), "items": items}}
        return {"data": [batch], "meta": {"count": len(self.items), "status": status},
                "links": {"self": f"/v1/bulk/{self.id}/batches"}}


def _error(status: int, code: str, title: str, detail: str) -> dict[str, Any]:
    return {"status": status, "code": code, "title": title, "detail": detail}


class BulkJobs:
    """All bulk jobs of the org."""

    def __init__(self, store: Store, bulk_delay: float, bulk_item_delay: float,
                 ttl: float | None = None) -> None:
        self.store = store
        self.ttl = ttl
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

    def get(self, ident: str, now: float) -> BulkJob | None:
        """The job, or ``None`` when unknown or expired (``ttl`` seconds after it
        completed)."""
        job = self.jobs.get(ident)
        if job is None:
            return None
        if self.ttl is not None and job.applied_at is not None \
                and now - job.applied_at >= self.ttl:
            del self.jobs[ident]
            return None
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
        texts: list[str | None] = []
        for item, ref in zip(job.items, job.client_refs, strict=True):
            out: dict[str, Any] = {"_clientRef": ref, "objectId": None, "status": "error",
                                   "error": None}
            text: str | None = None
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
                text = "duplicate detected"
            except NotFound as exc:
                out["error"] = _error(404, "not_found", "not found",
                                      f"{job.kind} {exc} does not exist")
                text = "not found"
            except StaleRev as exc:
                out["error"] = _error(409, "conflict", "conflict", str(exc))
                text = exc.bulk_text
            except Invalid as exc:
                out["error"] = _error(400, "invalid", "invalid", exc.message)
                text = f"invalid: {exc.message}"
            results.append(out)
            texts.append(text)
        job.results = results
        job.error_texts = texts
        job.applied_at = at
