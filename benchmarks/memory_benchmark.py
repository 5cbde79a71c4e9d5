#!/usr/bin/env python
"""Memory benchmark: peak RSS of ``upsert_many`` as the streamed input grows.

Run it (no pytest)::

    python benchmarks/memory_benchmark.py                    # 10k, 100k, 1M rows
    python benchmarks/memory_benchmark.py --big              # ... and 10M (~25 min of CPU)
    python benchmarks/memory_benchmark.py --async            # AsyncKustomerClient as well
    python benchmarks/memory_benchmark.py --rows 100000 --backend emulator
    python benchmarks/memory_benchmark.py --markdown --json memory.json

What it measures
----------------
For each size a fresh child process (``--worker``) imports the SDK, creates
a client, records its peak resident memory (``VmHWM``: the baseline),
then streams N generated rows (a generator: the input is never held)
through ``client.customers.upsert_many`` with default options, and records
the peak again. The table shows the growth of the peak over the baseline,
and its growth from one size to the next, which should be ~0 once the
key index has spilled to disk.

Two servers
-----------
*fake* (the default): a **memory harness for the client only, not a
fidelity test**. The child answers in-process, without storing anything
per row: searches go to an empty :class:`KustomerEmulator` (no customer is
ever stored, so it never finds one), bulk creates and updates get a job
whose status is ``complete`` and whose batches report each item created
(the job's ``_clientRef`` values are kept only until its batches are read).
Time is a :class:`VirtualClock`, so rate-limit pacing and bulk polling cost
no wall time. Every row is therefore new and created: the cold path, which
exercises the key index, the report and the recent-writes memory.

*emulator* (``--backend emulator``): the real emulator, serving loopback
HTTP from this (parent) process, so its store of every customer never
counts as the SDK's. It has huge rate limits and no bulk delay, so the sync
is CPU-bound; fine up to ~1M rows (the emulator keeps every customer).

Target (issue 10): peak RSS <= 40 MB above the baseline at 1M rows, and no
growth from 1M to 10M; checked under the table (``PASS`` / ``FAIL``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

SIZES = (10_000, 100_000, 1_000_000)
BIG = 10_000_000
TARGET_MB = 40.0


def rows(n: int) -> Iterator[dict[str, Any]]:
    """The input, generated lazily so its size is never held in memory."""
    for i in range(n):
        yield {"name": f"Customer {i}", "externalId": f"ext-{i:08d}",
               "custom": {"tierStr": ("gold", "silver", "bronze")[i % 3]}}


def _peak_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    ``VmHWM`` first: Linux carries ``ru_maxrss`` over ``exec`` from the
    forking parent, so with the emulator (a big parent) it would start high.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# -- the stateless fake server (child process) ------------------------------------------

def fake_transport(clock: Any) -> Any:
    """An httpx transport (sync and async) that stores nothing per row; see the module docs."""
    import httpx

    from kustomer_activations.testing import KustomerEmulator

    emu = KustomerEmulator(requests_per_minute=1000, searches_per_minute=100, clock=clock,
                           log_bodies=False)
    emu.define_custom_attribute("customer", "tierStr", "Tier")
    inner = emu.transport
    log = emu._app.log
    jobs: OrderedDict[str, list[str | None]] = OrderedDict()
    ids = itertools.count(1)
    lock = threading.Lock()

    def bulk(request: httpx.Request, body: bytes) -> httpx.Response:
        items = json.loads(body)
        job = f"{next(ids):024x}"
        with lock:
            jobs[job] = [item.get("_clientRef") for item in items]
            while len(jobs) > 1000:  # jobs whose batches were never read
                jobs.popitem(last=False)
        return httpx.Response(201, json={"data": {"type": "bulk", "id": job, "attributes": {
            "status": "queued", "count": len(items), "completed": False}}}, request=request)

    def job_status(request: httpx.Request, job: str) -> httpx.Response:
        return httpx.Response(200, json={"data": {"type": "bulk", "id": job, "attributes": {
            "status": "complete", "completed": True}}}, request=request)

    def batches(request: httpx.Request, job: str) -> httpx.Response:
        with lock:
            refs = jobs.pop(job, [])
        results = []
        for ref in refs:
            out: dict[str, Any] = {"objectId": f"{next(ids):024x}", "status": "created"}
            if ref is not None:
                out["_clientRef"] = ref
            results.append(out)
        return httpx.Response(200, json=[{
            "successCount": len(results), "failureCount": 0,
            "objectIds": [r["objectId"] for r in results], "results": results}], request=request)

    def route(request: httpx.Request, body: bytes) -> httpx.Response | None:
        path = request.url.path
        if path.endswith("/bulk") and request.method in ("POST", "PUT"):
            return bulk(request, body)
        if path.startswith("/v1/bulk/"):
            parts = path.split("/")
            return batches(request, parts[3]) if path.endswith("/batches") \
                else job_status(request, parts[3])
        log.clear()  # the emulator logs each request it answers: not the SDK's memory
        return None

    class Fake(httpx.BaseTransport, httpx.AsyncBaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return route(request, request.read()) or inner.handle_request(request)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return route(request, await request.aread()) or await inner.handle_async_request(request)

    return Fake(), emu.base_url


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one sync of ``spec["rows"]`` rows and measure the peak RSS; runs in a child."""
    import anyio
    import httpx

    from kustomer_activations import AsyncKustomerClient, KustomerClient
    from kustomer_activations.testing import ScaledClock, VirtualClock

    n, use_async = spec["rows"], spec["async"]
    clock: Any
    if spec["backend"] == "fake":
        clock = VirtualClock()
        transport, url = fake_transport(clock)
    else:
        clock = ScaledClock(scale=spec["scale"], start=spec["start"])
        transport, url = (httpx.AsyncHTTPTransport() if use_async else httpx.HTTPTransport()), spec["url"]
    http: Any = (httpx.AsyncClient if use_async else httpx.Client)(transport=transport)
    client: Any = (AsyncKustomerClient if use_async else KustomerClient)(
        api_key="bench", base_url=url, http_client=http, clock=clock)

    baseline = _peak_mb()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if use_async:
        async def main() -> Any:
            return await client.customers.upsert_many(rows(n), key="externalId")
        report = anyio.run(main)
    else:
        report = client.customers.upsert_many(rows(n), key="externalId")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = _peak_mb()
    return {"rows": n, "async": use_async, "backend": spec["backend"], "baseline_mb": baseline,
            "peak_mb": peak, "growth_mb": peak - baseline, "wall_s": wall, "cpu_s": cpu,
            "counts": {o.value: c for o, c in report.counts.items() if c},
            "failures_kept": len(report.failures), "requests": report.requests}


