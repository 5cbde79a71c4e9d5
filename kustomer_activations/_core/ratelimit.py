"""Kustomer's rate-limit headers, and the pacer that keeps a client under them.

Kustomer gives every org one request budget per 60 s window, shared by every
key and every process, plus a smaller budget for searches. A client that
only reacts to 429s wastes requests and time; this pacer spaces requests
evenly at just under the budget and holds back when the headers say the
window is spent (somebody else may share it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Literal

import attrs

__all__ = ["Bucket", "Pacer", "RateLimit", "parse_rate_limit", "parse_retry_after", "parse_reset"]

Bucket = Literal["default", "search"]

#: Below 1e9 a reset/retry value is a delta in seconds; above it, epoch seconds.
_EPOCH_THRESHOLD = 1_000_000_000
#: Pace at this share of the budget: room for clock skew and window edges.
UTILIZATION = 0.95
#: Requests that may go at once after a quiet spell, as a share of the budget.
#: Any 60-s window then holds at most (UTILIZATION + BURST) x budget + 1 requests.
BURST = 0.04


@attrs.frozen(kw_only=True)
class RateLimit:
    """The org's request budget as of the latest response.

    Attributes:
        limit: requests allowed per window (``x-ratelimit-limit``).
        remaining: requests left in the current window.
        reset_at: epoch seconds when the window resets.
        observed_at: epoch seconds when these headers were read.
    """

    limit: int | None
    remaining: int | None
    reset_at: float | None
    observed_at: float

    @property
    def resets_in(self) -> float | None:
        """Seconds from the observation until the window resets."""
        return None if self.reset_at is None else max(0.0, self.reset_at - self.observed_at)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def parse_reset(value: str | None, now: float) -> float | None:
    """Read ``x-ratelimit-reset`` as epoch seconds; accepts epoch s, epoch ms or a delta."""
    number = _number(value)
    if number is None or number < 0:
        return None
    if number >= _EPOCH_THRESHOLD * 1000:
        return number / 1000.0
    if number >= _EPOCH_THRESHOLD:
        return number
    return now + number


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``Retry-After``: a delta, epoch seconds, or an HTTP date."""
    if value is None:
        return None
    number = _number(value)
    if number is not None:
        if number >= _EPOCH_THRESHOLD:
            return max(0.0, (number / 1000.0 if number >= _EPOCH_THRESHOLD * 1000 else number) - now)
        return max(0.0, number)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimit | None:
    """The :class:`RateLimit` in a response's headers, or ``None`` when it has none."""
    limit = _number(headers.get("x-ratelimit-limit"))
    remaining = _number(headers.get("x-ratelimit-remaining"))
    reset_at = parse_reset(headers.get("x-ratelimit-reset"), now)
    if limit is None and remaining is None and reset_at is None:
        return None
    return RateLimit(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset_at=reset_at,
        observed_at=now,
    )


class _Lane:
    """Even spacing for one budget, with a hard stop when the window is spent.

    A generic cell-rate scheme: each request takes the next slot, one
    ``interval`` after the previous one, but a slot may lie up to ``burst``
    intervals in the past, so that work arriving after a quiet spell (the
    first searches of a sync) starts at once instead of queueing behind an
    empty budget.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.next_slot = 0.0
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.sent_since_observed = 0

    @property
    def interval(self) -> float:
        return 60.0 / (self.per_minute * UTILIZATION)

    @property
    def burst(self) -> int:
        return int(self.per_minute * BURST)

    def reserve(self, now: float) -> float:
        interval = self.interval
        slot = max(now - self.burst * interval, self.next_slot)
        if (
            self.remaining is not None
            and self.reset_at is not None
            and slot < self.reset_at
            and self.sent_since_observed >= self.remaining
        ):
            slot = self.reset_at
        self.next_slot = slot + interval
        self.sent_since_observed += 1
        return max(slot, now)

    def hold_until(self, when: float) -> None:
        self.next_slot = max(self.next_slot, when)


class Pacer:
    """Spaces requests under the org budget and the search budget; thread-safe.

    ``reserve`` hands out send times, so every task and thread of one client
    shares one budget. It returns how long the caller must wait; the runner
    does the waiting, so this stays free of I/O.

    Args:
        requests_per_minute: the org budget; ``None`` starts at 1,000 and
            follows ``x-ratelimit-limit`` from then on.
        searches_per_minute: the search budget (Kustomer: 100 for API keys).
    """

    def __init__(self, requests_per_minute: int | None, searches_per_minute: int) -> None:
        self._lock = threading.Lock()
        self._learn = requests_per_minute is None
        self._default = _Lane(requests_per_minute or 1000)
        self._search = _Lane(searches_per_minute)
        self.latest: RateLimit | None = None
        self.sent = 0

    def reserve(self, now: float) -> float:
        """Claim the next send slot of the org budget; returns seconds to wait.

        Every request sent claims exactly one slot, so :attr:`sent` counts them.
        """
        with self._lock:
            self.sent += 1
            return max(0.0, self._default.reserve(now) - now)

    def backlog(self, now: float) -> float:
        """Seconds of org-budget slots already handed out ahead of ``now`` (0 when idle)."""
        with self._lock:
            return max(0.0, self._default.next_slot - now)

    def reserve_search(self, now: float) -> float:
        """Claim a slot of the search budget; returns seconds to wait.

        Called before :meth:`reserve`: a search first waits for its own budget,
        then takes an org-budget slot like any request, so that waiting for the
        search budget never holds an org slot that another request could use.
        """
        with self._lock:
            return max(0.0, self._search.reserve(now) - now)

    def observe(self, rate: RateLimit) -> None:
        """Learn from a response's headers (limit, remaining, reset)."""
        with self._lock:
            if self.latest is not None and rate.observed_at < self.latest.observed_at:
                return
            self.latest = rate
            lane = self._default
            if self._learn and rate.limit:
                lane.per_minute = rate.limit
            lane.remaining = rate.remaining
            lane.reset_at = rate.reset_at
            lane.sent_since_observed = 0

    def hold_until(self, when: float, bucket: Bucket = "default") -> None:
        """After a 429: no request of this bucket (or any, for default) before ``when``."""
        with self._lock:
            self._search.hold_until(when)
            if bucket == "default":
                self._default.hold_until(when)

    @property
    def requests_per_minute(self) -> int:
        """The org budget the pacer currently spaces requests for."""
        return self._default.per_minute
