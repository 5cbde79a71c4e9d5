"""The ``kustomer-activations`` command line (also ``python -m kustomer_activations``).

Subcommands:

* ``sync``: upsert the rows of a CSV or JSONL file (or stdin) into Kustomer
  as customers or companies, with a mapping from ``--map``/``--mapping``.
* ``demo``: sync the bundled sample (companies, then customers) into an
  in-process emulator, with a progress display, and print the reports. With
  ``--live`` (and ``KUSTOMER_API_KEY``) the same sample goes to a real org.
* ``check``: test an API key (``client.check()``); exit 0 when it works and
  holds every role a sync needs, else 1.
* ``emulator serve``: serve the emulator over HTTP (the options are those of
  ``python -m kustomer_activations.testing``).

Exit codes: 0 every row ok, 1 some rows failed (or the sync stopped on an
error), 2 a usage or configuration error (found before any work), 130 on
Ctrl-C. Errors are one line on stderr; ``--debug`` adds the traceback.

Each subcommand is a function ``(args, out) -> exit code`` registered in
:func:`build_parser`. The API key is read from an environment variable
(``KUSTOMER_API_KEY``, or the one ``--api-key-env`` names), never from the
command line, so it stays out of shell history and process lists.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
import io
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from . import data
from ._core.clock import Clock
from ._version import __version__
from .client import KustomerClient
from .errors import (
    AuthenticationError,
    KustomerError,
    PermissionDeniedError,
    UnknownCompanyLinkError,
)
from .mapping import Field, FieldMapping
from .models.sync_key import SyncKey
from .models.validation import ObjectType
from .results import Outcome
from .sync.progress import Progress
from .sync.report import SyncCancelledError, SyncReport

__all__ = ["ProgressDisplay", "UsageError", "build_parser", "main"]

API_KEY_ENV = "KUSTOMER_API_KEY"
PROG = "kustomer-activations"

#: Custom attributes the sample writes: (object type, name, display name).
DEMO_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("company", "industryStr", "Industry"),
    ("customer", "planStr", "Plan"),
    ("customer", "lifetimeValueNum", "Lifetime value"),
    ("customer", "signupAt", "Signed up"),
    ("customer", "vipBool", "VIP"),
)
#: The demo's default clock speed: simulated seconds per real second.
DEFAULT_SCALE = 4.0
#: In the warm sync, every CHANGED_EVERY-th customer gets a new lifetime value (5 %).
CHANGED_EVERY = 20

Command = Callable[[argparse.Namespace, TextIO], int]


# -- mappings of the sample ------------------------------------------------------------

def company_mapping() -> FieldMapping:
    """The sample's company columns -> Kustomer company fields."""
    return FieldMapping(
        {
            "externalId": "id",
            "name": "name",
            "domain": "domain",
            "custom.industryStr": "industry",
            "employeeCount": Field("employees", transform=int),
        },
        object_type="company",
    )


def _full_name(row: Mapping[str, Any]) -> str:
    return f"{row['first_name']} {row['last_name']}".strip()


def customer_mapping() -> FieldMapping:
    """The sample's customer columns -> Kustomer customer fields.

    ``parse_strings`` lets CSV text fill the ``Num`` and ``Bool`` attributes;
    ``signup_date`` is parsed as a date (a date that does not exist is refused).
    """
    return FieldMapping(
        {
            "externalId": "id",
            "name": _full_name,
            "email": "email",
            "phone": "phone",
            "companyExternalId": "company_id",
            "custom.planStr": "plan",
            "custom.lifetimeValueNum": "lifetime_value",
            "custom.signupAt": Field("signup_date", transform=dt.date.fromisoformat),
            "custom.vipBool": "vip",
        },
        object_type="customer",
        parse_strings=True,
    )


# -- progress ------------------------------------------------------------------------

