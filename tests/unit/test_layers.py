"""The package's layers import only downward (docs/architecture.rst, "Rules")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kustomer_activations"

#: Bottom to top; a module may import from its own layer or any layer below.
LAYERS: list[set[str]] = [
    {"errors", "_version"},
    {"_core", "_runners"},
    {"models", "mapping", "merge", "results"},
    {"upsert", "state"},
    {"sync"},
    {"resources"},
    {"client", "check"},
    {"cli", "__main__", "__init__", "data", "testing"},
]


def _layer(top: str) -> int:
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"{top!r} is in no layer: add it to LAYERS in {__file__}")


def _imports(path: Path, text: str | None = None) -> list[tuple[str, int]]:
    """Top-level package names this module imports (relative imports resolved), with lines."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if text is None:
        text = path.read_text(encoding="utf-8")
    package = parts[:-1]
    out: list[tuple[str, int]] = []
    for node in _runtime_nodes(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                if len(target) == 1:  # "from .. import x": x is a module of the package
                    out.extend((alias.name, node.lineno) for alias in node.names)
                    continue
            elif node.module and node.module.startswith("kustomer_activations."):
                target = node.module.split(".")
            else:
                continue
            if len(target) > 1:
                out.append((target[1], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kustomer_activations."):
                    out.append((alias.name.split(".")[1], node.lineno))
    return out


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "testing")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    rel = path.relative_to(PACKAGE)
    own = _layer(rel.parts[0].removesuffix(".py"))
    upward = [(name, line) for name, line in _imports(path) if _layer(name) > own]
    assert not upward, f"{rel} imports upward: {upward}"


def test_the_check_sees_an_upward_import() -> None:
    # The rule itself must be able to fail: a decision module importing the façade.
    where = PACKAGE / "upsert" / "example.py"
    found = _imports(where, "from ..resources import _base\nfrom .. import client\n")
    assert sorted(found) == [("client", 2), ("resources", 1)]
    assert all(_layer(name) > _layer("upsert") for name, _ in found)
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..client import X\n"
    assert _imports(where, typed) == []
