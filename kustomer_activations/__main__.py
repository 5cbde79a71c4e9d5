"""``python -m kustomer_activations``: the command line (see :mod:`kustomer_activations.cli`)."""

from .cli import main

raise SystemExit(main())
