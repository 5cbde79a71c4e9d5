"""The ``kustomer-activations`` command line (also ``python -m kustomer_activations``).

Subcommands:

* ``demo``: sync the bundled sample (companies, then customers) into an
  in-process emulator, with a progress display, and print the reports. With
  ``--live`` (and ``KUSTOMER_API_KEY``) the same sample goes to a real org.
* ``check``: test an API key (``client.check()``); exit 0 when it works and
  holds every role a sync needs, else 1.
* ``emulator``: serve the emulator over HTTP (the arguments are those of
  ``python -m kustomer_activations.testing``).

Each subcommand is a function ``(args, out) -> exit code`` registered in
:func:`build_parser`, so new ones (a ``sync`` from a file, say) slot in
beside them. The API key is read from ``KUSTOMER_API_KEY`` only, never from
the command line, so it stays out of shell history and process lists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TextIO

import httpx

from . import data
from ._core.clock import Clock
from ._version import __version__
from .client import KustomerClient
from .errors import KustomerError, UnknownCompanyLinkError
from .mapping import Field, FieldMapping
from .results import Outcome
from .sync.progress import Progress
from .sync.report import SyncCancelledError, SyncReport

__all__ = ["ProgressDisplay", "build_parser", "main"]

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
    ``step`` of the rows is done. Call :meth:`close` when the sync ends.
    Rates are per simulated minute when the client runs on a scaled clock.
    """

    def __init__(self, label: str, stream: TextIO, *, tty: bool | None = None,
                 width: int = 24, step: float = 0.25, interval: float = 0.1) -> None:
        self.label = label
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.width = width
        self.step = step
        self.interval = interval
        self._next_fraction = step
        self._last_draw = 0.0
        self._last: Progress | None = None
        self._drawn = False
        self._width_drawn = 0

    def __call__(self, progress: Progress) -> None:
        self._last = progress
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= self.interval or progress.done == progress.total:
                self._last_draw = now
                self._draw(progress)
            return
        fraction = progress.fraction
        if fraction is None or fraction >= self._next_fraction or progress.done == progress.total:
            while fraction is not None and self._next_fraction <= fraction:
                self._next_fraction += self.step
            self.stream.write(self._text(progress) + "\n")
            self.stream.flush()

    def _text(self, p: Progress) -> str:
        total = f"/{p.total:,}" if p.total is not None else ""
        pct = f" {p.fraction:4.0%}" if p.fraction is not None else ""
        return (f"{self.label}: {p.done:,}{total} rows{pct}, {p.rate:,.0f} rows/min, "
                f"{p.requests:,} request{'' if p.requests == 1 else 's'}, {_clock_text(p.elapsed)} simulated")

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
    return f"{minutes}:{secs:02d}"


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
             mapping: FieldMapping, label: str | None = None) -> SyncReport:
        display = None if self.args.no_progress else ProgressDisplay(label or what, self.err)
        resource = client.companies if what == "companies" else client.customers
        try:
            return resource.upsert_many(rows, key="externalId", mapping=mapping,
                                        on_progress=display, total=len(rows))
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
        live_key = os.environ.get(API_KEY_ENV, "").strip()
        if args.live and not live_key:
            self.err.write(f"{PROG} demo: --live needs an API key in {API_KEY_ENV}\n")
            return 2
        companies = data.load_companies()
        customers = data.load_customers(args.customers)
        bad = {r: what for r, what in data.BAD_CUSTOMER_ROWS.items() if r < len(customers)}

        self.say(f"kustomer-activations {__version__} demo")
        if args.live:
            return self.run_live(companies, customers, bad)
        if live_key:
            self.say(f"{API_KEY_ENV} is set, but the demo writes to your org only with --live: "
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
        hidden = emu.readings.company_link == "hidden"
        if str(emu.readings):
            self.say(f"emulator readings of Kustomer's unclear behaviour: {emu.readings}")
        self._intro(companies, customers, bad)

        started = time.monotonic()
        http = httpx.Client(transport=emu.transport)
        with KustomerClient(api_key="demo-key", base_url=emu.base_url, http_client=http,
                            clock=clock) as client, http:
            company_report, customer_report = self._sync_sample(client, companies, customers)
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
                         "with a new lifetime value")
                warm_report = self.sync(client, "customers", warm_rows, customer_mapping(),
                                        label="re-sync")
                self.say(warm_report.summary())
                expected = changed
                if hidden:
                    # No answer shows the link: every linked row is rewritten with it, and a
                    # changed row without a company cannot be updated safely (it is refused).
                    expected = sum(1 for i, row in enumerate(customers)
                                   if row["company_id"] and i not in bad)
                    refused = {i for i, row in enumerate(customers) if i % CHANGED_EVERY == 0
                               and i not in bad and not row["company_id"]}
                    self.refused = len(refused)
                    self.say(f"  the org hides company links: every linked customer is rewritten "
                             f"with its link ({expected:,}), and {len(refused)} changed "
                             f"{_rows(len(refused))} without a company refused rather than risk "
                             "an unlink")
                else:
                    self.say(f"  only changed rows are written: {warm_report.updated:,} updated, "
                             f"{warm_report.unchanged:,} unchanged, in {warm_report.requests:,} "
                             "requests")
                self.say()
                if warm_report.updated != expected:
                    self.problems.append(f"warm sync updated {warm_report.updated} customers; "
                                         f"{expected} should have been")

        self.problems += self.unexpected_failures(company_report, {})
        self.problems += self.unexpected_failures(customer_report, bad)
        if warm_report is not None:
            self.problems += self.unexpected_failures(warm_report, bad, refused)
        self._export(customer_report)
        self.say(f"done in {time.monotonic() - started:.1f} s real time")
        return self._verdict(bad)

    def _sync_sample(self, client: KustomerClient, companies: list[dict[str, str]],
                     customers: list[dict[str, str]]) -> tuple[SyncReport, SyncReport]:
        # Companies first: customers link to them by external id.
        company_report = self.sync(client, "companies", companies, company_mapping())
        self.say(company_report.summary())
        self.say()
        customer_report = self.sync(client, "customers", customers, customer_mapping())
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
                 "batched lookups, a few polls per job")
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
        self.say(f"--live: syncing the sample into your Kustomer org (key from {API_KEY_ENV})")
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
    options: dict[str, Any] = {"api_key": os.environ.get(API_KEY_ENV) or None}
    for name in ("org", "region", "base_url"):
        value = getattr(args, name, None)
        if value:
            options[name] = value
    return options


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
        client = KustomerClient(**_host_options(args))
    except KustomerError as exc:
        out.write(f"FAILED: {type(exc).__name__}: {exc}\n")
        return 1
    with client:
        try:
            result = client.check()
        except KustomerError as exc:
            out.write(f"FAILED at {client.base_url}: {type(exc).__name__}: {exc}\n")
            return 1
    out.write(str(result) + "\n")
    if result.org:
        out.write(f"org: {result.org}\n")
    out.write(f"roles: {', '.join(result.roles) or '(none)'}\n")
    return 0 if result.ok else 1


