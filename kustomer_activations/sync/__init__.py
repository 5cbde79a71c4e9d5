"""The batch engine: ``upsert_many`` / ``stream_upsert`` and their report.

Data flows one way: rows → mapping and validation → key resolution (one
search per chunk) → bulk writes → a result per row → :class:`SyncReport`.
"""

from .engine import SyncAbortedError, SyncOptions
from .progress import Progress, ProgressCallback
from .report import SyncCancelledError, SyncFailuresError, SyncReport, read_failures
from .sources import read_csv, read_jsonl

__all__ = [
    "Progress",
    "ProgressCallback",
    "SyncAbortedError",
    "SyncCancelledError",
    "SyncFailuresError",
    "SyncOptions",
    "SyncReport",
    "read_csv",
    "read_failures",
    "read_jsonl",
]
