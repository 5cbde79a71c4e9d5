"""Every public name (each ``__all__``) is in the API reference of the docs."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import kustomer_activations
import kustomer_activations.testing

DOCS = Path(__file__).resolve().parents[2] / "docs"
_DIRECTIVE = re.compile(r"^\s*\.\. (?:py:)?(?:auto)?(?:class|data|function|exception|attribute)::"
                        r"\s+(?:[\w.]+\.)?(\w+)", re.M)
_MEMBERS = re.compile(r":members:((?:[^\n]*\n)(?:\s{6,}[^\n]*\n)*)")


def _documented() -> set[str]:
    names: set[str] = set()
    for page in DOCS.glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        names.update(_DIRECTIVE.findall(text))
        for block in _MEMBERS.findall(text):
            names.update(re.findall(r"\w+", block))
    return names


@pytest.mark.parametrize("module", [kustomer_activations, kustomer_activations.testing],
                         ids=lambda m: m.__name__)
def test_every_public_name_is_in_the_api_reference(module: ModuleType) -> None:
    missing = sorted(set(module.__all__) - _documented())
    assert missing == [], f"{module.__name__}: add these to the docs' API reference: {missing}"
