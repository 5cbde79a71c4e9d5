"""Routing and request handling: the pure core every transport shares.

:meth:`App.handle` takes the parts of one HTTP request and returns a
:class:`Reply` (status, headers, body bytes) plus an ``action`` for the
transport to carry out afterwards (raise a timeout, drop the connection, …).
The in-process transport and the loopback HTTP server both call it, so they
behave the same.

Error shapes (Kustomer uses two; clients must accept both):

- JSON:API ``{"errors": [{"status", "code", "title", "detail", "source":
  {"pointer"}, "meta": {"subErrors": [...]}}]}`` for the write endpoints
  (create / update / bulk): validation 400s, duplicate 409s, unknown id 404s;
- simple ``{"errors": [{"code", "message", "meta"}]}`` for everything else:
  401, 403, 404 of reads and lookups, 405, 429, search 400s, injected 5xx.

Where Kustomer's public material is unclear, :class:`~._readings.Readings`
picks the answer (the shape of search hits and of the company link, bulk
results, body-size and ``in`` limits, ``rev`` checks, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from ._bulk import ORG_ID, USER_ID, BulkJob, BulkJobs
from ._faults import Fault, Faults
from ._limits import RateLimiter
from ._readings import Readings
from ._rules import Problem, custom_suffix, validate_body
from ._search import MAX_PAGE, MAX_PAGE_SIZE, SearchError, page_bounds
from ._store import Conflict, Invalid, NotFound, Record, StaleRev, Store, iso

__all__ = ["DEFAULT_ROLES", "PODS", "App", "Reply", "RequestRecord", "TokenSpec"]

DEFAULT_ROLES: tuple[str, ...] = (
    "org.admin.klass.read", "org.user.kobject.read", "org.admin.metadata.read",
    "org.admin.search.read", "org.user.customer.write", "org.user.kobject.write",
    "org.permission.customer", "org.permission.company",
)
"""The roles of a sync API key (KUSTOMER_API.md), reported by ``/v1/auth/tokens/current``."""

PODS: dict[str, tuple[str, str]] = {
    "us": ("prod1", "https://api.kustomerapp.com"),
    "eu": ("prod2", "https://api.prod2.kustomerapp.com"),
    "in": ("prod4", "https://api.prod4.kustomerapp.com"),
}
"""Region → (pod, regional base URL)."""

_ORG_ID = ORG_ID
_CUSTOM_TYPES = {"Str": "string", "Txt": "text", "Num": "number", "At": "date",
                 "Bool": "boolean", "Url": "url", "Id": "string"}


@attrs.frozen
class TokenSpec:
    """An API key the emulator knows: its roles, region and name."""

    roles: tuple[str, ...] = DEFAULT_ROLES
    region: str = "us"
    name: str = "api key"


@attrs.define(slots=True)
class RequestRecord:
    """One logged request. ``status`` is 0 when the client got no answer
    (timeout / connection reset); ``fault`` names the injected fault, if any."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    time: float
    endpoint: str
    fault: str | None = None


@attrs.define(slots=True)
class Reply:
    """A response, and what the transport must do with it (``action``:
    ``None`` = send it; ``"timeout"``, ``"connection_reset"``, ``"lost_response"``)."""

    status: int
    headers: dict[str, str]
    body: bytes
    action: str | None = None


class HttpError(Exception):
    """Raised by handlers; becomes the error response."""

    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def simple_error(status: int, code: str, message: str, **meta: Any) -> HttpError:
    """An error in the ``{"code", "message", "meta"}`` shape."""
    return HttpError(status, {"errors": [{"code": code, "message": message, "meta": meta}]})


def jsonapi_error(status: int, code: str, title: str, detail: str, pointer: str | None = None,
                  sub_errors: Sequence[dict[str, Any]] = ()) -> HttpError:
    """An error in the JSON:API shape (``status`` is a string, as JSON:API says)."""
    err: dict[str, Any] = {"status": str(status), "code": code, "title": title, "detail": detail}
    if pointer is not None:
        err["source"] = {"pointer": pointer}
    if sub_errors:
        err["meta"] = {"subErrors": list(sub_errors)}
    return HttpError(status, {"errors": [err]})


