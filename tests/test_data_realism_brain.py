"""Brain phantoms vs the real MNI152 T1 slices (issue 19): the issue's done criterion, with numbers."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.data.brain import NAMES, TISSUES
from medsynth.data.realism_brain import (
    PROTOCOLS,
    acquire_like_phantom,
    brain_spectrum,
    brain_summary_rows,
    compare_brain,
    normalise,
    real_mni_slices,
    spgr_t1,
)


@pytest.fixture(scope="module")
def res():
    return compare_brain(n_phantoms=16, size=(240, 240), seed=0, n_real=15)


def test_real_slices_and_spgr_contrast_known_values():
    real = real_mni_slices(3, (120, 120))
    assert [r["z"] for r in real] == [50.0, 87.0, 124.0]
    assert all(r["brain"].sum() > 3000 and r["t1"][r["brain"]].mean() > 0.5 > r["t1"][~r["brain"]].mean() for r in real)
    one = {n: np.zeros((1, 1), np.float32) for n in NAMES}
    wm, gm, csf = (dict(one, **{k: np.ones((1, 1), np.float32)}) for k in ("wm", "gm", "csf"))
    w = spgr_t1(wm)[0, 0]
    assert spgr_t1(dict(one, scalp=np.ones((1, 1), np.float32)))[0, 0] == pytest.approx(1.0)  # fat: brightest
    # Ernst steady state for TR 18 / TE 10 / 30 deg with BrainWeb's T1/T2/PD: GM/WM 0.745, CSF/WM 0.337
    assert spgr_t1(gm)[0, 0] / w == pytest.approx(0.745, abs=0.002)
    assert spgr_t1(csf)[0, 0] / w == pytest.approx(0.337, abs=0.002)
    assert TISSUES["wm"][0] < TISSUES["gm"][0] < TISSUES["csf"][0]
    img, m = np.array([[0.5, 1.0], [2.0, 0.0]]), np.array([[True, True], [True, False]])
    assert normalise(img, m, 100).max() == 1.0 and normalise(img, m, 100)[0, 0] == 0.25


def test_real_slices_are_the_template_voxels_at_240():
    """No interpolation on the real side: a 240 px slice holds the template's own voxel values."""
    from medsynth.data import mni
    from medsynth.data.brain_mni import _row_centre

    (r,) = real_mni_slices(size=(240, 240), zs=[87])
    vox = mni.template()["t1"][87 - (mni.SLAB[0] - mni.MARGIN)]
    r0, c0 = round(_row_centre()), int(mni.MIDLINE_X)
    np.testing.assert_array_equal(
        r["t1"][120 - 40 : 120 + 40, 120 - 40 : 120 + 40], vox[r0 - 40 : r0 + 40, c0 - 40 : c0 + 40]
    )


def test_brain_spectrum_known_values():
    """White noise: flat spectrum; a pure cosine of k cycles per crop: the peak sits in bin k; no resampling."""
    rng = np.random.default_rng(0)
    m = np.ones((120, 120), bool)
    f, p, inside = brain_spectrum(rng.normal(size=(120, 120)), m, 80)
    assert f[0] == 1 and f[-1] == 39 and inside == 1.0 and p.sum() == pytest.approx(1.0)
    assert np.log10(p[5:].max() / p[5:].min()) < 0.5  # flat within noise
    yy, xx = np.mgrid[0:120, 0:120]
    f, p, _ = brain_spectrum(np.cos(2 * np.pi * 12 * (xx - 20) / 80), m, 80)
    assert f[np.argmax(p)] == 12
    _, pa, _ = brain_spectrum(np.cos(2 * np.pi * 12 * (xx - 20) / 80), m, 80, absolute=True)
    np.testing.assert_allclose(pa / pa.sum(), p)  # same shape, absolute scale
    _, pb, _ = brain_spectrum(2 * np.cos(2 * np.pi * 12 * (xx - 20) / 80), m, 80, absolute=True)
    np.testing.assert_allclose(pb, 4 * pa)  # power scales with amplitude^2


def test_acquisition_matched_reference_has_the_phantoms_snr():
    """The template acquired like the phantom: WM noise sigma = WM level / wm_snr(0.02), bias field applied."""
    from medsynth.data.brain import make_brain, wm_snr

    assert make_brain(0, (32, 32), anatomy="ellipse").meta["snr_wm_t1"] == pytest.approx(27.83, abs=0.01)
    flat = np.full((200, 200), 0.8, np.float32)
    wm = np.ones_like(flat)
    out = acquire_like_phantom(flat, wm, np.random.default_rng(1), noise=0.02, bias=0.0)
    assert out.std() == pytest.approx(0.8 / wm_snr(0.02), rel=0.05) and out.mean() == pytest.approx(0.8, abs=0.005)
    biased = acquire_like_phantom(flat, wm, np.random.default_rng(1), noise=0.02, bias=0.15)
    assert biased.std() > 3 * out.std()  # the smooth bias field dominates


def test_real_template_contrast(res):
    """The template's own GM/WM ratio: a T1w scan, WM brighter than GM."""
    assert 0.70 < np.mean(res["real"]["gm_wm"]) < 0.80
    assert res["real"]["crop_inside"] == 1.0 and res["as generated"]["mni"]["crop_inside"] == 1.0


