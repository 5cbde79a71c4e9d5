"""The promises every sync must keep, whatever Kustomer (or the network) answered.

Every reliability test runs a sync (``upsert_many``, ``stream_upsert`` or a
single ``upsert``) and then hands the input, what the SDK reported and the
emulator's store (before and after) to :func:`check_sync` /
:func:`check_single`. They verify:

1. **one outcome per input row**: the rows of the results are exactly
   ``0..n-1`` (a report's failures name distinct rows within ``0..n-1``);
2. **counts sum to rows**: ``sum(report.counts) == report.rows == n``;
3. **what is reported written is stored**: every row reported ``created``,
   ``updated`` or ``unchanged`` is held by exactly one stored customer, which
   holds the row's values (the input's final values);
4. **no duplicates**: no two stored customers share a sync-key value
   (``externalId``, any email, or the custom key) unless they already did
   before the sync;
5. **nothing refused was written**: a row ended ``rejected`` (also
   ``invalid``, ``ambiguous``, ``skipped``) left the store as it was for its key
   (a row repeating an earlier row's key is only checked not to be written:
   the first row wins);
6. **uncertainty is said**: a row ended ``failed`` whose write happened says
   so in its reason ("may have been written" / "may have happened").

"Written" is judged from the store itself: the customers holding the row's
key value (their ids and revisions) differ before and after the sync.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kustomer_activations import Outcome, SyncReport, UpsertResult
from kustomer_activations.testing import KustomerEmulator

__all__ = [
    "MAY_HAVE",
    "Verdict",
    "check_single",
    "check_sync",
    "doc_key_values",
    "row_key_value",
    "says_may_have",
    "snapshot",
]

#: A failed row whose write may have happened must say one of these in its reason.
MAY_HAVE = ("may have been written", "may have happened")

_OK = (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED)
_NOT_WRITTEN = (Outcome.REJECTED, Outcome.INVALID, Outcome.AMBIGUOUS, Outcome.SKIPPED)
#: Array fields whose items are objects: (field, the item's value member).
_OBJECT_LISTS = {"emails": "email", "phones": "phone", "sharedEmails": "email",
                 "sharedPhones": "phone", "urls": "url", "domains": "domain"}


def snapshot(emu: KustomerEmulator) -> dict[str, dict[str, Any]]:
    """The stored customers by id (copies), to compare a sync's before and after."""
    return {doc["id"]: doc for doc in emu.customers.all()}


def says_may_have(text: str | None) -> bool:
    """Whether a reason admits that the write may have happened."""
    low = (text or "").lower()
    return any(phrase in low for phrase in MAY_HAVE)


def _key_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def row_key_value(key: str, row: Mapping[str, Any]) -> str | None:
    """A Kustomer-shaped row's key value, normalised as the SDK compares it."""
    if key == "externalId":
        return _key_text(row.get("externalId"))
    if key == "email":
        emails = row.get("emails") or []
        if not emails:
            return None
        first = emails[0]
        text = _key_text(first.get("email") if isinstance(first, Mapping) else first)
        return text.lower() if text else None
    if key.startswith("custom."):
        custom = row.get("custom") or {}
        return _key_text(custom.get(key[len("custom."):]))
    raise ValueError(f"unknown key {key!r}")


def doc_key_values(key: str, doc: Mapping[str, Any]) -> list[str]:
    """The key values a stored customer holds (every email counts for the email key)."""
    if key == "email":
        return [str(e.get("email", "")).lower() for e in doc.get("emails") or [] if e.get("email")]
    if key == "externalId":
        value = _key_text(doc.get("externalId"))
    else:
        value = _key_text((doc.get("custom") or {}).get(key[len("custom."):]))
    return [value] if value else []


def _same(have: Any, want: Any) -> bool:
    if have == want:
        return True
    numbers = (int, float)
    if isinstance(have, numbers) and isinstance(want, numbers) and not isinstance(have, bool):
        return math.isclose(float(have), float(want))
    return False


def _differences(row: Mapping[str, Any], doc: Mapping[str, Any],
                 company_ids: Mapping[str, str]) -> list[str]:
    """The fields of ``row`` whose values ``doc`` does not hold."""
    diffs: list[str] = []
    for name, want in row.items():
        if name == "companyExternalId":
            if doc.get("company") != company_ids.get(want):
                diffs.append(name)
        elif name == "custom":
            have_custom = doc.get("custom") or {}
            diffs += [f"custom.{k}" for k, v in want.items() if not _same(have_custom.get(k), v)]
        elif name in _OBJECT_LISTS:
            member = _OBJECT_LISTS[name]
            have = {str(item.get(member, "")).lower() for item in doc.get(name) or []}
            for item in want or []:
                value = item.get(member) if isinstance(item, Mapping) else item
                if str(value).lower() not in have:
                    diffs.append(f"{name}[{value}]")
        elif name == "tags":
            have_tags = set(doc.get("tags") or [])
            diffs += [f"tags[{t}]" for t in want or [] if t not in have_tags]
        elif not _same(doc.get(name), want):
            diffs.append(name)
    return diffs


