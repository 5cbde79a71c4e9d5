"""A fault soak: seeded random faults over whole syncs, cold then warm, every promise checked.

Each case syncs rows cold (nothing in Kustomer), then again warm with about
5 % of the rows changed, while the emulator answers a seeded share of the
requests with 429s, 5xx, timeouts, connection resets, lost responses,
gateway errors after the write was applied, and (with a short job TTL)
expired bulk jobs. After each run the invariants of ``_invariants.py`` are
checked and one line per case is printed (run ``pytest -s`` to see them)::

    SOAK key=... flavor=... readings=... seed=...: rows=... | cold ... | warm ... | faults {...}

The short soak always runs (a few hundred rows a case). ``KA_LONG_TESTS=1``
adds the long one: 5,000 rows a case over several seeds.
"""

from __future__ import annotations

import inspect
import os
import random
from collections import Counter
from typing import Any

import pytest

from kustomer_activations import Outcome
from kustomer_activations.testing import Fault, KustomerEmulator, RequestRecord

from ..helpers import FLAVORS
from ._harness import CUSTOM, KEYS, Run, check_run, new_client, new_emulator, sync
from ._invariants import Verdict

LONG = os.environ.get("KA_LONG_TESTS") == "1"
CUSTOM_KEY = f"custom.{CUSTOM}"
#: Share of requests that get a random fault.
RATE = 0.12
#: Share of rows changed for the warm run.
CHANGED = 0.05
#: At least this share of rows must end ok each run: a sync failing everything keeps no promise.
MIN_OK = 0.9
#: Simulated seconds one run may take. The virtual clock never blocks, so the sleeps of
#: concurrent threads (sync client) add up; past this the clock has run away, and the
#: rest (search's two-year window, dates past year 9999) stops meaning anything.
MAX_SIMULATED = 4 * 3600.0


def _supports(name: str) -> bool:
    return name in inspect.signature(KustomerEmulator).parameters


def _fault_kinds() -> list[str]:
    kinds = ["rate_limit", "status:500", "status:502", "status:503", "timeout",
             "connection_reset", "lost_response"]
    if hasattr(Fault, "applied_then_status"):
        kinds.append("applied_then_status:503")
    return kinds


def _readings() -> list[Any]:
    """Emulator readings to soak under: the default, the strictest, and expiring bulk jobs."""
    if not _supports("readings"):
        return [pytest.param(None, id="default")]
    return [pytest.param(None, id="default"),
            pytest.param("strictest", id="strictest"),
            pytest.param({"bulk_job_ttl": 1.0}, id="bulk_job_ttl=1")]


COMPANIES = 5


def make_rows(n: int, key: str, seed: int, company_share: float = 0.5) -> list[dict[str, Any]]:
    """Rows that always carry ``key``; the other fields vary (seeded) so that some
    rows have a unique anchor (externalId, email) and some have only the custom key,
    and ``company_share`` of them link a company (``companyExternalId``)."""
    rng = random.Random(f"rows-{seed}-{key}")
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"name": f"Customer {i}", "custom": {CUSTOM: f"acct-{seed}-{i}"}}
        if rng.random() < company_share:
            row["companyExternalId"] = f"co-{rng.randrange(COMPANIES)}"
        shape = rng.random()
        if key == "externalId" or (key != "email" and shape < 1 / 3) or (key == "email" and shape < 0.5):
            row["externalId"] = f"ext-{seed}-{i}"
        if key == "email" or (key == "externalId" and shape < 0.5) or (
                key == CUSTOM_KEY and shape < 2 / 3 and "externalId" not in row):
            row["emails"] = [{"email": f"c{seed}-{i}@example.com"}]
        if rng.random() < 0.3:
            row["custom"]["ltvNum"] = rng.randint(1, 10_000)
        rows.append(row)
    return rows


def change_some(rows: list[dict[str, Any]], key: str, seed: int) -> tuple[list[dict[str, Any]], int]:
    """About :data:`CHANGED` of the rows changed: names, a number, and emails where they are
    not the key (array fields make the SDK read the live object before updating)."""
    rng = random.Random(f"warm-{seed}-{key}")
    out, changed = [], 0
    for i, row in enumerate(rows):
        if rng.random() >= CHANGED:
            out.append(row)
            continue
        changed += 1
        new = {**row, "name": f"{row['name']} (renamed)", "custom": dict(row["custom"])}
        new["custom"]["ltvNum"] = rng.randint(10_001, 20_000)
        if key != "email" and row.get("emails") and rng.random() < 0.5:
            new["emails"] = [*row["emails"], {"email": f"extra-{seed}-{i}@example.com"}]
        out.append(new)
    return out, changed


