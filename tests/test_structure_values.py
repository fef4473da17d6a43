"""Chapter 04's structure maps by value: hand-computed small cases for Algorithms 1 and 2 and Eq. 12, every
threshold at the threshold itself, the numpy and torch Eq. 12 agreeing, dtypes, border modes, the defaults as the
author's numbers, and what the explorer views and captions show."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from medsynth import structure as st
from medsynth.structure import (
    ALG1_DEFAULTS,
    ALG1_PANELS,
    ALG1_RETINA,
    ALG2_DEFAULTS,
    alpha_curve,
    fuse_noise,
    fuse_noise_torch,
    fusion_view,
    organ_mask,
    organ_mask_steps,
    remove_lesion,
    structure_map,
    structure_map_steps,
    structure_view,
    to_gray,
    vessel_agreement,
)


def _square(n: int = 24, lo: int = 6, hi: int = 18) -> np.ndarray:
    x = np.zeros((n, n))
    x[lo:hi, lo:hi] = 1.0
    return x


def test_defaults_are_the_authors_numbers() -> None:
    # get_s_and_m_from_image.py: BRATS get_s(j=0.035, sigma=0.01) + 5x5 median; DRIVE j=0.014, sigma 0.4 / 0.3;
    # the mask: threshold 0.3 on the normalised image, p = 10, 5x5 median; Eq. 12: z' ~ U(0.5, 0.6) (Sec. 4.2.3)
    assert ALG1_DEFAULTS == dict(alpha=0.035, beta=0.0, gamma=0.05, sigma1=0.01, sigma2=0.01, median=5, normalise=True)
    assert ALG1_RETINA == dict(alpha=0.014, beta=0.05, gamma=0.05, sigma1=0.4, sigma2=0.3, median=5, normalise=True)
    assert ALG2_DEFAULTS == dict(alpha=0.3, p=10, median=5)
    x = np.random.default_rng(0).random((20, 20))
    base = structure_map_steps(x)
    for k, v in structure_map_steps(x, **ALG1_DEFAULTS, kernel=3, literal_line12=False).items():
        assert np.array_equal(v, base[k]), k
    assert np.array_equal(organ_mask(x), organ_mask(x, alpha=0.3, p=10, median=5))
    z = fuse_noise(np.zeros((200, 200)), np.zeros((200, 200)))["z"]
    assert 0.5 <= z.min() < 0.501 and 0.599 < z.max() < 0.6


def test_to_gray_hand_values_dtype_rgba_and_constant() -> None:
    g = to_gray(np.array([[2, 4], [6, 10]], dtype=np.float32))
    assert g.dtype == np.float64 and np.array_equal(g, [[0, 0.25], [0.5, 1.0]])
    rgb = np.random.default_rng(1).random((5, 6, 3))
    rgba = np.concatenate([rgb, np.random.default_rng(2).random((5, 6, 1))], -1)
    assert np.array_equal(to_gray(rgba), to_gray(rgb))  # alpha ignored
    c = to_gray(np.full((3, 4), 7.0))
    assert c.shape == (3, 4) and c.dtype == np.float64 and not c.any()


def test_blur_support_is_the_kernel_and_borders_repeat_the_edge() -> None:
    delta = np.zeros((9, 9))
    delta[4, 4] = 1.0
    for kernel in (3, 5):
        out = st._blur(delta, 1.0, kernel)
        r = kernel // 2
        assert (out[4 - r : 5 + r, 4 - r : 5 + r] > 0).all() and out.sum() == pytest.approx(1.0)
        assert np.count_nonzero(out) == kernel * kernel  # nothing outside the kernel x kernel window
    # a corner delta with a 5x5 kernel: "nearest" repeats the corner pixel twice past the edge (reflect would not)
    corner = np.zeros((9, 9))
    corner[0, 0] = 1.0
    k = np.exp(-(np.arange(-2, 3) ** 2) / 2.0)
    k /= k.sum()
    assert st._blur(corner, 1.0, 5)[0, 0] == pytest.approx((k[0] + k[1] + k[2]) ** 2)
    assert st._blur(corner, 0.0, 5) is corner


def test_constant_image_gives_an_empty_finite_map() -> None:
    steps = structure_map_steps(np.full((16, 16), 0.4))
    for k, v in steps.items():
        assert np.isfinite(v).all() and v.shape == (16, 16), k
    assert not steps["s"].any() and not steps["l2_s1_min"].any()


def test_alg1_kernel_default_is_3() -> None:
    x = np.random.default_rng(3).random((24, 24))
    a = structure_map_steps(x, sigma1=1.5)
    assert np.array_equal(a["l4_s1_blur"], structure_map_steps(x, sigma1=1.5, kernel=3)["l4_s1_blur"])
    assert not np.allclose(a["l4_s1_blur"], structure_map_steps(x, sigma1=1.5, kernel=5)["l4_s1_blur"])
    assert np.allclose(a["l4_s1_blur"], st._blur(a["l2_s1_min"], 1.5, 3))


def test_alg1_thresholds_are_strict_at_the_threshold() -> None:
    x = np.random.default_rng(4).random((20, 20))
    ref = structure_map_steps(x)
    for line, src in (("l8_s1_bin", "l6_s1_centred"), ("l9_s2_bin", "l7_s2_centred")):
        a = float(np.sort(ref[src].ravel())[-5])  # a value that occurs: pixels exactly at alpha are not edges
        got = structure_map_steps(x, alpha=a)
        assert np.array_equal(got[line], (ref[src] > a).astype(float)) and got[line].dtype == np.float64
        assert got[line][ref[src] == a].sum() == 0 and got[line].sum() == 4
    gamma = float(ref["x"][3, 3])
    fg = structure_map_steps(x, gamma=gamma)["foreground"]
    assert fg[3, 3] == 0 and np.array_equal(fg, (ref["x"] > gamma).astype(float))
    # line 12 at beta = a value of the blurred union: strictly greater
    b = structure_map_steps(x, sigma2=1.0)
    beta = float(np.unique(b["l11_blur"])[len(np.unique(b["l11_blur"])) // 2])
    t = structure_map_steps(x, sigma2=1.0, beta=beta)["l12_thresh"]
    assert np.array_equal(t, (b["l11_blur"] > beta).astype(float))


def test_alg1_median_pads_with_zeros_and_the_map_is_float32() -> None:
    # beta, gamma below every value: line 12 is all ones; line 13's 5x5 median sees zeros outside the image, so
    # the corner (9 of 25 ones) goes to 0 and the next-to-corner (12 of 25) too, the edge middle (15) stays 1
    steps = structure_map_steps(np.random.default_rng(5).random((12, 12)), beta=-1.0, gamma=-1.0)
    assert steps["l12_thresh"].all()
    m = steps["l13_median"]
    assert m[0, 0] == 0 and m[0, 1] == 0 and m[1, 1] == 1 and m[0, 6] == 1 and m[6, 6] == 1
    assert steps["s"].dtype == np.float32 and np.array_equal(steps["s"], m.astype(np.float32))
    assert structure_map(np.random.default_rng(5).random((12, 12)), beta=-1.0, gamma=-1.0).dtype == np.float32


def test_remove_lesion_dilates_by_one_cross_step_by_default() -> None:
    s = np.ones((7, 7), np.float32)
    les = np.zeros((7, 7), bool)
    les[3, 3] = True
    assert (remove_lesion(s, les) == 0).sum() == 5  # the pixel and its 4 neighbours
    assert (remove_lesion(s, les, dilate=0) == 0).sum() == 1
    assert (remove_lesion(s, les, dilate=2) == 0).sum() == 13  # a diamond of radius 2
    out = remove_lesion(s * 0.5, les.astype(np.uint8))
    assert out.dtype == np.float32 and out[0, 0] == 0.5 and out[3, 4] == 0


def test_alg2_threshold_enlargement_about_the_centre_and_border_mode() -> None:
    # x = 0, 3, 10 -> normalised 0, 0.3, 1: the pixel exactly at alpha = 0.3 is background (m = 1 - (x > alpha))
    x = np.zeros((6, 6))
    x[2:4, 2:4] = 10.0
    x[0, 0] = 3.0
    steps = organ_mask_steps(x, p=0, median=1)
    assert steps["x"][0, 0] == 0.3 and steps["l2_m"][0, 0] == 1.0 and steps["l2_m"][2, 2] == 0.0
    # a centred square organ grows symmetrically for even p (p // 2 rows/cols cut from the top/left)
    sq = _square(24, 8, 16)
    for p in (6, 10):
        s = organ_mask_steps(sq, p=p, median=1)
        assert s["l4_resized"].shape == (24 + p, 24 + p) and set(np.unique(s["l4_resized"])) == {0.0, 1.0}
        crop = s["l5_cropped"]
        assert crop.shape == (24, 24) and np.array_equal(crop, crop[::-1, ::-1])
        organ = crop == 0
        assert organ[8:16, 8:16].all() and organ.sum() > 64  # enlarged, the original organ kept
        assert np.array_equal(s["l6_m"], crop) and s["m"].dtype == np.float32
    # line 6's median repeats the edge ("nearest"): a background top row survives a 5x5 median
    top = np.ones((10, 10))
    top[0] = 0.0
    m = organ_mask_steps(top, p=0, median=5)
    assert (m["l6_m"][0] == 1).all() and (m["l6_m"][2:] == 0).all()


def test_eq12_numpy_and_torch_agree_incl_half_masks() -> None:
    s = np.array([[0, 1, 0, 1, 0.5], [0, 0, 1, 0, 0.25]], np.float64)
    m = np.array([[0, 0, 1, 1, 0.5], [1, 0.5, 0.5, 0, 0]], np.float64)
    # alpha1 = alpha2: z' is the constant 0.55 in both, so the outputs must agree exactly (Eq. 12)
    want = s + 0.55 * (1 - m) * (1 - s)
    fn = fuse_noise(s, m, 0.55, 0.55)
    assert {k: v.dtype for k, v in fn.items()} == {k: np.float32 for k in ("s", "m", "z", "s_fused")}
    assert np.array_equal(fn["s"], s.astype(np.float32)) and np.array_equal(fn["m"], m.astype(np.float32))
    np.testing.assert_allclose(fn["s_fused"], want, rtol=1e-6)
    ft = fuse_noise_torch(torch.tensor(s), torch.tensor(m), 0.55, 0.55)
    np.testing.assert_allclose(ft.numpy(), want, rtol=1e-12) and np.testing.assert_allclose(
        ft.numpy(), fn["s_fused"], rtol=1e-6
    )
    assert ft[1, 0] == 0.0 and ft[0, 2] == 0.0  # background (m = 1) off contours: s' = s = 0


def test_eq12_torch_draws_from_the_generator_in_the_input_dtype() -> None:
    s, m = torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64)
    out = fuse_noise_torch(s, m, 0.2, 0.7, torch.Generator().manual_seed(3))
    z = torch.rand((3, 4), generator=torch.Generator().manual_seed(3), dtype=torch.float64) * (0.7 - 0.2) + 0.2
    assert out.dtype == torch.float64 and torch.allclose(out, z, rtol=0, atol=1e-15)
    assert not torch.equal(out, fuse_noise_torch(s, m, 0.2, 0.7, torch.Generator().manual_seed(4)))


def test_eq12_numpy_seed_and_alpha_checks() -> None:
    s, m = np.zeros((4, 5)), np.zeros((4, 5))
    want = np.random.default_rng(0).uniform(0.5, 0.6, size=(4, 5)).astype(np.float32)
    assert np.array_equal(fuse_noise(s, m)["z"], want)  # seed 0 by default
    assert np.array_equal(
        fuse_noise(s, m, 0.5, 0.6, seed=7)["z"],
        np.random.default_rng(7).uniform(0.5, 0.6, size=(4, 5)).astype(np.float32),
    )
    assert (fuse_noise(s, m, 0.3, 0.3)["z"] == np.float32(0.3)).all()  # alpha1 == alpha2 is allowed
    with pytest.raises(ValueError, match=r"Eq. 12 needs alpha1 <= alpha2, got 0.6, 0.5"):
        fuse_noise(s, m, 0.6, 0.5)


def test_vessel_agreement_at_its_thresholds_and_with_one_pixel() -> None:
    s = np.array([[0.5, 0.6], [0.0, 0.0]])
    v = np.array([[1, 1], [0, 0]])
    r = vessel_agreement(s, v)  # 0.5 is not structure: one of two vessel pixels kept
    assert r == {"dice": pytest.approx(2 / 3), "recall": 0.5, "precision": 1.0, "fraction": 0.25}
    one = np.array([[0, 1], [0, 0]])
    assert vessel_agreement(one, one) == {"dice": 1.0, "recall": 1.0, "precision": 1.0, "fraction": 0.25}
    fov = np.array([[0, 1], [0, 0]])  # a one-pixel FOV: fraction 1, the pixel outside is ignored
    assert vessel_agreement(np.ones((2, 2)), v, fov) == {"dice": 1.0, "recall": 1.0, "precision": 1.0, "fraction": 1.0}
    assert vessel_agreement(np.zeros((2, 2)), np.zeros((2, 2))) == {
        "dice": 0.0,
        "recall": 0.0,
        "precision": 0.0,
        "fraction": 0.0,
    }
    with pytest.raises(ValueError, match="differ in shape"):
        vessel_agreement(np.ones((2, 2)), np.ones((3, 2)))


def test_alpha_curve_cuts_to_the_eroded_fov_and_passes_params() -> None:
    rng = np.random.default_rng(6)
    img = ndi.gaussian_filter(rng.random((40, 40)), 1.0)
    ves = rng.random((40, 40)) > 0.7
    fov = np.zeros((40, 40), bool)
    fov[2:38, 2:38] = True
    d = {"image": img, "vessels": ves, "fov": fov}
    alphas = [0.02, 0.1]
    for erode, kw in ((8, {}), (3, {"fov_erode": 3}), (0, {"fov_erode": 0})):
        cur = alpha_curve([d, d], alphas, normalise=False, **kw)
        f = ndi.binary_erosion(fov, iterations=erode) if erode else fov
        for i, a in enumerate(alphas):
            va = vessel_agreement(structure_map(img, alpha=a, normalise=False), ves, f)
            for k in ("dice", "recall", "precision"):
                assert cur[k][i] == pytest.approx(va[k]), (erode, a, k)
        assert np.array_equal(cur["alpha"], alphas) and cur["alpha"].dtype == float


def test_tile_one_scale_white_gutters() -> None:
    imgs = [np.full((3, 4), v) for v in (-1.0, 0.25, 2.0)]
    t = st._tile(imgs, 2)
    assert t.shape == (2 + 2 * (3 + 2), 2 + 2 * (4 + 2))  # 2 rows of 2, 2-px gutters
    assert t[2, 2] == 0.0 and t[2, 8] == 0.25 and t[7, 2] == 1.0  # clipped to [0, 1], never rescaled
    assert t[0, 0] == 1.0 and t[7, 8] == 1.0  # gutters and the empty cell: white
    assert st._tile(imgs, 3, pad=1).shape == (1 + 3 + 1, 1 + 3 * (4 + 1))


def test_structure_view_panels_and_caption() -> None:
    x = _square(24)
    img, cap = structure_view(x)
    steps = structure_map_steps(x)
    assert img.shape == (2 + 2 * 26, 2 + 6 * 26)  # 12 panels, 6 per row by default
    assert np.array_equal(img[2:26, 2:26], steps["x"].astype(np.float32))
    assert cap.startswith(" | ".join(ALG1_PANELS) + "  (one scale, 0 black - 1 white)  --  alpha=0.035 beta=0.00")
    assert "normalised Sobel, line12=intent: " in cap and cap.endswith(
        f"{100 * steps['s'].mean():.1f}% structure pixels"
    )
    _, raw = structure_view(x, normalise=False, literal_line12=True, alpha=0.2)
    assert "raw Sobel, line12=literal" in raw and "alpha=0.200" in raw
    ves = steps["s"] > 0
    fov = np.zeros_like(ves)
    fov[:12] = True
    _, vc = structure_view(x, vessels=ves, fov=fov)
    va = vessel_agreement(steps["s"], ves, fov)
    assert vc.startswith(cap) and vc.endswith(f"; vs manual vessels: Dice {va['dice']:.3f}, recall {va['recall']:.3f}")


def test_fusion_view_panels_caption_and_defaults() -> None:
    x = _square(24)
    img, cap = fusion_view(x, 0.55, 0.55, alg2={"p": 0})
    s, m = structure_map(x), organ_mask(x, p=0)
    assert img.shape == (24, 3 * 24 + 4)
    assert np.array_equal(img[:, :24], s) and np.array_equal(img[:, 26:50], m)
    assert (img[:, 24:26] == 0.5).all() and (img[:, 50:52] == 0.5).all()  # grey gutters
    np.testing.assert_allclose(img[:, 52:], np.clip(fuse_noise(s, m, 0.55, 0.55)["s_fused"], 0, 1))
    assert cap == "s | m | s' (Eq. 12), z'~U(0.55, 0.55), seed 0: s' inside the organ off contours in [0.550, 0.550]"
    assert not np.array_equal(fusion_view(x)[0][:, 26:50], m)  # alg2 reached organ_mask; default p = 10 differs
    a1 = {"alpha": 0.5}
    assert np.array_equal(fusion_view(x, alg1=a1)[0][:, :24], structure_map(x, alpha=0.5))
    img0, cap0 = fusion_view(x)
    f0 = fuse_noise(s, organ_mask(x), 0.5, 0.6, 0)["s_fused"]
    assert np.array_equal(img0[:, 52:], np.clip(f0, 0, 1)) and "z'~U(0.50, 0.60), seed 0" in cap0
    assert not np.array_equal(fusion_view(x, seed=1)[0], img0)
    _, swapped = fusion_view(x, 0.6, 0.5)
    assert "z'~U(0.50, 0.60)" in swapped
    hi, _ = fusion_view(x, 1.2, 1.5)
    lo, _ = fusion_view(x, -0.5, -0.4)
    assert hi.max() == 1.0 and lo.min() == 0.0  # one [0, 1] scale: clipped, not rescaled
    _, none = fusion_view(np.full((12, 12), 0.3))
    assert none.endswith("(no organ pixels)")


def test_eq12_torch_noise_is_drawn_on_the_inputs_device() -> None:
    s = torch.zeros(2, 3, device="meta")
    assert fuse_noise_torch(s, s.clone()).device.type == "meta"  # "meta": a device other than the CPU, no GPU needed


def test_views_dtypes_non_square_images_and_tile_never_rescales() -> None:
    x = np.zeros((20, 30))
    x[5:15, 6:24] = 1.0
    img, _ = fusion_view(x)
    assert img.shape == (20, 3 * 30 + 4) and img.dtype == np.float32
    t = st._tile([np.full((2, 2), 0.25), np.full((2, 2), 0.5)], 2)
    assert t.dtype == np.float32 and t[2, 2] == 0.25 and t[2, 6] == 0.5  # not stretched to [0, 1]
    cur = alpha_curve([{"image": x, "vessels": x > 0, "fov": np.ones_like(x, bool)}], [0, 1], fov_erode=0)
    assert cur["alpha"].dtype == np.float64  # int alphas come back as floats


def test_structure_view_percentage_and_vessel_scores_inside_the_fov() -> None:
    x = np.random.default_rng(9).random((24, 24))
    steps = structure_map_steps(x, alpha=0.01)
    _, cap = structure_view(x, alpha=0.01)
    pct = 100 * float(steps["s"].mean())
    assert pct > 20 and cap.endswith(f": {pct:.1f}% structure pixels")
    q = _square(24)
    s = structure_map_steps(q)["s"]
    ves = np.zeros((24, 24), bool)
    ves[:, 5:8] = True
    fov = np.zeros((24, 24), bool)
    fov[:, :12] = True
    _, vc = structure_view(q, vessels=ves, fov=fov)
    inside, whole = vessel_agreement(s, ves, fov), vessel_agreement(s, ves)
    assert inside["dice"] != pytest.approx(whole["dice"], abs=1e-3)
    assert vc.endswith(f"; vs manual vessels: Dice {inside['dice']:.3f}, recall {inside['recall']:.3f}")
