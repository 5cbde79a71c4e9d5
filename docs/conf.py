"""Sphinx configuration for the kustomer_activations documentation.

Build with ``sphinx-build -W -b html docs <outdir>`` (warnings are errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Import the package from this checkout, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kustomer_activations

project = "kustomer_activations"
author = "kustomer_activations developers"
copyright = "kustomer_activations developers"
version = kustomer_activations.__version__
release = version

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# No network in CI: no intersphinx, and cross-references to httpx, attrs or the
# standard library are not resolved (``nitpicky`` stays off, so they render as
# plain text instead of failing the build).
nitpicky = False

# Docstrings are Google style.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# The package uses ``from __future__ import annotations``: signatures stay as
# written, and types are not rendered as (unresolvable) cross-references.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autoclass_content = "class"
autodoc_class_signature = "mixed"
add_module_names = False

templates_path: list[str] = []
exclude_patterns = ["_build"]
master_doc = "index"
source_suffix = {".rst": "restructuredtext"}

html_theme = "alabaster"
html_title = f"kustomer_activations {version}"
html_theme_options = {
    "description": "Sync records into Kustomer as Customers and Companies",
    "fixed_sidebar": True,
}
