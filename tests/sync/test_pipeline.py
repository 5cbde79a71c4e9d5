"""The pipelined writer: jobs filled across chunks, one read per job, bounded jobs in flight."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kustomer_activations import Outcome, SyncKey, SyncReport
from kustomer_activations.mapping import MappedRecord
from kustomer_activations.testing import KustomerEmulator, ScaledClock, VirtualClock
from kustomer_activations.upsert.batch import ChunkContext, Row, Writer, _Write
from kustomer_activations.upsert.kinds import CUSTOMER

from ..helpers import drive, make_client
from ..reliability._hostile import HostileTransport


def _emulator(**options: Any) -> KustomerEmulator:
    options.setdefault("clock", VirtualClock())
    return KustomerEmulator(**options)


def _client(flavor: str, emu: KustomerEmulator, **options: Any) -> Any:
    return make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock,
                       **options)


def _rows(n: int, start: int = 0, renamed: set[int] | None = None) -> list[dict[str, Any]]:
    renamed = renamed or set()
    return [{"externalId": f"ext-{i}",
             "name": f"Customer {i}" + (" (renamed)" if i in renamed else "")}
            for i in range(start, start + n)]


def _sync(flavor: str, client: Any, rows: Any, **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client,
                               lambda c: c.customers.upsert_many(rows, key="externalId", **kw))
    return report


def _seed(emu: KustomerEmulator, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        emu.seed_customer(dict(row))


def test_a_warm_sync_fills_one_job_across_chunks(flavor: str) -> None:
    emu = _emulator()
    _seed(emu, _rows(2_000))
    changed = set(range(0, 2_000, 50))  # 40 changes, 10 in each chunk of 500
    report = _sync(flavor, _client(flavor, emu), _rows(2_000, renamed=changed), chunk_size=500)
    assert report.updated == 40 and report.unchanged == 1_960
    counts = emu.counts_by_endpoint()
    # One job of 40 items, not four jobs of 10 (one per chunk), read once.
    assert counts.get("PUT /v1/customers/bulk") == 1, counts
    assert counts.get("GET /v1/bulk/{id}/batches") == 1, counts
    assert "GET /v1/bulk/{id}" not in counts, counts
    assert all(emu.find_customers(externalId=f"ext-{i}")[0]["name"].endswith("(renamed)")
               for i in changed)


def test_each_job_is_read_once_without_status_polls(flavor: str) -> None:
    emu = _emulator()
    report = _sync(flavor, _client(flavor, emu), _rows(1_500), chunk_size=500)
    assert report.created == 1_500
    counts = emu.counts_by_endpoint()
    jobs = counts["POST /v1/customers/bulk"]
    assert jobs == 15, counts
    # The first job teaches the finish time; at most one read of one job comes early.
    assert jobs <= counts["GET /v1/bulk/{id}/batches"] <= jobs + 1, counts
    assert "GET /v1/bulk/{id}" not in counts, counts


def test_a_small_sync_uses_single_requests(flavor: str) -> None:
    emu = _emulator()
    report = _sync(flavor, _client(flavor, emu), _rows(3))
    assert report.created == 3
    counts = emu.counts_by_endpoint()
    assert counts.get("POST /v1/customers") == 3, counts
    assert not any("bulk" in endpoint for endpoint in counts), counts
    # Single requests answer at once: no bulk job's seconds of queueing.
    assert report.duration < 1.0, report.summary()


def test_slow_jobs_do_not_hold_chunks_back(flavor: str) -> None:
    # Jobs that take 30 s: chunks keep deciding while earlier jobs run, so many more
    # jobs are in flight than there are chunk slots. On a VirtualClock any sleeper (a
    # job waiting 30 s) moves everyone's time, so this runs on scaled real time.
    emu = _emulator(bulk_delay=30.0, clock=ScaledClock(50))
    report = _sync(flavor, _client(flavor, emu), _rows(3_000), chunk_size=100, concurrency=2)
    assert report.created == 3_000
    submits = [r.time for r in emu.requests if r.endpoint == "POST /v1/customers/bulk"]
    assert len(submits) == 30
    # While the first job runs, chunks go on deciding and their jobs are submitted.
    while_first_runs = sum(1 for t in submits if t < submits[0] + 30.0)
    assert while_first_runs > 2 * 2, (while_first_runs, submits[:8])


@pytest.mark.parametrize("limit", [1, 3])
def test_jobs_in_flight_are_bounded(flavor: str, limit: int) -> None:
    emu = _emulator(bulk_delay=10.0)
    report = _sync(flavor, _client(flavor, emu), _rows(1_200), chunk_size=100,
                   max_jobs_in_flight=limit)
    assert report.created == 1_200
    jobs = sorted(emu._app.bulk.jobs.values(), key=lambda job: job.submitted)
    last_read = {job.id: max(r.time for r in emu.requests
                             if r.path == f"/v1/bulk/{job.id}/batches") for job in jobs}
    # When a job is submitted, the jobs still being read (their flow not ended) are in flight.
    peak = max(1 + sum(1 for earlier in jobs[:i] if last_read[earlier.id] > job.submitted)
               for i, job in enumerate(jobs))
    assert len(jobs) == 12
    assert peak <= limit, peak


def test_bulk_results_are_read_once_more_after_the_status_says_complete(flavor: str) -> None:
    # /batches keeps answering [] (never ready) for one job: after three such reads the
    # status is asked; "complete" leads to one more read, then lookups settle the rows.
    emu = _emulator()
    hostile = HostileTransport(emu.transport)

    def never_ready(request: httpx.Request, real: httpx.Response | None) -> httpx.Response:
        return httpx.Response(200, json=[], request=request)

    hostile.add("GET", r"/v1/bulk/[^/]+/batches", never_ready, times=4)
    client = make_client(flavor, transport=hostile, base_url=emu.base_url, clock=emu.clock)
    report = _sync(flavor, client, _rows(20))
    assert report.created == 20, report.summary()
    counts = emu.counts_by_endpoint()
    assert counts.get("GET /v1/bulk/{id}") == 1, counts
    assert len(emu.customers) == 20


# -- the Writer, on its own ----------------------------------------------------------------

def _ctx(**options: Any) -> ChunkContext:
    return ChunkContext(core=None, caches=None, kind=CUSTOMER, key=SyncKey.external_id(),  # type: ignore[arg-type]
                        mode="upsert", **options)


def _write(i: int, size: int = 10) -> _Write:
    payload = {"externalId": f"e{i}", "name": "x" * size}
    row = Row(index=i, source=payload, mapped=MappedRecord(payload=payload), key_value=f"e{i}",
              raw_key=f"e{i}")
    return _Write(row, payload, ("name",), Outcome.CREATED)


def test_writer_fills_batches_to_bulk_size_across_adds() -> None:
    writer = Writer(_ctx(bulk_size=10), linger=60.0)
    assert writer.add("create", [_write(i) for i in range(4)], now=0.0) == []
    full = writer.add("create", [_write(i) for i in range(4, 23)], now=1.0)
    assert [len(b.writes) for b in full] == [10, 10]
    assert len(writer) == 3
    assert writer.due(now=30.0) == []
    late = writer.due(now=62.0)  # the oldest held write (added at 1.0... or 0.0) waited 60 s
    assert [len(b.writes) for b in late] == [3]
    assert len(writer) == 0


def test_writer_keeps_each_batch_under_the_byte_budget() -> None:
    writer = Writer(_ctx(bulk_size=100, max_body_bytes=2_000), linger=60.0)
    batches = writer.add("create", [_write(i, size=300) for i in range(20)], now=0.0)
    batches += writer.drain()
    assert sum(len(b.writes) for b in batches) == 20
    assert all(b.nbytes <= 2_000 for b in batches), [b.nbytes for b in batches]
    assert len(batches) >= 4


def test_writer_drains_a_handful_as_single_requests() -> None:
    writer = Writer(_ctx(), small=5)
    writer.add("create", [_write(i) for i in range(3)], now=0.0)
    writer.add("update", [_write(i) for i in range(3, 12)], now=0.0)
    drained = {b.op: b for b in writer.drain()}
    assert drained["create"].singles and len(drained["create"].writes) == 3
    assert not drained["update"].singles and len(drained["update"].writes) == 9


class _Unreachable(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Refuses the first ``n`` bulk creates before they leave (as a full pool or a refused
    connection does), then lets everything through to the emulator."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.left = inner, n

    def _refuse(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path == "/v1/customers/bulk" and self.left:
            self.left -= 1
            raise httpx.ConnectError("connection refused", request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._refuse(request)
        response: httpx.Response = self.inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._refuse(request)
        response: httpx.Response = await self.inner.handle_async_request(request)
        return response


def test_a_bulk_request_that_never_left_is_sent_again_not_settled_by_lookups(flavor: str) -> None:
    emu = _emulator()
    client = make_client(flavor, transport=_Unreachable(emu.transport, 4), base_url=emu.base_url,
                         clock=emu.clock, max_retries=2)
    report = _sync(flavor, client, _rows(200))
    assert report.created == 200, report.summary()
    counts = emu.counts_by_endpoint()
    # Nothing reached Kustomer from the refused attempts: no lookups, no single creates.
    assert counts.get("POST /v1/customers/bulk") == 2, counts
    assert not any(endpoint.startswith("GET /v1/customers/") for endpoint in counts), counts
    assert "POST /v1/customers" not in counts, counts


def test_a_bulk_request_that_never_leaves_fails_its_rows_as_not_written(flavor: str) -> None:
    emu = _emulator()
    client = make_client(flavor, transport=_Unreachable(emu.transport, 1_000), base_url=emu.base_url,
                         clock=emu.clock, max_retries=1)
    report = _sync(flavor, client, _rows(100))
    assert report.failed == 100, report.summary()
    assert all("not written" in (f.reason or "") for f in report.failures)
    assert len(emu.customers) == 0
    assert not any(endpoint.startswith("GET /v1/customers/") for endpoint in emu.counts_by_endpoint())
