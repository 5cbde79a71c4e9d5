"""Building requests and the request flow: pace, send, decode, retry.

:func:`request_flow` is the one algorithm every call goes through, written
once as a generator and driven by either runner.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from ..errors import APIConnectionError, APIError, APITimeoutError
from .clock import Clock
from .config import ClientConfig, log_values_default, user_agent
from .effects import Flow, Record, Send, Sleep
from .ratelimit import Bucket, Pacer, parse_rate_limit
from .response import ApiResponse, decode_error, decode_success
from .retry import RETRY_STATUSES, backoff_delay, retry_after, safe_to_resend

__all__ = ["Core", "RedactHttpxFilter", "RequestSpec", "json_array", "json_bytes", "path_segment",
           "redact", "request_flow"]

logger = logging.getLogger("kustomer_activations")

_NO_BODY: Any = object()


# httpx's own JSON encoding (compact, UTF-8, NaN refused), as one reusable encoder.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_bytes(value: Any) -> bytes:
    """``value`` as the JSON bytes of a request body: exactly what ``httpx`` sends for ``json=``.

    Raises:
        ValueError: NaN or infinity (bodies are strict JSON).
        TypeError: a value JSON cannot hold.
    """
    return _ENCODER.encode(value).encode("utf-8")


def json_array(items: Sequence[bytes]) -> bytes:
    """The JSON array of items already encoded with :func:`json_bytes` (a bulk body).

    Its length is ``2 + sum(len(i) for i in items) + len(items) - 1``
    (brackets and commas), so a caller can budget a body while encoding each
    item once.
    """
    return b"[" + b",".join(items) + b"]"


def path_segment(value: str) -> str:
    """Percent-encode a value for use inside one path segment.

    Every reserved character is encoded (``/ ? # % = &`` included), so a key
    value can never change which endpoint is called.
    """
    return quote(value, safe="")


@attrs.frozen(kw_only=True)
class RequestSpec:
    """What to send, before pacing and retries.

    Attributes:
        method: HTTP method.
        path: path after the host, starting with ``/v1/``, already encoded.
        params: query parameters.
        json: the JSON body (omit for none).
        content: the body already encoded as JSON (:func:`json_bytes`), instead
            of ``json``: a caller that measured the encoded size (bulk
            requests under the byte budget) sends those bytes, not a second
            encoding.
        bucket: ``"search"`` for searches, which have their own budget.
        deferrable: whether the request may let others go first (a bulk
            job's result read): while the org budget is queued more than
            :data:`DEFER_BACKLOG` seconds ahead, it waits for the queue to
            shorten before it claims a slot, for at most
            :data:`DEFER_MAX` seconds in all. Searches and submissions then
            keep their pace when reads fall due faster than the budget
            allows; the reads wait instead, and none waits for ever.
        idempotent: whether re-sending is safe; ``None`` derives it from the
            method (POST is not, unless said otherwise).
        max_retries: per-call override of the client's ``max_retries``.
        timeout: per-call override of the client's timeout.
    """

    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    json: Any = _NO_BODY
    content: bytes | None = None
    bucket: Bucket = "default"
    deferrable: bool = False
    idempotent: bool | None = None
    max_retries: int | None = None
    timeout: httpx.Timeout | None = None

    @property
    def is_idempotent(self) -> bool:
        """Whether a lost answer may be repaired by sending again."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() != "POST"

    @property
    def has_body(self) -> bool:
        """Whether the request carries a JSON body."""
        return self.json is not _NO_BODY or self.content is not None

    def __attrs_post_init__(self) -> None:
        if self.content is not None and self.json is not _NO_BODY:
            raise ValueError("give a request body as json= or as content=, not both")


class Core:
    """Everything a client knows that is not I/O: options, budget, clock, jitter.

    One ``Core`` is shared by a client and its ``with_options`` copies that
    talk to the same host, so they also share one rate budget.
    """

    def __init__(
        self,
        config: ClientConfig,
        clock: Clock,
        rng: random.Random | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.pacer = pacer or Pacer(config.requests_per_minute, config.searches_per_minute)
        self._headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Accept": "application/json",
            "User-Agent": user_agent(),
            **config.default_headers,
        }
        _install_httpx_filter()
        # what httpx adds for json=: a Content-Type, unless default_headers set one
        self._json_headers = self._headers if any(
            k.lower() == "content-type" for k in self._headers
        ) else {**self._headers, "Content-Type": "application/json"}

    def shown(self, path: str) -> str:
        """``path`` as it may appear in a log line (key values redacted unless ``log_values``)."""
        return path if self.config.log_values else redact(path)

    def with_config(self, config: ClientConfig) -> Core:
        """A core for changed options; shares the budget while the org is the same."""
        same_org = (config.base_url, config.api_key) == (self.config.base_url, self.config.api_key)
        return Core(config, self.clock, self.rng, self.pacer if same_org else None)

    def build_request(self, spec: RequestSpec) -> httpx.Request:
        """The ``httpx.Request`` for a spec (no I/O: httpx requests are plain data)."""
        timeout = spec.timeout or self.config.timeout
        headers = self._headers
        content = spec.content
        if content is None and spec.json is not _NO_BODY:
            content = json_bytes(spec.json)
        if content is not None:
            headers = self._json_headers
        return httpx.Request(
            spec.method.upper(),
            self.config.base_url + spec.path,
            params=dict(spec.params) if spec.params else None,
            headers=headers,
            content=content,
            extensions={"timeout": timeout.as_dict()},
        )


def _transport_error(exc: httpx.TransportError, spec: RequestSpec, host: str) -> APIConnectionError:
    # httpx's own text ("Name or service not known") names no host: say which one failed.
    path = spec.path
    sent = not safe_to_resend(exc, idempotent=False)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"timed out waiting for {host} ({type(exc).__name__}); raise timeout= if "
            "Kustomer is slow for you",
            method=spec.method, path=path, host=host, sent=sent,
        )
    return APIConnectionError(
        f"no response from {host} ({type(exc).__name__}: {exc}); check the network and the "
        "host (org=, region=, base_url= or KUSTOMER_ORG/KUSTOMER_REGION/KUSTOMER_BASE_URL)",
        method=spec.method, path=path, host=host, sent=sent,
    )


_KEY_SEGMENT = re.compile(r"(/(?:email|externalId)=)[^/?#]+")
_KEY_QUERY = re.compile(r"([?&](?:email|externalId)=)[^&#]+")


def redact(text: str) -> str:
    """``text`` with key values in lookup paths and queries replaced by ``***``.

    ``/v1/customers/email=grace%40example.com`` becomes ``/v1/customers/email=***``:
    the values are customers' emails and ids, which logs should not collect.
    """
    return _KEY_QUERY.sub(r"\1***", _KEY_SEGMENT.sub(r"\1***", text))


class RedactHttpxFilter(logging.Filter):
    """Redacts key values in httpx's ``HTTP Request: GET <url>`` log lines.

    httpx logs every URL at INFO on its own logger, whatever this SDK's
    options are; this filter is process-wide, so only ``KUSTOMER_LOG_VALUES=1``
    (read when the line is logged) lets the values through there.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's URL argument; never drops a record."""
        if (isinstance(record.args, tuple) and record.args
                and not log_values_default(os.environ)):
            record.args = tuple(redact(str(a)) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


_HTTPX_FILTER = RedactHttpxFilter()


def _install_httpx_filter() -> None:
    httpx_logger = logging.getLogger("httpx")
    if _HTTPX_FILTER not in httpx_logger.filters:
        httpx_logger.addFilter(_HTTPX_FILTER)


#: A deferrable request waits while the org budget is queued more than this many seconds ahead.
DEFER_BACKLOG = 1.0
#: ... and for at most this many seconds in all (so none waits for ever).
DEFER_MAX = 60.0


def request_flow(core: Core, spec: RequestSpec) -> Flow[ApiResponse]:
    """Send ``spec`` until it succeeds or may no longer be retried.

    * Pacing waits come first and are not attempts; a deferrable request
      first lets a queued budget drain (see :attr:`RequestSpec.deferrable`).
    * 429: wait what Kustomer says (``Retry-After``, else the window reset),
      hold every task of this client back as well, then re-send; bounded by
      ``max_rate_limit_wait`` in total, not by ``max_retries``: a request
      refused for budget was never processed, so waiting is not failing.
    * 408/5xx and transport errors: retried up to ``max_retries`` with
      backoff, but a create (non-idempotent POST) only when it surely never
      reached Kustomer.
    """
    config = core.config
    max_retries = config.max_retries if spec.max_retries is None else spec.max_retries
    idempotent = spec.is_idempotent
    failures = 0
    resent = 0
    rate_waited = 0.0
    rate_limited = 0
    deferred = 0.0
    while True:
        while spec.deferrable and deferred < DEFER_MAX:
            backlog = core.pacer.backlog(core.clock.now())
            if backlog <= DEFER_BACKLOG:
                break
            # Wake when the slots queued now have gone, not on every slot.
            wait = min(backlog, DEFER_MAX - deferred)
            deferred += wait
            yield Sleep(wait)
        if spec.bucket == "search":
            delay = core.pacer.reserve_search(core.clock.now())
            if delay > 0:
                yield Sleep(delay)
        delay = core.pacer.reserve(core.clock.now())
        if delay > 0:
            yield Sleep(delay)
        request = core.build_request(spec)
        try:
            response: httpx.Response = yield Send(request)
        except httpx.TransportError as exc:
            if failures < max_retries and safe_to_resend(exc, idempotent=idempotent):
                wait = backoff_delay(failures, core.rng)
                failures += 1
                resent += 1
                logger.info(
                    "%s %s: %s; retry %d/%d in %.2fs",
                    spec.method, core.shown(spec.path), type(exc).__name__, failures,
                    max_retries, wait,
                )
                yield Sleep(wait)
                continue
            raise _transport_error(exc, spec, request.url.netloc.decode("ascii")) from exc

        now = core.clock.now()
        rate = parse_rate_limit(response.headers, now)
        if rate is not None:
            core.pacer.observe(rate)
        status = response.status_code
        logger.debug("%s %s -> %d", spec.method, core.shown(spec.path), status)
        if status < 400:
            result = decode_success(response, path=spec.path, rate_limit=rate, retries=resent)
            yield Record(result)
            return result

        error: APIError = decode_error(response, path=spec.path)
        if status == 429:
            # Uncapped: a wait beyond max_rate_limit_wait raises now, not after
            # re-sending into a window that is certain to refuse again.
            suggested = retry_after(response.headers, now, cap=None)
            # No usable hint (no header, "Retry-After: 0", or a reset already past
            # through clock skew): back off, growing with each 429, so the waits
            # add up to max_rate_limit_wait instead of re-sending in a hot loop.
            wait = suggested if suggested else backoff_delay(rate_limited, core.rng)
            rate_limited += 1
            if rate_waited + wait <= config.max_rate_limit_wait:
                rate_waited += wait
                resent += 1
                core.pacer.hold_until(now + wait, spec.bucket)
                logger.info(
                    "%s %s: rate limited (429); waiting %.2fs for the budget",
                    spec.method, core.shown(spec.path), wait,
                )
                yield Sleep(wait)
                continue
            raise error
        if status in RETRY_STATUSES and idempotent and failures < max_retries:
            suggested = (
                retry_after(response.headers, now) if "retry-after" in response.headers else None
            )
            wait = backoff_delay(failures, core.rng) if suggested is None else suggested
            failures += 1
            resent += 1
            logger.info(
                "%s %s: %d; retry %d/%d in %.2fs",
                spec.method, core.shown(spec.path), status, failures, max_retries, wait,
            )
            yield Sleep(wait)
            continue
        raise error


