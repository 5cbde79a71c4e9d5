"""Crash safety of incremental syncs: a sync killed at any point, then run again, leaves
each record once, with the final values.

The emulator is served on loopback in this process; the sync runs in a
subprocess (``_crash_child.py``) with a state file, and is killed with
SIGKILL once the emulator has seen a given point of its traffic. Both run
on clocks 60 times faster than the wall clock, so a 60-second search settle
wait costs one real second. The run after the kill (in this process) must
report every row, create nothing twice and leave every record with the
final values.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kustomer_activations import Outcome
from kustomer_activations.state import SqliteStateStore
from kustomer_activations.testing import Fault, KustomerEmulator, ScaledClock

from ._crash_child import SCALE, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

CHILD = Path(__file__).with_name("_crash_child.py")
ROWS = 2_000
KNOWN = 800  # rows a first, complete run created: the killed run updates them by id

def _posts(c: dict[str, int]) -> int:
    return c.get("POST /v1/customers/bulk", 0)


def _reads(c: dict[str, int]) -> int:
    return c.get("GET /v1/bulk/{id}/batches", 0)


def _puts(c: dict[str, int]) -> int:
    return c.get("PUT /v1/customers/bulk", 0)


#: Where the child is killed, counted from the complete first run's traffic (``base``).
POINTS: dict[str, Callable[[dict[str, int], dict[str, int]], bool]] = {
    "before-any-bulk": lambda c, base: sum(c.values()) > sum(base.values()),
    "mid-bulk-submission": lambda c, base: _puts(c) >= 3,
    "after-submissions": lambda c, base: _puts(c) >= 8 and _posts(c) - _posts(base) >= 10,
    "mid-result-reads": lambda c, base: _reads(c) - _reads(base) >= 10,
    "near-the-end": lambda c, base: _reads(c) - _reads(base) >= 17,
}


def _emulator() -> KustomerEmulator:
    # A job of 100 items takes ~1 real second; search shows a write 0.5 real seconds late.
    return KustomerEmulator(clock=ScaledClock(SCALE), log_bodies=False, search_lag=30.0,
                            bulk_delay=30.0, bulk_item_delay=0.3, requests_per_minute=100_000,
                            searches_per_minute=10_000)


def _kill_at(emu: KustomerEmulator, url: str, state: Path,
             point: Callable[[dict[str, int], dict[str, int]], bool],
             base: dict[str, int]) -> int | None:
    """Start the child sync and SIGKILL it at ``point``; its return code (None: never reached)."""
    child = subprocess.Popen([sys.executable, str(CHILD), url, str(state), str(ROWS), "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30.0
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if point(emu.counts_by_endpoint(), base):
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        return child.wait(timeout=30.0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stderr is not None
        child.stderr.close()


CASES = [(where, False) for where in POINTS] + [
    (where, True) for where in ("mid-bulk-submission", "after-submissions", "mid-result-reads")]


@pytest.mark.parametrize(("where", "lost"), CASES,
                         ids=[f"{w}-{'lost-responses' if lost else 'clean'}" for w, lost in CASES])
def test_a_killed_sync_run_again_leaves_each_record_once(tmp_path: Path, where: str,
                                                         lost: bool) -> None:
    emu = _emulator()
    with emu.serve() as server:
        state = tmp_path / "state.db"
        first = run(server.url, str(state), KNOWN, 1)
        assert first.created == KNOWN
        base = emu.counts_by_endpoint()
        if lost:  # writes that land but whose answer never arrives
            emu.faults.add(Fault.lost_response(), match="POST /v1/customers/bulk", times=1)
            emu.faults.add(Fault.lost_response(), match="PUT /v1/customers/bulk", times=1)

        code = _kill_at(emu, server.url, state, POINTS[where], base)
        assert code == -signal.SIGKILL, f"the child was not killed at {where} (exit {code})"
        killed_at = emu.counts_by_endpoint()
        emu.faults.clear()
        pending = SqliteStateStore(state).summary().syncs[0].rows_pending
        if where != "before-any-bulk":  # the kill left writes announced and never concluded
            assert pending > 0, where

        report = run(server.url, str(state), ROWS, 2)
        after = Counter(emu.counts_by_endpoint())
        after.subtract(killed_at)

    outcomes = {r.key_value: r.outcome for r in report.row_results}
    assert report.rows == ROWS and len(outcomes) == ROWS
    assert not report.failures, [r.describe() for r in report.failures[:5]]
    assert set(outcomes.values()) <= {Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for doc in emu.customers.all():
        by_key.setdefault(doc["externalId"], []).append(doc)
    duplicates = {k: len(v) for k, v in by_key.items() if len(v) > 1}
    assert duplicates == {}, f"{len(duplicates)} keys held twice after a kill at {where}"
    assert len(by_key) == ROWS
    wrong = [k for k, (doc,) in by_key.items() if doc["name"] != f"Customer {k[4:]} v2"]
    assert wrong == [], wrong[:10]
    # The rerun wrote only what the killed run had not confirmed.
    summary = SqliteStateStore(state).summary().syncs[0]
    assert summary.rows_known == ROWS and summary.rows_failed == 0 and summary.rows_pending == 0
    assert summary.last_run is not None and summary.last_run.status == "succeeded"
    assert after.get("POST /v1/customers/bulk", 0) + after.get("POST /v1/customers", 0) <= ROWS
