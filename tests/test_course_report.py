"""The course summary (``make course``): headline from a chapter's own table, claims counted, index.html written."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsynth.course import main
from medsynth.course_report import summary_row, summary_table, write_index
from medsynth.evidence import headline

TABLE = {"model X": 0.30, "mean training target": 0.40, "random training target": 0.20, "pix2pix": 0.10}


def test_headline_picks_the_best_baseline_in_the_metric_direction() -> None:
    up = headline("SSIM", True, "model X", TABLE, paper="0.5")
    assert (up["best_baseline"], up["best_baseline_value"], up["beats_best_baseline"]) == (
        "mean training target",
        0.40,
        False,
    )  # pix2pix is a model, not an input-free baseline
    down = headline("FID", False, "model X", TABLE)
    assert (down["best_baseline"], down["beats_best_baseline"]) == ("random training target", False)
    assert headline("FID", False, "pix2pix", TABLE)["beats_best_baseline"] is True
    with pytest.raises(KeyError, match="model Y"):
        headline("FID", False, "model Y", TABLE)


def test_summary_row_and_table() -> None:
    claims = [{"verdict": "supported"}, {"verdict": "contradicted"}, {"verdict": "supported"}]
    row = summary_row("05_x", {"headline": headline("PSNR", True, "model X", TABLE, "11.8"), "claims": claims}, 93.4)
    assert row["claims supported"] == "2/3" and row["wall time"] == "93 s" and row["paper"] == "11.8"
    assert (
        row["model"] == "model X 0.3" and "model BEHIND by 0.1" in row["best baseline"] and "↑" in row["primary metric"]
    )
    bare = summary_row("00_setup_check", {"step_ms": 3.0}, None)
    assert bare["model"] == "—" and bare["claims supported"] == "—"
    assert "FAILED" in summary_row("01_y", {}, 5.0, failed=True)["primary metric"]
    text = summary_table([row, bare]).splitlines()
    assert text[0].startswith("chapter") and len(text) == 4 and len({len(t) for t in text[:2]}) == 1


def test_index_html_links_notebooks_figures_and_claims(tmp_path: Path) -> None:
    (tmp_path / "05_x").mkdir()
    (tmp_path / "05_x" / "fig_losses.png").write_bytes(b"\\x89PNG")
    claims = [{"claim": "A < B", "paper": "1 vs 2", "this_run": "0.3 ± 0.1", "verdict": "supported", "rule": "sign"}]
    rows = [summary_row("05_x", {"claims": claims}, 1.0)]
    page = write_index(tmp_path, rows, {"05_x": {"claims": claims}}).read_text()
    assert 'href="05_x/05_x.ipynb"' in page and 'src="05_x/fig_losses.png"' in page
    assert "A &lt; B" in page and "supported" in page


def test_course_cli_rejects_an_unknown_chapter(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--only", "99"])
    assert e.value.code == 2 and "no chapter matches" in capsys.readouterr().err


def test_course_cli_rejects_an_unknown_parameter(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--only", "00_setup", "-p", "stpes", "3"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unknown parameter(s) stpes" in err and "seed" in err


@pytest.mark.parametrize(
    "chapter", ["01_fundus2angio", "02_medgan", "03_retigan", "04_structure_maps", "05_fundus2video"]
)
def test_every_chapter_has_a_headline_read_from_its_committed_reference(chapter: str) -> None:
    """Each chapter's run module reads its own metrics.json: the row it names is the model's, the baseline is the
    best of the input-free rows of the same table (checked against the table itself)."""
    import json

    from medsynth.course_report import chapter_headline
    from medsynth.evidence import BASELINES
    from medsynth.nbutils import REPO_ROOT

    path = REPO_ROOT / "results" / chapter / "metrics.json"
    if not path.is_file():
        pytest.skip(f"no committed reference run {path}")
    metrics = json.loads(path.read_text())
    h = chapter_headline(chapter, metrics)
    assert h is not None and h["best_baseline"] in BASELINES
    worse = (lambda a, b: a < b) if h["higher_is_better"] else (lambda a, b: a > b)
    assert h["beats_best_baseline"] == worse(h["best_baseline_value"], h["model_value"])
    row = summary_row(chapter, metrics, 1.0)
    assert row["model"].startswith(h["model"]) and h["best_baseline"] in row["best baseline"]
