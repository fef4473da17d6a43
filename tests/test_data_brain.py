"""Brain phantom and MedGAN degradations."""
import numpy as np
import pytest

from medsynth.data import make_brain
from medsynth.data.brain import TISSUES, signal
from medsynth.data.degrade import ct_like, low_count_poisson, medgan_set, motion_kspace, pet_like


@pytest.fixture(scope="module")
def b():
    return make_brain(2, (160, 160))


def test_deterministic_and_varies_by_seed(b):
    again = make_brain(2, (160, 160))
    for k in b.images:
        np.testing.assert_array_equal(b.images[k], again.images[k])
    np.testing.assert_array_equal(b.labels, again.labels)
    other = make_brain(3, (160, 160))
    assert (other.brain_mask != b.brain_mask).mean() > 0.01


def test_shapes_and_ranges(b):
    assert set(b.images) == {"t1", "t2", "t1c", "flair"}
    for im in b.images.values():
        assert im.shape == (160, 160) and im.dtype == np.float32 and 0 <= im.min() and im.max() <= 1
    assert b.labels.dtype == np.uint8 and set(np.unique(b.labels)) <= {0, 1, 2, 4}
    assert b.brain_mask.dtype == bool
    assert make_brain(0).labels.shape == (240, 240)  # BraTS slice size by default


def test_labels_inside_brain_mask(b):
    assert b.labels.any()
    assert not (b.labels > 0)[~b.brain_mask].any()


def test_tumour_contrasts(b):
    im, lab = b.images, b.labels
    wm = b.tissues["wm"] > 0.95
    enh, oed = lab == 4, lab == 2
    assert im["t1c"][enh].mean() > im["t1"][enh].mean() + 0.2      # enhancing rim lights up with Gd
    assert im["t1c"][enh].mean() > im["t1c"][wm].mean()
    assert im["flair"][oed].mean() > im["flair"][wm].mean() + 0.1  # oedema bright on FLAIR
    assert im["t2"][oed].mean() > im["t2"][wm].mean() + 0.1        # and on T2


def test_normal_tissue_ordering_from_signal_equations():
    s = {q: {n: signal(q, *TISSUES[n]) for n in ("csf", "gm", "wm")} for q in ("t1", "t2", "flair")}
    assert s["t1"]["wm"] > s["t1"]["gm"] > s["t1"]["csf"]
    assert s["t2"]["csf"] > s["t2"]["gm"] > s["t2"]["wm"]
    assert s["flair"]["csf"] < 0.01 < s["flair"]["wm"] < s["flair"]["gm"]


def test_no_tumour_option():
    assert not make_brain(4, (96, 96), tumour=False).labels.any()


def test_degradations(b):
    rng = np.random.default_rng(0)
    t1 = b.images["t1"]
    moved = motion_kspace(t1, rng)
    assert moved.shape == t1.shape and 0 <= moved.min() and moved.max() <= 1
    assert 0.005 < np.abs(moved - t1).mean() < 0.2
    pet = pet_like(b)
    lo, hi = low_count_poisson(pet, 10, rng), low_count_poisson(pet, 1000, rng)
    assert np.abs(lo - pet).mean() > 2 * np.abs(hi - pet).mean()
    gm, wm = b.tissues["gm"] > 0.95, b.tissues["wm"] > 0.95
    assert pet[gm].mean() > pet[wm].mean()
    ct = ct_like(b)
    assert ct[b.tissues["skull"] > 0.95].mean() > 0.6 > ct[b.brain_mask].mean()
    d = medgan_set(b, 0)
    assert set(d) == {"t1_motion", "pet", "pet_low", "ct"}
    assert all(v.shape == t1.shape and v.dtype == np.float32 for v in d.values())
