"""Options: base-URL resolution, env fallbacks, validation before any I/O, with_options."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import (
    APIConnectionError,
    AsyncKustomerClient,
    ConfigurationError,
    KustomerClient,
)

from ..helpers import drive
from ._util import BASE, KEY, call, ok


def _cls(flavor: str) -> type[KustomerClient] | type[AsyncKustomerClient]:
    return KustomerClient if flavor == "sync" else AsyncKustomerClient


def _refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


def _new(flavor: str, **options: Any) -> Any:
    """A client of ``flavor``; a cheap injected httpx client (no TLS set-up) unless given."""
    if "http_client" not in options:
        http_cls: Any = httpx.Client if flavor == "sync" else httpx.AsyncClient
        options["http_client"] = http_cls(transport=httpx.MockTransport(_refuse))
    return _cls(flavor)(**options)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"org": "acme"}, "https://acme.api.kustomerapp.com"),
        ({"org": " Acme-Corp2 "}, "https://acme-corp2.api.kustomerapp.com"),
        ({"region": "us"}, "https://api.kustomerapp.com"),
        ({"region": "eu"}, "https://api.prod2.kustomerapp.com"),
        ({"region": "EU"}, "https://api.prod2.kustomerapp.com"),
        ({"region": "in"}, "https://api.prod4.kustomerapp.com"),
        ({"base_url": "https://kustomer.example.com"}, "https://kustomer.example.com"),
        ({"base_url": "https://kustomer.example.com/"}, "https://kustomer.example.com"),
        ({"base_url": "https://kustomer.example.com/v1"}, "https://kustomer.example.com"),
        ({"base_url": "https://kustomer.example.com/v1/"}, "https://kustomer.example.com"),
        ({"base_url": "https://proxy.example.com/kustomer/v1/"}, "https://proxy.example.com/kustomer"),
        ({"base_url": "http://localhost:8123/v1"}, "http://localhost:8123"),
        ({"base_url": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000"),
        ({}, "https://api.kustomerapp.com"),
    ],
)
def test_base_url_resolution(flavor: str, options: dict[str, Any], expected: str) -> None:
    client = _new(flavor, api_key=KEY, **options)
    assert client.base_url == expected


def test_requests_go_to_the_resolved_host(flavor: str) -> None:
    router = respx.MockRouter(base_url="https://api.prod2.kustomerapp.com", assert_all_mocked=True)
    route = router.get("/v1/customers/c1").mock(return_value=ok())
    http: Any = (httpx.Client if flavor == "sync" else httpx.AsyncClient)(
        transport=httpx.MockTransport(router.handler)
    )
    client = _cls(flavor)(api_key=KEY, region="eu", http_client=http)
    resp = call(flavor, client, "GET", "customers/c1")  # "/v1" and the slash are added
    assert route.call_count == 1
    assert resp.url == "https://api.prod2.kustomerapp.com/v1/customers/c1"
    assert resp.path == "/v1/customers/c1"


def test_env_fallbacks(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUSTOMER_API_KEY", "env-key")
    monkeypatch.setenv("KUSTOMER_BASE_URL", "http://localhost:7000/v1/")
    client = _new(flavor)
    assert client.base_url == "http://localhost:7000"
    assert client._core.config.api_key == "env-key"


def test_explicit_options_beat_env(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUSTOMER_API_KEY", "env-key")
    monkeypatch.setenv("KUSTOMER_BASE_URL", "http://localhost:7000")
    client = _new(flavor, api_key="arg-key", org="acme")
    assert client.base_url == "https://acme.api.kustomerapp.com"
    assert client._core.config.api_key == "arg-key"


def test_env_base_url_is_validated_too(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUSTOMER_BASE_URL", "http://kustomer.example.com")
    with pytest.raises(ConfigurationError, match="plain http"):
        _new(flavor, api_key=KEY)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"org": "acme", "region": "eu"}, "only one of"),
        ({"org": "acme", "base_url": "https://x.example.com"}, "only one of"),
        ({"region": "us", "base_url": "https://x.example.com"}, "only one of"),
        ({"org": "a", "region": "us", "base_url": "https://x.example.com"}, "only one of"),
        ({"region": "apac"}, "region='apac' is unknown"),
        ({"org": "acme.kustomerapp.com"}, "not an org name"),
        ({"org": "https://acme"}, "not an org name"),
        ({"org": "-acme"}, "not an org name"),
        ({"base_url": "http://api.kustomerapp.com"}, "plain http"),
        ({"base_url": "http://10.0.0.5:8000"}, "plain http"),
        ({"base_url": "ftp://api.kustomerapp.com"}, "https://"),
        ({"base_url": "api.kustomerapp.com"}, "https://"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -3}, "timeout"),
        ({"max_rate_limit_wait": -1}, "max_rate_limit_wait"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"searches_per_minute": 0}, "searches_per_minute"),
        ({"default_headers": {"Authorization": "Bearer other"}}, "api_key="),
        ({"default_headers": {"authorization": "Bearer other"}}, "api_key="),
    ],
)
def test_bad_options_raise_configuration_error(
    flavor: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        _new(flavor, api_key=KEY, **options)
    assert isinstance(info.value, ValueError)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("key", [None, "", "   "])
def test_missing_key_is_refused(flavor: str, key: str | None) -> None:
    with pytest.raises(ConfigurationError, match="KUSTOMER_API_KEY"):
        _new(flavor, api_key=key, org="acme")


@pytest.mark.parametrize(
    "key", ["abc\ndef", "abc\r\n", "abc def", "abc\tdef", "abc\x00def", "ключ-abc"]
)
def test_malformed_key_is_refused(flavor: str, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _new(flavor, api_key=key, org="acme")
    assert key not in str(info.value)


def test_bad_options_fail_before_any_io(flavor: str) -> None:
    http: Any = (httpx.Client if flavor == "sync" else httpx.AsyncClient)(
        transport=httpx.MockTransport(_refuse)
    )
    with pytest.raises(ConfigurationError):
        _cls(flavor)(api_key=KEY, org="acme", region="eu", http_client=http)


def test_http_client_of_the_wrong_type_is_refused(flavor: str) -> None:
    wrong: Any = httpx.AsyncClient() if flavor == "sync" else httpx.Client()
    with pytest.raises(ConfigurationError, match="http_client must be"):
        _cls(flavor)(api_key=KEY, org="acme", http_client=wrong)


def test_timeout_option(flavor: str) -> None:
    assert _new(flavor, api_key=KEY).timeout == httpx.Timeout(30.0)
    assert _new(flavor, api_key=KEY, timeout=5).timeout == httpx.Timeout(5.0)
    custom = httpx.Timeout(10.0, connect=2.0)
    assert _new(flavor, api_key=KEY, timeout=custom).timeout == custom


def test_timeouts_reach_the_request(
    flavor: str, new_client: Any, router: respx.MockRouter
) -> None:
    client = new_client(timeout=12)
    route = router.get("/v1/x").mock(return_value=ok())
    call(flavor, client, "GET", "/v1/x")
    call(flavor, client, "GET", "/v1/x", timeout=1.5)
    first, second = (c.request.extensions["timeout"] for c in route.calls)
    assert first == httpx.Timeout(12.0).as_dict()
    assert second == httpx.Timeout(1.5).as_dict()


# --- with_options ---------------------------------------------------------------------------


def test_with_options_returns_a_changed_copy_sharing_pool_and_pacer(
    flavor: str, new_client: Any
) -> None:
    client = new_client(max_retries=2, timeout=30)
    copy = client.with_options(max_retries=7, timeout=3)
    assert type(copy) is type(client)
    assert copy is not client
    assert copy.max_retries == 7 and copy.timeout == httpx.Timeout(3.0)
    assert client.max_retries == 2 and client.timeout == httpx.Timeout(30.0)
    assert copy._http is client._http
    assert copy._core.pacer is client._core.pacer
    assert copy.clock is client.clock
    assert copy.base_url == client.base_url


def test_with_options_to_another_org_gets_its_own_budget(flavor: str, new_client: Any) -> None:
    client = new_client()
    other = client.with_options(org="other")
    assert other.base_url == "https://other.api.kustomerapp.com"
    assert other._http is client._http
    assert other._core.pacer is not client._core.pacer


@pytest.mark.parametrize("option", ["org", "region", "base_url"])
def test_with_options_none_host_keeps_the_host(
    flavor: str, new_client: Any, option: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUSTOMER_BASE_URL", "http://localhost:7000")
    client = new_client(region="eu", base_url=None)
    copy = client.with_options(**{option: None})
    assert copy.base_url == "https://api.prod2.kustomerapp.com"
    assert copy._core.pacer is client._core.pacer


def test_with_options_validates(flavor: str, new_client: Any) -> None:
    client = new_client()
    with pytest.raises(ConfigurationError, match="unknown option"):
        client.with_options(max_retires=3)
    with pytest.raises(ConfigurationError, match="unknown option"):
        client.with_options(http_client=None)
    with pytest.raises(ConfigurationError, match="only one of"):
        client.with_options(org="acme", region="eu")
    with pytest.raises(ConfigurationError, match="max_retries"):
        client.with_options(max_retries=-2)
    with pytest.raises(ConfigurationError, match="api_key="):
        client.with_options(default_headers={"Authorization": "x"})


def test_with_options_copy_is_used_for_its_calls(
    flavor: str, new_client: Any, router: respx.MockRouter
) -> None:
    client = new_client(max_retries=0)
    route = router.get("/v1/x").mock(side_effect=[httpx.Response(503), httpx.Response(503), ok()])
    resp = call(flavor, client.with_options(max_retries=2), "GET", "/v1/x")
    assert resp.retries == 2
    assert route.call_count == 3


# --- context managers -------------------------------------------------------------------------


def _closed(client: Any) -> bool:
    return bool(client._http.is_closed)


def test_context_manager_closes_owned_client_only(flavor: str) -> None:
    cls: Any = _cls(flavor)
    injected: Any = httpx.Client() if flavor == "sync" else httpx.AsyncClient()

    if flavor == "sync":
        with KustomerClient(api_key=KEY, org="acme") as owned:
            copy = owned.with_options(max_retries=0)
            with copy:
                pass
            assert not _closed(owned)  # closing a copy leaves the shared pool open
        assert _closed(owned)
        with KustomerClient(api_key=KEY, org="acme", http_client=injected):
            pass
        assert not injected.is_closed
        injected.close()
        return

    async def run(_: Any) -> tuple[Any, bool]:
        async with cls(api_key=KEY, org="acme") as owned:
            async with owned.with_options(max_retries=0):
                pass
            copy_left_open = not owned._http.is_closed
        async with cls(api_key=KEY, org="acme", http_client=injected):
            pass
        return owned, copy_left_open

    owned, copy_left_open = drive(flavor, None, run)
    assert copy_left_open
    assert owned._http.is_closed
    assert not injected.is_closed


def test_explicit_close(flavor: str) -> None:
    client: Any = _cls(flavor)(api_key=KEY)
    if flavor == "sync":
        client.close()
    else:
        drive(flavor, client, lambda c: c.aclose())
    assert client._http.is_closed


def test_base_constant() -> None:
    assert BASE == "https://acme.api.kustomerapp.com"


# -- host from the environment: KUSTOMER_ORG / KUSTOMER_REGION / KUSTOMER_BASE_URL ----------

@pytest.mark.parametrize(("var", "value", "expected"), [
    ("KUSTOMER_ORG", "Acme", "https://acme.api.kustomerapp.com"),
    ("KUSTOMER_REGION", "eu", "https://api.prod2.kustomerapp.com"),
    ("KUSTOMER_BASE_URL", "http://127.0.0.1:7000/v1", "http://127.0.0.1:7000"),
])
def test_one_host_variable_decides_without_arguments(
    flavor: str, var: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(var, value)
    assert _new(flavor, api_key=KEY).base_url == expected


@pytest.mark.parametrize(("var", "value", "match"), [
    ("KUSTOMER_ORG", "acme.kustomerapp.com", "KUSTOMER_ORG='acme.kustomerapp.com' is not an org"),
    ("KUSTOMER_REGION", "apac", "KUSTOMER_REGION='apac' is unknown"),
    ("KUSTOMER_BASE_URL", "http://10.0.0.5", "KUSTOMER_BASE_URL='http://10.0.0.5' uses plain http"),
])
def test_a_bad_host_variable_is_named_in_the_error(
    flavor: str, var: str, value: str, match: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError, match=match):
        _new(flavor, api_key=KEY)


def test_two_host_variables_conflict(flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUSTOMER_ORG", "acme")
    monkeypatch.setenv("KUSTOMER_BASE_URL", "http://localhost:7000")
    with pytest.raises(ConfigurationError, match="KUSTOMER_ORG and KUSTOMER_BASE_URL are all set"):
        _new(flavor, api_key=KEY)


@pytest.mark.parametrize("var", ["KUSTOMER_BASE_URL", "KUSTOMER_ORG", "KUSTOMER_REGION"])
def test_an_argument_beats_a_host_variable_and_says_so(
    flavor: str, var: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    value = {"KUSTOMER_BASE_URL": "http://localhost:7000", "KUSTOMER_ORG": "other",
             "KUSTOMER_REGION": "eu"}[var]
    monkeypatch.setenv(var, value)
    caplog.set_level("WARNING", logger="kustomer_activations")
    client = _new(flavor, api_key=KEY, org="acme")
    assert client.base_url == "https://acme.api.kustomerapp.com"
    (record,) = [r for r in caplog.records if r.name == "kustomer_activations"]
    assert record.levelname == "WARNING"
    assert f"org='acme' overrides {var}={value!r}" in record.getMessage()
    # a copy made later keeps the host and does not warn again
    caplog.clear()
    assert client.with_options(max_retries=1).base_url == "https://acme.api.kustomerapp.com"
    assert caplog.records == []


def test_no_warning_when_the_environment_names_no_host(
    flavor: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="kustomer_activations")
    _new(flavor, api_key=KEY, org="acme")
    assert caplog.records == []


@pytest.mark.parametrize(("exc", "says"), [
    (httpx.ConnectError("[Errno -2] Name or service not known"), "no response from acme.api.kustomerapp.com"),
    (httpx.ConnectTimeout("timed out"), "timed out waiting for acme.api.kustomerapp.com"),
])
def test_connection_errors_name_the_host(flavor: str, exc: Exception, says: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    http: Any = (httpx.Client if flavor == "sync" else httpx.AsyncClient)(
        transport=httpx.MockTransport(fail))
    client = _new(flavor, api_key=KEY, org="acme", http_client=http, max_retries=0)
    with pytest.raises(APIConnectionError) as info:
        call(flavor, client, "GET", "/v1/customers/c1")
    assert says in str(info.value)
    assert info.value.host == "acme.api.kustomerapp.com"


def test_a_port_is_part_of_the_host_named(flavor: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    http: Any = (httpx.Client if flavor == "sync" else httpx.AsyncClient)(
        transport=httpx.MockTransport(fail))
    client = _new(flavor, api_key=KEY, base_url="http://127.0.0.1:9", http_client=http,
                  max_retries=0)
    with pytest.raises(APIConnectionError, match=r"no response from 127\.0\.0\.1:9 "):
        call(flavor, client, "GET", "/v1/customers/c1")
