"""Create and update plans: the minimal, safe write for one mapped record.

:func:`plan_create` gives the body of a create; :func:`plan_update` compares a
mapped record with the object Kustomer holds and gives the smallest update
that makes every mapped field hold the mapped value, or ``None`` when nothing
would change (the record is "unchanged" and no request is made).

Rules, and the decisions behind them:

* Only mapped fields are compared or written; everything else Kustomer holds
  is left alone. ``set_if_empty`` fields are written only when the existing
  value is empty (``None``, ``""``, ``[]``, ``{}``).
* Values compare after the same coercion the write uses: date-times as
  instants (``...00Z`` equals ``...00.000Z``), numbers numerically (``5``
  equals ``5.0``).
* ``custom``: only the mapped attributes that differ are sent. Kustomer merges
  ``custom`` key by key on update (``PUT`` without ``replace=true`` behaves
  like ``PATCH``, and ``null`` clears one attribute), so the other attributes
  are kept.
* Lists are replaced by Kustomer on update (ASSUMED), so they are merged
  here, from what Kustomer holds: existing items first, in their order, then
  mapped items not already present. Emails and domains match
  case-insensitively, phones on their digits (and a leading ``+``), tags
  exactly; an existing item keeps its type. Nothing is ever removed. A merge
  that adds nothing leaves the list unchanged. A merge that would exceed
  Kustomer's item limit is an :class:`InvalidRecordError`.
* Email sync key: the key email becomes the default (first) email. When
  Kustomer matched the customer on one of its other emails, the key email is
  moved to the front: the sync key says this address identifies the customer,
  so it should be the one Kustomer treats as default. That move alone is a
  change (``emails`` is written).
* The company trap: an update that omits ``company`` unlinks a customer from
  its company. Every customer update body therefore carries ``company``: the
  new id when the record sets one (the engine's resolved ``company_id``
  argument wins over a mapped ``company``), else the id the customer already
  has. When the customer has no company and none is set, ``company`` is
  omitted (nothing to unlink). A change of link alone is a change. A mapped
  explicit null (``skip_null=False``) unlinks.
* Company create-only fields (``createdAt``, ``importedAt``) are never sent in
  a company update; ``deleted`` never in a create. Nulls are not sent in a
  create (there is nothing to clear).

Where Kustomer's public material is unclear (KUSTOMER_API.md, "Where the
public material disagrees"), :func:`plan_update` stays correct under every
reading:

* ``custom_mode="merged"`` (the default) sends the whole ``custom`` object
  (the current values plus the changes) whenever one attribute changes, so
  an update is right whether Kustomer merges ``custom`` key by key or
  replaces it; ``"changed"`` sends only the changed keys.
* ``full_document=True`` (companies: whether a company ``PUT`` is partial is
  not published) resends every writable attribute the company holds, with
  the changes applied, so a replacing ``PUT`` loses nothing.
* ``with_rev=True`` adds the ``rev`` the plan was made against, so Kustomer
  can refuse a write planned from stale data (409) instead of applying it.
* A customer whose answers never showed its company link
  (:attr:`Customer.company_known` false) cannot be updated safely unless
  the record sets the link itself: :class:`UnknownCompanyLinkError`.

Both plans carry ``fields``: the paths written (``"name"``, ``"emails"``,
``"custom.tierStr"``, ``"company"`` only when the link changes), for
``UpsertResult.fields_written``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .errors import InvalidRecordError, UnknownCompanyLinkError
from .mapping import MappedRecord
from .models._time import parse_iso_or_none
from .models.company import Company
from .models.custom import same_custom_value
from .models.customer import Customer
from .models.sync_key import SyncKey
from .models.validation import COMPANY_NAME_MAX, COMPANY_NAME_MIN, DATETIME_FIELDS, ObjectType

__all__ = ["COMPANY_WRITABLE", "CreatePlan", "CustomMode", "UpdatePlan", "plan_create", "plan_update"]

CustomMode = Literal["merged", "changed"]
#: What a company update may carry: the published ``PUT /v1/companies/bulk`` item schema
#: (the single ``PUT`` also takes ``whatsapps`` and ``rev``), less ``deleted``.
COMPANY_WRITABLE = ("name", "externalId", "domains", "emails", "phones", "socials", "urls",
                    "locations", "employeeCount", "tags", "custom", "avatarUrl", "defaultLang")


@attrs.frozen
class CreatePlan:
    """The body of a create and the field paths it writes."""

    body: dict[str, Any]
    fields: tuple[str, ...]


@attrs.frozen
class UpdatePlan:
    """The minimal update body and the field paths it changes.

    ``body`` may also carry an unchanged ``company`` (resent so Kustomer keeps
    the link); it is not listed in ``fields``.
    """

    body: dict[str, Any]
    fields: tuple[str, ...]


_COMPANY_CREATE_ONLY = frozenset({"createdAt", "importedAt"})
_UPDATE_ONLY = frozenset({"deleted"})


#: ``_fields_of`` answers by the body's field names: rows of one mapping repeat a few.
_FIELDS_SEEN: dict[tuple[Any, ...], tuple[str, ...]] = {}
_FIELDS_SEEN_MAX = 4096


def _fields_of(body: Mapping[str, Any]) -> tuple[str, ...]:
    custom = body.get("custom")
    if type(body) is dict and type(custom) in (dict, type(None)):
        names = (*body, None, *(custom or ()))
        known = _FIELDS_SEEN.get(names)
        if known is None:
            known = _list_fields(body)
            if len(_FIELDS_SEEN) < _FIELDS_SEEN_MAX:
                _FIELDS_SEEN[names] = known
        return known
    return _list_fields(body)


def _list_fields(body: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for key, value in body.items():
        if key == "custom" and isinstance(value, Mapping):
            out.extend(f"custom.{k}" for k in value)
        else:
            out.append(key)
    return tuple(out)


def plan_create(
    mapped: MappedRecord, *, object_type: ObjectType, company_id: str | None = None
) -> CreatePlan:
    """The create body for a mapped record.

    ``company_id`` (customers: the engine's resolution of
    ``companyExternalId``) links the new customer; it wins over a mapped
    ``company``.

    Raises:
        InvalidRecordError: a company without a name (3 to 255 characters),
            which Kustomer cannot create.
    """
    body: dict[str, Any] = {}
    for key, value in mapped.payload.items():
        if value is None or key in _UPDATE_ONLY:
            continue
        if key == "custom":
            custom = {k: v for k, v in value.items() if v is not None}
            if custom:
                body["custom"] = custom
        else:
            body[key] = value
    if object_type == "company":
        name = body.get("name")
        if not isinstance(name, str) or not COMPANY_NAME_MIN <= len(name) <= COMPANY_NAME_MAX:
            raise InvalidRecordError(
                f"a company needs a name ({COMPANY_NAME_MIN} to {COMPANY_NAME_MAX} characters) "
                "to be created",
                field="name",
                value=name,
            )
    elif company_id is not None:
        body["company"] = company_id
    return CreatePlan(body, _fields_of(body))


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value)


def _same_scalar(name: str, current: Any, new: Any) -> bool:
    if type(new) is str and type(current) is str and current == new:
        return True  # the usual unchanged text field, without the checks below
    if isinstance(current, bool) or isinstance(new, bool):
        return current is new  # True == 1 in Python, but not in Kustomer
    if current == new:
        return True
    if name in DATETIME_FIELDS and current is not None and new is not None:
        instant = parse_iso_or_none(current)
        return instant is not None and instant == parse_iso_or_none(new)
    return False


_NOT_DIGITS = re.compile(r"[^\d+]")


def _email_key(item: Mapping[str, Any]) -> str:
    return str(item.get("email", "")).lower()


def _phone_key(item: Mapping[str, Any]) -> str:
    return _NOT_DIGITS.sub("", str(item.get("phone", "")))


def _domain_key(item: Mapping[str, Any]) -> str:
    return str(item.get("domain", "")).lower()


def _union(
    name: str,
    existing: Sequence[Any],
    new: Sequence[Any],
    key: Callable[[Any], Any],
    limit: int,
) -> list[Any] | None:
    """``existing`` plus the new items, or ``None`` when nothing is added."""
    seen = {key(item) for item in existing}
    added = []
    for item in new:
        k = key(item)
        if k not in seen:
            seen.add(k)
            added.append(item)
    if not added:
        return None
    merged = [*existing, *added]
    if len(merged) > limit:
        raise InvalidRecordError(
            f"adding {len(added)} item(s) to the {len(existing)} Kustomer holds would exceed "
            f"its limit of {limit}",
            field=name,
        )
    return merged


def _holds(new: Sequence[Any], key: Callable[[Any], Any], seen: set[Any]) -> bool:
    """Whether every new item's ``key`` is in ``seen`` (then :func:`_union` adds nothing)."""
    return all(key(item) in seen for item in new)


