"""A transport that lets the emulator answer, except when a rule says to answer with something hostile.

``HostileTransport(emu.transport)`` is both a sync and an async httpx
transport. ``add(method, path_regex, answer, times=..., after_apply=...)``
replaces the emulator's answer to matching requests ``times`` times
(``None``: always). With ``after_apply=True`` the request is first handed to
the emulator, so a write really lands, and only the answer the client gets
is replaced. ``ANSWERS`` names every hostile answer the suite uses.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["ANSWERS", "HUGE", "STATUSES", "UNREADABLE_200", "HostileTransport", "Rule"]

Answer = Callable[[httpx.Request, "httpx.Response | None"], httpx.Response]

_JSON = {"content-type": "application/json; charset=utf-8"}
_HTML = {"content-type": "text/html; charset=utf-8"}
_TEXT = {"content-type": "text/plain; charset=utf-8"}
_BAD_GATEWAY = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                b"</body>\r\n</html>\r\n")
#: A few MB: big enough to hurt a careless reader, small enough for a fast suite.
HUGE_BYTES = 3 * 1024 * 1024


def _response(status: int, content: bytes, headers: dict[str, str], request: httpx.Request) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=content, request=request)


def _truncated(request: httpx.Request, real: httpx.Response | None) -> httpx.Response:
    body = real.content if real is not None and len(real.content) > 4 else (
        b'{"data": {"type": "customer", "id": "5f3c0000000000000000abcd", "attributes": {"name": "Ad')
    return _response(200, body[: max(1, len(body) // 2)], _JSON, request)


def _fixed(status: int, content: bytes, headers: dict[str, str]) -> Answer:
    def answer(request: httpx.Request, real: httpx.Response | None) -> httpx.Response:
        return _response(status, content, headers, request)
    return answer


def _padded(request: httpx.Request, real: httpx.Response | None) -> httpx.Response:
    """The emulator's own (valid) answer plus megabytes of an unknown member."""
    assert real is not None
    body = json.loads(real.content) if real.content else {}
    if isinstance(body, dict):
        body["x-padding"] = "x" * HUGE_BYTES
    content = json.dumps(body).encode()
    headers = {k: v for k, v in real.headers.items() if k.lower() != "content-length"}
    return _response(real.status_code, content, headers, request)


UNREADABLE_200: dict[str, Answer] = {
    "truncated_json": _truncated,
    "data_null": _fixed(200, b'{"data": null}', _JSON),
    "no_data": _fixed(200, b'{"meta": {}, "links": {}}', _JSON),
    "top_level_list": _fixed(200, b"[]", _JSON),
    "data_string": _fixed(200, b'{"data": "ok"}', _JSON),
    "empty_body": _fixed(200, b"", _JSON),
}
STATUSES: dict[str, Answer] = {
    "html_502": _fixed(502, _BAD_GATEWAY, _HTML),
    "404_json": _fixed(404, b'{"errors": [{"code": "not_found", "message": "not found"}]}', _JSON),
    "404_text": _fixed(404, b"Not Found", _TEXT),
    "418_json": _fixed(418, b'{"errors": [{"code": "teapot", "title": "I\'m a teapot"}]}', _JSON),
    "418_text": _fixed(418, b"I'm a teapot", _TEXT),
}
HUGE: dict[str, Answer] = {
    "huge_html_502": _fixed(502, b"<html><body>" + b"Bad Gateway " * (HUGE_BYTES // 12)
                            + b"</body></html>", _HTML),
    "huge_valid_200": _padded,
}
ANSWERS: dict[str, Answer] = {**UNREADABLE_200, **STATUSES, **HUGE}
#: Answers that need the emulator's real answer (they always let it apply the request).
NEEDS_REAL = frozenset({"huge_valid_200"})


@dataclass
class Rule:
    """Replace the answer to ``method`` requests whose path matches ``path``."""

    method: str
    path: re.Pattern[str]
    answer: Answer
    name: str
    times: int | None = 1
    after_apply: bool = False
    when: Callable[[httpx.Request], bool] | None = None
    skip: int = 0
    skipped: int = 0
    fired: int = 0
    seen: list[str] = field(default_factory=list)

    def matches(self, request: httpx.Request) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if request.method != self.method:
            return False
        raw_path = request.url.raw_path.decode("ascii").partition("?")[0]
        if not self.path.fullmatch(raw_path):
            return False
        if self.when is not None and not self.when(request):
            return False
        if self.skipped < self.skip:
            self.skipped += 1
            return False
        return True


class HostileTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wrap ``inner`` (``emu.transport``); matching requests get a hostile answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rules: list[Rule] = []
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def add(self, method: str, path: str, answer: str | Answer, *, times: int | None = 1,
            after_apply: bool = False, when: Callable[[httpx.Request], bool] | None = None,
            skip: int = 0) -> Rule:
        """Answer ``times`` matching requests (``None``: all) with ``answer``
        (a name in :data:`ANSWERS` or a callable ``(request, real_response|None)``),
        after letting the first ``skip`` matching requests through."""
        name = answer if isinstance(answer, str) else getattr(answer, "__name__", "custom")
        func = ANSWERS[answer] if isinstance(answer, str) else answer
        rule = Rule(method.upper(), re.compile(path), func, name, times,
                    after_apply or name in NEEDS_REAL, when, skip)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _pick(self, request: httpx.Request) -> Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self.rules:
                if rule.matches(request):
                    rule.fired += 1
                    rule.seen.append(f"{request.method} {request.url.raw_path.decode('ascii')}")
                    return rule
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        rule = self._pick(request)
        if rule is None:
            return self.inner.handle_request(request)  # type: ignore[no-any-return]
        real = None
        if rule.after_apply:
            real = self.inner.handle_request(request)
            real.read()
        return rule.answer(request, real)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rule = self._pick(request)
        if rule is None:
            return await self.inner.handle_async_request(request)  # type: ignore[no-any-return]
        real = None
        if rule.after_apply:
            real = await self.inner.handle_async_request(request)
            await real.aread()
        return rule.answer(request, real)