def _invalid(problems: list[tuple[str, str]]) -> HttpError:
    subs = [{"code": "invalid", "title": "invalid", "detail": f"{p or '/'}: {m}",
             "source": {"pointer": p or "/"}} for p, m in problems]
    first_p, first_m = problems[0]
    return jsonapi_error(400, "invalid", "validation failed", f"{first_p or '/'}: {first_m}",
                         first_p or "/", subs)


def _conflict(exc: Conflict) -> HttpError:
    return jsonapi_error(409, "duplicate", "duplicate detected", str(exc), f"/{exc.field}",
                         [{"code": "duplicate", "title": "duplicate detected",
                           "detail": str(exc), "source": {"pointer": f"/{exc.field}"}}])


def _stale(exc: StaleRev) -> HttpError:
    return jsonapi_error(409, "conflict", "conflict", str(exc))


_MINIMAL_HIT = ("name", "displayName", "createdAt", "updatedAt", "lastActivityAt", "verified",
                "rev")
"""The attributes of a search hit under ``search_hits="minimal"`` (the OpenAPI example)."""


def _plural(kind: str) -> str:
    return "customers" if kind == "customer" else "companies"


def _role_ok(roles: frozenset[str], resource: str, action: str) -> bool:
    """Simple role model: ``org.admin`` grants everything; a resource is readable
    with ``org.user.<r>.read|write``, ``org.permission.<r>`` or
    ``org.permission.<r>.read``, and writable with ``org.user.<r>.write``,
    ``org.permission.<r>`` or ``org.permission.<r>.create|update``."""
    if "org.admin" in roles:
        return True
    if resource in ("search", "metadata", "klass"):
        return f"org.admin.{resource}.read" in roles or f"org.user.{resource}.read" in roles
    wanted = {f"org.user.{resource}.write", f"org.permission.{resource}"}
    wanted |= ({f"org.user.{resource}.read", f"org.permission.{resource}.read"}
               if action == "read" else
               {f"org.permission.{resource}.create", f"org.permission.{resource}.update"})
    return not roles.isdisjoint(wanted)


Handler = Callable[["Call"], tuple[int, Any]]


@attrs.define(slots=True)
class Call:
    """One routed request as handlers see it."""

    method: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    now: float
    token: str
    spec: TokenSpec


