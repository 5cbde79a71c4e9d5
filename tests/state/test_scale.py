"""Scale: a hundred thousand rows through the batch API, as an engine's chunks would."""

from __future__ import annotations

from pathlib import Path

from kustomer_activations import Outcome
from kustomer_activations.state import SqliteStateStore, StateOutcome, payload_hash

ROWS = 100_000
CHUNK = 500


def test_a_hundred_thousand_rows_round_trip_in_chunks(path: Path) -> None:
    keys = [f"ext-{i:07d}" for i in range(ROWS)]
    h = payload_hash({"name": "same"})
    store = SqliteStateStore(path)
    with store.open_run("big", "customer", "externalId", "fp") as run:
        for start in range(0, ROWS, CHUNK):
            chunk = keys[start:start + CHUNK]
            assert run.known(chunk) == {}
            run.record_outcomes([StateOutcome(key_value=k, outcome=Outcome.CREATED, kustomer_id="i" + k,
                                              payload_hash=h) for k in chunk])
    unchanged = 0
    with store.open_run("big", "customer", "externalId", "fp") as run:
        for start in range(0, ROWS - CHUNK, CHUNK):  # the last chunk left the source
            known = run.known(keys[start:start + CHUNK])
            unchanged += sum(entry.is_unchanged(h) for entry in known.values())
        missing = list(run.missing_from_source())
    assert unchanged == ROWS - CHUNK
    assert missing == keys[-CHUNK:]
    summary = store.summary("big").syncs[0]
    assert summary.rows_known == ROWS and summary.rows_failed == 0
    store.close()
    # the key is the table's clustered primary key: no second copy of it in an index
    assert path.stat().st_size < ROWS * 120