def _frozen_item(item: Any) -> Any:
    if isinstance(item, Mapping):
        return tuple(sorted((k, _frozen_item(v)) for k, v in item.items()))
    if isinstance(item, list):
        return tuple(_frozen_item(v) for v in item)
    return item


def _existing_items(raw: Any) -> list[Any]:
    # Kustomer adds server-side keys such as "id": null to list items; they
    # would be refused if sent back, and a null carries nothing.
    if not isinstance(raw, list):
        return []
    return [
        {k: v for k, v in item.items() if v is not None} if isinstance(item, Mapping) else item
        for item in raw
    ]


def _merge_list(
    name: str, existing: Customer | Company, new: Any, key: SyncKey
) -> list[Any] | None:
    if name == "emails":
        if key.kind != "email" and _holds(new, _email_key, {e.email.lower() for e in existing.emails}):
            return None  # every mapped email is there already (the usual row): nothing to build
        current = [e.to_api() for e in existing.emails]
        merged = _union(name, current, new, _email_key, 10)
        if key.kind == "email" and new:
            result = current if merged is None else merged
            first = _email_key(new[0])
            at = next((i for i, e in enumerate(result) if _email_key(e) == first), 0)
            if at > 0:
                result = [result[at], *result[:at], *result[at + 1:]]
                return result
        return merged
    if name == "phones":
        if _holds(new, _phone_key, {_NOT_DIGITS.sub("", p.phone) for p in existing.phones}):
            return None
        return _union(name, [p.to_api() for p in existing.phones], new, _phone_key, 10)
    if name == "tags":
        return _union(name, list(existing.tags), new, str, 20)
    if name == "domains" and isinstance(existing, Company):
        current = [{"domain": d} for d in existing.domains]
        return _union(name, current, new, _domain_key, 10)
    items = _existing_items(existing.attributes.get(name))
    return _union(name, items, new, _frozen_item, 10)


