"""Logging of retries, and the API key never showing in logs, reprs or error messages."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import (
    APIConnectionError,
    APIError,
    AuthenticationError,
)

from ..helpers import drive
from ._util import KEY, call, ok

LOGGER = "kustomer_activations"


def _info_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]


def test_5xx_retry_logged_at_info_with_the_wait(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    router.get("/v1/customers/c1").mock(side_effect=[httpx.Response(503), ok()])
    call(flavor, client, "GET", "/v1/customers/c1")
    (record,) = _info_records(caplog)
    message = record.getMessage()
    assert "GET /v1/customers/c1" in message
    assert "503" in message
    assert "retry 1/2" in message
    assert f"{clock.sleeps[0]:.2f}s" in message


def test_429_wait_logged_at_info(
    flavor: str, client: Any, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    router.get("/v1/x").mock(side_effect=[httpx.Response(429, headers={"retry-after": "7"}), ok()])
    call(flavor, client, "GET", "/v1/x")
    (record,) = _info_records(caplog)
    assert "429" in record.getMessage()
    assert "7.00s" in record.getMessage()


def test_transport_retry_logged_at_info(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    router.get("/v1/x").mock(side_effect=[httpx.ReadTimeout("slow"), ok()])
    call(flavor, client, "GET", "/v1/x")
    (record,) = _info_records(caplog)
    assert "ReadTimeout" in record.getMessage()
    assert f"{clock.sleeps[0]:.2f}s" in record.getMessage()


def test_no_info_logs_without_retries(
    flavor: str, client: Any, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    router.get("/v1/x").mock(return_value=ok())
    call(flavor, client, "GET", "/v1/x")
    assert _info_records(caplog) == []


def test_key_never_in_logs_reprs_or_errors(
    flavor: str, new_client: Any, router: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx included
    client = new_client(default_headers={"X-Trace": "t-1"})
    router.get("/v1/a").mock(side_effect=[
        httpx.Response(503), httpx.Response(429, headers={"retry-after": "1"}),
        httpx.ConnectError("refused"), ok(),
    ])
    router.get("/v1/denied").respond(401, json={"errors": [{"title": "Unauthorized"}]})
    router.post("/v1/customers").mock(side_effect=httpx.ReadTimeout("slow"))
    router.get("/v1/down").mock(side_effect=httpx.ConnectError("refused"))
    router.get("/v1/auth/tokens/current").respond(200, json={"data": {"attributes": {"roles": []}}})

    texts: list[str] = []
    resp = call(flavor, client, "GET", "/v1/a")
    texts.append(repr(resp))
    for method, path, exc in [
        ("GET", "/v1/denied", AuthenticationError),
        ("POST", "/v1/customers", APIConnectionError),
        ("GET", "/v1/down", APIConnectionError),
    ]:
        with pytest.raises(exc) as info:
            call(flavor, client, method, path, json={"n": 1} if method == "POST" else None)
        err: BaseException = info.value
        texts += [str(err), repr(err), str(err.__cause__ or "")]
        if isinstance(err, APIError):
            texts += [repr(e) for e in err.errors] + [repr(err.headers), repr(err.body)]
    texts.append(str(drive(flavor, client, lambda c: c.check())))
    texts += [
        repr(client), str(client), repr(client._core.config),
        repr(client.with_options(max_retries=1)),
    ]
    texts += [caplog.text] + [r.getMessage() for r in caplog.records]
    assert caplog.records  # the run did log
    for text in texts:
        assert KEY not in text
    # the key went out where it belongs, and only there
    sent = router.routes[0].calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"


def test_repr_masks_the_key(flavor: str, client: Any) -> None:
    assert repr(client).endswith("api_key='***')")
    assert "api_key='***'" in repr(client._core.config)


# -- key values (emails, external ids) are redacted in logs unless asked for ----------------

_EMAIL_PATH = "/v1/customers/email=grace%40example.com"


def _lookup_logs(flavor: str, client: Any, router: respx.MockRouter,
                 caplog: pytest.LogCaptureFixture) -> str:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's included
    router.get(_EMAIL_PATH).mock(side_effect=[httpx.Response(503), ok()])
    router.get("/v1/customers/externalId=crm-42").mock(return_value=ok())
    call(flavor, client, "GET", _EMAIL_PATH)
    call(flavor, client, "GET", "/v1/customers/externalId=crm-42")
    assert any(r.name == LOGGER and r.levelno == logging.DEBUG for r in caplog.records)
    return "\n".join(r.getMessage() for r in caplog.records)


def test_key_values_are_redacted_in_logs_by_default(
    flavor: str, client: Any, router: respx.MockRouter, caplog: pytest.LogCaptureFixture,
) -> None:
    text = _lookup_logs(flavor, client, router, caplog)
    assert "grace" not in text and "crm-42" not in text
    assert "GET /v1/customers/email=*** -> 200" in text
    assert "GET /v1/customers/email=***: 503; retry 1/2" in text
    assert "GET /v1/customers/externalId=*** -> 200" in text


def test_log_values_shows_them(
    flavor: str, new_client: Any, router: respx.MockRouter, caplog: pytest.LogCaptureFixture,
) -> None:
    text = _lookup_logs(flavor, new_client(log_values=True), router, caplog)
    assert f"GET {_EMAIL_PATH} -> 200" in text
    assert "GET /v1/customers/externalId=crm-42 -> 200" in text


def test_kustomer_log_values_env_shows_them(
    flavor: str, new_client: Any, router: respx.MockRouter, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUSTOMER_LOG_VALUES", "1")
    client = new_client()
    text = _lookup_logs(flavor, client, router, caplog)
    assert f"GET {_EMAIL_PATH} -> 200" in text
    # an explicit argument beats the variable, here as for the host
    assert new_client(log_values=False)._core.config.log_values is False


def test_httpx_request_lines_are_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    from kustomer_activations import KustomerClient

    caplog.set_level(logging.DEBUG)
    http = httpx.Client(transport=httpx.MockTransport(lambda request: ok()))
    with KustomerClient(api_key=KEY, org="acme", http_client=http) as client:
        client.request("GET", _EMAIL_PATH)
        client.request("GET", "/v1/companies", params={"externalId": "co-9"})
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(httpx_lines) == 2, httpx_lines
    assert "/v1/customers/email=***" in httpx_lines[0] and "grace" not in httpx_lines[0]
    assert "/v1/companies?externalId=***" in httpx_lines[1] and "co-9" not in httpx_lines[1]
