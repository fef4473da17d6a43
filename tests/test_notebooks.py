"""The notebook harness: every chapter notebook obeys the skeleton rules, and papermill injects.

nbval itself (``--nbval-lax`` in pyproject's addopts) executes each committed notebook once and
compares the cells marked ``# NBVAL_CHECK_OUTPUT``. These tests add the structural rules and the
papermill parameter injection, which is exercised on the smallest notebook only, to keep
``make test`` within budget (``make course`` is the papermill batch over all chapters).
A new chapter notebook is picked up by the glob: the harness needs no change.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from medsynth.course import chapters, flat_dump, run_notebook

NOTEBOOKS = chapters()
REQUIRED_PARAMETERS = {"quick", "device", "data_root", "seed", "out_dir"}


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def _parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    return tagged[0]


def test_there_are_notebooks() -> None:
    assert any(p.name.startswith("00_setup_check") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_follows_the_skeleton(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "title cell first"
    params = _parameters_cell(nb)
    tree = ast.parse(params.source)
    names = set()
    for node in tree.body:  # plain literals only: papermill overrides them by name
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)[:80]
        ast.literal_eval(node.value)
        names.add(node.targets[0].id)
    assert REQUIRED_PARAMETERS <= names, f"missing parameters: {REQUIRED_PARAMETERS - names}"
    assert "write_metrics" in "".join(c.source for c in _code_cells(nb)), "the run must write metrics.json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_come_from_an_in_order_clean_run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    counts = [c.execution_count for c in cells]
    assert None not in counts, "every code cell must be executed (nbval compares stored outputs)"
    assert counts == list(range(1, len(cells) + 1)), "run top to bottom in a fresh kernel"
    for c in cells:
        for out in c.outputs:
            assert out.output_type != "error", f"stored error output in cell {c.execution_count}"
            if out.output_type == "execute_result":  # a figure object returned as the cell's value
                text = json.dumps(out.get("data", {}).get("text/plain", ""))
                assert "<Figure size" not in text, f"cell {c.execution_count}: end plot cells with plt.show() or ';'"


@pytest.mark.slow
def test_papermill_injects_parameters(tmp_path: Path) -> None:
    """Headless rerun with parameters, on the smallest notebook: values reach the run."""
    src = next(p for p in NOTEBOOKS if p.name.startswith("00_setup_check"))
    out = run_notebook(src, tmp_path / "run", {"seed": 7, "quick": True})
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert injected and "seed = 7" in injected[0].source
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["seed"] == 7 and metrics["quick"] is True


def test_flat_dump_lists_every_chapter() -> None:
    table = flat_dump(
        {
            "01_a": {"fid": {"value": 12.345, "label": "FID"}},
            "02_b": {"ssim": 0.5},
            "03_c": {"rows": [{"stat": "mean", "v": 0.123456}]},
        }
    )
    assert "== 01_a" in table and "fid.value" in table and "12.35" in table and "ssim" in table
    assert "rows[0].stat" in table and "0.1235" in table


def test_course_parameters_parse_like_papermill() -> None:
    from medsynth.course import _literal

    assert [_literal(t) for t in ("False", "None", "3", "1e-3", "cuda", "/data/TrueColor")] == [
        False,
        None,
        3,
        1e-3,
        "cuda",
        "/data/TrueColor",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_papermill_reads_every_parameter(path: Path) -> None:
    """papermill's parser must see each name the parameters cell assigns (a comment with '=' in it, for one,
    makes it skip the line and print "Unable to parse line ..."; ``make course`` then rejects that name)."""
    import ast

    import papermill

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assigned = {
        t.id
        for node in ast.parse(cell.source).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    assert assigned == set(papermill.inspect_notebook(str(path)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_clean_in_jupyterlab(path: Path) -> None:
    """The kernelspec JupyterLab 4 writes; any other makes the notebook open with unsaved changes (seen in the
    browser: "Python 3" -> "Python 3 (ipykernel)"), so trusting or closing it rewrites the file."""
    from browser_explorers import KERNELSPEC

    meta = nbformat.read(path, as_version=4).metadata
    assert dict(meta.kernelspec) == KERNELSPEC
    assert meta.language_info["name"] == "python" and "version" in meta.language_info
