#!/usr/bin/env python
"""State store benchmark: per-row CPU of ``known()`` and ``record_outcomes()``, and file size.

Run it (no pytest)::

    python benchmarks/state_benchmark.py                 # 100k and 1M keys
    python benchmarks/state_benchmark.py --sizes 100000  # one size
    python benchmarks/state_benchmark.py --markdown      # the table as Markdown

What runs
---------
For each size N, in a fresh file in a temporary directory, in chunks of 500
keys (an engine's chunk), as an engine would call the store:

* **create**: run 1 records N ``created`` outcomes (new rows: the insert path);
* **known**: run 2 looks every chunk up with ``known()`` (which also marks the
  rows as seen and refreshes the heartbeat: a write per chunk);
* **update**: run 2 records ``updated`` outcomes (new hashes) for 5 % of the rows,
  spread over the file, as a warm incremental run would;
* **missing**: run 2 lists the rows it did not see (``missing_from_source()``).

Columns: CPU microseconds per row of this process (``time.process_time``; SQLite
runs in-process, so its work counts), wall microseconds per row, and the file's
size after run 2 (with its ``-wal``), in bytes per row and MB. Keys look like
``ext-00012345`` and ids like Kustomer's 24-hex ids.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kustomer_activations.results import Outcome
from kustomer_activations.state import SqliteStateStore, StateOutcome, payload_hash

CHUNK = 500


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name))


def bench(n: int) -> dict[str, float]:
    keys = [f"ext-{i:08d}" for i in range(n)]
    hashes = [payload_hash({"name": f"Customer {i}", "n": i}) for i in range(0, n, 97)]
    out: dict[str, float] = {"rows": n}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        store = SqliteStateStore(path)

        def create() -> None:
            with store.open_run("bench", "customer", "externalId", "fp") as run:
                for start in range(0, n, CHUNK):
                    run.record_outcomes([
                        StateOutcome(key_value=k, outcome=Outcome.CREATED, kustomer_id=f"{i:024x}",
                                     payload_hash=hashes[i % len(hashes)])
                        for i, k in enumerate(keys[start:start + CHUNK], start)
                    ])

        cpu, wall = _timed(create)
        out["create_cpu_us"], out["create_wall_us"] = cpu / n * 1e6, wall / n * 1e6

        run = store.open_run("bench", "customer", "externalId", "fp")

        def known() -> None:
            for start in range(0, n, CHUNK):
                run.known(keys[start:start + CHUNK])

        cpu, wall = _timed(known)
        out["known_cpu_us"], out["known_wall_us"] = cpu / n * 1e6, wall / n * 1e6

        changed = keys[::20]
        newer = payload_hash({"name": "changed"})

        def update() -> None:
            for start in range(0, len(changed), CHUNK):
                run.record_outcomes([StateOutcome(key_value=k, outcome=Outcome.UPDATED, payload_hash=newer)
                                     for k in changed[start:start + CHUNK]])

        cpu, wall = _timed(update)
        out["update_cpu_us"], out["update_wall_us"] = cpu / len(changed) * 1e6, wall / len(changed) * 1e6

        def missing() -> None:
            for _ in run.missing_from_source():
                pass

        cpu, wall = _timed(missing)
        out["missing_cpu_us"] = cpu / n * 1e6
        run.close(True)
        cpu, _ = _timed(lambda: store.summary())
        out["summary_s"] = cpu
        store.close()
        out["file_mb"] = _size(path) / 1e6
        out["bytes_per_row"] = _size(path) / n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cols = ["rows", "create_cpu_us", "known_cpu_us", "update_cpu_us", "missing_cpu_us", "create_wall_us",
            "known_wall_us", "summary_s", "file_mb", "bytes_per_row"]
    rows = [bench(n) for n in args.sizes]
    if args.markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(f"{r[c]:,.0f}" if c == "rows" else f"{r[c]:.2f}" for c in cols) + " |")
    else:
        print(" ".join(f"{c:>15}" for c in cols))
        for r in rows:
            print(" ".join(f"{r[c]:>15,.0f}" if c == "rows" else f"{r[c]:>15.2f}" for c in cols))
    print(f"(sqlite {__import__('sqlite3').sqlite_version}, cpu count {os.cpu_count()})")


if __name__ == "__main__":
    main()