class ProgressDisplay:
    """An ``on_progress`` callback: a one-line bar on a terminal, plain lines otherwise.

    On a TTY the line is redrawn in place (``\\r``) at most every ``interval``
    real seconds; elsewhere (logs, CI) a line is written each time another
    ``step`` of the rows is done, or ``log_every`` real seconds after the
    last line (so a stream of unknown length still reports). Each shows the
    rows, rows/min, requests and, when the total is known, the ETA. Call
    :meth:`close` when the sync ends. Rates and times are on the client's
    clock, labelled ``time_label`` (``simulated`` for the demo's scaled clock).
    """

    def __init__(self, label: str, stream: TextIO, *, tty: bool | None = None,
                 width: int = 24, step: float = 0.25, interval: float = 0.1,
                 log_every: float = 30.0, time_label: str = "simulated",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.width = width
        self.step = step
        self.interval = interval
        self.log_every = log_every
        self.time_label = time_label
        self._monotonic = monotonic
        self._next_fraction = step
        self._last_draw = 0.0
        self._last_line = monotonic()
        self._last: Progress | None = None
        self._drawn = False
        self._width_drawn = 0

    def __call__(self, progress: Progress) -> None:
        self._last = progress
        now = self._monotonic()
        if self.tty:
            if now - self._last_draw >= self.interval or progress.done == progress.total:
                self._last_draw = now
                self._draw(progress)
            return
        fraction = progress.fraction
        due = now - self._last_line >= self.log_every
        if due or progress.done == progress.total or (
                fraction is not None and fraction >= self._next_fraction):
            while fraction is not None and self._next_fraction <= fraction:
                self._next_fraction += self.step
            self._last_line = now
            self.stream.write(self._text(progress) + "\n")
            self.stream.flush()

    def _text(self, p: Progress) -> str:
        total = f"/{p.total:,}" if p.total is not None else ""
        pct = f" {p.fraction:4.0%}" if p.fraction is not None else ""
        eta = ""
        if p.total is not None and p.done < p.total and p.rate > 0:
            eta = f", ETA {_clock_text((p.total - p.done) / p.rate * 60)}"
        return (f"{self.label}: {p.done:,}{total} rows{pct}, {p.rate:,.0f} rows/min, "
                f"{p.requests:,} request{'' if p.requests == 1 else 's'}{eta}, "
                f"{_clock_text(p.elapsed)} {self.time_label}")

    def _draw(self, p: Progress) -> None:
        fraction = p.fraction or 0.0
        filled = round(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label:<10} [{bar}] " + self._text(p).split(": ", 1)[1]
        self.stream.write("\r" + line.ljust(self._width_drawn))
        self._width_drawn = len(line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Finish the display (the bar's last state stays on screen)."""
        if self.tty and self._last is not None:
            self._draw(self._last)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _rows(n: int) -> str:
    return "row" if n == 1 else "rows"


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


# -- sync ----------------------------------------------------------------------------

class UsageError(Exception):
    """A wrong argument or setting, found before any work: one line on stderr, exit code 2."""


#: File name endings of the sources ``sync`` reads, and of the failure files it writes.
SOURCE_FORMATS: Mapping[str, str] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FAILURE_SUFFIXES = (".csv", ".jsonl")


class _SourceError(Exception):
    """The source cannot be read on (a line that is not JSON); stops the sync."""


class _Source:
    """SOURCE as rows: a CSV or JSONL file, or stdin; read once, header known up front."""

    def __init__(self, name: str, fmt: str, stdin: TextIO) -> None:
        self.name = name
        self.fmt = fmt
        self.label = "stdin" if name == "-" else name
        self.total: int | None = None
        self.columns: list[str] | None = None  # CSV header, or the first JSONL object's keys
        self._stdin = stdin
        self._stream: Iterator[dict[str, Any]] | None = None
        self._peeked: list[dict[str, Any]] = []

    def check(self) -> None:
        """For a file: readable, every JSONL line an object, rows counted (the ETA needs them)."""
        if self.name == "-":
            return
        path = Path(self.name)
        if not path.exists():
            raise UsageError(f"SOURCE {self.name}: no such file")
        if path.is_dir():
            raise UsageError(f"SOURCE {self.name} is a directory, not a file")
        count = 0
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                for row in self._parse(fh):
                    if self.columns is None:
                        self.columns = list(row)
                    count += 1
        except OSError as exc:
            raise UsageError(f"SOURCE {self.name}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"SOURCE {self.name} is not UTF-8 text") from None
        except (_SourceError, csv.Error) as exc:
            raise UsageError(f"SOURCE {self.name}: {exc}") from None
        self.total = count

    def peek(self) -> None:
        """For stdin: read the first row now, so the columns are known before the sync."""
        if self.name != "-":
            return
        # One parser for the whole stream: a second csv reader would take row 2 for a header.
        self._stream = self._parse(self._stdin)
        try:
            first = next(self._stream, None)
        except (_SourceError, csv.Error) as exc:
            raise UsageError(f"stdin: {exc}") from None
        except UnicodeDecodeError:
            raise UsageError("stdin is not UTF-8 text") from None
        if first is not None:
            self._peeked.append(first)
            if self.columns is None:
                self.columns = list(first)

    def _parse(self, fh: TextIO) -> Iterator[dict[str, Any]]:
        if self.fmt == "csv":
            reader = csv.DictReader(fh)
            if self.columns is None and reader.fieldnames is not None:
                self.columns = list(reader.fieldnames)
            for row in reader:
                # As read_csv(): an empty cell is "no value", not an empty string to write.
                yield {k: (v if v != "" else None) for k, v in row.items()}
            return
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise _SourceError(f"line {number} is not JSON ({exc})") from None
            if not isinstance(value, dict):
                raise _SourceError(f"line {number} is a JSON {type(value).__name__}, "
                                   "not an object")
            yield value

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, in order (stdin: the peeked one first)."""
        if self.name == "-":
            yield from self._peeked
            if self._stream is not None:
                yield from self._stream
            return
        with Path(self.name).open(encoding="utf-8", newline="") as fh:
            yield from self._parse(fh)


def _source_format(name: str, given: str | None) -> str:
    if given:
        return given
    if name == "-":
        return "csv"
    fmt = SOURCE_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell the format of SOURCE {name} from its name: "
                         "use a .csv or .jsonl file, or say --format csv|jsonl")
    return fmt


def _check_writable(name: str, flag: str, suffixes: Sequence[str] = ()) -> Path:
    """Fail now, not after the sync, when ``name`` cannot be written."""
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"{flag} {name} is a directory")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} {name}: the name must end in {' or '.join(suffixes)} "
                         "(it says the format)")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {name}: directory {parent} does not exist")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(parent, os.W_OK | os.X_OK)
    if not writable:
        raise UsageError(f"{flag} {name}: not writable")
    return path


def _load_mapping_file(name: str) -> dict[str, Any]:
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise UsageError(f"--mapping {name}: use a .toml or .json file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--mapping {name}: {exc.strerror or exc}") from None
    try:
        if suffix == ".json":
            loaded = json.loads(raw)
        else:
            try:
                tomllib = importlib.import_module("tomllib")
            except ImportError:  # Python 3.10: no TOML reader in the standard library
                raise UsageError(f"--mapping {name}: TOML needs Python 3.11 or later; "
                                 "write the mapping as a .json file instead") from None
            loaded = tomllib.loads(raw.decode("utf-8"))
    except UsageError:
        raise
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError and UnicodeDecodeError alike
        raise UsageError(f"--mapping {name} cannot be read: {exc}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("map"), dict):
        loaded = loaded["map"]  # a [map] table, leaving room for other sections
    if not isinstance(loaded, dict):
        raise UsageError(f"--mapping {name}: expected a table of DESTINATION = \"column\"")
    return {str(dest): _mapping_source(name, str(dest), src) for dest, src in loaded.items()}


_FIELD_OPTIONS = {"column", "skip_null", "set_if_empty"}


def _mapping_source(file: str, dest: str, value: Any) -> str | Field:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("column"), str) \
            and set(value) <= _FIELD_OPTIONS \
            and all(isinstance(value.get(k, False), (bool, type(None)))
                    for k in ("skip_null", "set_if_empty")):
        return Field(value["column"], skip_null=value.get("skip_null"),
                     set_if_empty=bool(value.get("set_if_empty", False)))
    raise UsageError(f"--mapping {file}: {dest} must be a column name, or a table with "
                     f"'column' and optionally 'skip_null'/'set_if_empty' (true/false); got {value!r}")


def _map_option(text: str) -> tuple[str, str]:
    dest, sep, column = text.partition("=")
    if not sep or not dest.strip() or not column.strip():
        raise argparse.ArgumentTypeError(f"expected DESTINATION=COLUMN, got {text!r}")
    return dest.strip(), column.strip()


def _key_destinations(key: SyncKey) -> set[str]:
    return {"email", "emails"} if key.kind == "email" else {key.label}


class _SyncPlan:
    """Everything ``sync`` needs, checked before any row is read or request sent."""

    def __init__(self, args: argparse.Namespace, stdin: TextIO) -> None:
        self.object_type: ObjectType = args.object
        try:
            self.key = SyncKey.parse(args.key)
            self.key.check_supported(args.object)
        except ValueError as exc:
            raise UsageError(f"--key {args.key}: {exc}") from None
        self.source = _Source(args.source, _source_format(args.source, args.format), stdin)
        self.failures = (_check_writable(args.failures, "--failures", FAILURE_SUFFIXES)
                         if args.failures else None)
        self.state = _state_store(args.state) if args.state else None
        spec: dict[str, Any] = _load_mapping_file(args.mapping) if args.mapping else {}
        spec.update(dict(args.map or ()))
        self.api_key = _api_key(args.api_key_env)
        try:
            self.client = KustomerClient(api_key=self.api_key, **_host_flags(args))
        except KustomerError as exc:
            raise UsageError(str(exc)) from None
        self.source.check()
        self.source.peek()
        self.mapping = self._mapping(spec)

    def _mapping(self, spec: dict[str, Any]) -> FieldMapping:
        columns = self.source.columns
        if not spec:
            if columns is None:  # no rows at all: nothing will be mapped
                return FieldMapping.identity(self.object_type)
            # Without a mapping each column is its own destination (externalId, email, custom.x).
            spec = {column: column for column in columns}
        if not _key_destinations(self.key) & set(spec):
            raise UsageError(f"the sync key {self.key.label} is not mapped: add "
                             f"--map {self.key.label}=COLUMN")
        if columns is not None and self.source.fmt == "csv":
            wanted = {src.source if isinstance(src, Field) else src for src in spec.values()}
            missing = sorted(c for c in wanted if isinstance(c, str) and c not in columns)
            if missing:
                raise UsageError(f"{self.source.label} has no column {', '.join(missing)} "
                                 f"(its columns: {', '.join(columns)})")
        try:
            # CSV holds only text: let it fill Num and Bool attributes ("12.5", "true").
            return FieldMapping(spec, object_type=self.object_type,
                                parse_strings=self.source.fmt == "csv")
        except ValueError as exc:
            raise UsageError(f"mapping: {exc}") from None


def _state_store(name: str) -> Any:
    path = _check_writable(name, "--state")
    try:
        state = importlib.import_module("kustomer_activations.state")
    except ImportError:
        raise UsageError("--state: state store not available in this version") from None
    return state.SqliteStateStore(path)


def _api_key(env_name: str) -> str:
    key = os.environ.get(env_name, "").strip()
    if not key:
        raise UsageError(
            f"no API key: set {env_name} (or name another variable with --api-key-env). "
            f"Without a Kustomer account, try '{PROG} demo', or serve an emulator with "
            f"'{PROG} emulator serve' and pass its URL as --base-url (any key value works there)"
        )
    return key


def _host_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in ("org", "region", "base_url")
            if getattr(args, name, None)}


def _failure_details(report: SyncReport) -> list[dict[str, Any]]:
    return [{"row": f.row, "outcome": f.outcome.value, "key_value": f.key_value,
             "reason": f.reason or (str(f.error) if f.error else "")}
            for f in sorted(report.failures, key=lambda f: f.row or 0)]


def cmd_sync(args: argparse.Namespace, out: TextIO) -> int:
    """``sync``: upsert the rows of SOURCE into Kustomer; every argument checked first."""
    stdin: TextIO = sys.stdin
    if args.source == "-" and hasattr(sys.stdin, "buffer"):
        # UTF-8 whatever the locale says, and newline="" as the csv module wants.
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
    plan = _SyncPlan(args, stdin)
    resource = plan.client.customers if plan.object_type == "customer" else plan.client.companies
    display = None
    if not args.no_progress:
        display = ProgressDisplay(f"{plan.object_type} sync", sys.stderr, time_label="elapsed")
    options: dict[str, Any] = {}
    if plan.state is not None:
        options.update(state=plan.state, sync_name=args.sync_name, full_resync=args.full_resync,
                       retry_failed_only=args.retry_failed_only)
    elif args.full_resync or args.retry_failed_only:
        raise UsageError("--full-resync and --retry-failed-only need --state FILE")
    error: BaseException | None = None
    code = 0
    with plan.client:
        try:
            report = resource.upsert_many(
                plan.source.rows(), key=plan.key, mapping=plan.mapping, mode=args.mode,
                dry_run=args.dry_run, on_progress=display, total=plan.source.total, **options,
            )
        except SyncCancelledError as exc:
            report, code = exc.report, 130
        except _SourceError as exc:  # the rows read before the bad line were synced
            report, code, error = exc.report, 1, exc  # type: ignore[attr-defined]
        finally:
            if display is not None:
                display.close()
    if code == 0:
        code = 0 if report.ok else 1
    written = None
    if plan.failures is not None:
        written = report.export_failures(plan.failures)
    if args.json:
        _write_json(out, {**report.to_dict(), "ok": report.ok, "exit_code": code,
                          "failures_file": str(plan.failures) if plan.failures else None,
                          "failed_rows": _failure_details(report)})
    else:
        out.write(report.summary() + "\n")
        if written is not None:
            out.write(f"wrote {written} failed {_rows(written)} to {plan.failures}\n")
    out.flush()
    if error is not None:
        sys.stderr.write(f"{PROG} sync: error: {plan.source.label}: {error}; the sync stopped "
                         "there\n")
    elif code == 130:
        sys.stderr.write(f"{PROG} sync: interrupted; the report says what was written\n")
    return code


# -- demo ----------------------------------------------------------------------------

class _Demo:
    """One run of ``demo``: where it syncs, and what it prints."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.err: TextIO = sys.stderr
        self.problems: list[str] = []
        self.refused = 0  # warm-sync rows refused for a company link no answer shows

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def sync(self, client: KustomerClient, what: str, rows: list[dict[str, str]],
             mapping: FieldMapping, label: str | None = None, state: Path | None = None) -> SyncReport:
        display = None if self.args.no_progress else ProgressDisplay(label or what, self.err)
        resource = client.companies if what == "companies" else client.customers
        try:
            return resource.upsert_many(rows, key="externalId", mapping=mapping,
                                        on_progress=display, total=len(rows), state=state)
        finally:
            if display is not None:
                display.close()

    def unexpected_failures(self, report: SyncReport, bad_rows: Mapping[int, str],
                            refused: Collection[int] = ()) -> list[str]:
        """Failures other than the sample's deliberate ones (``bad_rows``: row -> what) and
        the updates the SDK must refuse (``refused``: no company link it could resend)."""
        found = []
        for failure in report.failures:
            if failure.outcome is Outcome.INVALID and failure.row in bad_rows:
                continue
            if failure.row in refused and isinstance(failure.error, UnknownCompanyLinkError):
                continue
            found.append(f"{report.object_type} row {failure.row}: {failure.describe()}")
        missing = sorted(set(bad_rows) - {f.row for f in report.failures})
        found += [f"{report.object_type} row {r} ({bad_rows[r]}) was not reported invalid"
                  for r in missing]
        return found

    def run(self) -> int:
        args = self.args
        live_key = os.environ.get(args.api_key_env, "").strip()
        if args.live and not live_key:
            self.err.write(f"{PROG} demo: --live needs an API key in {args.api_key_env}\n")
            return 2
        companies = data.load_companies()
        customers = data.load_customers(args.customers)
        bad = {r: what for r, what in data.BAD_CUSTOMER_ROWS.items() if r < len(customers)}

        self.say(f"kustomer-activations {__version__} demo")
        if args.live:
            return self.run_live(companies, customers, bad)
        if live_key:
            self.say(f"{args.api_key_env} is set, but the demo writes to your org only with --live: "
                     "syncing into the embedded emulator")
        else:
            self.say("no Kustomer credentials: syncing into the embedded emulator")
        return self.run_emulated(companies, customers, bad)

    def _intro(self, companies: Sequence[object], customers: Sequence[object],
               bad: Mapping[int, str]) -> None:
        self.say(f"sample data: {len(companies):,} companies, {len(customers):,} customers "
                 f"(custom fields, company links)")
        if bad:
            self.say(f"the sample includes {len(bad)} deliberately bad {_rows(len(bad))}; they "
                     "must come out as 'invalid', with the reason:")
            for row, what in sorted(bad.items()):
                self.say(f"  customer row {row}: {what}")
        self.say()

    def run_emulated(self, companies: list[dict[str, str]], customers: list[dict[str, str]],
                     bad: Mapping[int, str]) -> int:
        from .testing import KustomerEmulator, RealClock, ScaledClock

        scale: float = self.args.scale
        clock: Clock = RealClock() if scale == 1 else ScaledClock(scale)
        emu = KustomerEmulator(clock=clock, log_bodies=False)
        for kind, name, display_name in DEMO_ATTRIBUTES:
            emu.define_custom_attribute(kind, name, displayName=display_name)
        self.say(f"emulated org: 1,000 requests/min, 100 searches/min, asynchronous bulk jobs; "
                 f"time runs x{scale:g} (1 simulated minute = {60 / scale:.1f} s)")
        if str(emu.readings):
            self.say(f"emulator readings of Kustomer's unclear behaviour: {emu.readings}")
        self._intro(companies, customers, bad)

        started = time.monotonic()
        http = httpx.Client(transport=emu.transport)
        # The customer syncs keep a state store (a scratch file, gone after the demo), so
        # the warm sync sends nothing for the rows that did not change.
        scratch = tempfile.TemporaryDirectory(prefix="kustomer-demo-")
        state = Path(scratch.name) / "state.db"
        with KustomerClient(api_key="demo-key", base_url=emu.base_url, http_client=http,
                            clock=clock) as client, http, scratch:
            company_report, customer_report = self._sync_sample(client, companies, customers,
                                                                state)
            cold_real = time.monotonic() - started

            stored = emu.customers.all()
            linked = sum(1 for doc in stored if doc.get("company"))
            expected_links = sum(1 for i, row in enumerate(customers)
                                 if row["company_id"] and i not in bad)
            self._what_happened(company_report, customer_report, cold_real, scale)
            self.say(f"  the emulator now holds {len(emu.companies.all()):,} companies and "
                     f"{len(stored):,} customers, {linked:,} of them linked to their company")
            self.say()
            self._check_counts(company_report, len(companies), "companies", len(emu.companies.all()))
            self._check_counts(customer_report, len(customers) - len(bad), "customers", len(stored))
            if linked != expected_links:
                self.problems.append(f"{linked} customers are linked to a company; "
                                     f"the sample links {expected_links}")

            warm_report = None
            refused: set[int] = set()
            if not self.args.no_warm:
                warm_rows = [dict(row, lifetime_value=f"{float(row['lifetime_value']) + 100:.2f}")
                             if i % CHANGED_EVERY == 0 and i not in bad else row
                             for i, row in enumerate(customers)]
                changed = sum(1 for i in range(len(customers))
                              if i % CHANGED_EVERY == 0 and i not in bad)
                self.say(f"second (warm) sync: the same {len(customers):,} customers, "
                         f"{changed:,} of them ({changed / max(len(customers), 1):.0%}) "
                         "with a new lifetime value, with the first sync's state store")
                warm_report = self.sync(client, "customers", warm_rows, customer_mapping(),
                                        label="re-sync", state=state)
                self.say(warm_report.summary())
                expected = changed
                # The state knows each row's last payload, id and fields (company link
                # included, set by the first sync's create): unchanged rows are skipped and
                # changed ones planned from it, whatever the org's answers show.
                self.say(f"  0 requests for unchanged rows: {warm_report.unchanged:,} unchanged "
                         f"rows skipped by the state store; {warm_report.updated:,} changed rows "
                         f"updated by id in {warm_report.requests:,} requests, with no lookup")
                self.say()
                if warm_report.updated != expected:
                    self.problems.append(f"warm sync updated {warm_report.updated} customers; "
                                         f"{expected} should have been")
                if warm_report.unchanged != len(customers) - len(bad) - changed:
                    self.problems.append(f"warm sync left {warm_report.unchanged} customers "
                                         f"unchanged; {len(customers) - len(bad) - changed} "
                                         "should have been")

        self.problems += self.unexpected_failures(company_report, {})
        self.problems += self.unexpected_failures(customer_report, bad)
        if warm_report is not None:
            self.problems += self.unexpected_failures(warm_report, bad, refused)
        self._export(customer_report)
        self.say(f"done in {time.monotonic() - started:.1f} s real time")
        return self._verdict(bad)

    def _sync_sample(self, client: KustomerClient, companies: list[dict[str, str]],
                     customers: list[dict[str, str]],
                     state: Path | None = None) -> tuple[SyncReport, SyncReport]:
        # Companies first: customers link to them by external id.
        company_report = self.sync(client, "companies", companies, company_mapping())
        self.say(company_report.summary())
        self.say()
        customer_report = self.sync(client, "customers", customers, customer_mapping(),
                                    state=state)
        self.say(customer_report.summary())
        self.say()
        return company_report, customer_report

    def _what_happened(self, companies: SyncReport, customers: SyncReport, real: float,
                       scale: float) -> None:
        simulated = companies.duration + customers.duration
        requests = companies.requests + customers.requests
        rows = companies.rows + customers.rows
        naive = 2 * rows
        self.say("what happened")
        self.say(f"  {rows:,} rows upserted with {requests:,} requests "
                 f"({requests / max(rows, 1):.3f} per record): bulk writes of 100, "
                 "batched lookups, one results read per job")
        self.say(f"  a lookup-and-write per record would need ~{naive:,} requests: "
                 f"{naive / 1000:.1f} min of a 1,000/min budget")
        self.say(f"  simulated time of both syncs: {simulated / 60:.1f} min ({_clock_text(simulated)}); "
                 f"real time {real:.1f} s on a x{scale:g} clock")

    def _check_counts(self, report: SyncReport, expected: int, what: str, stored: int) -> None:
        if report.created != expected or stored != expected:
            self.problems.append(f"{what}: expected {expected} created, the report says "
                                 f"{report.created} and the org holds {stored}")

    def _export(self, report: SyncReport) -> None:
        if self.args.failures:
            written = report.export_failures(self.args.failures)
            self.say(f"wrote {written} failed customer rows to {self.args.failures} "
                     "(fix them and sync that file again)")

    def _verdict(self, bad: Mapping[int, str]) -> int:
        if self.problems:
            self.say("UNEXPECTED: the demo did not go as it should:")
            for problem in self.problems[:20]:
                self.say(f"  {problem}")
            return 1
        if bad:
            self.say(f"OK: the only failures are the sample's {len(bad)} deliberately bad "
                     f"{_rows(len(bad))}"
                     + (f" and {self.refused} {_rows(self.refused)} refused for a hidden company "
                        "link" if self.refused else ""))
        return 0

    def run_live(self, companies: list[dict[str, str]], customers: list[dict[str, str]],
                 bad: Mapping[int, str]) -> int:
        self.say(f"--live: syncing the sample into your Kustomer org (key from "
                 f"{self.args.api_key_env})")
        self.say("the org needs these custom attributes: "
                 + ", ".join(f"{kind} {name}" for kind, name, _ in DEMO_ATTRIBUTES))
        self._intro(companies, customers, bad)
        started = time.monotonic()
        with KustomerClient(**_host_options(self.args)) as client:
            checked = client.check()
            self.say(str(checked))
            if not checked.ok:
                return 1
            company_report, customer_report = self._sync_sample(client, companies, customers)
        self.problems += self.unexpected_failures(company_report, {})
        self.problems += self.unexpected_failures(customer_report, bad)
        self._export(customer_report)
        self.say(f"done in {time.monotonic() - started:.1f} s")
        return self._verdict(bad)


def _host_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"api_key": os.environ.get(args.api_key_env) or None, **_host_flags(args)}


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """``demo``: the bundled sample into the emulator (or, with ``--live``, your org)."""
    demo = _Demo(args, out)
    try:
        return demo.run()
    except SyncCancelledError as exc:
        out.write(f"\ninterrupted\n{exc.report.summary()}\n")
        return 130
    except KustomerError as exc:
        out.write(f"error: {type(exc).__name__}: {exc}\n")
        return 1


# -- check ---------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """``check``: is the key valid, in the right region, with every sync role?"""
    try:
        client = KustomerClient(api_key=_api_key(args.api_key_env), **_host_flags(args))
    except KustomerError as exc:
        raise UsageError(str(exc)) from None
    with client:
        try:
            result = client.check()
        except KustomerError as exc:
            if args.json:
                _write_json(out, {"ok": False, "base_url": client.base_url,
                                  "error": f"{type(exc).__name__}: {exc}"})
            sys.stderr.write(f"{PROG} check: FAILED at {client.base_url}: "
                             f"{type(exc).__name__}: {exc}\n")
            return 1
    if args.json:
        _write_json(out, {"ok": result.ok, "base_url": result.base_url, "org": result.org,
                          "key_name": result.name, "token_id": result.token_id,
                          "roles": list(result.roles), "missing_roles": list(result.missing_roles)})
        return 0 if result.ok else 1
    out.write(str(result) + "\n")
    if result.org:
        out.write(f"org: {result.org}\n")
    out.write(f"roles: {', '.join(result.roles) or '(none)'}\n")
    return 0 if result.ok else 1


def _write_json(out: TextIO, document: Mapping[str, Any]) -> None:
    out.write(json.dumps(document, indent=2) + "\n")
    out.flush()


# -- emulator ------------------------------------------------------------------------

def cmd_state(args: argparse.Namespace, out: TextIO) -> int:
    """``state summary|reset FILE``: what a state file remembers, or forget one sync."""
    from .state import SqliteStateStore

    if not os.path.exists(args.file):
        raise UsageError(f"state file {args.file} does not exist")
    if args.action == "reset" and not args.sync_name:
        raise UsageError("state reset needs --sync-name NAME (the sync to forget)")
    store = SqliteStateStore(args.file)
    try:
        if args.action == "reset":
            removed = store.reset(args.sync_name)
            print(f"forgot sync {args.sync_name!r}: {removed:,} rows removed from {args.file}",
                  file=out)
            return 0
        summary = store.summary(args.sync_name)
        if args.json:
            print(json.dumps([{
                "sync": s.sync, "object_type": s.object_type, "key": s.key_label,
                "rows_known": s.rows_known, "rows_failed": s.rows_failed,
                "rows_pending": s.rows_pending,
                "last_run": None if s.last_run is None else {
                    "status": s.last_run.status, "started_at": s.last_run.started_at,
                    "ended_at": s.last_run.ended_at, "outcomes": dict(s.last_run.outcomes)},
            } for s in summary.syncs], indent=2), file=out)
        else:
            print(summary, file=out)
        return 0
    finally:
        store.close()


def cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    """``emulator serve``: ``python -m kustomer_activations.testing`` with the remaining arguments.

    ``--demo-attributes`` defines the custom attributes the demo's sample writes, so
    ``demo --live --base-url URL`` works against the served emulator.
    """
    from .testing import __main__ as emulator_main

    argv = list(args.emulator_args)
    prog = f"{PROG} emulator"
    if argv[:1] == ["serve"]:
        argv, prog = argv[1:], f"{PROG} emulator serve"
    if "--demo-attributes" in argv:
        argv.remove("--demo-attributes")
        for kind, name, display_name in DEMO_ATTRIBUTES:
            argv += ["--custom-attribute", f"{kind}:{name}={display_name}"]
    try:
        return emulator_main.main(argv, prog=prog)
    except SystemExit as exc:  # its --help and usage errors
        return exc.code if isinstance(exc.code, int) else 2


# -- parser --------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _host_arguments() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(
        "Kustomer host and key",
        "With none of --org/--region/--base-url, KUSTOMER_ORG, KUSTOMER_REGION or "
        "KUSTOMER_BASE_URL decides (at most one may be set), else the US host. "
        "The API key is read from an environment variable, never from the command line.")
    hosts = group.add_mutually_exclusive_group()
    hosts.add_argument("--org", help="your org's name: https://<org>.api.kustomerapp.com")
    hosts.add_argument("--region", choices=["us", "eu", "in"], help="a regional host")
    hosts.add_argument("--base-url", help="any other API root, e.g. a served emulator's "
                       "http://127.0.0.1:PORT")
    group.add_argument("--api-key-env", default=API_KEY_ENV, metavar="NAME",
                       help=f"the environment variable holding the API key (default {API_KEY_ENV})")
    return parent


def _common_arguments() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true",
                        help="on an error, show the traceback; log requests to stderr "
                             "(key values redacted unless KUSTOMER_LOG_VALUES=1)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand stores its function as ``command``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sync records into Kustomer as Customers and Companies.",
        epilog=f"Start with '{PROG} demo': it needs no account. Exit codes: 0 every row ok, "
               "1 some rows failed, 2 usage or configuration error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    host = _host_arguments()
    common = _common_arguments()

    sync = sub.add_parser(
        "sync", parents=[host, common], help="upsert the rows of a CSV or JSONL file",
        description="Upsert every row of SOURCE (a .csv or .jsonl file, or - for stdin) into "
                    "Kustomer as customers or companies, matched on --key. Every argument is "
                    "checked before anything is read or sent. Exit code 0 when every row is "
                    "ok, 1 when some failed (the report says which), 2 for a usage or "
                    "configuration error, 130 when interrupted.",
        epilog="Without --map/--mapping each column is its own destination (a column named "
               "externalId, email or custom.tierStr). A mapping file is TOML (Python 3.11+) "
               "or JSON: DESTINATION = \"column\", or DESTINATION = {column = \"c\", "
               "skip_null = false, set_if_empty = true}; --map entries override it.",
    )
    sync.add_argument("source", metavar="SOURCE", help=".csv or .jsonl file, or - for stdin")
    sync.add_argument("--object", required=True, choices=["customer", "company"],
                      help="what each row becomes")
    sync.add_argument("--key", default="externalId", metavar="KEY",
                      help="the sync key: externalId (default), email (customers) or "
                           "custom.<name>")
    sync.add_argument("--map", action="append", type=_map_option, metavar="DEST=COLUMN",
                      help="map column COLUMN to Kustomer field DEST, e.g. email=mail or "
                           "custom.tierStr=tier (repeatable)")
    sync.add_argument("--mapping", metavar="FILE", help="the mapping as a .toml or .json file")
    sync.add_argument("--format", choices=["csv", "jsonl"],
                      help="the SOURCE format (default: from its name; csv for stdin)")
    sync.add_argument("--mode", choices=["upsert", "create_only", "update_only"],
                      default="upsert", help="update or create (default), create only, "
                                             "or update only")
    sync.add_argument("--dry-run", action="store_true",
                      help="look up and report what would be written; write nothing")
    sync.add_argument("--failures", metavar="FILE",
                      help="write the failed rows to FILE (.csv or .jsonl), ready to fix and "
                           "sync again")
    sync.add_argument("--state", metavar="FILE",
                      help="remember what was synced in FILE (SQLite), so unchanged rows are "
                           "skipped next time")
    sync.add_argument("--sync-name", default="default", metavar="NAME",
                      help="the sync's name in the --state file (several syncs can share one "
                           "file; default: default)")
    sync.add_argument("--full-resync", action="store_true",
                      help="with --state: look every row up again (ids are kept)")
    sync.add_argument("--retry-failed-only", action="store_true",
                      help="with --state: sync only the rows that failed last time")
    sync.add_argument("--json", action="store_true",
                      help="print the report as JSON on stdout")
    sync.add_argument("--no-progress", action="store_true",
                      help="no progress display on stderr")
    sync.set_defaults(command=cmd_sync, parser=sync)

    demo = sub.add_parser(
        "demo", parents=[host, common], help="sync a bundled sample into an embedded emulator",
        description="Sync the bundled sample (companies, then customers with custom fields "
                    "and company links) into an in-process Kustomer emulator and print the "
                    "reports. Needs no credentials; --live sends the sample to a real org "
                    "(or to a served emulator: --live --base-url URL).",
    )
    demo.add_argument("--customers", type=_positive_int, metavar="N",
                      help="sync only the first N sample customers (default: all)")
    demo.add_argument("--scale", type=_positive_float, default=DEFAULT_SCALE, metavar="X",
                      help=f"emulated time runs X times faster than real time "
                           f"(default {DEFAULT_SCALE:g}; 1 = real time)")
    demo.add_argument("--no-progress", action="store_true", help="no progress display")
    demo.add_argument("--no-warm", action="store_true",
                      help="skip the second sync of the same customers")
    demo.add_argument("--failures", metavar="PATH",
                      help="write the failed customer rows to PATH (.csv or .jsonl)")
    demo.add_argument("--live", action="store_true",
                      help="sync into the org of the API key instead of the embedded emulator")
    demo.set_defaults(command=cmd_demo, parser=demo)

    check = sub.add_parser(
        "check", parents=[host, common], help="test an API key and its roles",
        description="Test the API key: valid, right region, and holding every role a sync "
                    "needs. Exit code 0 when it does, 1 otherwise, 2 for a usage or "
                    "configuration error.",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    check.set_defaults(command=cmd_check, parser=check)

    state = sub.add_parser(
        "state", help="show or reset what a --state file remembers",
        description="'state summary FILE' shows each sync's rows, failures and last run; "
                    "'state reset FILE --sync-name NAME' forgets one sync (its next run looks "
                    "every row up again).",
    )
    state.add_argument("action", choices=("summary", "reset"))
    state.add_argument("file", metavar="FILE", help="the state file (SQLite)")
    state.add_argument("--sync-name", metavar="NAME",
                       help="the sync to show, or to reset (required for reset)")
    state.add_argument("--json", action="store_true", help="print the summary as JSON")
    state.set_defaults(command=cmd_state, parser=state)

    emulator = sub.add_parser(
        "emulator", add_help=False, help="serve the Kustomer emulator over HTTP ('emulator serve')",
        description="'emulator serve [OPTIONS]' serves the emulator; see 'emulator serve --help'. "
                    "--demo-attributes defines the custom attributes of the demo's sample.",
    )
    emulator.set_defaults(command=cmd_emulator, parser=emulator)
    return parser


def _setup_debug_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("kustomer_activations", "httpx"):
        log = logging.getLogger(name)
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docs)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is cmd_emulator:
            args.emulator_args = extra
        elif extra:
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    debug = bool(getattr(args, "debug", False))
    if debug:
        _setup_debug_logging()
    out = sys.stdout
    command: Command = args.command
    name = f"{PROG} {args.subcommand}"
    try:
        return command(args, out)
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{name}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except (AuthenticationError, PermissionDeniedError) as exc:
        # The key itself: a configuration problem, not a failed row.
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{name}: error: {type(exc).__name__}: {_one_line(exc)}\n")
        return 2
    except KustomerError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{name}: error: {type(exc).__name__}: {_one_line(exc)}\n")
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
