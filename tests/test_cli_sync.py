"""``kustomer-activations sync``, ``check --json`` and ``emulator serve``, run as subprocesses.

Each test drives ``python -m kustomer_activations`` against a served emulator and checks
what a user sees: the exit code, stdout versus stderr, the files written, and what the
emulator holds afterwards. Wrong arguments must fail before any request is sent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kustomer_activations import KustomerClient, Outcome, Progress, cli, read_failures
from kustomer_activations.testing import KustomerEmulator, RealClock

KEY_ENV = {"KUSTOMER_API_KEY": "any-key-works-on-the-emulator"}
PEOPLE = ("id,name,mail,tier\n"
          "c-1,Ada Lovelace,ada@example.com,gold\n"
          "c-2,Grace Hopper,grace@example.com,silver\n"
          "c-3,Bad Row,not-an-email,gold\n")
MAP = ["--map", "externalId=id", "--map", "name=name", "--map", "email=mail",
       "--map", "custom.tierStr=tier"]


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m kustomer_activations ARGS`` without the caller's KUSTOMER_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUSTOMER_")}
    return subprocess.run([sys.executable, "-m", "kustomer_activations", *args],
                          capture_output=True, text=True, env={**base, **(env or {})},
                          input=stdin, cwd=cwd, timeout=120, check=False)


@pytest.fixture
def emu() -> KustomerEmulator:
    emulator = KustomerEmulator(clock=RealClock(), log_bodies=False, readings="default")
    emulator.define_custom_attribute("customer", "tierStr", displayName="Tier")
    return emulator


@pytest.fixture
def url(emu: KustomerEmulator) -> Iterator[str]:
    with emu.serve() as server:
        yield server.url


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    return path


def _one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kustomer-activations ")
    for word in words:
        assert word in lines[0]
    return lines[0]


# -- a real sync into a served emulator ------------------------------------------------------

def test_sync_csv_into_a_served_emulator(
    emu: KustomerEmulator, url: str, people: Path, tmp_path: Path,
) -> None:
    failures = tmp_path / "failed.jsonl"
    done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url,
               "--failures", str(failures), "--json", env=KEY_ENV)
    assert done.returncode == 1, done.stderr  # one row failed
    report = json.loads(done.stdout)  # stdout holds the JSON report and nothing else
    assert report["rows"] == 3 and report["ok"] is False and report["exit_code"] == 1
    assert {k: v for k, v in report["counts"].items() if v} == {"created": 2, "invalid": 1}
    [bad] = report["failed_rows"]
    assert bad["row"] == 2 and bad["outcome"] == "invalid" and "email" in bad["reason"]
    assert report["failures_file"] == str(failures)

    [ada] = emu.find_customers(externalId="c-1")
    assert ada["name"] == "Ada Lovelace" and ada["custom"]["tierStr"] == "gold"
    assert [e["email"] for e in ada["emails"]] == ["ada@example.com"]
    assert len(emu.customers.all()) == 2
    assert list(read_failures(failures)) == [
        {"id": "c-3", "name": "Bad Row", "mail": "not-an-email", "tier": "gold"}]

    # the fixed file again: the two synced rows are unchanged, the fixed one is created
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(PEOPLE.replace("not-an-email", "bad@example.com"), encoding="utf-8")
    again = run("sync", str(fixed), "--object", "customer", *MAP, "--base-url", url,
                "--no-progress", env=KEY_ENV)
    assert again.returncode == 0, again.stderr
    assert "3 rows: created 1, unchanged 2" in again.stdout
    assert again.stderr == ""
    assert len(emu.customers.all()) == 3


def test_sync_jsonl_from_stdin_on_email_with_a_json_mapping(
    emu: KustomerEmulator, url: str, tmp_path: Path,
) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"email": "mail", "name": {"column": "full_name"},
                                   "custom.tierStr": "tier"}), encoding="utf-8")
    lines = "\n".join(json.dumps(r) for r in [
        {"mail": "ada@example.com", "full_name": "Ada", "tier": "gold"},
        {"mail": "grace@example.com", "full_name": "Grace", "tier": None},
    ]) + "\n"
    done = run("sync", "-", "--format", "jsonl", "--object", "customer", "--key", "email",
               "--mapping", str(mapping), "--base-url", url, "--no-progress",
               env=KEY_ENV, stdin=lines)
    assert done.returncode == 0, done.stderr
    assert "customer sync on email (upsert): 2 rows: created 2" in done.stdout
    [grace] = emu.find_customers(email="grace@example.com")
    assert grace["name"] == "Grace" and "tierStr" not in (grace.get("custom") or {})


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
def test_sync_csv_from_stdin_with_a_toml_mapping_and_dry_run(
    emu: KustomerEmulator, url: str, tmp_path: Path,
) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[map]\nexternalId = "id"\nname = "name"\n'
                       '"custom.tierStr" = { column = "tier", set_if_empty = true }\n',
                       encoding="utf-8")
    done = run("sync", "-", "--object", "customer", "--mapping", str(mapping), "--dry-run",
               "--base-url", url, "--json", env=KEY_ENV,
               stdin="id,name,tier\nc-1,Ada,gold\nc-2,Grace,\n")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True and report["counts"]["created"] == 2
    assert emu.customers.all() == []  # a dry run writes nothing


def test_columns_are_their_own_destinations_without_a_mapping(
    emu: KustomerEmulator, url: str, tmp_path: Path,
) -> None:
    source = tmp_path / "companies.csv"
    source.write_text("externalId,name\nco-1,Nimbus Supply\n", encoding="utf-8")
    done = run("sync", str(source), "--object", "company", "--base-url", url, "--no-progress",
               env=KEY_ENV)
    assert done.returncode == 0, done.stderr
    [company] = emu.companies.find(externalId="co-1")
    assert company["name"] == "Nimbus Supply"


def test_progress_goes_to_stderr_as_plain_lines_when_piped(url: str, people: Path) -> None:
    done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url, env=KEY_ENV)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("customer sync: ") for line in lines), done.stderr
    assert "\r" not in done.stderr
    assert lines[-1].startswith("customer sync: 3/3 rows 100%,") and "requests" in lines[-1]
    assert done.stdout.startswith("customer sync on externalId (upsert): 3 rows:")


# -- every argument is checked before any work ---------------------------------------------

@pytest.mark.parametrize(("extra", "words"), [
    (["--failures", "{tmp}/no-such-dir/failed.csv"], ["--failures", "does not exist"]),
    (["--failures", "{tmp}/failed.txt"], ["--failures", ".csv or .jsonl"]),
    (["--failures", "{tmp}"], ["--failures", "is a directory"]),
    (["--key", "phone"], ["--key phone", "unknown sync key"]),
    (["--key", "custom.tier"], ["--key custom.tier"]),
    (["--key", "custom.rankNum"], ["sync key custom.rankNum is not mapped"]),
    (["--map", "custom.tier=tier"], ["mapping:", "custom.tier"]),
    (["--map", "nickname=nick"], ["has no column nick", "its columns: id, name, mail, tier"]),
    (["--mapping", "{tmp}/missing.toml"], ["--mapping", "No such file"]),
    (["--mapping", "{tmp}/people.csv"], ["--mapping", ".toml or .json"]),
    (["--org", "acme.kustomerapp.com"], ["not an org name"]),
])
def test_bad_arguments_fail_before_any_request(
    emu: KustomerEmulator, url: str, people: Path, tmp_path: Path, extra: list[str],
    words: list[str],
) -> None:
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    host = [] if "--org" in extra else ["--base-url", url]
    done = run("sync", str(people), "--object", "customer", *MAP, *host, *extra, env=KEY_ENV)
    _one_error_line(done, "sync: error:", *words)
    assert emu.requests == []
    assert not (tmp_path / "no-such-dir").exists()


@pytest.mark.parametrize(("source", "fmt", "words"), [
    ("missing.csv", None, ["no such file"]),
    ("people.txt", None, ["cannot tell the format", "--format"]),
    ("bad.jsonl", None, ["line 2 is not JSON"]),
    ("list.jsonl", None, ["line 1 is a JSON list, not an object"]),
])
def test_bad_sources_fail_before_any_request(
    emu: KustomerEmulator, url: str, tmp_path: Path, source: str, fmt: str | None,
    words: list[str],
) -> None:
    (tmp_path / "people.txt").write_text(PEOPLE, encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"id": "c-1"}\n{"id": \n', encoding="utf-8")
    (tmp_path / "list.jsonl").write_text('["c-1"]\n', encoding="utf-8")
    done = run("sync", str(tmp_path / source), "--object", "customer", "--map", "externalId=id",
               "--base-url", url, env=KEY_ENV)
    _one_error_line(done, *words)
    assert emu.requests == []


def test_no_credentials_is_refused_with_what_to_do(emu: KustomerEmulator, url: str,
                                                  people: Path) -> None:
    done = run("sync", str(people), "--object", "customer", *MAP)
    line = _one_error_line(done, "no API key: set KUSTOMER_API_KEY", "demo", "emulator serve")
    assert "--base-url" in line
    # --api-key-env names the variable; an empty one is no key either
    done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url,
               "--api-key-env", "CRM_KEY", env={"CRM_KEY": " "})
    _one_error_line(done, "no API key: set CRM_KEY")
    assert emu.requests == []


def test_api_key_env_names_the_variable_and_the_key_is_never_printed(
    emu: KustomerEmulator, url: str, people: Path,
) -> None:
    secret = "sk-live-SECRET-123"
    done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url,
               "--api-key-env", "CRM_KEY", "--debug", env={"CRM_KEY": secret})
    assert done.returncode == 1, done.stderr
    assert len(emu.customers.all()) == 2
    assert secret not in done.stdout + done.stderr
    # --debug logs the requests, with the emails redacted
    assert "GET /v1/metadata/customer -> 200" in done.stderr
    assert "ada@example.com" not in done.stderr


def test_a_refused_key_is_a_configuration_error(people: Path) -> None:
    emu = KustomerEmulator(clock=RealClock(), api_keys={"good": ["org.user.customer.write"]})
    with emu.serve() as server:
        done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", server.url,
                   "--no-progress", env={"KUSTOMER_API_KEY": "wrong"})
    _one_error_line(done, "AuthenticationError")


def test_an_unreachable_host_is_named_and_debug_shows_the_traceback(people: Path) -> None:
    args = ["sync", str(people), "--object", "customer", *MAP, "--base-url",
            "http://127.0.0.1:9", "--no-progress"]
    done = run(*args, env=KEY_ENV)
    assert done.returncode == 1
    assert "no response from 127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
    debug = run(*args, "--debug", env=KEY_ENV)
    assert "Traceback (most recent call last)" in debug.stderr


def test_a_bad_state_path_fails_first(emu: KustomerEmulator, url: str, people: Path,
                                      tmp_path: Path) -> None:
    done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url,
               "--state", str(tmp_path / "nowhere" / "state.sqlite"), env=KEY_ENV)
    _one_error_line(done, "--state", "does not exist")


def test_state_skips_unchanged_rows_on_the_second_run(
    emu: KustomerEmulator, url: str, people: Path, tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    args = ["sync", str(people), "--object", "customer", *MAP, "--base-url", url,
            "--state", str(state), "--json", "--no-progress"]
    first = run(*args, env=KEY_ENV)
    assert first.returncode == 1 and state.exists(), first.stderr
    created = json.loads(first.stdout)["counts"]["created"]
    assert created > 0
    before = len(emu.requests)
    second = run(*args, env=KEY_ENV)
    counts = json.loads(second.stdout)["counts"]
    assert counts["created"] == 0 and counts["unchanged"] == created, counts
    # Unchanged rows cost nothing: the only request is the sync's one schema read.
    assert [r.endpoint for r in emu.requests[before:]] == ["GET /v1/metadata/{resource}"]


def test_ctrl_c_exits_130_with_the_report(emu: KustomerEmulator, url: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUSTOMER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kustomer_activations", "sync", "-", "--object", "customer",
         "--map", "externalId=id", "--base-url", url, "--no-progress"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**base, **KEY_ENV},
    )
    assert proc.stdin is not None
    proc.stdin.write("id\nc-1\n")
    proc.stdin.flush()
    # The sync has started once it asks for the metadata; stdin stays open, so it waits there.
    deadline = time.monotonic() + 60
    while not emu.requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err
    assert "CANCELLED" in out


# -- help, check --json, emulator serve --------------------------------------------------------

def test_help_names_the_program_under_python_dash_m() -> None:
    for args, usage in [(["--help"], "usage: kustomer-activations "),
                        (["sync", "--help"], "usage: kustomer-activations sync "),
                        (["emulator", "serve", "--help"], "usage: kustomer-activations emulator serve")]:
        done = run(*args)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(usage), done.stdout[:200]
    assert "--custom-attribute" in run("emulator", "serve", "--help").stdout


def test_usage_errors_exit_2() -> None:
    done = run("sync", "x.csv")
    assert done.returncode == 2
    assert "usage: kustomer-activations sync" in done.stderr and "--object" in done.stderr
    assert run("sync", "x.csv", "--object", "customer", "--map", "nonsense").returncode == 2


def test_check_json_against_a_served_emulator(url: str) -> None:
    done = run("check", "--base-url", url, "--json", env=KEY_ENV)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["missing_roles"] == [] and result["base_url"] == url


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUSTOMER_")}
    proc = subprocess.Popen([sys.executable, "-m", "kustomer_activations", "emulator", "serve",
                             "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("Kustomer emulator listening on http://127.0.0.1:"), first
    return proc, first.split()[4]


def test_emulator_serve_then_sync_into_it_and_a_taken_port(people: Path) -> None:
    proc, url = _serve("--custom-attribute", "customer:tierStr=Tier")
    try:
        done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url,
                   "--no-progress", env=KEY_ENV)
        assert done.returncode == 1, done.stderr
        assert "3 rows: created 2, invalid 1" in done.stdout
        with KustomerClient(api_key="k", base_url=url) as client:
            ada = client.customers.get_by_external_id("c-1")
            assert ada is not None
            assert ada.custom["tierStr"] == "gold"
            meta = client.request("GET", "/v1/metadata/customer").body
        assert "tierStr" in json.dumps(meta)

        port = url.rsplit(":", 1)[1]
        taken = run("emulator", "serve", "--port", port)
        assert taken.returncode == 2
        assert taken.stdout == ""
        assert taken.stderr.strip() == (
            f"kustomer-activations emulator serve: error: port {port} on 127.0.0.1 is taken "
            "(another emulator?): choose another with --port, or --port 0 for any free port")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_emulator_serve_refuses_a_malformed_custom_attribute() -> None:
    done = run("emulator", "serve", "--port", "0", "--custom-attribute", "order:tierStr")
    assert done.returncode == 2 and "KIND:NAME" in done.stderr
    done = run("emulator", "serve", "--port", "0", "--custom-attribute", "customer:tier")
    assert done.returncode == 2 and "no type suffix" in done.stderr


def test_demo_live_against_a_served_emulator() -> None:
    proc, url = _serve("--demo-attributes")
    try:
        done = run("demo", "--live", "--base-url", url, "--customers", "40", "--no-progress",
                   env=KEY_ENV)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: the only failures are the sample's 1 deliberately bad row" in done.stdout


# -- the progress display ----------------------------------------------------------------------

def _progress(done: int, total: int | None = 1000) -> Progress:
    return Progress(done=done, total=total, elapsed=60.0, requests=done // 100,
                    counts={Outcome.CREATED: done})


def test_progress_shows_the_eta_when_the_total_is_known() -> None:
    stream = io.StringIO()
    display = cli.ProgressDisplay("sync", stream, tty=False, time_label="elapsed")
    display(_progress(250))
    # 250 rows in a minute: 750 to go take three more minutes
    assert stream.getvalue() == ("sync: 250/1,000 rows  25%, 250 rows/min, 2 requests, "
                                 "ETA 3:00, 1:00 elapsed\n")


def test_piped_progress_of_an_unknown_total_writes_every_log_every_seconds() -> None:
    now = [0.0]
    stream = io.StringIO()
    display = cli.ProgressDisplay("sync", stream, tty=False, log_every=30.0,
                                  monotonic=lambda: now[0])
    for step in range(1, 8):
        now[0] = step * 10.0  # a batch every 10 s: a line every third batch
        display(_progress(step * 100, total=None))
    display.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" rows")[0] for line in lines] == ["sync: 300", "sync: 600"]
    assert "ETA" not in stream.getvalue()


def test_failures_csv_of_the_cli_reads_back(url: str, people: Path, tmp_path: Path) -> None:
    failures = tmp_path / "failed.csv"
    done = run("sync", str(people), "--object", "customer", *MAP, "--base-url", url,
               "--failures", str(failures), "--no-progress", env=KEY_ENV)
    assert done.returncode == 1
    assert f"wrote 1 failed row to {failures}" in done.stdout
    with failures.open(encoding="utf-8", newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert (row["_row"], row["_outcome"], row["id"]) == ("2", "invalid", "c-3")
