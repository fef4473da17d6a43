"""BraTS-like 2-D brain MRI phantom: T1, T2, T1c, FLAIR, tumour labels and brain mask.

Stand-in for BraTS slices (240x240 at 1 mm, four registered contrasts, labels 0 background,
1 necrotic / non-enhancing core, 2 peritumoural oedema, 4 enhancing tumour) used by the multi-modal
synthesis chapter (04) and, with :mod:`.degrade`, for MedGAN (02).

Anatomy (``anatomy=``): ``"mni"`` (default) cuts the ICBM 2009a MNI152 grey/white-matter maps that
ship inside nilearn (:mod:`.brain_mni`, :mod:`.mni`; Fonov et al., NeuroImage 2009/2011) - real gyri,
sulci, ventricles and deep grey matter; ``"ellipse"`` is the older head of ellipses
(:mod:`.brain_ellipse`), kept as the fast option for unit tests that need no real anatomy.

Contrast is *computed*, not painted: each tissue has proton density and relaxation times, and each
contrast is a standard signal equation (spin echo ``PD (1 - e^{-TR/T1}) e^{-TE/T2}``; FLAIR is
inversion recovery with TI chosen to null CSF; T1c is the T1 sequence with gadolinium shortening
T1 in the enhancing rim, ``1/T1' = 1/T1 + r1 C``). Normal-tissue parameters are the BrainWeb
1.5 T table (Kwan, Evans & Pike, "MRI simulation-based evaluation of image-processing and
classification methods", IEEE TMI 18(11):1085-97, 1999; Cocosco et al., NeuroImage 5:S425, 1997).
The tumour values are assumptions in the range reported for glioblastoma at 1.5 T (vasogenic
oedema: long T1 and T2; necrosis: near-fluid; viable rim in between), not one paper's table. r1 of
gadopentetate in plasma at 1.5 T is 4.1 /mM/s (Rohrer et al., Invest. Radiol. 40:715-724, 2005);
the rim concentration 0.5 mM is an assumption. Partial volume (the tissue fractions), a smooth
bias field and Rician noise (magnitude of complex Gaussian noise) finish the images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medsynth.data.fields import smooth_noise

__all__ = ["BrainSample", "make_brain", "TISSUES", "SEQUENCES", "signal", "ANATOMIES", "wm_snr", "bias_field", "rician"]

# tissue: (T1 ms, T2 ms, PD)  -- BrainWeb 1.5 T (Kwan et al. 1999) for the normal tissues
TISSUES: dict[str, tuple[float, float, float]] = {
    "background": (1.0, 1.0, 0.0),
    "scalp": (350.0, 70.0, 1.0),  # BrainWeb "fat" (subcutaneous fat dominates scalp signal)
    "skull": (1.0, 1.0, 0.0),  # cortical bone: no MR signal
    "csf": (2569.0, 329.0, 1.0),
    "gm": (833.0, 83.0, 0.86),
    "wm": (500.0, 70.0, 0.77),
    "oedema": (1100.0, 200.0, 0.90),  # vasogenic oedema: long T1 and T2 (assumed, see module docstring)
    "necrosis": (2000.0, 250.0, 0.95),  # near-fluid necrotic core (assumed)
    "enhancing": (1000.0, 120.0, 0.90),  # viable tumour rim, pre-contrast (assumed)
}
NAMES = list(TISSUES)  # order of the tissue-fraction stack
# name: (kind, TR, TE, TI) ms; typical 1.5 T clinical protocol (TI of FLAIR: CSF null point, below)
SEQUENCES: dict[str, tuple[str, float, float, float]] = {
    "t1": ("se", 500.0, 15.0, 0.0),
    "t1c": ("se", 500.0, 15.0, 0.0),
    "t2": ("se", 4000.0, 100.0, 0.0),
    "flair": ("ir", 9000.0, 120.0, 0.0),
}
GD_R1, GD_CONC = 4.1e-3, 0.5  # relaxivity (1/(mM ms), Rohrer et al. 2005), Gd concentration in the rim (mM)
ANATOMIES = ("mni", "ellipse")


def signal(seq: str, t1: float, t2: float, pd: float) -> float:
    """Signal of a tissue in sequence ``seq`` (spin echo or CSF-nulled inversion recovery)."""
    kind, tr, te, _ = SEQUENCES[seq]
    if kind == "se":
        return pd * (1 - np.exp(-tr / t1)) * np.exp(-te / t2)
    t1csf = TISSUES["csf"][0]
    ti = t1csf * np.log(2.0 / (1.0 + np.exp(-tr / t1csf)))  # null point of CSF
    return pd * abs(1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1)) * np.exp(-te / t2)


@dataclass
class BrainSample:
    """Images (H,W) float32 in [0,1] for t1, t2, t1c, flair; labels uint8 {0,1,2,4}; brain_mask bool."""

    images: dict[str, np.ndarray]
    labels: np.ndarray
    brain_mask: np.ndarray
    tissues: dict[str, np.ndarray] = field(default_factory=dict)  # fractional tissue maps (sum to 1)
    meta: dict = field(default_factory=dict)


def tissue_signals(seq: str) -> np.ndarray:
    """Signal of every tissue of :data:`TISSUES` in ``seq`` (T1c: Gd-shortened T1 in the rim)."""
    vals = []
    for n in NAMES:
        t1, t2, pd = TISSUES[n]
        if seq == "t1c" and n == "enhancing":
            t1 = 1.0 / (1.0 / t1 + GD_R1 * GD_CONC)
        vals.append(signal(seq, t1, t2, pd))
    return np.asarray(vals, np.float32)


def _full_scale(vals: np.ndarray) -> float:
    """Signal that maps to 1/1.15 of the image range: the brightest of CSF, GM, WM, scalp and tumour."""
    T = {n: i for i, n in enumerate(NAMES)}
    return 1.15 * float(vals[[T["csf"], T["gm"], T["wm"], T["scalp"], T["oedema"], T["enhancing"]]].max())


def wm_snr(noise: float, seq: str = "t1") -> float:
    """SNR of white matter in ``seq`` for Rician ``noise`` (sigma in image units): WM signal / sigma.

    ``make_brain``'s default ``noise=0.02`` gives WM SNR 27.8 in T1w, 13.8 in T2w, 19.8 in FLAIR, at
    every image size (sigma is per pixel, whatever the pixel's size).
    """
    vals = tissue_signals(seq)
    return float(vals[NAMES.index("wm")] / _full_scale(vals) / noise) if noise > 0 else float("inf")


def bias_field(rng: np.random.Generator, shape: tuple[int, int], bias: float) -> np.ndarray:
    """Smooth multiplicative receive-coil non-uniformity ``exp(bias * n)``, n unit-std noise ~0.6 FOV across."""
    return np.exp(bias * smooth_noise(rng, shape, 0.6 * min(shape)))


def rician(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Magnitude of ``img`` plus complex Gaussian noise of std ``sigma`` per channel (Rician)."""
    return np.hypot(img + rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape))


