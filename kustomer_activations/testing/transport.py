"""The in-process transport: plug the emulator into ``httpx.Client`` or
``httpx.AsyncClient`` with ``transport=emu.transport``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._app import Reply

if TYPE_CHECKING:
    from ._emulator import KustomerEmulator

__all__ = ["EmulatorTransport"]


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """One object that is both a sync and an async httpx transport.

    Injected faults surface as the exceptions a real network would raise:
    ``httpx.ReadTimeout``, ``httpx.ConnectError`` and, for a lost response
    (processed but unanswered), ``httpx.RemoteProtocolError``.
    """

    def __init__(self, emulator: KustomerEmulator) -> None:
        self._emu = emulator

    def _parts(self, request: httpx.Request) -> tuple[str, str, str, dict[str, str]]:
        raw_path, _, raw_query = request.url.raw_path.decode("ascii").partition("?")
        headers = {k.lower(): v for k, v in request.headers.items()}
        return request.method, raw_path, raw_query, headers

    @staticmethod
    def _finish(request: httpx.Request, reply: Reply) -> httpx.Response:
        if reply.action == "timeout":
            raise httpx.ReadTimeout("emulated read timeout", request=request)
        if reply.action == "connection_reset":
            raise httpx.ConnectError("emulated connection reset", request=request)
        if reply.action == "lost_response":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request)
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body,
                              request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a request from ``httpx.Client``."""
        body = request.read()
        method, path, query, headers = self._parts(request)
        fault = self._emu.faults.pick(method, path)
        if fault is not None and fault.kind == "slow":
            self._emu.clock.sleep(fault.seconds)
        reply = self._emu._app.handle(method, path, query, headers, body, fault)
        return self._finish(request, reply)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer a request from ``httpx.AsyncClient`` (asyncio or trio)."""
        body = await request.aread()
        method, path, query, headers = self._parts(request)
        fault = self._emu.faults.pick(method, path)
        if fault is not None and fault.kind == "slow":
            await self._emu.clock.asleep(fault.seconds)
        reply = self._emu._app.handle(method, path, query, headers, body, fault)
        return self._finish(request, reply)
