"""Decoding responses: JSON bodies, the JSON:API envelope, and error mapping."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import httpx

from ..errors import APIError, APIResponseValidationError, ErrorDetail, error_class_for_status
from .ratelimit import RateLimit

__all__ = ["ApiResponse", "decode_error", "decode_success", "error_details"]


@attrs.frozen(kw_only=True)
class ApiResponse:
    """One finished call: what came back, and what it took.

    Attributes:
        status: the HTTP status.
        headers: the response headers.
        body: the decoded JSON body (``None`` when empty).
        method: the request method.
        path: the request path, without host or query.
        url: the full request URL.
        rate_limit: the budget as of this response, when it carried the headers.
        retries: how many times the request was re-sent before this answer.
        request_id: Kustomer's request id header, when present.
    """

    status: int
    headers: Mapping[str, str]
    body: Any
    method: str
    path: str
    url: str
    rate_limit: RateLimit | None
    retries: int
    request_id: str | None

    @property
    def data(self) -> Any:
        """The envelope's ``data`` member (an object or a list)."""
        if isinstance(self.body, Mapping):
            return self.body.get("data")
        return None

    @property
    def meta(self) -> Mapping[str, Any]:
        """The ``meta`` member of the envelope (paging of lists), or ``{}``."""
        if isinstance(self.body, Mapping) and isinstance(self.body.get("meta"), Mapping):
            meta: Mapping[str, Any] = self.body["meta"]
            return meta
        return {}


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-request-id", "x-kustomer-request-id", "x-amzn-requestid"):
        if headers.get(name):
            return headers[name]
    return None


def _json_or_text(response: httpx.Response) -> tuple[Any, bool]:
    raw = response.content
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except (ValueError, UnicodeDecodeError):
        return response.text, False


def decode_success(
    response: httpx.Response, *, path: str, rate_limit: RateLimit | None, retries: int
) -> ApiResponse:
    """Wrap a 2xx/3xx response; a body that is not a JSON object is a validation error."""
    method = response.request.method
    body, is_json = _json_or_text(response)
    if not is_json or (body is not None and not isinstance(body, (Mapping, list))):
        raise APIResponseValidationError(
            "expected a JSON object", method=method, path=path, status=response.status_code,
            body=body,
        )
    return ApiResponse(
        status=response.status_code,
        headers=response.headers,
        body=body,
        method=method,
        path=path,
        url=str(response.request.url),
        rate_limit=rate_limit,
        retries=retries,
        request_id=_request_id(response.headers),
    )


def error_details(body: Any) -> tuple[ErrorDetail, ...]:
    """Kustomer's error list in either shape (also a lone ``error``/``message``)."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        if isinstance(errors, Sequence) and not isinstance(errors, str):
            return tuple(ErrorDetail.from_api(e) for e in errors)
        if isinstance(errors, Mapping):
            return (ErrorDetail.from_api(errors),)
        if isinstance(body.get("error"), (Mapping, str)):
            return (ErrorDetail.from_api(body["error"]),)
        if "message" in body or "detail" in body or "title" in body:
            return (ErrorDetail.from_api(body),)
    elif isinstance(body, str) and body.strip():
        return (ErrorDetail(message=body.strip()[:500]),)
    return ()


def decode_error(response: httpx.Response, *, path: str) -> APIError:
    """The typed exception for an error response (not raised: the flow decides)."""
    body, _ = _json_or_text(response)
    cls = error_class_for_status(response.status_code)
    return cls(
        status=response.status_code,
        method=response.request.method,
        path=path,
        errors=error_details(body),
        request_id=_request_id(response.headers),
        headers=response.headers,
        body=body,
    )
