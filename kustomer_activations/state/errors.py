"""Errors of the state store, rooted at :class:`~kustomer_activations.errors.KustomerError`."""

from __future__ import annotations

import datetime as _dt

from ..errors import KustomerError

__all__ = ["StateError", "StateLockLostError", "StateSchemaError", "SyncAlreadyRunningError"]


class StateError(KustomerError):
    """Root of the state store's errors."""


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class SyncAlreadyRunningError(StateError):
    """Another run of the same sync holds its lock.

    Attributes:
        sync: the sync's name.
        pid: the holder's process id.
        host: the holder's host name.
        since: when the holder took the lock (epoch seconds).
        heartbeat: when the holder last showed it was alive (epoch seconds).
        path: the state file.
    """

    def __init__(self, sync: str, *, pid: int, host: str, since: float, heartbeat: float,
                 path: str) -> None:
        self.sync = sync
        self.pid = pid
        self.host = host
        self.since = since
        self.heartbeat = heartbeat
        self.path = path
        super().__init__(
            f"sync {sync!r} is already running: process {pid} on {host} has held its lock in "
            f"{path} since {_when(since)} (last heartbeat {_when(heartbeat)}). Wait for it to "
            "finish; if it is surely dead, the lock is taken over once its heartbeat is stale, "
            "or right away with SqliteStateStore.break_lock()."
        )


class StateLockLostError(StateError):
    """This run's lock was taken over (its heartbeat went stale): it must stop writing."""


class StateSchemaError(StateError):
    """The state file's schema cannot be used by this version (too new, or not migratable)."""
