"""One chunk of rows, from key resolution to a result per row, as a flow.

A chunk is up to a few hundred rows that passed local validation. Its flow:

1. resolve company links (``companyExternalId`` → id), batched and cached;
2. resolve sync keys with as few searches as Kustomer accepts (``in`` over
   every value of the chunk, stepping down to smaller forms if Kustomer
   refuses it), confirming each hit client-side; a hit whose answer does not
   show the key is read by id, and a miss for a key this client wrote
   moments ago is read by id too (the index lags);
3. decide per row: create, update, unchanged, skipped, ambiguous, planning
   each update from an answer that can be trusted for it (see
   :mod:`kustomer_activations.resources._readback`);
4. write with the bulk endpoints (≤ 100 items and under a byte budget;
   ``_clientRef`` where Kustomer documents it) or single requests when that
   is cheaper, poll the jobs adaptively, and map every item's outcome back
   to its row;
5. reconcile whatever is uncertain (a duplicate on create, a lost or
   unreadable answer, a 5xx, an item without an outcome, a job that cannot
   be read) by reading Kustomer, never by blindly writing again.

Every row leaves with exactly one :class:`~kustomer_activations.UpsertResult`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs

from .._core.effects import Flow, Sleep
from .._core.effects import FlowCancelled as Cancelled
from .._core.request import Core, RequestSpec, json_array, json_bytes, path_segment, request_flow
from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    BadRequestError,
    ErrorDetail,
    InvalidRecordError,
    KustomerError,
    NotFoundError,
    UnknownCompanyLinkError,
    reason_of,
)
from ..mapping import MappedRecord
from ..merge import UpdatePlan, plan_create
from ..models import SyncKey
from ..results import Outcome, UpsertResult
from . import flows as _flows
from . import readback as _readback
from .flows import Caches, Found, Mode, failure_outcome
from .kinds import COMPANY, CUSTOMER, ObjectKind
from .readback import (
    FATAL_ERRORS,
    UpdateSettled,
    WritePolicy,
    is_uncertain,
    read_flow,
    settle_flow,
)

__all__ = ["BulkTiming", "ChunkContext", "Row", "SearchForms", "chunk_flow"]

Op = Literal["create", "update"]
_DONE_STATUSES = frozenset({"complete", "completed", "done", "finished", "success", "succeeded"})
_FAILED_STATUSES = frozenset({"failed", "error", "errored", "cancelled", "canceled"})
_ITEM_OK = frozenset({"created", "updated", "success", "succeeded", "ok", "complete", "completed"})
_ITEM_ERROR = frozenset({"error", "failed", "failure", "errored"})
_POINTER_INDEX = re.compile(r"^/?(?:data/)?(\d+)(?:/|$)")
#: Unreadable answers in a row about one bulk job before it is settled by lookups instead.
_JOB_READ_ATTEMPTS = 3
#: Submissions of one bulk request that never left (no connection) before its rows fail.
_UNSENT_ATTEMPTS = 3
#: Kustomer answers 413 above 100 KB on most endpoints (KUSTOMER_API.md, "Body size").
DEFAULT_MAX_BODY_BYTES = 100_000


class BulkTiming:
    """How long bulk jobs take, learned as the sync goes, so each job is read once.

    A job's results are read :meth:`due` seconds after it was accepted. A job
    found finished at that read lowers the estimate a little (never below
    the longest time a job was recently seen still running, plus a margin);
    a job found unfinished raises it at once, for every job in flight: a
    read too early costs a request, a read too late only latency.
    """

    def __init__(self, initial: float = 3.0) -> None:
        self._lock = threading.Lock()
        self.estimate = initial
        #: The longest a job was seen unfinished (decays slowly as jobs get faster).
        self.floor = 0.0
        self.reads = 0
        self.jobs = 0
        self.early = 0

    def first_wait(self) -> float:
        """Seconds to wait after a job is accepted before reading its results."""
        return self.estimate

    def due(self, submitted: float) -> float:
        """When a job accepted at ``submitted`` is expected to be finished."""
        return submitted + self.estimate

    def finished(self, elapsed: float, *, first_read: bool) -> None:
        """A job was found finished ``elapsed`` seconds after it was accepted."""
        with self._lock:
            self.jobs += 1
            self.floor *= 0.9999  # jobs that get faster lower it, slowly: early reads cost requests
            if first_read:
                self.estimate = max(0.1, self.floor * 1.1, self.estimate * 0.99)

    def unfinished(self, elapsed: float) -> None:
        """A job was found still running ``elapsed`` seconds after it was accepted."""
        with self._lock:
            self.early += 1
            # Steps of 1.5: a slow job costs a few early reads of the first job only (the
            # others wait for the new estimate), and the estimate overshoots by at most
            # half, not holding twice the jobs in flight that the true duration needs.
            self.floor = max(self.floor, elapsed)
            self.estimate = min(900.0, max(self.estimate, elapsed * 1.5, self.floor * 1.1))

    def observe(self, *, first_poll_done: bool, polls: int) -> None:
        """Compatibility shim: a job finished after ``polls`` reads."""
        with self._lock:
            self.jobs += 1
            self.reads += polls


#: Search forms, from the cheapest to the most widely accepted: ``in`` over many
#: values, ``or`` of at most 20 ``equals`` (the published group limit), one ``equals``.
_FORMS: tuple[tuple[str, int], ...] = (("in", 500), ("in", 100), ("in", 20), ("or", 20),
                                       ("equals", 1))


class SearchForms:
    """The search form each attribute gets, learned once per sync.

    No limit on ``in`` is published and the only public ``in`` example is on a
    list attribute (KUSTOMER_API.md, "``in`` over many values"); some
    attributes (``company_externalId``) may not be searchable at all. A form
    Kustomer refuses (400) is replaced by the next one, for the rest of the
    sync; past the last, keys with a direct lookup use it.
    """

    def __init__(self, notes: list[str], first: int = 500) -> None:
        self._lock = threading.Lock()
        self._level: dict[str, int] = {}
        self._notes = notes
        self._start = next((i for i, (_, n) in enumerate(_FORMS) if n <= first), len(_FORMS) - 1)

    def form(self, attribute: str) -> tuple[str, int] | None:
        """The form to use for ``attribute``: ``(operator, values per search)``; ``None``: direct."""
        with self._lock:
            level = self._level.get(attribute, self._start)
        return _FORMS[level] if level < len(_FORMS) else None

    def refused(self, attribute: str, form: tuple[str, int], exc: BadRequestError,
                direct: bool) -> None:
        """Kustomer refused ``form``: step down to the next one (once per sync)."""
        with self._lock:
            level = self._level.get(attribute, self._start)
            if level >= len(_FORMS) or _FORMS[level] != form:
                return  # another chunk already stepped down
            level += 1
            if level == len(_FORMS) - 1 and direct:
                level = len(_FORMS)  # a direct lookup beats one search per value
            self._level[attribute] = level
            now = _FORMS[level] if level < len(_FORMS) else None
            used = (f"'{now[0]}' of up to {now[1]} value(s) per search" if now
                    else "one direct lookup per value")
            self._notes.append(
                f"Kustomer refused a search with '{form[0]}' over up to {form[1]} values on "
                f"{attribute} ({exc.status}); used {used} for the rest of the sync")


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
    #: From a state store: the Kustomer id and the snapshot an update by id is planned
    #: against (no lookup), and the mapped fields as Kustomer will hold them once
    #: this row's write is confirmed (kept for the next run).
    known_id: str | None = None
    snapshot: Mapping[str, Any] | None = None
    after: dict[str, Any] | None = None
    #: The hash of the mapped record a state store keeps once the write is confirmed.
    state_hash: str | None = None


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
    search_batch: int = 500
    policy: WritePolicy = attrs.field(factory=WritePolicy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    notes: list[str] = attrs.field(factory=list)
    #: Whether rows keep what Kustomer will hold after their write (a state store wants it).
    snapshots: bool = False
    forms: SearchForms = attrs.field(init=False)
    fatal: BaseException | None = None

    def __attrs_post_init__(self) -> None:
        self.forms = SearchForms(self.notes, self.search_batch)

    @property
    def client_refs(self) -> bool:
        """Whether bulk creates carry ``_clientRef``: documented for customer creates only."""
        return self.kind is CUSTOMER


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
    if outcome in (Outcome.CREATED, Outcome.UPDATED) and fields.get("id") and not ctx.dry_run:
        ctx.caches.remember(ctx.kind.name, ctx.key, row.key_value, str(fields["id"]),
                            ctx.core.clock.now())
    row.result = UpsertResult(
        outcome=outcome, object_type=ctx.kind.name, key=ctx.key.label, key_value=row.key_value,
        row=row.index, source=row.source if failure else None, **fields,
    )


_MAY_HAVE = "it may have been written"


def _fail_unfinished(ctx: ChunkContext, rows: Iterable[Row], exc: BaseException) -> None:
    for row in rows:
        if row.result is not None:
            continue
        if isinstance(exc, Cancelled):
            reason = (f"cancelled after sending: {_MAY_HAVE}"
                      if row.sent else "cancelled before sending: not written")
            _finish(ctx, row, Outcome.FAILED, reason=reason)
        elif isinstance(exc, KustomerError):
            # "rejected" is only for a record Kustomer refused; this error concerns the chunk.
            outcome = Outcome.INVALID if isinstance(exc, InvalidRecordError) else Outcome.FAILED
            note = f" (the write was sent: {_MAY_HAVE})" if row.sent else ""
            _finish(ctx, row, outcome, error=exc, reason=f"{reason_of(exc)}{note}")
        else:
            _finish(ctx, row, Outcome.FAILED, reason=f"{type(exc).__name__}: {exc}")


@attrs.frozen
class Decided:
    """What deciding a chunk leaves: the rows settled already, and the writes to send."""

    settled: list[UpsertResult]
    creates: list[_Write]
    updates: list[_Write]


def decide_flow(ctx: ChunkContext, rows: list[Row]) -> Flow[Decided]:
    """Steps 1-3 for ``rows``: each row is settled, or leaves as a create or an update.

    The writes go to a :class:`Writer` shared by every chunk of the sync, so
    a chunk with a few changes does not open a bulk job of its own and is
    released as soon as it has decided.
    """
    creates: list[_Write] = []
    updates: list[_Write] = []
    try:
        yield from _resolve_companies(ctx, rows)
        updates = _decide_by_id(ctx, [r for r in rows if r.result is None and r.known_id])
        live = [r for r in rows if r.result is None and not r.known_id]
        matches = yield from _resolve_keys(ctx, live)
        creates, looked_up = yield from _decide(ctx, live, matches)
        updates.extend(looked_up)
        if ctx.dry_run:
            for write in (*creates, *updates):
                _finish(ctx, write.row, write.intent, id=write.body.get("id"),
                        fields_written=write.fields, reason="dry run: not written")
            creates, updates = [], []
    except Cancelled as exc:
        creates, updates = [], []
        _fail_unfinished(ctx, rows, exc)
    except FATAL_ERRORS as exc:
        creates, updates = [], []
        ctx.fatal = exc
        _fail_unfinished(ctx, rows, exc)
    except KustomerError as exc:
        # One unreadable answer or refused request fails this chunk's open rows, not the sync.
        creates, updates = [], []
        _fail_unfinished(ctx, rows, exc)
    writing = {id(w.row) for w in (*creates, *updates)}
    _fail_unfinished(ctx, (r for r in rows if id(r) not in writing),
                     KustomerError("no outcome was determined"))
    return Decided([r.result for r in rows if r.result is not None], creates, updates)


@attrs.frozen(eq=False)
class WriteBatch:
    """Writes of one kind (``create`` or ``update``) to send as one bulk request."""

    op: Op
    writes: list[_Write]
    nbytes: int
    #: Send each write as a single request (a batch too small to be worth a job).
    singles: bool = False
    #: Each write's bulk item, encoded once when it was sized (the body is their array).
    parts: list[bytes] = attrs.field(factory=list)

    @property
    def rows(self) -> list[Row]:
        """The rows this batch settles."""
        return [w.row for w in self.writes]


class Writer:
    """Packs the writes of every chunk into full bulk requests, across chunks.

    A batch leaves when it is full (``bulk_size`` items or the byte budget),
    when its oldest write has waited ``linger`` seconds (so rows are not held
    back when the input slows down), and at the end of the sync. A batch of
    at most ``small`` writes left at the end is sent as single requests: for
    a handful of rows that is quicker than a job and costs about the same.
    Pure bookkeeping, safe to share between threads.
    """

    def __init__(self, ctx: ChunkContext, *, linger: float = 15.0, small: int = 5) -> None:
        self._ctx = ctx
        self._linger = linger
        self._small = max(small, ctx.single_threshold)
        self._lock = threading.Lock()
        self._open: dict[Op, list[_Write]] = {"create": [], "update": []}
        self._parts: dict[Op, list[bytes]] = {"create": [], "update": []}
        self._bytes: dict[Op, int] = {"create": 2, "update": 2}
        self._since: dict[Op, float] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._open["create"]) + len(self._open["update"])

    def add(self, op: Op, writes: Iterable[_Write], now: float) -> list[WriteBatch]:
        """Take ``writes``; returns the batches that are full."""
        ctx = self._ctx
        out: list[WriteBatch] = []
        with self._lock:
            for write in writes:
                part = json_bytes(_bulk_item(ctx, write, op))
                size = len(part) + 1  # and a comma
                group = self._open[op]
                if group and (len(group) >= ctx.bulk_size
                              or self._bytes[op] + size > ctx.max_body_bytes):
                    out.append(self._take(op))
                if not self._open[op]:
                    self._since[op] = now
                self._open[op].append(write)
                self._parts[op].append(part)
                self._bytes[op] += size
            if len(self._open[op]) >= ctx.bulk_size:
                out.append(self._take(op))
        return out

    def due(self, now: float) -> list[WriteBatch]:
        """Batches whose oldest write has waited ``linger`` seconds."""
        with self._lock:
            return [self._take(op) for op in ("create", "update")
                    if self._open[op] and now - self._since.get(op, now) >= self._linger]

    def drain(self) -> list[WriteBatch]:
        """Every write still held, at the end of the sync."""
        with self._lock:
            out = [self._take(op) for op in ("create", "update") if self._open[op]]
        return [attrs.evolve(b, singles=len(b.writes) <= self._small) for b in out]

    def _take(self, op: Op) -> WriteBatch:
        batch = WriteBatch(op, self._open[op], self._bytes[op], parts=self._parts[op])
        self._open[op] = []
        self._parts[op] = []
        self._bytes[op] = 2
        self._since.pop(op, None)
        return batch


def job_flow(ctx: ChunkContext, batch: WriteBatch) -> Flow[list[UpsertResult]]:
    """Step 4-5 for one batch: submit it, read its job once it is due, settle each row."""
    rows = batch.rows
    try:
        jobs = yield from _submit(ctx, batch.writes, batch.op, singles=batch.singles,
                                  parts=batch.parts)
        batch.parts.clear()  # sent: a job waiting for its results holds no body
        for job_id, group, submitted in jobs:
            yield from _collect(ctx, job_id, group, submitted, batch.op)
    except Cancelled as exc:
        _fail_unfinished(ctx, rows, exc)
    except FATAL_ERRORS as exc:
        ctx.fatal = exc
        _fail_unfinished(ctx, rows, exc)
    except KustomerError as exc:
        _fail_unfinished(ctx, rows, exc)
    _fail_unfinished(ctx, rows, KustomerError("no outcome was determined"))
    return [r.result for r in rows if r.result is not None]


def chunk_flow(ctx: ChunkContext, rows: list[Row]) -> Flow[list[UpsertResult]]:
    """Take ``rows`` to one result each, on their own (decide, then write and read each job)."""
    decided = yield from decide_flow(ctx, rows)
    for op, writes in (("create", decided.creates), ("update", decided.updates)):
        for group in _groups(ctx, writes, op):  # type: ignore[arg-type]
            yield from job_flow(ctx, WriteBatch(op, group, 0))  # type: ignore[arg-type]
    return [r.result for r in rows if r.result is not None]


# -- 1. company links ---------------------------------------------------------------

def _resolve_companies(ctx: ChunkContext, rows: list[Row]) -> Flow[None]:
    wanted = {r.mapped.company_external_id for r in rows if r.mapped.company_external_id}
    missing = sorted(v for v in wanted if v not in ctx.caches.company_ids)
    if missing:
        found = yield from _lookup(ctx, COMPANY, SyncKey.external_id(), missing, missing)
        for value, objs in found.items():
            if isinstance(objs, list) and len(objs) == 1:
                ctx.caches.company_ids[value] = objs[0][0].id
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

def _criteria(attribute: str, form: tuple[str, int], batch: list[Any]) -> list[dict[str, Any]]:
    operator = form[0]
    if operator == "in":
        return [{attribute: {"in": batch}}]
    if operator == "or":
        return [{"or": [{attribute: {"equals": v}} for v in batch]}]
    return [{attribute: {"equals": batch[0]}}]


#: Candidates per normalised key value, or the error that left them unknown.
Matches = Mapping[str, "list[Found] | KustomerError"]


def _lookup(
    ctx: ChunkContext, kind: ObjectKind, key: SyncKey, values: Sequence[Any], wanted: Iterable[str],
) -> Flow[dict[str, list[Found] | KustomerError]]:
    """Candidates per normalised key value, from as few searches as Kustomer accepts.

    Each candidate says whether it came from a live read; hits whose answer
    does not show the key are read by id (see :func:`_flows.confirm_flow`).
    When such a read fails, the values that hit may hold are unknown (an
    error, never "no match"): for a unique key only the values no other
    object holds, for a custom key every value of that search.
    """
    found: dict[str, dict[str, Found]] = {v: {} for v in wanted}
    unknown: dict[str, KustomerError] = {}
    unique = key.kind == "email" or (key.kind == "external_id" and kind is CUSTOMER)
    attribute = key.search_attribute(kind.name)
    direct = key.kind in ("external_id", "email")
    start = 0
    while start < len(values):
        form = ctx.forms.form(attribute)
        if form is None:
            break
        batch = list(values[start:start + form[1]])
        try:
            hits = yield from _flows.search_flow(ctx.core, kind.name, _criteria(attribute, form, batch))
        except BadRequestError as exc:
            ctx.forms.refused(attribute, form, exc, direct)
            if ctx.forms.form(attribute) is None and not direct:
                raise
            continue
        start += len(batch)
        unconfirmed: list[Found] = []
        for hit in hits:
            obj = kind.from_api(hit)
            if not _readback.key_visible(obj, key):
                unconfirmed.append((obj, False))
                continue
            for value in key.value_of(obj):
                if value in found:
                    found[value][obj.id] = (obj, False)
        pairs, error = yield from _read_unconfirmed(ctx, kind, key, unconfirmed)
        for value, candidate in pairs:
            if value in found:
                found[value][candidate[0].id] = candidate
        if error is not None:
            for value in (key.normalise(v) for v in batch):
                if not (unique and found.get(value)):
                    unknown[value] = error
    for value in values[start:]:
        objs = yield from _flows.candidates_flow(ctx.core, kind, key, value)
        found[key.normalise(value)] = {o.id: (o, fresh) for o, fresh in objs}
    return {v: unknown.get(v) or list(objs.values()) for v, objs in found.items()}


def _read_unconfirmed(
    ctx: ChunkContext, kind: ObjectKind, key: SyncKey, hits: list[Found],
) -> Flow[tuple[list[tuple[str, Found]], KustomerError | None]]:
    """Hits that did not show the key, read by id: (value, candidate) for each value held,
    and the error of a read that failed (the values that hit holds are then unknown)."""
    out: list[tuple[str, Found]] = []
    seen: set[str] = set()
    failed: KustomerError | None = None
    for obj, _ in hits:
        if obj.id in seen:
            continue
        seen.add(obj.id)
        try:
            live = yield from read_flow(ctx.core, kind, obj.id)
        except FATAL_ERRORS:
            raise
        except KustomerError as exc:
            failed = exc
            continue
        if live is not None:
            out.extend((value, (live, True)) for value in key.value_of(live))
    return out, failed


def _resolve_keys(ctx: ChunkContext, rows: list[Row]) -> Flow[dict[str, list[Found] | KustomerError]]:
    if not rows:
        return {}
    raw: dict[str, Any] = {}
    for row in rows:
        raw.setdefault(row.key_value, row.raw_key)
    found = yield from _lookup(ctx, ctx.kind, ctx.key, list(raw.values()), raw.keys())
    now = ctx.core.clock.now()
    for value, candidates in found.items():
        if candidates or isinstance(candidates, KustomerError):
            continue
        # Search lags: a key this client wrote moments ago may be missing from the index.
        recent = ctx.caches.recent_id(ctx.kind.name, ctx.key, value, now)
        if recent is not None:
            live = yield from read_flow(ctx.core, ctx.kind, recent)
            if live is not None and value in ctx.key.value_of(live):
                found[value] = [(live, True)]
    return found


# -- 3. decisions -------------------------------------------------------------------

def _decide(
    ctx: ChunkContext, rows: list[Row], matches: Matches,
) -> Flow[tuple[list[_Write], list[_Write]]]:
    creates: list[_Write] = []
    updates: list[_Write] = []
    for row in rows:
        if row.result is not None:
            continue
        found = matches.get(row.key_value, [])
        if isinstance(found, KustomerError):
            _finish(ctx, row, Outcome.FAILED, error=found,
                    reason=f"a search hit that may hold this key could not be read: "
                           f"{reason_of(found)} (not written)")
            continue
        if len(found) > 1:
            ids = tuple(o.id for o, _ in found)
            _finish(ctx, row, Outcome.AMBIGUOUS, candidates=ids,
                    reason=f"{len(ids)} {ctx.kind.name}s have {ctx.key.label}={row.key_value!r}")
        elif not found:
            if ctx.mode == "update_only":
                _finish(ctx, row, Outcome.SKIPPED, reason="no match and mode is update_only")
                continue
            create = _create_write(ctx, row)
            if create is not None:
                creates.append(create)
        elif ctx.mode == "create_only":
            _finish(ctx, row, Outcome.SKIPPED, id=found[0][0].id,
                    reason="already exists and mode is create_only")
        else:
            obj, fresh = found[0]
            try:
                live, update = yield from settle_flow(
                    ctx.core, ctx.kind, ctx.key, row.key_value, row.mapped, obj, fresh=fresh,
                    company_id=row.company_id, policy=ctx.policy)
            except InvalidRecordError as exc:
                _finish(ctx, row, Outcome.INVALID, error=exc, id=obj.id)
                continue
            except FATAL_ERRORS:
                raise
            except KustomerError as exc:
                # A read that concerns this row's match alone (or a link it cannot resend)
                # fails this row, not the chunk; nothing was written.
                note = "" if isinstance(exc, UnknownCompanyLinkError) else " (not written)"
                _finish(ctx, row, Outcome.FAILED, error=exc, id=obj.id,
                        reason=f"{reason_of(exc)}{note}")
                continue
            if live is None:
                _finish(ctx, row, Outcome.FAILED, reason="the matched object no longer holds "
                        "the key (changed while it was read): not written; run again")
            elif update is None:
                _keep_after(ctx, row, live, {})
                _finish(ctx, row, Outcome.UNCHANGED, id=live.id)
            else:
                _keep_after(ctx, row, live, update.body)
                updates.append(_Write(row, {"id": live.id, **update.body}, update.fields,
                                      Outcome.UPDATED))
    return creates, updates


def _create_write(ctx: ChunkContext, row: Row) -> _Write | None:
    """The row's create, or ``None`` once it is settled ``invalid`` (it cannot be created)."""
    try:
        plan = plan_create(row.mapped, object_type=ctx.kind.name, company_id=row.company_id)
    except InvalidRecordError as exc:
        _finish(ctx, row, Outcome.INVALID, error=exc)
        return None
    _keep_after(ctx, row, None, plan.body)
    return _Write(row, plan.body, plan.fields, Outcome.CREATED)


