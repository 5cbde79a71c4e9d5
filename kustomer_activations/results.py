"""What happened to each record: :class:`Outcome` and :class:`UpsertResult`."""

from __future__ import annotations

import enum
import html
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import KustomerError

__all__ = ["FAILURE_OUTCOMES", "Outcome", "UpsertResult"]


class Outcome(str, enum.Enum):
    """The one outcome every record ends with.

    * ``CREATED`` / ``UPDATED``: written.
    * ``UNCHANGED``: matched, and every mapped field already held the value: no write.
    * ``SKIPPED``: not written by choice (``update_only`` with no match,
      ``create_only`` with a match).
    * ``AMBIGUOUS``: the key matched two or more objects; nothing written.
    * ``INVALID``: refused locally (mapping, validation, missing key); never sent.
    * ``REJECTED``: refused by Kustomer (4xx for this record).
    * ``FAILED``: could not complete (network, 5xx after retries, cancelled).
    """

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    AMBIGUOUS = "ambiguous"
    INVALID = "invalid"
    REJECTED = "rejected"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


#: Outcomes that count as failures in reports and ``raise_for_failures()``.
FAILURE_OUTCOMES = frozenset({Outcome.AMBIGUOUS, Outcome.INVALID, Outcome.REJECTED, Outcome.FAILED})


@attrs.frozen(kw_only=True)
class UpsertResult:
    """The outcome of one record's update-or-create.

    Attributes:
        outcome: what happened (see :class:`Outcome`).
        object_type: ``"customer"`` or ``"company"``.
        id: the Kustomer id written or matched (``None`` when none).
        key: the sync key's label, e.g. ``"externalId"`` or ``"custom.skuStr"``.
        key_value: the record's key value.
        fields_written: the Kustomer fields sent in the write (empty when none).
        error: why the record failed, for the failure outcomes.
        candidates: the ids matched, for ``AMBIGUOUS``.
        row: the record's position in the input (0-based), in batch syncs.
        source: the input record as given, for failures (so they can be fed back).
        reason: a short human-readable explanation.
    """

    outcome: Outcome
    object_type: str
    id: str | None = None
    key: str | None = None
    key_value: str | None = None
    fields_written: tuple[str, ...] = ()
    error: KustomerError | None = None
    candidates: tuple[str, ...] = ()
    row: int | None = None
    source: Mapping[str, Any] | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the outcome is a failure (ambiguous, invalid, rejected, failed)."""
        return self.outcome not in FAILURE_OUTCOMES

    @property
    def written(self) -> bool:
        """True when this record caused a write (created or updated)."""
        return self.outcome in (Outcome.CREATED, Outcome.UPDATED)

    def raise_for_error(self) -> UpsertResult:
        """Raise the error for failure outcomes; return ``self`` otherwise."""
        if self.error is not None and not self.ok:
            raise self.error
        if not self.ok:
            raise KustomerError(self.reason or f"record ended {self.outcome.value}")
        return self

    def describe(self) -> str:
        """One line for a person: outcome, key, id and reason."""
        parts = [self.outcome.value]
        if self.key_value is not None:
            parts.append(f"{self.key}={self.key_value!r}")
        if self.id:
            parts.append(f"id={self.id}")
        if self.candidates:
            parts.append(f"matches={','.join(self.candidates)}")
        text = " ".join(parts)
        detail = self.reason or (str(self.error) if self.error else None)
        return f"{text}: {detail}" if detail else text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: :meth:`describe`."""
        printer.text("UpsertResult(...)" if cycle else f"{self.object_type} {self.describe()}")

    def _repr_html_(self) -> str:
        """Jupyter's display: one small table of the outcome, key, id and reason."""
        fields = [
            ("outcome", self.outcome.value),
            ("object", self.object_type),
            ("key", "" if self.key_value is None else f"{self.key}={self.key_value}"),
            ("id", self.id or ""),
            ("row", "" if self.row is None else str(self.row)),
            ("fields written", ", ".join(self.fields_written)),
            ("matches", ", ".join(self.candidates)),
            ("reason", self.reason or (str(self.error) if self.error else "")),
        ]
        cells = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
                        for name, value in fields if value)
        return f'<table class="kustomer-upsert-result" style="text-align:left"><tbody>{cells}</tbody></table>'
