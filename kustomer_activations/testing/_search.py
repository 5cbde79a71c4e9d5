"""Search: an eventually consistent index, criteria evaluation and paging.

Each write publishes a :class:`Snapshot` with a ``visible_at`` time (write
time + ``search_lag``). Before every search the index applies the snapshots
that have become visible, in order, so a new object is invisible until then
and an updated one is found by its *old* values until then.

Equality criteria (``equals`` / ``in``) on ``externalId``, ``email``,
``phone``, ``name`` and scalar custom attributes are answered from a
value → ids index, so an ``in`` with hundreds of values costs one dict lookup
per value, not a scan of every object. Other operators filter the candidate
set (or scan when nothing narrows it).

A snapshot keeps a reference to the attributes dict it was made from (the
store builds a new dict on every write and never changes a published one),
so a hit can be rendered as the index saw it without copying every write.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from ._rules import parse_datetime

__all__ = ["MAX_PAGE", "MAX_PAGE_SIZE", "SearchError", "SearchIndex", "Snapshot"]

MAX_PAGE_SIZE = 500
MAX_PAGE = 100
MAX_GROUP_ITEMS = 20
SEARCHABLE_SECONDS = 2 * 365 * 86400  # "only objects updated in the last 2 years"
OPERATORS = ("equals", "in", "contains", "gt", "gte", "lt", "lte", "not_set")

Term = tuple[str, Any]


class SearchError(Exception):
    """A malformed search (answered with 400)."""


def _term(value: Any) -> Term | None:
    # Tag the type so that True, 1 and "1" are different keys.
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return None


@attrs.define(slots=True)
class Snapshot:
    """The search-visible projection of one object at one write, with its
    equality-index terms (computed once, at write time), and the document as
    written (``attributes``, ``company``: shared, never modified)."""

    id: str
    seq: int
    fields: dict[str, list[Any]]
    updated: float
    terms: list[tuple[str, Term]]
    attributes: dict[str, Any]
    company: str | None

    @classmethod
    def of(cls, ident: str, seq: int, a: dict[str, Any], company: str | None,
           updated: float) -> Snapshot:
        """Project stored attributes onto the searchable fields."""
        f: dict[str, list[Any]] = {}
        terms: list[tuple[str, Term]] = []
        ext, name = a.get("externalId"), a.get("name")
        if ext is not None:
            f["externalId"] = [ext]
        if name is not None:
            f["name"] = [name]
        if a.get("emails"):
            f["email"] = [e["email"].lower() for e in a["emails"]]
        if a.get("phones"):
            f["phone"] = [p["phone"] for p in a["phones"]]
        if a.get("domains"):
            f["domain"] = [d["domain"].lower() for d in a["domains"]]
        if company:
            f["company"] = [company]
        for key, value in (a.get("custom") or {}).items():
            if value is not None:
                f["custom_" + key] = value if isinstance(value, list) else [value]
        for field, values in f.items():
            for v in values:
                t = ("s", v) if type(v) is str else _term(v)
                if t is not None:
                    terms.append((field, t))
        f["updated_at"] = [updated]
        created = a.get("createdAt")
        f["created_at"] = [parse_datetime(created) or updated if created else updated]
        return cls(ident, seq, f, updated, terms, a, company)


Predicate = Callable[[Snapshot], bool]


@attrs.define(slots=True)
class _Node:
    # ``ids`` answers from the index (None: not indexable); ``test`` checks one object.
    ids: Callable[[], set[str]] | None
    test: Predicate


class SearchIndex:
    """The search view of one object type (customer or company).

    ``max_in``: most values an ``in`` may list (``0``: ``in`` is refused;
    ``None``: no limit); ``hidden``: attributes (without the type prefix, e.g.
    ``externalId``) this index does not know.
    """

    def __init__(self, kind: str, *, max_in: int | None = None,
                 hidden: frozenset[str] = frozenset()) -> None:
        self.kind = kind
        self.max_in = max_in
        self.hidden = hidden
        self.visible: dict[str, Snapshot] = {}
        self.pending: deque[tuple[float, Snapshot]] = deque()
        self.index: dict[str, dict[Term, set[str]]] = {}

    def publish(self, snap: Snapshot, visible_at: float) -> None:
        """Queue a snapshot; it becomes searchable at ``visible_at``."""
        self.pending.append((visible_at, snap))

    def catch_up(self, now: float) -> None:
        """Apply every queued snapshot whose time has come, in write order."""
        while self.pending and self.pending[0][0] <= now:
            _, snap = self.pending.popleft()
            old = self.visible.get(snap.id)
            if old is not None:
                for field, term in old.terms:
                    bucket = self.index[field].get(term)
                    if bucket is not None:
                        bucket.discard(snap.id)
            self.visible[snap.id] = snap
            for field, term in snap.terms:
                self.index.setdefault(field, {}).setdefault(term, set()).add(snap.id)

    def remove(self, ident: str) -> None:
        """Forget an object at once (deleted): no later search finds it."""
        self.pending = deque((at, snap) for at, snap in self.pending if snap.id != ident)
        old = self.visible.pop(ident, None)
        if old is not None:
            for field, term in old.terms:
                bucket = self.index[field].get(term)
                if bucket is not None:
                    bucket.discard(ident)

    # -- criteria --------------------------------------------------------------
    def _field(self, attribute: str) -> str:
        prefix = self.kind + "_"
        if not attribute.startswith(prefix):
            raise SearchError(f"unknown attribute {attribute!r} for queryContext {self.kind!r}")
        rest = attribute[len(prefix):]
        known: tuple[str, ...] = ("externalId", "email", "phone", "name", "updated_at",
                                  "created_at")
        known = (*known, "domain") if self.kind == "company" else (*known, "company")
        if rest in self.hidden:
            raise SearchError(f"unknown attribute {attribute!r}")
        if rest in known or (rest.startswith("custom_") and len(rest) > 7):
            return rest
        raise SearchError(f"unknown attribute {attribute!r}")

    def _criterion(self, attribute: str, ops: Any) -> list[_Node]:
        field = self._field(attribute)
        if not isinstance(ops, dict) or not ops:
            raise SearchError(f"criterion for {attribute!r} must be an object of operators")
        fold = field in ("email", "domain")
        is_date = field in ("updated_at", "created_at") or (
            field.startswith("custom_") and field.endswith("At"))
        nodes = []
        for op, target in ops.items():
            if op not in OPERATORS:
                raise SearchError(f"unknown operator {op!r}")
            nodes.append(self._op(field, op, target, fold, is_date))
        return nodes

    def _op(self, field: str, op: str, target: Any, fold: bool, is_date: bool) -> _Node:
        def norm(v: Any) -> Any:
            return v.lower() if fold and isinstance(v, str) else v

        if op in ("equals", "in"):
            if op == "in" and self.max_in == 0:
                raise SearchError("the 'in' operator is not supported; use 'or' over "
                                  "'equals' criteria")
            targets = target if op == "in" else [target]
            if not isinstance(targets, list):
                raise SearchError("'in' takes a list of values")
            if op == "in" and self.max_in is not None and len(targets) > self.max_in:
                raise SearchError(f"'in' takes at most {self.max_in} values, "
                                  f"got {len(targets)}")
            if is_date:
                stamps = {parse_datetime(t) if isinstance(t, str) else t for t in targets}
                return _Node(None, lambda s: any(v in stamps for v in s.fields.get(field, ())))
            terms = [t for t in (_term(norm(v)) for v in targets) if t is not None]
            tset = set(terms)

            def ids() -> set[str]:
                bucket = self.index.get(field, {})
                out: set[str] = set()
                for t in terms:
                    out |= bucket.get(t, set())
                return out

            return _Node(ids, lambda s: any(_term(v) in tset for v in s.fields.get(field, ())))
        if op == "contains":
            needle = str(target).lower()
            return _Node(None, lambda s: any(needle in str(v).lower()
                                             for v in s.fields.get(field, ())))
        if op == "not_set":
            want_missing = bool(target)
            return _Node(None, lambda s: (not s.fields.get(field)) == want_missing)
        bound = parse_datetime(target) if is_date and isinstance(target, str) else target
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            raise SearchError(f"{op!r} needs a number or a date-time")

        def key(v: Any) -> float | None:
            if is_date and isinstance(v, str):
                return parse_datetime(v)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        cmp: dict[str, Callable[[float], bool]] = {
            "gt": lambda x: x > bound, "gte": lambda x: x >= bound,
            "lt": lambda x: x < bound, "lte": lambda x: x <= bound}
        test = cmp[op]

        def pred(s: Snapshot) -> bool:
            for v in s.fields.get(field, ()):
                k = key(v)
                if k is not None and test(k):
                    return True
            return False

        return _Node(None, pred)

    def _items(self, value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list):
            if len(value) > MAX_GROUP_ITEMS:
                raise SearchError(f"at most {MAX_GROUP_ITEMS} items in and/or/not")
            return value
        raise SearchError("and/or/not must be an object or a list")

    def _compile(self, node: Any) -> _Node:
        """An object: every key must hold (``and``/``or``/``not`` groups or criteria)."""
        if not isinstance(node, dict):
            raise SearchError("a criterion must be an object")
        parts: list[_Node] = []
        for key, value in node.items():
            if key == "and":
                parts.append(self._all([self._compile(i) for i in self._items(value)]))
            elif key == "or":
                parts.append(self._any([self._compile(i) for i in self._items(value)]))
            elif key == "not":
                # ``not: [a, b]`` = none of them matches.
                inner = self._any([self._compile(i) for i in self._items(value)])
                parts.append(self._negate(inner))
            else:
                parts.extend(self._criterion(key, value))
        return self._all(parts)

    def _all(self, parts: list[_Node]) -> _Node:
        if len(parts) == 1:
            return parts[0]
        indexed = [p.ids for p in parts if p.ids is not None]
        tests = [p.test for p in parts]
        rest = [p.test for p in parts if p.ids is None]

        def ids() -> set[str]:
            sets = sorted((f() for f in indexed), key=len)
            out = set(sets[0]).intersection(*sets[1:])
            return {i for i in out if all(t(self.visible[i]) for t in rest)}

        return _Node(ids if indexed else None, lambda s: all(t(s) for t in tests))

    def _any(self, parts: list[_Node]) -> _Node:
        if len(parts) == 1:
            return parts[0]
        tests = [p.test for p in parts]
        getters = [p.ids for p in parts]

        def ids() -> set[str]:
            out: set[str] = set()
            for g in getters:
                assert g is not None
                out |= g()
            return out

        indexable = all(g is not None for g in getters)
        return _Node(ids if indexable else None, lambda s: any(t(s) for t in tests))

    def _negate(self, inner: _Node) -> _Node:
        return _Node(None, lambda s: not inner.test(s))

    def search(self, body: dict[str, Any], now: float) -> list[Snapshot]:
        """Every visible, recently updated match, in creation order."""
        self.catch_up(now)
        clauses = {k: body[k] for k in ("and", "or", "not") if k in body}
        node = self._compile(clauses) if clauses else _Node(None, lambda s: True)
        if node.ids is not None:
            found = [self.visible[i] for i in node.ids() if i in self.visible]
        else:
            found = [s for s in self.visible.values() if node.test(s)]
        horizon = now - SEARCHABLE_SECONDS
        found = [s for s in found if s.updated >= horizon]
        found.sort(key=lambda s: s.seq)
        return found


def page_bounds(total: int, page: int, page_size: int) -> tuple[int, int, int]:
    """(start, end, total_pages) of one page."""
    total_pages = math.ceil(total / page_size) if total else 0
    start = (page - 1) * page_size
    return start, min(start + page_size, total), total_pages