# -- emulator ------------------------------------------------------------------------

def cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    """``emulator``: ``python -m kustomer_activations.testing`` with the remaining arguments."""
    from .testing.__main__ import main as serve

    return serve(list(args.emulator_args))


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
    group = parent.add_argument_group(f"Kustomer host (the API key is read from {API_KEY_ENV})")
    hosts = group.add_mutually_exclusive_group()
    hosts.add_argument("--org", help="your org's name: https://<org>.api.kustomerapp.com")
    hosts.add_argument("--region", choices=["us", "eu", "in"], help="a regional host")
    hosts.add_argument("--base-url", help="any other API root (e.g. an emulator's URL); "
                       "default: KUSTOMER_BASE_URL")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand stores its function as ``command``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Sync records into Kustomer as Customers and Companies.",
        epilog=f"Start with '{PROG} demo': it needs no account.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    host = _host_arguments()

    demo = sub.add_parser(
        "demo", parents=[host], help="sync a bundled sample into an embedded emulator",
        description="Sync the bundled sample (companies, then customers with custom fields "
                    "and company links) into an in-process Kustomer emulator and print the "
                    "reports. Needs no credentials; --live sends the sample to a real org.",
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
                      help=f"sync into the org of {API_KEY_ENV} instead of the emulator")
    demo.set_defaults(command=cmd_demo, parser=demo)

    check = sub.add_parser(
        "check", parents=[host], help="test an API key and its roles",
        description=f"Test the API key in {API_KEY_ENV}: valid, right region, and holding "
                    "every role a sync needs. Exit code 0 when it does, 1 otherwise.",
    )
    check.set_defaults(command=cmd_check, parser=check)

    emulator = sub.add_parser(
        "emulator", add_help=False, help="serve the Kustomer emulator over HTTP",
        description="Serve the emulator; see 'emulator --help' for its options.",
    )
    emulator.set_defaults(command=cmd_emulator, parser=emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for usage errors)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is cmd_emulator:
            args.emulator_args = extra
        elif extra:
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    out = sys.stdout
    command: Command = args.command
    try:
        return command(args, out)
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        return 130
