"""An in-memory, stateful, rule-faithful fake Kustomer for tests and benchmarks.

``KustomerEmulator`` behaves like one Kustomer org: customers and companies
with uniqueness rules and the update traps, search with eventual consistency,
asynchronous bulk jobs, rate-limit windows, auth and roles, injectable
faults, and a choice of :class:`Readings` where Kustomer's public material
is unclear. Use it in-process through ``emu.transport`` (an httpx transport, sync
and async) or over real HTTP with ``emu.serve()`` / ``python -m
kustomer_activations.testing``.

It shares no code with the SDK's request logic, so a misunderstanding of
Kustomer cannot hide by being made twice.

Example::

    emu = KustomerEmulator(clock=VirtualClock())
    with httpx.Client(base_url=emu.base_url, transport=emu.transport,
                      headers={"Authorization": "Bearer test"}) as http:
        http.post("/v1/customers", json={"name": "Ada", "externalId": "a-1"})
    assert emu.find_customers(externalId="a-1")
"""

from __future__ import annotations

from ._app import DEFAULT_ROLES, PODS, RequestRecord, TokenSpec
from ._clock import RealClock, ScaledClock, VirtualClock
from ._emulator import KustomerEmulator
from ._faults import Fault, FaultRule, Faults
from ._readings import Readings
from ._store import Collection
from .server import EmulatorServer
from .transport import EmulatorTransport

__all__ = [
    "DEFAULT_ROLES",
    "PODS",
    "Collection",
    "EmulatorServer",
    "EmulatorTransport",
    "Fault",
    "FaultRule",
    "Faults",
    "KustomerEmulator",
    "Readings",
    "RealClock",
    "RequestRecord",
    "ScaledClock",
    "TokenSpec",
    "VirtualClock",
]
