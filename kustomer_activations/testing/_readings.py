"""Readings: how the emulator answers where Kustomer's public material is unclear.

``KUSTOMER_API.md`` ("Where the public material disagrees") lists the points
on which Kustomer's OpenAPI examples, its developer docs and open-source
clients disagree or say nothing. The SDK must be correct under every reading
of each point, so the emulator can play each of them: a :class:`Readings`
value picks one reading per point. ``Readings()`` is the emulator's default
behaviour; ``Readings.strictest()`` takes the pessimistic reading of every
point, the one most likely to expose a client that relies on an assumption.

Select one from Python (``KustomerEmulator(readings="strictest")``,
``readings={"search_hits": "minimal"}``, ``readings=Readings(rev="ignored")``)
or the command line (``--readings strictest --reading rev=ignored``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["PRESETS", "READINGS_ENV", "Readings"]

SearchHits = Literal["full", "minimal"]
CompanyLink = Literal["relationships", "attribute", "hidden"]
CustomUpdate = Literal["merge", "replace"]
CompanyUpdate = Literal["partial", "replace"]
BulkResults = Literal["documented", "jsonapi"]
ClientRefOn = Literal["all", "customer-create"]
SearchDocs = Literal["live", "indexed"]
Rev = Literal["enforced", "ignored"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "search_hits": ("full", "minimal"),
    "company_link": ("relationships", "attribute", "hidden"),
    "custom_update": ("merge", "replace"),
    "company_update": ("partial", "replace"),
    "bulk_results": ("documented", "jsonapi"),
    "client_ref_on": ("all", "customer-create"),
    "search_docs": ("live", "indexed"),
    "rev": ("enforced", "ignored"),
}
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null", "")


def _choice(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    allowed = _CHOICES[attribute.name]
    if value not in allowed:
        raise ValueError(f"reading {attribute.name} must be one of {list(allowed)}, "
                         f"got {value!r}")


def _search_in(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value in ("any", "refused"):
        return
    if isinstance(value, str) and value.startswith("max:"):
        n = value[4:]
        if n.isdigit() and int(n) >= 1:
            return
    raise ValueError(f"reading search_in must be 'any', 'refused' or 'max:<n>' with n >= 1, "
                     f"got {value!r}")


def _positive_int_or_none(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"reading {attribute.name} must be a positive integer or None, "
                         f"got {value!r}")


def _positive_number_or_none(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"reading {attribute.name} must be a positive number of seconds or "
                         f"None, got {value!r}")


def _bool(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"reading {attribute.name} must be true or false, got {value!r}")


@attrs.frozen(kw_only=True)
class Readings:
    """One reading of every unclear point of Kustomer's API (see ``KUSTOMER_API.md``,
    "Where the public material disagrees"). Immutable; fields are keyword-only.

    :param search_hits: what a search hit carries. ``"full"`` (default): the whole
        document, as a singer tap's test fixture shows. ``"minimal"``: only
        ``name``, ``displayName``, ``createdAt``, ``updatedAt``,
        ``lastActivityAt``, ``verified`` and ``rev`` in ``attributes`` (those a
        company has, for company searches), only ``org`` in ``relationships``,
        and ``links.self``, as the OpenAPI example of ``/v1/customers/search``.
        Doubt: "Search hits' attributes".
    :param company_link: where a customer response shows its company.
        ``"relationships"`` (default): ``relationships.company.data`` =
        ``{"type": "company", "id"}`` or ``null``. ``"attribute"``:
        ``attributes.company`` = the id or ``null``, no
        ``relationships.company``. ``"hidden"``: nowhere, in any customer
        response. The stored link and the unlink trap are the same in every
        reading. Doubt: "Company link in responses" (the OpenAPI customer
        schema has no company field in responses).
    :param search_in: the ``in`` search operator. ``"any"`` (default): any number of
        values. ``"refused"``: any ``in`` is a 400. ``"max:<n>"``: an ``in``
        with more than ``n`` values is a 400 naming the limit. Doubt: "``in``
        over many values" (no value limit is published; groups hold at most 20).
    :param company_externalId_searchable: ``True`` (default): company searches
        accept ``company_externalId``. ``False``: a 400 "unknown attribute", as
        the published company search attributes do not list it. Doubt: "``in``
        over many values" (the list is known to be incomplete).
    :param max_body_bytes: ``None`` (default): no limit. An integer: a request whose
        raw body is longer gets 413 ``payload_too_large`` and nothing is
        applied. Doubt: "Body size" (Kustomer's error reference: 413 over
        100 KB on most endpoints).
    :param custom_update: ``"merge"`` (default): a PUT (without
        ``replace=true``) or PATCH merges ``custom`` key by key, ``null``
        clears a key. ``"replace"``: the given ``custom`` replaces the stored one
        (``null`` values dropped), customers and companies, single and bulk
        updates. Doubt: "Partial updates of ``custom``".
    :param company_update: ``"partial"`` (default): a company PUT changes the fields
        given. ``"replace"``: a company PUT (single and bulk) replaces the whole
        document; every absent field goes back to its default (``id``,
        ``createdAt`` kept, ``rev`` still increments). Doubt: "Partial updates of
        ``custom``" ("nor whether company PUT is partial").
    :param bulk_results: the answer of ``GET /v1/bulk/{id}/batches``.
        ``"documented"`` (default): a top-level array ``[{"successCount",
        "failureCount", "objectIds", "results": [{"_clientRef"?, "objectId"?,
        "status", "error"?}]}]`` with ``error`` a string, ``[]`` until the job
        is complete, as the developer guide on bulk operations shows.
        ``"jsonapi"``: ``{"data": [{"type": "bulk_batch", "attributes":
        {"items": [...]}}], "meta", "links"}`` with ``error`` an object (the
        emulator's earlier answer). Doubt: KUSTOMER_API.md "Bulk".
    :param client_ref_on: where ``_clientRef`` is accepted. ``"all"`` (default):
        every bulk endpoint. ``"customer-create"``: only ``POST
        /v1/customers/bulk``; on other bulk endpoints it is an unknown field and
        refuses the whole request (400). Doubt: KUSTOMER_API.md "Bulk"
        (documented for customer bulk create only; the company bulk schemas
        refuse unknown fields).
    :param search_docs: what a search hit shows. ``"live"`` (default): the object
        as stored now. ``"indexed"``: the object as the index last saw it (its
        attributes and company link at the snapshot that matched), as a real
        index does. Matching uses the lagged index in both. Doubt: "Search
        index lag".
    :param rev: ``"enforced"`` (default): a write (PUT/PATCH, or a bulk update
        item) whose body carries a ``rev`` other than the stored one is refused
        (409 ``conflict``; per-item ``"conflict: stale rev ..."`` in bulk).
        ``"ignored"``: ``rev`` in bodies is ignored. Every write increments
        ``rev`` either way. Doubt: "Revisions" (whether a stale ``rev`` is
        refused is not published).
    :param search_page_cap: ``None`` (default): a search page holds ``pageSize``
        hits. An integer: at most that many whatever ``pageSize`` asks
        (``meta.pageSize`` states the real size, ``links.next`` leads on), so a
        client that stops on a short page loses hits. Doubt: "Pagination" (a page
        can be short before the end).
    :param bulk_job_ttl: ``None`` (default): bulk jobs are kept forever. Seconds:
        ``GET /v1/bulk/{id}`` and ``/batches`` answer 404 once that long has
        passed since the job completed. Doubt: KUSTOMER_API.md "Bulk" describes
        polling a job but not how long Kustomer keeps it; nothing public says
        so, and a client that polls late must cope with a 404.
    """

    search_hits: SearchHits = attrs.field(default="full", validator=_choice)
    company_link: CompanyLink = attrs.field(default="relationships", validator=_choice)
    search_in: str = attrs.field(default="any", validator=_search_in)
    company_externalId_searchable: bool = attrs.field(default=True, validator=_bool)
    max_body_bytes: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    custom_update: CustomUpdate = attrs.field(default="merge", validator=_choice)
    company_update: CompanyUpdate = attrs.field(default="partial", validator=_choice)
    bulk_results: BulkResults = attrs.field(default="documented", validator=_choice)
    client_ref_on: ClientRefOn = attrs.field(default="all", validator=_choice)
    search_docs: SearchDocs = attrs.field(default="live", validator=_choice)
    rev: Rev = attrs.field(default="enforced", validator=_choice)
    search_page_cap: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    bulk_job_ttl: float | None = attrs.field(default=None, validator=_positive_number_or_none)

    # -- constructors ------------------------------------------------------------
    @classmethod
    def strictest(cls) -> Readings:
        """The pessimistic reading of every point: minimal hits, hidden company link,
        ``in`` limited to 20 values, no ``company_externalId`` search, 413 over
        100,000 bytes, ``custom`` and company PUTs replace, documented bulk
        results, ``_clientRef`` on customer bulk create only, hits as indexed,
        stale ``rev`` refused, 100 hits per search page, bulk jobs kept 600 s."""
        return cls(search_hits="minimal", company_link="hidden", search_in="max:20",
                   company_externalId_searchable=False, max_body_bytes=100_000,
                   custom_update="replace", company_update="replace",
                   bulk_results="documented", client_ref_on="customer-create",
                   search_docs="indexed", rev="enforced", search_page_cap=100,
                   bulk_job_ttl=600.0)

    @classmethod
    def preset(cls, name: str) -> Readings:
        """A named preset: ``"default"`` or ``"strictest"``."""
        if name not in PRESETS:
            raise ValueError(f"unknown readings preset {name!r}; use one of {sorted(PRESETS)}")
        return PRESETS[name]

    @classmethod
    def parse(cls, text: str) -> Readings:
        """Readings from text: a preset name, ``NAME=VALUE`` items, or both,
        comma-separated (``"strictest"``, ``"search_hits=minimal,company_link=hidden"``,
        ``"strictest,rev=ignored"``). Items apply in order, starting from the
        defaults; a preset name resets every point to that preset."""
        out = cls()
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            if "=" not in item:
                out = cls.preset(item)
                continue
            name, _, value = item.partition("=")
            name = name.strip()
            out = out.replace(**{name: _from_text(name, value)})
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Readings:
        """Readings from ``{name: value}``; string values are read as on the command line
        (``{"max_body_bytes": "100000"}``)."""
        return cls().replace(**{k: _from_text(k, v) if isinstance(v, str) else v
                                for k, v in values.items()})

    def replace(self, **changes: Any) -> Readings:
        """A copy with some readings changed (same as ``attrs.evolve``)."""
        unknown = sorted(set(changes) - set(_NAMES))
        if unknown:
            raise ValueError(f"unknown reading(s) {unknown}; known: {list(_NAMES)}")
        return attrs.evolve(self, **changes)

    def __str__(self) -> str:
        """The readings that differ from the defaults, as ``Readings.parse`` reads
        them (``"default"`` when none differs)."""
        base = Readings()
        items = [f"{name}={_to_text(getattr(self, name))}" for name in _NAMES
                 if getattr(self, name) != getattr(base, name)]
        return ",".join(items) or "default"


_NAMES: tuple[str, ...] = tuple(f.name for f in attrs.fields(Readings))


def _to_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _from_text(name: str, text: str) -> Any:
    """The value of reading ``name`` written as ``text``."""
    if name not in _NAMES:
        raise ValueError(f"unknown reading {name!r}; known: {list(_NAMES)}")
    low = text.strip().lower()
    if name == "company_externalId_searchable":
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"reading {name} must be true or false, got {text!r}")
    if name in ("max_body_bytes", "search_page_cap", "bulk_job_ttl"):
        if low in _NONE:
            return None
        try:
            return float(low) if name == "bulk_job_ttl" else int(low)
        except ValueError:
            kind = "a number of seconds" if name == "bulk_job_ttl" else "an integer"
            raise ValueError(f"reading {name} must be {kind} or none, got {text!r}") from None
    return text.strip()


PRESETS: dict[str, Readings] = {"default": Readings(), "strictest": Readings.strictest()}
"""Named sets of readings: ``"default"`` and ``"strictest"``."""


#: Environment variable read when an emulator is made without ``readings=``: run a whole
#: test suite under other readings without touching it (``KUSTOMER_EMULATOR_READINGS=strictest``).
READINGS_ENV = "KUSTOMER_EMULATOR_READINGS"


def coerce_readings(value: Readings | str | Mapping[str, Any] | None) -> Readings:
    """What ``KustomerEmulator(readings=...)`` accepts, as a :class:`Readings`.

    ``None`` takes :data:`READINGS_ENV` from the environment when set (a
    preset or ``NAME=VALUE`` items, as :meth:`Readings.parse` reads them),
    else the defaults.
    """
    if value is None:
        text = os.environ.get(READINGS_ENV, "").strip()
        return Readings.parse(text) if text else Readings()
    if isinstance(value, Readings):
        return value
    if isinstance(value, str):
        return Readings.parse(value)
    if isinstance(value, Mapping):
        return Readings.from_mapping(value)
    raise TypeError(f"readings must be a Readings, a string or a mapping, not {type(value)!r}")
