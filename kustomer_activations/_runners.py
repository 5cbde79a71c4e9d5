"""The only code that sends requests and sleeps: one sync and one async driver.

Both walk a flow (see :mod:`kustomer_activations._core.effects`): send the
request it yields, sleep the time it yields, and hand back the result. A
behaviour therefore exists once, in the flow, whichever client runs it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import httpx

from ._core.clock import Clock
from ._core.effects import Flow, FlowCancelled, Record, Send, Sleep
from ._core.response import ApiResponse

__all__ = ["CAPTURE", "FlowCancelled", "run_async", "run_sync"]

T = TypeVar("T")

#: The list that ``capture_responses()`` collects into, for the current context.
CAPTURE: contextvars.ContextVar[list[ApiResponse] | None] = contextvars.ContextVar(
    "kustomer_activations_capture", default=None
)


def _record(effect: Record) -> None:
    sink = CAPTURE.get()
    if sink is not None:
        sink.append(effect.response)


def _salvage(flow: Flow[T], salvage: Callable[[T], None] | None) -> None:
    """Let a cancelled flow report what it did, if it knows how."""
    if salvage is None:
        return
    try:
        flow.throw(FlowCancelled())
    except StopIteration as stop:
        salvage(stop.value)
    except FlowCancelled:
        pass


def run_sync(
    flow: Flow[T],
    http: httpx.Client,
    clock: Clock,
    cancel: threading.Event | None = None,
) -> T:
    """Drive ``flow`` to completion with a blocking ``httpx.Client``.

    When ``cancel`` is set, :class:`FlowCancelled` is thrown into the flow at
    its next step; a flow that handles it returns its partial result.
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            if cancel is not None and cancel.is_set():
                # The flow is paused at an effect it has not seen carried out:
                # it can still say truthfully what was and was not sent.
                error = FlowCancelled()
                continue
            if isinstance(effect, Send):
                try:
                    value = http.send(effect.request)
                except httpx.TransportError as exc:
                    error = exc
            elif isinstance(effect, Sleep):
                clock.sleep(effect.seconds)
            else:
                _record(effect)
    finally:
        flow.close()


async def run_async(
    flow: Flow[T],
    http: httpx.AsyncClient,
    clock: Clock,
    salvage: Callable[[T], None] | None = None,
) -> T:
    """Drive ``flow`` to completion with an ``httpx.AsyncClient`` (asyncio or trio).

    If the surrounding task is cancelled, the flow is first given a
    :class:`FlowCancelled` so that ``salvage`` receives its partial result;
    then the cancellation goes on as usual.
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(effect, Send):
                    try:
                        value = await http.send(effect.request)
                    except httpx.TransportError as exc:
                        error = exc
                elif isinstance(effect, Sleep):
                    await clock.asleep(effect.seconds)
                else:
                    _record(effect)
            except anyio.get_cancelled_exc_class():
                _salvage(flow, salvage)
                raise
    finally:
        flow.close()
