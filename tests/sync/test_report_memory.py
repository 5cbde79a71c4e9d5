"""What a report keeps per row: failures only, at most ``max_failures``, without tracebacks."""

from __future__ import annotations

import gc

import httpx

from kustomer_activations import KustomerClient, Outcome, SyncReport
from kustomer_activations.sync.report import DEFAULT_MAX_FAILURES
from kustomer_activations.testing import Fault, KustomerEmulator, VirtualClock
from kustomer_activations.upsert.batch import Row


def _client(emu: KustomerEmulator, **options: object) -> KustomerClient:
    return KustomerClient(api_key="k", base_url=emu.base_url, clock=emu.clock,
                          http_client=httpx.Client(transport=emu.transport), **options)


def test_a_report_keeps_at_most_max_failures_and_counts_the_rest() -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    # Every third row has no key: invalid, refused before sending.
    rows = ({"name": f"n{i}", **({"externalId": f"e{i}"} if i % 3 else {})} for i in range(60))
    report = _client(emu).customers.upsert_many(rows, report=SyncReport(max_failures=4))
    assert (report.created, report.invalid, report.rows) == (40, 20, 60)
    assert [f.row for f in report.failures] == [0, 3, 6, 9]  # the first ones
    assert report.failures_dropped == 16
    assert report.failed_rows == 20 and not report.ok
    assert "16 more failed rows counted but not kept (max_failures=4)" in report.summary()
    assert report.to_dict()["failures_dropped"] == 16


def test_by_default_every_failure_is_kept_and_no_success() -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    rows = ({"name": f"n{i}", **({"externalId": f"e{i}"} if i % 2 else {})} for i in range(50))
    report = _client(emu).customers.upsert_many(rows)
    assert report.max_failures == DEFAULT_MAX_FAILURES
    assert (report.created, len(report.failures), report.failures_dropped) == (25, 25, 0)
    assert all(f.outcome is Outcome.INVALID for f in report.failures)
    assert "not kept" not in report.summary()


def test_a_kept_failure_does_not_keep_its_chunk_alive() -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    emu.faults.add(Fault.status(500), match="POST /v1/customers/search", times=None)
    rows = ({"externalId": f"e{i}", "name": f"n{i}"} for i in range(300))
    report = _client(emu, max_retries=0).customers.upsert_many(rows, chunk_size=50)
    assert report.failed == 300
    assert all(f.error is not None and f.error.__traceback__ is None for f in report.failures)
    gc.collect()
    # The error's traceback held the flow's frames, and they every Row of the chunk.
    assert not [o for o in gc.get_objects() if isinstance(o, Row)]
