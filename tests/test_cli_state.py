"""The command line's incremental syncs: ``sync --state`` twice, ``state summary``, ``state reset``."""

from __future__ import annotations

import json
from pathlib import Path

from kustomer_activations.testing import KustomerEmulator

from .test_cli_sync import KEY_ENV, MAP, emu, people, run, url  # noqa: F401  (fixtures)


def test_a_second_sync_with_state_sends_nothing_for_unchanged_rows(
    emu: KustomerEmulator, url: str, people: Path, tmp_path: Path,  # noqa: F811
) -> None:
    state = tmp_path / "state.sqlite"
    args = ["sync", str(people), "--object", "customer", *MAP, "--base-url", url,
            "--state", str(state), "--json", "--no-progress"]
    first = run(*args, env=KEY_ENV)
    assert first.returncode == 1, first.stderr  # the row with a bad email is invalid
    assert json.loads(first.stdout)["counts"]["created"] == 2
    before = len(emu.requests)
    second = run(*args, env=KEY_ENV)
    report = json.loads(second.stdout)
    assert report["counts"]["unchanged"] == 2 and report["counts"]["created"] == 0
    # The metadata read is the only request: no lookup, no write for unchanged rows.
    assert [r.endpoint for r in emu.requests[before:]] == ["GET /v1/metadata/{resource}"]

    summary = run("state", "summary", str(state), "--json")
    assert summary.returncode == 0, summary.stderr
    syncs = json.loads(summary.stdout)
    assert [(s["sync"], s["object_type"], s["rows_known"]) for s in syncs] == [
        ("default", "customer", 2)]
    text = run("state", "summary", str(state))
    assert "2 rows known" in text.stdout

    reset = run("state", "reset", str(state), "--sync-name", "default")
    assert reset.returncode == 0 and "2 rows removed" in reset.stdout, reset.stderr
    third = run(*args, env=KEY_ENV)
    counts = json.loads(third.stdout)["counts"]
    assert counts["unchanged"] == 2  # looked up again: Kustomer already holds them
    assert any(r.endpoint == "POST /v1/customers/search" for r in emu.requests[before:])


def test_state_commands_check_their_arguments(tmp_path: Path) -> None:
    missing = run("state", "summary", str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "s.sqlite").write_bytes(b"")
    no_name = run("state", "reset", str(tmp_path / "s.sqlite"))
    assert no_name.returncode == 2 and "--sync-name" in no_name.stderr
    source = tmp_path / "rows.csv"
    source.write_text("externalId,name\nc-1,Ann\n", encoding="utf-8")
    alone = run("sync", str(source), "--object", "customer", "--retry-failed-only",
                "--base-url", "http://127.0.0.1:9", env=KEY_ENV)
    assert alone.returncode == 2 and "--state" in alone.stderr, alone.stderr
