"""ISO-8601 timestamps: tolerant parsing of Kustomer's, strict formatting of ours."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone

__all__ = ["format_utc", "format_utc_or_none", "parse_iso", "parse_iso_or_none"]

# fromisoformat before 3.11 refuses "Z" and fractions that are not 3 or 6 digits;
# this normalises both so one code path works on every supported Python.
_FRACTION = re.compile(r"\.(\d+)")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date or date-time; naive results are taken as UTC.

    Raises:
        ValueError: when ``text`` is not ISO-8601.
    """
    s = text.strip()
    try:  # Python 3.11+ reads "Z" and any fraction itself: the fast path
        parsed = datetime.fromisoformat(s)
    except ValueError:
        parsed = _parse_slow(s)
    tz = parsed.tzinfo
    if tz is None:
        return parsed.replace(tzinfo=timezone.utc)
    if tz is timezone.utc:  # Kustomer's own "...Z": already what astimezone would give
        return parsed
    return parsed.astimezone(timezone.utc)


def _parse_slow(s: str) -> datetime:
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(s)
    except ValueError:
        match = _FRACTION.search(s)
        if match is None:
            raise
        digits = (match.group(1) + "000000")[:6]
        parsed = datetime.fromisoformat(s[: match.start()] + "." + digits + s[match.end():])
    return parsed


def parse_iso_or_none(value: object) -> datetime | None:
    """Parse a timestamp read from Kustomer; anything unreadable becomes ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def format_utc(value: datetime | date) -> str:
    """Kustomer's timestamp form: UTC, milliseconds, ``Z`` (``2024-05-01T00:00:00.000Z``).

    A naive datetime is taken as UTC (not local time) so the result never
    depends on the machine's time zone; a date is midnight UTC.
    """
    if type(value) is date:  # midnight UTC, without building a datetime
        return f"{value.isoformat()}T00:00:00.000Z"
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    elif value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    # Plain isoformat() is the fastest formatter (timespec= costs twice as much);
    # it prints 0 or 6 fraction digits, cut here to Kustomer's 3.
    text = value.isoformat()
    return text + ".000Z" if value.microsecond == 0 else text[:23] + "Z"


def format_utc_or_none(value: object) -> str | None:
    """:func:`format_utc` of a datetime, a date or an ISO-8601 string; ``None`` otherwise.

    ``None`` (rather than an exception) lets each caller word its own error.
    """
    if isinstance(value, (datetime, date)):
        return format_utc(value)
    if isinstance(value, str):
        try:
            return format_utc(parse_iso(value))
        except ValueError:
            return None
    return None
