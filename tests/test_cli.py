"""The command line: ``demo`` on the bundled sample, ``check``, ``emulator``, usage errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kustomer_activations import (
    SYNC_ROLES,
    KustomerClient,
    Outcome,
    Progress,
    cli,
    data,
    read_failures,
)
from kustomer_activations.data import _generate
from kustomer_activations.testing import KustomerEmulator, RealClock, VirtualClock

from .helpers import assert_link_refused, link_hidden, make_client

_SUMMARY = re.compile(r"^(company|customer) sync on externalId \(upsert\): (\d+) rows: (.*)$", re.M)
#: The reason each deliberately bad row must be reported with (field, words of the reason).
_REASONS = {
    23: ("emails[0].email", "must be an email address"),
    71: ("externalId", "duplicate sync key"),
    118: ("custom.vipBool", "not a boolean"),
    164: ("name", "at most 256 characters"),
    237: ("custom.signupAt", "day is out of range"),
}


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUSTOMER_API_KEY", raising=False)
    monkeypatch.delenv("KUSTOMER_BASE_URL", raising=False)


def _summaries(text: str) -> list[tuple[str, int, dict[str, int]]]:
    found = []
    for kind, rows, counts in _SUMMARY.findall(text):
        parsed = {name: int(n) for name, n in (part.rsplit(" ", 1) for part in counts.split(", "))}
        found.append((kind, int(rows), parsed))
    return found


def test_demo_syncs_the_sample_and_reports_the_bad_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, api_readings: str,
) -> None:
    failures = tmp_path / "failures.csv"
    code = cli.main(["demo", "--customers", "300", "--no-progress", "--scale", "30",
                     "--failures", str(failures)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no Kustomer credentials: syncing into the embedded emulator" in out
    assert "the sample includes 5 deliberately bad rows;" in out

    (company, cold, warm) = _summaries(out)
    assert company == ("company", 300, {"created": 300})
    assert cold[:2] == ("customer", 300) and sum(cold[2].values()) == 300
    assert cold[2] == {"created": 295, "invalid": 5}
    assert warm[:2] == ("customer", 300) and sum(warm[2].values()) == 300
    # The warm sync keeps the first sync's state store: only the 15 changed rows are
    # written, planned from the state (which knows each link the first sync set), so the
    # org hiding company links (strictest readings) changes nothing, and the 280
    # unchanged rows cost no request.
    assert warm[2] == {"updated": 15, "unchanged": 280, "invalid": 5}
    assert "0 requests for unchanged rows: 280 unchanged rows skipped by the state store" in out
    assert "15 changed rows updated by id in 2 requests, with no lookup" in out

    for row, (field, reason) in _REASONS.items():
        line = next(x for x in out.splitlines() if x.startswith(f"  row {row}: invalid"))
        assert f"field {field!r}" in line and reason in line, line
    assert "the emulator now holds 300 companies and 295 customers" in out
    assert "OK: the only failures are the sample's 5 deliberately bad rows" in out
    assert "refused for a hidden company link" not in out

    # --failures: the bad rows, as given, ready to be fixed and synced again
    with failures.open(encoding="utf-8", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert [int(r["_row"]) for r in exported] == sorted(_REASONS)
    assert {r["_outcome"] for r in exported} == {"invalid"}
    sample = data.load_customers(300)
    assert list(read_failures(failures)) == [sample[r] for r in sorted(_REASONS)]


def test_demo_fails_when_a_failure_is_not_one_of_the_deliberate_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = dict(data.BAD_CUSTOMER_ROWS)
    del bad[23]
    monkeypatch.setattr(data, "BAD_CUSTOMER_ROWS", bad)
    code = cli.main(["demo", "--customers", "100", "--no-progress", "--no-warm", "--scale", "30"])
    out = capsys.readouterr().out
    assert code == 1
    assert "UNEXPECTED" in out and "customer row 23: invalid" in out


def test_demo_with_a_key_still_uses_the_emulator_unless_live(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUSTOMER_API_KEY", "a-real-looking-key")
    code = cli.main(["demo", "--customers", "30", "--no-progress", "--no-warm", "--scale", "30"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "only with --live: syncing into the embedded emulator" in out
    assert "the sample includes 1 deliberately bad row;" in out


def test_demo_live_needs_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--live"]) == 2
    assert "--live needs an API key in KUSTOMER_API_KEY" in capsys.readouterr().err


def test_progress_display_draws_a_bar_on_a_tty_and_lines_elsewhere() -> None:
    def progress(done: int) -> Progress:
        return Progress(done=done, total=1000, elapsed=30.0, requests=done // 100,
                        counts={Outcome.CREATED: done})

    tty = io.StringIO()
    bar = cli.ProgressDisplay("customers", tty, tty=True, interval=0.0)
    for done in (100, 500, 1000):
        bar(progress(done))
    bar.close()
    drawn = tty.getvalue()
    assert drawn.count("\r") == 4 and drawn.endswith("\n") and drawn.count("\n") == 1
    assert "[############------------] 500/1,000 rows  50%, 1,000 rows/min, 5 requests" in drawn

    log = io.StringIO()
    lines = cli.ProgressDisplay("customers", log, tty=False)
    for done in range(100, 1001, 100):
        lines(progress(done))
    lines.close()
    assert [line.split(" rows")[0] for line in log.getvalue().splitlines()] == [
        "customers: 300/1,000", "customers: 500/1,000", "customers: 800/1,000",
        "customers: 1,000/1,000",
    ]
    assert "\r" not in log.getvalue()


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    emu = KustomerEmulator(clock=RealClock(), log_bodies=False,
                           api_keys={"good": list(SYNC_ROLES), "weak": ["org.user.customer.write"]})
    with emu.serve() as server:
        yield server.url


@pytest.mark.parametrize(("key", "code", "says", "stream"), [
    ("good", 0, "has every sync role", "out"),
    ("weak", 1, "lacks roles org.admin.klass.read", "out"),
    ("unknown", 1, "AuthenticationError", "err"),  # an error: one line on stderr
])
def test_check_against_a_served_emulator(
    served: str, key: str, code: int, says: str, stream: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUSTOMER_API_KEY", key)
    assert cli.main(["check", "--base-url", served]) == code
    captured = capsys.readouterr()
    text = getattr(captured, stream)
    assert says in text and served in text
    if stream == "err":
        assert captured.out == "" and text.count("\n") == 1


@pytest.mark.parametrize(("key", "code", "ok", "missing"), [
    ("good", 0, True, []),
    ("weak", 1, False, ["org.admin.klass.read"]),
])
def test_check_json(
    served: str, key: str, code: int, ok: bool, missing: list[str],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUSTOMER_API_KEY", key)
    assert cli.main(["check", "--base-url", served, "--json"]) == code
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is ok and result["base_url"] == served
    assert set(missing) <= set(result["missing_roles"]) and (missing == []) == (not result["missing_roles"])


def test_check_without_a_key_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--base-url", "http://127.0.0.1:9"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("kustomer-activations check: error: no API key: set KUSTOMER_API_KEY")


def test_emulator_delegates_the_remaining_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from kustomer_activations.testing import __main__ as emulator_main

    seen: list[tuple[list[str], str | None]] = []

    def fake_main(argv: list[str], *, prog: str | None = None) -> int:
        seen.append((list(argv), prog))
        return 0

    monkeypatch.setattr(emulator_main, "main", fake_main)
    assert cli.main(["emulator", "--port", "0", "--scale", "10"]) == 0
    assert cli.main(["emulator", "serve", "--help"]) == 0
    assert cli.main(["emulator", "serve", "--demo-attributes", "--port", "0"]) == 0
    assert seen[:2] == [(["--port", "0", "--scale", "10"], "kustomer-activations emulator"),
                        (["--help"], "kustomer-activations emulator serve")]
    argv, prog = seen[2]
    assert prog == "kustomer-activations emulator serve" and argv[:2] == ["--port", "0"]
    defined = [argv[i + 1] for i, a in enumerate(argv) if a == "--custom-attribute"]
    assert defined == [f"{k}:{n}={d}" for k, n, d in cli.DEMO_ATTRIBUTES]


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["demo", "--bogus"], ["demo", "--customers", "0"],
    ["demo", "--scale", "-2"], ["check", "--org", "acme", "--region", "eu"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert "usage: kustomer-activations" in capsys.readouterr().err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kustomer-activations ")


def test_sample_data_is_reproducible_and_small() -> None:
    assert _generate.main(["--check"]) == 0
    here = Path(data.__file__).parent
    assert sum((here / name).stat().st_size for name in (data.COMPANIES_FILE, data.CUSTOMERS_FILE)) \
        < 400_000
    companies, customers = data.load_companies(), data.load_customers()
    assert len(companies) == 300 and len(customers) == 3000
    assert all(3 <= len(c["name"]) <= 255 for c in companies)
    company_ids = {c["id"] for c in companies}
    assert all(c["company_id"] in company_ids for c in customers if c["company_id"])
    good = [c for i, c in enumerate(customers) if i not in data.BAD_CUSTOMER_ROWS]
    assert len({c["id"] for c in good}) == len(good)
    assert len({c["email"] for c in customers}) == len(customers)
    phones = [c["phone"] for c in customers if c["phone"]]
    assert len(set(phones)) == len(phones) < len(customers)


def test_python_dash_m_runs_the_demo() -> None:
    # The subprocess inherits KUSTOMER_EMULATOR_READINGS: the demo passes under each reading.
    env = {k: v for k, v in os.environ.items() if k not in ("KUSTOMER_API_KEY", "KUSTOMER_BASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "kustomer_activations", "demo", "--customers", "200", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "customer sync on externalId (upsert): 200 rows: created 196, invalid 4" in done.stdout
    assert done.stderr == ""


def test_demo_mapping_under_a_hidden_company_link() -> None:
    """The demo's mapping on two sample customers, one without a company, one with."""
    emu = KustomerEmulator(clock=VirtualClock())
    for kind, name, display_name in cli.DEMO_ATTRIBUTES:
        emu.define_custom_attribute(kind, name, displayName=display_name)
    sample = data.load_customers(4)
    alone, member = sample[0], sample[3]
    assert alone["company_id"] == "" and member["company_id"] == "co-0002"
    co = emu.seed_company({"name": "Nimbus Supply", "externalId": "co-0002"})
    client = make_client("sync", transport=emu.transport, base_url=emu.base_url, clock=emu.clock)
    assert isinstance(client, KustomerClient)
    cold = client.customers.upsert_many([alone, member], key="externalId",
                                        mapping=cli.customer_mapping())
    assert cold.created == 2 and cold.ok, cold.summary()
    [alone_id] = [c["id"] for c in emu.find_customers(externalId=alone["id"])]
    [member_id] = [c["id"] for c in emu.find_customers(externalId=member["id"])]
    assert (emu.customers[alone_id]["company"], emu.customers[member_id]["company"]) == (None, co)

    before = emu.customers[alone_id]
    changed = [dict(row, lifetime_value="1.00") for row in (alone, member)]
    warm = client.customers.upsert_many(changed, key="externalId", mapping=cli.customer_mapping())
    by_row = {f.row: f for f in warm.failures}
    assert emu.customers[member_id]["custom"]["lifetimeValueNum"] == 1.0
    assert emu.customers[member_id]["company"] == co
    if link_hidden(emu):
        # A blank company_id does not set the link, no answer shows it: the row is refused.
        assert (warm.updated, warm.failed, warm.rows) == (1, 1, 2), warm.summary()
        assert_link_refused(by_row[0], alone_id, before, emu.customers[alone_id])
    else:
        assert (warm.updated, warm.rows) == (2, 2) and warm.ok, warm.summary()
        assert emu.customers[alone_id]["custom"]["lifetimeValueNum"] == 1.0
        assert emu.customers[alone_id]["company"] is None
