"""When an answer cannot be trusted to plan a write, read the object by id first.

Kustomer's public material disagrees with itself on what its answers show
(KUSTOMER_API.md, "Where the public material disagrees"): a search hit may
carry only ``name``/``displayName``/dates/``rev`` (no ``externalId``,
``emails`` or ``custom``), a company list entry may lack most attributes,
no customer answer is documented to show the company link, and search
reads a lagging index. Planning an update from such an answer can write a
duplicate (a hit without the key counted as "no match"), unlink a customer
(an update that omits ``company``), wipe data (arrays and, under one
reading, ``custom`` and whole company documents are replaced) or write
stale values back.

The rules here are one policy for every reading, shared by the single
upsert and the batch engine:

* a hit that does not show the key's attribute is *unconfirmed*: it is
  read by id before anything is decided (never a miss, never created over);
* a mapped field the answer does not show is read by id before it is
  compared (an absent attribute is not an empty one);
* an update is planned from a live read (not the index) when it writes a
  list field, a whole company document, or a customer whose company link
  the index answer did not show; with ``fresh_reads`` always;
* every update carries the ``rev`` it was planned against where Kustomer's
  schema accepts it, and a 409 conflict re-reads, re-plans and retries once;
* an update whose answer is lost or unreadable is settled by reading the
  object (:func:`send_update_flow`, :func:`reconcile_update_flow`): applied,
  gone, or not applied and sent once more; "may have been written" when
  nothing read can tell;
* a customer whose company link no answer shows is not updated unless the
  record sets the link (:class:`~kustomer_activations.errors.UnknownCompanyLinkError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._core.effects import Flow
from .._core.request import Core, RequestSpec, request_flow
from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    AuthenticationError,
    KustomerError,
    NotFoundError,
    PermissionDeniedError,
    UnknownCompanyLinkError,
    reason_of,
)
from ..mapping import MappedRecord
from ..merge import CustomMode, UpdatePlan, plan_update
from ..models import Company, Customer, SyncKey
from .kinds import COMPANY, ObjectKind

__all__ = [
    "ARRAY_FIELDS",
    "FATAL_ERRORS",
    "NOT_APPLIED_STATUSES",
    "REFUSED_STATUSES",
    "UpdateSettled",
    "WritePolicy",
    "data_object",
    "is_uncertain",
    "key_visible",
    "read_flow",
    "reconcile_update_flow",
    "send_update_flow",
    "settle_flow",
    "update_flow",
]

#: Array fields Kustomer replaces on update (ASSUMED): a merge on stale data could drop items.
ARRAY_FIELDS = frozenset({"emails", "phones", "tags", "urls", "socials", "locations", "domains",
                          "sharedEmails", "sharedPhones", "externalIds", "whatsapps"})


@attrs.frozen(kw_only=True)
class WritePolicy:
    """How updates are planned; see the module notes.

    Attributes:
        custom_updates: ``"merged"`` sends the whole ``custom`` object on a
            change (right whether Kustomer merges or replaces it);
            ``"changed"`` only the changed keys (smaller, right only if
            Kustomer merges ``custom`` key by key).
        company_updates: ``"full"`` resends every writable company attribute
            on a change (right whether a company ``PUT`` is partial or not);
            ``"changed"`` only the changed fields.
        fresh_reads: read every matched object by id before deciding, so no
            decision rests on the search index.
    """

    custom_updates: CustomMode = "merged"
    company_updates: Literal["full", "changed"] = "full"
    fresh_reads: bool = False

    def __attrs_post_init__(self) -> None:
        if self.custom_updates not in ("merged", "changed"):
            raise ValueError("custom_updates must be 'merged' or 'changed'")
        if self.company_updates not in ("full", "changed"):
            raise ValueError("company_updates must be 'full' or 'changed'")


def key_visible(obj: Customer | Company, key: SyncKey) -> bool:
    """Whether ``obj``'s answer shows the attribute ``key`` reads (else it cannot be confirmed)."""
    attributes = obj.attributes
    if key.kind == "external_id":
        return "externalId" in attributes
    if key.kind == "email":
        return "emails" in attributes
    return isinstance(attributes.get("custom"), Mapping)


def _fields_visible(obj: Customer | Company, mapped: MappedRecord) -> bool:
    attributes = obj.attributes
    for name in mapped.payload:
        if name == "company":
            continue
        if name == "custom":
            if not isinstance(attributes.get("custom"), Mapping):
                return False
        elif name not in attributes:
            return False
    return True


def _read_before_write(obj: Customer | Company, plan: UpdatePlan, policy: WritePolicy) -> bool:
    if ARRAY_FIELDS.intersection(plan.fields):
        return True
    if isinstance(obj, Company):
        return policy.company_updates == "full"
    return not obj.company_known


