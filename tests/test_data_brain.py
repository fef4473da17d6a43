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
    assert im["t1c"][enh].mean() > im["t1"][enh].mean() + 0.2  # enhancing rim lights up with Gd
    assert im["t1c"][enh].mean() > im["t1c"][wm].mean()
    assert im["flair"][oed].mean() > im["flair"][wm].mean() + 0.1  # oedema bright on FLAIR
    assert im["t2"][oed].mean() > im["t2"][wm].mean() + 0.1  # and on T2


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


# --- MNI152 anatomy (issue 19) -------------------------------------------------------------------------------
from scipy import ndimage as ndi  # noqa: E402

from medsynth.data import mni  # noqa: E402


def _necrotic(size=(240, 240)):
    """First seed whose tumour has a necrotic core (85 % of them do)."""
    return next(b for b in (make_brain(s, size) for s in range(20)) if (b.labels == 1).sum() > 20)


def test_template_ships_with_nilearn_and_is_read_once():
    d = mni.template_dir()
    assert all((d / f).is_file() for f in mni.FILES.values())
    t = mni.template()
    assert mni.template() is t  # lru_cache: one read per process
    z0 = mni.SLAB[0] - mni.MARGIN
    assert t["gm"].shape == (mni.SLAB[1] - mni.SLAB[0] + 2 * mni.MARGIN + 1, 233, 197)
    csf = t["brain"] - t["gm"] - t["wm"]
    assert csf.min() > -1e-6 and 0.05 < csf[t["brain"] > 0].mean() < 0.4
    # the symmetric template's midline is column 98 (x = 0 mm): mirroring about it changes nothing
    assert t["t1"].shape[2] == 2 * mni.MIDLINE_X + 1 and np.abs(t["t1"] - t["t1"][:, :, ::-1]).max() < 1e-6
    assert z0 >= 0


def test_template_missing_gives_a_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(mni.TemplateMissing, match="pip install nilearn"):
        mni.template_dir()


def test_bad_anatomy_argument():
    with pytest.raises(ValueError, match="anatomy"):
        make_brain(0, (32, 32), anatomy="colin27")


def test_tissue_fractions_partition_each_pixel():
    b = make_brain(6, (120, 120))
    total = sum(b.tissues.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-5)
    assert min(float(v.min()) for v in b.tissues.values()) > -1e-6
    # a real brain: GM is the commonest tissue in the brain, WM next, CSF least (axial slab 50-124)
    m = b.brain_mask
    gm, wm, csf = (float(b.tissues[k][m].mean()) for k in ("gm", "wm", "csf"))
    assert gm > 0.25 and wm > 0.2 and csf < gm


def test_flair_nulls_csf_and_t1_t2_order_wm_gm_like_real_scans():
    b = make_brain(7, (240, 240), tumour=False, noise=0.0, bias=0.0)
    csf, gm, wm = (b.tissues[k] > t for k, t in (("csf", 0.99), ("gm", 0.9), ("wm", 0.9)))
    assert csf.sum() > 50 and gm.sum() > 500 and wm.sum() > 500
    im = b.images
    assert im["flair"][csf].mean() < 0.03 < 0.15 < im["flair"][gm].mean()  # CSF nulled, tissue is not
    assert im["t1"][wm].mean() > im["t1"][gm].mean() > im["t1"][csf].mean()  # T1w: WM bright, CSF dark
    assert im["t2"][wm].mean() < im["t2"][gm].mean() < im["t2"][csf].mean()  # T2w: the reverse
    noisy = make_brain(7, (240, 240), tumour=False)  # still true with noise and bias
    assert noisy.images["t1"][wm].mean() > noisy.images["t1"][gm].mean() + 0.03
    assert noisy.images["t2"][wm].mean() < noisy.images["t2"][gm].mean() - 0.03


def test_tumour_in_white_matter_rim_around_core_labels_in_brain():
    b = _necrotic()
    lab = b.labels
    assert not (lab > 0)[~b.brain_mask].any()
    core = lab == 1
    ring = ndi.binary_dilation(core, iterations=2) & ~core
    assert (lab[ring] == 4).mean() > 0.97  # the enhancing rim surrounds the necrotic core
    assert (lab == 2).sum() > 0  # oedema present
    free = make_brain(b.meta["seed"], (240, 240), tumour=False)
    cy, cx = (int(v) for v in b.meta["tumour_centre"])
    assert free.tissues["wm"][cy, cx] > 0.85  # the tumour was seeded in white matter
    oed = lab == 2
    assert b.tissues["wm"][oed].mean() < 0.1  # oedema takes over white matter ...
    assert not oed[b.tissues["gm"] > 0.7].any()  # ... and spares cortex / deep grey matter
    assert b.images["flair"][oed].mean() > b.images["flair"][b.tissues["wm"] > 0.9].mean() + 0.1
    assert b.images["t1c"][lab == 4].mean() > b.images["t1"][lab == 4].mean() + 0.2  # Gd enhancement


