"""Stored documents, uniqueness indexes and the write semantics.

One :class:`Store` holds customers and companies. Every write goes through
it, so the rules live in one place whichever endpoint (single or bulk) made
the write:

- emails (case-insensitive), phones, ``externalId``, ``externalIds[].externalId``,
  ``whatsapps[].phone`` and ``socials`` entries (type + username) of
  customers are unique in the org → :class:`Conflict`; company
  ``externalId`` is not unique;
- an update is a *merge* of the top-level fields given (arrays replace,
  ``custom`` merges key by key and ``null`` clears a key, unless the
  ``custom_update`` reading says "replace"), except that a customer update
  whose body omits ``company`` unlinks the company — the documented Kustomer
  trap; ``replace=True`` (and every company update under the
  ``company_update="replace"`` reading) replaces the whole document;
- under the ``rev="enforced"`` reading, an update whose body carries a stale
  ``rev`` is refused (:class:`StaleRev`); every write increments ``rev``;
- each write publishes a snapshot to the search index (which applies the
  configured lag). Published attribute dicts are never changed afterwards:
  an update builds a new dict.

Callers hold the emulator lock; nothing here locks.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ._readings import Readings
from ._rules import parse_datetime
from ._search import SearchIndex, Snapshot

__all__ = ["Collection", "Conflict", "Invalid", "NotFound", "Record", "StaleRev", "Store",
           "iso"]


@functools.lru_cache(maxsize=4096)
def iso(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as Kustomer writes dates."""
    dt = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Conflict(Exception):
    """A write would give a unique value (email, phone, externalId) a second owner."""

    def __init__(self, field: str, value: str, owner: str) -> None:
        super().__init__(f"duplicate detected: {field} {value!r} already belongs to {owner}")
        self.field, self.value, self.owner = field, value, owner


class NotFound(Exception):
    """No object with that id."""


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class StaleRev(Exception):
    """An update carried a ``rev`` other than the stored one (``rev="enforced"``)."""

    def __init__(self, given: Any, current: int) -> None:
        super().__init__(f"rev {_num(given)} is stale; the current rev is {current}")
        self.given, self.current = given, current
        self.bulk_text = f"conflict: stale rev {_num(given)}; the current rev is {current}"
        """The per-item error string of a bulk job."""


class Invalid(Exception):
    """A write refers to something that does not exist (e.g. an unknown company id)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer, self.message = pointer, message


@attrs.define(slots=True)
class Record:
    """One stored object: its attributes as the API returns them, plus bookkeeping."""

    id: str
    kind: str
    attributes: dict[str, Any]
    company: str | None
    seq: int
    updated: float


_ARRAYS = ("externalIds", "sharedExternalIds", "emails", "sharedEmails", "phones",
           "sharedPhones", "whatsapps", "facebookIds", "instagramIds", "socials",
           "sharedSocials", "urls", "locations", "tags")
_CUSTOMER_NULLS = ("name", "externalId", "username", "signedUpAt", "avatarUrl", "locale",
                   "timeZone", "birthdayAt", "gender", "lastSeenAt", "lastCustomerActivityAt",
                   "defaultLang", "progressiveStatus")
_COMPANY_ARRAYS = ("emails", "phones", "whatsapps", "socials", "urls", "domains",
                   "locations", "tags")


def _norm_contact(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    # Kustomer answers contact points with every field present (see the
    # OpenAPI response example): type, value, verified, id.
    return [{"type": it.get("type"), key: it[key], "verified": bool(it.get("verified", False)),
             "id": None} for it in items]


def _normalise(field: str, value: Any) -> Any:
    if field in ("emails", "sharedEmails"):
        return _norm_contact(value, "email")
    if field in ("phones", "sharedPhones", "whatsapps"):
        return _norm_contact(value, "phone")
    if field in ("externalIds", "sharedExternalIds"):
        return [{"externalId": it["externalId"], "verified": bool(it.get("verified", False)),
                 "id": None} for it in value]
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _display_name(a: dict[str, Any]) -> str:
    if a.get("name"):
        return str(a["name"])
    for field, key in (("emails", "email"), ("phones", "phone")):
        if a.get(field):
            return str(a[field][0][key])
    return str(a.get("externalId") or "")


class Collection(Mapping[str, dict[str, Any]]):
    """Read-only view of stored customers or companies, for test assertions.

    Maps id → the stored document: the attributes as the API returns them,
    plus ``id`` and, for customers, ``company`` (the linked company id, which
    the API returns under ``relationships``). Values are copies.
    """

    def __init__(self, store: Store, kind: str) -> None:
        self._store = store
        self._kind = kind

    def _records(self) -> dict[str, Record]:
        return self._store.records[self._kind]

    def __getitem__(self, key: str) -> dict[str, Any]:
        with self._store.lock:
            return self._store.document(self._records()[key])

    def __iter__(self) -> Iterator[str]:
        with self._store.lock:
            return iter(list(self._records()))

    def __len__(self) -> int:
        return len(self._records())

    def all(self) -> list[dict[str, Any]]:
        """Every stored document, in creation order."""
        with self._store.lock:
            return [self._store.document(r) for r in self._records().values()]

    def find(self, **fields: Any) -> list[dict[str, Any]]:
        """Documents whose attributes equal every given value; ``email=`` matches
        any of a customer's emails (case-insensitive)."""
        out = []
        for doc in self.all():
            ok = True
            for name, want in fields.items():
                if name == "email":
                    ok = any(e["email"].lower() == str(want).lower()
                             for e in doc.get("emails", []))
                else:
                    ok = doc.get(name) == want
                if not ok:
                    break
            if ok:
                out.append(doc)
        return out


