"""Single-record operations as flows: get, find, create, update, upsert.

Each function is a generator run by the sync or the async client (see
:mod:`kustomer_activations._runners`), so both clients behave the same.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Literal, TypeVar, cast

from .._core.effects import Flow
from .._core.request import Core, RequestSpec, path_segment, request_flow
from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    InvalidRecordError,
    KustomerError,
    MissingKeyError,
    NotFoundError,
    UnknownCompanyLinkError,
    reason_of,
)
from ..mapping import FieldMapping, MappedRecord
from ..merge import plan_create
from ..models import (
    CompanyInput,
    CustomerInput,
    CustomSchema,
    SyncKey,
    validate_company_payload,
    validate_customer_payload,
)
from ..models.custom import coerce_custom
from ..results import Outcome, UpsertResult
from . import readback as _readback
from .kinds import COMPANY, ObjectKind
from .readback import (
    FATAL_ERRORS,
    REFUSED_STATUSES,
    WritePolicy,
    data_object,
    is_uncertain,
    key_visible,
    read_flow,
    settle_flow,
)

__all__ = [
    "BoundedMap",
    "Caches",
    "Found",
    "Mode",
    "WritePolicy",
    "create_flow",
    "find_flow",
    "get_flow",
    "prepare_record",
    "search_flow",
    "upsert_flow",
]

Mode = Literal["upsert", "update_only", "create_only"]
MODES: tuple[str, ...] = ("upsert", "update_only", "create_only")
SEARCH_PATH = "/v1/customers/search"
#: Kustomer's search page size ceiling and page cap.
SEARCH_PAGE_SIZE = 500
SEARCH_MAX_PAGES = 100

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(MutableMapping[K, V]):
    """A thread-safe mapping of at most ``limit`` entries that forgets the least used.

    Two generations of plain dicts (an ``OrderedDict`` costs ~100 more bytes
    per entry): new entries and hits go to the young one; when it holds
    ``limit // 2``, the old one is dropped and the young one becomes old. So
    the ``limit // 2`` most recently used entries are always kept.
    """

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError("limit must be at least 2")
        self.limit = limit
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}
        self._lock = threading.Lock()

    def _put(self, key: K, value: V) -> None:
        self._young[key] = value
        if len(self._young) >= self.limit // 2:
            self._old, self._young = self._young, {}

    def __getitem__(self, key: K) -> V:
        with self._lock:
            if key in self._young:
                return self._young[key]
            value = self._old.pop(key)  # KeyError when absent
            self._put(key, value)
            return value

    def __setitem__(self, key: K, value: V) -> None:
        self.set_many(((key, value),))

    def get(self, key: K, default: Any = None) -> Any:
        """The value for ``key`` (now among the most recently used), else ``default``.

        As ``Mapping.get``, without the ``KeyError`` a miss costs there.
        """
        with self._lock:
            young, old = self._young, self._old
            if key in young:
                return young[key]
            if key not in old:
                return default
            value = old.pop(key)
            self._put(key, value)
            return value

    def set_many(self, items: Iterable[tuple[K, V]]) -> None:
        """Set every ``(key, value)`` of ``items``, taking the lock once."""
        items = list(items)
        with self._lock:
            for key, value in items:
                self._old.pop(key, None)
                self._put(key, value)

    def __delitem__(self, key: K) -> None:
        with self._lock:
            found = self._young.pop(key, self) is not self
            found = self._old.pop(key, self) is not self or found
        if not found:
            raise KeyError(key)

    @property
    def empty(self) -> bool:
        """Whether nothing is held (cheaper than ``len``)."""
        return not self._young and not self._old

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._young or key in self._old

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            keys = [*self._old, *(k for k in self._young if k not in self._old)]
        return iter(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._young) + sum(1 for k in self._old if k not in self._young)


_STAMP = struct.Struct("<d")


class Caches:
    """Per-org lookups worth remembering: custom-attribute metadata, company ids.

    Shared by a client and its ``with_options`` copies; thread-safe enough for
    idempotent fills (two threads may both fetch; both store the same answer).
    What grows with the rows a client writes is bounded (:attr:`RECENT_MAX`,
    :attr:`COMPANY_IDS_MAX`), so a long sync runs in flat memory.
    """

    #: How many recently written keys are remembered (at least half of them
    #: always), and for how long (seconds). The search index lags by seconds.
    RECENT_MAX = 20_000
    RECENT_SECONDS = 900.0
    #: How many company ids (by external id) are remembered, at least half of them always.
    COMPANY_IDS_MAX = 50_000

    def __init__(self) -> None:
        self.schemas: dict[str, CustomSchema] = {}
        self.company_ids: BoundedMap[str, str] = BoundedMap(self.COMPANY_IDS_MAX)
        self._lock = threading.Lock()
        self._identity: dict[str, FieldMapping] = {}
        # hash((type, key, value)) -> the write time and the id: ~130 bytes an entry.
        # The map never leaves this process, so Python's own (keyed, 64-bit) hash serves:
        # a collision costs one read by id, which the caller checks against the key.
        self._recent: BoundedMap[int, bytes] = BoundedMap(self.RECENT_MAX)

    @staticmethod
    def _entry(object_type: str, key: SyncKey, key_value: str) -> int:
        return hash((object_type, key.label, key_value))

    def remember(self, object_type: str, key: SyncKey, key_value: str, object_id: str,
                 now: float) -> None:
        """Note that this client just wrote the object holding ``key_value``.

        Search reads an index that lags (KUSTOMER_API.md, "Search index lag"):
        a key written moments ago can be missing from it. A miss for a
        remembered key is checked by reading the object by id, not trusted.
        """
        self.remember_many(object_type, key, ((key_value, object_id),), now)

    def remember_many(self, object_type: str, key: SyncKey, written: Iterable[tuple[str, str]],
                      now: float) -> None:
        """:meth:`remember` each ``(key_value, object_id)`` of ``written`` (one bulk job's rows)."""
        stamp = _STAMP.pack(now)
        entry = self._entry
        self._recent.set_many(
            (entry(object_type, key, key_value), stamp + object_id.encode("utf-8", "surrogatepass"))
            for key_value, object_id in written)

    def recent_id(self, object_type: str, key: SyncKey, key_value: str, now: float) -> str | None:
        """The id this client wrote for ``key_value`` within :attr:`RECENT_SECONDS`, if any.

        It may (with odds of ~2⁻⁶⁴ a pair) be another key's: check the object read by id.
        """
        if self._recent.empty:
            return None
        hit: bytes | None = self._recent.get(self._entry(object_type, key, key_value))
        if hit is None or now - _STAMP.unpack_from(hit)[0] > self.RECENT_SECONDS:
            return None
        return hit[_STAMP.size:].decode("utf-8", "surrogatepass")

    def identity_mapping(self, object_type: str) -> FieldMapping:
        """The pass-through mapping for Kustomer-shaped records."""
        with self._lock:
            if object_type not in self._identity:
                self._identity[object_type] = FieldMapping.identity(object_type)  # type: ignore[arg-type]
            return self._identity[object_type]


def check_mode(mode: str) -> Mode:
    """Validate an upsert mode string."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; use one of {', '.join(MODES)}")
    return cast(Mode, mode)


def get_flow(core: Core, kind: ObjectKind, object_id: str) -> Flow[Any]:
    """``GET /v1/<objects>/{id}`` → the model."""
    if not object_id:
        raise ValueError("an object id is required")
    path = kind.item_path(object_id)
    response = yield from request_flow(core, RequestSpec(method="GET", path=path))
    return kind.from_api(data_object(response.data, path))


def search_flow(
    core: Core, object_type: str, criteria: Sequence[Mapping[str, Any]], *,
    page_size: int = SEARCH_PAGE_SIZE,
) -> Flow[list[Mapping[str, Any]]]:
    """Every hit of an ``and`` search, page by page (search budget, 100-page cap).

    Paging follows ``links.next`` (a page can be short before the end);
    without ``links``, ``meta.totalPages`` or a short page ends it. An
    answer that cannot be read raises :class:`APIResponseValidationError`:
    it is never taken for "no match".
    """
    body = {"and": list(criteria), "queryContext": object_type}
    hits: list[Mapping[str, Any]] = []
    page = 1
    while True:
        response = yield from request_flow(core, RequestSpec(
            method="POST", path=SEARCH_PATH, params={"page": page, "pageSize": page_size},
            json=body, bucket="search", idempotent=True,
        ))
        data = _resource_list(response.body, response.status, "POST", SEARCH_PATH)
        hits.extend(data)
        links = response.body.get("links") if isinstance(response.body, Mapping) else None
        if isinstance(links, Mapping) and "next" in links:
            last = not links.get("next")
        else:
            total_pages = response.meta.get("totalPages")
            last = len(data) < page_size or (isinstance(total_pages, int) and page >= total_pages)
        if last or page >= SEARCH_MAX_PAGES:
            return hits
        page += 1


def _resource_list(body: Any, status: int, method: str, path: str) -> list[Mapping[str, Any]]:
    """The ``data`` list of a list answer, each item a resource with an id; else a typed error."""
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list) or not all(
        isinstance(d, Mapping) and isinstance(d.get("id"), str) and d["id"] for d in data
    ):
        raise APIResponseValidationError(
            "expected a 'data' list of resources with ids", method=method, path=path,
            status=status, body=body,
        )
    return data


def search_value(key: SyncKey, value: Any) -> Any:
    """The typed value to search a custom key for (a ``Num`` key searches a number)."""
    if key.kind == "custom" and key.field is not None:
        return coerce_custom(key.field, value, parse_strings=True)
    return value


#: A candidate object and whether it came from a live read (by id or a direct lookup).
Found = tuple[Any, bool]


def find_flow(core: Core, kind: ObjectKind, key: SyncKey, value: Any) -> Flow[list[Any]]:
    """Every object whose ``key`` equals ``value``, confirmed client-side.

    Direct endpoints for external ids and emails; a search for custom keys.
    Kustomer's answers are treated as candidates: only objects that really
    hold the value are returned (an email lookup may match any of a
    customer's emails, which counts: emails are unique across customers).
    A candidate whose answer does not show the key's attribute (a search
    hit may carry only a few attributes) is read by id before it is judged.
    """
    found = yield from candidates_flow(core, kind, key, value)
    return [obj for obj, _ in found]


def candidates_flow(core: Core, kind: ObjectKind, key: SyncKey, value: Any) -> Flow[list[Found]]:
    """Like :func:`find_flow`, also saying which objects came from a live read."""
    key.check_supported(kind.name)
    wanted = key.normalise(value)
    found: list[Found] = []
    if key.kind == "external_id" and kind is COMPANY:
        response = yield from request_flow(core, RequestSpec(
            method="GET", path=kind.collection, params={"externalId": str(value)},
        ))
        listed = _resource_list(response.body, response.status, "GET", kind.collection)
        found = [(kind.from_api(r), False) for r in listed]
    elif key.kind in ("external_id", "email"):
        segment = "externalId=" if key.kind == "external_id" else "email="
        path = f"{kind.collection}/{segment}{path_segment(str(value))}"
        try:
            response = yield from request_flow(core, RequestSpec(method="GET", path=path))
        except NotFoundError:
            return []
        found = [(kind.from_api(data_object(response.data, path, response.status)), True)]
    else:
        criterion = {key.search_attribute(kind.name): {"equals": search_value(key, value)}}
        hits = yield from search_flow(core, kind.name, [criterion])
        found = [(kind.from_api(r), False) for r in hits]
    return (yield from confirm_flow(core, kind, key, wanted, found))


def confirm_flow(
    core: Core, kind: ObjectKind, key: SyncKey, wanted: str, found: list[Found],
) -> Flow[list[Found]]:
    """The candidates that hold ``wanted``; unconfirmed ones are read by id first."""
    out: list[Found] = []
    for obj, fresh in found:
        if not key_visible(obj, key):
            obj = yield from read_flow(core, kind, obj.id)
            fresh = True
            if obj is None:
                continue
        if wanted in key.value_of(obj):
            out.append((obj, fresh))
    return out


def _validated(kind: ObjectKind, data: Any, *, for_create: bool) -> dict[str, Any]:
    if isinstance(data, (CustomerInput, CompanyInput)):
        data = data.to_payload()
    if not isinstance(data, Mapping):
        raise InvalidRecordError(f"expected a mapping of Kustomer fields, got {type(data).__name__}")
    if kind is COMPANY:
        return validate_company_payload(data, for_create=for_create)
    return validate_customer_payload(data)


def create_flow(core: Core, kind: ObjectKind, body: Mapping[str, Any]) -> Flow[Any]:
    """``POST /v1/<objects>`` (never blindly re-sent: see the retry rules)."""
    response = yield from request_flow(core, RequestSpec(
        method="POST", path=kind.collection, json=dict(body),
    ))
    return kind.from_api(data_object(response.data, kind.collection, response.status, "POST"))


def update_flow(core: Core, kind: ObjectKind, object_id: str, body: Mapping[str, Any]) -> Flow[Any]:
    """``PUT /v1/<objects>/{id}`` with a partial body (``replace`` stays false)."""
    path = kind.item_path(object_id)
    response = yield from request_flow(core, RequestSpec(method="PUT", path=path, json=dict(body)))
    return kind.from_api(data_object(response.data, path, response.status, "PUT"))


def create_object_flow(core: Core, kind: ObjectKind, data: Any) -> Flow[Any]:
    """Validate ``data`` locally, then create."""
    body = _validated(kind, data, for_create=True)
    return (yield from create_flow(core, kind, body))


def update_object_flow(core: Core, kind: ObjectKind, object_id: str, data: Any) -> Flow[Any]:
    """Validate ``data`` locally, then update only the fields given.

    Kustomer unlinks a customer from its company when an update omits
    ``company``; so unless ``data`` sets one, the customer is read first and
    its current company is sent back with the update.
    """
    body = _validated(kind, data, for_create=False)
    if kind is not COMPANY and "company" not in body:
        current = yield from get_flow(core, kind, object_id)
        if not current.company_known:
            raise UnknownCompanyLinkError(object_id)
        if current.company_id:
            body["company"] = current.company_id
    return (yield from update_flow(core, kind, object_id, body))


def prepare_record(
    caches: Caches, kind: ObjectKind, record: Any, mapping: FieldMapping | None
) -> MappedRecord:
    """Map and validate one input record (raises :class:`InvalidRecordError`)."""
    if type(record) is not dict:  # the usual row skips these class checks
        if isinstance(record, MappedRecord):
            return record
        if isinstance(record, (CustomerInput, CompanyInput)):
            record = record.to_payload()
        if not isinstance(record, Mapping):
            raise InvalidRecordError(f"expected a mapping (a row), got {type(record).__name__}")
    return (mapping or caches.identity_mapping(kind.name)).apply(record)


def key_of(key: SyncKey, mapped: MappedRecord) -> tuple[Any, str]:
    """The record's raw key value and its normalised form; a blank key is missing."""
    raw = key.value_in(mapped.payload)
    if raw is None or not str(raw).strip():
        raise MissingKeyError(f"the sync key {key.label} has no value", field=key.label)
    return raw, key.normalise(raw)


def schema_flow(core: Core, caches: Caches, object_type: str) -> Flow[CustomSchema]:
    """The custom attributes Kustomer defines for ``object_type``, fetched once."""
    schema = caches.schemas.get(object_type)
    if schema is None:
        response = yield from request_flow(core, RequestSpec(
            method="GET", path=f"/v1/metadata/{object_type}",
        ))
        properties = _nested(response.body, "data", "attributes", "properties")
        if not isinstance(properties, Mapping):
            raise APIResponseValidationError(
                "expected 'data.attributes.properties' (the custom attribute definitions)",
                method="GET", path=f"/v1/metadata/{object_type}", status=response.status,
                body=response.body,
            )
        schema = CustomSchema.from_api(response.body)
        caches.schemas[object_type] = schema
    return schema


def _nested(body: Any, *names: str) -> Any:
    for name in names:
        if not isinstance(body, Mapping):
            return None
        body = body.get(name)
    return body


def check_fields_flow(
    core: Core, caches: Caches, kind: ObjectKind, mapped: MappedRecord
) -> Flow[None]:
    """Refuse custom attribute names that Kustomer does not define (typos)."""
    custom = mapped.payload.get("custom")
    if custom:
        schema = yield from schema_flow(core, caches, kind.name)
        schema.check(custom.keys())


def company_id_flow(core: Core, caches: Caches, external_id: str) -> Flow[str]:
    """The Kustomer id of the company with this external id (cached)."""
    cached: str | None = caches.company_ids.get(external_id)
    if cached is not None:
        return cached
    matches = yield from find_flow(core, COMPANY, SyncKey.external_id(), external_id)
    if not matches:
        raise InvalidRecordError(
            "no company has this externalId; sync companies first or fix the link",
            field="companyExternalId", value=external_id,
        )
    if len(matches) > 1:
        raise InvalidRecordError(
            f"{len(matches)} companies share this externalId ({', '.join(m.id for m in matches)}); "
            "fix the duplicates in Kustomer",
            field="companyExternalId", value=external_id,
        )
    company_id: str = matches[0].id
    caches.company_ids[external_id] = company_id
    return company_id


def failure_outcome(exc: Exception) -> Outcome:
    """REJECTED when Kustomer refused the record, FAILED when it could not complete.

    Only a documented refusal (400, 409, 413, 422) is "refused"; a 404, 418
    or any other status proves nothing about the record.
    """
    if isinstance(exc, InvalidRecordError):
        return Outcome.INVALID
    if isinstance(exc, FATAL_ERRORS):
        return Outcome.FAILED  # the key or its roles, not this record
    if isinstance(exc, APIError) and exc.status in REFUSED_STATUSES:
        return Outcome.REJECTED
    return Outcome.FAILED



def upsert_flow(
    core: Core,
    caches: Caches,
    kind: ObjectKind,
    record: Any,
    *,
    key: SyncKey,
    mode: Mode = "upsert",
    mapping: FieldMapping | None = None,
    validate_fields: bool = False,
    row: int | None = None,
    policy: WritePolicy | None = None,
) -> Flow[UpsertResult]:
    """Update-or-create one record, keyed on ``key``; never raises for the record's own faults.

    0 matches → create (``update_only``: skipped); 1 match → update only the
    mapped fields, or ``unchanged`` with no write (``create_only``: skipped);
    2+ matches → ``ambiguous``. A create refused as a duplicate (another
    writer got there first), whose answer was lost, or answered with a 5xx
    is reconciled by looking the key up again and re-sent only when absent.
    Authentication and permission errors are raised: they concern every
    record, not this one. See :mod:`._readback` for when objects are read
    by id before an update is planned.
    """
    # A key this kind cannot have is the caller's error, raised as upsert_many raises it:
    # otherwise the record would look at fault ("the sync key email has no value").
    key.check_supported(kind.name)
    base: dict[str, Any] = {"object_type": kind.name, "key": key.label, "row": row}
    source = record if isinstance(record, Mapping) else None
    key_value: str | None = None
    try:
        mapped = prepare_record(caches, kind, record, mapping)
        raw_value, key_value = key_of(key, mapped)
        if validate_fields:
            yield from check_fields_flow(core, caches, kind, mapped)
        company_id = None
        if mapped.company_external_id:
            company_id = yield from company_id_flow(core, caches, mapped.company_external_id)
        upsert = _Upsert(core, caches, kind, mapped, key, raw_value, key_value, mode, company_id,
                         base, policy or WritePolicy())
        found = yield from upsert.candidates()
        return (yield from upsert.decide(found))
    except FATAL_ERRORS:
        raise
    except KustomerError as exc:
        error = exc.for_record(row) if isinstance(exc, InvalidRecordError) and row is not None else exc
        matched = exc.customer_id if isinstance(exc, UnknownCompanyLinkError) else None
        return UpsertResult(
            outcome=failure_outcome(exc), error=error, key_value=key_value, source=source,
            reason=reason_of(error), id=matched, **base,
        )


def _find_by_unique_flow(core: Core, kind: ObjectKind, body: Mapping[str, Any]) -> Flow[list[Found]]:
    """Objects holding the body's ``externalId`` or (customers) first email, via direct lookups."""
    if body.get("externalId") and kind is not COMPANY:
        return (yield from candidates_flow(core, kind, SyncKey.external_id(), body["externalId"]))
    email_key = SyncKey.email()
    if kind is not COMPANY and email_key.value_in(body):
        return (yield from candidates_flow(core, kind, email_key, email_key.value_in(body)))
    return []


class _Upsert:
    """One record's upsert, step by step (the state every step needs, in one place)."""

    def __init__(self, core: Core, caches: Caches, kind: ObjectKind, mapped: MappedRecord,
                 key: SyncKey, raw_value: Any, key_value: str, mode: Mode,
                 company_id: str | None, base: Mapping[str, Any], policy: WritePolicy) -> None:
        self.core, self.caches, self.kind, self.mapped = core, caches, kind, mapped
        self.key, self.raw_value, self.key_value, self.mode = key, raw_value, key_value, mode
        self.company_id, self.base, self.policy = company_id, base, policy

    def result(self, outcome: Outcome, **fields: Any) -> UpsertResult:
        if outcome in (Outcome.CREATED, Outcome.UPDATED) and fields.get("id"):
            self.caches.remember(self.kind.name, self.key, self.key_value, fields["id"],
                                 self.core.clock.now())
        return UpsertResult(outcome=outcome, key_value=self.key_value, **self.base, **fields)

    def candidates(self) -> Flow[list[Found]]:
        """The objects holding the key; a miss for a key this client just wrote is read by id."""
        found = yield from candidates_flow(self.core, self.kind, self.key, self.raw_value)
        if not found and self.key.kind == "custom":
            recent = self.caches.recent_id(self.kind.name, self.key, self.key_value,
                                           self.core.clock.now())
            if recent is not None:
                obj = yield from read_flow(self.core, self.kind, recent)
                if obj is not None and self.key_value in self.key.value_of(obj):
                    found = [(obj, True)]
        return found

    def decide(self, found: list[Found], *, again: bool = True) -> Flow[UpsertResult]:
        if len(found) > 1:
            ids = tuple(obj.id for obj, _ in found)
            return self.result(
                Outcome.AMBIGUOUS, candidates=ids,
                reason=f"{len(ids)} {self.kind.name}s have {self.key.label}={self.key_value!r}; "
                       "nothing written",
            )
        if not found:
            if self.mode == "update_only":
                return self.result(Outcome.SKIPPED, reason="no match and mode is update_only")
            return (yield from self.create())
        if self.mode == "create_only":
            return self.result(Outcome.SKIPPED, id=found[0][0].id,
                               reason="already exists and mode is create_only")
        obj, fresh = found[0]
        return (yield from self.update(obj, fresh, again=again))

    def update(self, obj: Any, fresh: bool, *, again: bool = True,
               matched: Outcome = Outcome.UNCHANGED) -> Flow[UpsertResult]:
        live, update = yield from settle_flow(
            self.core, self.kind, self.key, self.key_value, self.mapped, obj, fresh=fresh,
            company_id=self.company_id, policy=self.policy,
        )
        if live is None:
            if not again:
                return self.result(Outcome.FAILED,
                                   reason="the matched object changed while it was being read")
            # The index's match no longer holds the key: look again, from live data.
            found = yield from self.candidates()
            return (yield from self.decide(found, again=False))
        if update is None:
            return self.result(matched, id=live.id)
        if self.mode == "create_only":
            return self.result(Outcome.SKIPPED, id=live.id,
                               reason="already exists (created concurrently) and mode is create_only")
        # After our own create (matched=CREATED) the object is ours, even if it needs a
        # follow-up update (e.g. a link no answer shows).
        written = Outcome.UPDATED if matched is Outcome.UNCHANGED else matched
        settled = yield from _readback.send_update_flow(
            self.core, self.kind, self.key, self.key_value, self.mapped, live, update,
            company_id=self.company_id, policy=self.policy,
        )
        if settled.status == "written":
            return self.result(written, id=settled.id, fields_written=update.fields
                               if settled.fields is None else settled.fields)
        if settled.status == "unchanged":
            return self.result(matched, id=settled.id)
        return self.result(Outcome.FAILED, error=settled.error,
                           reason=settled.failure_reason(self.kind.name))

    def create(self) -> Flow[UpsertResult]:
        """Create; an uncertain answer is settled by a lookup, and re-sent only when absent."""
        plan = plan_create(self.mapped, object_type=self.kind.name, company_id=self.company_id)
        sends = 0
        ours_uncertain = False  # an earlier send of ours may have landed
        error: KustomerError
        while True:
            sends += 1
            try:
                created = yield from create_flow(self.core, self.kind, plan.body)
                return self.result(Outcome.CREATED, id=created.id, fields_written=plan.fields)
            except APIError as exc:
                if not (exc.is_duplicate or is_uncertain(exc)):
                    raise
                refused, error = exc.is_duplicate, exc
            except (APIConnectionError, APIResponseValidationError) as exc:
                refused, error = False, exc
            found = yield from self.candidates()
            if not found and not refused and self.key.kind == "custom":
                # Search lags: a create that landed may not be searchable yet.
                found = yield from _find_by_unique_flow(self.core, self.kind, plan.body)
                found = [(o, f) for o, f in found if self.key_value in self.key.value_of(o)]
            if found:
                # Refused as a duplicate: it was there before us. Otherwise ours landed.
                matched = Outcome.UNCHANGED if refused else Outcome.CREATED
                if len(found) > 1 or (self.mode == "create_only" and refused):
                    return (yield from self.decide(found, again=False))
                obj, fresh = found[0]
                return (yield from self.update(obj, fresh, again=False, matched=matched))
            if refused and ours_uncertain:
                return self.result(
                    Outcome.FAILED, error=error,
                    reason=f"{reason_of(error)} (refused as a duplicate after an earlier send "
                           "whose answer was lost, yet no lookup finds it: it may have been "
                           "written)")
            if refused:
                raise error  # a duplicate of another unique value (e.g. an email someone holds)
            ours_uncertain = True
            # A re-send after a lookup found nothing is not a blind retry: allow one even
            # with max_retries=0, and up to max_retries when Kustomer keeps failing.
            if sends > max(1, self.core.config.max_retries):
                return self.result(
                    Outcome.FAILED, error=error,
                    reason=f"{reason_of(error)} (the create was sent {sends} times and is not "
                           "found: it may have been written)",
                )
