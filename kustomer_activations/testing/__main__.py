"""Command line: serve the emulator on loopback until Ctrl-C.

    python -m kustomer_activations.testing --port 8099 --requests-per-minute 1000
    python -m kustomer_activations.testing --readings strictest --reading rev=ignored
    python -m kustomer_activations.testing --port 0 --custom-attribute customer:tierStr=Tier

``kustomer-activations emulator serve`` runs the same with the same options.
"""

from __future__ import annotations

import argparse
import errno
import sys
import threading
from collections.abc import Sequence

from ._clock import RealClock, ScaledClock
from ._emulator import KustomerEmulator
from ._readings import PRESETS, Readings

_KINDS = ("customer", "company")


def parse_custom_attribute(text: str) -> tuple[str, str, str | None]:
    """``KIND:NAME[=DISPLAY NAME]`` -> (kind, name, display name); ``ValueError`` if malformed."""
    kind, sep, rest = text.partition(":")
    name, _, display = rest.partition("=")
    if not sep or kind not in _KINDS or not name:
        raise ValueError(f"--custom-attribute takes KIND:NAME[=DISPLAY NAME] with KIND customer "
                         f"or company, e.g. customer:tierStr; got {text!r}")
    return kind, name, display or None


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Parse arguments, serve, block until interrupted.

    Exit codes: 0 after Ctrl-C, 2 for a usage error or a port that is taken.
    """
    p = argparse.ArgumentParser(prog=prog or "python -m kustomer_activations.testing",
                                description="Serve an in-memory fake Kustomer over HTTP.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; loopback only unless you say so)")
    p.add_argument("--port", type=int, default=8099, help="port (0 = any free port)")
    p.add_argument("--requests-per-minute", type=int, default=1000)
    p.add_argument("--searches-per-minute", type=int, default=100)
    p.add_argument("--search-lag", type=float, default=0.0, help="seconds")
    p.add_argument("--bulk-delay", type=float, default=1.0, help="seconds")
    p.add_argument("--bulk-item-delay", type=float, default=0.01, help="seconds per item")
    p.add_argument("--scale", type=float, default=None,
                   help="run time this many times faster (ScaledClock)")
    p.add_argument("--region", default="us", choices=["us", "eu", "in"])
    p.add_argument("--fault-rate", type=float, default=0.0,
                   help="probability of a random fault per request")
    p.add_argument("--seed", type=int, default=None, help="seed for random faults")
    p.add_argument("--readings", default="default", choices=sorted(PRESETS), metavar="PRESET",
                   help="readings of unclear Kustomer behaviour: 'default' or 'strictest'")
    p.add_argument("--reading", action="append", default=[], metavar="NAME=VALUE",
                   help="change one reading, e.g. search_hits=minimal (repeatable)")
    p.add_argument("--custom-attribute", action="append", default=[],
                   metavar="KIND:NAME[=DISPLAY]",
                   help="define a custom attribute in the org's metadata, e.g. customer:tierStr "
                        "(repeatable; the suffix gives the type: Str, Num, Bool, At, ...)")
    args = p.parse_args(argv)
    for item in args.reading:
        if "=" not in item:
            p.error(f"--reading takes NAME=VALUE, got {item!r}")
    attributes = []
    for item in args.custom_attribute:
        try:
            attributes.append(parse_custom_attribute(item))
        except ValueError as exc:
            p.error(str(exc))
    try:
        readings = Readings.parse(",".join([args.readings, *args.reading]))
    except ValueError as exc:
        p.error(str(exc))
    clock = ScaledClock(args.scale) if args.scale else RealClock()
    emu = KustomerEmulator(args.requests_per_minute, args.searches_per_minute,
                           search_lag=args.search_lag, bulk_delay=args.bulk_delay,
                           bulk_item_delay=args.bulk_item_delay, clock=clock,
                           region=args.region, seed=args.seed, log_bodies=False,
                           readings=readings)
    for kind, name, display in attributes:
        try:
            emu.define_custom_attribute(kind, name, displayName=display)
        except ValueError as exc:  # e.g. a name without a type suffix
            p.error(f"--custom-attribute {kind}:{name}: {exc}")
    if args.fault_rate > 0:
        emu.faults.random(args.fault_rate, seed=args.seed)
    try:
        server = emu.serve(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = (f"port {args.port} on {args.host} is taken (another emulator?): choose "
                      "another with --port, or --port 0 for any free port")
        else:
            reason = f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        print(f"{p.prog}: error: {reason}", file=sys.stderr, flush=True)
        return 2
    print(f"Kustomer emulator listening on {server.url} (Ctrl-C to stop)", flush=True)
    if attributes:
        print("custom attributes: " + ", ".join(f"{k}:{n}" for k, n, _ in attributes),
              file=sys.stderr, flush=True)
    print(f"readings: {readings}", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