class Store:
    """All objects of the org, their indexes and write rules."""

    def __init__(self, lock: Any, search_lag: float, readings: Readings | None = None) -> None:
        self.lock = lock
        self.search_lag = search_lag
        self.readings = readings if readings is not None else Readings()
        r = self.readings
        max_in = (0 if r.search_in == "refused" else
                  int(r.search_in[4:]) if r.search_in.startswith("max:") else None)
        hidden = frozenset() if r.company_externalId_searchable else frozenset({"externalId"})
        self.records: dict[str, dict[str, Record]] = {"customer": {}, "company": {}}
        self.search: dict[str, SearchIndex] = {
            "customer": SearchIndex("customer", max_in=max_in),
            "company": SearchIndex("company", max_in=max_in, hidden=hidden)}
        # Unique keys of customers, value → owner id. ``socials`` values are
        # "<type>:<username>".
        self.unique: dict[str, dict[str, str]] = {
            "email": {}, "phone": {}, "externalId": {}, "externalIds": {}, "whatsapps": {},
            "socials": {}}
        # Company externalId → ids, in creation order (0, 1 or many: not unique).
        self.company_ext: dict[str, list[str]] = {}
        self._seq = 0
        self._order = 0
        # Ids look like Mongo ObjectIds (24 hex chars); a per-process salt keeps
        # ids of two emulators apart, the counter keeps them ordered.
        self._salt = f"{int(time.time()) & 0xFFFFFFFF:08x}"

    # -- helpers -------------------------------------------------------------
    def new_id(self) -> str:
        """A fresh 24-hex-character id."""
        self._seq += 1
        return f"{self._salt}{self._seq:016x}"

    def document(self, rec: Record) -> dict[str, Any]:
        """The inspection form of a record (see :class:`Collection`)."""
        doc = copy.deepcopy(rec.attributes)
        doc["id"] = rec.id
        if rec.kind == "customer":
            doc["company"] = rec.company
        return doc

    def get(self, kind: str, ident: str) -> Record:
        """The record or :class:`NotFound`."""
        rec = self.records[kind].get(ident)
        if rec is None:
            raise NotFound(ident)
        return rec

    @staticmethod
    def unique_keys(attributes: dict[str, Any]) -> list[tuple[str, str]]:
        """The (index, value) pairs a customer claims."""
        keys = [("email", e["email"].lower()) for e in attributes.get("emails") or []]
        keys += [("phone", p["phone"]) for p in attributes.get("phones") or []]
        if attributes.get("externalId"):
            keys.append(("externalId", attributes["externalId"]))
        keys += [("externalIds", e["externalId"]) for e in attributes.get("externalIds") or []]
        keys += [("whatsapps", w["phone"]) for w in attributes.get("whatsapps") or []]
        keys += [("socials", f"{s['type']}:{s['username']}")
                 for s in attributes.get("socials") or []]
        return keys

    def check_unique(self, attributes: dict[str, Any], owner: str | None) -> None:
        """Raise :class:`Conflict` if a unique value already has another owner."""
        for index, value in self.unique_keys(attributes):
            other = self.unique[index].get(value)
            if other is not None and other != owner:
                raise Conflict(index, value, other)

    def _index(self, rec: Record, add: bool) -> None:
        if rec.kind == "customer":
            for index, value in self.unique_keys(rec.attributes):
                if add:
                    self.unique[index][value] = rec.id
                elif self.unique[index].get(value) == rec.id:
                    del self.unique[index][value]
        else:
            ext = rec.attributes.get("externalId")
            if ext is not None:
                if add:
                    self.company_ext.setdefault(ext, []).append(rec.id)
                else:
                    ids = self.company_ext.get(ext, [])
                    if rec.id in ids:
                        ids.remove(rec.id)

    def _publish(self, rec: Record, now: float, *, immediately: bool = False) -> None:
        snap = Snapshot.of(rec.id, rec.seq, rec.attributes, rec.company, rec.updated)
        self.search[rec.kind].publish(snap, now if immediately else now + self.search_lag)

    def _check_company(self, company: Any) -> None:
        if company is not None and company not in self.records["company"]:
            raise Invalid("/company", f"company {company!r} does not exist")

    # -- writes --------------------------------------------------------------
    def _defaults(self, kind: str) -> dict[str, Any]:
        if kind == "customer":
            a: dict[str, Any] = dict.fromkeys(_CUSTOMER_NULLS)
            for f in _ARRAYS:
                a[f] = []
            # Fields Kustomer fills from conversations and its UI; never written
            # through the API here, present so that responses have their shape.
            a.update(activeUsers=[], watchers=[], presence="offline", verified=False,
                     deleted=False,
                     conversationCounts={"all": 0, "snoozed": 0, "open": 0, "done": 0})
        else:
            a = {"name": None, "externalId": None, "avatarUrl": None, "employeeCount": None,
                 "defaultLang": None}
            a.update({f: [] for f in _COMPANY_ARRAYS})
        a["custom"] = {}
        return a

    def create(self, kind: str, body: dict[str, Any], now: float, *,
               ident: str | None = None, immediately: bool = False) -> Record:
        """Create a customer or company from a validated body."""
        a = self._defaults(kind)
        company = body.get("company") if kind == "customer" else None
        for field, value in body.items():
            if field in ("company", "rev", "id"):
                continue
            if field == "custom":
                a["custom"] = {k: copy.deepcopy(v) for k, v in value.items() if v is not None}
            else:
                a[field] = _normalise(field, value)
        if kind == "customer":
            self.check_unique(a, None)
            self._check_company(company)
        created = parse_datetime(a["createdAt"]) if a.get("createdAt") else None
        updated = parse_datetime(a["updatedAt"]) if a.get("updatedAt") else None
        created = now if created is None else created
        updated = now if updated is None else updated
        a["createdAt"] = iso(created)
        a["updatedAt"] = a["modifiedAt"] = iso(updated)
        a["rev"] = 1
        if kind == "customer":
            a["displayName"] = _display_name(a)
            if a.get("lastActivityAt") is None and "lastActivityAt" not in body:
                a["lastActivityAt"] = a["updatedAt"]
        ident = ident or self.new_id()
        if ident in self.records[kind]:
            raise Invalid("/id", f"{kind} {ident} already exists")
        self._order += 1
        rec = Record(ident, kind, a, company, self._order, updated)
        self.records[kind][ident] = rec
        self._index(rec, True)
        self._publish(rec, now, immediately=immediately)
        return rec

    def delete(self, kind: str, ident: str) -> None:
        """Remove a record, its unique keys and its search entry (:class:`NotFound` if absent)."""
        rec = self.get(kind, ident)
        self._index(rec, False)
        del self.records[kind][ident]
        self.search[kind].remove(ident)

    def update(self, kind: str, ident: str, body: dict[str, Any], now: float, *,
               replace: bool = False) -> Record:
        """Update a record from a validated body (merge, or replace the document)."""
        rec = self.get(kind, ident)
        current = int(rec.attributes.get("rev", 0))
        if self.readings.rev == "enforced" and "rev" in body and body["rev"] != current:
            raise StaleRev(body["rev"], current)
        replace = replace or (kind == "company" and self.readings.company_update == "replace")
        replace_custom = self.readings.custom_update == "replace"
        if replace:
            a = self._defaults(kind)
            a["createdAt"] = rec.attributes["createdAt"]
        else:
            a = dict(rec.attributes)
            a["custom"] = dict(rec.attributes.get("custom") or {})
        for field, value in body.items():
            if field in ("company", "rev", "id"):
                continue
            if field == "custom" and replace_custom:
                a["custom"] = {k: copy.deepcopy(v) for k, v in value.items() if v is not None}
            elif field == "custom":
                for key, val in value.items():
                    if val is None:
                        a["custom"].pop(key, None)
                    else:
                        a["custom"][key] = copy.deepcopy(val)
            else:
                a[field] = _normalise(field, value)
        company = rec.company
        if kind == "customer":
            # THE TRAP (documented Kustomer behaviour): an update that does not
            # resend ``company`` unlinks the customer from its company.
            company = body.get("company")
            self._check_company(company)
            self.check_unique(a, rec.id)
            a["displayName"] = _display_name(a)
        a["updatedAt"] = a["modifiedAt"] = iso(now)
        if kind == "customer" and "lastActivityAt" not in body:
            a["lastActivityAt"] = a["updatedAt"]
        a["rev"] = current + 1
        self._index(rec, False)
        rec.attributes, rec.company, rec.updated = a, company, now
        self._index(rec, True)
        self._publish(rec, now)
        return rec
