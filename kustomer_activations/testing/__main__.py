"""Command line: serve the emulator on loopback until Ctrl-C.

    python -m kustomer_activations.testing --port 8099 --requests-per-minute 1000
    python -m kustomer_activations.testing --readings strictest --reading rev=ignored
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from ._clock import RealClock, ScaledClock
from ._emulator import KustomerEmulator
from ._readings import PRESETS, Readings


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve, block until interrupted."""
    p = argparse.ArgumentParser(prog="python -m kustomer_activations.testing",
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
    args = p.parse_args(argv)
    for item in args.reading:
        if "=" not in item:
            p.error(f"--reading takes NAME=VALUE, got {item!r}")
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
    if args.fault_rate > 0:
        emu.faults.random(args.fault_rate, seed=args.seed)
    server = emu.serve(args.host, args.port)
    print(f"Kustomer emulator listening on {server.url} (Ctrl-C to stop)", flush=True)
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
