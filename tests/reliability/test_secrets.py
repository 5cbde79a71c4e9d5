"""The API key appears nowhere but in the Authorization header, whatever goes wrong.

A sync runs with a recognisable key through network faults, hostile
answers, refused and failed rows, and an invalid key; every text a person or
a log collector could see is then scanned for the key: each log record
(message, arguments, exception text) at DEBUG, ``repr``/``str`` of clients,
reports, results and errors (their causes and attributes included),
``report.summary()``, the CSV and JSONL failure exports, and the exceptions
raised for an invalid key.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kustomer_activations import (
    AuthenticationError,
    KustomerError,
    Outcome,
    SyncAbortedError,
    SyncReport,
    UpsertResult,
)
from kustomer_activations.testing import DEFAULT_ROLES, Fault, KustomerEmulator

from ..helpers import drive
from ._harness import Run, check_run, new_client, new_emulator, rows_for, seed, sync, upsert_one
from ._hostile import HostileTransport

TAIL = "7Qm2ZxV9pLk4Rt8Wc3Nb6Hy1"
KEY = f"sk-SECRET-{TAIL}"
WRONG_TAIL = "J5sD0fG8hK2lP4oI6uY9tR3e"
WRONG_KEY = f"sk-SECRET-{WRONG_TAIL}"
#: What must never show: both keys, and their secret parts on their own.
SECRETS = (KEY, TAIL, WRONG_KEY, WRONG_TAIL)
LOGGER = "kustomer_activations"


# -- collecting every text ---------------------------------------------------------------

def _exception_texts(exc: BaseException, seen: set[int]) -> Iterator[str]:
    if id(exc) in seen:
        return
    seen.add(id(exc))
    yield str(exc)
    yield repr(exc)
    yield "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for name, value in vars(exc).items():
        if isinstance(value, BaseException):
            yield from _exception_texts(value, seen)
        elif isinstance(value, SyncReport):
            yield from texts_of(value, seen)
        else:
            yield f"{name}={value!r}"
    for attribute in ("errors", "headers", "body", "report"):
        value = getattr(exc, attribute, None)
        if value is not None:
            yield repr(value)
    for inner in (exc.__cause__, exc.__context__, *getattr(exc, "exceptions", ())):
        if inner is not None:
            yield from _exception_texts(inner, seen)


def texts_of(obj: Any, seen: set[int] | None = None) -> Iterator[str]:
    """``str``/``repr`` of ``obj`` and of everything it carries that a person could print."""
    seen = set() if seen is None else seen
    if isinstance(obj, BaseException):
        yield from _exception_texts(obj, seen)
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield str(obj)
    yield repr(obj)
    if isinstance(obj, SyncReport):
        yield obj.summary()
        yield repr(obj.to_dict())
        for failure in obj.failures:
            yield from texts_of(failure, seen)
    elif isinstance(obj, UpsertResult):
        yield obj.describe()
        yield repr(obj.source)
        if obj.error is not None:
            yield from _exception_texts(obj.error, seen)


def log_texts(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        yield record.getMessage()
        yield str(record.msg)
        yield repr(record.args)
        yield formatter.format(record)
        if record.exc_info:
            yield formatter.formatException(record.exc_info)
        if record.exc_text:
            yield record.exc_text


def leaks(texts: Iterable[str]) -> list[str]:
    """Texts that hold a secret (shortened around it)."""
    found = []
    for text in texts:
        for secret in SECRETS:
            at = text.find(secret)
            if at >= 0:
                found.append(f"...{text[max(0, at - 80):at + len(secret) + 40]}...")
                break
    return found


# -- the scenario --------------------------------------------------------------------------

def _org() -> tuple[KustomerEmulator, HostileTransport]:
    emu = new_emulator(api_keys={KEY: list(DEFAULT_ROLES)})
    emu.faults.add(Fault.status(503), match="POST /v1/customers/search", times=1)
    emu.faults.add(Fault.rate_limit(retry_after=2), match="POST /v1/customers/bulk", times=1)
    emu.faults.add(Fault.lost_response(), match="POST /v1/customers/bulk", times=1)
    emu.faults.add(Fault.timeout(), match="GET /v1/bulk/", times=1)
    emu.faults.add(Fault.connection_reset(), match="GET /v1/bulk/", times=1)
    hostile = HostileTransport(emu.transport)
    hostile.add("POST", r"/v1/customers/search", "html_502", times=1, skip=1)
    hostile.add("GET", r"/v1/bulk/[^/]+", "418_json", times=1, after_apply=True)
    hostile.add("GET", r"/v1/bulk/[^/]+/batches", "truncated_json", times=1, after_apply=True)
    # One chunk's lookups always fail (rows failed with a 502 page); one update is refused.
    hostile.add("POST", r"/v1/customers/search", "html_502", times=None,
                when=lambda request: b'"ext-45"' in request.content)
    hostile.add("PUT", r"/v1/customers/(?!bulk$)[^/=]+", "418_json", times=None)
    return emu, hostile


def _rows(emu: KustomerEmulator) -> list[dict[str, Any]]:
    rows = rows_for(160)
    seed(emu, rows[150:151])                      # one update: answered 418
    emu.seed_customer({"name": "Owner", "emails": [{"email": "taken@example.com"}]})
    rows.append({"externalId": "steals", "name": "Steals an email",
                 "emails": [{"email": "taken@example.com"}]})   # rejected: duplicate email
    rows.append({"externalId": "long", "name": "x" * 300})        # invalid: name too long
    rows.append(dict(rows[0]))                                     # invalid: repeated key
    return rows


def test_the_key_never_leaks_through_faults_failures_and_exports(
    flavor: str, caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, kustomer_activations at DEBUG included
    emu, hostile = _org()
    rows = _rows(emu)
    client = new_client(flavor, emu, hostile, api_key=KEY)
    texts: list[str] = [*texts_of(client), repr(client.with_options(max_retries=1))]

    run = sync(flavor, client, emu, rows, "externalId", chunk_size=40)
    streamed = sync(flavor, new_client(flavor, emu, hostile, api_key=KEY), emu,
                    rows_for(30, start=500), "externalId", via="stream")
    single = upsert_one(flavor, client, emu, rows_for(1, start=150)[0], "externalId")
    checked = drive(flavor, client, lambda c: c.check())
    for done in (run, streamed, single):
        texts += texts_of(done.error) if done.error is not None else []
        for result in done.results or []:
            texts += texts_of(result)
    report = run.report
    assert report is not None
    texts += texts_of(report)
    texts += texts_of(checked)
    for name in ("failures.csv", "failures.jsonl"):
        assert report.export_failures(tmp_path / name) == len(report.failures)
        texts.append((tmp_path / name).read_text(encoding="utf-8"))

    records = list(caplog.records)
    assert any(r.name == LOGGER and r.levelno == logging.DEBUG for r in records)
    assert any(r.name == LOGGER and r.levelno >= logging.INFO for r in records), "no retry was logged"
    texts += log_texts(records)
    texts.append(caplog.text)

    assert not leaks(texts), "the API key leaked:\n" + "\n".join(leaks(texts)[:10])
    # The key did go out, where it belongs and only there.
    assert hostile.requests
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in hostile.requests)
    assert not leaks(str(r.url) for r in hostile.requests)
    # The scan saw failures of every kind, and the sync kept its promises through all of it.
    # The row that steals an email is rejected, or, when its bulk job's answer was the one
    # lost (which job that is depends on how the writer filled them), failed "may have been
    # written": a duplicate refusal after a lost answer could be our own write.
    steals = [f for f in report.failures if f.key_value == "steals"]
    assert report.failed >= 40 and report.invalid >= 2, run.describe()
    assert len(steals) == 1 and steals[0].outcome in (Outcome.REJECTED, Outcome.FAILED), run.describe()
    assert any(f.error is not None for f in report.failures)
    for done in (run, streamed, single):
        assert done.error is None, done.describe()
        check_run(emu, done).assert_ok(done.describe())


def test_an_invalid_key_is_never_echoed(flavor: str, caplog: pytest.LogCaptureFixture,
                                        tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    emu = new_emulator(api_keys={KEY: list(DEFAULT_ROLES)})
    client = new_client(flavor, emu, api_key=WRONG_KEY)
    texts: list[str] = list(texts_of(client))

    run = sync(flavor, client, emu, rows_for(60), "externalId", validate_fields=False,
               chunk_size=20, concurrency=2)
    assert isinstance(run.error, SyncAbortedError), run.describe()
    assert isinstance(run.error.__cause__, AuthenticationError)
    texts += texts_of(run.error)
    run.error.report.export_failures(tmp_path / "aborted.jsonl")
    run.error.report.export_failures(tmp_path / "aborted.csv")
    texts += [(tmp_path / n).read_text(encoding="utf-8") for n in ("aborted.jsonl", "aborted.csv")]

    single = upsert_one(flavor, client, emu, rows_for(1)[0], "externalId")
    assert isinstance(single.error, AuthenticationError), single.describe()
    texts += texts_of(single.error)
    with pytest.raises(AuthenticationError) as info:
        drive(flavor, client, lambda c: c.check())
    texts += texts_of(info.value)
    # The custom-attribute check comes first: its 401 may be raised as is or as an abort.
    with pytest.raises((SyncAbortedError, AuthenticationError)) as aborted:
        drive(flavor, client, lambda c: c.customers.upsert_many(rows_for(5), key="externalId"))
    texts += texts_of(aborted.value)

    texts += log_texts(caplog.records)
    texts.append(caplog.text)
    assert "401" in str(run.error)
    assert not leaks(texts), "the API key leaked:\n" + "\n".join(leaks(texts)[:10])
    check_run(emu, run).assert_ok(run.describe())
    check_run(emu, single).assert_ok(single.describe())


def test_the_scanner_finds_a_planted_key(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """Without this, a scanner that reads nothing would pass the tests above."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger(LOGGER).debug("sending %s", {"Authorization": f"Bearer {KEY}"})
    assert leaks(log_texts(caplog.records))
    error = KustomerError("boom")
    error.headers = {"authorization": WRONG_KEY}  # type: ignore[attr-defined]
    assert leaks(texts_of(error))
    try:
        try:
            raise RuntimeError(f"token {TAIL}")
        except RuntimeError as inner:
            raise KustomerError("wrapped") from inner
    except KustomerError as outer:
        assert leaks(texts_of(outer))
    result = UpsertResult(outcome=Outcome.FAILED, object_type="customer",
                          reason="x", source={"note": KEY})
    report = SyncReport()
    report.add(result)
    assert leaks(texts_of(report))
    report.export_failures(tmp_path / "f.csv")
    assert leaks([(tmp_path / "f.csv").read_text(encoding="utf-8")])
    assert leaks(texts_of(Run(rows=[], key="externalId", before={}, error=error).error))