def test_as_generated_mni_phantom_closer_to_the_acquired_template_than_ellipse(res):
    """Issue 19's done criterion, measured fairly: the phantoms as chapters 02/04 get them, scored against the
    template acquired like them (bias field, Rician noise at WM SNR 27.8). Margins stated: ellipse/MNI distance
    ratio >= 1.5 at the same levels; at held-out levels (no phantom slice within 10 voxels of a slice it is
    scored against) >= 1.2 for the histogram and >= 1.4 for the spectrum (seed 0, 16 phantoms: 1.40 and 1.57;
    over seeds 0-4 and 7 the held-out histogram ratio ranged 1.01-1.65, the spectrum's 1.57-1.96)."""
    m, e = res["acquisition-matched"]["mni"], res["acquisition-matched"]["ellipse"]
    assert e["hist_emd"] > 1.5 * m["hist_emd"] and e["spectrum_dist"] > 1.5 * m["spectrum_dist"]
    assert e["hist_emd_held_out"] > 1.2 * m["hist_emd_held_out"]
    assert e["spectrum_dist_held_out"] > 1.4 * m["spectrum_dist_held_out"]


def test_raw_as_generated_comparison_measures_the_acquisition(res):
    """Against the template as it is (a 152-scan average, no noise, no bias) a single scan's acquisition alone
    costs more than the phantoms' whole histogram distance, and its noise floor most of the MNI phantom's
    spectrum distance: acquiring the template like the phantom (the floor) scores EMD > either phantom's and
    a spectrum distance > 0.6 x the MNI phantom's; matching the acquisition removes > 2/3 of the MNI
    phantom's spectrum distance and leaves the ellipse's within 0.05 (its errors are anatomical)."""
    raw, acq, floor = res["as generated"], res["acquisition-matched"], res["as generated"]["floor"]
    assert floor["hist_emd"] > max(raw["mni"]["hist_emd"], raw["ellipse"]["hist_emd"])
    assert floor["spectrum_dist"] > 0.6 * raw["mni"]["spectrum_dist"]
    assert acq["mni"]["spectrum_dist"] < raw["mni"]["spectrum_dist"] / 3
    assert abs(acq["ellipse"]["spectrum_dist"] - raw["ellipse"]["spectrum_dist"]) < 0.05


def test_template_matched_mni_phantom_closer_to_real_than_ellipse(res):
    """The phantoms through the template's own acquisition (gradient echo, noise of 152 scans, no bias)."""
    m, e = res["template-matched"]["mni"], res["template-matched"]["ellipse"]
    assert m["hist_emd"] < e["hist_emd"] / 2 and m["spectrum_dist"] < e["spectrum_dist"]
    assert m["hist_emd_held_out"] < e["hist_emd_held_out"]
    assert m["gm_wm_diff"] < 0.02  # the signal equations reproduce the template's contrast
    rows = brain_summary_rows(res)
    assert len(rows) == 18 and [r["protocol"] for r in rows[::6]] == list(PROTOCOLS)
    assert rows[2]["real"] == res["as generated"]["floor"]["hist_emd"] and rows[9]["real"] is None


def test_realism_report_script_writes_the_brain_table(tmp_path, capsys):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_scripts"))
    from realism_report import main

    args = ["--only", "brain", "--brain-phantoms", "2", "--brain-real", "3", "--json", str(tmp_path / "b.json")]
    assert main(args) == 0
    rows = json.loads((tmp_path / "b.json").read_text())
    assert len(rows) == 18 and rows[0]["stat"] == "GM/WM ratio (T1)" and 0.7 < rows[0]["real"] < 0.8
    assert "acquisition-matched" in capsys.readouterr().out


def test_brain_realism_figure_plots_each_side(res):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medsynth import viz

    fig = viz.brain_realism_figure(res)
    ax = fig.axes
    assert len(ax) == 6
    ys = [ln.get_ydata() for ln in ax[0].get_lines()]
    np.testing.assert_array_equal(ys[0], res["as generated"]["reference"]["hist"][0])
    np.testing.assert_array_equal(ys[1], res["as generated"]["mni"]["hist"][0])
    np.testing.assert_array_equal(ax[1].get_lines()[0].get_ydata(), res["acquisition-matched"]["reference"]["hist"][0])
    np.testing.assert_array_equal(ax[5].get_lines()[2].get_ydata(), res["template-matched"]["ellipse"]["spectrum"])
    plt.close(fig)


def test_brain_claims_read_the_distances():
    from medsynth.data.realism_brain import brain_claims
    from medsynth.evidence import CONTRADICTED, SUPPORTED, evaluate_claims

    def run(mni, ell):

        def side(v):
            return {"hist_emd_held_out": v, "spectrum_dist_held_out": 2 * v, "hist_emd": 9.0, "spectrum_dist": 9.0}

        return {p: {"mni": side(mni), "ellipse": side(ell)} for p in PROTOCOLS}

    claims = brain_claims()
    assert len(claims) == 6 and sum("done criterion" in c.paper for c in claims) == 2
    good = evaluate_claims(claims, [run(0.1, 0.2)] * 3)
    assert {r["verdict"] for r in good} == {SUPPORTED}
    assert good[1]["per_seed"] == pytest.approx([0.2] * 3)  # spectrum: 2*0.2 - 2*0.1, held-out levels
    assert {r["verdict"] for r in evaluate_claims(claims, [run(0.3, 0.2)] * 3)} == {CONTRADICTED}
