"""``client.check()``: the key's name and roles against what a sync needs."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from kustomer_activations import SYNC_ROLES, AuthenticationError, ConnectionCheck

from ..helpers import drive
from ._util import BASE

LEGACY = list(SYNC_ROLES)
NEWER = [
    "org.permission.klass.read",
    "org.permission.kobject.read",
    "org.permission.metadata.read",
    "org.permission.search.create",
    "org.permission.customer.create",
    "org.permission.customer.update",
    "org.permission.customer.read",
    "org.permission.kobject.create",
    "org.permission.company.read",
    "org.permission.company.update",
]


def _token(roles: list[str], **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "token",
            "id": "tok_1",
            "attributes": {"name": "sync key", "roles": roles, **attributes},
            "relationships": {"org": {"data": {"type": "org", "id": "org_9"}}},
        }
    }


def _check(flavor: str, client: Any) -> ConnectionCheck:
    result: ConnectionCheck = drive(flavor, client, lambda c: c.check())
    return result


NEWER_READ_SEARCH = [r for r in NEWER if r != "org.permission.search.create"] + [
    "org.permission.search.read"
]


@pytest.mark.parametrize(
    "roles", [LEGACY, NEWER, NEWER_READ_SEARCH, LEGACY + NEWER],
    ids=["legacy", "newer", "newer-search-read", "both"],
)
def test_key_with_every_role_is_ok(
    flavor: str, client: Any, router: respx.MockRouter, roles: list[str]
) -> None:
    route = router.get("/v1/auth/tokens/current").respond(200, json=_token(roles))
    result = _check(flavor, client)
    assert route.call_count == 1
    assert result.ok is True
    assert result.missing_roles == ()
    assert result.name == "sync key"
    assert result.token_id == "tok_1"
    assert result.roles == tuple(roles)
    assert result.org == "org_9"
    assert result.base_url == BASE
    assert str(result).startswith("OK")


def test_key_missing_roles(flavor: str, client: Any, router: respx.MockRouter) -> None:
    roles = [r for r in LEGACY if r not in ("org.admin.search.read", "org.permission.company")]
    roles.append("org.user.company.read")  # a legacy company role is not the permission set
    router.get("/v1/auth/tokens/current").respond(200, json=_token(roles))
    result = _check(flavor, client)
    assert result.ok is False
    assert result.missing_roles == ("org.admin.search.read", "org.permission.company")
    text = str(result)
    assert "org.admin.search.read" in text and "org.permission.company" in text
    assert "create a new API key" in text


def test_read_only_newer_roles_lack_the_writes(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    roles = ["org.permission.customer.read", "org.permission.kobject.read",
             "org.permission.klass.read", "org.permission.metadata.read",
             "org.permission.search.create", "org.permission.company.read"]
    router.get("/v1/auth/tokens/current").respond(200, json=_token(roles))
    result = _check(flavor, client)
    assert result.ok is False
    assert result.missing_roles == ("org.user.customer.write", "org.user.kobject.write")


def test_no_roles_at_all(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/auth/tokens/current").respond(200, json={"data": {"id": "t", "attributes": {}}})
    result = _check(flavor, client)
    assert result.ok is False
    assert result.roles == ()
    assert result.missing_roles == tuple(SYNC_ROLES)
    assert result.name is None


def test_org_name_attribute(flavor: str, client: Any, router: respx.MockRouter) -> None:
    body = _token(LEGACY, orgName="acme")
    del body["data"]["relationships"]
    router.get("/v1/auth/tokens/current").respond(200, json=body)
    assert _check(flavor, client).org == "acme"


def test_401_says_check_key_and_region(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/auth/tokens/current").respond(
        401, json={"errors": [{"status": 401, "title": "Unauthorized",
                               "detail": "invalid token for pod prod1"}]},
        headers={"x-request-id": "r-401"},
    )
    with pytest.raises(AuthenticationError) as info:
        _check(flavor, client)
    err = info.value
    assert err.status == 401
    assert err.path == "/v1/auth/tokens/current"
    assert err.request_id == "r-401"
    text = str(err)
    assert "Check the API key" in text
    assert "region" in text
    assert "invalid token for pod prod1" in text
