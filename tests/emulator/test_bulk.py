"""Bulk jobs: lifecycle, outcomes, _clientRef, whole-request rejection."""

from __future__ import annotations

from typing import Any

import httpx

from kustomer_activations.testing import KustomerEmulator, VirtualClock


def _submit(client: httpx.Client, items: list[dict[str, Any]], method: str = "POST",
            path: str = "/v1/customers/bulk") -> dict[str, Any]:
    r = client.request(method, path, json=items)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def test_lifecycle_and_outcomes(client: httpx.Client, emu: KustomerEmulator) -> None:
    clock = emu.clock
    assert isinstance(clock, VirtualClock)
    emu.seed_customer({"externalId": "taken"})
    job = _submit(client, [{"name": "A", "externalId": "a", "_clientRef": "r0"},
                           {"name": "B", "externalId": "taken", "_clientRef": "r1"},
                           {"name": "C", "externalId": "a", "_clientRef": "r2"}])
    assert job["type"] == "bulk" and job["attributes"]["status"] == "queued"
    assert job["attributes"]["count"] == 3 and job["links"]["self"] == f"/v1/bulk/{job['id']}"

    def status() -> dict[str, Any]:
        got: dict[str, Any] = client.get(f"/v1/bulk/{job['id']}").json()["data"]["attributes"]
        return got

    def batches() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = client.get(f"/v1/bulk/{job['id']}/batches").json()
        return got

    assert batches() == []  # the documented shape: no batch until the job is complete
    assert len(emu.customers) == 1  # nothing applied yet
    clock.advance(1.0)
    assert status()["status"] == "running"
    clock.advance(0.03)  # 1 + 3 * 0.01
    att = status()
    assert att["status"] == "complete" and att["counts"] == {"created": 1, "updated": 0,
                                                              "error": 2}
    [batch] = batches()
    items = batch["results"]
    assert [i["_clientRef"] for i in items] == ["r0", "r1", "r2"]
    assert [i["status"] for i in items] == ["created", "error", "error"]
    assert items[0]["objectId"] in emu.customers and "error" not in items[0]
    assert items[1]["error"] == "duplicate detected"  # against stored data
    assert items[2]["error"] == "duplicate detected"  # inside the same job
    assert "objectId" not in items[1]
    assert (batch["successCount"], batch["failureCount"]) == (1, 2)
    assert batch["objectIds"] == [items[0]["objectId"]]
    assert len(emu.customers) == 2


def test_bulk_update_and_unknown_id(client: httpx.Client, emu: KustomerEmulator) -> None:
    co = emu.seed_company({"name": "Acme"})
    ident = emu.seed_customer({"name": "Old", "company": co})
    job = _submit(client, [{"id": ident, "name": "New", "company": co},
                           {"id": "0" * 24, "name": "Ghost"}], method="PUT")
    emu.clock.sleep(2)
    items = client.get(f"/v1/bulk/{job['id']}/batches").json()[0]["results"]
    assert [i["status"] for i in items] == ["updated", "error"]
    assert "_clientRef" not in items[0] and items[1]["error"] == "not found"
    assert items[0]["objectId"] == ident
    assert emu.customers[ident]["name"] == "New" and emu.customers[ident]["company"] == co


def test_bulk_update_without_company_unlinks(client: httpx.Client, emu: KustomerEmulator) -> None:
    co = emu.seed_company({"name": "Acme"})
    ident = emu.seed_customer({"name": "Old", "company": co})
    _submit(client, [{"id": ident, "name": "New"}], method="PUT")
    emu.clock.sleep(2)
    emu.advance_jobs()
    assert emu.customers[ident]["company"] is None


def test_whole_request_rejected(client: httpx.Client, emu: KustomerEmulator) -> None:
    good = {"name": "ok"}
    cases: list[tuple[Any, str]] = [
        ([good] * 101, "/"),
        ({"name": "not a list"}, "/"),
        ([], "/"),
        ([good, good, {"name": "x", "custom": {"tierQ": 1}}], "/2/custom/tierQ"),
        ([good, {"nope": 1}], "/1/nope"),
        ([{"name": "a", "_clientRef": "x"}, {"name": "b"}], "/"),
        ([{"name": "a", "_clientRef": "x"}, {"name": "b", "_clientRef": "x"}], "/"),
        ([{"name": "a", "_clientRef": "x" * 256}], "/0/_clientRef"),
    ]
    for body, pointer in cases:
        r = client.post("/v1/customers/bulk", json=body)
        assert r.status_code == 400, body
        assert r.json()["errors"][0]["source"]["pointer"] == pointer
    r = client.put("/v1/customers/bulk", json=[{"name": "no id"}])
    assert r.json()["errors"][0]["source"]["pointer"] == "/0/id"
    emu.clock.sleep(10)
    assert len(emu.customers) == 0


def test_company_bulk(client: httpx.Client, emu: KustomerEmulator) -> None:
    bad = client.post("/v1/companies/bulk", json=[{"name": "Good"}, {"name": "no"}])
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"]["pointer"] == "/1/name"
    job = _submit(client, [{"name": "Alpha", "externalId": "x"}, {"name": "Beta",
                                                                  "externalId": "x"}],
                  path="/v1/companies/bulk")
    emu.clock.sleep(2)
    att = client.get(f"/v1/bulk/{job['id']}").json()["data"]["attributes"]
    assert att["counts"]["created"] == 2  # company externalIds are not unique
    assert len(emu.find_companies(externalId="x")) == 2


def test_jobs_apply_in_submit_order(client: httpx.Client, emu: KustomerEmulator) -> None:
    _submit(client, [{"externalId": "same", "name": "first"}])
    _submit(client, [{"externalId": "same", "name": "second"}])
    emu.clock.sleep(5)
    emu.advance_jobs()
    assert [c["name"] for c in emu.customers.all()] == ["first"]


def test_unknown_job_404(client: httpx.Client) -> None:
    assert client.get("/v1/bulk/nope").status_code == 404
    assert client.get("/v1/bulk/nope/batches").status_code == 404
