"""One chunk of rows, from key resolution to a result per row, as a flow.

A chunk is up to a few hundred rows that passed local validation. Its flow:

1. resolve company links (``companyExternalId`` → id), batched and cached;
2. resolve sync keys with one search per chunk (``in`` over every value),
   confirming each hit client-side (the index is not exact and may lag);
3. decide per row: create, update (minimal body), unchanged, skipped, ambiguous;
4. write with the bulk endpoints (≤ 100 items, ``_clientRef`` on each) or
   single requests when that is cheaper, poll the jobs adaptively, and map
   every item's outcome back to its row;
5. reconcile whatever is uncertain (a duplicate on create, a lost answer, an
   item without an outcome) by looking the key up again, never by blindly
   writing again.

Every row leaves with exactly one :class:`~kustomer_activations.UpsertResult`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .._core.effects import Flow, Sleep
from .._core.effects import FlowCancelled as Cancelled
from .._core.request import Core, RequestSpec, path_segment, request_flow
from ..errors import (
    APIConnectionError,
    APIError,
    BadRequestError,
    ErrorDetail,
    InternalServerError,
    InvalidRecordError,
    KustomerError,
    reason_of,
)
from ..mapping import MappedRecord
from ..merge import plan_create, plan_update
from ..models import SyncKey
from ..resources import _flows
from ..resources._flows import FATAL_ERRORS, Caches, Mode, failure_outcome
from ..resources._kinds import COMPANY, ObjectKind
from ..results import Outcome, UpsertResult

__all__ = ["BulkTiming", "ChunkContext", "Row", "chunk_flow"]

Op = Literal["create", "update"]
#: Array fields Kustomer replaces on update: a diff on stale search data could drop items.
ARRAY_FIELDS = frozenset({"emails", "phones", "tags", "urls", "socials", "locations", "domains",
                          "sharedEmails", "sharedPhones", "externalIds"})
_DONE_STATUSES = frozenset({"complete", "completed", "done", "finished", "success", "succeeded"})
_FAILED_STATUSES = frozenset({"failed", "error", "errored", "cancelled", "canceled"})
_POINTER_INDEX = re.compile(r"^/?(?:data/)?(\d+)(?:/|$)")


class BulkTiming:
    """How long bulk jobs take, learned as the sync goes, to poll just once or twice.

    The first poll waits for the expected duration; a job found complete
    there shortens the estimate, one found running lengthens it.
    """

    def __init__(self, initial: float = 2.0) -> None:
        self._lock = threading.Lock()
        self.estimate = initial
        self.polls = 0
        self.jobs = 0

    def first_wait(self) -> float:
        """Seconds to wait after submitting before the first status poll."""
        return self.estimate

    def observe(self, *, first_poll_done: bool, polls: int) -> None:
        """Adapt the estimate after a job finished."""
        with self._lock:
            self.jobs += 1
            self.polls += polls
            factor = 0.95 if first_poll_done else 1.3
            self.estimate = min(60.0, max(0.1, self.estimate * factor))


@attrs.define(kw_only=True, eq=False)
class Row:
    """One input row on its way through the engine."""

    index: int
    source: Mapping[str, Any]
    mapped: MappedRecord
    key_value: str
    raw_key: Any
    company_id: str | None = None
    result: UpsertResult | None = None
    sent: bool = False


@attrs.define(kw_only=True, eq=False)
class ChunkContext:
    """What every chunk of one sync shares."""

    core: Core
    caches: Caches
    kind: ObjectKind
    key: SyncKey
    mode: Mode
    dry_run: bool = False
    bulk_size: int = 100
    single_threshold: int = 2
    timing: BulkTiming = attrs.field(factory=BulkTiming)
    bulk_timeout: float = 900.0
    reconcile_waits: Sequence[float] = (0.0, 2.0, 5.0)
    lookup: Literal["search", "direct"] = "search"
    search_batch: int = 500
    fatal: BaseException | None = None


@attrs.frozen
class _Write:
    row: Row
    body: Mapping[str, Any]
    fields: tuple[str, ...]
    intent: Outcome


def _finish(ctx: ChunkContext, row: Row, outcome: Outcome, **fields: Any) -> None:
    if row.result is not None:
        return
    failure = outcome in (Outcome.AMBIGUOUS, Outcome.INVALID, Outcome.REJECTED, Outcome.FAILED)
    error = fields.get("error")
    if isinstance(error, InvalidRecordError):
        fields["error"] = error.for_record(row.index)
    if failure and "reason" not in fields and fields.get("error") is not None:
        fields["reason"] = reason_of(fields["error"])
    row.result = UpsertResult(
        outcome=outcome, object_type=ctx.kind.name, key=ctx.key.label, key_value=row.key_value,
        row=row.index, source=row.source if failure else None, **fields,
    )


def _fail_unfinished(ctx: ChunkContext, rows: Iterable[Row], exc: BaseException) -> None:
    for row in rows:
        if row.result is not None:
            continue
        if isinstance(exc, Cancelled):
            reason = ("cancelled after sending: the write may have happened"
                      if row.sent else "cancelled before sending: not written")
            _finish(ctx, row, Outcome.FAILED, reason=reason)
        elif isinstance(exc, KustomerError):
            note = " (the write was sent: it may have happened)" if row.sent else ""
            _finish(ctx, row, failure_outcome(exc), error=exc, reason=f"{exc}{note}")
        else:
            _finish(ctx, row, Outcome.FAILED, reason=f"{type(exc).__name__}: {exc}")


def chunk_flow(ctx: ChunkContext, rows: list[Row]) -> Flow[list[UpsertResult]]:
    """Take ``rows`` to one result each (see the module docs for the steps)."""
    try:
        yield from _resolve_companies(ctx, rows)
        live = [r for r in rows if r.result is None]
        matches = yield from _resolve_keys(ctx, live)
        creates, updates = yield from _decide(ctx, live, matches)
        if ctx.dry_run:
            for write in (*creates, *updates):
                _finish(ctx, write.row, write.intent, id=write.body.get("id"),
                        fields_written=write.fields, reason="dry run: not written")
        else:
            yield from _write(ctx, creates, "create")
            yield from _write(ctx, updates, "update")
    except Cancelled as exc:
        _fail_unfinished(ctx, rows, exc)
    except FATAL_ERRORS as exc:
        ctx.fatal = exc
        _fail_unfinished(ctx, rows, exc)
    except (APIError, APIConnectionError, InvalidRecordError) as exc:
        _fail_unfinished(ctx, rows, exc)
    _fail_unfinished(ctx, rows, KustomerError("no outcome was determined"))
    return [r.result for r in rows if r.result is not None]


# -- 1. company links ---------------------------------------------------------------

def _resolve_companies(ctx: ChunkContext, rows: list[Row]) -> Flow[None]:
    wanted = {r.mapped.company_external_id for r in rows if r.mapped.company_external_id}
    missing = sorted(v for v in wanted if v not in ctx.caches.company_ids)
    if missing:
        found = yield from _lookup(ctx, COMPANY, SyncKey.external_id(), missing, missing)
        for value, objs in found.items():
            if len(objs) == 1:
                ctx.caches.company_ids[value] = objs[0].id
    for row in rows:
        link = row.mapped.company_external_id
        if not link:
            continue
        company_id = ctx.caches.company_ids.get(link)
        if company_id is None:
            # Not in the batch answer: the index may lag; ask the direct endpoint once.
            try:
                company_id = yield from _flows.company_id_flow(ctx.core, ctx.caches, link)
            except InvalidRecordError as exc:
                _finish(ctx, row, Outcome.INVALID, error=exc)
                continue
        row.company_id = company_id


# -- 2. key resolution --------------------------------------------------------------

def _lookup(
    ctx: ChunkContext, kind: ObjectKind, key: SyncKey, values: Sequence[Any], wanted: Iterable[str],
) -> Flow[dict[str, list[Any]]]:
    """Objects per normalised key value, from one search per ``search_batch`` values."""
    targets = set(wanted)
    found: dict[str, dict[str, Any]] = {v: {} for v in targets}
    attribute = key.search_attribute(kind.name)
    if ctx.lookup == "search":
        for start in range(0, len(values), ctx.search_batch):
            batch = list(values[start:start + ctx.search_batch])
            try:
                hits = yield from _flows.search_flow(
                    ctx.core, kind.name, [{attribute: {"in": batch}}])
            except BadRequestError:
                if key.kind == "custom":
                    raise
                ctx.lookup = "direct"  # this org refuses batched search: look up one by one
                break
            for hit in hits:
                obj = kind.from_api(hit)
                for value in key.value_of(obj):
                    if value in found:
                        found[value][obj.id] = obj
        else:
            return {v: list(objs.values()) for v, objs in found.items()}
    for value in values:
        objs = yield from _flows.find_flow(ctx.core, kind, key, value)
        found[key.normalise(value)] = {o.id: o for o in objs}
    return {v: list(objs.values()) for v, objs in found.items()}


def _resolve_keys(ctx: ChunkContext, rows: list[Row]) -> Flow[dict[str, list[Any]]]:
    if not rows:
        return {}
    raw: dict[str, Any] = {}
    for row in rows:
        raw.setdefault(row.key_value, row.raw_key)
    return (yield from _lookup(ctx, ctx.kind, ctx.key, list(raw.values()), raw.keys()))


# -- 3. decisions -------------------------------------------------------------------

def _decide(
    ctx: ChunkContext, rows: list[Row], matches: Mapping[str, list[Any]],
) -> Flow[tuple[list[_Write], list[_Write]]]:
    creates: list[_Write] = []
    updates: list[_Write] = []
    for row in rows:
        if row.result is not None:
            continue
        found = matches.get(row.key_value, [])
        if len(found) > 1:
            ids = tuple(o.id for o in found)
            _finish(ctx, row, Outcome.AMBIGUOUS, candidates=ids,
                    reason=f"{len(ids)} {ctx.kind.name}s have {ctx.key.label}={row.key_value!r}")
        elif not found:
            if ctx.mode == "update_only":
                _finish(ctx, row, Outcome.SKIPPED, reason="no match and mode is update_only")
                continue
            try:
                plan = plan_create(row.mapped, object_type=ctx.kind.name, company_id=row.company_id)
            except InvalidRecordError as exc:
                _finish(ctx, row, Outcome.INVALID, error=exc)
                continue
            creates.append(_Write(row, plan.body, plan.fields, Outcome.CREATED))
        elif ctx.mode == "create_only":
            _finish(ctx, row, Outcome.SKIPPED, id=found[0].id,
                    reason="already exists and mode is create_only")
        else:
            existing = found[0]
            update = plan_update(existing, row.mapped, ctx.key, company_id=row.company_id)
            if update is not None and ARRAY_FIELDS.intersection(update.body):
                # Arrays are replaced on update: merge with the live object, not the index.
                existing = yield from _flows.get_flow(ctx.core, ctx.kind, existing.id)
                update = plan_update(existing, row.mapped, ctx.key, company_id=row.company_id)
            if update is None:
                _finish(ctx, row, Outcome.UNCHANGED, id=existing.id)
            else:
                body = {"id": existing.id, **update.body}
                updates.append(_Write(row, body, update.fields, Outcome.UPDATED))
    return creates, updates


# -- 4. writes ----------------------------------------------------------------------

def _write(ctx: ChunkContext, writes: list[_Write], op: Op) -> Flow[None]:
    jobs: list[tuple[str, list[_Write], float]] = []
    for start in range(0, len(writes), ctx.bulk_size):
        jobs.extend((yield from _submit(ctx, writes[start:start + ctx.bulk_size], op)))
    for job_id, group, submitted in jobs:
        yield from _await_job(ctx, job_id, group, submitted, op)


def _single(ctx: ChunkContext, write: _Write, op: Op) -> Flow[None]:
    row = write.row
    body = {k: v for k, v in write.body.items() if k != "id"}
    row.sent = True
    try:
        if op == "create":
            obj = yield from _flows.create_flow(ctx.core, ctx.kind, body)
        else:
            obj = yield from _flows.update_flow(ctx.core, ctx.kind, str(write.body["id"]), body)
    except FATAL_ERRORS:
        raise
    except APIError as exc:
        if op == "create" and (exc.is_duplicate or isinstance(exc, InternalServerError)):
            yield from _reconcile(ctx, write)
        else:
            _finish(ctx, row, failure_outcome(exc), error=exc)
        return
    except APIConnectionError as exc:
        if op == "create":
            yield from _reconcile(ctx, write)
        else:
            _finish(ctx, row, Outcome.FAILED, error=exc,
                    reason=f"{exc} (the update was sent: it may have happened)")
        return
    _finish(ctx, row, write.intent, id=obj.id, fields_written=write.fields)


def _bulk_item(write: _Write) -> dict[str, Any]:
    return {**write.body, "_clientRef": f"r{write.row.index}"}


def _rejected_index(exc: BadRequestError, size: int) -> int | None:
    """The item a whole-request 400 blames, when Kustomer points at one."""
    def walk(details: Iterable[ErrorDetail]) -> int | None:
        for d in details:
            for where in (d.pointer, d.parameter):
                match = _POINTER_INDEX.match(where or "")
                if match and int(match.group(1)) < size:
                    return int(match.group(1))
            index = d.meta.get("index") if isinstance(d.meta, Mapping) else None
            if isinstance(index, int) and 0 <= index < size:
                return index
            inner = walk(d.sub_errors)
            if inner is not None:
                return inner
        return None
    return walk(exc.errors)


def _submit(
    ctx: ChunkContext, group: list[_Write], op: Op,
) -> Flow[list[tuple[str, list[_Write], float]]]:
    """Submit one bulk job; isolate invalid items when Kustomer refuses the whole request."""
    if len(group) <= ctx.single_threshold:
        for write in group:
            yield from _single(ctx, write, op)
        return []
    method = "POST" if op == "create" else "PUT"
    path = f"{ctx.kind.collection}/bulk"
    for write in group:
        write.row.sent = True
    try:
        response = yield from request_flow(ctx.core, RequestSpec(
            method=method, path=path, json=[_bulk_item(w) for w in group],
        ))
    except FATAL_ERRORS:
        raise
    except BadRequestError as exc:
        for write in group:
            write.row.sent = False
        blamed = _rejected_index(exc, len(group))
        if blamed is not None:
            _finish(ctx, group[blamed].row, Outcome.REJECTED, error=exc,
                    reason=f"Kustomer refused this record: {'; '.join(e.text for e in exc.errors)}")
            rest = group[:blamed] + group[blamed + 1:]
            return (yield from _submit(ctx, rest, op)) if rest else []
        if len(group) == 1:
            _finish(ctx, group[0].row, Outcome.REJECTED, error=exc)
            return []
        # No pointer: split in halves until each bad record stands alone.
        middle = len(group) // 2
        first = yield from _submit(ctx, group[:middle], op)
        second = yield from _submit(ctx, group[middle:], op)
        return first + second
    except (APIConnectionError, InternalServerError) as exc:
        if op == "update":
            for write in group:
                _finish(ctx, write.row, Outcome.FAILED, error=exc,
                        reason=f"{exc} (the bulk update was sent: it may have happened)")
            return []
        # The job may exist with its answer lost: let it finish, then settle each row
        # by looking it up (a lookup before the job ran would invite a duplicate).
        yield Sleep(ctx.timing.estimate * 1.5)
        for write in group:
            yield from _reconcile(ctx, write)
        return []
    data = response.data if isinstance(response.data, Mapping) else {}
    job_id = data.get("id")
    if not job_id:
        for write in group:
            yield from _reconcile(ctx, write)
        return []
    return [(str(job_id), group, ctx.core.clock.now())]


def _job_status(response_data: Any) -> str:
    if isinstance(response_data, Mapping):
        attributes = response_data.get("attributes")
        if isinstance(attributes, Mapping) and attributes.get("status"):
            return str(attributes["status"]).lower()
        if response_data.get("status"):
            return str(response_data["status"]).lower()
    return ""


def _item_outcomes(body: Any) -> dict[str, Mapping[str, Any]]:
    """Per-item outcomes keyed by ``_clientRef``, wherever the batches answer nests them."""
    outcomes: dict[str, Mapping[str, Any]] = {}
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            ref = node.get("_clientRef", node.get("clientRef"))
            if isinstance(ref, str) and ("status" in node or "objectId" in node or "error" in node):
                outcomes[ref] = node
                continue
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return outcomes


def _item_error(item: Mapping[str, Any]) -> ErrorDetail:
    error = item.get("error") or item.get("errors")
    if isinstance(error, list) and error:
        error = error[0]
    return ErrorDetail.from_api(error if error is not None else "no error details")


def _await_job(
    ctx: ChunkContext, job_id: str, group: list[_Write], submitted: float, op: Op,
) -> Flow[None]:
    path = f"/v1/bulk/{path_segment(job_id)}"
    wait = submitted + ctx.timing.first_wait() - ctx.core.clock.now()
    polls = 0
    while True:
        if wait > 0:
            yield Sleep(wait)
        polls += 1
        response = yield from request_flow(ctx.core, RequestSpec(method="GET", path=path))
        status = _job_status(response.data)
        if status in _DONE_STATUSES or status in _FAILED_STATUSES:
            break
        if ctx.core.clock.now() - submitted > ctx.bulk_timeout:
            for write in group:
                _finish(ctx, write.row, Outcome.FAILED,
                        reason=f"bulk job {job_id} still {status or 'unknown'} after "
                               f"{ctx.bulk_timeout:.0f}s: the write may still happen")
            return
        wait = max(0.25, ctx.timing.estimate * 0.5)
    ctx.timing.observe(first_poll_done=polls == 1, polls=polls)
    batches = yield from request_flow(ctx.core, RequestSpec(method="GET", path=f"{path}/batches"))
    outcomes = _item_outcomes(batches.body)
    for write in group:
        item = outcomes.get(f"r{write.row.index}")
        item_status = str(item.get("status", "")).lower() if item else ""
        object_id = item.get("objectId") or item.get("id") if item else None
        if item_status in ("created", "updated") and object_id:
            _finish(ctx, write.row, write.intent, id=str(object_id), fields_written=write.fields)
        elif item is not None and item_status in ("error", "failed"):
            detail = _item_error(item)
            error = APIError(status=400, method="POST" if op == "create" else "PUT",
                             path=f"{ctx.kind.collection}/bulk", errors=[detail],
                             hint="Kustomer refused this item of a bulk job")
            if op == "create" and error.is_duplicate:
                yield from _reconcile(ctx, write)
            else:
                _finish(ctx, write.row, Outcome.REJECTED, error=error)
        else:
            # No outcome for this item (job failed, or answer incomplete): look it up.
            yield from _reconcile(ctx, write)


# -- 5. reconciliation --------------------------------------------------------------

def _reconcile(ctx: ChunkContext, write: _Write, *, retry: bool = True) -> Flow[None]:
    """Settle a row whose write is uncertain by reading Kustomer, then writing once if needed.

    A unique anchor (external id, email) in the record is looked up with the
    direct endpoints, which are exact and current; only records keyed on a
    custom field alone depend on the search index, searched again after short
    waits before a create is re-sent.
    """
    row = write.row
    key, value = _anchor(ctx, row)
    matches: list[Any] = []
    for pause in ctx.reconcile_waits if key.kind == "custom" else (0.0,):
        if pause:
            yield Sleep(pause)
        matches = yield from _flows.find_flow(ctx.core, ctx.kind, key, value)
        matches = [m for m in matches if row.key_value in ctx.key.value_of(m)]
        if matches:
            break
    if len(matches) > 1:
        ids = tuple(m.id for m in matches)
        _finish(ctx, row, Outcome.AMBIGUOUS, candidates=ids,
                reason=f"{len(ids)} {ctx.kind.name}s have {ctx.key.label}={row.key_value!r}")
        return
    if not matches:
        if write.intent is not Outcome.CREATED:
            _finish(ctx, row, Outcome.FAILED, reason="the object to update is gone")
            return
        try:
            obj = yield from _flows.create_flow(ctx.core, ctx.kind, {
                k: v for k, v in write.body.items() if k != "id"})
        except FATAL_ERRORS:
            raise
        except APIError as exc:
            if not (exc.is_duplicate and retry):
                _finish(ctx, row, failure_outcome(exc), error=exc)
                return
            # A write we could not see yet (a late bulk job) got there first: look again.
            yield from _reconcile(ctx, write, retry=False)
            return
        except APIConnectionError as exc:
            if retry:
                yield from _reconcile(ctx, write, retry=False)
            else:
                _finish(ctx, row, Outcome.FAILED, error=exc,
                        reason=f"{exc} (the create was sent: it may have happened)")
            return
        _finish(ctx, row, Outcome.CREATED, id=obj.id, fields_written=write.fields)
        return
    existing = matches[0]
    update = plan_update(existing, row.mapped, ctx.key, company_id=row.company_id)
    if update is None:
        # Kustomer holds exactly what we sent: our write went through.
        _finish(ctx, row, write.intent, id=existing.id, fields_written=write.fields)
        return
    if ctx.mode == "create_only":
        _finish(ctx, row, Outcome.SKIPPED, id=existing.id,
                reason="already exists (created concurrently) and mode is create_only")
        return
    try:
        obj = yield from _flows.update_flow(ctx.core, ctx.kind, existing.id, update.body)
    except FATAL_ERRORS:
        raise
    except (APIError, APIConnectionError) as exc:
        _finish(ctx, row, failure_outcome(exc), error=exc)
        return
    _finish(ctx, row, Outcome.UPDATED, id=obj.id, fields_written=update.fields)


def _anchor(ctx: ChunkContext, row: Row) -> tuple[SyncKey, Any]:
    """The most exact key to re-find this row by: a unique field when it has one."""
    if ctx.key.kind == "custom":
        payload = row.mapped.payload
        if payload.get("externalId") and ctx.kind is not COMPANY:
            return SyncKey.external_id(), payload["externalId"]
        emails = payload.get("emails")
        if ctx.kind is not COMPANY and emails and isinstance(emails[0], Mapping):
            return SyncKey.email(), emails[0].get("email")
    return ctx.key, row.raw_key