def _render(
    frac: np.ndarray, rng: np.random.Generator, noise: float, bias: float, brain: np.ndarray, skull_strip: bool
) -> dict[str, np.ndarray]:
    """Partial-volume signal sum, bias field, fine texture, Rician noise, scaled to [0,1]."""
    h, w = frac.shape[1:]
    s = min(h, w)
    bias_f = bias_field(rng, (h, w), bias)
    images: dict[str, np.ndarray] = {}
    for seq in ("t1", "t2", "t1c", "flair"):
        vals = tissue_signals(seq)
        img = np.tensordot(vals, frac, axes=1) * bias_f * (1 + 0.03 * smooth_noise(rng, (h, w), 0.02 * s))
        img = rician(img / _full_scale(vals), rng, noise)
        if skull_strip:
            img = img * brain
        images[seq] = np.clip(img, 0, 1).astype(np.float32)
    return images


def make_brain(
    seed: int,
    size: tuple[int, int] = (240, 240),
    tumour: bool = True,
    noise: float = 0.02,
    bias: float = 0.15,
    skull_strip: bool = False,
    anatomy: str = "mni",
    z: float | None = None,
    flip: bool | None = None,
    deform: float = 1.0,
) -> BrainSample:
    """One axial slice; anatomy (slice, pose, deformation, tumour) varies with ``seed``.

    ``noise``: Rician noise sigma per pixel in image units (1/1.15 = the brightest tissue; the WM SNR it
    gives is :func:`wm_snr`, stored in ``meta["snr_wm_t1"]``); ``bias``: bias-field strength;
    ``skull_strip``: zero everything outside the brain mask, as BraTS distributes its volumes.
    ``anatomy``: ``"mni"`` (MNI152 template, default) or ``"ellipse"`` (fast, no template). MNI only:
    ``z`` axial voxel index of the template (default: seeded in ``mni.SLAB``), ``flip`` left/right
    mirror (default: seeded), ``deform`` scales the random scaling/rotation/tilt/elastic warp (0 = none).
    """
    if anatomy not in ANATOMIES:
        raise ValueError(f"make_brain(anatomy={anatomy!r}): expected one of {ANATOMIES}")
    h, w = size
    meta = {
        "seed": int(seed),
        "size": [h, w],
        "tumour": bool(tumour),
        "noise": noise,
        "bias": bias,
        "snr_wm_t1": round(wm_snr(noise), 2) if noise > 0 else None,
    }
    if anatomy == "ellipse":
        from medsynth.data.brain_ellipse import ellipse_anatomy

        rng = np.random.default_rng([int(seed), 24001])  # one stream, drawn in the original order
        frac, labels, brain = ellipse_anatomy(rng, (h, w), tumour, NAMES)
        meta["anatomy"] = "ellipse"
    else:
        from medsynth.data.brain_mni import NAMES as MNI_NAMES
        from medsynth.data.brain_mni import mni_anatomy

        assert MNI_NAMES == NAMES
        # separate streams: the same seed without a tumour is the same brain without its mass effect
        frac, labels, brain, m = mni_anatomy(
            np.random.default_rng([int(seed), 24002, 0]),
            np.random.default_rng([int(seed), 24002, 1]),
            (h, w),
            tumour,
            z=z,
            flip=flip,
            deform=deform,
        )
        meta.update(m)
        rng = np.random.default_rng([int(seed), 24002, 2])
    images = _render(frac, rng, noise, bias, brain, skull_strip)
    return BrainSample(images, labels, brain, {n: frac[i] for i, n in enumerate(NAMES)}, meta)