def _faults_by_kind(records: list[RequestRecord]) -> Counter[str]:
    kinds = Counter(r.fault for r in records if r.fault)
    expired = sum(1 for r in records if r.status == 404 and r.endpoint.startswith("GET /v1/bulk/"))
    if expired:
        kinds["expired_bulk_job(404)"] = expired
    return kinds


def _ok_rows(verdict: Verdict) -> int:
    return sum(verdict.outcomes.get(o.value, 0) for o in (Outcome.CREATED, Outcome.UPDATED,
                                                           Outcome.UNCHANGED))


def soak(flavor: str, key: str, readings: Any, seed: int, n: int, chunk_size: int) -> str:
    options: dict[str, Any] = {"seed": seed}
    if readings is not None:
        options["readings"] = readings
    emu = new_emulator(**options)
    for c in range(COMPANIES):
        emu.seed_company({"name": f"Company {c}", "externalId": f"co-{c}"})
    emu.faults.random(RATE, kinds=_fault_kinds(), seed=seed)
    client = new_client(flavor, emu, max_retries=3)
    # Where Kustomer's answers hide a customer's company link, the SDK only updates
    # rows that map the link (else the update would unlink it): every row maps one.
    hidden = getattr(emu, "readings", None) is not None and emu.readings.company_link == "hidden"
    rows = make_rows(n, key, seed, company_share=1.0 if hidden else 0.5)
    via = ("many", "stream")[(KEYS.index(key) + FLAVORS.index(flavor) + seed) % 2]

    lines: list[str] = []
    verdicts: list[tuple[str, Run, Verdict]] = []
    mark = 0
    faults: Counter[str] = Counter()
    changed = 0
    for phase in ("cold", "warm"):
        if phase == "warm":
            rows, changed = change_some(rows, key, seed)
        run = sync(flavor, client, emu, rows, key, via=via, chunk_size=chunk_size)
        verdict = check_run(emu, run, f"{phase} sync")
        records = emu.requests
        phase_faults = _faults_by_kind(records[mark:])
        mark = len(records)
        faults += phase_faults
        verdicts.append((phase, run, verdict))
        lines.append(f"{phase} {verdict.line()} {run.elapsed:.0f}s simulated, "
                     f"{sum(phase_faults.values())} faults")
    label = (f"SOAK key={key} flavor={flavor} readings={_readings_label(readings)} seed={seed} "
             f"via={via}: rows={n} (warm changed {changed})")
    summary = f"{label} | " + " | ".join(lines) + f" | faults {dict(sorted(faults.items()))}"
    print(summary)
    for phase, run, verdict in verdicts:
        assert run.elapsed < MAX_SIMULATED, (
            f"{summary}\n{phase}: the virtual clock ran away ({run.elapsed:.0f}s simulated): "
            f"concurrent sleeps add up on a clock that never blocks")
        assert run.error is None, f"{summary}\n{phase}: {run.describe()}"
        verdict.assert_ok(summary)
        assert _ok_rows(verdict) >= MIN_OK * n, f"{summary}\n{phase}: {run.describe()}"
    assert sum(faults.values()) >= 5 and len(faults) >= 3, f"too few faults to mean anything: {summary}"
    return summary


def _readings_label(readings: Any) -> str:
    if readings is None:
        return "default"
    if isinstance(readings, dict):
        return ",".join(f"{k}={v}" for k, v in readings.items())
    return str(readings)


@pytest.mark.parametrize("readings", _readings())
@pytest.mark.parametrize("key", KEYS)
def test_short_soak(flavor: str, key: str, readings: Any) -> None:
    soak(flavor, key, readings, seed=11, n=300, chunk_size=25)


def _long_cases() -> list[Any]:
    """Every key under every reading with several seeds; the flavor rotates so that each
    flavor meets each key and each reading (the whole grid would take hours)."""
    cases = []
    for seed in (1, 2, 3):
        for k, key in enumerate(KEYS):
            for r, readings in enumerate(_readings()):
                flavor = FLAVORS[(seed + k + r) % len(FLAVORS)]
                cases.append(pytest.param(flavor, key, readings.values[0], seed,
                                          id=f"{flavor}-{key}-{readings.id}-{seed}"))
    return cases


@pytest.mark.skipif(not LONG, reason="set KA_LONG_TESTS=1 for the long soak (5,000 rows a case)")
@pytest.mark.parametrize(("flavor_", "key", "readings", "seed"), _long_cases())
def test_long_soak(flavor_: str, key: str, readings: Any, seed: int) -> None:
    soak(flavor_, key, readings, seed=seed, n=5000, chunk_size=100)
