"""Packaging: the README's test install runs every test; a checkout ignores generated files."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_test_extra_brings_pandas() -> None:
    # Without it, `pip install -e '.[test]' && pytest` (the README) skips the DataFrame tests.
    needs = requires("kustomer-activations") or []
    in_test = [r for r in needs if re.search(r"""extra\s*==\s*["']test["']""", r)]
    assert any(r.startswith("pandas") for r in in_test), in_test


@pytest.mark.parametrize("path", [
    ".venv/bin/python", "venv/lib/x.py", "kustomer_activations/__pycache__/cli.cpython-311.pyc",
    ".pytest_cache/v/x", ".mypy_cache/3.11/x.json", ".ruff_cache/x", "build/lib/x.py",
    "dist/kustomer_activations-0.1.0.tar.gz", "docs/_build/html/index.html",
    "kustomer_activations.egg-info/PKG-INFO",
])
def test_generated_files_are_ignored(path: str) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", path],
                          check=False)
    assert done.returncode == 0, f"{path} is not ignored by .gitignore"


@pytest.mark.parametrize("path", ["kustomer_activations/cli.py", "docs/cli.rst", "tests/test_cli.py"])
def test_sources_are_not_ignored(path: str) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", path],
                          check=False)
    assert done.returncode == 1, f"{path} is ignored by .gitignore"
