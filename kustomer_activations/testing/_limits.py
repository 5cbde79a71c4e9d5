"""Rate limits: fixed 60-second windows on the emulator clock.

Two budgets: the org budget (every request) and the search budget (searches
only; a search spends one of each). A request refused with 429 spends
nothing. Windows are aligned to whole minutes of the clock's epoch time, and
``x-ratelimit-reset`` is the epoch second at which the current window ends.
"""

from __future__ import annotations

import math

__all__ = ["Budget", "RateLimiter"]

WINDOW = 60.0


class Budget:
    """A count of requests allowed per fixed window."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.window_start = -math.inf
        self.used = 0

    def _roll(self, now: float) -> None:
        start = math.floor(now / WINDOW) * WINDOW
        if start != self.window_start:
            self.window_start, self.used = start, 0

    def remaining(self, now: float) -> int:
        """Requests left in the window containing ``now``."""
        self._roll(now)
        return max(self.limit - self.used, 0)

    def reset(self, now: float) -> int:
        """Epoch seconds at which the window containing ``now`` ends."""
        self._roll(now)
        return int(self.window_start + WINDOW)


class RateLimiter:
    """The org budget and the search budget."""

    def __init__(self, requests_per_minute: int, searches_per_minute: int) -> None:
        self.org = Budget(requests_per_minute)
        self.search = Budget(searches_per_minute)

    def take(self, now: float, is_search: bool) -> float | None:
        """Spend one request; ``None`` if allowed, else seconds until retry is worth it."""
        budgets = [self.org, self.search] if is_search else [self.org]
        for b in budgets:
            if b.remaining(now) <= 0:
                return max(b.reset(now) - now, 0.0)
        for b in budgets:
            b.used += 1
        return None

    def headers(self, now: float) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers (the org budget) for a response sent at ``now``."""
        return {
            "x-ratelimit-limit": str(self.org.limit),
            "x-ratelimit-remaining": str(self.org.remaining(now)),
            "x-ratelimit-reset": str(self.org.reset(now)),
        }
