"""Brain phantoms vs the real MNI152 T1 slices (issue 19): the issue's done criterion, with numbers."""
from __future__ import annotations

import numpy as np
import pytest

from medsynth.data.brain import NAMES, TISSUES
from medsynth.data.realism_brain import brain_summary_rows, compare_brain, normalise, real_mni_slices, spgr_t1


@pytest.fixture(scope="module")
def res():
    return compare_brain(n_phantoms=8, size=(240, 240), seed=0, n_real=15)


def test_real_slices_and_spgr_contrast_known_values():
    real = real_mni_slices(3, (120, 120))
    assert [r["z"] for r in real] == [50.0, 87.0, 124.0]
    assert all(r["brain"].sum() > 3000 and r["t1"][r["brain"]].mean() > 0.5 > r["t1"][~r["brain"]].mean() for r in real)
    one = {n: np.zeros((1, 1), np.float32) for n in NAMES}
    wm, gm, csf = (dict(one, **{k: np.ones((1, 1), np.float32)}) for k in ("wm", "gm", "csf"))
    w = spgr_t1(wm)[0, 0]
    assert spgr_t1(dict(one, scalp=np.ones((1, 1), np.float32)))[0, 0] == pytest.approx(1.0)  # fat: brightest
    # Ernst steady state for TR 18 / TE 10 / 30 deg with BrainWeb's T1/T2/PD: GM/WM 0.745, CSF/WM 0.337
    assert spgr_t1(gm)[0, 0] / w == pytest.approx(0.745, abs=0.002) and spgr_t1(csf)[0, 0] / w == pytest.approx(0.337, abs=0.002)
    assert TISSUES["wm"][0] < TISSUES["gm"][0] < TISSUES["csf"][0]
    img, m = np.array([[0.5, 1.0], [2.0, 0.0]]), np.array([[True, True], [True, False]])
    assert normalise(img, m, 100).max() == 1.0 and normalise(img, m, 100)[0, 0] == 0.25


def test_real_template_contrast(res):
    """The template's own GM/WM ratio: a T1w scan, WM brighter than GM."""
    assert 0.70 < np.mean(res["real"]["gm_wm"]) < 0.80


def test_template_matched_mni_phantom_closer_to_real_than_ellipse(res):
    """Done criterion of issue 19, with the template's acquisition simulated for both phantoms."""
    m, e = res["template-matched"]["mni"], res["template-matched"]["ellipse"]
    assert m["hist_emd"] < e["hist_emd"] and m["spectrum_dist"] < e["spectrum_dist"]
    assert m["gm_wm_diff"] < 0.02                          # the signal equations reproduce the template's contrast
    rows = brain_summary_rows(res)
    assert len(rows) == 8 and {r["protocol"] for r in rows} == {"as generated", "template-matched"}


@pytest.mark.xfail(strict=True, reason="as generated (spin-echo T1w, Rician noise 0.02, bias 0.15) "
                   "the MNI phantom's log-spectrum distance to the noise-free template (~0.78-0.81) is larger than the "
                   "ellipse phantom's (~0.44); the histogram EMDs are tied within sampling (0.060 vs 0.063 with 8 "
                   "phantoms, 0.071 vs 0.065 with 16): measured, not met - see realism_brain's docstring")
def test_as_generated_mni_phantom_closer_to_real_than_ellipse(res):
    m, e = res["as generated"]["mni"], res["as generated"]["ellipse"]
    assert m["hist_emd"] < e["hist_emd"] and m["spectrum_dist"] < e["spectrum_dist"]


def test_realism_report_script_writes_the_brain_table(tmp_path, capsys):
    import json
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_scripts"))
    from realism_report import main
    assert main(["--only", "brain", "--brain-phantoms", "2", "--brain-real", "3", "--json", str(tmp_path / "b.json")]) == 0
    rows = json.loads((tmp_path / "b.json").read_text())
    assert len(rows) == 8 and rows[0]["stat"] == "GM/WM ratio (T1)" and 0.7 < rows[0]["real"] < 0.8
    assert "template-matched" in capsys.readouterr().out


def test_brain_realism_figure_plots_each_side(res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from medsynth import viz
    fig = viz.brain_realism_figure(res)
    ax = fig.axes
    assert len(ax) == 4
    ys = [ln.get_ydata() for ln in ax[0].get_lines()]
    np.testing.assert_array_equal(ys[0], res["real"]["hist"][0])
    np.testing.assert_array_equal(ys[1], res["as generated"]["mni"]["hist"][0])
    np.testing.assert_array_equal(ax[3].get_lines()[2].get_ydata(), res["template-matched"]["ellipse"]["spectrum"])
    plt.close(fig)


def test_brain_claims_read_the_distances():
    from medsynth.evidence import CONTRADICTED, SUPPORTED, evaluate_claims
    from medsynth.data.realism_brain import PROTOCOLS, brain_claims

    def run(mni, ell):
        side = lambda v: {"hist_emd": v, "spectrum_dist": 2 * v}
        return {p: {"mni": side(mni), "ellipse": side(ell)} for p in PROTOCOLS}
    claims = brain_claims()
    assert len(claims) == 4
    good = evaluate_claims(claims, [run(0.1, 0.2)] * 3)
    assert {r["verdict"] for r in good} == {SUPPORTED}
    assert good[1]["per_seed"] == pytest.approx([0.2] * 3)    # spectrum: 2*0.2 - 2*0.1
    assert {r["verdict"] for r in evaluate_claims(claims, [run(0.3, 0.2)] * 3)} == {CONTRADICTED}
