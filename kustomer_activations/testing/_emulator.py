"""The public emulator object: configuration, inspection and setup helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._app import DEFAULT_ROLES, App, RequestRecord, TokenSpec
from ._clock import RealClock
from ._faults import Faults
from ._readings import Readings, coerce_readings
from ._store import Collection, NotFound
from .server import EmulatorServer
from .transport import EmulatorTransport

__all__ = ["KustomerEmulator"]


class KustomerEmulator:
    """An in-memory, stateful Kustomer org that follows Kustomer's rules.

    Plug it into httpx with ``transport=emu.transport`` (sync and async), or
    serve it on loopback with :meth:`serve`. See ``docs/testing.rst``.

    :param requests_per_minute: the org budget per 60-second window.
    :param searches_per_minute: the separate search budget per window.
    :param search_lag: seconds before a write becomes visible to search.
    :param bulk_delay: seconds a bulk job stays ``queued``.
    :param bulk_item_delay: extra seconds per item before a job is ``complete``.
    :param clock: a clock (``now``/``sleep``/``asleep``); default :class:`RealClock`.
    :param api_keys: ``None``: any non-empty bearer token is valid with ``roles``;
        else ``{key: TokenSpec | [roles]}`` and other keys get 401.
    :param roles: roles of keys when ``api_keys`` is ``None`` (or given as a list).
    :param region: ``"us"``, ``"eu"`` or ``"in"``; keys of another region get 401.
    :param seed: seed of the random fault generator.
    :param base_url: the URL clients should use with :attr:`transport`.
    :param log_bodies: keep request bodies in :attr:`requests` (off for big benchmarks).
    :param readings: how to answer where Kustomer's public material is unclear: a
        :class:`Readings`, a preset name or ``NAME=VALUE`` list as
        :meth:`Readings.parse` reads (``"strictest"``), or a mapping
        (``{"search_hits": "minimal"}``); default ``Readings()``.
    """

    def __init__(self, requests_per_minute: int = 1000, searches_per_minute: int = 100, *,
                 search_lag: float = 0.0, bulk_delay: float = 1.0,
                 bulk_item_delay: float = 0.01, clock: Any = None,
                 api_keys: Mapping[str, TokenSpec | Sequence[str]] | None = None,
                 roles: Sequence[str] = DEFAULT_ROLES, region: str = "us",
                 seed: int | None = None, base_url: str = "https://acme.api.kustomerapp.com",
                 log_bodies: bool = True,
                 readings: Readings | str | Mapping[str, Any] | None = None) -> None:
        self.clock: Any = clock if clock is not None else RealClock()
        self._app = App(clock=self.clock, requests_per_minute=requests_per_minute,
                        searches_per_minute=searches_per_minute, search_lag=search_lag,
                        bulk_delay=bulk_delay, bulk_item_delay=bulk_item_delay,
                        api_keys=api_keys, roles=roles, region=region, seed=seed,
                        base_url=base_url, log_bodies=log_bodies,
                        readings=coerce_readings(readings))
        self.base_url: str = self._app.base_url
        self.transport: EmulatorTransport = EmulatorTransport(self)
        self.customers: Collection = Collection(self._app.store, "customer")
        self.companies: Collection = Collection(self._app.store, "company")

    # -- inspection ------------------------------------------------------------
    @property
    def readings(self) -> Readings:
        """The readings in force (fixed when the emulator was made)."""
        return self._app.readings

    @property
    def faults(self) -> Faults:
        """Fault injection, e.g. ``emu.faults.add(Fault.status(503), match="POST /v1/...")``."""
        return self._app.faults

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log, oldest first (a copy)."""
        with self._app.lock:
            return list(self._app.log)

    @property
    def rate_limited(self) -> int:
        """How many 429 answers the emulator gave (budget or injected)."""
        return self._app.rate_limited

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """Number of logged requests with that method and/or path prefix."""
        m = method.upper() if method else None
        with self._app.lock:
            return sum(1 for r in self._app.log
                       if (m is None or r.method == m)
                       and (path_prefix is None or r.path.startswith(path_prefix)))

    def counts_by_endpoint(self) -> dict[str, int]:
        """Requests per endpoint template, e.g. ``{"POST /v1/customers/bulk": 12,
        "GET /v1/customers/externalId={externalId}": 3}``."""
        with self._app.lock:
            return dict(Counter(self._app.counts))

    def find_customers(self, **fields: Any) -> list[dict[str, Any]]:
        """Stored customers whose attributes equal the given values
        (``email=`` matches any email, case-insensitive)."""
        return self.customers.find(**fields)

    def find_companies(self, **fields: Any) -> list[dict[str, Any]]:
        """Stored companies whose attributes equal the given values."""
        return self.companies.find(**fields)

    def on_request(self, callback: Callable[[str, str, dict[str, str], Any], None]) -> None:
        """Call ``callback(method, path, query, json_body)`` for every request
        before it is handled (``path`` is the raw, percent-encoded path)."""
        self._app.observers.append(callback)

    # -- setup -------------------------------------------------------------------
    def seed_customer(self, doc: Mapping[str, Any]) -> str:
        """Store a customer directly (no rate limit, no search lag); returns its id.

        ``doc`` is a request body, optionally with ``id``, ``createdAt`` and
        ``updatedAt`` (e.g. an old ``updatedAt`` to test the 2-year search window).
        Uniqueness still holds: a duplicate email/phone/externalId raises ``ValueError``.
        """
        return self._app.seed("customer", dict(doc))

    def seed_company(self, doc: Mapping[str, Any]) -> str:
        """Store a company directly; duplicate ``externalId`` values are allowed
        (Kustomer does not force them unique, "bad data" tests need them)."""
        return self._app.seed("company", dict(doc))

    def delete_customer(self, customer_id: str) -> None:
        """Delete a customer behind the client's back (as an agent in Kustomer's UI would).

        Its unique keys are freed and search stops finding it at once; reads
        of it answer 404. Raises ``KeyError`` if no such customer exists.
        """
        with self._app.lock:
            try:
                self._app.store.delete("customer", customer_id)
            except NotFound:
                raise KeyError(customer_id) from None

    def define_custom_attribute(self, kind: str, name: str, displayName: str | None = None,
                                **extra: Any) -> None:
        """Define a custom attribute listed by ``GET /v1/metadata/<kind>``.

        Writes of undefined names with a valid suffix are accepted anyway (as in
        Kustomer); the metadata only lists defined ones. ``extra`` goes into the
        definition as is (``enumeration=[...]``, ``target="kobject.order"``);
        an ``Id`` attribute defined with ``multi=True`` takes a list of id
        strings (and no longer a single string).
        """
        if kind not in ("customer", "company"):
            raise ValueError("kind must be 'customer' or 'company'")
        self._app.define_custom_attribute(kind, name, displayName, extra)

    def advance_jobs(self) -> None:
        """Apply every bulk job that is due now (requests do this on their own)."""
        with self._app.lock:
            self._app.bulk.apply_due(self.clock.now())

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> EmulatorServer:
        """Serve this emulator over real HTTP (stdlib ``ThreadingHTTPServer``);
        returns the running server (``.url``, ``.close()``, context manager)."""
        return EmulatorServer(self, host, port)
