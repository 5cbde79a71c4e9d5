"""Retry decisions and backoff: which failures are worth another try, and when.

Writes that create objects are the dangerous case: if the request reached
Kustomer and only the answer was lost, sending it again creates a second
object. So a create is re-sent only when it surely never arrived.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import httpx

from .ratelimit import parse_reset, parse_retry_after

__all__ = [
    "RETRY_STATUSES",
    "backoff_delay",
    "retry_after",
    "safe_to_resend",
]

#: Statuses answered by retrying (429 is handled apart: waiting is not failing).
RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})

BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
#: A server-suggested wait above this is capped (a broken header must not hang a sync).
SERVER_WAIT_MAX = 120.0


def safe_to_resend(exc: httpx.TransportError, *, idempotent: bool) -> bool:
    """Whether a request that failed with ``exc`` may be sent again.

    Idempotent requests (reads, updates, searches) can always be re-sent.
    Creates only when the connection was never made, so the request cannot
    have reached Kustomer.
    """
    if idempotent:
        return True
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def backoff_delay(failures: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: half fixed, half random, capped."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * float(2**failures))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_after(
    headers: Mapping[str, str], now: float, cap: float | None = SERVER_WAIT_MAX
) -> float | None:
    """The server's own wait: ``Retry-After``, else the time to ``x-ratelimit-reset``.

    Capped at ``cap`` (a broken header must not hang a retry); ``None`` for no
    cap, where the caller compares the wait with a budget of its own.
    """
    wait = parse_retry_after(headers.get("retry-after"), now)
    if wait is None:
        reset = parse_reset(headers.get("x-ratelimit-reset"), now)
        if reset is not None:
            wait = max(0.0, reset - now)
    if wait is None or cap is None:
        return wait
    return min(wait, cap)
