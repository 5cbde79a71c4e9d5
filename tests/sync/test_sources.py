"""Rows from files: ``upsert_many(path)``, ``read_csv`` (BOM, delimiters) and ``read_jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kustomer_activations import Outcome, SyncReport, read_csv, read_jsonl
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, make_client

HEADER = "externalId,name,locale"
LINES = ["p-1,Ada Lovelace,en_GB", "p-2,Grace Hopper,en_US"]


def _client(flavor: str, emu: KustomerEmulator) -> Any:
    return make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock)


def _upsert_many(flavor: str, client: Any, rows: Any, **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client, lambda c: c.customers.upsert_many(rows, **kw))
    return report


def _csv(tmp_path: Path, name: str = "people.csv", *, bom: bool = False, sep: str = ",") -> Path:
    text = "\n".join(line.replace(",", sep) for line in [HEADER, *LINES]) + "\n"
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "Path"])
def test_upsert_many_reads_a_csv_path(flavor: str, tmp_path: Path, as_str: bool) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    path = _csv(tmp_path, bom=True)
    report = _upsert_many(flavor, _client(flavor, emu), str(path) if as_str else path)
    assert (report.rows, report.created, report.failed_rows) == (2, 2, 0), report.summary()
    [ada] = emu.find_customers(externalId="p-1")
    assert ada["name"] == "Ada Lovelace"
    assert ada["locale"] == "en_GB"


def test_upsert_many_reads_jsonl_and_tsv_paths(flavor: str, tmp_path: Path) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    jsonl = tmp_path / "people.jsonl"
    jsonl.write_text('{"externalId": "j-1", "name": "Jo"}\n\n{"externalId": "j-2", "name": "Al"}\n')
    tsv = _csv(tmp_path, "people.tsv", sep="\t")
    client = _client(flavor, emu)
    assert _upsert_many(flavor, client, jsonl).created == 2
    assert _upsert_many(flavor, client, tsv).created == 2
    assert emu.find_customers(externalId="j-2")[0]["name"] == "Al"
    assert emu.find_customers(externalId="p-2")[0]["name"] == "Grace Hopper"


def test_upsert_many_refuses_other_extensions_saying_what_to_call(flavor: str, tmp_path: Path) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    path = tmp_path / "people.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"'people\.xlsx'.*pandas\.read_excel"):
        _upsert_many(flavor, _client(flavor, emu), path)
    assert emu.requests == []  # refused before any request


def test_upsert_many_names_a_missing_file_before_any_request(flavor: str, tmp_path: Path) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        _upsert_many(flavor, _client(flavor, emu), str(tmp_path / "nope.csv"))
    assert emu.requests == []


def test_stream_upsert_reads_a_path(tmp_path: Path) -> None:
    emu = KustomerEmulator(clock=VirtualClock())
    client = _client("sync", emu)
    with client.customers.stream_upsert(str(_csv(tmp_path))) as results:
        outcomes = sorted((r.row, r.outcome) for r in results)
    assert outcomes == [(0, Outcome.CREATED), (1, Outcome.CREATED)]


def test_read_csv_drops_the_utf8_bom_excel_writes(tmp_path: Path) -> None:
    rows = list(read_csv(_csv(tmp_path, bom=True)))
    assert list(rows[0]) == ["externalId", "name", "locale"]
    assert rows[0]["externalId"] == "p-1"


def test_read_csv_takes_a_delimiter(tmp_path: Path) -> None:
    rows = list(read_csv(_csv(tmp_path, "eu.csv", sep=";"), delimiter=";"))
    assert rows[1] == {"externalId": "p-2", "name": "Grace Hopper", "locale": "en_US"}


def test_read_jsonl_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"externalId": "1"}) + "\n{oops\n")
    rows = read_jsonl(path)
    assert next(rows) == {"externalId": "1"}
    with pytest.raises(ValueError, match=r"rows\.jsonl line 2"):
        next(rows)
