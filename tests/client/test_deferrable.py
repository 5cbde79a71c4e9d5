"""Deferrable requests (bulk result reads) let a queued budget drain before they claim a slot."""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_activations import KustomerClient
from kustomer_activations._core.effects import Send, Sleep
from kustomer_activations._core.request import DEFER_BACKLOG, DEFER_MAX, RequestSpec, request_flow
from kustomer_activations.testing import KustomerEmulator, VirtualClock
from kustomer_activations.upsert import batch

from ..helpers import FakeClock, drive, make_client


def _core(clock: FakeClock) -> Any:
    return KustomerClient(api_key="k", base_url="http://127.0.0.1:9", clock=clock,
                          requests_per_minute=600)._core


def _queue(core: Any, clock: FakeClock, seconds: float) -> None:
    """Claim org-budget slots (as searches and submissions do) until ``seconds`` are queued."""
    while core.pacer.backlog(clock.now()) < seconds:
        core.pacer.reserve(clock.now())


def _until_send(flow: Any, clock: FakeClock, between: Any = None) -> list[float]:
    """Drive ``flow`` to its Send; the sleeps on the way (``between`` runs after each)."""
    sleeps: list[float] = []
    effect = next(flow)
    while not isinstance(effect, Send):
        assert isinstance(effect, Sleep)
        sleeps.append(effect.seconds)
        clock.t += effect.seconds
        if between is not None:
            between()
        effect = next(flow)
    return sleeps


def test_a_deferrable_request_claims_no_slot_while_the_budget_is_queued() -> None:
    clock = FakeClock()
    core = _core(clock)
    _queue(core, clock, 5.0)
    sent, backlog = core.pacer.sent, core.pacer.backlog(clock.now())
    flow = request_flow(core, RequestSpec(method="GET", path="/v1/bulk/j/batches", deferrable=True))
    first = next(flow)
    # It waits for the queue to drain, without a slot: others that come meanwhile go first.
    assert isinstance(first, Sleep) and first.seconds == pytest.approx(backlog)
    assert core.pacer.sent == sent
    clock.t += first.seconds
    assert isinstance(next(flow), Send)  # the queue is gone: it claims the next slot
    assert core.pacer.sent == sent + 1


def test_others_go_first_and_the_read_waits_for_a_short_queue() -> None:
    clock = FakeClock()
    core = _core(clock)
    _queue(core, clock, 3.0)
    rounds = [0]

    def searches_arrive() -> None:  # twice, more work claims slots while the read waits
        rounds[0] += 1
        if rounds[0] <= 2:
            _queue(core, clock, 3.0)

    flow = request_flow(core, RequestSpec(method="GET", path="/v1/bulk/j/batches", deferrable=True))
    sleeps = _until_send(flow, clock, searches_arrive)
    assert len(sleeps) == 3
    assert core.pacer.backlog(clock.now()) <= DEFER_BACKLOG + 60.0 / (600 * 0.95)


def test_a_short_queue_is_not_waited_out_and_a_plain_request_never_defers() -> None:
    clock = FakeClock()
    core = _core(clock)
    _queue(core, clock, DEFER_BACKLOG / 2)
    backlog = core.pacer.backlog(clock.now())
    deferrable = request_flow(core, RequestSpec(method="GET", path="/v1/x", deferrable=True))
    assert _until_send(deferrable, clock) == [pytest.approx(backlog)]  # its pacing slot only
    clock.t = FakeClock().t
    core = _core(clock)
    _queue(core, clock, 5.0)
    sent = core.pacer.sent
    plain = request_flow(core, RequestSpec(method="GET", path="/v1/x"))
    first = next(plain)
    assert isinstance(first, Sleep)
    assert core.pacer.sent == sent + 1  # claimed its slot at once, behind the queue


def test_no_read_waits_for_ever() -> None:
    clock = FakeClock()
    core = _core(clock)
    _queue(core, clock, 10.0)
    flow = request_flow(core, RequestSpec(method="GET", path="/v1/bulk/j/batches", deferrable=True))
    # The budget stays queued 10 s ahead the whole time: the read still goes, after DEFER_MAX.
    sleeps = _until_send(flow, clock, lambda: _queue(core, clock, 10.0))
    assert sum(sleeps[:-1]) == pytest.approx(DEFER_MAX)
    assert sleeps[-1] > DEFER_BACKLOG  # then it claims a slot behind the queue, like any request


def test_the_engine_defers_its_result_reads_and_nothing_else(flavor: str) -> None:
    # What deferral gains (searches and submissions keep their pace while slow jobs fall
    # due) is measured by benchmarks/sync_benchmark.py --job-seconds 30; here, its wiring.
    specs: list[RequestSpec] = []
    real = batch.request_flow

    def spy(core: Any, spec: RequestSpec) -> Any:
        specs.append(spec)
        return real(core, spec)

    emu = KustomerEmulator(clock=VirtualClock())
    client = make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "request_flow", spy)
        report = drive(flavor, client, lambda c: c.customers.upsert_many(
            [{"externalId": f"d-{i}", "name": "N"} for i in range(250)], key="externalId"))
    assert report.created == 250
    reads = [s for s in specs if s.path.endswith("/batches")]
    assert len(reads) >= 3 and all(s.deferrable for s in reads)
    others = [s for s in specs if not s.path.endswith("/batches")]
    assert others and not any(s.deferrable for s in others)
