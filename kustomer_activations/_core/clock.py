"""Time as the SDK sees it: wall-clock seconds, and a way to wait.

The client takes any object with this shape (``clock=``), so tests can
inject a fake clock and benchmarks a scaled one shared with the emulator.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the SDK needs of time.

    ``now()`` is epoch seconds (Kustomer's ``x-ratelimit-reset`` is epoch
    seconds, so the clock must be comparable with it). ``sleep`` blocks the
    calling thread; ``asleep`` waits inside an anyio event loop (asyncio or
    trio).
    """

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        ...


class SystemClock:
    """The real clock: ``time.time``, ``time.sleep`` and ``anyio.sleep``."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` in the running anyio event loop."""
        await anyio.sleep(max(seconds, 0.0))
