"""``client.customers`` and ``client.companies``: lookups, writes, upserts.

The behaviour lives in :mod:`._flows` (written once, as flows); the classes
here are thin sync and async twins that run those flows.
"""
