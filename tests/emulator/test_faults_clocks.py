"""Fault injection and clocks."""

from __future__ import annotations

import contextlib
import time

import anyio
import httpx
import pytest

from kustomer_activations.testing import (
    Fault,
    KustomerEmulator,
    RealClock,
    ScaledClock,
    VirtualClock,
)

from .conftest import AUTH


def test_status_fault_times_and_match(client: httpx.Client, emu: KustomerEmulator) -> None:
    emu.faults.add(Fault.status(503), match="POST /v1/customers/bulk", times=2)
    assert client.get("/v1/klasses").status_code == 200
    codes = [client.post("/v1/customers/bulk", json=[{"name": "x"}]).status_code
             for _ in range(3)]
    assert codes == [503, 503, 201]
    assert [r.fault for r in emu.requests] == [None, "status:503", "status:503", None]


def test_rate_limit_fault(client: httpx.Client, emu: KustomerEmulator) -> None:
    emu.faults.add(Fault.rate_limit(retry_after=3))
    r = client.get("/v1/klasses")
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert emu.rate_limited == 1


def test_slow_fault_advances_clock(client: httpx.Client, emu: KustomerEmulator) -> None:
    before = emu.clock.now()
    emu.faults.add(Fault.slow(7.5), match=lambda m, p: p.startswith("/v1/klasses"))
    assert client.get("/v1/klasses").status_code == 200
    assert emu.clock.now() == before + 7.5


def test_timeout_and_reset_apply_nothing(client: httpx.Client, emu: KustomerEmulator) -> None:
    emu.faults.add(Fault.timeout())
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/customers", json={"name": "a"})
    emu.faults.add(Fault.connection_reset())
    with pytest.raises(httpx.ConnectError):
        client.post("/v1/customers", json={"name": "b"})
    assert len(emu.customers) == 0
    assert [(r.status, r.fault) for r in emu.requests] == [(0, "timeout"),
                                                           (0, "connection_reset")]


def test_lost_response_is_stored(client: httpx.Client, emu: KustomerEmulator) -> None:
    emu.faults.add(Fault.lost_response(), match="POST /v1/customers")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/customers", json={"name": "a", "externalId": "lost"})
    assert [c["externalId"] for c in emu.customers.all()] == ["lost"]
    # the naive retry now collides
    assert client.post("/v1/customers", json={"externalId": "lost"}).status_code == 409


def _run_random(seed: int) -> list[str | None]:
    emu = KustomerEmulator(clock=VirtualClock())
    emu.faults.random(rate=0.3, seed=seed)
    with httpx.Client(base_url=emu.base_url, transport=emu.transport, headers=AUTH) as c:
        for _ in range(60):
            with contextlib.suppress(httpx.TransportError):
                c.get("/v1/klasses")
    return [r.fault for r in emu.requests]


def test_random_faults_reproducible() -> None:
    a, b, other = _run_random(7), _run_random(7), _run_random(8)
    assert a == b and a != other
    assert 5 < sum(f is not None for f in a) < 35
    assert {"status:503", "rate_limit", "timeout", "connection_reset", "lost_response"} >= {
        f for f in a if f}


def test_random_faults_kinds_and_clear(client: httpx.Client, emu: KustomerEmulator) -> None:
    emu.faults.random(rate=1.0, kinds=["status:500"], seed=1)
    assert client.get("/v1/klasses").status_code == 500
    emu.faults.clear()
    assert client.get("/v1/klasses").status_code == 200
    with pytest.raises(ValueError):
        emu.faults.random(rate=1.0, kinds=["explode"])


def test_virtual_clock() -> None:
    clock = VirtualClock()
    assert clock.now() == 1_800_000_000.0
    clock.sleep(5)
    clock.advance(-3)
    assert clock.now() == 1_800_000_005.0

    async def main() -> None:
        await clock.asleep(10)

    anyio.run(main)
    assert clock.now() == 1_800_000_015.0


def test_scaled_and_real_clock() -> None:
    clock = ScaledClock(scale=1000)
    t0, r0 = clock.now(), time.monotonic()
    clock.sleep(50)  # 0.05 real seconds
    real = time.monotonic() - r0
    assert 0.045 <= real < 1.0
    assert clock.now() - t0 >= 45
    assert abs(RealClock().now() - time.time()) < 1
    with pytest.raises(ValueError):
        ScaledClock(scale=0)


def test_clocks_match_sdk_protocol() -> None:
    from kustomer_activations._core.clock import Clock

    for clock in (RealClock(), VirtualClock(), ScaledClock()):
        assert isinstance(clock, Clock)


def test_virtual_clock_concurrent_sleepers_meet_at_the_latest_deadline() -> None:
    import threading

    from kustomer_activations.testing import VirtualClock

    clock = VirtualClock(start=1000.0)
    barrier = threading.Barrier(8)

    def waiter(delay: float) -> None:
        clock.now()  # each thread looks at the time, then waits its own delay from there
        barrier.wait()
        clock.sleep(delay)

    threads = [threading.Thread(target=waiter, args=(float(i),)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == 1008.0  # the latest deadline, not 1000 + 1 + 2 + ... + 8
    clock.sleep(2.0)
    assert clock.now() == 1010.0
