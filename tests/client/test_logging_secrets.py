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
