"""``client.customers`` and ``client.companies``: lookups, writes, upserts.

The behaviour lives in :mod:`kustomer_activations.upsert` (the decisions,
written once as flows) and :mod:`kustomer_activations.sync` (the batch
drivers); the classes here are thin sync and async twins that run them.
"""
