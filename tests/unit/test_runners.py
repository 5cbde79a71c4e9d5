"""The runners: cancellation reaches a flow before its next request is sent."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from kustomer_activations._core.effects import Flow, FlowCancelled, Send
from kustomer_activations._runners import run_sync

from ..helpers import FakeClock


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"sent {request.url} after cancellation")


def _flow(sent: list[str]) -> Flow[str]:
    try:
        for path in ("/v1/a", "/v1/b"):
            yield Send(httpx.Request("GET", f"https://acme.api.kustomerapp.com{path}"))
            sent.append(path)
    except FlowCancelled:
        return f"cancelled after {len(sent)}"
    return "done"


def test_cancel_set_before_start_lets_the_flow_report_without_sending() -> None:
    cancel = threading.Event()
    cancel.set()
    http = httpx.Client(transport=httpx.MockTransport(_never))
    sent: list[str] = []
    assert run_sync(_flow(sent), http, FakeClock(), cancel) == "cancelled after 0"
    assert sent == []


def test_cancel_between_requests_stops_before_the_next_one() -> None:
    cancel = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        cancel.set()
        return httpx.Response(200, json={})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    sent: list[Any] = []
    assert run_sync(_flow(sent), http, FakeClock(), cancel) == "cancelled after 1"