#: Errors that concern the whole client (key, role), not one record: raised, not reported.
FATAL_ERRORS = (AuthenticationError, PermissionDeniedError)

#: Statuses that say the request was not applied: refused (400, 409 duplicate or stale
#: ``rev``, 413 too large, 422), not allowed (401, 403), or over budget (429).
NOT_APPLIED_STATUSES = frozenset({400, 401, 403, 409, 413, 422, 429})
#: Of those, the ones that refuse the record itself (the row is ``rejected``).
REFUSED_STATUSES = frozenset({400, 409, 413, 422})


def is_uncertain(exc: BaseException) -> bool:
    """Whether a write that failed with ``exc`` may still have been applied.

    No answer (connection lost, timeout), an answer that could not be read,
    a 5xx, or any status that is not a documented refusal (a 404 or 418 to a
    write proves nothing): Kustomer may have applied the write, so it is
    settled by reading Kustomer, never reported ``rejected``.
    """
    if isinstance(exc, (APIConnectionError, APIResponseValidationError)):
        return True
    return isinstance(exc, APIError) and exc.status not in NOT_APPLIED_STATUSES


def _with_rev(kind: ObjectKind, bulk: bool) -> bool:
    # The published company bulk PUT item schema has no ``rev``; every other update body does.
    return not (bulk and kind is COMPANY)


def plan(
    obj: Customer | Company, kind: ObjectKind, key: SyncKey, mapped: MappedRecord,
    company_id: str | None, policy: WritePolicy, *, bulk: bool = False,
) -> UpdatePlan | None:
    """:func:`~kustomer_activations.merge.plan_update` with the policy's options."""
    return plan_update(
        obj, mapped, key, company_id=company_id, custom_mode=policy.custom_updates,
        full_document=kind is COMPANY and policy.company_updates == "full",
        with_rev=_with_rev(kind, bulk),
    )


def data_object(data: Any, path: str, status: int = 200, method: str = "GET") -> Mapping[str, Any]:
    """The ``data`` resource of a single-object answer; a typed error when it has none."""
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
        raise APIResponseValidationError(
            "expected a 'data' object with an id", method=method, path=path, status=status,
            body=data,
        )
    return data


def read_flow(core: Core, kind: ObjectKind, object_id: str) -> Flow[Any]:
    """``GET /v1/<objects>/{id}``; ``None`` when it is gone (404)."""
    path = kind.item_path(object_id)
    try:
        response = yield from request_flow(core, RequestSpec(method="GET", path=path))
    except NotFoundError:
        return None
    return kind.from_api(data_object(response.data, path, response.status))


def settle_flow(
    core: Core, kind: ObjectKind, key: SyncKey, key_value: str, mapped: MappedRecord,
    obj: Customer | Company, *, fresh: bool, company_id: str | None, policy: WritePolicy,
    bulk: bool = False,
) -> Flow[tuple[Any, UpdatePlan | None]]:
    """The object to update and the plan, read by id first where the answer falls short.

    ``fresh`` says whether ``obj`` came from a live read (by id or a direct
    lookup) rather than from the search index or a list. Returns
    ``(None, None)`` when the live object no longer holds the key (or is
    gone): the caller treats that as no match.

    Raises:
        UnknownCompanyLinkError: a live read does not show the customer's
            company link and the record does not set it.
    """
    if not fresh and (policy.fresh_reads or not key_visible(obj, key)
                      or not _fields_visible(obj, mapped)):
        obj = yield from read_flow(core, kind, obj.id)
        fresh = True
        if obj is None or key_value not in key.value_of(obj):
            return None, None
    try:
        update = plan(obj, kind, key, mapped, company_id, policy, bulk=bulk)
    except UnknownCompanyLinkError:
        if fresh:
            raise
        update = None
        must_read = True
    else:
        must_read = update is not None and not fresh and _read_before_write(obj, update, policy)
    if must_read:
        obj = yield from read_flow(core, kind, obj.id)
        if obj is None or key_value not in key.value_of(obj):
            return None, None
        update = plan(obj, kind, key, mapped, company_id, policy, bulk=bulk)
    return obj, update


