"""The sync that tests/sync/test_incremental_crash.py kills: run as a script in a subprocess.

Usage: ``python _crash_child.py URL STATE ROWS VERSION``. Upserts ``ROWS``
customers (:func:`crash_rows`) into the emulator served at ``URL`` with the
state file ``STATE``, on a clock 60 times faster than the wall clock (the
emulator's too), and exits 0 when the sync finishes.
"""

from __future__ import annotations

import sys
from typing import Any

SCALE = 60.0


def crash_rows(n: int, version: int) -> list[dict[str, Any]]:
    """``n`` rows; ``version`` changes every name (and so every row's hash)."""
    return [{"externalId": f"ext-{i}", "name": f"Customer {i} v{version}"} for i in range(n)]


def run(url: str, state: str, n: int, version: int) -> Any:
    """One sync of :func:`crash_rows` with a state store; returns its report."""
    from kustomer_activations import KustomerClient
    from kustomer_activations.testing import ScaledClock

    client = KustomerClient(api_key="test-key", base_url=url, clock=ScaledClock(SCALE))
    with client:
        return client.customers.upsert_many(crash_rows(n, version), key="externalId",
                                            state=state, keep="all")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
