"""The upsert decision layer: what to look up, what to write, how to read outcomes.

Everything here is a sans-I/O flow (see :mod:`kustomer_activations._core.effects`)
shared by the single-record resources and the batch engine:

* :mod:`.kinds`: what differs between customers and companies (paths, decoding);
* :mod:`.readback`: the read-before-write rules (which answer can be trusted for
  which field, plans, updates that carry ``rev``);
* :mod:`.flows`: lookups, caches, and the single-record upsert;
* :mod:`.batch`: one chunk of rows from key resolution to a decision per row,
  and the writes' reconciliation.

Layers, bottom to top (a module imports only from its own layer or below):
``_core`` → ``models``/``errors``/``mapping``/``merge`` → ``upsert`` → ``sync``
(drivers, reports) → ``resources`` (the façade) → ``client``.
"""
