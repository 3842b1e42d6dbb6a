"""The numbered notebooks run top to bottom in CI.

Each notebook is executed with nbclient in a fresh kernel whose working directory is a temporary
folder, so nothing it writes lands in the repository. A failing cell fails the test with that
cell's source and traceback; a cell running past ``CELL_TIMEOUT_S`` fails it too. The notebooks
are also checked to be stored without outputs, so that their diffs stay small.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
# Each notebook takes well under a minute; a cell gets generous room on a busy shared machine.
CELL_TIMEOUT_S = 240
KERNEL_STARTUP_S = 120
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours tracebacks; CI logs show plain text


def test_notebooks_are_found():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"], NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=KERNEL_STARTUP_S,
        kernel_name="python3",  # jupyter_client starts it with this interpreter (the venv's)
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        # The message already holds the failing cell's source and its traceback.
        pytest.fail(f"{path.name}: a cell raised\n{_ANSI.sub('', str(exc))}", pytrace=False)
    except (CellTimeoutError, DeadKernelError) as exc:
        pytest.fail(f"{path.name}: {type(exc).__name__}: {exc}\n"
                    f"last output: {_ANSI.sub('', _last_output(nb))}", pytrace=False)
    seconds = time.perf_counter() - started
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran), "not every cell ran"
    errors = [o for c in ran for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert list(tmp_path.iterdir()) == [], "the notebook left files in its working folder"
    print(f"{path.name}: {len(ran)} cells in {seconds:.1f}s")


def _last_output(nb) -> str:
    """The text of the last output any cell produced (for timeouts and dead kernels)."""
    for cell in reversed(nb.cells):
        for out in reversed(cell.get("outputs", [])):
            text = out.get("text") or "\n".join(out.get("traceback", [])) or str(
                out.get("data", {}).get("text/plain", ""))
            if text:
                return f"[{cell.get('id')}] {text[-2000:]}"
    return "(none)"
