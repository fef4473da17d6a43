"""Realism statistics (issue 3, "realism measured, not asserted"): known values, and phantom vs real."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.data.realism import compare_retina, hist_emd, power_spectrum, spectrum_distance, summary_rows


def test_hist_emd_and_spectrum_distance_known_values():
    a, b = np.zeros((1, 64)), np.zeros((1, 64))
    a[0, 0], b[0, 63] = 1, 1
    assert hist_emd(a, b)[0] == pytest.approx(63 / 64) and hist_emd(a, a)[0] == 0
    p = np.ones(10)
    assert spectrum_distance(p, p) == 0 and spectrum_distance(p, 10 * p) == pytest.approx(1.0)


def test_power_spectrum_of_white_noise_is_flat_and_of_a_blur_falls():
    rng = np.random.default_rng(0)
    img, fov = rng.random((300, 300)), np.ones((300, 300), bool)
    f, p = power_spectrum(img, fov)
    assert f[0] == 1 and len(f) == len(p) == 127
    from scipy import ndimage as ndi

    _, q = power_spectrum(ndi.gaussian_filter(img, 3), fov)
    assert q[-20:].mean() / q[:20].mean() < 1e-3 < p[-40:-20].mean() / p[:20].mean()


def test_compare_without_real_data_has_no_real_side(tmp_path):
    res = compare_retina(tmp_path, n_phantoms=1, size=(144, 180))
    assert res["fundus"]["real"] is None and res["angio"]["real"] is None
    assert all(r["real"] is None for r in summary_rows(res))


def test_phantom_close_to_drive_and_isfahan(shared_data):
    """Every real image (20 DRIVE, 30 Isfahan) against 4 phantoms: the agreement the data tour reports."""
    if not (shared_data / "DRIVE" / "training" / "images").is_dir():
        pytest.skip("no DRIVE training split")
    res = compare_retina(shared_data, n_phantoms=4, size=(576, 720))
    rows = {r["stat"]: r for r in summary_rows(res)}
    vf = rows["vessel fraction in FOV"]
    assert 0.10 < vf["real"] < 0.15 and abs(vf["phantom"] - vf["real"]) < 0.02
    for c in "RGB":
        r = rows[f"fundus mean {c} (FOV)"]
        assert abs(r["phantom"] - r["real"]) < 0.05 and r["distance"] < 0.06
    if res["angio"]["real"] is not None:
        a = rows["angio mean (FOV)"]
        assert abs(a["phantom"] - a["real"]) < 0.08
    assert rows["fundus log-spectrum distance"]["distance"] < 0.4
