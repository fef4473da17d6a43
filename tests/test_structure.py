"""Chapter 04 structure maps: Algorithm 1, Algorithm 2, Eq. 12 and the explorer views."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from medsynth.structure import (
    ALG1_DEFAULTS,
    ALG1_PANELS,
    ALG1_RETINA,
    ALG1_UNNORMALISED,
    alpha_curve,
    fuse_noise,
    fuse_noise_torch,
    fusion_view,
    organ_mask,
    organ_mask_steps,
    structure_map,
    structure_map_steps,
    structure_view,
    vessel_agreement,
)


def square(size: int = 64, lo: int = 20, hi: int = 44) -> np.ndarray:
    x = np.zeros((size, size), np.float32)
    x[lo:hi, lo:hi] = 1.0
    return x


def test_alg1_bright_square_edges_where_expected():
    x = square()
    s = structure_map(x, gamma=-1.0, median=3)  # gamma < 0 keeps the outside edge half (line 14 off)
    # (the default 5x5 median of the author's code erases a sharp step's 2-px edge band; see test below)
    assert s.shape == x.shape and set(np.unique(s)) <= {0.0, 1.0}
    ring = np.zeros_like(s, bool)
    ring[17:47, 17:47] = True
    ring[23:41, 23:41] = False  # a band of +-3 px around the square's border
    assert s[ring].mean() > 0.25  # contours found on the border (a 2-px band of the 6-px ring) ...
    assert s[~ring].sum() == 0  # ... and nowhere else (flat inside, flat outside)
    # line 14: only pixels where x > gamma survive -> the inner half of the edge band
    s14 = structure_map(x, gamma=0.5, median=3)
    assert s14[x <= 0.5].sum() == 0 and s14.sum() > 0


def test_alg1_returns_every_line_and_thresholds_are_monotone():
    rng = np.random.default_rng(0)
    x = square() * 0.8 + 0.1 + 0.05 * rng.standard_normal((64, 64)).astype(np.float32)
    st = structure_map_steps(x, sigma2=1.0, median=3)
    for key in (
        "sobel_h",
        "sobel_v",
        "l2_s1_min",
        "l3_s2_max",
        "l4_s1_blur",
        "l5_s2_blur",
        "l6_s1_centred",
        "l7_s2_centred",
        "l8_s1_bin",
        "l9_s2_bin",
        "l10_union",
        "l11_blur",
        "l12_thresh",
        "l13_median",
        "l14_s",
        "s",
    ):
        assert st[key].shape == x.shape, key
    raw = structure_map_steps(x, normalise=False)
    assert np.all(raw["l2_s1_min"] <= raw["l3_s2_max"])  # min and max over the two Sobel responses
    assert st["l2_s1_min"].min() == 0 and st["l3_s2_max"].max() == 1  # each normalised to [0, 1] (tf_norm)
    counts = [structure_map(x, alpha=a, gamma=-1, median=3).sum() for a in (0.01, 0.05, 0.1, 0.2, 0.4)]
    assert all(a >= b for a, b in pairwise(counts)) and counts[0] > counts[-1]
    u = [structure_map_steps(x, alpha=a)["l10_union"].sum() for a in (0.01, 0.05, 0.1, 0.2)]
    assert all(a >= b for a, b in pairwise(u))
    b = [structure_map_steps(x, beta=v, sigma2=1.0)["l12_thresh"].sum() for v in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert all(a >= c for a, c in pairwise(b)) and b[0] > b[-1]
    g = [structure_map(x, gamma=v).sum() for v in (0.0, 0.3, 0.6, 0.95)]
    assert all(a >= c for a, c in pairwise(g))


def test_alg1_line12_readings_differ():
    x = square()
    intent = structure_map_steps(x, beta=0.3, sigma2=1.0)
    literal = structure_map_steps(x, beta=0.3, sigma2=1.0, literal_line12=True)
    assert not np.array_equal(intent["l12_thresh"], literal["l12_thresh"])
    # the literal line ignores line 11's blur: it equals the union of lines 8-9 thresholded at beta
    np.testing.assert_array_equal(literal["l12_thresh"], ((literal["l8_s1_bin"] + literal["l9_s2_bin"]) > 0.3))
    # the intended line thickens (blur then a low threshold joins lines): more pixels than the union
    assert intent["l12_thresh"].sum() > literal["l12_thresh"].sum()


def test_alg1_normalised_sobel_is_scale_and_resolution_independent():
    """The author's tf_norm: lines 2-3 are min-max normalised, so alpha does not depend on the intensity scale
    or on the resolution (the un-normalised maps needed alpha patched per size)."""
    from skimage.transform import resize

    yy, xx = np.mgrid[:128, :128]
    x = np.clip(1.2 - np.hypot(yy - 64, xx - 64) / 40, 0, 1).astype(np.float32) ** 2  # a soft disc
    st = structure_map_steps(x)
    assert st["l2_s1_min"].min() == 0 and st["l2_s1_min"].max() == 1 and st["l3_s2_max"].max() == 1
    raw = structure_map_steps(x, normalise=False)
    assert raw["l3_s2_max"].max() < 0.5  # skimage's Sobel units: a small number
    np.testing.assert_array_equal(structure_map(0.3 * x + 0.1, gamma=-1), structure_map(x, gamma=-1))
    frac = [float(structure_map(resize(x, (n, n), anti_aliasing=True), gamma=-1).mean()) for n in (64, 128)]
    raw_frac = [
        float(structure_map(resize(x, (n, n), anti_aliasing=True), **{**ALG1_UNNORMALISED, "gamma": -1}).mean())
        for n in (64, 128)
    ]
    assert abs(np.log2(frac[0] / frac[1])) < abs(np.log2(max(raw_frac[0], 1e-6) / max(raw_frac[1], 1e-6)))
    # the code's 5x5 median keeps lines at least 3 px thick and erases thinner ones
    bar = np.zeros((32, 32), np.float32)
    bar[:, 10:16] = 1
    assert structure_map(bar, gamma=-1, median=5).sum() == 0 < structure_map(bar, gamma=-1, median=3).sum()


def test_vessel_agreement_hand_values():
    v = np.zeros((10, 10), bool)
    v[:, 4:6] = True  # 20 vessel pixels
    s = np.zeros((10, 10))
    s[:, 5:7] = 1  # 10 on a vessel, 10 beside
    r = vessel_agreement(s, v)
    assert (
        r["recall"] == pytest.approx(0.5) and r["precision"] == pytest.approx(0.5) and r["dice"] == pytest.approx(0.5)
    )
    fov = np.zeros((10, 10), bool)
    fov[:5] = True  # only the top half counts
    assert vessel_agreement(s, v, fov)["recall"] == pytest.approx(0.5)
    assert vessel_agreement(np.zeros((10, 10)), v)["dice"] == 0.0
    with pytest.raises(ValueError, match="shape"):
        vessel_agreement(s[:5], v)


def test_alg1_rgb_input_and_lesion_removal():
    rgb = np.stack([square()] * 3, -1)
    les = np.zeros((64, 64), bool)
    les[15:30, 15:30] = True
    st = structure_map_steps(rgb, gamma=-1, median=3, lesion=les)
    assert st["s"][les].sum() > 0 and st["s_no_lesion"][les].sum() == 0


def test_alg2_mask_on_constructed_disc():
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2).astype(np.float32)
    st = organ_mask_steps(disc, alpha=0.5, p=0, median=3)
    np.testing.assert_array_equal(st["l2_m"], 1 - disc)  # line 2: 1 = background
    m0 = organ_mask(disc, alpha=0.5, p=0)
    m8 = organ_mask(disc, alpha=0.5, p=8)
    assert m8.shape == disc.shape and set(np.unique(m8)) <= {0.0, 1.0}
    assert (1 - m8).sum() > (1 - m0).sum()  # p enlarges the organ ...
    assert np.all(m8 <= m0 + 1e-6)  # ... and only enlarges it (about the centre)
    r = np.sqrt(((1 - m8).sum()) / np.pi)
    assert 20 + 2 <= r <= 20 + 5  # ~ 20 * (64 + 8) / 64 = 22.5 px


def test_eq12_hand_values():
    s = np.array([[1, 0], [0, 1]], np.float32)
    m = np.array([[0, 1], [0, 1]], np.float32)
    out = fuse_noise(s, m, 0.5, 0.6, seed=3)
    f = out["s_fused"]
    assert f[0, 0] == 1 and f[1, 1] == 1 and f[0, 1] == 0  # s=1 or m=1: unchanged
    assert 0.5 <= f[1, 0] <= 0.6 and f[1, 0] == out["z"][1, 0]  # s=0, m=0: z' in [alpha1, alpha2]
    big = fuse_noise(np.zeros((50, 50)), np.zeros((50, 50)), 0.2, 0.3, seed=0)["s_fused"]
    assert 0.2 <= big.min() and big.max() <= 0.3
    np.testing.assert_array_equal(fuse_noise(s, m, seed=1)["s_fused"], fuse_noise(s, m, seed=1)["s_fused"])
    with pytest.raises(ValueError):
        fuse_noise(s, m, 0.7, 0.6)
    t = fuse_noise_torch(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8))
    assert 0.5 <= float(t.min()) and float(t.max()) <= 0.6
    assert torch.equal(fuse_noise_torch(torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)), torch.ones(1, 1, 4, 4))


def test_explorer_views():
    x = square()
    img, cap = structure_view(x, ncols=6)
    assert img.ndim == 2 and img.shape[1] > 6 * 64 and "alpha" in cap and len(ALG1_PANELS) == 12
    img, cap = fusion_view(x, 0.5, 0.6, seed=0, alg2=dict(alpha=0.5, p=0))
    assert img.shape == (64, 3 * 64 + 4) and img.min() >= 0 and img.max() <= 1 and "U(0.50, 0.60)" in cap


def test_widgets_build():
    pytest.importorskip("ipywidgets")
    from medsynth.structure import fusion_view, structure_view
    from medsynth.widgets import fusion_explorer, parts, structure_explorer

    ims = {"square": square(), "noise": np.random.default_rng(0).random((32, 32))}
    w = structure_explorer(ims)
    rows, pic, cap = parts(w)
    assert cap == structure_view(ims["square"])[1]  # the caption of the pure function
    before = bytes(pic.value)
    alpha = next(c for row in rows for c in row if c.description == "alpha")
    alpha.value = 0.2
    assert bytes(pic.value) != before and parts(w)[2] == structure_view(ims["square"], alpha=0.2)[1]
    f = fusion_explorer(ims)
    assert parts(f)[2] == fusion_view(ims["square"], 0.5, 0.6, 0)[1]


def test_real_images_when_present(shared_data):
    """On real DRIVE photographs the default retina settings (the author's) must keep the vessels: a map of
    edges that misses them (the FOV ring, noise) fails, whatever its pixel fraction."""
    from skimage.transform import resize

    from medsynth.data.realism import load_drive

    root = shared_data / "DRIVE" / "training"
    if not (root / "images").is_dir():
        pytest.skip("no DRIVE images")
    ims = [
        {
            "image": resize(d["image"], (512, 512, 3), anti_aliasing=True),
            "vessels": resize(d["vessels"].astype(float), (512, 512), order=0) > 0.5,
            "fov": resize(d["fov"].astype(float), (512, 512), order=0) > 0.5,
        }
        for d in load_drive(root, limit=3)
    ]
    p = dict(ALG1_RETINA)
    a = p.pop("alpha")
    c = alpha_curve(ims, [a, 0.1], **p)
    assert c["dice"][0] > 0.5 and c["recall"][0] > 0.6  # measured: Dice ~0.61, recall ~0.71 at alpha 0.014
    assert c["recall"][1] < 0.2  # a high alpha keeps only strong edges: it fails
    ring = np.zeros((512, 512))  # a map of the FOV border alone scores near zero
    ring[ims[0]["fov"] ^ ndi.binary_erosion(ims[0]["fov"], iterations=4)] = 1
    assert vessel_agreement(ring, ims[0]["vessels"], ims[0]["fov"])["recall"] < 0.05


def test_structure_explorer_uses_given_settings_and_reports_vessels():
    pytest.importorskip("ipywidgets")
    from medsynth.widgets import parts, structure_explorer

    x = square()
    ves = np.zeros_like(x, bool)
    ves[18:22, 18:46] = True  # the square's top edge as "vessels"
    alg = {"sq": {"alpha": 0.2, "median": 3}}
    w = structure_explorer({"sq": x}, alg1=alg, vessels={"sq": (ves, None)})
    rows, pic, cap = parts(w)
    alpha = next(c for row in rows for c in row if c.description == "alpha")
    assert alpha.value == pytest.approx(0.2)  # the notebook's setting, not the library default
    p = {**ALG1_DEFAULTS, "alpha": 0.2, "median": 3}
    assert cap == structure_view(x, vessels=ves, **p)[1] and "recall" in cap
    assert float(cap.split("recall ")[1]) > 0  # the map finds the top edge


def test_synthesis_view_feeds_s_prime_through_g():
    """The fusion explorer's view: s' of two seeds goes through G; a G that copies its input channel shows s'."""
    from medsynth.models.structsynth.tasks import MultiModalTask
    from medsynth.models.structsynth.views import synthesis_view

    task = MultiModalTask(None, None, None, width=8, depth=2)

    class CopyS(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, cond):  # modality i -> s' * (i + 1) / 4 * 2 - 1: distinct, known values
            return x[:, :1] * (cond.float() + 1)[:, None, None, None] / 4 * 2 - 1

    task.nets["G"] = CopyS()
    x = square()
    img, cap = synthesis_view(task, x, 0.5, 0.6, seeds=(3, 4), alg1={"median": 3}, alg2={"alpha": 0.5, "p": 0})
    h = 64
    assert img.shape == (3 * h + 4, 5 * h + 8)
    s_prime = img[h + 2 : 2 * h + 2, :h]
    flair = img[h + 2 : 2 * h + 2, 4 * (h + 2) : 4 * (h + 2) + h]
    t1 = img[h + 2 : 2 * h + 2, h + 2 : 2 * h + 2]
    np.testing.assert_allclose(flair, s_prime, atol=1e-6)  # modality 3: s' itself
    np.testing.assert_allclose(t1, s_prime / 4, atol=1e-6)  # modality 0: s' / 4
    organ = organ_mask(x, alpha=0.5, p=0) < 0.5
    assert 0.5 <= s_prime[organ & (s_prime < 1)].min() and s_prime[organ & (s_prime < 1)].max() <= 0.6
    assert not np.array_equal(s_prime, img[2 * h + 4 :, :h])  # the two seeds' noise differ
    assert "0.40 above" in cap
