"""The I/O-free core: request building, decoding, errors, retries, pacing.

Nothing in here sends a request or sleeps. Operations are written as
generators ("flows") that yield effects (:class:`~.effects.Send`,
:class:`~.effects.Sleep`) and receive their results; the sync and async
runners in :mod:`kustomer_activations._runners` carry the effects out.
"""
