"""Every exception the SDK raises, rooted at :class:`KustomerError`.

Two families:

* :class:`APIError` and its subclasses: Kustomer answered with an error
  status. The class is picked from the status by :data:`STATUS_ERRORS`.
* :class:`InvalidRecordError` and its subclasses: a record was refused
  locally, before any request, with the field and value that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CustomFieldError",
    "ErrorDetail",
    "InternalServerError",
    "InvalidRecordError",
    "KustomerError",
    "MissingKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "STATUS_ERRORS",
    "UnprocessableEntityError",
    "UnknownCompanyLinkError",
    "UnknownFieldError",
    "error_class_for_status",
    "reason_of",
]


class KustomerError(Exception):
    """Root of every error raised by ``kustomer_activations``."""


@attrs.frozen(kw_only=True)
class ErrorDetail:
    """One entry of Kustomer's ``errors`` list, in either of its two shapes.

    Kustomer answers errors as ``{"errors": [{"code", "message", "meta"}]}`` or
    as JSON:API errors ``{"status", "code", "title", "detail", "source", "meta"}``;
    both are read into this record. ``status`` may be a string or an integer
    (kept as text), and ``source.parameter`` may be spelled ``parameters``
    (as in Kustomer's OpenAPI example). Validation details nested in
    ``meta.subErrors`` are decoded recursively into :attr:`sub_errors`.
    """

    code: str | None = None
    status: str | None = None
    title: str | None = None
    detail: str | None = None
    message: str | None = None
    pointer: str | None = None
    parameter: str | None = None
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    sub_errors: tuple[ErrorDetail, ...] = ()

    @classmethod
    def from_api(cls, payload: Any) -> ErrorDetail:
        """Decode one error object; tolerate anything (a bare string, missing keys)."""
        if not isinstance(payload, Mapping):
            return cls(message=str(payload))
        source = payload.get("source")
        source = source if isinstance(source, Mapping) else {}
        meta = payload.get("meta")
        meta = meta if isinstance(meta, Mapping) else {}
        subs = meta.get("subErrors")
        sub_errors = (
            tuple(cls.from_api(s) for s in subs) if isinstance(subs, Sequence) and not
            isinstance(subs, str) else ()
        )

        def text(name: str, where: Mapping[str, Any] = payload) -> str | None:
            value = where.get(name)
            return None if value is None else str(value)

        return cls(
            code=text("code"),
            status=text("status"),
            title=text("title"),
            detail=text("detail"),
            message=text("message"),
            pointer=text("pointer", source),
            parameter=_parameter(source),
            meta=dict(meta),
            sub_errors=sub_errors,
        )

    @property
    def text(self) -> str:
        """The most specific human-readable text this error carries."""
        parts = [p for p in (self.title, self.detail or self.message) if p]
        where = self.pointer or self.parameter
        if where:
            parts.append(f"(at {where})")
        if not parts and self.code:
            parts.append(self.code)
        line = " ".join(parts) if parts else "no details"
        if self.sub_errors:
            line += "; " + "; ".join(s.text for s in self.sub_errors)
        return line


def _parameter(source: Mapping[str, Any]) -> str | None:
    # Kustomer's JSON:API errors name the parameter ``source.parameter``; its
    # OpenAPI example spells it ``source.parameters`` (maybe a list): read both.
    for name in ("parameter", "parameters"):
        value = source.get(name)
        if value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str):
            return ", ".join(str(v) for v in value) or None
        return str(value)
    return None


def _looks_duplicate(details: Sequence[ErrorDetail]) -> bool:
    for d in details:
        blob = " ".join(p for p in (d.code, d.title, d.detail, d.message) if p).lower()
        if "duplicate" in blob or "already exists" in blob:
            return True
        if _looks_duplicate(d.sub_errors):
            return True
    return False


_OPTIMISTIC = re.compile(r"\b(rev|revision|stale|optimistic|lock|locking|locked|version)\b")


def _looks_optimistic(details: Sequence[ErrorDetail]) -> bool:
    for d in details:
        blob = " ".join(p for p in (d.code, d.title, d.detail, d.message) if p).lower()
        if _OPTIMISTIC.search(blob) or _looks_optimistic(d.sub_errors):
            return True
    return False


class APIError(KustomerError):
    """Kustomer answered with an error status.

    Attributes:
        status: the HTTP status code.
        errors: Kustomer's error list, decoded (both shapes).
        request_id: the ``x-request-id`` header, when Kustomer sent one.
        method: the HTTP method of the failed request.
        path: the request path (no query string, no host).
        headers: the response headers.
        body: the decoded response body (or the raw text when not JSON).
    """

    #: What a person should do about this class of error; subclasses refine it.
    hint: str = ""

    def __init__(
        self,
        *,
        status: int,
        method: str,
        path: str,
        errors: Sequence[ErrorDetail] = (),
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        self.request_id = request_id
        self.headers: Mapping[str, str] = dict(headers or {})
        self.body = body
        if hint is not None:
            self.hint = hint
        super().__init__(self._describe())

    @property
    def is_duplicate(self) -> bool:
        """True when Kustomer refused a write because a unique value is taken.

        Kustomer's uniqueness rule (emails, phones, external ids) may answer 409
        or 400; this looks at the error text, not only the status.
        """
        if _looks_duplicate(self.errors):
            return True
        return self.status == 409 and not _looks_optimistic(self.errors)

    @property
    def is_conflict(self) -> bool:
        """True for a 409 that does not say "duplicate": possibly an optimistic-locking refusal.

        Kustomer's error reference says a 409 is "typically related to
        optimistic locking or other conflict" (KUSTOMER_API.md, "Revisions"):
        an update that carried a stale ``rev`` was not applied, and re-reading
        the object and planning again is the cure. A bare "409 Conflict" on a
        create still counts as a duplicate (:attr:`is_duplicate`).
        """
        return self.status == 409 and not _looks_duplicate(self.errors)

    def _describe(self) -> str:
        what = "; ".join(e.text for e in self.errors) if self.errors else "no error details"
        line = f"{self.method} {self.path} failed with {self.status}: {what}"
        if self.request_id:
            line += f" [request id {self.request_id}]"
        if self.hint:
            line += f". {self.hint}"
        return line


class BadRequestError(APIError):
    """400: Kustomer refused the request as malformed or invalid. Never retried."""

    hint = "Fix the request (the details name the field); retrying will not help"


class AuthenticationError(APIError):
    """401: the API key is missing, invalid, expired or belongs to another region."""

    hint = (
        "Check the API key, and that the base URL is your org's region "
        "(a key only works in its own region: use org= or region=)"
    )


class PermissionDeniedError(APIError):
    """403: the key lacks a role this call needs. Keys are immutable: create a new one."""

    hint = "The API key lacks a role for this call; create a key with the roles client.check() lists"


class NotFoundError(APIError):
    """404: no object has that id, or a lookup matched nothing."""

    hint = "No such object"


class ConflictError(APIError):
    """409: the write conflicts with existing data (for example a duplicate unique value)."""

    hint = "Another object already holds a unique value (email, phone or external id)"


class UnprocessableEntityError(APIError):
    """422: the request was well formed but Kustomer could not process it."""

    hint = "Kustomer could not process the request; the details say why"


class RateLimitError(APIError):
    """429: over the org's request budget and the client stopped waiting for it."""

    hint = (
        "The org-wide rate limit was exceeded; lower the concurrency, or raise "
        "max_rate_limit_wait to let the client wait longer"
    )


class InternalServerError(APIError):
    """5xx: a fault on Kustomer's side; retried automatically before this is raised."""

    hint = "Kustomer had a server error; it was retried. Try again later"


class APIConnectionError(KustomerError):
    """No response arrived: connection refused, reset, or dropped mid-answer.

    ``host`` is the host (and port) that did not answer, when known.
    ``sent`` is ``False`` when the request surely never left (no connection
    could be made or taken from the pool), so it cannot have been applied.
    """

    def __init__(self, message: str, *, method: str, path: str, host: str | None = None,
                 sent: bool = True) -> None:
        self.method = method
        self.path = path
        self.host = host
        self.sent = sent
        super().__init__(f"{method} {path}: {message}")


class APITimeoutError(APIConnectionError):
    """The request timed out; raise ``timeout=`` if Kustomer is slow for you."""


class APIResponseValidationError(KustomerError):
    """Kustomer answered 2xx with a body this SDK cannot read."""

    def __init__(self, message: str, *, method: str, path: str, status: int, body: Any) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        super().__init__(f"{method} {path} answered {status} with an unreadable body: {message}")


#: The status → exception table. 5xx statuses not listed map to InternalServerError.
STATUS_ERRORS: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[APIError]:
    """The exception class for an error status (``APIError`` when none fits)."""
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    if status >= 500:
        return InternalServerError
    return APIError


class InvalidRecordError(KustomerError, ValueError):
    """A record was refused locally, before any request.

    Attributes:
        field: the Kustomer field (``"name"``, ``"custom.tierStr"``, ``"emails[0].email"``).
        value: the offending value (``None`` when missing).
        reason: what is wrong, for a person.
        record: where the record came from (a row number, a key), when known.
    """

    def __init__(
        self, reason: str, *, field: str | None = None, value: Any = None, record: Any = None
    ) -> None:
        self.reason = reason
        self.field = field
        self.value = value
        self.record = record
        super().__init__(self._describe())

    @property
    def detail(self) -> str:
        """The description without the record prefix, for reports that name the row."""
        return self._describe(with_record=False)

    def _describe(self, *, with_record: bool = True) -> str:
        where = f"record {self.record}: " if self.record is not None and with_record else ""
        what = f"field {self.field!r}: " if self.field else ""
        shown = repr(self.value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        tail = f" (got {shown})" if self.value is not None else ""
        return f"{where}{what}{self.reason}{tail}"

    def for_record(self, record: Any) -> InvalidRecordError:
        """A copy of this error that also names the record it came from."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.record = record
        Exception.__init__(clone, clone._describe())
        return clone


class CustomFieldError(InvalidRecordError):
    """A custom attribute's value does not fit the type its name's suffix declares."""


class UnknownFieldError(InvalidRecordError):
    """A field (standard or custom) that Kustomer does not know for this object type."""


class MissingKeyError(InvalidRecordError):
    """The record has no value (or an empty one) for the sync key."""


class UnknownCompanyLinkError(KustomerError):
    """An update was not sent because the customer's current company link is unknown.

    Kustomer unlinks a customer from its company when an update omits
    ``company``, and its answers may not show the link at all
    (KUSTOMER_API.md, "Company link in responses"). Rather than risk a
    silent unlink, the SDK does not write such a row.
    """

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(
            f"customer {customer_id}: Kustomer's answers do not show its company link, and an "
            "update that omits 'company' unlinks it; not written. Give the record its link: map "
            "'companyExternalId' (or 'company') with a value for this row, so the SDK can resend it"
        )


def reason_of(error: BaseException) -> str:
    """A one-line reason for a per-row report: the error without a "record N:" prefix."""
    if isinstance(error, InvalidRecordError):
        return error.detail
    return str(error)
