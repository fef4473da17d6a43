"""Structure maps for chapter 04 (Yili Qu, multi-modal medical image synthesis from structural feature maps,
SYSU master's thesis 2020; the author's TensorFlow demo: quyili/MultimodalMedicalImagesSynthesis, code_demo/).

Three pure, step-by-step functions of the thesis, each returning every intermediate image so the
explorers (``medsynth.widgets.structure_explorer`` / ``fusion_explorer``) can show them (Fig. 11, 12):

* :func:`structure_map_steps` — **Algorithm 1**, the structural feature map from Sobel edges
  (pixel thresholds alpha, beta, gamma; Gaussian sigma1, sigma2; median filter).
* :func:`organ_mask_steps` — **Algorithm 2**, the mask (threshold, enlarge by p px, crop, median).
  Note the convention: Algorithm 2 line 2 writes ``m = 1 - (x > alpha)``, so ``m`` is 1 on the
  *background* and 0 on the organ; Eq. 7, 11 and 12 all rely on that (noise and structure are only
  allowed where ``1 - m`` = 1).
* :func:`fuse_noise` / :func:`fuse_noise_torch` — **Eq. 12**, ``s' = s + z' (1 - m)(1 - s)``,
  ``z' ~ U(alpha1, alpha2)`` (defaults 0.5, 0.6, Sec. 4.2.3).

The thesis gives no thresholds; the author's code does (``GET_S_AND_MASK/get_s_and_m_from_image.py``):
the two Sobel maps are **min-max normalised to [0, 1]** before anything else (``tf_norm``), which makes
alpha a fraction of the image's own edge range and so independent of resolution and intensity scale.
:data:`ALG1_DEFAULTS` are its BRATS settings, :data:`ALG1_RETINA` its DRIVE settings, :data:`ALG2_DEFAULTS`
its mask settings (threshold 0.3 on the normalised image, p = 10, 5x5 median).
:func:`vessel_agreement` scores a map against manual vessel labels (Dice, recall inside the FOV).
Filters come from scipy/scikit-image (Sobel, Gaussian, median), not hand-written kernels.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage import filters, transform
from skimage.color import rgb2gray

__all__ = [
    "ALG1_DEFAULTS",
    "ALG1_RETINA",
    "ALG1_UNNORMALISED",
    "ALG2_DEFAULTS",
    "to_gray",
    "structure_map_steps",
    "structure_map",
    "organ_mask_steps",
    "organ_mask",
    "remove_lesion",
    "fuse_noise",
    "fuse_noise_torch",
    "vessel_agreement",
    "alpha_curve",
    "ALG1_PANELS",
    "structure_view",
    "fusion_view",
]

#: Algorithm 1, the author's BRATS settings (get_s(x, sigma=0.01, j=0.035), then a 3x3 blur with sigma 0.01
#: binarised at 0 = lines 11-12, then a 5x5 median): sigma 0.01 makes the 3x3 blurs the identity.
ALG1_DEFAULTS = dict(alpha=0.035, beta=0.0, gamma=0.05, sigma1=0.01, sigma2=0.01, median=5, normalise=True)
#: Algorithm 1, the author's DRIVE settings (get_s(x, j=0.014) with sigma 0.4, then blur sigma 0.3 > 0.05).
ALG1_RETINA = dict(alpha=0.014, beta=0.05, gamma=0.05, sigma1=0.4, sigma2=0.3, median=5, normalise=True)
#: This course's earlier settings (un-normalised skimage Sobel, alpha in Sobel units): alpha then depends on
#: resolution (it had to be patched to 0.1 at 64 px). Kept to show students why the code normalises.
ALG1_UNNORMALISED = dict(alpha=0.05, beta=0.3, gamma=0.05, sigma1=1.0, sigma2=1.0, median=3, normalise=False)
#: Algorithm 2, the author's settings: threshold 0.3 on the min-max normalised image, enlargement p = 10 px
#: (at 184 x 144 BRATS slices), 5x5 median.
ALG2_DEFAULTS = dict(alpha=0.3, p=10, median=5)


def to_gray(x: np.ndarray) -> np.ndarray:
    """(H,W) or (H,W,3) image -> float (H,W) in [0,1] (Algorithm 1 line 1: "a real grayscale image")."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = rgb2gray(x[..., :3])
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _blur(img: np.ndarray, sigma: float, kernel: int) -> np.ndarray:
    # "3x3 Gaussian blur" (Sec. 4.2.1): sigma from the algorithm, support fixed by ``kernel``.
    if sigma <= 0:
        return img
    return ndi.gaussian_filter(img, sigma, radius=kernel // 2, mode="nearest")


def _norm01(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def structure_map_steps(
    x: np.ndarray,
    alpha: float = ALG1_DEFAULTS["alpha"],
    beta: float = ALG1_DEFAULTS["beta"],
    gamma: float = ALG1_DEFAULTS["gamma"],
    sigma1: float = ALG1_DEFAULTS["sigma1"],
    sigma2: float = ALG1_DEFAULTS["sigma2"],
    literal_line12: bool = False,
    kernel: int = 3,
    median: int = ALG1_DEFAULTS["median"],
    normalise: bool = True,
    lesion: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Algorithm 1 (Sec. 4.2.1), every line kept as an entry of the returned dict (in order).

    Lines 2-3 ``reduce_min/reduce_max(sobel(x))``: the pixel-wise min and max over the two Sobel
    responses (horizontal, vertical; signed, as ``tf.image.sobel_edges`` returns them). Lines 6-7
    subtract from/against the map's mean so dark (min) and bright (max) contours both become
    positive; lines 8-9 binarise at ``alpha``; line 10 unites them; line 11 blurs the union with
    ``sigma2`` to thicken and join broken lines.

    **Line 12** as printed thresholds ``(s1 + s2) > beta`` — the un-blurred maps of lines 8-9, which
    would throw line 11 away. The evident intent is ``s > beta`` on the blurred ``s`` of line 11;
    that is the default. ``literal_line12=True`` runs the line as printed (the notebook shows both).
    The author's code reads it the same way (blur, then ``> beta``). Line 13 is a ``median`` x ``median``
    median filter (5 in the code), line 14 keeps only pixels where ``x > gamma`` (the code multiplies by
    ``1 - m`` of Algorithm 2 instead; :class:`~medsynth.models.structsynth.data.BrainStructDataset` does both).
    ``normalise`` (the code's ``tf_norm``, not in the printed algorithm): lines 2-3's maps are min-max
    normalised to [0, 1], so ``alpha`` is a fraction of the image's edge range.
    ``lesion`` (optional bool mask) zeroes the structure inside a lesion, as the thesis does for
    BRATS (Sec. 4.2.1 last paragraph, Sec. 5.2.1, Fig. 11): entry ``"s_no_lesion"``.
    """
    x = to_gray(x)
    out: dict[str, np.ndarray] = {"x": x}
    out["sobel_h"] = filters.sobel_h(x)  # sobel(x): two edge maps
    out["sobel_v"] = filters.sobel_v(x)
    edges = np.stack([out["sobel_h"], out["sobel_v"]])
    s1 = edges.min(0)
    s2 = edges.max(0)
    if normalise:  # the author's tf_norm
        s1, s2 = _norm01(s1), _norm01(s2)
    out["l2_s1_min"] = s1  # line 2
    out["l3_s2_max"] = s2  # line 3
    s1 = _blur(s1, sigma1, kernel)
    out["l4_s1_blur"] = s1  # line 4
    s2 = _blur(s2, sigma1, kernel)
    out["l5_s2_blur"] = s2  # line 5
    s1 = s1.mean() - s1
    out["l6_s1_centred"] = s1  # line 6
    s2 = s2 - s2.mean()
    out["l7_s2_centred"] = s2  # line 7
    s1 = (s1 > alpha).astype(np.float64)
    out["l8_s1_bin"] = s1  # line 8
    s2 = (s2 > alpha).astype(np.float64)
    out["l9_s2_bin"] = s2  # line 9
    s = ((s1 + s2) > 0).astype(np.float64)
    out["l10_union"] = s  # line 10
    s = _blur(s, sigma2, kernel)
    out["l11_blur"] = s  # line 11
    src = (s1 + s2) if literal_line12 else s  # line 12 (see docstring)
    s = (src > beta).astype(np.float64)
    out["l12_thresh"] = s
    s = ndi.median_filter(s, size=median, mode="constant")
    out["l13_median"] = s  # line 13
    out["foreground"] = (x > gamma).astype(np.float64)
    s = s * out["foreground"]
    out["l14_s"] = s  # line 14
    out["s"] = s.astype(np.float32)
    if lesion is not None:
        out["s_no_lesion"] = remove_lesion(out["s"], lesion)
    return out


def structure_map(x: np.ndarray, **kwargs) -> np.ndarray:
    """Final structure map of Algorithm 1, float32 (H,W) in {0,1} (see :func:`structure_map_steps`)."""
    return structure_map_steps(x, **kwargs)["s"]


def remove_lesion(s: np.ndarray, lesion: np.ndarray, dilate: int = 1) -> np.ndarray:
    """Zero the structure inside a (slightly dilated) lesion mask (Sec. 4.2.1, Fig. 11's last two panels)."""
    les = np.asarray(lesion).astype(bool)
    if dilate:
        les = ndi.binary_dilation(les, iterations=dilate)
    return (np.asarray(s) * (~les)).astype(np.float32)


def organ_mask_steps(
    x: np.ndarray,
    alpha: float = ALG2_DEFAULTS["alpha"],
    p: int = ALG2_DEFAULTS["p"],
    median: int = ALG2_DEFAULTS["median"],
) -> dict[str, np.ndarray]:
    """Algorithm 2 (Sec. 4.2.2): background mask ``m`` (1 = background, 0 = organ), every line kept.

    Line 3-4 resize the mask to ``(H + p, W + p)`` with nearest-neighbour interpolation (the thesis
    names ``resize()`` as nearest-neighbour); line 5 ``crop_padding(m, p)`` crops the p added rows
    and columns back off (p // 2 from the top/left, the rest from the bottom/right), so the organ is
    enlarged about the centre by about p/2 px per side (the code's ``resize_image_with_crop_or_pad``).
    Line 6 is a ``median`` x ``median`` median filter (5 in the code).
    """
    x = to_gray(x)
    h, w = x.shape
    out: dict[str, np.ndarray] = {"x": x}
    m = 1.0 - (x > alpha).astype(np.float64)
    out["l2_m"] = m  # line 2
    big = transform.resize(m, (h + p, w + p), order=0, preserve_range=True, anti_aliasing=False)
    out["l4_resized"] = big  # lines 3-4
    t, lft = p // 2, p // 2
    m = big[t : t + h, lft : lft + w]
    out["l5_cropped"] = m  # line 5
    m = ndi.median_filter(m, size=median, mode="nearest")
    out["l6_m"] = m  # line 6
    out["m"] = m.astype(np.float32)
    return out


def organ_mask(x: np.ndarray, **kwargs) -> np.ndarray:
    """Final Algorithm 2 mask, float32 (H,W), 1 = background (see :func:`organ_mask_steps`)."""
    return organ_mask_steps(x, **kwargs)["m"]


def fuse_noise(
    s: np.ndarray, m: np.ndarray, alpha1: float = 0.5, alpha2: float = 0.6, seed: int | None = 0
) -> dict[str, np.ndarray]:
    """Eq. 12 (Sec. 4.2.3): ``s' = s + z' * (1 - m) * (1 - s)``, ``z' ~ U(alpha1, alpha2)`` per pixel.

    Where ``s = 1`` (a contour) or ``m = 1`` (background) ``s'`` equals ``s``; inside the organ and off
    the contours it is pure noise in ``[alpha1, alpha2]``. Returns ``{"s", "m", "z", "s_fused"}``.
    """
    if alpha2 < alpha1:
        raise ValueError(f"Eq. 12 needs alpha1 <= alpha2, got {alpha1}, {alpha2}")
    s = np.asarray(s, dtype=np.float32)
    m = np.asarray(m, dtype=np.float32)
    z = np.random.default_rng(seed).uniform(alpha1, alpha2, size=s.shape).astype(np.float32)
    return {"s": s, "m": m, "z": z, "s_fused": s + z * (1 - m) * (1 - s)}


def fuse_noise_torch(
    s: torch.Tensor, m: torch.Tensor, alpha1: float = 0.5, alpha2: float = 0.6, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Eq. 12 on tensors (any shape, same for ``s`` and ``m``), for use inside training steps."""
    z = torch.rand(s.shape, generator=generator, device=s.device, dtype=s.dtype) * (alpha2 - alpha1) + alpha1
    return s + z * (1 - m) * (1 - s)


def vessel_agreement(s: np.ndarray, vessels: np.ndarray, fov: np.ndarray | None = None) -> dict[str, float]:
    """Dice, recall and precision of a structure map ``s`` against manual vessel labels, inside ``fov``.

    Sec. 5.6.2 uses the retinal structure map (the FOV ring cut off by the mask) as a coarse vessel label;
    these numbers say how coarse. Recall: the fraction of vessel pixels the map keeps.
    """
    s, v = np.asarray(s) > 0.5, np.asarray(vessels) > 0
    if s.shape != v.shape:
        raise ValueError(f"structure map {s.shape} and vessel labels {v.shape} differ in shape")
    inside = np.ones_like(v) if fov is None else np.asarray(fov) > 0
    s, v = s & inside, v & inside
    tp = float((s & v).sum())
    return {
        "dice": 2 * tp / max(1.0, float(s.sum() + v.sum())),
        "recall": tp / max(1.0, float(v.sum())),
        "precision": tp / max(1.0, float(s.sum())),
        "fraction": float(s.sum()) / max(1.0, float(inside.sum())),
    }


def alpha_curve(images: list[dict], alphas, **params) -> dict[str, np.ndarray]:
    """Algorithm 1's alpha against agreement with the manual vessels: ``images`` are dicts with ``image``,
    ``vessels`` and ``fov`` (``medsynth.data.realism.load_drive``); the map is cut to the FOV eroded by
    ``fov_erode`` px (default 8: the FOV ring itself is no vessel). Returns mean dice/recall/precision per alpha."""
    erode = int(params.pop("fov_erode", 8))
    rows = {k: [] for k in ("dice", "recall", "precision")}
    for a in alphas:
        vals = []
        for d in images:
            fov = ndi.binary_erosion(d["fov"], iterations=erode) if erode else d["fov"]
            vals.append(vessel_agreement(structure_map(d["image"], **{**params, "alpha": float(a)}), d["vessels"], fov))
        for k in rows:
            rows[k].append(float(np.mean([v[k] for v in vals])))
    return {"alpha": np.asarray(alphas, float), **{k: np.asarray(v) for k, v in rows.items()}}


# -- explorer views (pure; wrapped by medsynth.widgets.structure_explorer / fusion_explorer) -------------

#: The Algorithm 1 intermediates shown by :func:`structure_view`, in the order of Fig. 11 / the algorithm.
ALG1_PANELS = (
    "x",
    "l2_s1_min",
    "l3_s2_max",
    "l6_s1_centred",
    "l7_s2_centred",
    "l8_s1_bin",
    "l9_s2_bin",
    "l10_union",
    "l11_blur",
    "l12_thresh",
    "l13_median",
    "s",
)


def _tile(images: list[np.ndarray], ncols: int, pad: int = 2) -> np.ndarray:
    """Tile images into one grey (H', W') array with white gutters, all on ONE scale: [0, 1] -> black..white
    (values outside are clipped; the centred maps of lines 6-7 show their positive part, which is what lines
    8-9 threshold)."""
    from torchvision.utils import make_grid

    batch = torch.from_numpy(np.clip(np.stack(images), 0, 1).astype(np.float32))[:, None]
    return make_grid(batch, nrow=ncols, padding=pad, normalize=False, pad_value=1.0)[0].numpy()


def structure_view(
    x: np.ndarray, ncols: int = 6, vessels: np.ndarray | None = None, fov: np.ndarray | None = None, **params
) -> tuple[np.ndarray, str]:
    """Every intermediate of Algorithm 1 tiled on one shared [0, 1] scale (panels :data:`ALG1_PANELS`) and a
    caption; with manual ``vessels`` (and ``fov``) the caption adds the map's Dice/recall against them."""
    st = structure_map_steps(x, **params)
    img = _tile([st[k] for k in ALG1_PANELS], ncols)
    p = {**ALG1_DEFAULTS, **params}
    cap = (
        " | ".join(ALG1_PANELS) + f"  (one scale, 0 black - 1 white)  --  alpha={p['alpha']:.3f} beta={p['beta']:.2f} "
        f"gamma={p['gamma']:.2f} sigma1={p['sigma1']:.2f} sigma2={p['sigma2']:.2f} "
        f"{'normalised' if p['normalise'] else 'raw'} Sobel, "
        f"line12={'literal' if p.get('literal_line12') else 'intent'}: "
        f"{100 * float(st['s'].mean()):.1f}% structure pixels"
    )
    if vessels is not None:
        va = vessel_agreement(st["s"], vessels, fov)
        cap += f"; vs manual vessels: Dice {va['dice']:.3f}, recall {va['recall']:.3f}"
    return img, cap


def fusion_view(
    x: np.ndarray,
    alpha1: float = 0.5,
    alpha2: float = 0.6,
    seed: int = 0,
    alg1: dict | None = None,
    alg2: dict | None = None,
) -> tuple[np.ndarray, str]:
    """Eq. 12 on one image: ``s`` (Alg. 1) | ``m`` (Alg. 2) | ``s'`` side by side (no per-panel rescaling)."""
    s = structure_map(x, **(alg1 or {}))
    m = organ_mask(x, **(alg2 or {}))
    a1, a2 = min(alpha1, alpha2), max(alpha1, alpha2)
    f = fuse_noise(s, m, a1, a2, seed)["s_fused"]
    pad = np.full((s.shape[0], 2), 0.5, np.float32)  # grey: m is white outside the organ, like the page
    img = np.clip(np.concatenate([s, pad, m, pad, f], 1), 0, 1)
    inside = (m < 0.5) & (s < 0.5)
    rng_txt = f"[{f[inside].min():.3f}, {f[inside].max():.3f}]" if inside.any() else "(no organ pixels)"
    cap = f"s | m | s' (Eq. 12), z'~U({a1:.2f}, {a2:.2f}), seed {seed}: s' inside the organ off contours in {rng_txt}"
    return img, cap
