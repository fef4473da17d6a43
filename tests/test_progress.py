"""Stored progress bars show the finished state (issue 16, item 4), checked in a real kernel."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from medsynth.progress import progress


def test_outside_jupyter_it_is_the_terminal_bar(capsys: pytest.CaptureFixture) -> None:
    from tqdm.notebook import tqdm as notebook_tqdm

    bar = progress(total=3, desc="x")
    assert not isinstance(bar, notebook_tqdm)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert "3/3" in capsys.readouterr().err


@pytest.mark.slow
def test_the_stored_notebook_output_is_the_finished_bar() -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from medsynth.progress import progress\nbar = progress(total=150, desc='train')\n"
                "for _ in range(150):\n    bar.update(1)\nbar.close()\nprint('trained 150 iterations')"
            )
        ]
    )
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outs = nb.cells[0].outputs
    shown = [o for o in outs if o.output_type == "display_data"]
    assert len(shown) == 1, outs  # one bar, updated in place, not a second copy
    text = shown[0].data["text/plain"]
    assert "150/150" in text and "| 0/150" not in text, text
    assert "application/vnd.jupyter.widget-view+json" in shown[0].data