def test_oedema_stays_in_the_tumour_hemisphere():
    for s in range(6):
        b = make_brain(s, (160, 160), deform=0.0, flip=False)
        cols = np.nonzero(b.labels == 2)[1] + 0.5 - 80  # image column 80 = template midline when undeformed
        side = np.sign(b.meta["tumour_centre"][1] + 0.5 - 80)
        assert (np.sign(cols) == side).mean() > 0.99


def test_mass_effect_displaces_tissue_outside_the_tumour():
    s = 3
    b, free = make_brain(s, (240, 240)), make_brain(s, (240, 240), tumour=False)
    cy, cx = b.meta["tumour_centre"]
    r = b.meta["tumour_radius_px"]
    yy, xx = np.mgrid[0:240, 0:240]
    rho = np.hypot(yy - cy, xx - cx)
    outside = (b.labels == 0) & ~ndi.binary_dilation(b.labels > 0, iterations=3) & b.brain_mask & free.brain_mask
    near, far = outside & (rho < 2.5 * r), outside & (rho > 6 * r)
    assert near.sum() > 200 and far.sum() > 200
    diff = np.abs(b.tissues["gm"] - free.tissues["gm"]) + np.abs(b.tissues["wm"] - free.tissues["wm"])
    assert diff[near].mean() > 0.05  # tissue pushed aside next to the lesion
    assert diff[far].max() < 0.02  # and untouched far from it


def test_seeded_repeatable_and_varied():
    a, a2 = make_brain(11, (96, 96)), make_brain(11, (96, 96))
    for k in a.images:
        np.testing.assert_array_equal(a.images[k], a2.images[k])
    metas = [make_brain(s, (48, 48), tumour=False).meta for s in range(12)]
    zs = [m["z"] for m in metas]
    assert np.std(zs) > 10 and mni.SLAB[0] <= min(zs) and max(zs) <= mni.SLAB[1]
    assert {m["flip"] for m in metas} == {True, False}
    assert np.std([m["rot_deg"] for m in metas]) > 1 and np.std([m["scale"] for m in metas]) > 0.01


def test_flip_mirrors_and_deformation_changes_the_slice():
    kw = dict(size=(120, 120), tumour=False, z=90.0, deform=0.0)
    left, right = make_brain(5, flip=False, **kw), make_brain(5, flip=True, **kw)
    for k in ("gm", "wm"):
        np.testing.assert_allclose(right.tissues[k], left.tissues[k][:, ::-1], atol=1e-5)
    bent = make_brain(5, flip=False, **{**kw, "deform": 1.0})
    assert np.abs(bent.tissues["wm"] - left.tissues["wm"]).mean() > 0.02
    assert np.abs(make_brain(5, flip=False, **{**kw, "z": 110.0}).tissues["wm"] - left.tissues["wm"]).mean() > 0.05


def test_ellipse_option_still_works_and_differs():
    e, m = make_brain(2, (96, 96), anatomy="ellipse"), make_brain(2, (96, 96))
    assert e.meta["anatomy"] == "ellipse" and m.meta["anatomy"] == "mni"
    assert set(e.images) == set(m.images) and e.labels.any() and not (e.labels > 0)[~e.brain_mask].any()
    assert np.abs(e.images["t1"] - m.images["t1"]).mean() > 0.05


def test_pet_ct_pair_from_mni_anatomy():
    b = make_brain(4, (160, 160))
    pet, ct = pet_like(b), ct_like(b)
    gm, wm = b.tissues["gm"] > 0.9, b.tissues["wm"] > 0.9
    assert pet[gm].mean() > 1.5 * pet[wm].mean()  # FDG: grey matter ~2.5-3x white matter
    skull = b.tissues["skull"] > 0.9
    assert skull.sum() > 50 and ct[skull].mean() > 0.6 > 0.1 > abs(ct[wm].mean() - ct[gm].mean())


def test_template_sampling_cubic_keeps_voxels_and_detail():
    """mni.sample: at voxel centres both orders return the voxels; half a voxel off, trilinear averages two
    neighbours (the blur a posed slice used to get) while the cubic spline keeps more of the fine detail."""
    t = mni.template()
    k = 87 - (mni.SLAB[0] - mni.MARGIN)
    rows, cols = np.mgrid[60:160, 40:160].astype(np.float32)
    on = np.stack([np.full_like(rows, 87.0), rows, cols])
    for order in (1, 3):
        got = mni.sample(on, ("gm", "brain"), order=order)
        np.testing.assert_allclose(got["gm"], t["gm"][k, 60:160, 40:160] * (got["brain"] > 0), atol=2e-4)
    off = on + np.array([0, 0, 0.5], np.float32)[:, None, None]
    lin, cub = mni.sample(off, ("wm",), order=1)["wm"], mni.sample(off, ("wm",), order=3)["wm"]

    def d2(a: np.ndarray) -> float:  # fine detail: mean |second difference| along rows
        return float(np.abs(a[:, 2:] - 2 * a[:, 1:-1] + a[:, :-2]).mean())

    vox = d2(mni.sample(on, ("wm",), order=1)["wm"])
    assert d2(lin) < 0.88 * vox < d2(cub) <= vox  # measured: 0.845, 0.959 of the voxels' own
    with pytest.raises(ValueError, match="order"):
        mni.sample(on, ("gm",), order=2)