def update_flow(
    core: Core, kind: ObjectKind, key: SyncKey, key_value: str, mapped: MappedRecord,
    obj: Customer | Company, update: UpdatePlan, *, company_id: str | None, policy: WritePolicy,
) -> Flow[tuple[Any, UpdatePlan | None]]:
    """Send one update; on a 409 conflict (stale ``rev``) re-read, re-plan and retry once.

    Returns the updated object and the plan that was applied, or the live
    object and ``None`` when a re-read shows nothing left to write.
    """
    path = kind.item_path(obj.id)
    body = dict(update.body)
    for attempt in (1, 2):
        try:
            # A body with ``rev`` is not idempotent: re-sent after a lost answer, it would meet
            # its own write as a stale revision. The caller settles such an answer by reading.
            response = yield from request_flow(core, RequestSpec(
                method="PUT", path=path, json=body, idempotent="rev" not in body))
        except APIError as exc:
            if attempt == 2 or not exc.is_conflict:
                raise
            fresh = yield from read_flow(core, kind, obj.id)
            if fresh is None:
                raise
            again = plan(fresh, kind, key, mapped, company_id, policy)
            if again is None:
                return fresh, None
            update, body = again, dict(again.body)
            continue
        return kind.from_api(data_object(response.data, path, response.status, "PUT")), update
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.frozen(kw_only=True)
class UpdateSettled:
    """How an update ended, once an uncertain answer was settled by reading the object.

    Attributes:
        status: ``"written"`` (Kustomer holds the update: its answer says so,
            or a read after an uncertain answer shows every planned value);
            ``"unchanged"`` (a re-read after a conflict left nothing to write);
            ``"gone"`` (the read after an uncertain answer found no object:
            nothing written); ``"unsure"`` (nothing answered or read tells
            whether it was applied: it may have been written).
        id: the object's id (``"written"``, ``"unchanged"``).
        fields: for ``"written"``, the fields of the plan Kustomer answered
            to; ``None`` when a read showed the update applied (the fields
            are those the caller planned).
        error: for ``"gone"`` and ``"unsure"``, the error to report, if any.
        detail: for ``"unsure"``, what was sent and read, worded for a reason.
    """

    status: Literal["written", "unchanged", "gone", "unsure"]
    id: str | None = None
    fields: tuple[str, ...] | None = None
    error: KustomerError | None = None
    detail: str = ""

    def failure_reason(self, object_type: str) -> str:
        """The reason of a ``"gone"`` or ``"unsure"`` update's failed row."""
        what = (f"the {object_type} is gone: not written" if self.status == "gone"
                else f"{self.detail}: it may have been written")
        return what if self.error is None else f"{reason_of(self.error)} ({what})"


def send_update_flow(
    core: Core, kind: ObjectKind, key: SyncKey, key_value: str, mapped: MappedRecord,
    obj: Customer | Company, update: UpdatePlan, *, company_id: str | None, policy: WritePolicy,
    resend: bool = True,
) -> Flow[UpdateSettled]:
    """Send one update (:func:`update_flow`); an uncertain answer is settled by
    :func:`reconcile_update_flow`, which sends it once more if ``resend`` and
    the read shows it was not applied.

    The single upsert and the batch engine both write single updates through
    this flow, so a lost answer ends the same way for either.

    Raises:
        APIError: Kustomer refused the update (a status that proves it was
            not applied); the caller reports the record's failure.
        InvalidRecordError, UnknownCompanyLinkError: re-planning after a read.
    """
    try:
        updated, applied = yield from update_flow(
            core, kind, key, key_value, mapped, obj, update, company_id=company_id, policy=policy)
    except (APIError, APIConnectionError, APIResponseValidationError) as exc:
        if not is_uncertain(exc):
            raise
        return (yield from reconcile_update_flow(
            core, kind, key, key_value, mapped, obj.id, exc, company_id=company_id, policy=policy,
            resend=resend))
    if applied is None:
        return UpdateSettled(status="unchanged", id=updated.id)
    return UpdateSettled(status="written", id=updated.id, fields=applied.fields)


def reconcile_update_flow(
    core: Core, kind: ObjectKind, key: SyncKey, key_value: str, mapped: MappedRecord,
    object_id: str, error: KustomerError | None, *, company_id: str | None, policy: WritePolicy,
    resend: bool,
) -> Flow[UpdateSettled]:
    """Settle an update that was sent and answered uncertainly (``error``, when there is
    one to report: a bulk job's lost item has none): read the object and compare.

    Applied (nothing left to write) → ``written``; the object gone →
    ``gone``; not applied → sent once more when ``resend`` (an update is
    safe to repeat: it sets values), else ``unsure``. A read that fails is
    ``unsure`` too: the update may have landed, and nothing says it did not.

    Raises:
        AuthenticationError, PermissionDeniedError: the read was refused for
            the whole client.
        InvalidRecordError, UnknownCompanyLinkError: re-planning from the read.
    """
    try:
        live = yield from read_flow(core, kind, object_id)
    except FATAL_ERRORS:
        raise
    except KustomerError as exc:
        return UpdateSettled(status="unsure", error=exc, detail="the update was sent")
    if live is None:
        return UpdateSettled(status="gone", error=error)
    again = plan(live, kind, key, mapped, company_id, policy)
    if again is None:
        return UpdateSettled(status="written", id=live.id)
    if not resend:
        return UpdateSettled(status="unsure", error=error,
                             detail="the update was sent twice without a readable answer")
    return (yield from send_update_flow(core, kind, key, key_value, mapped, live, again,
                                        company_id=company_id, policy=policy, resend=False))
