"""Single-record operations as flows: get, find, create, update, upsert.

Each function is a generator run by the sync or the async client (see
:mod:`kustomer_activations._runners`), so both clients behave the same.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from .._core.effects import Flow
from .._core.request import Core, RequestSpec, path_segment, request_flow
from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    AuthenticationError,
    InvalidRecordError,
    MissingKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    reason_of,
)
from ..mapping import FieldMapping, MappedRecord
from ..merge import plan_create, plan_update
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
from ._kinds import COMPANY, ObjectKind

__all__ = [
    "Caches",
    "Mode",
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

class Caches:
    """Per-org lookups worth remembering: custom-attribute metadata, company ids.

    Shared by a client and its ``with_options`` copies; thread-safe enough for
    idempotent fills (two threads may both fetch; both store the same answer).
    """

    def __init__(self) -> None:
        self.schemas: dict[str, CustomSchema] = {}
        self.company_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._identity: dict[str, FieldMapping] = {}

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


def _data_object(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise APIResponseValidationError(
            "expected a 'data' object", method="GET", path=where, status=200, body=data
        )
    return data


def get_flow(core: Core, kind: ObjectKind, object_id: str) -> Flow[Any]:
    """``GET /v1/<objects>/{id}`` → the model."""
    if not object_id:
        raise ValueError("an object id is required")
    path = kind.item_path(object_id)
    response = yield from request_flow(core, RequestSpec(method="GET", path=path))
    return kind.from_api(_data_object(response.data, path))


def search_flow(
    core: Core, object_type: str, criteria: Sequence[Mapping[str, Any]], *,
    page_size: int = SEARCH_PAGE_SIZE,
) -> Flow[list[Mapping[str, Any]]]:
    """Every hit of an ``and`` search, page by page (search budget, 100-page cap)."""
    body = {"and": list(criteria), "queryContext": object_type}
    hits: list[Mapping[str, Any]] = []
    page = 1
    while True:
        response = yield from request_flow(core, RequestSpec(
            method="POST", path=SEARCH_PATH, params={"page": page, "pageSize": page_size},
            json=body, bucket="search", idempotent=True,
        ))
        data = response.data if isinstance(response.data, list) else []
        hits.extend(d for d in data if isinstance(d, Mapping))
        total_pages = response.meta.get("totalPages")
        last = len(data) < page_size or (isinstance(total_pages, int) and page >= total_pages)
        if last or page >= SEARCH_MAX_PAGES:
            return hits
        page += 1


def search_value(key: SyncKey, value: Any) -> Any:
    """The typed value to search a custom key for (a ``Num`` key searches a number)."""
    if key.kind == "custom" and key.field is not None:
        return coerce_custom(key.field, value, parse_strings=True)
    return value


def find_flow(core: Core, kind: ObjectKind, key: SyncKey, value: Any) -> Flow[list[Any]]:
    """Every object whose ``key`` equals ``value``, confirmed client-side.

    Direct endpoints for external ids and emails; a search for custom keys.
    Kustomer's answers are treated as candidates: only objects that really
    hold the value are returned (an email lookup may match any of a
    customer's emails, which counts: emails are unique across customers).
    """
    key.check_supported(kind.name)
    wanted = key.normalise(value)
    if key.kind == "external_id" and kind is COMPANY:
        response = yield from request_flow(core, RequestSpec(
            method="GET", path=kind.collection, params={"externalId": str(value)},
        ))
        resources = response.data if isinstance(response.data, list) else []
    elif key.kind in ("external_id", "email"):
        segment = "externalId=" if key.kind == "external_id" else "email="
        path = f"{kind.collection}/{segment}{path_segment(str(value))}"
        try:
            response = yield from request_flow(core, RequestSpec(method="GET", path=path))
        except NotFoundError:
            return []
        resources = [response.data] if isinstance(response.data, Mapping) else []
    else:
        criterion = {key.search_attribute(kind.name): {"equals": search_value(key, value)}}
        resources = yield from search_flow(core, kind.name, [criterion])
    found = [kind.from_api(r) for r in resources if isinstance(r, Mapping)]
    return [obj for obj in found if wanted in key.value_of(obj)]


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
    return kind.from_api(_data_object(response.data, kind.collection))


def update_flow(core: Core, kind: ObjectKind, object_id: str, body: Mapping[str, Any]) -> Flow[Any]:
    """``PUT /v1/<objects>/{id}`` with a partial body (``replace`` stays false)."""
    path = kind.item_path(object_id)
    response = yield from request_flow(core, RequestSpec(method="PUT", path=path, json=dict(body)))
    return kind.from_api(_data_object(response.data, path))


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
        if current.company_id:
            body["company"] = current.company_id
    return (yield from update_flow(core, kind, object_id, body))


def prepare_record(
    caches: Caches, kind: ObjectKind, record: Any, mapping: FieldMapping | None
) -> MappedRecord:
    """Map and validate one input record (raises :class:`InvalidRecordError`)."""
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
        schema = CustomSchema.from_api(response.body)
        caches.schemas[object_type] = schema
    return schema


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
    cached = caches.company_ids.get(external_id)
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
    """REJECTED when Kustomer refused the record (4xx), FAILED when it could not complete."""
    if isinstance(exc, InvalidRecordError):
        return Outcome.INVALID
    if isinstance(exc, FATAL_ERRORS):
        return Outcome.FAILED  # the key or its roles, not this record
    if isinstance(exc, APIError) and 400 <= exc.status < 500 and not isinstance(exc, RateLimitError):
        return Outcome.REJECTED
    return Outcome.FAILED


#: Errors that concern the whole client (key, role), not one record: raised, not reported.
FATAL_ERRORS = (AuthenticationError, PermissionDeniedError)


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
) -> Flow[UpsertResult]:
    """Update-or-create one record, keyed on ``key``; never raises for the record's own faults.

    0 matches → create (``update_only``: skipped); 1 match → update only the
    mapped fields, or ``unchanged`` with no write (``create_only``: skipped);
    2+ matches → ``ambiguous``. A create refused as a duplicate (another
    writer got there first) or whose answer was lost is reconciled by looking
    the key up again. Authentication and permission errors are raised: they
    concern every record, not this one.
    """
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
        matches = yield from find_flow(core, kind, key, raw_value)
        return (yield from _write_flow(
            core, kind, mapped, key, raw_value, matches, mode, company_id, base, key_value,
        ))
    except FATAL_ERRORS:
        raise
    except (InvalidRecordError, APIError, APIConnectionError) as exc:
        error = exc.for_record(row) if isinstance(exc, InvalidRecordError) and row is not None else exc
        return UpsertResult(
            outcome=failure_outcome(exc), error=error, key_value=key_value, source=source,
            reason=reason_of(error), **base,
        )


def _find_by_unique_flow(core: Core, kind: ObjectKind, body: Mapping[str, Any]) -> Flow[list[Any]]:
    """Objects holding the body's ``externalId`` or (customers) first email, via direct lookups."""
    if body.get("externalId"):
        return (yield from find_flow(core, kind, SyncKey.external_id(), body["externalId"]))
    email_key = SyncKey.email()
    if kind is not COMPANY and email_key.value_in(body):
        return (yield from find_flow(core, kind, email_key, email_key.value_in(body)))
    return []


def _write_flow(
    core: Core,
    kind: ObjectKind,
    mapped: MappedRecord,
    key: SyncKey,
    raw_value: Any,
    matches: list[Any],
    mode: Mode,
    company_id: str | None,
    base: Mapping[str, Any],
    key_value: str,
) -> Flow[UpsertResult]:
    if len(matches) > 1:
        ids = tuple(m.id for m in matches)
        return UpsertResult(
            outcome=Outcome.AMBIGUOUS, key_value=key_value, candidates=ids,
            reason=f"{len(ids)} {kind.name}s have {key.label}={key_value!r}; nothing written",
            **base,
        )
    if not matches:
        if mode == "update_only":
            return UpsertResult(outcome=Outcome.SKIPPED, key_value=key_value,
                                reason="no match and mode is update_only", **base)
        plan = plan_create(mapped, object_type=kind.name, company_id=company_id)
        try:
            created = yield from create_flow(core, kind, plan.body)
            return UpsertResult(outcome=Outcome.CREATED, id=created.id, key_value=key_value,
                                fields_written=plan.fields, **base)
        except APIError as exc:
            if not exc.is_duplicate:
                raise
            # Another writer created it between our lookup and our create.
            matches = yield from find_flow(core, kind, key, raw_value)
            if not matches:
                raise
        except APIConnectionError:
            # The create may have happened with its answer lost: look before re-sending.
            matches = yield from find_flow(core, kind, key, raw_value)
            if not matches and key.kind == "custom":
                # Search is eventually consistent: a create that landed may not be
                # searchable yet. Ask the consistent direct lookups too.
                matches = yield from _find_by_unique_flow(core, kind, plan.body)
            if not matches:
                created = yield from create_flow(core, kind, plan.body)
                return UpsertResult(outcome=Outcome.CREATED, id=created.id, key_value=key_value,
                                    fields_written=plan.fields, **base)
            if len(matches) == 1 and plan_update(matches[0], mapped, key, company_id=company_id) is None:
                return UpsertResult(outcome=Outcome.CREATED, id=matches[0].id, key_value=key_value,
                                    fields_written=plan.fields, **base)
        if len(matches) > 1:
            return (yield from _write_flow(core, kind, mapped, key, raw_value, matches, mode,
                                           company_id, base, key_value))
    if mode == "create_only":
        return UpsertResult(outcome=Outcome.SKIPPED, id=matches[0].id, key_value=key_value,
                            reason="already exists and mode is create_only", **base)
    existing = matches[0]
    update = plan_update(existing, mapped, key, company_id=company_id)
    if update is None:
        return UpsertResult(outcome=Outcome.UNCHANGED, id=existing.id, key_value=key_value, **base)
    updated = yield from update_flow(core, kind, existing.id, update.body)
    return UpsertResult(outcome=Outcome.UPDATED, id=updated.id, key_value=key_value,
                        fields_written=update.fields, **base)
