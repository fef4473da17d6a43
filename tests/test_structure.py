"""Chapter 04 structure maps: Algorithm 1, Algorithm 2, Eq. 12 and the explorer views."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medsynth.structure import (ALG1_PANELS, fuse_noise, fuse_noise_torch, fusion_view, lesion_inside, organ_mask,
                                organ_mask_steps, select_lesion, structure_map, structure_map_steps, structure_view)


def square(size: int = 64, lo: int = 20, hi: int = 44) -> np.ndarray:
    x = np.zeros((size, size), np.float32)
    x[lo:hi, lo:hi] = 1.0
    return x


def test_alg1_bright_square_edges_where_expected():
    x = square()
    s = structure_map(x, gamma=-1.0)  # gamma < 0 keeps the outside edge half (line 14 off)
    assert s.shape == x.shape and set(np.unique(s)) <= {0.0, 1.0}
    ring = np.zeros_like(s, bool)
    ring[17:47, 17:47] = True
    ring[23:41, 23:41] = False          # a band of +-3 px around the square's border
    assert s[ring].mean() > 0.5          # contours found on the border ...
    assert s[~ring].sum() == 0           # ... and nowhere else (flat inside, flat outside)
    # line 14: only pixels where x > gamma survive -> the inner half of the edge band
    s14 = structure_map(x, gamma=0.5)
    assert s14[x <= 0.5].sum() == 0 and s14.sum() > 0


def test_alg1_returns_every_line_and_thresholds_are_monotone():
    rng = np.random.default_rng(0)
    x = square() * 0.8 + 0.1 + 0.05 * rng.standard_normal((64, 64)).astype(np.float32)
    st = structure_map_steps(x)
    for key in ("sobel_h", "sobel_v", "l2_s1_min", "l3_s2_max", "l4_s1_blur", "l5_s2_blur", "l6_s1_centred",
                "l7_s2_centred", "l8_s1_bin", "l9_s2_bin", "l10_union", "l11_blur", "l12_thresh", "l13_median",
                "l14_s", "s"):
        assert st[key].shape == x.shape, key
    assert np.all(st["l2_s1_min"] <= st["l3_s2_max"])
    counts = [structure_map(x, alpha=a, gamma=-1).sum() for a in (0.01, 0.05, 0.1, 0.2, 0.4)]
    assert all(a >= b for a, b in zip(counts, counts[1:])) and counts[0] > counts[-1]
    u = [structure_map_steps(x, alpha=a)["l10_union"].sum() for a in (0.01, 0.05, 0.1, 0.2)]
    assert all(a >= b for a, b in zip(u, u[1:]))
    b = [structure_map_steps(x, beta=v)["l12_thresh"].sum() for v in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert all(a >= c for a, c in zip(b, b[1:])) and b[0] > b[-1]
    g = [structure_map(x, gamma=v).sum() for v in (0.0, 0.3, 0.6, 0.95)]
    assert all(a >= c for a, c in zip(g, g[1:]))


def test_alg1_line12_readings_differ():
    x = square()
    intent = structure_map_steps(x, beta=0.3)
    literal = structure_map_steps(x, beta=0.3, literal_line12=True)
    assert not np.array_equal(intent["l12_thresh"], literal["l12_thresh"])
    # the literal line ignores line 11's blur: it equals the union of lines 8-9 thresholded at beta
    np.testing.assert_array_equal(literal["l12_thresh"], ((literal["l8_s1_bin"] + literal["l9_s2_bin"]) > 0.3))
    # the intended line thickens (blur then a low threshold joins lines): more pixels than the union
    assert intent["l12_thresh"].sum() > literal["l12_thresh"].sum()


def test_alg1_rgb_input_and_lesion_removal():
    rgb = np.stack([square()] * 3, -1)
    les = np.zeros((64, 64), bool)
    les[15:30, 15:30] = True
    st = structure_map_steps(rgb, gamma=-1, lesion=les)
    assert st["s"][les].sum() > 0 and st["s_no_lesion"][les].sum() == 0


def test_alg2_mask_on_constructed_disc():
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20 ** 2).astype(np.float32)
    st = organ_mask_steps(disc, alpha=0.5, p=0)
    np.testing.assert_array_equal(st["l2_m"], 1 - disc)       # line 2: 1 = background
    m0 = organ_mask(disc, alpha=0.5, p=0)
    m8 = organ_mask(disc, alpha=0.5, p=8)
    assert m8.shape == disc.shape and set(np.unique(m8)) <= {0.0, 1.0}
    assert (1 - m8).sum() > (1 - m0).sum()                     # p enlarges the organ ...
    assert np.all(m8 <= m0 + 1e-6)                             # ... and only enlarges it (about the centre)
    r = np.sqrt(((1 - m8).sum()) / np.pi)
    assert 20 + 2 <= r <= 20 + 5                                # ~ 20 * (64 + 8) / 64 = 22.5 px


def test_eq12_hand_values():
    s = np.array([[1, 0], [0, 1]], np.float32)
    m = np.array([[0, 1], [0, 1]], np.float32)
    out = fuse_noise(s, m, 0.5, 0.6, seed=3)
    f = out["s_fused"]
    assert f[0, 0] == 1 and f[1, 1] == 1 and f[0, 1] == 0        # s=1 or m=1: unchanged
    assert 0.5 <= f[1, 0] <= 0.6 and f[1, 0] == out["z"][1, 0]  # s=0, m=0: z' in [alpha1, alpha2]
    big = fuse_noise(np.zeros((50, 50)), np.zeros((50, 50)), 0.2, 0.3, seed=0)["s_fused"]
    assert 0.2 <= big.min() and big.max() <= 0.3
    np.testing.assert_array_equal(fuse_noise(s, m, seed=1)["s_fused"], fuse_noise(s, m, seed=1)["s_fused"])
    with pytest.raises(ValueError):
        fuse_noise(s, m, 0.7, 0.6)
    t = fuse_noise_torch(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8))
    assert 0.5 <= float(t.min()) and float(t.max()) <= 0.6
    assert torch.equal(fuse_noise_torch(torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)), torch.ones(1, 1, 4, 4))


def test_lesion_filter_by_mask():
    m = np.ones((16, 16), np.float32)
    m[4:12, 4:12] = 0                                          # organ in the middle
    inside = np.zeros((16, 16)); inside[6:8, 6:8] = 1
    outside = np.zeros((16, 16)); outside[0:2, 0:2] = 1
    assert lesion_inside(inside, m) and not lesion_inside(outside, m)
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert select_lesion([outside, inside, outside], m, rng) is inside
    assert select_lesion([outside], m, rng) is None


def test_explorer_views():
    x = square()
    img, cap = structure_view(x, ncols=6)
    assert img.ndim == 2 and img.shape[1] > 6 * 64 and "alpha" in cap and len(ALG1_PANELS) == 12
    img, cap = fusion_view(x, 0.5, 0.6, seed=0, alg2=dict(alpha=0.5, p=0))
    assert img.shape == (64, 3 * 64 + 4) and img.min() >= 0 and img.max() <= 1 and "U(0.50, 0.60)" in cap


def test_widgets_build():
    pytest.importorskip("ipywidgets")
    from medsynth.widgets import fusion_explorer, structure_explorer
    from medsynth.structure import fusion_view, structure_view
    ims = {"square": square(), "noise": np.random.default_rng(0).random((32, 32))}
    w = structure_explorer(ims)
    *rows, pic, cap = w.children
    assert cap.value == structure_view(ims["square"])[1]          # the caption of the pure function
    before = bytes(pic.value)
    alpha = next(c for row in rows for c in row.children if c.description == "alpha")
    alpha.value = 0.2
    assert bytes(pic.value) != before and cap.value == structure_view(ims["square"], alpha=0.2)[1]
    f = fusion_explorer(ims)
    assert f.children[-1].value == fusion_view(ims["square"], 0.5, 0.6, 0)[1]


def test_real_images_when_present(shared_data):
    from PIL import Image
    files = sorted((shared_data / "isfahan_fa_normal").glob("*.jpg"))[:1]
    if not files:
        pytest.skip("no Isfahan angiograms")
    x = np.asarray(Image.open(files[0]).convert("L").resize((180, 144)), np.float32) / 255
    s = structure_map(x)
    assert 0.01 < s.mean() < 0.6
