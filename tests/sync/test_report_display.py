"""How a sync's report reads: summaries, notebook displays, DataFrames and ``keep=``."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from kustomer_activations import Outcome, SyncReport, UpsertResult
from kustomer_activations.check import ConnectionCheck
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, make_client


def _client(flavor: str, emu: KustomerEmulator, **options: Any) -> Any:
    options.setdefault("clock", emu.clock)
    return make_client(flavor, transport=emu.transport, base_url=emu.base_url, **options)


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"externalId": f"e-{i}", "name": f"Person {i}"} for i in range(n)]


def _sync(flavor: str, client: Any, rows: Any, **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client, lambda c: c.customers.upsert_many(rows, **kw))
    return report


def _report(rows: int, duration: float, **kw: Any) -> SyncReport:
    report = SyncReport(object_type="customer", key="externalId", duration=duration, **kw)
    for i in range(rows):
        report.add(UpsertResult(outcome=Outcome.CREATED, object_type="customer", row=i, id=f"id{i}"))
    return report


# -- summaries (defect 8) ---------------------------------------------------------------


def test_summary_says_one_row_and_one_request() -> None:
    report = _report(1, 0.2, requests=1)
    lines = report.summary().splitlines()
    assert lines[0] == "customer sync on externalId (upsert): 1 row: created 1"
    assert lines[1].startswith("1 request (1.000/row), 0.2 s")


@pytest.mark.parametrize(("rows", "duration"), [(3, 0.000154), (99, 30.0), (5000, 0.9)])
def test_no_rate_for_tiny_runs(rows: int, duration: float) -> None:
    report = _report(rows, duration, requests=2)
    assert "rows/min" not in report.summary()
    assert report.rate_text() == "—"


def test_rate_for_a_measurable_run() -> None:
    report = _report(1000, 30.0, requests=20)
    assert report.rate_text() == "2,000 rows/min"
    assert "1,000 rows: created 1,000" in report.summary()
    assert ", 30.0 s, 2,000 rows/min" in report.summary()


def test_summary_says_simulated_seconds_on_an_emulator_clock(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    report = _sync(flavor, _client(flavor, emu), _rows(3))
    assert report.simulated
    assert " s simulated" in report.summary()
    assert report.to_dict()["simulated"] is True


def test_summary_says_nothing_of_simulation_on_the_system_clock(flavor: str) -> None:
    emu = KustomerEmulator(bulk_delay=0.0, bulk_item_delay=0.0)
    report = _sync(flavor, _client(flavor, emu, clock=None), _rows(2))
    assert report.created == 2
    assert not report.simulated
    assert "simulated" not in report.summary()


# -- keep= and DataFrames ---------------------------------------------------------------


def _mixed_rows() -> list[Any]:
    return [*_rows(3), {"name": "no key"}, "not a row"]


def test_keep_all_keeps_every_row_in_row_order(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    report = _sync(flavor, _client(flavor, emu), _mixed_rows(), keep="all")
    assert [(r.row, r.outcome) for r in report.row_results] == [
        (0, Outcome.CREATED), (1, Outcome.CREATED), (2, Outcome.CREATED),
        (3, Outcome.INVALID), (4, Outcome.INVALID)]
    stored = {doc["externalId"]: doc["id"] for doc in emu.customers.all()}
    assert [r.id for r in report.row_results[:3]] == [stored["e-0"], stored["e-1"], stored["e-2"]]
    assert report.row_results[0].source is None  # successes do not keep a copy of the input row
    assert report.row_results[3].source == {"name": "no key"}


def test_by_default_only_failures_are_kept(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    report = _sync(flavor, _client(flavor, emu), _mixed_rows())
    assert report.keep == "failures"
    assert [r.row for r in report.row_results] == [3, 4]


def test_stream_upsert_fills_a_report_with_keep_all(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    client = _client(flavor, emu)
    report = SyncReport()

    def run_sync(c: Any) -> list[int | None]:
        with c.customers.stream_upsert(_rows(2), report=report, keep="all") as results:
            return sorted(r.row for r in results)

    async def run_async(c: Any) -> list[int | None]:
        async with c.customers.stream_upsert(_rows(2), report=report, keep="all") as results:
            return sorted([r.row async for r in results])

    assert drive(flavor, client, run_sync if flavor == "sync" else run_async) == [0, 1]
    assert [r.outcome for r in report.row_results] == [Outcome.CREATED, Outcome.CREATED]


def test_keep_applies_to_the_report_given_and_is_checked() -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    client = _client("sync", emu)
    report = SyncReport()
    assert client.customers.upsert_many(_rows(2), report=report, keep="all") is report
    assert [r.outcome for r in report.row_results] == [Outcome.CREATED, Outcome.CREATED]
    with pytest.raises(ValueError, match="keep must be 'failures' or 'all', not 'everything'"):
        client.customers.upsert_many(_rows(1), keep="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep must be"):
        SyncReport(keep="everything")  # type: ignore[arg-type]


def test_to_pandas_has_one_line_per_kept_row(flavor: str) -> None:
    pandas = pytest.importorskip("pandas")
    emu = KustomerEmulator(clock=VirtualClock())
    report = _sync(flavor, _client(flavor, emu), _mixed_rows(), keep="all")
    frame = report.to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["row"]) == [0, 1, 2, 3, 4]
    assert list(frame["outcome"]) == ["created"] * 3 + ["invalid"] * 2
    assert frame["key_value"].iloc[1] == "e-1"
    assert "sync key externalId" in frame["reason"].iloc[3]
    assert "got str" in frame["reason"].iloc[4]


def test_to_polars_has_the_same_table() -> None:
    polars = pytest.importorskip("polars")
    emu = KustomerEmulator(clock=VirtualClock())
    report = _sync("sync", _client("sync", emu), _mixed_rows())
    frame = report.to_polars()
    assert isinstance(frame, polars.DataFrame)
    assert frame["row"].to_list() == [3, 4]
    assert frame["outcome"].to_list() == ["invalid", "invalid"]
    assert frame.columns == list(report.to_pandas().columns) if "pandas" in sys.modules else True


@pytest.mark.parametrize(("method", "extra"), [("to_pandas", "pandas"), ("to_polars", "polars")])
def test_dataframe_without_the_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, method: str, extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # "import pandas" now raises ImportError
    with pytest.raises(ImportError, match=rf"pip install 'kustomer-activations\[{extra}\]'"):
        getattr(_report(1, 1.0), method)()


# -- notebook displays ------------------------------------------------------------------


class _Printer:
    def __init__(self) -> None:
        self.out = ""

    def text(self, value: str) -> None:
        self.out += value


def _pretty(obj: Any) -> str:
    printer = _Printer()
    obj._repr_pretty_(printer, False)
    return printer.out


def test_report_html_shows_counts_cost_and_escaped_failures(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    rows = [*_rows(2), {"externalId": "e-9", "name": "N", "<script>": "&"}]
    report = _sync(flavor, _client(flavor, emu), rows)
    page = report._repr_html_()
    assert "<td>created</td><td>2</td>" in page
    assert "<td>invalid</td><td>1</td>" in page
    assert f"<th>requests</th><td>{report.requests:,}" in page
    assert "<th>rate</th><td>—</td>" in page
    assert "simulated" in page
    assert "unknown customer field &#x27;&lt;script&gt;&#x27;" in page  # escaped: no markup from data
    assert "<script>" not in page


def test_report_html_lists_at_most_five_failures() -> None:
    report = SyncReport(object_type="customer", key="externalId")
    for i in range(7):
        report.add(UpsertResult(outcome=Outcome.FAILED, object_type="customer", row=i, reason=f"r{i}"))
    page = report._repr_html_()
    assert "<td>r4</td>" in page and "<td>r5</td>" not in page
    assert "and 2 more failures" in page
    assert "7 rows failed" in page


def test_report_pretty_is_the_summary() -> None:
    report = _report(2, 0.5, requests=1)
    assert _pretty(report) == report.summary()


def test_upsert_result_displays(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    client = _client(flavor, emu)
    result = drive(flavor, client, lambda c: c.customers.upsert({"externalId": "a&b", "name": "Ada"}))
    assert result.outcome is Outcome.CREATED
    assert _pretty(result) == f"customer created externalId='a&b' id={result.id}"
    page = result._repr_html_()
    assert "<th>outcome</th><td>created</td>" in page
    assert "externalId=a&amp;b" in page
    assert f"<th>id</th><td>{result.id}</td>" in page


def test_connection_check_displays_without_the_raw_token(flavor: str) -> None:
    emu = KustomerEmulator(clock=VirtualClock(), roles=["org.user.customer.read"])
    check: ConnectionCheck = drive(flavor, _client(flavor, emu), lambda c: c.check())
    assert not check.ok
    assert _pretty(check) == str(check)
    page = check._repr_html_()
    assert "<th>status</th><td>missing roles</td>" in page
    assert "org.admin.search.read" in page
    assert "Create a new API key" in page
    assert "test-key" not in page
