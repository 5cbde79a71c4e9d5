"""Clocks for the emulator, shaped like the SDK's ``Clock`` protocol.

Each clock has ``now() -> float`` (epoch seconds), ``sleep(s)`` and
``async asleep(s)``, so one object can drive both the SDK client and the
emulator (a benchmark on a scaled clock, a unit test on a virtual one).
Nothing here imports the SDK: the shape is matched structurally.
"""

from __future__ import annotations

import contextvars
import threading
import time

import anyio
import anyio.lowlevel

__all__ = ["RealClock", "ScaledClock", "VirtualClock"]


class RealClock:
    """Wall-clock time: ``time.time``, ``time.sleep`` and ``anyio.sleep``."""

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


class VirtualClock:
    """Time that only moves when someone sleeps or calls :meth:`advance`.

    ``sleep`` and ``asleep`` return at once after moving the time forward, so a
    test of a 60-second rate-limit window runs in microseconds. ``asleep``
    still yields to the event loop once (an anyio checkpoint) so that other
    tasks get a turn, as they would during a real wait. Thread-safe.

    A sleep ends ``seconds`` after the time its caller (thread or task) last
    read with :meth:`now`, as a real sleep would: several threads or tasks
    that each wait out their own delay move the time to the latest of their
    deadlines, not to the sum of their delays.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._seen: contextvars.ContextVar[float | None] = contextvars.ContextVar(
            f"virtual_clock_seen_{id(self)}", default=None)

    def now(self) -> float:
        """The virtual epoch seconds."""
        with self._lock:
            value = self._now
        self._seen.set(value)
        return value

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` (negative values are ignored)."""
        if seconds > 0:
            with self._lock:
                self._now += seconds

    def _wait(self, seconds: float) -> None:
        seen = self._seen.get()
        with self._lock:
            start = self._now if seen is None else min(seen, self._now)
            self._now = max(self._now, start + max(seconds, 0.0))
            value = self._now
        self._seen.set(value)

    def sleep(self, seconds: float) -> None:
        """Move the time to ``seconds`` after the caller last read it, without blocking."""
        self._wait(seconds)

    async def asleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then yield to the event loop once."""
        self._wait(seconds)
        await anyio.lowlevel.checkpoint()


class ScaledClock:
    """Time that runs ``scale`` times faster than the wall clock.

    ``now()`` is ``start + elapsed_real_seconds * scale``; ``sleep(s)`` really
    sleeps ``s / scale`` seconds. With ``scale=60`` one virtual minute (one
    Kustomer rate-limit window) passes in one real second.
    """

    def __init__(self, scale: float = 60.0, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = float(scale)
        self._start = time.time() if start is None else float(start)
        self._origin = time.monotonic()

    def now(self) -> float:
        """Scaled epoch seconds."""
        return self._start + (time.monotonic() - self._origin) * self.scale

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of scaled time (``seconds / scale`` real ones)."""
        if seconds > 0:
            time.sleep(seconds / self.scale)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scaled time in the running event loop."""
        await anyio.sleep(max(seconds, 0.0) / self.scale)
