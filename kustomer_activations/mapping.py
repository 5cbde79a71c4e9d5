"""Declarative mapping from a flat source row to a Kustomer write body.

A :class:`FieldMapping` is built once (every destination checked and compiled
then) and applied to each row with :meth:`FieldMapping.apply`, which returns a
:class:`MappedRecord` whose payload has been validated and normalised.

Destinations, by object type:

* any writable Kustomer field (``name``, ``externalId``, ``tags``, ...);
* ``custom.<name>`` for a custom attribute (the suffix must be a valid type);
* shortcuts ``email`` (the default email: ``emails[0]``, type ``home``),
  ``phone`` (``phones[0]``, type ``mobile``) and, for companies, ``domain``
  (``domains[0]``);
* customers only: ``companyExternalId`` (the engine resolves it to a Kustomer
  company id) or ``company`` (a Kustomer company id), not both.

Sources: a column name, a callable taking the whole row, or a :class:`Field`
with options. Unmapped columns are never sent.

Null rules ("don't sync nulls", ``skip_nulls=True`` by default): ``None``,
NaN, pandas ``NA``/``NaT`` and blank strings (empty or whitespace only) mean
"leave the field alone". With ``skip_null=False`` such a value clears the
field instead (``null`` is sent), except for list fields, the
``email``/``phone``/``domain`` shortcuts and ``companyExternalId``: lists are
merged with what Kustomer holds, never replaced, so a null there is always
skipped.

``tags``: a list is taken as is; a string is split on commas (``"a, b"`` is
``["a", "b"]``), blank parts dropped.

Whatever a row holds, :meth:`FieldMapping.apply` either returns a payload
that is strict JSON (``json.dumps(payload, allow_nan=False)`` succeeds; see
:func:`~kustomer_activations.models.validation.strict_json`) or raises
:class:`InvalidRecordError` with ``field`` set to the path of the bad value
(``"sentiment.polarity"``, ``"custom.tierStr"``); never another exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, NamedTuple

import attrs

from .errors import InvalidRecordError, KustomerError
from .models.custom import custom_type, error_value
from .models.metadata import closest
from .models.validation import (
    CUSTOM_MAX_KEYS,
    ObjectType,
    custom_check,
    field_check,
    is_email,
    strict_json,
    validate_payload,
    writable_fields,
)

__all__ = ["Field", "FieldMapping", "MappedRecord", "Source", "is_null"]

#: A source: a column name, or a callable that computes the value from the row.
Source = str | Callable[[Mapping[str, Any]], Any]

_NULL_TYPES: Final = frozenset({"NAType", "NaTType"})


def is_null(value: Any) -> bool:
    """Whether a source value means "no value": None, NaN, pandas NA/NaT, blank string.

    pandas is detected by type name, so it is never imported.
    """
    if value is None:
        return True
    kind = type(value)
    if kind is str:
        return not value or value.isspace()
    if kind is int or kind is bool:
        return False
    if kind is float:
        return bool(value != value)
    if isinstance(value, str):
        return not value or value.isspace()
    if isinstance(value, float):
        return math.isnan(value)
    if kind.__name__ in _NULL_TYPES:
        return True
    try:
        return bool(value != value)  # Decimal NaN, numpy floats
    except Exception:
        # arrays and other values without a scalar comparison, Decimal sNaN
        # (InvalidOperation): not null; validation says what is wrong with them
        return False


@attrs.frozen
class Field:
    """A mapping source with options.

    Attributes:
        source: a column name or a callable ``row -> value``.
        skip_null: whether a null leaves the field alone (``None``: the
            mapping's ``skip_nulls``); ``False`` sends null to clear it.
        set_if_empty: write only when the existing object has no value for
            the field (never overwrite).
        transform: applied to the source value before validation
            (after null detection on the raw value, and again on the result).
    """

    source: Source
    skip_null: bool | None = attrs.field(default=None, kw_only=True)
    set_if_empty: bool = attrs.field(default=False, kw_only=True)
    transform: Callable[[Any], Any] | None = attrs.field(default=None, kw_only=True)


@attrs.frozen(kw_only=True)
class MappedRecord:
    """One source row, mapped and validated.

    Attributes:
        payload: the Kustomer-shaped body (validated; custom values coerced).
        set_if_empty: destination paths (``"name"``, ``"custom.signupAt"``)
            to write only when the existing value is empty.
        company_external_id: the ``companyExternalId`` to resolve, if mapped.
        mapped_fields: every path this row wrote (``"emails"`` for the email
            shortcut, ``"company"`` for ``companyExternalId``), nulls included.
        nulls: paths mapped to an explicit null (to clear).
    """

    payload: dict[str, Any]
    set_if_empty: frozenset[str] = frozenset()
    company_external_id: str | None = None
    mapped_fields: frozenset[str] = frozenset()
    nulls: frozenset[str] = frozenset()


# How a compiled step places its value.
_PLAIN, _ARRAY, _CUSTOM, _EMAIL, _PHONE, _DOMAIN, _TAGS, _COMPANY_EXT = range(8)
# kinds for which a null is always skipped (see the module notes)
_LISTS: Final = frozenset({_ARRAY, _EMAIL, _PHONE, _DOMAIN, _TAGS, _COMPANY_EXT})
_SHORTCUTS: Final = {"email": ("emails", _EMAIL), "phone": ("phones", _PHONE)}


class _Step(NamedTuple):
    """One compiled destination (a tuple: unpacking it per row is cheapest)."""

    dest: str
    path: str
    key: str  # the payload key or custom attribute name the value goes to
    column: str | None
    func: Callable[[Mapping[str, Any]], Any] | None
    skip_null: bool
    transform: Callable[[Any], Any] | None
    kind: int
    # value -> the validated payload value (placed: the email shortcut gives a list);
    # raises for a bad value (the row is then checked again by validate_payload)
    check: Callable[[Any], Any] | None


# List fields taken as a whole list (tags and the shortcuts have their own kinds).
_ARRAY_FIELDS: Final = frozenset({
    "emails", "sharedEmails", "phones", "sharedPhones", "whatsapps", "externalIds",
    "sharedExternalIds", "facebookIds", "instagramIds", "socials", "sharedSocials", "urls",
    "locations", "domains",
})


class FieldMapping:
    """A compiled map from source rows to Kustomer write bodies (see the module docs).

    Args:
        spec: destination -> source (column name, callable or :class:`Field`).
            ``None`` is accepted only through :meth:`identity`.
        object_type: ``"customer"`` or ``"company"``.
        skip_nulls: the default for :attr:`Field.skip_null`.
        parse_strings: let custom ``Num``/``Bool`` attributes parse strings
            (``"12.5"``, ``"yes"``), for text sources such as CSV.

    Raises:
        ValueError: an unknown or conflicting destination, or a bad source,
            named with the closest valid destination.
    """

    __slots__ = (
        "_all_paths",
        "_compiled",
        "_custom_checks",
        "_field_checks",
        "_identity",
        "_set_if_empty",
        "_steps",
        "object_type",
        "parse_strings",
        "skip_nulls",
        "spec",
    )

    def __init__(
        self,
        spec: Mapping[str, Source | Field] | None,
        *,
        object_type: ObjectType,
        skip_nulls: bool = True,
        parse_strings: bool = False,
    ) -> None:
        if object_type not in ("customer", "company"):
            raise ValueError(f"object_type must be 'customer' or 'company', not {object_type!r}")
        self.object_type: ObjectType = object_type
        self.skip_nulls = skip_nulls
        self.parse_strings = parse_strings
        self.spec: Mapping[str, Source | Field] | None = None if spec is None else dict(spec)
        self._identity = spec is None
        steps: list[_Step] = []
        set_if_empty: set[str] = set()
        if spec is not None:
            self._check_conflicts(spec)
            for dest, source in spec.items():
                step, sie = self._compile(dest, source)
                steps.append(step)
                if sie:
                    set_if_empty.add(step.path)
        self._steps: tuple[_Step, ...] = tuple(steps)
        self._set_if_empty = frozenset(set_if_empty)
        self._all_paths = frozenset(s.path for s in steps)
        # validate_payload refuses a custom object of more keys as a whole: leave that to it
        self._compiled = sum(s.kind == _CUSTOM for s in steps) <= CUSTOM_MAX_KEYS
        # identity rows: each field's and custom attribute's check, compiled on first sight
        self._field_checks: dict[str, Callable[[Any], Any]] = {}
        self._custom_checks: dict[str, Callable[[Any], Any]] = {}

    @classmethod
    def identity(cls, object_type: ObjectType, *, parse_strings: bool = False) -> FieldMapping:
        """A mapping for rows that are already Kustomer-shaped write bodies.

        Keys are Kustomer field names and ``custom`` is a nested dict; an
        explicit ``None`` clears a field (Kustomer's own meaning). Customer
        rows may also carry ``companyExternalId``, which is taken out of the
        body for the engine to resolve.
        """
        return cls(None, object_type=object_type, parse_strings=parse_strings)

    @property
    def is_identity(self) -> bool:
        """True for :meth:`identity` mappings."""
        return self._identity

    @property
    def columns(self) -> frozenset[str]:
        """The source columns read by name (callables may read more)."""
        return frozenset(s.column for s in self._steps if s.column is not None)

    def check_columns(self, columns: Collection[str]) -> None:
        """Raise before reading any row when a mapped column is not in ``columns``.

        Raises:
            ValueError: naming each missing column and the destination it feeds.
        """
        present = set(columns)
        missing = [
            f"{s.column!r} (for {s.dest!r})"
            for s in self._steps
            if s.column is not None and s.column not in present
        ]
        if missing:
            raise ValueError("source columns missing: " + ", ".join(missing))

    # -- construction -------------------------------------------------------

    def _destinations(self) -> list[str]:
        names = sorted(writable_fields(self.object_type) - {"custom"})
        names += ["email", "phone", "custom.<name>"]
        names += ["companyExternalId"] if self.object_type == "customer" else ["domain"]
        return names

    def _check_conflicts(self, spec: Mapping[str, Any]) -> None:
        pairs = [("email", "emails"), ("phone", "phones"), ("domain", "domains"),
                 ("companyExternalId", "company")]
        for a, b in pairs:
            if a in spec and b in spec:
                raise ValueError(f"map either {a!r} or {b!r}, not both: they write the same field")

    def _compile(self, dest: str, source: Source | Field) -> tuple[_Step, bool]:
        if not isinstance(dest, str):
            raise ValueError(f"mapping destinations are strings, not {dest!r}")
        options = source if isinstance(source, Field) else Field(source)
        column: str | None = None
        func: Callable[[Mapping[str, Any]], Any] | None = None
        if isinstance(options.source, str):
            column = options.source
        elif callable(options.source):
            func = options.source
        else:
            raise ValueError(
                f"the source for {dest!r} must be a column name, a callable(row) or a Field, "
                f"not {options.source!r}"
            )
        if options.transform is not None and not callable(options.transform):
            raise ValueError(f"the transform for {dest!r} must be callable")
        skip = self.skip_nulls if options.skip_null is None else options.skip_null
        path, key, kind = self._place(dest)
        step = _Step(dest, path, key, column, func, skip, options.transform, kind,
                     self._checker(key, kind))
        return step, options.set_if_empty

    def _checker(self, key: str, kind: int) -> Callable[[Any], Any] | None:
        """The compiled check of one destination: what validate_payload does for it."""
        if kind == _COMPANY_EXT:
            return None
        if kind == _CUSTOM:
            return custom_check(key, parse_strings=self.parse_strings)
        check = field_check(self.object_type, key)
        if kind == _EMAIL:
            def email(value: Any) -> Any:
                if type(value) is str and value.isascii() and is_email(value):
                    return [{"type": "home", "email": value}]
                return check(_placed(_EMAIL, value))
            return email
        if kind == _PHONE:
            def phone(value: Any) -> Any:
                if type(value) is str and value.isascii() and value.strip():
                    return [{"type": "mobile", "phone": value}]
                return check(_placed(_PHONE, value))
            return phone
        if kind in (_DOMAIN, _TAGS):
            return lambda value: check(_placed(kind, value))
        return check

    def _place(self, dest: str) -> tuple[str, str, int]:
        if dest.startswith("custom."):
            name = dest[7:]
            try:
                custom_type(name)
            except KustomerError as exc:
                raise ValueError(f"invalid mapping destination {dest!r}: {exc}") from None
            return dest, name, _CUSTOM
        if dest in _SHORTCUTS:
            path, kind = _SHORTCUTS[dest]
            return path, path, kind
        if dest == "domain" and self.object_type == "company":
            return "domains", "domains", _DOMAIN
        if dest == "companyExternalId" and self.object_type == "customer":
            return "company", "company", _COMPANY_EXT
        if dest == "tags":
            return dest, dest, _TAGS
        if dest in writable_fields(self.object_type) and dest != "custom":
            return dest, dest, _ARRAY if dest in _ARRAY_FIELDS else _PLAIN
        guess = closest(dest, self._destinations())
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise ValueError(f"unknown {self.object_type} mapping destination {dest!r}{hint}")

    # -- per row ------------------------------------------------------------

    def apply(self, row: Mapping[str, Any]) -> MappedRecord:
        """Map and validate one row.

        Raises:
            InvalidRecordError: a missing column, a failing callable or
                transform, or a value Kustomer would refuse; ``field`` names
                the destination (``"custom.tierStr"``, ``"emails[0].email"``).
        """
        if self._identity:
            return self._apply_identity(row)
        payload: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        # (kind, key, value) as the row gave it: checked again by validate_payload if a
        # compiled check fails, once every source was read (so a missing column or a
        # failing callable further on is still the error, as it was before any check)
        taken: list[tuple[int, str, Any]] = []
        checked = self._compiled
        paths: list[str] = []
        nulls: list[str] | None = None
        company_ext: str | None = None
        for dest, path, key, column, func, skip, transform, kind, check in self._steps:
            if func is None:
                try:
                    value = row[column]  # type: ignore[index]
                except (KeyError, IndexError):
                    raise InvalidRecordError(
                        f"source column {column!r} is missing from the row", field=dest
                    ) from None
            else:
                value = _call(dest, func, row)
            if transform is not None and not is_null(value):
                value = _call(dest, transform, value)
            # inline the common cases of is_null: this loop runs once per field per row
            if (not value or value.isspace()) if type(value) is str else is_null(value):
                if skip or kind in _LISTS:
                    continue
                value = None
                if nulls is None:
                    nulls = []
                nulls.append(path)
            paths.append(path)
            if kind == _COMPANY_EXT:
                company_ext = _text(dest, value)
                continue
            taken.append((kind, key, value))
            if checked:
                try:
                    if kind == _CUSTOM:
                        custom[key] = check(value)  # type: ignore[misc]
                    else:
                        payload[key] = check(value)  # type: ignore[misc]
                except Exception:  # worded by validate_payload, below
                    checked = False
        if checked:
            if custom:
                payload["custom"] = custom
        else:
            payload = self._validated(taken)
        return MappedRecord(
            payload=payload,
            set_if_empty=self._set_if_empty,
            company_external_id=company_ext,
            # every destination wrote (the usual row): the one set, not a new one per row
            mapped_fields=self._all_paths if len(paths) == len(self._steps) else frozenset(paths),
            nulls=_NO_PATHS if nulls is None else frozenset(nulls),
        )

    def _validated(self, taken: list[tuple[int, str, Any]]) -> dict[str, Any]:
        """The body checked as a whole by validate_payload: the first bad field's error."""
        raw: dict[str, Any] = {}
        raw_custom: dict[str, Any] = {}
        for kind, key, value in taken:
            if kind == _CUSTOM:
                raw_custom[key] = value
            else:
                raw[key] = value if value is None else _placed(kind, value)
        if raw_custom:
            raw["custom"] = raw_custom
        return validate_payload(self.object_type, raw, parse_strings=self.parse_strings)

    def _apply_identity(self, row: Mapping[str, Any]) -> MappedRecord:
        if not isinstance(row, Mapping):
            raise InvalidRecordError("a record must be a mapping of Kustomer fields",
                                     value=error_value(row))
        body = dict(row)
        company_ext: str | None = None
        if self.object_type == "customer" and "companyExternalId" in body:
            raw = body.pop("companyExternalId")
            company_ext = None if is_null(raw) else _text("companyExternalId", raw)
        payload = self._checked_body(body)
        paths = [k for k in payload if k != "custom"]
        nulls = [k for k, v in payload.items() if v is None]
        custom = payload.get("custom")
        if custom:
            paths += [f"custom.{k}" for k in custom]
            nulls += [f"custom.{k}" for k, v in custom.items() if v is None]
        if company_ext is not None:
            paths.append("company")
        return MappedRecord(
            payload=payload,
            company_external_id=company_ext,
            mapped_fields=frozenset(paths),
            nulls=frozenset(nulls),
        )

    def _checked_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """``validate_payload(body)``, field by field with compiled checks.

        Any check that fails hands the whole body to ``validate_payload``,
        which words the error as always (the first bad field of the body).
        """
        out: dict[str, Any] = {}
        try:
            for name, value in body.items():
                if name == "custom":
                    out[name] = self._checked_custom(value)
                    continue
                check = self._field_checks.get(name) or _kept(
                    self._field_checks, name, field_check(self.object_type, name))  # KeyError: unknown
                out[name] = check(value)
        except Exception:  # worded by validate_payload, below
            return validate_payload(self.object_type, body, parse_strings=self.parse_strings)
        return out

    def _checked_custom(self, value: Any) -> dict[str, Any]:
        if type(value) is not dict or len(value) > CUSTOM_MAX_KEYS:
            raise ValueError("left to validate_payload")
        checks = self._custom_checks
        out: dict[str, Any] = {}
        for name, item in value.items():
            check = checks.get(name) or _kept(
                checks, name, custom_check(name, parse_strings=self.parse_strings))
            out[name] = check(item)
        return out

    def __repr__(self) -> str:
        what = "identity" if self._identity else ", ".join(s.dest for s in self._steps)
        return f"FieldMapping({self.object_type}: {what})"


_NO_PATHS: Final[frozenset[str]] = frozenset()
#: Compiled checks an identity mapping keeps per kind (field names come from the rows).
_CHECKS_HELD: Final = 1024


def _kept(checks: dict[str, Callable[[Any], Any]], name: str,
          check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check``, kept in ``checks`` under ``name`` while fewer than :data:`_CHECKS_HELD` are."""
    if len(checks) < _CHECKS_HELD:
        checks[name] = check
    return check


def _placed(kind: int, value: Any) -> Any:
    """A destination's value as the write body holds it (the shortcuts become lists)."""
    if kind == _EMAIL:
        return [{"type": "home", "email": value}]
    if kind == _PHONE:
        return [{"type": "mobile", "phone": value}]
    if kind == _DOMAIN:
        return [{"domain": value}]
    if kind == _TAGS:
        return _split_tags(value)
    return value


def _call(dest: str, func: Callable[[Any], Any], arg: Any) -> Any:
    try:
        return func(arg)
    except InvalidRecordError as exc:
        if exc.field is not None:
            raise
        raise type(exc)(exc.reason, field=dest, value=exc.value) from exc
    except Exception as exc:
        raise InvalidRecordError(
            f"computing the value failed: {type(exc).__name__}: {exc}", field=dest
        ) from exc


def _split_tags(value: Any) -> Any:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return value


def _text(dest: str, value: Any) -> str:
    """A key looked up by value (``companyExternalId``): text, or an integer written as text."""
    if isinstance(value, str):
        text: str = strict_json(value, dest)  # it goes into a URL: valid Unicode only
        return text
    # pandas turns an integer column with gaps into floats: 42.0 means "42"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**256:
        return str(int(value))
    raise InvalidRecordError("must be a string (or an integer)", field=dest,
                             value=error_value(value))