def _state(docs: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((d["id"], d.get("rev"), d.get("updatedAt")) for d in docs)


@dataclass
class Verdict:
    """What the checks found. ``problems`` is empty when every promise was kept."""

    label: str
    rows: int
    outcomes: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    lost: int = 0
    wrong: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        if kind == "duplicate":
            self.duplicates += 1
        elif kind == "lost":
            self.lost += 1
        else:
            self.wrong += 1
        self.problems.append(f"[{kind}] {text}")

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        counts = " ".join(f"{k} {n}" for k, n in sorted(self.outcomes.items()) if n)
        return (f"rows={self.rows} ({counts or 'none'}) duplicates={self.duplicates} "
                f"lost={self.lost} wrong={self.wrong}")

    def assert_ok(self, context: str = "") -> Verdict:
        if self.problems:
            shown = "\n  ".join(self.problems[:25])
            more = f"\n  ... and {len(self.problems) - 25} more" if len(self.problems) > 25 else ""
            raise AssertionError(
                f"{self.label}: broken promises {self.line()}\n  {shown}{more}"
                + (f"\n{context}" if context else ""))
        return self


def _check_duplicates(verdict: Verdict, keys: Sequence[str], before: Mapping[str, Any],
                      after: Mapping[str, Any]) -> None:
    for key in keys:
        then = Counter(v for d in before.values() for v in set(doc_key_values(key, d)))
        now = Counter(v for d in after.values() for v in set(doc_key_values(key, d)))
        for value, count in now.items():
            allowed = max(1, then.get(value, 0))
            if count > allowed:
                for _ in range(count - allowed):
                    verdict.add("duplicate", f"{count} stored customers have {key}={value!r} "
                                             f"(before the sync: {then.get(value, 0)})")


def _check_row(verdict: Verdict, key: str, row: Mapping[str, Any], where: str,
               outcome: Outcome | None, result: UpsertResult | None, reason: str | None,
               before: Mapping[str, Any], after: Mapping[str, Any],
               company_ids: Mapping[str, str]) -> None:
    """``outcome`` None: the row is known to have ended created, updated or unchanged."""
    value = row_key_value(key, row)
    if value is None:
        if outcome not in (Outcome.INVALID, None):
            verdict.add("wrong", f"{where} has no {key} but ended {outcome}")
        return
    then = [d for d in before.values() if value in doc_key_values(key, d)]
    now = [d for d in after.values() if value in doc_key_values(key, d)]
    written = _state(then) != _state(now)
    label = outcome.value if outcome is not None else "created/updated/unchanged"
    if outcome is None or outcome in _OK:
        if not now:
            verdict.add("lost", f"{where} ({key}={value!r}) ended {label} but no stored "
                                f"customer has it")
            return
        if len(now) > 1:
            return  # counted by the duplicate check
        diffs = _differences(row, now[0], company_ids)
        if diffs:
            verdict.add("lost", f"{where} ({key}={value!r}) ended {label} but the store "
                                f"differs in {', '.join(diffs)}")
        if result is not None and result.id is not None and result.id != now[0]["id"]:
            verdict.add("wrong", f"{where} ended {label} with id {result.id} but customer "
                                 f"{now[0]['id']} holds {key}={value!r}")
    elif outcome in _NOT_WRITTEN:
        if written:
            verdict.add("wrong", f"{where} ({key}={value!r}) ended {label} yet was written: "
                                 f"{_state(then)} -> {_state(now)}; reason: {reason!r}")
    elif outcome is Outcome.FAILED and written and not says_may_have(reason):
        verdict.add("wrong", f"{where} ({key}={value!r}) ended failed after its write "
                             f"happened, without saying it may have: {reason!r}")


def _reason(result: UpsertResult) -> str:
    return result.reason or (str(result.error) if result.error is not None else "")


def _company_ids(emu: KustomerEmulator) -> dict[str, str]:
    return {c["externalId"]: c["id"] for c in emu.companies.all() if c.get("externalId")}


def check_sync(
    emu: KustomerEmulator,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    *,
    before: Mapping[str, Any],
    report: SyncReport | None = None,
    results: Sequence[UpsertResult] | None = None,
    partial: bool = False,
    label: str = "sync",
) -> Verdict:
    """Check a batch sync of ``rows`` on ``key`` (see the module docs).

    Pass the ``report`` (``upsert_many``), the ``results`` (``stream_upsert``) or
    both. ``partial``: the sync stopped early (an abort), so only the rows it
    read must be accounted for, each once.
    """
    if report is None and results is None:
        raise ValueError("check_sync needs a report or results")
    n = len(rows)
    verdict = Verdict(label, n)
    after = snapshot(emu)
    company_ids = _company_ids(emu)
    by_row: dict[int, UpsertResult] = {}
    known_ok: set[int] = set()
    if results is not None:
        verdict.outcomes = Counter(r.outcome.value for r in results)
        indices = [r.row for r in results]
        if not partial and sorted(i for i in indices if isinstance(i, int)) != list(range(n)):
            seen = Counter(indices)
            missing = [i for i in range(n) if i not in seen]
            extra = sorted((i for i, c in seen.items() if c > 1 or not (isinstance(i, int) and 0 <= i < n)),
                           key=str)
            verdict.add("wrong", f"result rows are not exactly 0..{n - 1}: missing "
                                 f"{missing[:10]}, repeated or foreign {extra[:10]}")
        for r in results:
            if isinstance(r.row, int) and 0 <= r.row < n and r.row not in by_row:
                by_row[r.row] = r
            elif partial:
                verdict.add("wrong", f"result row {r.row!r} repeated or outside 0..{n - 1}")
    if report is not None:
        counted = sum(report.counts.values())
        if results is None:
            verdict.outcomes = Counter({o.value: c for o, c in report.counts.items()})
        if counted != report.rows:
            verdict.add("wrong", f"counts sum to {counted}, report.rows is {report.rows}")
        if not partial and report.rows != n:
            verdict.add("wrong", f"report.rows is {report.rows} for {n} input rows")
        if partial and report.rows > n:
            verdict.add("wrong", f"report.rows is {report.rows} for only {n} input rows")
        if len(report.failures) != report.failed_rows:
            verdict.add("wrong", f"{len(report.failures)} failures listed, "
                                 f"{report.failed_rows} counted")
        failure_rows = [f.row for f in report.failures]
        bad = [i for i in failure_rows if not (isinstance(i, int) and 0 <= i < n)]
        repeated = [i for i, c in Counter(failure_rows).items() if c > 1]
        if bad or repeated:
            verdict.add("wrong", f"failure rows outside 0..{n - 1} {bad[:10]} or repeated "
                                 f"{repeated[:10]}")
        if report.mode == "upsert" and report.skipped:
            verdict.add("wrong", f"{report.skipped} rows skipped in upsert mode")
        if results is not None:
            from_results = Counter(r.outcome for r in results)
            if any(from_results.get(o, 0) != c for o, c in report.counts.items()):
                verdict.add("wrong", f"report counts {dict(report.counts)} differ from the "
                                     f"results {dict(from_results)}")
        else:
            for failure in report.failures:
                if isinstance(failure.row, int) and 0 <= failure.row < n:
                    by_row.setdefault(failure.row, failure)
            if not partial:
                failed = {f.row for f in report.failures}
                known_ok = {i for i in range(n) if i not in failed}
    first_with: dict[str, int] = {}
    for i, row in enumerate(rows):
        where = f"row {i}"
        value = row_key_value(key, row)
        if value is not None and first_with.setdefault(value, i) != i:
            # The key repeats an earlier row's: that row's write is what the store shows.
            if i in by_row and by_row[i].outcome in (Outcome.CREATED, Outcome.UPDATED):
                verdict.add("wrong", f"{where} repeats row {first_with[value]}'s {key} "
                                     f"and was written too ({by_row[i].outcome})")
            continue
        if i in by_row:
            result = by_row[i]
            _check_row(verdict, key, row, where, result.outcome, result, _reason(result),
                       before, after, company_ids)
        elif i in known_ok:
            _check_row(verdict, key, row, where, None, None, None, before, after, company_ids)
    _check_duplicates(verdict, sorted({key, "externalId", "email"}), before, after)
    return verdict


def check_single(
    emu: KustomerEmulator,
    row: Mapping[str, Any],
    key: str,
    *,
    before: Mapping[str, Any],
    result: UpsertResult | None = None,
    error: BaseException | None = None,
    label: str = "upsert",
) -> Verdict:
    """Check one ``upsert``: its result, or the error it raised (which then must
    say "may have" if the write happened)."""
    verdict = Verdict(label, 1)
    after = snapshot(emu)
    company_ids = _company_ids(emu)
    if result is not None:
        verdict.outcomes[result.outcome.value] += 1
        _check_row(verdict, key, row, "the record", result.outcome, result, _reason(result),
                   before, after, company_ids)
    elif error is not None:
        verdict.outcomes["raised"] += 1
        _check_row(verdict, key, row, "the record (raised)", Outcome.FAILED, None,
                   f"{type(error).__name__}: {error}", before, after, company_ids)
    else:
        verdict.add("wrong", "upsert returned no result and raised nothing")
    _check_duplicates(verdict, sorted({key, "externalId", "email"}), before, after)
    return verdict
