"""Every Python example in the docs and the README runs, against the in-process emulator.

Each document's ``.. code-block:: python`` blocks (README: ```` ```python ````
fences) run in order in one namespace, as a reader would paste them. A block
that cannot run here is marked right before it with a comment that says why:
``.. skip-example: <reason>`` (README: ``<!-- skip-example: <reason> -->``).
Blocks that define pytest tests run under pytest in a subprocess.

No example reaches the network: httpx's own transports are replaced by an
emulator, so ``KustomerClient(org="acme")`` with ``KUSTOMER_API_KEY`` set talks
to it as it would to an org.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from kustomer_activations.testing import KustomerEmulator

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.rst")), ROOT / "README.md"]

_RST_BLOCK = re.compile(r"^(?P<indent> *)\.\. code-block:: python\s*$")
_RST_SKIP = re.compile(r"^ *\.\. skip-example:(?P<reason>.*)$")
_MD_SKIP = re.compile(r"^<!-- skip-example:(?P<reason>.*)-->\s*$")


@attrs.frozen
class Block:
    path: Path
    line: int
    code: str
    skip: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _skip_before(lines: list[str], index: int, pattern: re.Pattern[str]) -> str | None:
    for previous in reversed(lines[:index]):
        if previous.strip():
            match = pattern.match(previous)
            return match["reason"].strip() if match else None
    return None


def _rst_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    for i, line in enumerate(lines):
        start = _RST_BLOCK.match(line)
        if not start:
            continue
        indent = len(start["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith(":") and lines[j].strip() != ":":
            j += 1  # directive options
        while j < len(lines) and (not lines[j].strip() or
                                  len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        blocks.append(Block(path, i + 1, textwrap.dedent("\n".join(body)).strip() + "\n",
                            _skip_before(lines, i, _RST_SKIP)))
    return blocks


def _md_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            end = lines.index("```", i + 1)
            blocks.append(Block(path, i + 1, "\n".join(lines[i + 1:end]) + "\n",
                                _skip_before(lines, i, _MD_SKIP)))
            i = end
        i += 1
    return blocks


def blocks_of(path: Path) -> list[Block]:
    """The Python examples of one document, in order."""
    return _md_blocks(path) if path.suffix == ".md" else _rst_blocks(path)


WITH_EXAMPLES = [p for p in DOCUMENTS if blocks_of(p)]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KustomerEmulator:
    """httpx's network transports answer from an emulator; the examples run in a scratch dir."""
    # Real clock on both sides, so no bulk-job delay: a client made without clock= waits for real.
    emu = KustomerEmulator(bulk_delay=0.0, bulk_item_delay=0.0)

    def send(self: Any, request: httpx.Request) -> httpx.Response:
        return emu.transport.handle_request(request)

    async def asend(self: Any, request: httpx.Request) -> httpx.Response:
        return await emu.transport.handle_async_request(request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", send)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", asend)
    monkeypatch.setenv("KUSTOMER_API_KEY", "docs-example-key")
    monkeypatch.delenv("KUSTOMER_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("kustomer_activations")
    level, handlers = logger.level, list(logging.getLogger().handlers)
    yield emu  # type: ignore[misc]
    logger.setLevel(level)
    logging.getLogger().handlers[:] = handlers


def _run_pytest_block(block: Block, tmp_path: Path) -> None:
    test_file = tmp_path / "test_docs_example.py"
    test_file.write_text(block.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(test_file)], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, f"{block.where}: the example's tests failed\n{done.stdout}\n{done.stderr}"
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout


@pytest.mark.parametrize("path", WITH_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(path: Path, offline: KustomerEmulator, tmp_path: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs_example__"}
    for block in blocks_of(path):
        if block.skip is not None:
            continue
        if re.search(r"^\s*@pytest\.fixture|^def test_", block.code, re.M):
            _run_pytest_block(block, tmp_path)
            continue
        try:
            exec(compile(block.code, block.where, "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name in ("pandas", "polars", "tqdm"):
                pytest.skip(f"{block.where} needs {exc.name}, which is not installed")
            raise


def test_every_skipped_example_says_why_and_they_are_few() -> None:
    everything = [block for path in DOCUMENTS for block in blocks_of(path)]
    skipped = [block for block in everything if block.skip is not None]
    assert len(everything) > 40  # the extraction finds the examples (a broken parser finds none)
    assert all(len(block.skip or "") > 10 for block in skipped), [b.where for b in skipped]
    assert len(skipped) <= 3, [b.where for b in skipped]


def test_extraction_reads_options_indents_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(textwrap.dedent("""\
        Title
        =====

        .. code-block:: python
           :caption: one

           x = 1
           if x:
               y = 2

        Text.

        .. skip-example: needs a real org's key

        .. code-block:: python

           raise SystemExit
        """))
    first, second = blocks_of(page)
    assert first.code == "x = 1\nif x:\n    y = 2\n" and first.skip is None and first.line == 4
    assert second.skip == "needs a real org's key" and second.code == "raise SystemExit\n"