class App:
    """The emulated org: state, rules and routes."""

    def __init__(self, *, clock: Any, requests_per_minute: int, searches_per_minute: int,
                 search_lag: float, bulk_delay: float, bulk_item_delay: float,
                 api_keys: Mapping[str, TokenSpec | Sequence[str]] | None,
                 roles: Sequence[str], region: str, seed: int | None, base_url: str,
                 log_bodies: bool, readings: Readings | None = None) -> None:
        if region not in PODS:
            raise ValueError(f"region must be one of {sorted(PODS)}")
        self.lock = threading.RLock()
        self.clock = clock
        self.region = region
        self.readings = readings if readings is not None else Readings()
        self.base_url = base_url.rstrip("/")
        self.store = Store(self.lock, search_lag, self.readings)
        self.bulk = BulkJobs(self.store, bulk_delay, bulk_item_delay,
                             self.readings.bulk_job_ttl)
        self.limits = RateLimiter(requests_per_minute, searches_per_minute)
        self.faults = Faults(seed)
        self.default_spec = TokenSpec(tuple(roles), region)
        self.api_keys: dict[str, TokenSpec] | None = None
        if api_keys is not None:
            self.api_keys = {k: v if isinstance(v, TokenSpec) else TokenSpec(tuple(v), region)
                             for k, v in api_keys.items()}
        self.metadata: dict[str, dict[str, dict[str, Any]]] = {"customer": {}, "company": {}}
        self.log: list[RequestRecord] = []
        self.log_bodies = log_bodies
        self.counts: Counter[str] = Counter()
        self.rate_limited = 0
        self.observers: list[Callable[[str, str, dict[str, str], Any], None]] = []
        host = urlsplit(self.base_url).hostname or "acme"
        self.org_name = host.split(".")[0]

    # -- routing -----------------------------------------------------------------
    def route(self, method: str, segs: list[str]) -> tuple[str, Handler | None, dict[str, str]]:
        """(endpoint template, handler or None for 405, path params); raises 404."""
        n = len(segs)
        table: dict[str, Handler] = {}
        params: dict[str, str] = {}
        template = ""
        if n >= 2 and segs[0] == "v1":
            res = segs[1]
            if res in ("customers", "companies") and n == 2:
                template = f"/v1/{res}"
                table = {"POST": self._create, "GET": self._list}
            elif res in ("customers", "companies") and n == 3 and segs[2] == "bulk":
                template = f"/v1/{res}/bulk"
                table = {"POST": self._bulk, "PUT": self._bulk}
            elif res == "customers" and n == 3 and segs[2] == "search":
                template, table = "/v1/customers/search", {"POST": self._search}
            elif res == "customers" and n == 3 and "=" in segs[2]:
                key, _, value = segs[2].partition("=")
                if key in ("externalId", "email", "phone"):
                    template = f"/v1/customers/{key}={{{key}}}"
                    table = {"GET": self._lookup}
                    params = {"key": key, "value": unquote(value)}
            elif res in ("customers", "companies") and n == 3:
                template = f"/v1/{res}/{{id}}"
                table = {"GET": self._get, "PUT": self._update}
                if res == "customers":
                    table["PATCH"] = self._update
                params = {"id": unquote(segs[2])}
            elif res == "bulk" and n in (3, 4) and (n == 3 or segs[3] == "batches"):
                template = "/v1/bulk/{id}" + ("/batches" if n == 4 else "")
                table = {"GET": self._bulk_status if n == 3 else self._batches}
                params = {"id": unquote(segs[2])}
            elif res == "metadata" and n == 3:
                template, table = "/v1/metadata/{resource}", {"GET": self._metadata}
                params = {"resource": unquote(segs[2])}
            elif res == "klasses" and n == 2:
                template, table = "/v1/klasses", {"GET": self._klasses}
            elif segs[1:] == ["auth", "tokens", "current"]:
                template, table = "/v1/auth/tokens/current", {"GET": self._token}
            if res in ("customers", "companies"):
                params["kind"] = "customer" if res == "customers" else "company"
        if not template:
            raise simple_error(404, "not_found", "no such route")
        return template, table.get(method), params

    # -- the entry point -------------------------------------------------------------
    def handle(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
               body: bytes, fault: Fault | None = None) -> Reply:
        """Answer one request (``headers`` keys in lower case)."""
        method = method.upper()
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        parsed: Any = None
        bad_json = False
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                bad_json = True
        path = "/".join(unquote(s) for s in raw_path.split("/"))
        for observer in list(self.observers):
            observer(method, raw_path, query, parsed)
        with self.lock:
            now = self.clock.now()
            self.bulk.apply_due(now)
            endpoint = f"{method} {raw_path}"
            try:
                template, handler, params = self.route(method, raw_path.strip("/").split("/"))
                endpoint = f"{method} {template}"
                if fault is not None and fault.kind in ("timeout", "connection_reset"):
                    reply = Reply(0, {}, b"", fault.kind)
                else:
                    reply = self._dispatch(method, template, handler, params, query, headers,
                                           parsed, bad_json, now, fault, len(body))
            except HttpError as exc:
                reply = self._error_reply(exc, now)
            if fault is not None and fault.kind == "applied_then_status":
                # The request was handled (and applied) above; the answer is lost
                # and replaced by an error, as a failing gateway would do.
                reply = self._error_reply(simple_error(
                    fault.status_code, "server_error",
                    f"injected fault: HTTP {fault.status_code}"), now)
            if fault is not None and fault.kind == "lost_response":
                reply.action = "lost_response"
            if reply.status == 429:
                self.rate_limited += 1
            self.counts[endpoint] += 1
            self.log.append(RequestRecord(
                method, path, query, parsed if self.log_bodies else None, reply.status, now,
                endpoint, fault.label if fault is not None else None))
            return reply

    def _error_reply(self, exc: HttpError, now: float) -> Reply:
        headers = {"content-type": "application/json", **self.limits.headers(now), **exc.headers}
        return Reply(exc.status, headers, json.dumps(exc.body).encode())

    def _dispatch(self, method: str, template: str, handler: Handler | None,
                  params: dict[str, str], query: dict[str, str], headers: Mapping[str, str],
                  parsed: Any, bad_json: bool, now: float, fault: Fault | None,
                  size: int = 0) -> Reply:
        if fault is not None and fault.kind == "status":
            raise simple_error(fault.status_code, "server_error",
                               f"injected fault: HTTP {fault.status_code}")
        if fault is not None and fault.kind == "rate_limit":
            raise HttpError(429, {"errors": [{"code": "rate_limited",
                                              "message": "too many requests", "meta": {}}]},
                            {"retry-after": str(fault.retry_after)})
        limit = self.readings.max_body_bytes
        if limit is not None and size > limit:
            # Refused in front of the API: no auth, no budget spent, nothing applied.
            raise jsonapi_error(413, "payload_too_large", "payload too large",
                                f"the request body is {size} bytes; the limit is {limit} bytes")
        token, spec = self._authenticate(headers)
        wait = self.limits.take(now, template == "/v1/customers/search")
        if wait is not None:
            raise HttpError(429, {"errors": [{"code": "rate_limited",
                                              "message": "too many requests",
                                              "meta": {"retryAfter": math.ceil(wait)}}]},
                            {"retry-after": str(max(math.ceil(wait), 1))})
        if handler is None:
            raise simple_error(405, "method_not_allowed", f"{method} is not allowed here")
        self._authorize(spec, method, template, params)
        if bad_json:
            raise jsonapi_error(400, "invalid_json", "invalid JSON", "body is not valid JSON")
        status, payload = handler(Call(method, params, query, parsed, now, token, spec))
        out_headers = {"content-type": "application/json", **self.limits.headers(now)}
        return Reply(status, out_headers, json.dumps(payload).encode())

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[str, TokenSpec]:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise simple_error(401, "unauthorized", "missing or malformed bearer token")
        if self.api_keys is None:
            return token, self.default_spec
        spec = self.api_keys.get(token)
        if spec is None:
            raise simple_error(401, "unauthorized", "invalid or expired token")
        if spec.region != self.region:
            pod, url = PODS[spec.region]
            raise simple_error(401, "wrong_pod",
                               f"token belongs to pod {pod} ({spec.region}); use {url}",
                               pod=pod, region=spec.region)
        return token, spec

    def _authorize(self, spec: TokenSpec, method: str, template: str,
                   params: dict[str, str]) -> None:
        parts = template.split("/")
        section = parts[2]
        if section in ("customers", "companies"):
            resource = "customer" if section == "customers" else "company"
            if template == "/v1/customers/search":
                resource, action = "search", "read"
            else:
                action = "read" if method == "GET" else "write"
        elif section == "metadata":
            resource, action = "metadata", "read"
        elif section == "klasses":
            resource, action = "klass", "read"
        else:
            return  # bulk status and the token endpoint: any valid key
        if not _role_ok(frozenset(spec.roles), resource, action):
            raise simple_error(403, "forbidden",
                               f"this key lacks a role to {action} {resource}",
                               resource=resource, action=action)

    # -- resources -----------------------------------------------------------------
    def resource(self, rec: Record) -> dict[str, Any]:
        """The JSON:API resource of a record (see :meth:`render`)."""
        return self.render(rec.kind, rec.id, rec.attributes, rec.company)

    def render(self, kind: str, ident: str, attributes: dict[str, Any], company: str | None,
               *, hit: bool = False) -> dict[str, Any]:
        """The JSON:API resource of a document. A customer's company link is where
        the ``company_link`` reading puts it (default ``relationships.company.data``,
        ``null`` when unlinked); a search ``hit`` is minimal under
        ``search_hits="minimal"``. ``attributes`` is never modified."""
        org = {"data": {"type": "org", "id": _ORG_ID}, "links": {"self": f"/v1/orgs/{_ORG_ID}"}}
        links = {"self": f"/v1/{_plural(kind)}/{ident}"}
        if hit and self.readings.search_hits == "minimal":
            return {"type": kind, "id": ident,
                    "attributes": {k: attributes[k] for k in _MINIMAL_HIT if k in attributes},
                    "relationships": {"org": org}, "links": links}
        user = {"data": {"type": "user", "id": USER_ID}, "links": {"self": f"/v1/users/{USER_ID}"}}
        rel: dict[str, Any] = {"org": org, "createdBy": user, "modifiedBy": user}
        if kind == "customer":
            rel["messages"] = {"links": {"self": f"/v1/customers/{ident}/messages"}}
            where = self.readings.company_link
            if where == "relationships":
                rel["company"] = {"data": {"type": "company", "id": company}
                                  if company else None}
                if company:
                    rel["company"]["links"] = {"self": f"/v1/companies/{company}"}
            elif where == "attribute":
                attributes = {**attributes, "company": company}
        return {"type": kind, "id": ident, "attributes": attributes, "relationships": rel,
                "links": links}

    def _paged(self, call: Call, base: str, records: list[Any], max_size: int,
               render: Callable[[Any], dict[str, Any]], with_totals: bool,
               cap: int | None = None) -> dict[str, Any]:
        page, size = self._paging(call.query, max_size)
        if cap is not None:
            size = min(size, cap)  # a capped page: meta and links state the real size
        start, end, total_pages = page_bounds(len(records), page, size)

        def link(p: int) -> str:
            return f"{base}?page={p}&pageSize={size}"

        meta: dict[str, Any] = {"pageSize": size, "page": page}
        if with_totals:
            meta.update(total=len(records), totalPages=total_pages, aggregations={},
                        timed_out=False)
        return {"data": [render(r) for r in records[start:end]], "meta": meta,
                "links": {"self": link(page), "first": link(1),
                          "prev": link(page - 1) if page > 1 else None,
                          "next": link(page + 1) if page < total_pages else None,
                          **({"last": link(max(total_pages, 1))} if with_totals else {})}}

    @staticmethod
    def _paging(query: dict[str, str], max_size: int) -> tuple[int, int]:
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("pageSize", "100"))
        except ValueError:
            raise simple_error(400, "invalid_parameter", "page and pageSize must be integers")\
                from None
        if page < 1 or page > MAX_PAGE:
            raise simple_error(400, "invalid_parameter",
                               f"page must be between 1 and {MAX_PAGE}", parameter="page")
        if size < 1 or size > max_size:
            raise simple_error(400, "invalid_parameter",
                               f"pageSize must be between 1 and {max_size}",
                               parameter="pageSize")
        return page, size

    # -- handlers ------------------------------------------------------------------
    def _multi(self, kind: str) -> frozenset[str]:
        """Custom ``Id`` attributes defined with ``"multi": true``."""
        return frozenset(name for name, d in self.metadata.get(kind, {}).items()
                         if d.get("multi") and custom_suffix(name) == "Id")

    def _validate(self, kind: str, body: Any, **options: Any) -> list[Problem]:
        return validate_body(kind, body, multi=self._multi(kind), **options)

    def _create(self, call: Call) -> tuple[int, dict[str, Any]]:
        kind = call.params["kind"]
        problems = self._validate(kind, call.body)
        if problems:
            raise _invalid(problems)
        try:
            rec = self.store.create(kind, call.body, call.now)
        except Conflict as exc:
            raise _conflict(exc) from None
        except Invalid as exc:
            raise _invalid([(exc.pointer, exc.message)]) from None
        return 201, {"data": self.resource(rec)}

    def _list(self, call: Call) -> tuple[int, dict[str, Any]]:
        kind = call.params["kind"]
        records = list(self.store.records[kind].values())
        q = call.query
        base = f"/v1/{_plural(kind)}"
        if kind == "company" and "externalId" in q and "filter" in q:
            pass  # the quirk: externalId together with filter → both ignored
        elif kind == "company" and "externalId" in q:
            ids = self.store.company_ext.get(q["externalId"], [])
            records = [self.store.records["company"][i] for i in ids]
        elif kind == "company" and "filter" in q:
            needle = q["filter"].lower()
            records = [r for r in records if needle in str(r.attributes.get("name", "")).lower()]
        return 200, self._paged(call, base, records, 100, self.resource, False)

    def _get(self, call: Call) -> tuple[int, dict[str, Any]]:
        kind = call.params["kind"]
        try:
            rec = self.store.get(kind, call.params["id"])
        except NotFound:
            raise simple_error(404, "not_found", f"{kind} not found") from None
        return 200, {"data": self.resource(rec)}

    def _lookup(self, call: Call) -> tuple[int, dict[str, Any]]:
        key, value = call.params["key"], call.params["value"]
        if key == "email":
            value = value.lower()
        owner = self.store.unique[key].get(value)
        if owner is None:
            raise simple_error(404, "not_found", f"no customer with {key} {value!r}")
        return 200, {"data": self.resource(self.store.records["customer"][owner])}

    def _update(self, call: Call) -> tuple[int, dict[str, Any]]:
        kind = call.params["kind"]
        replace = call.method == "PUT" and call.query.get("replace", "false").lower() == "true"
        problems = self._validate(kind, call.body, partial=not replace)
        if problems:
            raise _invalid(problems)
        try:
            rec = self.store.update(kind, call.params["id"], call.body, call.now,
                                    replace=replace)
        except NotFound:
            raise jsonapi_error(404, "not_found", "not found",
                                f"{kind} {call.params['id']} does not exist") from None
        except StaleRev as exc:
            raise _stale(exc) from None
        except Conflict as exc:
            raise _conflict(exc) from None
        except Invalid as exc:
            raise _invalid([(exc.pointer, exc.message)]) from None
        return 200, {"data": self.resource(rec)}

    def _bulk(self, call: Call) -> tuple[int, dict[str, Any]]:
        kind = call.params["kind"]
        operation = "create" if call.method == "POST" else "update"
        items = call.body
        if not isinstance(items, list) or not items:
            raise _invalid([("/", "must be a non-empty array of objects")])
        if len(items) > 100:
            raise _invalid([("/", f"at most 100 items per bulk request, got {len(items)}")])
        problems: list[tuple[str, str]] = []
        refs: list[Any] = []
        # Under client_ref_on="customer-create", ``_clientRef`` elsewhere is left
        # in the item, where validation refuses it as an unknown field.
        refs_allowed = self.readings.client_ref_on == "all" or (
            kind == "customer" and operation == "create")
        multi = self._multi(kind)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append((f"/{i}", "must be a JSON object"))
                continue
            if "_clientRef" in item and refs_allowed:
                ref = item["_clientRef"]
                refs.append(ref)
                if not isinstance(ref, str) or not ref or len(ref) > 255:
                    problems.append((f"/{i}/_clientRef", "must be a string of 1-255 characters"))
                item = {k: v for k, v in item.items() if k != "_clientRef"}
            problems += validate_body(kind, item, pointer=f"/{i}",
                                      require_id=operation == "update",
                                      partial=operation == "update", multi=multi)
        if refs and len(refs) != len(items):
            problems.append(("/", "_clientRef must be on all items or on none"))
        hashable = [r for r in refs if isinstance(r, str)]
        if len(set(hashable)) != len(hashable):
            problems.append(("/", "_clientRef values must be unique within the request"))
        if problems:
            raise _invalid(problems)
        job = self.bulk.submit(kind, operation, items, call.now)
        return 201, {"data": job.resource(call.now)}

    def _job(self, call: Call) -> BulkJob:
        job = self.bulk.get(call.params["id"], call.now)
        if job is None:
            raise simple_error(404, "not_found", "bulk job not found")
        return job

    def _bulk_status(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"data": self._job(call).resource(call.now)}

    def _batches(self, call: Call) -> tuple[int, Any]:
        job = self._job(call)
        if self.readings.bulk_results == "jsonapi":
            return 200, job.jsonapi(call.now)
        return 200, job.documented()

    def _search(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body if call.body is not None else {}
        allowed = {"searchHash", "queryContext", "includeDeleted", "timeZone", "and", "or",
                   "not", "sort", "aggs", "fields"}
        if not isinstance(body, dict):
            raise simple_error(400, "invalid_search", "search body must be an object")
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise simple_error(400, "invalid_search", f"unknown fields: {unknown}")
        context = body.get("queryContext", "customer")
        if context not in ("customer", "company"):
            raise simple_error(400, "invalid_search",
                               f"queryContext {context!r} is not supported by the emulator")
        # Validate paging before the (possibly costly) search.
        self._paging(call.query, MAX_PAGE_SIZE)
        try:
            found = self.store.search[context].search(body, call.now)
        except SearchError as exc:
            raise simple_error(400, "invalid_search", str(exc)) from None
        records = self.store.records[context]
        as_indexed = self.readings.search_docs == "indexed"

        def render(snap: Any) -> dict[str, Any]:
            if as_indexed:  # the document as the index saw it
                return self.render(context, snap.id, snap.attributes, snap.company, hit=True)
            rec = records.get(snap.id)
            if rec is None:
                return {"type": context, "id": snap.id}
            return self.render(context, rec.id, rec.attributes, rec.company, hit=True)

        return 200, self._paged(call, "/v1/customers/search", found, MAX_PAGE_SIZE, render,
                                True, self.readings.search_page_cap)

    def _metadata(self, call: Call) -> tuple[int, dict[str, Any]]:
        kind = call.params["resource"]
        if kind not in self.metadata:
            raise simple_error(404, "not_found", f"no metadata for {kind!r}")
        return 200, {"data": {"type": "metadata", "id": kind,
                              "attributes": {"properties": self.metadata[kind]},
                              "relationships": {"org": {
                                  "data": {"type": "org", "id": _ORG_ID},
                                  "links": {"self": f"/v1/orgs/{_ORG_ID}"}}},
                              "links": {"self": f"/v1/metadata/{kind}"}}}

    def _klasses(self, call: Call) -> tuple[int, dict[str, Any]]:
        klasses = [("customer", "Customer"), ("company", "Company"),
                   ("conversation", "Conversation")]
        data = [{"type": "klass", "id": f"5f00000000000000000001{i:02x}",
                 "attributes": {"name": name, "displayName": display, "status": "enabled"},
                 "links": {"self": f"/v1/klasses/5f00000000000000000001{i:02x}"}}
                for i, (name, display) in enumerate(klasses)]
        return 200, {"data": data, "meta": {"pageSize": 100, "page": 1},
                     "links": {"self": "/v1/klasses?page=1&pageSize=100", "first":
                               "/v1/klasses?page=1&pageSize=100", "prev": None, "next": None}}

    def _token(self, call: Call) -> tuple[int, dict[str, Any]]:
        pod, url = PODS[call.spec.region]
        ident = hashlib.sha256(call.token.encode()).hexdigest()[:24]
        return 200, {"data": {
            "type": "token", "id": ident,
            "attributes": {"name": call.spec.name, "roles": list(call.spec.roles),
                           "orgName": self.org_name, "region": call.spec.region, "pod": pod,
                           "apiUrl": url},
            "relationships": {"org": {"data": {"type": "org", "id": _ORG_ID}}},
            "links": {"self": "/v1/auth/tokens/current"}}}

    # -- setup helpers used by the public class --------------------------------------
    def define_custom_attribute(self, kind: str, name: str, display_name: str | None,
                                extra: dict[str, Any]) -> None:
        """Register a custom attribute definition for ``/v1/metadata/<kind>``."""
        suffix = custom_suffix(name)
        if suffix is None:
            raise ValueError(f"{name!r} has no type suffix")
        with self.lock:
            stamp = iso(self.clock.now())
            self.metadata[kind][name] = {
                "type": _CUSTOM_TYPES[suffix], "displayName": display_name or name,
                "updatedAt": stamp, "modifiedAt": stamp, "modifiedBy": USER_ID, **extra}

    def seed(self, kind: str, doc: dict[str, Any]) -> str:
        """Store a document directly (no limits; visible to search at once)."""
        body = dict(doc)
        ident = body.pop("id", None)
        passthrough: dict[str, Any] = {k: body.pop(k) for k in ("updatedAt", "createdAt")
                                       if k in body}
        problems = self._validate(kind, body, partial=True)
        if problems:
            raise ValueError(f"invalid seed document: {problems}")
        body.update(passthrough)
        with self.lock:
            try:
                now = self.clock.now()
                rec = self.store.create(kind, body, now, ident=ident, immediately=True)
                # Seeds are searchable at once: index them now, not on the next search.
                self.store.search[kind].catch_up(now)
            except (Conflict, Invalid) as exc:
                raise ValueError(str(exc)) from None
            return rec.id
