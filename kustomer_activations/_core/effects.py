"""The effects a flow yields, and the ``Flow`` type.

A flow is a generator: it yields an effect, the runner carries it out and
sends the result back in (or throws the transport exception into it). The
same flow therefore runs unchanged under the sync and the async runner.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import httpx

if TYPE_CHECKING:
    from .response import ApiResponse

__all__ = ["Effect", "Flow", "FlowCancelled", "Record", "Send", "Sleep"]

T = TypeVar("T")


@attrs.frozen
class Send:
    """Send this request; the runner answers with the ``httpx.Response``.

    Transport failures (``httpx.TransportError``) are thrown into the flow.
    """

    request: httpx.Request


@attrs.frozen
class Sleep:
    """Wait this many seconds on the client's clock; the runner answers ``None``."""

    seconds: float


@attrs.frozen
class Record:
    """A finished call, offered to any active ``capture_responses()``; answered ``None``."""

    response: ApiResponse


Effect = Send | Sleep | Record

#: A generator that yields effects, receives their results and returns a ``T``.
Flow = Generator[Effect, Any, T]


class FlowCancelled(BaseException):
    """Thrown into a flow when its run is cancelled, so it can account for its work.

    A flow that catches it must return without yielding again.
    """
