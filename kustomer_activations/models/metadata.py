"""The org's custom-attribute definitions, from ``GET /v1/metadata/{customer|company}``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import UnknownFieldError
from ._decode import as_mapping, resource_of, str_or_none

__all__ = ["CustomAttribute", "CustomSchema", "closest"]


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (difflib), or ``None`` when none is close."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not matches:
        # A wrong suffix alone ("tierNum" for "tierStr") is below difflib's
        # cutoff on short names, so compare case-insensitively as a fallback.
        lowered = {k.lower(): k for k in known}
        low = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
        return lowered[low[0]] if low else None
    return matches[0]


@attrs.frozen(kw_only=True)
class CustomAttribute:
    """One custom attribute definition.

    Attributes:
        name: the attribute's name (``tierStr``), as used under ``custom``.
        type: Kustomer's type word (``string``, ``number``, ...), when given.
        display_name: the label admins see (it can change; the name cannot).
        enumeration: the allowed values, when the attribute is a picklist.
        raw: the definition as Kustomer sent it.
    """

    name: str
    type: str | None = None
    display_name: str | None = None
    enumeration: tuple[str, ...] | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class CustomSchema:
    """The custom attributes one object type defines, by name."""

    attributes: Mapping[str, CustomAttribute] = attrs.field(factory=dict)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> CustomSchema:
        """Read a metadata response (``{"data": {"attributes": {"properties": ...}}}``).

        The bare resource object is accepted too; missing parts give an empty schema.
        """
        res = resource_of(payload)
        props = as_mapping(as_mapping(res.get("attributes")).get("properties"))
        out: dict[str, CustomAttribute] = {}
        for name, spec in props.items():
            spec_map = as_mapping(spec)
            enum = spec_map.get("enumeration")
            out[name] = CustomAttribute(
                name=name,
                type=str_or_none(spec_map.get("type")),
                display_name=str_or_none(spec_map.get("displayName")),
                enumeration=tuple(str(e) for e in enum) if isinstance(enum, list) else None,
                raw=dict(spec_map),
            )
        return cls(attributes=out)

    @property
    def names(self) -> frozenset[str]:
        """Every defined attribute name."""
        return frozenset(self.attributes)

    def __contains__(self, name: object) -> bool:
        return name in self.attributes

    def check(self, names: Iterable[str]) -> None:
        """Raise for the first name this schema does not define.

        Raises:
            UnknownFieldError: naming ``custom.<name>`` and the closest defined name.
        """
        for name in names:
            if name not in self.attributes:
                guess = closest(name, self.attributes)
                hint = f"; did you mean {guess!r}?" if guess else ""
                raise UnknownFieldError(
                    f"unknown custom attribute {name!r}{hint}", field=f"custom.{name}"
                )
