"""A real HTTP server on loopback, for non-Python code or end-to-end tests.

Same :class:`~kustomer_activations.testing._app.App` as the in-process
transport. Faults that leave the client without an answer send nothing:
a timeout holds the connection open until the client's read timeout fires
(``httpx.ReadTimeout``), a connection reset aborts the TCP connection (RST;
httpx raises ``httpx.ReadError``), a lost response closes the socket after
the request was applied (``httpx.RemoteProtocolError``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._emulator import KustomerEmulator

__all__ = ["EmulatorServer"]


class _Server(ThreadingHTTPServer):
    # A client with a full connection pool opens many connections at once; the
    # default listen backlog of 5 would drop some of them under load.
    request_queue_size = 128

_TIMEOUT_HOLD = 60.0
"""Seconds an injected timeout holds a connection open with no answer."""


class EmulatorServer:
    """A running server; use as a context manager or call :meth:`close`."""

    def __init__(self, emulator: KustomerEmulator, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        emu = emulator

        class Handler(BaseHTTPRequestHandler):
            # Headers and body go out in separate writes; with Nagle's algorithm and
            # delayed ACKs every answer would wait ~40 ms.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                raw_path, _, raw_query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                method = self.command
                fault = emu.faults.pick(method, raw_path)
                if fault is not None and fault.kind == "slow":
                    emu.clock.sleep(fault.seconds)
                reply = emu._app.handle(method, raw_path, raw_query, headers, body, fault)
                if reply.action is not None:
                    self._no_answer(reply.action)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _no_answer(self, action: str) -> None:
                """Leave the client without an answer, as the transport does."""
                self.close_connection = True
                sock = self.connection
                with contextlib.suppress(OSError):
                    if action == "timeout":
                        # Say nothing and keep the connection open until the client
                        # gives up (its read timeout) or _TIMEOUT_HOLD passes.
                        sock.settimeout(_TIMEOUT_HOLD)
                        while sock.recv(65536):
                            pass
                    elif action == "connection_reset":
                        # Abortive close: the client gets a TCP RST.
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                        sock.close()
                        return
                    sock.shutdown(socket.SHUT_RDWR)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                # The emulator keeps its own request log (emu.requests).
                return

        self._httpd = _Server((host, port), Handler)
        self._httpd.daemon_threads = True
        address = self._httpd.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self.url = f"http://{self.host}:{self.port}"
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="kustomer-emulator", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
