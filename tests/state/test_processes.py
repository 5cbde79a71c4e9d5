"""Two processes on one sync: the second is refused; a killed holder's lock is taken over."""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kustomer_activations.state import SqliteStateStore, SyncAlreadyRunningError

HOLDER = r"""
import sys
from kustomer_activations.state import Intent, SqliteStateStore
from kustomer_activations.results import Outcome
from kustomer_activations.state import StateOutcome

store = SqliteStateStore(sys.argv[1])
run = store.open_run("nightly", "customer", "externalId")
run.record_outcomes([StateOutcome(key_value="done", outcome=Outcome.CREATED, kustomer_id="id-done")])
run.record_intents([Intent(key_value="in-flight", op="create", ref="job-7")])
print("ready", flush=True)
sys.stdin.read()  # hold the lock until killed
"""


def _start_holder(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", f"the holder did not start: {line!r}"
    return child


def _digests(path: Path) -> dict[str, str]:
    files = [path, Path(f"{path}-wal")]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()}


def test_a_second_process_is_refused_then_takes_over_once_the_holder_dies(
        path: Path, caplog: pytest.LogCaptureFixture) -> None:
    child = _start_holder(path)
    try:
        store = SqliteStateStore(path)
        with pytest.raises(SyncAlreadyRunningError) as info:
            store.open_run("nightly", "customer", "externalId")
        err = info.value
        assert (err.sync, err.pid, err.host) == ("nightly", child.pid, socket.gethostname())
        assert f"process {child.pid} on {socket.gethostname()}" in str(err)
        # another sync in the same file is free to run
        store.open_run("weekly", "customer", "externalId").close(True)
    finally:
        child.kill()
        child.wait()

    # killed mid-run: its committed work and its intent survive; a dry run reads them
    # without changing the database or its write-ahead log
    before = _digests(path)
    with SqliteStateStore(path).open_run("nightly", "customer", "externalId", dry_run=True) as dry:
        assert [p.key_value for p in dry.pending()] == ["in-flight"]
    assert _digests(path) == before

    with caplog.at_level(logging.WARNING, logger="kustomer_activations.state"):
        run = store.open_run("nightly", "customer", "externalId")
    assert f"held by process {child.pid}" in caplog.text and "no longer exists" in caplog.text
    pending = list(run.pending())
    assert [(p.key_value, p.op, p.ref) for p in pending] == [("in-flight", "create", "job-7")]
    assert run.known(["done"])["done"].kustomer_id == "id-done"
    run.close(True)
    statuses = [s.last_run.status for s in store.summary().syncs if s.last_run]
    assert statuses == ["succeeded", "succeeded"]
    store.close()
