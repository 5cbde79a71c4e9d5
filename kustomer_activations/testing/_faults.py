"""Fault injection: scripted faults and reproducible random ones.

A :class:`Fault` says *what* goes wrong; :class:`Faults` (``emu.faults``)
says *when*: rules matched in the order they were added, then the random
generator. Kinds and where they strike:

- ``status``: answer with that HTTP status, nothing applied;
- ``rate_limit``: answer 429 with ``Retry-After``, nothing applied;
- ``slow``: wait ``seconds`` on the emulator clock, then answer normally;
- ``timeout``: the client gets ``httpx.ReadTimeout``; nothing applied (over
  HTTP the server stays silent until the client's read timeout fires);
- ``connection_reset``: the client gets ``httpx.ConnectError``; nothing applied
  (over HTTP the server resets the connection: ``httpx.ReadError``);
- ``lost_response``: the request IS applied, then the client gets
  ``httpx.RemoteProtocolError`` (the server closes the socket) — the case
  that makes naive retrying clients create duplicates;
- ``applied_then_status``: the request IS applied, then the client gets that
  HTTP status (default 503) with a JSON error body — a gateway error after
  the backend did the work.

The random generator (:meth:`Faults.random`) draws from 503, rate limit,
timeout, connection reset and lost response unless ``kinds`` says otherwise
(e.g. ``kinds=["applied_then_status:503", "lost_response"]``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

import attrs

__all__ = ["Fault", "FaultRule", "Faults", "Matcher"]

Matcher = str | Callable[[str, str], bool] | None
"""``"METHOD /path-prefix"`` (either part may be omitted: ``"POST"``,
``"/v1/customers"``), a ``callable(method, path) -> bool``, or ``None`` (all)."""

_KINDS = ("status", "rate_limit", "slow", "timeout", "connection_reset", "lost_response",
          "applied_then_status")


@attrs.frozen
class Fault:
    """One thing that can go wrong with a request. Build with the class methods."""

    kind: str
    status_code: int = 0
    retry_after: int = 0
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int = 503) -> Fault:
        """Answer with HTTP ``code`` (e.g. 500, 502, 503) without processing."""
        return cls("status", status_code=code)

    @classmethod
    def rate_limit(cls, retry_after: int = 1) -> Fault:
        """Answer 429 with ``Retry-After: retry_after`` without processing."""
        return cls("rate_limit", status_code=429, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` on the emulator clock, then process normally."""
        return cls("slow", seconds=seconds)

    @classmethod
    def timeout(cls) -> Fault:
        """Raise ``httpx.ReadTimeout``; the request is not processed."""
        return cls("timeout")

    @classmethod
    def connection_reset(cls) -> Fault:
        """Raise ``httpx.ConnectError`` before processing; nothing is applied."""
        return cls("connection_reset")

    @classmethod
    def lost_response(cls) -> Fault:
        """Process and store the request, then lose the answer
        (``httpx.RemoteProtocolError``; the HTTP server closes the socket)."""
        return cls("lost_response")

    @classmethod
    def applied_then_status(cls, code: int = 503) -> Fault:
        """Process and store the request, then answer HTTP ``code`` with a JSON
        error body instead of the real answer."""
        return cls("applied_then_status", status_code=code)

    @property
    def label(self) -> str:
        """A short name for the request log, e.g. ``status:503`` or
        ``applied_then_status:503``."""
        if self.kind in ("status", "applied_then_status"):
            return f"{self.kind}:{self.status_code}"
        return self.kind


def _matches(match: Matcher, method: str, path: str) -> bool:
    if match is None:
        return True
    if callable(match):
        return bool(match(method, path))
    want_method, _, prefix = match.partition(" ") if " " in match else (
        ("", "", match) if match.startswith("/") else (match, "", ""))
    if want_method and want_method.upper() != method:
        return False
    return path.startswith(prefix)


@attrs.define
class FaultRule:
    """A scripted fault: ``fault`` for requests matching ``match``, ``times`` times
    (``None``: every time)."""

    fault: Fault
    match: Matcher = None
    times: int | None = 1
    fired: int = 0


def _parse_kind(kind: Fault | str) -> Fault:
    if isinstance(kind, Fault):
        return kind
    name, _, code = kind.partition(":")
    if name in ("status", "applied_then_status"):
        make = Fault.status if name == "status" else Fault.applied_then_status
        try:
            return make(int(code) if code else 503)
        except ValueError:
            raise ValueError(f"bad status code in fault kind {kind!r}") from None
    factories: dict[str, Callable[[], Fault]] = {
        "rate_limit": Fault.rate_limit, "timeout": Fault.timeout,
        "connection_reset": Fault.connection_reset, "lost_response": Fault.lost_response,
        "slow": lambda: Fault.slow(1.0)}
    if kind not in factories:
        raise ValueError(f"unknown fault kind {kind!r}; use one of {_KINDS}")
    return factories[kind]()


class Faults:
    """``emu.faults``: add scripted faults, enable random ones. Thread-safe."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self._rate = 0.0
        self._kinds: list[Fault] = []
        self._random_match: Matcher = None
        self._rng = random.Random(seed)

    def add(self, fault: Fault, match: Matcher = None, times: int | None = 1) -> FaultRule:
        """Inject ``fault`` into the next ``times`` requests matching ``match``."""
        rule = FaultRule(fault, match, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def random(self, rate: float, kinds: Sequence[Fault | str] | None = None,
               seed: int | None = None, match: Matcher = None) -> None:
        """Give each matching request probability ``rate`` of a fault drawn from
        ``kinds`` (default: 503, rate limit, timeout, connection reset, lost
        response; also ``"applied_then_status[:code]"``, ``"slow"``, ``"status:<code>"``
        or :class:`Fault` objects). The same ``seed`` and request sequence give the
        same faults."""
        chosen = [_parse_kind(k) for k in (kinds or [
            "status:503", "rate_limit", "timeout", "connection_reset", "lost_response"])]
        with self._lock:
            self._rate, self._kinds, self._random_match = rate, chosen, match
            if seed is not None:
                self._rng = random.Random(seed)

    def clear(self) -> None:
        """Remove every scripted rule and stop random faults."""
        with self._lock:
            self.rules.clear()
            self._rate = 0.0

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault for this request, if any (and count it as fired)."""
        with self._lock:
            for rule in self.rules:
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if _matches(rule.match, method, path):
                    rule.fired += 1
                    return rule.fault
            if self._rate > 0 and _matches(self._random_match, method, path):
                # Draw twice per request whatever the outcome so that the
                # sequence only depends on the seed and the request count.
                roll, which = self._rng.random(), self._rng.randrange(len(self._kinds))
                if roll < self._rate:
                    return self._kinds[which]
        return None
