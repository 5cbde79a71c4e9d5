"""The notebooks in docs/notebooks run headless, top to bottom, and show what they promise."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "docs" / "notebooks").glob("*.ipynb"))
_MISSING = [name for name in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"running notebooks needs {', '.join(_MISSING)} (pip install 'kustomer-activations[test]')",
)


def _execute(path: Path, cwd: Path) -> Any:
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # the outputs saved in the file must not count
        if cell.cell_type == "code":
            cell.outputs = []
    # A cell that raises fails here with the cell and its traceback (CellExecutionError).
    nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def _outputs(notebook: Any, source_start: str) -> list[dict[str, Any]]:
    [cell] = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    return list(cell.outputs)


def _html(outputs: list[dict[str, Any]]) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs)


def test_there_is_a_notebook() -> None:
    assert [p.name for p in NOTEBOOKS] == ["quickstart.ipynb"]


def test_quickstart_notebook_runs_and_shows_the_report(tmp_path: Path) -> None:
    notebook = _execute(NOTEBOOKS[0], tmp_path)
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error" or o.get("name") == "stderr"]
    assert errors == []

    check = _html(_outputs(notebook, "import httpx"))
    assert "<th>status</th><td>OK</td>" in check

    report = _html(_outputs(notebook, "rows = ["))
    assert 'class="kustomer-sync-report"' in report
    assert "<td>created</td><td>2</td>" in report and "<td>invalid</td><td>1</td>" in report
    assert "simulated" in report

    frame = _html(_outputs(notebook, "report.to_pandas()"))
    assert 'class="dataframe"' in frame and frame.count("<td>created</td>") == 2

    failure = _outputs(notebook, "failure = ")
    assert "must be an email address" in failure[0]["data"]["text/plain"]

    again = _outputs(notebook, "again = ")[0]["data"]["text/plain"]
    assert again.startswith("customer sync on externalId (upsert): 2 rows: unchanged 2")
