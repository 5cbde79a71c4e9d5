"""``KustomerClient`` and ``AsyncKustomerClient``: options, resources, ``check()``.

Both clients share :class:`BaseKustomerClient`, which holds everything that is
not I/O. They differ only in the runner that carries out a flow: blocking
``httpx.Client`` calls, or ``httpx.AsyncClient`` calls under anyio (asyncio
or trio). The sync client never touches an event loop, so it works in
Jupyter where one is already running.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, TypeVar

import httpx
from typing_extensions import Self

from ._core.clock import Clock, SystemClock
from ._core.config import (
    DEFAULT_MAX_RATE_LIMIT_WAIT,
    DEFAULT_MAX_RETRIES,
    HOST_ENV_VARS,
    ClientConfig,
    ConfigurationError,
    to_timeout,
)
from ._core.effects import Flow
from ._core.ratelimit import RateLimit
from ._core.request import Core, RequestSpec, request_flow
from ._core.response import ApiResponse
from ._runners import CAPTURE, run_async, run_sync
from .check import ConnectionCheck, check_flow
from .resources.companies import AsyncCompanies, Companies
from .resources.customers import AsyncCustomers, Customers
from .upsert.flows import Caches

__all__ = ["AsyncKustomerClient", "BaseKustomerClient", "KustomerClient"]

T = TypeVar("T")

_POOL_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32)


class BaseKustomerClient:
    """What both clients share: validated options, the rate budget and the clock.

    Args:
        api_key: the Kustomer API key; defaults to ``KUSTOMER_API_KEY``.
        org: your org's name: uses ``https://<org>.api.kustomerapp.com``,
            which routes to the org's region (recommended).
        region: ``"us"``, ``"eu"`` or ``"in"``: a regional host.
        base_url: any other API root (e.g. a local emulator). Only one of
            org/region/base_url may be given; with none, ``KUSTOMER_ORG``,
            ``KUSTOMER_REGION`` or ``KUSTOMER_BASE_URL`` decides (at most one of
            them may be set), else the US host. An argument beats the
            environment; when it overrides a host variable, a warning is logged.
        timeout: seconds (or an ``httpx.Timeout``) per request; default 30.
        max_retries: re-sends after a transient failure (408, 5xx, network);
            default 2. Waiting out a 429 is not counted here.
        max_rate_limit_wait: seconds one call may spend waiting out 429s.
        requests_per_minute: the org's budget to pace for; ``None`` learns it
            from ``x-ratelimit-limit``.
        searches_per_minute: the search budget (Kustomer: 100 for API keys).
        default_headers: extra headers on every request.
        clock: time source (tests and benchmarks inject a fake or scaled one).
        log_values: show key values (emails, external ids) in the SDK's log
            lines; by default they are redacted (``email=***``). Defaults to
            ``KUSTOMER_LOG_VALUES=1`` when set.
    """

    _core: Core
    _caches: Caches

    def __init__(
        self,
        *,
        api_key: str | None = None,
        org: str | None = None,
        region: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT,
        requests_per_minute: int | None = None,
        searches_per_minute: int = 100,
        default_headers: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        log_values: bool | None = None,
    ) -> None:
        config = ClientConfig.build(
            api_key=api_key,
            org=org,
            region=region,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            requests_per_minute=requests_per_minute,
            searches_per_minute=searches_per_minute,
            default_headers=default_headers,
            log_values=log_values,
        )
        self._core = Core(config, clock or SystemClock())
        self._caches = Caches()

    @property
    def base_url(self) -> str:
        """The API root requests go to (without ``/v1``)."""
        return self._core.config.base_url

    @property
    def max_retries(self) -> int:
        """Re-sends allowed after a transient failure."""
        return self._core.config.max_retries

    @property
    def timeout(self) -> httpx.Timeout:
        """The per-request timeout."""
        return self._core.config.timeout

    @property
    def rate_limit(self) -> RateLimit | None:
        """The org's budget as of the latest response (``None`` before any)."""
        return self._core.pacer.latest

    @property
    def clock(self) -> Clock:
        """The clock this client paces and waits with."""
        return self._core.clock

    def _evolved_core(self, options: Mapping[str, Any]) -> Core:
        allowed = {
            "api_key", "base_url", "org", "region", "timeout", "max_retries",
            "max_rate_limit_wait", "requests_per_minute", "searches_per_minute",
            "default_headers", "log_values",
        }
        unknown = set(options) - allowed
        if unknown:
            raise ConfigurationError(
                f"with_options() got unknown option(s) {', '.join(sorted(unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        config = self._core.config
        # None means "not given", as in the constructor: keep the current host
        # rather than silently falling back to KUSTOMER_BASE_URL or the US host.
        host = {
            k: options[k] for k in ("org", "region", "base_url") if options.get(k) is not None
        }
        if not host:
            host = {"base_url": config.base_url}
        config = ClientConfig.build(
            api_key=options.get("api_key", config.api_key),
            org=host.get("org"),
            region=host.get("region"),
            base_url=host.get("base_url"),
            timeout=options.get("timeout", config.timeout),
            max_retries=options.get("max_retries", config.max_retries),
            max_rate_limit_wait=options.get("max_rate_limit_wait", config.max_rate_limit_wait),
            requests_per_minute=options.get("requests_per_minute", config.requests_per_minute),
            searches_per_minute=options.get("searches_per_minute", config.searches_per_minute),
            default_headers=options.get("default_headers", config.default_headers),
            log_values=options.get("log_values", config.log_values),
            # The host is always passed here: the host variables must not warn or decide again.
            env={k: v for k, v in os.environ.items() if k not in HOST_ENV_VARS},
        )
        return self._core.with_config(config)

    @contextlib.contextmanager
    def capture_responses(self) -> Iterator[list[ApiResponse]]:
        """Collect the raw :class:`ApiResponse` of every call made inside the block.

        Each entry has the status, headers, rate limit and retries taken::

            with client.capture_responses() as calls:
                client.customers.get_by_external_id("42")
            print(calls[-1].status, calls[-1].rate_limit, calls[-1].retries)
        """
        sink: list[ApiResponse] = []
        token = CAPTURE.set(sink)
        try:
            yield sink
        finally:
            CAPTURE.reset(token)

    @staticmethod
    def _spec(
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None,
        json: Any,
        max_retries: int | None,
        timeout: float | httpx.Timeout | None,
        search: bool,
    ) -> RequestSpec:
        if not path.startswith("/"):
            path = "/" + path
        if not path.startswith("/v1/"):
            path = "/v1" + path
        extra: dict[str, Any] = {}
        if json is not None:
            extra["json"] = json
        return RequestSpec(
            method=method.upper(),
            path=path,
            params=params,
            bucket="search" if search else "default",
            idempotent=True if search else None,
            max_retries=max_retries,
            timeout=None if timeout is None else to_timeout(timeout),
            **extra,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key='***')"


class KustomerClient(BaseKustomerClient):
    """The blocking client. Thread-safe; one instance can serve many threads.

    Args:
        http_client: your own ``httpx.Client`` (proxies, custom transports);
            it is not closed by :meth:`close`. See :class:`BaseKustomerClient`
            for every other option.
    """

    def __init__(self, *, http_client: httpx.Client | None = None, **options: Any) -> None:
        super().__init__(**options)
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ConfigurationError(
                "http_client must be an httpx.Client for KustomerClient "
                "(use AsyncKustomerClient for an httpx.AsyncClient)"
            )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(limits=_POOL_LIMITS, verify=True)

    @cached_property
    def customers(self) -> Customers:
        """Customer lookups, writes and upserts."""
        return Customers(self)

    @cached_property
    def companies(self) -> Companies:
        """Company lookups, writes and upserts."""
        return Companies(self)

    def _run(self, flow: Flow[T]) -> T:
        return run_sync(flow, self._http, self._core.clock)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        max_retries: int | None = None,
        timeout: float | httpx.Timeout | None = None,
        search: bool = False,
    ) -> ApiResponse:
        """Call any endpoint, with the client's auth, pacing and retries.

        ``path`` is relative to the API root (``/v1`` is added when missing).
        Set ``search=True`` for search endpoints so they use the search budget.
        """
        spec = self._spec(method, path, params=params, json=json, max_retries=max_retries,
                          timeout=timeout, search=search)
        return self._run(request_flow(self._core, spec))

    def check(self) -> ConnectionCheck:
        """Test the key: ``GET /v1/auth/tokens/current``, roles compared with a sync's needs."""
        return self._run(check_flow(self._core))

    def with_options(self, **options: Any) -> Self:
        """A copy with some options changed that shares this client's connection pool."""
        clone = type(self).__new__(type(self))
        clone._core = self._evolved_core(options)
        clone._caches = self._caches if clone._core.pacer is self._core.pacer else Caches()
        clone._http = self._http
        clone._owns_http = False
        return clone

    def close(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncKustomerClient(BaseKustomerClient):
    """The async client, for asyncio and trio (through anyio).

    Args:
        http_client: your own ``httpx.AsyncClient``; not closed by
            :meth:`aclose`. See :class:`BaseKustomerClient` for the rest.
    """

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **options: Any) -> None:
        super().__init__(**options)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                "http_client must be an httpx.AsyncClient for AsyncKustomerClient "
                "(use KustomerClient for an httpx.Client)"
            )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(limits=_POOL_LIMITS, verify=True)

    @cached_property
    def customers(self) -> AsyncCustomers:
        """Customer lookups, writes and upserts."""
        return AsyncCustomers(self)

    @cached_property
    def companies(self) -> AsyncCompanies:
        """Company lookups, writes and upserts."""
        return AsyncCompanies(self)

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(flow, self._http, self._core.clock)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        max_retries: int | None = None,
        timeout: float | httpx.Timeout | None = None,
        search: bool = False,
    ) -> ApiResponse:
        """Call any endpoint, with the client's auth, pacing and retries."""
        spec = self._spec(method, path, params=params, json=json, max_retries=max_retries,
                          timeout=timeout, search=search)
        return await self._run(request_flow(self._core, spec))

    async def check(self) -> ConnectionCheck:
        """Test the key: ``GET /v1/auth/tokens/current``, roles compared with a sync's needs."""
        return await self._run(check_flow(self._core))

    def with_options(self, **options: Any) -> Self:
        """A copy with some options changed that shares this client's connection pool."""
        clone = type(self).__new__(type(self))
        clone._core = self._evolved_core(options)
        clone._caches = self._caches if clone._core.pacer is self._core.pacer else Caches()
        clone._http = self._http
        clone._owns_http = False
        return clone

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in as ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
