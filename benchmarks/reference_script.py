#!/usr/bin/env python
"""The yardstick for client CPU: a ~50-line httpx script that does the least a sync can.

It maps the same rows as ``cpu_benchmark.py`` (8 fields, by hand), searches
500 external ids per request, creates the rows not found 100 per bulk
request, and never reads a job's results: no validation, no per-row
outcomes, no retries, no pacing. Its CPU per row on this machine is what
``cpu_benchmark.py --client`` compares the SDK's with (the issue's table
measured such a script at 19-28 µs/row on its machine).

With ``--read-results`` it also reads each job's outcome once
(``GET /v1/bulk/{id}/batches``, decoded, each item's status counted): the
least a client that reports every row's outcome must send and parse, at the
issue's floor of 0.022 requests a row, still with no validation. The
emulator's jobs finish at once here, so each read follows its submission.

    python benchmarks/reference_script.py URL ROWS [--read-results]
    # prints {"cpu": s, "gen": s, "rows": n, "requests": r}
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import Any

import httpx

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from cpu_benchmark import rows, sample_rows


def body(row: dict[str, str]) -> dict[str, Any]:
    """The row as a Kustomer customer (the benchmark's 8 destinations; blanks left out)."""
    out: dict[str, Any] = {"externalId": row["id"],
                           "name": f"{row['first_name']} {row['last_name']}".strip()}
    custom: dict[str, Any] = {}
    if row["email"]:
        out["emails"] = [{"type": "home", "email": row["email"]}]
    if row["phone"]:
        out["phones"] = [{"type": "mobile", "phone": row["phone"]}]
    if row["plan"]:
        custom["planStr"] = row["plan"]
    if row["lifetime_value"]:
        custom["lifetimeValueNum"] = float(row["lifetime_value"])
    if row["signup_date"]:
        custom["signupAt"] = f"{dt.date.fromisoformat(row['signup_date']).isoformat()}T00:00:00.000Z"
    if row["vip"]:
        custom["vipBool"] = row["vip"].strip().lower() == "true"
    out["custom"] = custom
    return out


def sync(http: httpx.Client, base: list[dict[str, str]], n: int, read: bool = False) -> int:
    """Search 500 keys at a time, bulk-create the missing ones 100 at a time; the requests sent."""
    chunk: list[dict[str, Any]] = []
    sent = 0
    for row in rows(base, 0, n):
        chunk.append(body(row))
        if len(chunk) == 500:
            sent += _chunk(http, chunk, read)
            chunk = []
    if chunk:
        sent += _chunk(http, chunk, read)
    return sent


def _chunk(http: httpx.Client, chunk: list[dict[str, Any]], read: bool) -> int:
    ids = [c["externalId"] for c in chunk]
    found = http.post("/v1/customers/search", params={"pageSize": 500}, json={
        "and": [{"customer_externalId": {"in": ids}}], "queryContext": "customer"})
    found.raise_for_status()
    known = {hit["attributes"].get("externalId") for hit in found.json()["data"]}
    new = [c for c in chunk if c["externalId"] not in known]
    sent = 1
    for start in range(0, len(new), 100):
        batch = new[start:start + 100]
        job = http.post("/v1/customers/bulk", json=batch)
        job.raise_for_status()
        sent += 1
        if read:
            _read_results(http, job.json()["data"]["id"], len(batch))
            sent += 1
    return sent


def _read_results(http: httpx.Client, job_id: str, items: int) -> None:
    """One read of a job's outcome, each item's status counted (what per-row outcomes need)."""
    answer = http.get(f"/v1/bulk/{job_id}/batches")
    answer.raise_for_status()
    outcomes: dict[str, int] = {}
    for batch in answer.json():
        for item in batch["results"]:
            outcomes[item["status"]] = outcomes.get(item["status"], 0) + 1
    if sum(outcomes.values()) != items:
        raise RuntimeError(f"job {job_id}: {outcomes} for {items} items")


if __name__ == "__main__":
    read_results = "--read-results" in sys.argv[3:]
    if len(sys.argv) != 3 + read_results:
        sys.exit("usage: python benchmarks/reference_script.py URL ROWS [--read-results]  "
                 "(an emulator's URL: cpu_benchmark.py --client starts one)")
    url, n = sys.argv[1], int(sys.argv[2])
    # Set up before the clock starts, as cpu_benchmark.py does for the SDK: the
    # client (httpcore's imports, a TLS context) and the sample rows.
    base = sample_rows()
    with httpx.Client(base_url=url, headers={"Authorization": "Bearer bench"}) as http:
        cpu = time.process_time()
        requests = sync(http, base, n, read_results)
        cpu = time.process_time() - cpu
    gen = time.process_time()
    for _ in rows(base, 0, n):
        pass
    gen = time.process_time() - gen
    print(json.dumps({"cpu": cpu, "gen": gen, "rows": n, "requests": requests}))