def plan_update(
    existing: Customer | Company,
    mapped: MappedRecord,
    key: SyncKey,
    *,
    company_id: str | None = None,
    custom_mode: CustomMode = "merged",
    full_document: bool = False,
    with_rev: bool = False,
) -> UpdatePlan | None:
    """The update body for ``existing``, or ``None`` when it already matches.

    ``company_id`` is the engine's resolution of ``companyExternalId``
    (customers only); see the module notes for the company rule and for
    ``custom_mode``, ``full_document`` and ``with_rev``.

    Raises:
        InvalidRecordError: a list merge would exceed Kustomer's item limit.
        UnknownCompanyLinkError: the customer's link is unknown and the update
            would have to omit it.
    """
    is_customer = isinstance(existing, Customer)
    current_attrs = existing.attributes
    set_if_empty = mapped.set_if_empty
    body: dict[str, Any] = {}
    fields: list[str] = []
    for name, value in mapped.payload.items():
        if name == "custom":
            changed_custom = _plan_custom(existing.custom, value, set_if_empty)
            if changed_custom:
                body["custom"] = changed_custom
                fields.extend(f"custom.{k}" for k in changed_custom)
            continue
        if name == "company" and is_customer:
            continue
        if not is_customer and name in _COMPANY_CREATE_ONLY:
            continue
        if isinstance(value, list):
            if name in set_if_empty and not _empty(_list_value(existing, name)):
                continue
            merged = _merge_list(name, existing, value, key)
            if merged is not None:
                body[name] = merged
                fields.append(name)
            continue
        current = current_attrs.get(name)
        if name in set_if_empty and not _empty(current):
            continue
        if not _same_scalar(name, current, value):
            body[name] = value
            fields.append(name)
    if isinstance(existing, Customer):
        _plan_company(existing, mapped, company_id, body, fields)
    if not fields:
        return None
    if custom_mode == "merged" and "custom" in body:
        body["custom"] = {**_current_custom(existing), **body["custom"]}
    if full_document and isinstance(existing, Company):
        body = {**_company_document(existing), **body}
    if with_rev and existing.rev is not None:
        body["rev"] = existing.rev
    return UpdatePlan(body, tuple(fields))


def _current_custom(existing: Customer | Company) -> dict[str, Any]:
    return {k: v for k, v in existing.custom.items() if v is not None}


def _company_document(existing: Company) -> dict[str, Any]:
    """Every writable attribute the company holds, in write form."""
    attributes = existing.attributes
    doc: dict[str, Any] = {}
    for name in COMPANY_WRITABLE:
        if name not in attributes or attributes[name] is None:
            continue
        if name == "emails":
            doc[name] = [e.to_api() for e in existing.emails]
        elif name == "phones":
            doc[name] = [p.to_api() for p in existing.phones]
        elif name == "domains":
            doc[name] = [{"domain": d} for d in existing.domains]
        elif name == "tags":
            doc[name] = list(existing.tags)
        elif name == "custom":
            current = _current_custom(existing)
            if current:
                doc[name] = current
        elif isinstance(attributes[name], list):
            doc[name] = _existing_items(attributes[name])
        else:
            doc[name] = attributes[name]
    return doc


def _list_value(existing: Customer | Company, name: str) -> Any:
    if name in ("emails", "phones", "tags"):
        return getattr(existing, name)
    if name == "domains" and isinstance(existing, Company):
        return existing.domains
    return existing.attributes.get(name)


def _plan_custom(
    current: Mapping[str, Any], new: Mapping[str, Any], set_if_empty: frozenset[str]
) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for name, value in new.items():
        have = current.get(name)
        if set_if_empty and f"custom.{name}" in set_if_empty and not _empty(have):
            continue
        if not same_custom_value(name, have, value):
            changed[name] = value
    return changed


def _plan_company(
    existing: Customer,
    mapped: MappedRecord,
    company_id: str | None,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    have = existing.company_id
    sets_link = company_id is not None or "company" in mapped.payload
    if company_id is not None:
        target: str | None = company_id
    elif "company" in mapped.payload:
        target = mapped.payload["company"]
    else:
        target = have
    if not existing.company_known:
        # The answer did not show the link: compare nothing, resend what the record sets.
        if not sets_link or "company" in mapped.set_if_empty:
            if fields:
                raise UnknownCompanyLinkError(existing.id)
            return
        body["company"] = target
        fields.append("company")
        return
    if "company" in mapped.set_if_empty and have is not None:
        target = have
    if target != have:
        body["company"] = target
        fields.append("company")
    elif fields and have is not None:
        body["company"] = have
