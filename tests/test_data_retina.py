"""Retinal phantom: determinism, shapes/ranges, anatomy and FA physiology (small sizes: fast)."""

import numpy as np
import pytest

from medsynth.data import MASK_NAMES, frame_times, make_retina
from medsynth.data.fields import smooth_noise, warp

SIZE = (192, 240)


@pytest.fixture(scope="module")
def seq():
    return make_retina(5, SIZE, severity=0.8, n_frames=9)


def test_deterministic_by_seed():
    a, b = make_retina(3, SIZE, severity=0.5), make_retina(3, SIZE, severity=0.5)
    np.testing.assert_array_equal(a.fundus, b.fundus)
    np.testing.assert_array_equal(a.angio, b.angio)
    for k in MASK_NAMES:
        np.testing.assert_array_equal(a.masks[k], b.masks[k])
    c = make_retina(4, SIZE, severity=0.5)
    assert np.abs(a.fundus - c.fundus).mean() > 0.01


def test_sequence_does_not_change_the_pair(seq):
    plain = make_retina(5, SIZE, severity=0.8)
    np.testing.assert_array_equal(plain.fundus, seq.fundus)
    np.testing.assert_array_equal(plain.angio, seq.angio)


def test_shapes_dtypes_ranges(seq):
    s = seq
    assert s.fundus.shape == (*SIZE, 3) and s.fundus.dtype == np.float32
    assert s.angio.shape == SIZE and s.angio.dtype == np.float32
    for im in (s.fundus, s.angio, s.frames):
        assert im.min() >= 0.0 and im.max() <= 1.0
    assert s.frames.shape == (9, *SIZE) and s.leakage_frames.shape == (9, *SIZE)
    assert s.leakage_frames.dtype == bool
    assert set(s.masks) == set(MASK_NAMES)
    for k, m in s.masks.items():
        assert m.shape == SIZE and m.dtype == bool, k
    assert s.phases == ["arterial"] * 3 + ["venous"] * 3 + ["late"] * 3
    assert np.all(np.diff(s.frame_times) > 0)


def test_default_size_is_isfahan():
    t, p = frame_times(12)
    assert len(t) == 12 and p.count("arterial") == 4 and p.count("late") == 4
    import inspect

    assert inspect.signature(make_retina).parameters["size"].default == (576, 720)


def test_masks_are_consistent(seq):
    m = seq.masks
    assert np.array_equal(m["vessels"], m["arteries"] | m["veins"])
    assert np.array_equal(m["lesions"], m["microaneurysms"] | m["haemorrhages"] | m["exudates"])
    fov = m["fov"]
    for k in ("vessels", "lesions", "leakage", "disc", "fovea"):
        assert not (m[k] & ~fov).any(), k
    assert 0.04 < m["vessels"][fov].mean() < 0.2
    assert m["microaneurysms"].any() and m["exudates"].any()
    assert seq.fundus[~fov].mean() < 0.02  # black outside the field of view (soft edge aside)
    # the fovea is avascular: (almost) no vessel inside it
    assert m["vessels"][m["fovea"]].mean() < 0.02


def test_normal_eye_has_no_lesions():
    s = make_retina(1, SIZE, severity=0.0, n_frames=4)
    for k in ("microaneurysms", "haemorrhages", "exudates", "lesions", "leakage"):
        assert not s.masks[k].any(), k
    assert not s.leakage_frames.any()


def test_vessel_mask_aligned_with_bright_fa_and_dark_fundus(seq):
    m, fov = seq.masks, seq.masks["fov"]
    bg = fov & ~m["vessels"] & ~m["lesions"] & ~m["disc"]
    big = m["vessels"] & ~m["disc"]
    assert seq.angio[big].mean() > seq.angio[bg].mean() + 0.05
    green = seq.fundus[..., 1]
    assert green[big].mean() < green[bg].mean() - 0.03
    # macula darker than the surrounding fundus on both images
    ring = fov & ~m["fovea"] & ~m["vessels"]
    assert seq.angio[m["fovea"]].mean() < seq.angio[ring].mean()


def test_lesion_appearance(seq):
    m, f, a = seq.masks, seq.fundus, seq.angio
    bg = m["fov"] & ~m["vessels"] & ~m["lesions"] & ~m["disc"] & ~m["leakage"]
    ex = m["exudates"]
    # exudates yellow: bright red+green relative to blue and to background
    assert f[ex][:, 1].mean() > f[bg][:, 1].mean() + 0.1
    ma = m["microaneurysms"] & ~m["vessels"]
    if ma.sum() > 5:
        assert a[ma].mean() > a[bg].mean()  # hyperfluorescent on FA
        assert f[ma][:, 1].mean() < f[bg][:, 1].mean()  # red/dark on the photo
    hm = m["haemorrhages"] & ~m["leakage"]
    if hm.sum() > 20:
        assert a[hm].mean() < a[bg].mean()  # blocks fluorescence
        assert f[hm][:, 1].mean() < f[bg][:, 1].mean()


def test_leakage_grows_through_late_phase(seq):
    area = seq.leakage_frames.sum((1, 2))
    late = [i for i, p in enumerate(seq.phases) if p == "late"]
    assert area[late[-1]] > area[late[0]] > 0
    assert np.all(np.diff(area) >= 0)
    # leakage pixels brighten from the first to the last frame
    lk = seq.leakage_frames[-1]
    assert seq.frames[-1][lk].mean() > seq.frames[0][lk].mean() + 0.1


def test_arteries_fill_before_veins(seq):
    m = seq.masks
    art, vein = m["arteries"] & ~m["veins"] & ~m["disc"], m["veins"] & ~m["arteries"] & ~m["disc"]
    bg = m["fov"] & ~m["vessels"] & ~m["disc"]
    first = seq.frames[0]
    assert first[art].mean() - first[bg].mean() > 2 * (first[vein].mean() - first[bg].mean())
    ven = seq.phases.index("venous") + 1
    assert seq.frames[ven][vein].mean() - seq.frames[ven][bg].mean() > 0.05


def test_misalignment_warps_fa_only():
    a = make_retina(2, SIZE, severity=0.3)
    b = make_retina(2, SIZE, severity=0.3, misalign=1.0)
    np.testing.assert_array_equal(a.fundus, b.fundus)
    assert b.warp is not None and b.warp.shape == (2, *SIZE)
    assert np.abs(a.angio - b.angio).mean() > 0.005
    np.testing.assert_allclose(warp(a.angio, b.warp).clip(0, 1), b.angio, atol=1e-4)


def test_smooth_noise_unit_std():
    n = smooth_noise(np.random.default_rng(0), (50, 70), 8)
    assert n.shape == (50, 70) and abs(float(n.std()) - 1) < 1e-3
