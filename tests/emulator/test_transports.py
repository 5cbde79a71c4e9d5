"""The same behaviour through httpx.AsyncClient (asyncio and trio) and real HTTP."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import httpx
import pytest

from kustomer_activations.testing import Fault, KustomerEmulator, VirtualClock

from .conftest import AUTH


@pytest.mark.anyio
async def test_async_client(emu: KustomerEmulator) -> None:
    async with httpx.AsyncClient(base_url=emu.base_url, transport=emu.transport,
                                 headers=AUTH) as c:
        r = await c.post("/v1/customers", json={"externalId": "a/b", "name": "A"})
        assert r.status_code == 201
        r = await c.get("/v1/customers/externalId=" + quote("a/b", safe=""))
        assert r.json()["data"]["attributes"]["name"] == "A"
        assert (await c.post("/v1/customers", json={"externalId": "a/b"})).status_code == 409
        r = await c.post("/v1/customers/bulk", json=[{"name": "b", "_clientRef": "1"}])
        job = r.json()["data"]["id"]
        await emu.clock.asleep(2)
        r = await c.get(f"/v1/bulk/{job}/batches")
        assert r.json()[0]["results"][0]["status"] == "created"
        emu.faults.add(Fault.slow(3))
        before = emu.clock.now()
        assert (await c.get("/v1/klasses")).status_code == 200
        assert emu.clock.now() == before + 3
        emu.faults.add(Fault.lost_response())
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post("/v1/customers", json={"name": "lost"})
        emu.faults.add(Fault.timeout())
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/v1/klasses")
    assert len(emu.find_customers(name="lost")) == 1


def test_served_crud_lookup_and_errors(served: httpx.Client, emu: KustomerEmulator) -> None:
    key = "x/y?z#%="
    r = served.post("/v1/customers", json={"externalId": key, "emails": [{"email": "s@x.com"}]})
    assert r.status_code == 201 and "x-ratelimit-reset" in r.headers
    r = served.get("/v1/customers/externalId=" + quote(key, safe=""))
    assert r.status_code == 200 and r.json()["data"]["attributes"]["externalId"] == key
    assert served.post("/v1/customers", json={"emails": [{"email": "S@x.com"}]}
                       ).status_code == 409
    assert served.post("/v1/companies", json={"name": "ab"}).status_code == 400
    r = served.post("/v1/customers/search",
                    json={"and": [{"customer_email": {"equals": "s@x.com"}}]})
    assert r.json()["meta"]["total"] == 1
    assert httpx.get(served.base_url.join("/v1/klasses")).status_code == 401


def test_served_bulk_and_faults(served: httpx.Client, emu: KustomerEmulator) -> None:
    job = served.post("/v1/customers/bulk", json=[{"name": "a"}]).json()["data"]["id"]
    emu.clock.sleep(5)
    assert served.get(f"/v1/bulk/{job}").json()["data"]["attributes"]["status"] == "complete"
    emu.faults.add(Fault.status(502))
    assert served.get("/v1/klasses").status_code == 502
    emu.faults.add(Fault.lost_response())
    with pytest.raises(httpx.RemoteProtocolError):
        served.post("/v1/customers", json={"externalId": "lost"})
    assert emu.find_customers(externalId="lost")
    emu.faults.add(Fault.connection_reset())
    with pytest.raises(httpx.TransportError):
        served.post("/v1/customers", json={"externalId": "reset"})
    assert not emu.find_customers(externalId="reset")
    assert served.get("/v1/klasses").status_code == 200


def test_served_rate_limit() -> None:
    emu = KustomerEmulator(requests_per_minute=1, clock=VirtualClock())
    with emu.serve() as server, httpx.Client(base_url=server.url, headers=AUTH) as c:
        assert server.url.startswith("http://127.0.0.1:")
        assert c.get("/v1/klasses").status_code == 200
        r = c.get("/v1/klasses")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_cli_serves_on_loopback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kustomer_activations.testing", "--port", "0",
         "--requests-per-minute", "50"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[4]
        assert url.startswith("http://127.0.0.1:")
        r = httpx.get(url + "/v1/auth/tokens/current", headers=AUTH)
        assert r.status_code == 200 and r.headers["x-ratelimit-limit"] == "50"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