def _keep_after(ctx: ChunkContext, row: Row, live: Any, body: Mapping[str, Any]) -> None:
    if ctx.snapshots:
        row.after = snapshot_of(ctx, row, live, body)


def snapshot_of(ctx: ChunkContext, row: Row, live: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields this row maps as Kustomer holds them once ``body`` is applied to ``live``.

    What a state store keeps so the next change is planned without a read:
    the mapped attributes (``custom`` whole, as the planner sends it), and a
    customer's company link when it is known.
    """
    attributes: Mapping[str, Any] = live.attributes if live is not None else {}
    doc: dict[str, Any] = {k: attributes[k] for k in row.mapped.payload
                           if k in attributes and k not in ("company", "rev", "id")}
    if "custom" in attributes and "custom" not in doc:
        doc["custom"] = attributes["custom"]
    for field, value in body.items():
        if field in ("id", "rev", "company"):
            continue
        if field == "custom" and isinstance(value, Mapping) and isinstance(doc.get("custom"), Mapping):
            doc["custom"] = {**doc["custom"], **value}
        else:
            doc[field] = value
    if ctx.kind is CUSTOMER:
        if "company" in body or live is None:
            doc["company"] = body.get("company")  # a create sets the link (or none) itself
        elif getattr(live, "company_known", False):
            doc["company"] = live.company_id
    return doc


def _from_snapshot(ctx: ChunkContext, row: Row) -> Any:
    assert row.known_id is not None and row.snapshot is not None
    attributes = {k: v for k, v in row.snapshot.items() if k != "company"}
    relationships: dict[str, Any] = {}
    if "company" in row.snapshot:
        link = row.snapshot["company"]
        relationships["company"] = {"data": {"type": "company", "id": link} if link else None}
    return ctx.kind.from_api({"type": ctx.kind.name, "id": row.known_id, "attributes": attributes,
                              "relationships": relationships})


def _decide_by_id(ctx: ChunkContext, rows: list[Row]) -> list[_Write]:
    """Rows a state store knows: planned against its snapshot, updated by id, no lookup.

    A row that cannot be planned that way (its snapshot lacks what the plan
    needs) goes the usual way, by its key.
    """
    updates: list[_Write] = []
    for row in rows:
        if ctx.mode == "create_only":
            _finish(ctx, row, Outcome.SKIPPED, id=row.known_id,
                    reason="already exists and mode is create_only")
            continue
        obj = _from_snapshot(ctx, row)
        try:
            update = _readback.plan(obj, ctx.kind, ctx.key, row.mapped, row.company_id, ctx.policy,
                                    bulk=True)
        except (InvalidRecordError, UnknownCompanyLinkError):
            row.known_id = row.snapshot = None  # look it up by its key instead
            continue
        if update is None:
            _keep_after(ctx, row, obj, {})
            _finish(ctx, row, Outcome.UNCHANGED, id=obj.id)
            continue
        _keep_after(ctx, row, obj, update.body)
        updates.append(_Write(row, {"id": obj.id, **update.body}, update.fields, Outcome.UPDATED))
    return updates


def _refind(ctx: ChunkContext, row: Row) -> Flow[None]:
    """The object a state store named is gone (deleted?): find the row by its key instead,
    as a new row would be, and create it once when nothing holds the key."""
    row.known_id = row.snapshot = None
    key, value = _anchor(ctx, row)
    matches = yield from _flows.candidates_flow(ctx.core, ctx.kind, key, value)
    matches = [m for m in matches if row.key_value in ctx.key.value_of(m[0])]
    if len(matches) > 1:
        ids = tuple(m[0].id for m in matches)
        _finish(ctx, row, Outcome.AMBIGUOUS, candidates=ids,
                reason=f"{len(ids)} {ctx.kind.name}s have {ctx.key.label}={row.key_value!r}")
        return
    if matches:
        yield from _reconcile_found(ctx, _Write(row, {}, (), Outcome.UPDATED), matches[0], True)
        return
    if ctx.mode == "update_only":
        _finish(ctx, row, Outcome.SKIPPED, reason="the object the state named is gone, no other "
                "holds the key, and mode is update_only")
        return
    create = _create_write(ctx, row)
    if create is not None:
        yield from _single(ctx, create, "create")


def _says_not_found(error: APIError) -> bool:
    return error.status == 404 or any("not found" in d.text.lower() or "does not exist" in
                                      d.text.lower() for d in error.errors)


# -- 4. writes ----------------------------------------------------------------------

def _bulk_item(ctx: ChunkContext, write: _Write, op: Op) -> dict[str, Any]:
    item = dict(write.body)
    if op == "update" and ctx.kind is COMPANY:
        item.pop("rev", None)  # not in the published company bulk item schema
    if op == "create" and ctx.client_refs:
        item["_clientRef"] = f"r{write.row.index}"
    return item


def _size(item: Mapping[str, Any]) -> int:
    # Default separators and ASCII escapes: never smaller than what httpx sends.
    return len(json.dumps(item)) + 2


def _groups(ctx: ChunkContext, writes: list[_Write], op: Op) -> Iterator[list[_Write]]:
    """Writes packed into bulk requests of ≤ ``bulk_size`` items under the byte budget."""
    group: list[_Write] = []
    used = 2
    for write in writes:
        size = _size(_bulk_item(ctx, write, op))
        if group and (len(group) >= ctx.bulk_size or used + size > ctx.max_body_bytes):
            yield group
            group, used = [], 2
        group.append(write)
        used += size
    if group:
        yield group


def _single(ctx: ChunkContext, write: _Write, op: Op) -> Flow[None]:
    row = write.row
    body = {k: v for k, v in write.body.items() if k != "id"}
    row.sent = True
    if op == "update":
        yield from _update_one(ctx, write, str(write.body["id"]), body)
        return
    try:
        obj = yield from _flows.create_flow(ctx.core, ctx.kind, body)
    except FATAL_ERRORS:
        raise
    except APIError as exc:
        if exc.is_duplicate:
            yield from _reconcile(ctx, write, refused=True)
        elif is_uncertain(exc):
            yield from _reconcile(ctx, write)
        else:
            _finish(ctx, row, failure_outcome(exc), error=exc)
        return
    except (APIConnectionError, APIResponseValidationError):
        yield from _reconcile(ctx, write)
        return
    _finish(ctx, row, write.intent, id=obj.id, fields_written=write.fields)


def _update_one(
    ctx: ChunkContext, write: _Write, object_id: str, body: Mapping[str, Any] | None,
) -> Flow[None]:
    """One ``PUT`` of ``body``, or of a plan from a fresh read when ``body`` is ``None``.

    A 409 conflict (stale ``rev``) re-reads, re-plans and retries once; an
    uncertain answer is settled by reading the object and sent once more if
    it was not applied (``readback.send_update_flow``, as the single upsert).
    """
    row = write.row
    if body is None:
        replanned = yield from _replan(ctx, row, object_id)
        if replanned is None:
            return
        live, plan = replanned
        if plan is None:
            _finish(ctx, row, Outcome.UNCHANGED if write.intent is Outcome.UPDATED else write.intent,
                    id=live.id)
            return
    else:
        live = ctx.kind.from_api({"id": object_id, "attributes": {}})
        plan = UpdatePlan(dict(body), write.fields)
    row.sent = True
    yield from _settle_update(ctx, write, _readback.send_update_flow(
        ctx.core, ctx.kind, ctx.key, row.key_value, row.mapped, live, plan,
        company_id=row.company_id, policy=ctx.policy))


def _settle_update(ctx: ChunkContext, write: _Write, settling: Flow[UpdateSettled]) -> Flow[None]:
    """Finish the row of an update sent singly, or of one whose bulk outcome was uncertain."""
    row = write.row
    try:
        settled = yield from settling
    except FATAL_ERRORS:
        raise
    except (APIError, APIConnectionError, APIResponseValidationError) as exc:
        _finish(ctx, row, failure_outcome(exc), error=exc)
        return
    except (InvalidRecordError, UnknownCompanyLinkError) as exc:
        _finish(ctx, row, Outcome.FAILED, error=exc)
        return
    if settled.status == "gone" and row.known_id:
        yield from _refind(ctx, row)  # the object a state store named was deleted
    elif settled.status in ("gone", "unsure"):
        _finish(ctx, row, Outcome.FAILED, error=settled.error,
                reason=settled.failure_reason(ctx.kind.name))
    elif settled.status == "unchanged":
        # A create settled by a follow-up update keeps its intent: the object was absent
        # before our create was sent, so it is ours.
        _finish(ctx, row, Outcome.UNCHANGED if write.intent is Outcome.UPDATED else write.intent,
                id=settled.id)
    else:
        _finish(ctx, row, write.intent, id=settled.id,
                fields_written=write.fields if settled.fields is None else settled.fields)


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
    ctx: ChunkContext, group: list[_Write], op: Op, *, singles: bool = False,
    parts: Sequence[bytes] = (), attempt: int = 1,
) -> Flow[list[tuple[str, list[_Write], float]]]:
    """Submit one bulk job; isolate invalid or oversized items when Kustomer refuses the request.

    Every row of ``group`` is settled here unless its job was accepted.
    """
    if singles or len(group) <= ctx.single_threshold:
        for write in group:
            yield from _single(ctx, write, op)
        return []
    method = "POST" if op == "create" else "PUT"
    path = f"{ctx.kind.collection}/bulk"
    if len(parts) != len(group):
        parts = [json_bytes(_bulk_item(ctx, w, op)) for w in group]
    body = json_array(parts)
    for write in group:
        write.row.sent = True
    # Items with ``rev`` make a bulk update non-idempotent (see _readback.update_flow).
    idempotent = op == "update" and (ctx.kind is COMPANY or not any("rev" in w.body for w in group))
    try:
        response = yield from request_flow(ctx.core, RequestSpec(
            method=method, path=path, content=body, idempotent=idempotent))
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
        return (yield from _halves(ctx, group, op, exc))
    except APIError as exc:
        if is_uncertain(exc):
            return (yield from _uncertain_submission(ctx, group, op))
        for write in group:
            write.row.sent = False
        if exc.status == 413:
            # Too large for Kustomer: learn the budget, and split.
            ctx.max_body_bytes = min(ctx.max_body_bytes, max(1_000, len(body) - 1))
            return (yield from _halves(ctx, group, op, exc))
        for write in group:
            _finish(ctx, write.row, failure_outcome(exc), error=exc)
        return []
    except APIConnectionError as exc:
        if exc.sent or attempt >= _UNSENT_ATTEMPTS:
            if not exc.sent:
                for write in group:
                    write.row.sent = False
                    _finish(ctx, write.row, Outcome.FAILED, error=exc,
                            reason=f"{reason_of(exc)} (not sent: not written)")
                return []
            return (yield from _uncertain_submission(ctx, group, op))
        # The request never left (no connection to be had): it cannot have been
        # applied, so wait and send it again rather than settle each row by lookups.
        for write in group:
            write.row.sent = False
        yield Sleep(5.0 * attempt)
        return (yield from _submit(ctx, group, op, parts=parts, attempt=attempt + 1))
    except APIResponseValidationError:
        return (yield from _uncertain_submission(ctx, group, op))
    data = response.data if isinstance(response.data, Mapping) else {}
    job_id = data.get("id")
    if not job_id:
        return (yield from _uncertain_submission(ctx, group, op))
    return [(str(job_id), group, ctx.core.clock.now())]


def _halves(
    ctx: ChunkContext, group: list[_Write], op: Op, exc: APIError,
) -> Flow[list[tuple[str, list[_Write], float]]]:
    if len(group) == 1:
        _finish(ctx, group[0].row, Outcome.REJECTED, error=exc)
        return []
    # No pointer: split in halves until each bad record stands alone.
    middle = len(group) // 2
    first = yield from _submit(ctx, group[:middle], op)
    second = yield from _submit(ctx, group[middle:], op)
    return first + second


def _uncertain_submission(
    ctx: ChunkContext, group: list[_Write], op: Op,
) -> Flow[list[tuple[str, list[_Write], float]]]:
    # The job may exist with its answer lost: let it finish, then settle each row
    # by reading Kustomer (a lookup before the job ran would invite a duplicate).
    yield Sleep(ctx.timing.estimate * 1.5)
    for write in group:
        yield from _one_row(ctx, write, _reconcile(ctx, write))
    return []


def _one_row(ctx: ChunkContext, write: _Write, flow: Flow[None]) -> Flow[None]:
    """Settle one row of a job; an error that concerns it alone fails it, not the job's rows."""
    try:
        yield from flow
    except FATAL_ERRORS:
        raise
    except KustomerError as exc:
        note = f" (the write was sent: {_MAY_HAVE})" if write.row.sent else " (not written)"
        _finish(ctx, write.row, Outcome.FAILED, error=exc, reason=f"{reason_of(exc)}{note}")


def _job_status(response_data: Any) -> str:
    if isinstance(response_data, Mapping):
        attributes = response_data.get("attributes")
        if isinstance(attributes, Mapping) and attributes.get("status"):
            return str(attributes["status"]).lower()
        if response_data.get("status"):
            return str(response_data["status"]).lower()
    return ""


def _results(body: Any) -> list[Mapping[str, Any]]:
    """Per-item results of a batches answer, in order, whatever the nesting.

    The documented shape is ``[{successCount, failureCount, objectIds,
    results: [{_clientRef, objectId, status, error}]}]`` (KUSTOMER_API.md,
    "Bulk"); a ``data`` envelope and JSON:API-style nesting are read too.
    """
    fast = _documented_results(body)
    return _walk_results(body) if fast is None else fast


def _walk_results(body: Any) -> list[Mapping[str, Any]]:
    """:func:`_results` by a walk of the whole answer: any nesting."""
    out: list[Mapping[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, Mapping):
            if "status" in node and any(k in node for k in ("_clientRef", "objectId", "error",
                                                             "index")) \
                    and "attributes" not in node and "results" not in node:
                out.append(node)
                return
            for value in node.values():
                visit(value)

    visit(body)
    if out and all(isinstance(r.get("index"), int) for r in out):
        out.sort(key=lambda r: r["index"])
    return out


_SCALARS = (str, int, float, bool, type(None))
_ITEM_KEYS = ("_clientRef", "objectId", "error", "index")


def _documented_results(body: Any) -> list[Mapping[str, Any]] | None:
    """:func:`_results` of the documented shape without the walk, or ``None`` for any other.

    The documented shape is a list of batches, each a ``results`` list of
    items beside scalar counts and id lists. The answer is what the general
    walk returns for it; anything else (an unexpected value, an item the
    walk would look into) leaves the answer to the walk.
    """
    if type(body) is not list:
        return None
    out: list[Mapping[str, Any]] = []
    for batch in body:
        if type(batch) is not dict or "results" not in batch:
            return None
        for name, value in batch.items():
            if name == "results":
                if type(value) is not list:
                    return None
                for item in value:
                    if (type(item) is not dict or "status" not in item
                            or "attributes" in item or "results" in item
                            or not any(k in item for k in _ITEM_KEYS)):
                        return None
                    out.append(item)
            elif type(value) is list:
                if not all(isinstance(v, _SCALARS) for v in value):
                    return None
            elif not isinstance(value, _SCALARS):
                return None
    if out and all(isinstance(r.get("index"), int) for r in out):
        out.sort(key=lambda r: r["index"])
    return out


def _match_results(
    ctx: ChunkContext, group: list[_Write], results: list[Mapping[str, Any]], op: Op,
) -> dict[int, Mapping[str, Any]]:
    """Each write's result: by ``_clientRef``, by object id (updates), else by position."""
    matched: dict[int, Mapping[str, Any]] = {}
    by_ref = {str(r["_clientRef"]): r for r in results if r.get("_clientRef")}
    if by_ref:
        for i, write in enumerate(group):
            item = by_ref.get(f"r{write.row.index}")
            if item is not None:
                matched[i] = item
        return matched
    if op == "update":
        by_id = {str(r.get("objectId") or r.get("id")): r for r in results
                 if r.get("objectId") or r.get("id")}
        for i, write in enumerate(group):
            item = by_id.get(str(write.body["id"]))
            if item is not None:
                matched[i] = item
        if matched:
            return matched
    if len(results) == len(group):
        matched = dict(enumerate(results))
    return matched


def _collect(
    ctx: ChunkContext, job_id: str, group: list[_Write], submitted: float, op: Op,
) -> Flow[None]:
    """Read a job's per-item results once it is due, and settle each row.

    The results are read directly from ``/batches`` at the job's learned
    finish time (:class:`BulkTiming`): that one request carries every item's
    outcome. An answer that lists no or only some items means "not finished
    yet" under both known shapes (KUSTOMER_API.md, "Bulk": results are read
    once the job is complete); the job is read again later. The status
    endpoint is asked only when ``/batches`` cannot be read, or has not been
    ready three times in a row (to learn whether the job failed or expired).
    Items that end without an outcome are settled by reading Kustomer.
    The reads are deferrable (:attr:`RequestSpec.deferrable`): when jobs
    fall due faster than the budget allows, searches and submissions go
    first and the reads wait, so slow jobs do not slow the sync down.
    """
    base = f"/v1/bulk/{path_segment(job_id)}"
    read_results = RequestSpec(method="GET", path=f"{base}/batches", deferrable=True)
    reads = 0
    waiting = 0     # readable answers in a row that were not complete yet
    unreadable = 0  # answers about this job that could not be read at all
    matched: dict[int, Mapping[str, Any]] = {}
    while True:
        due = ctx.timing.due(submitted)
        wait = due - ctx.core.clock.now()
        if wait > 0:
            yield Sleep(wait)
            if ctx.timing.due(submitted) > due + 1e-9:
                continue  # a job found unfinished meanwhile moved every due time later
        reads += 1
        results: list[Mapping[str, Any]] | None
        try:
            answer = yield from request_flow(ctx.core, read_results)
            results = _results(answer.body)
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError, APIResponseValidationError):
            results = None
        if results is not None:
            matched = _match_results(ctx, group, results, op)
            if len(matched) == len(group):
                ctx.timing.finished(ctx.core.clock.now() - submitted, first_read=reads == 1)
                break
            waiting += 1
        status = "running"
        if results is None or waiting >= 3:
            status = yield from _job_status_flow(ctx, base)
            if results is not None and status in ("", "gone"):
                # /batches answers for the job: it exists and is not finished, whatever
                # the status endpoint says. Settling it by lookups now could re-create
                # rows the job will still write.
                status = "running"
            elif status == "":
                unreadable += 1
                status = "gone" if unreadable >= _JOB_READ_ATTEMPTS else "running"
            waiting = 0
        if status in _DONE_STATUSES or status in _FAILED_STATUSES or status == "gone":
            if status != "gone":
                # Finished by its status: one more read of the results, then settle.
                try:
                    answer = yield from request_flow(ctx.core, read_results)
                    matched = _match_results(ctx, group, _results(answer.body), op)
                except FATAL_ERRORS:
                    raise
                except (APIError, APIConnectionError, APIResponseValidationError):
                    pass
            break
        elapsed = ctx.core.clock.now() - submitted
        if elapsed > ctx.bulk_timeout:
            for write in group:
                _finish(ctx, write.row, Outcome.FAILED,
                        reason=f"bulk job {job_id} still unfinished after "
                               f"{ctx.bulk_timeout:.0f}s: {_MAY_HAVE}")
            return
        if results is not None:
            ctx.timing.unfinished(elapsed)
        if ctx.timing.due(submitted) <= ctx.core.clock.now():
            yield Sleep(max(0.25, ctx.timing.estimate * 0.5))
    _settle_written(ctx, group, matched, op)
    for i, write in enumerate(group):
        if write.row.result is None:
            yield from _one_row(ctx, write, _settle_item(ctx, write, matched.get(i), op))


def _written_id(item: Mapping[str, Any], write: _Write, op: Op) -> str | None:
    """The id of the object an item reports written, or ``None`` when it reports no write."""
    if str(item.get("status", "")).lower() not in _ITEM_OK:
        return None
    object_id = item.get("objectId") or item.get("id")
    if op == "update" and not object_id:
        object_id = write.body.get("id")
    return str(object_id) if object_id else None


def _settle_written(
    ctx: ChunkContext, group: list[_Write], matched: dict[int, Mapping[str, Any]], op: Op,
) -> None:
    """Settle at once the rows whose item Kustomer reports written, with an id.

    What :func:`_settle_item` does for such an item, for a whole job: the ids
    are remembered for the search lag with one lock taken, not one a row.
    Every other row is left to :func:`_settle_item`.
    """
    name, label = ctx.kind.name, ctx.key.label
    written: list[tuple[str, str]] = []
    for i, write in enumerate(group):
        item = matched.get(i)
        row = write.row
        if item is None or row.result is not None:
            continue
        object_id = _written_id(item, write, op)
        if object_id is None or write.intent not in (Outcome.CREATED, Outcome.UPDATED):
            continue
        row.result = UpsertResult(
            outcome=write.intent, object_type=name, id=object_id, key=label,
            key_value=row.key_value, fields_written=write.fields, row=row.index)
        written.append((row.key_value, object_id))
    if written and not ctx.dry_run:
        ctx.caches.remember_many(name, ctx.key, written, ctx.core.clock.now())


def _job_status_flow(ctx: ChunkContext, base: str) -> Flow[str]:
    """The job's status in lower case; ``gone`` on 404, ``""`` when unreadable."""
    try:
        response = yield from request_flow(ctx.core, RequestSpec(method="GET", path=base))
    except FATAL_ERRORS:
        raise
    except NotFoundError:
        return "gone"  # expired after it finished, or never readable: settle by lookups
    except (APIError, APIConnectionError, APIResponseValidationError):
        return ""
    return _job_status(response.data)


def _settle_item(ctx: ChunkContext, write: _Write, item: Mapping[str, Any] | None, op: Op) -> Flow[None]:
    if item is None:
        # No outcome for this item (job failed, unreadable, or expired): read Kustomer.
        yield from _reconcile(ctx, write)
        return
    item_status = str(item.get("status", "")).lower()
    object_id = _written_id(item, write, op)
    if object_id is not None:
        _finish(ctx, write.row, write.intent, id=object_id, fields_written=write.fields)
        return
    if item_status not in _ITEM_ERROR:
        yield from _reconcile(ctx, write)
        return
    detail = _item_error(item)
    error = APIError(status=_item_http_status(item, detail), method="POST" if op == "create" else "PUT",
                     path=f"{ctx.kind.collection}/bulk", errors=[detail],
                     hint="Kustomer refused this item of a bulk job")
    if op == "update" and write.row.known_id and _says_not_found(error):
        yield from _refind(ctx, write.row)
    elif op == "create" and error.is_duplicate:
        yield from _reconcile(ctx, write, refused=True)
    elif op == "update" and error.is_conflict:
        yield from _update_one(ctx, write, str(write.body["id"]), None)
    else:
        _finish(ctx, write.row, Outcome.REJECTED, error=error)


def _item_error(item: Mapping[str, Any]) -> ErrorDetail:
    error = item.get("error") or item.get("errors")
    if isinstance(error, list) and error:
        error = error[0]
    return ErrorDetail.from_api(error if error is not None else "no error details")


def _item_http_status(item: Mapping[str, Any], detail: ErrorDetail) -> int:
    for value in (detail.status, item.get("statusCode")):
        try:
            status = int(str(value))
        except ValueError:
            continue
        if 400 <= status < 600:
            return status
    text = detail.text.lower()
    if "conflict" in text or "stale" in text:
        return 409
    return 400


# -- 5. reconciliation --------------------------------------------------------------

def _reconcile(ctx: ChunkContext, write: _Write, *, refused: bool = False) -> Flow[None]:
    """Settle a row whose write is uncertain by reading Kustomer, then writing once if needed.

    ``refused``: Kustomer refused our create as a duplicate, so the object it
    finds was there before us (``unchanged``/``updated``, never ``created``).
    A unique anchor (external id, email) in the record is looked up with the
    direct endpoints, which are exact and current; only records keyed on a
    custom field alone depend on the search index, searched again after
    short waits before a create is re-sent. An update is settled by reading
    the object by id.
    """
    if write.intent is Outcome.UPDATED:
        yield from _reconcile_update(ctx, write)
        return
    row = write.row
    key, value = _anchor(ctx, row)
    # Our own write may already have landed (a lost or unreadable answer, a 5xx).
    ours_uncertain = not refused
    resends = 0
    while True:
        matches: list[Found] = []
        for pause in ctx.reconcile_waits if key.kind == "custom" and not refused else (0.0,):
            if pause:
                yield Sleep(pause)
            matches = yield from _flows.candidates_flow(ctx.core, ctx.kind, key, value)
            matches = [m for m in matches if row.key_value in ctx.key.value_of(m[0])]
            if matches:
                break
        if len(matches) > 1:
            ids = tuple(m[0].id for m in matches)
            _finish(ctx, row, Outcome.AMBIGUOUS, candidates=ids,
                    reason=f"{len(ids)} {ctx.kind.name}s have {ctx.key.label}={row.key_value!r}")
            return
        if matches:
            yield from _reconcile_found(ctx, write, matches[0], refused)
            return
        if refused and ours_uncertain:
            # Refused as a duplicate, yet no lookup finds it: our earlier write may be it.
            _finish(ctx, row, Outcome.FAILED, reason="Kustomer refused the re-sent create as a "
                    f"duplicate but no lookup finds the record: {_MAY_HAVE}")
            return
        if refused:
            _finish(ctx, row, Outcome.REJECTED, reason="Kustomer refused the create as a duplicate "
                    "of another object (a unique value such as an email or phone is taken)")
            return
        resends += 1
        try:
            obj = yield from _flows.create_flow(ctx.core, ctx.kind, {
                k: v for k, v in write.body.items() if k != "id"})
        except FATAL_ERRORS:
            raise
        except APIError as exc:
            if exc.is_duplicate:
                refused = True  # a write we could not see yet (a late bulk job) got there first
                continue
            if is_uncertain(exc) and resends < max(1, ctx.core.config.max_retries):
                ours_uncertain = True
                continue
            _finish(ctx, row, Outcome.FAILED if is_uncertain(exc) else failure_outcome(exc),
                    error=exc, reason=f"{reason_of(exc)}" + (
                        f" (the create was sent: {_MAY_HAVE})" if is_uncertain(exc) else ""))
            return
        except (APIConnectionError, APIResponseValidationError) as exc:
            if resends < max(1, ctx.core.config.max_retries):
                ours_uncertain = True
                continue
            _finish(ctx, row, Outcome.FAILED, error=exc,
                    reason=f"{reason_of(exc)} (the create was sent: {_MAY_HAVE})")
            return
        _finish(ctx, row, Outcome.CREATED, id=obj.id, fields_written=write.fields)
        return


def _reconcile_found(ctx: ChunkContext, write: _Write, found: Found, refused: bool) -> Flow[None]:
    row = write.row
    obj, fresh = found
    try:
        live, update = yield from settle_flow(
            ctx.core, ctx.kind, ctx.key, row.key_value, row.mapped, obj, fresh=fresh,
            company_id=row.company_id, policy=ctx.policy)
    except (InvalidRecordError, UnknownCompanyLinkError) as exc:
        _finish(ctx, row, Outcome.FAILED, error=exc)
        return
    if live is None:
        _finish(ctx, row, Outcome.FAILED, reason=f"could not settle the write: {_MAY_HAVE}")
        return
    if update is None:
        # Kustomer holds exactly the row's values: ours if our create may have landed.
        _finish(ctx, row, Outcome.UNCHANGED if refused else write.intent, id=live.id,
                fields_written=() if refused else write.fields)
        return
    if ctx.mode == "create_only":
        _finish(ctx, row, Outcome.SKIPPED, id=live.id,
                reason="already exists (created concurrently) and mode is create_only")
        return
    intent = Outcome.UPDATED if refused else write.intent
    yield from _update_one(ctx, _Write(row, {"id": live.id, **update.body}, update.fields,
                                       intent), live.id, update.body)


def _replan(ctx: ChunkContext, row: Row, object_id: str) -> Flow[tuple[Any, UpdatePlan | None] | None]:
    """Read the object and plan the row's update again; ``None`` once the row is settled
    (the object is gone, or the update cannot be planned safely)."""
    live = yield from read_flow(ctx.core, ctx.kind, object_id)
    if live is None and row.known_id:
        yield from _refind(ctx, row)
        return None
    if live is None:
        _finish(ctx, row, Outcome.FAILED,
                reason=f"the {ctx.kind.name} to update is gone (deleted?): not written")
        return None
    try:
        return live, _readback.plan(live, ctx.kind, ctx.key, row.mapped, row.company_id, ctx.policy)
    except (InvalidRecordError, UnknownCompanyLinkError) as exc:
        _finish(ctx, row, Outcome.FAILED, error=exc)
        return None


def _reconcile_update(ctx: ChunkContext, write: _Write) -> Flow[None]:
    """Settle an update whose bulk outcome is unknown: read the object and compare; applied
    → ``updated``; not applied → sent once more (``readback.reconcile_update_flow``, as the
    single upsert)."""
    row = write.row
    yield from _settle_update(ctx, write, _readback.reconcile_update_flow(
        ctx.core, ctx.kind, ctx.key, row.key_value, row.mapped, str(write.body["id"]), None,
        company_id=row.company_id, policy=ctx.policy, resend=True))


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
