"""``client.check()``: is the key valid, in the right region, with the roles a sync needs?"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ._core.effects import Flow
from ._core.request import Core, RequestSpec, request_flow
from .errors import APIResponseValidationError

__all__ = ["SYNC_ROLES", "ConnectionCheck", "check_flow", "missing_roles"]

#: The roles a customer/company sync needs (Kustomer's names for an API key).
SYNC_ROLES: tuple[str, ...] = (
    "org.admin.klass.read",
    "org.user.kobject.read",
    "org.admin.metadata.read",
    "org.admin.search.read",
    "org.user.customer.write",
    "org.user.kobject.write",
    "org.permission.customer",
    "org.permission.company",
)

# Kustomer has legacy ``org.user|admin.<res>.<read|write>`` roles and newer
# ``org.permission.<res>.<action>`` permission sets; either grants the access.
_EQUIVALENT: Mapping[str, tuple[str, ...]] = {
    "org.admin.klass.read": ("org.user.klass.read", "org.permission.klass.read"),
    "org.user.kobject.read": ("org.admin.kobject.read", "org.permission.kobject.read"),
    "org.admin.metadata.read": ("org.user.metadata.read", "org.permission.metadata.read"),
    "org.admin.search.read": (
        "org.user.search.read", "org.permission.search.read", "org.permission.search.create",
        "org.permission.search.update", "org.permission.search_global.create",
    ),
    "org.user.customer.write": (
        "org.admin.customer.write", "org.permission.customer.create",
        "org.permission.customer.update",
    ),
    "org.user.kobject.write": (
        "org.admin.kobject.write", "org.permission.kobject.create",
        "org.permission.kobject.update",
    ),
}


def _has(role: str, held: frozenset[str]) -> bool:
    if role in held:
        return True
    if any(alt in held for alt in _EQUIVALENT.get(role, ())):
        return True
    # ``org.permission.customer`` is a whole permission set: its actions count too.
    return role.startswith("org.permission.") and any(h.startswith(role + ".") for h in held)


def missing_roles(held: Iterable[str], needed: Sequence[str] = SYNC_ROLES) -> tuple[str, ...]:
    """The roles in ``needed`` that ``held`` grants neither directly nor by an equivalent."""
    have = frozenset(held)
    return tuple(r for r in needed if not _has(r, have))


@attrs.frozen(kw_only=True)
class ConnectionCheck:
    """What ``client.check()`` found.

    Attributes:
        ok: True when the key works and has every role a sync needs.
        token_id: the key's id.
        name: the key's name, as set in Kustomer.
        roles: the roles the key holds.
        missing_roles: roles a sync needs that the key lacks (keys are
            immutable: create a new key with them).
        base_url: the host that answered.
        org: the org id or name, when Kustomer reports it.
        raw: the token resource as returned.
    """

    ok: bool
    token_id: str | None
    name: str | None
    roles: tuple[str, ...]
    missing_roles: tuple[str, ...]
    base_url: str
    org: str | None
    raw: Mapping[str, Any]

    def __str__(self) -> str:
        if self.ok:
            return f"OK: key {self.name or self.token_id!s} at {self.base_url} has every sync role"
        return (
            f"Key {self.name or self.token_id!s} at {self.base_url} lacks roles "
            f"{', '.join(self.missing_roles)}: create a new API key that has them"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: the one-line verdict."""
        printer.text("ConnectionCheck(...)" if cycle else str(self))

    def _repr_html_(self) -> str:
        """Jupyter's display: the verdict, the key, the host and any missing roles."""
        # ``raw`` is left out on purpose: it is the token resource, not something to show.
        fields = [
            ("status", "OK" if self.ok else "missing roles"),
            ("key", self.name or self.token_id or ""),
            ("host", self.base_url),
            ("org", self.org or ""),
            ("roles held", str(len(self.roles))),
            ("missing roles", ", ".join(self.missing_roles)),
        ]
        cells = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
                        for name, value in fields if value)
        advice = "" if self.ok else "<p>Create a new API key that has the missing roles.</p>"
        return (f'<table class="kustomer-connection-check" style="text-align:left"><tbody>{cells}'
                f"</tbody></table>{advice}")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def check_flow(core: Core) -> Flow[ConnectionCheck]:
    """``GET /v1/auth/tokens/current`` and compare the roles with :data:`SYNC_ROLES`."""
    response = yield from request_flow(core, RequestSpec(method="GET", path="/v1/auth/tokens/current"))
    data = response.data
    attributes = data.get("attributes") if isinstance(data, Mapping) else None
    roles_raw = attributes.get("roles", []) if isinstance(attributes, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(attributes, Mapping) \
            or not isinstance(roles_raw, list):
        # An answer without a readable role list is an error, not a key that holds no role.
        raise APIResponseValidationError(
            "expected 'data.attributes' with a 'roles' list", method="GET",
            path="/v1/auth/tokens/current", status=response.status, body=response.body,
        )
    roles = tuple(str(r) for r in roles_raw)
    missing = missing_roles(roles)
    org = attributes.get("org") or attributes.get("orgName")
    relationships = data.get("relationships")
    if org is None and isinstance(relationships, Mapping):
        org_rel = relationships.get("org")
        if isinstance(org_rel, Mapping) and isinstance(org_rel.get("data"), Mapping):
            org = org_rel["data"].get("id")
    return ConnectionCheck(
        ok=not missing,
        token_id=_text(data.get("id")),
        name=_text(attributes.get("name")),
        roles=roles,
        missing_roles=missing,
        base_url=core.config.base_url,
        org=_text(org),
        raw=dict(data),
    )