# -- the orchestrating process ------------------------------------------------------------

def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure(args: argparse.Namespace, n: int, use_async: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"rows": n, "async": use_async, "backend": args.backend,
                            "scale": 600.0, "start": time.time()}
    server = None
    if args.backend == "emulator":
        from kustomer_activations.testing import KustomerEmulator, ScaledClock

        clock = ScaledClock(scale=spec["scale"], start=spec["start"])
        # Huge limits and no bulk delay: the sync is bound by CPU, not by pacing.
        emu = KustomerEmulator(requests_per_minute=10**8, searches_per_minute=10**8, clock=clock,
                               log_bodies=False, bulk_delay=0.0, bulk_item_delay=0.0)
        emu.define_custom_attribute("customer", "tierStr", "Tier")
        server = emu.serve()
        spec["url"] = server.url
    try:
        out = run_child(spec)
    finally:
        if server is not None:
            server.close()
    if not args.markdown:
        print(f"  {'async' if use_async else 'sync '} {n:>10,} rows: +{out['growth_mb']:.1f} MB "
              f"(baseline {out['baseline_mb']:.1f} MB), wall {out['wall_s']:.0f}s, {out['counts']}",
              file=sys.stderr, flush=True)
    return out


def fmt_table(results: list[dict[str, Any]], markdown: bool) -> str:
    head = ["client", "rows", "baseline MB", "peak MB", "growth MB", "vs previous", "wall s",
            "CPU s", "µs/row", "failures kept"]
    body = []
    previous: dict[bool, float] = {}
    for r in results:
        prev = previous.get(r["async"])
        body.append(["async" if r["async"] else "sync", f"{r['rows']:,}", f"{r['baseline_mb']:.1f}",
                     f"{r['peak_mb']:.1f}", f"{r['growth_mb']:.1f}",
                     "-" if prev is None else f"{r['growth_mb'] - prev:+.1f}",
                     f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}",
                     f"{r['cpu_s'] / r['rows'] * 1e6:.0f}", str(r["failures_kept"])])
        previous[r["async"]] = r["growth_mb"]
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def check_targets(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for use_async in sorted({r["async"] for r in results}):
        mine = {r["rows"]: r for r in results if r["async"] == use_async}
        label = "async" if use_async else "sync"
        if 1_000_000 in mine:
            g = mine[1_000_000]["growth_mb"]
            lines.append(f"[{'PASS' if g <= TARGET_MB else 'FAIL'}] {label} 1,000,000 rows: "
                         f"+{g:.1f} MB over the baseline (<= {TARGET_MB:.0f} MB)")
        if 1_000_000 in mine and BIG in mine:
            a, b = mine[1_000_000]["growth_mb"], mine[BIG]["growth_mb"]
            # "No growth" allows allocator noise: 5 % of the 1M figure or 2 MB.
            ok = b - a <= max(2.0, 0.05 * a)
            lines.append(f"[{'PASS' if ok else 'FAIL'}] {label} 1M -> 10M rows: "
                         f"{a:.1f} -> {b:.1f} MB (no growth)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", default=",".join(str(s) for s in SIZES),
                        help="row counts, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--big", action="store_true", help="also 10,000,000 rows")
    parser.add_argument("--async", dest="use_async", action="store_true",
                        help="also measure AsyncKustomerClient")
    parser.add_argument("--backend", choices=("fake", "emulator"), default="fake",
                        help="fake: stateless in-process server (default); emulator: loopback HTTP")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", metavar="PATH", help="also write every number to PATH")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    sizes = [int(s) for s in args.rows.split(",") if s.strip()]
    if args.big and BIG not in sizes:
        sizes.append(BIG)
    started = time.perf_counter()
    results = []
    for use_async in (False, True) if args.use_async else (False,):
        for n in sizes:
            results.append(measure(args, n, use_async))
    runtime = time.perf_counter() - started
    print(fmt_table(results, args.markdown))
    print()
    print(f"backend {args.backend}; growth = peak RSS (VmHWM) of the SDK process during the "
          f"sync over its peak after imports and client creation; total runtime "
          f"{runtime / 60:.1f} min")
    for line in check_targets(results):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"backend": args.backend, "runtime_s": runtime, "results": results}, fh,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
