"""BraTS-like 2-D brain MRI phantom: T1, T2, T1c, FLAIR, tumour labels and brain mask.

Stand-in for BraTS slices (240x240, four registered contrasts, labels 0 background, 1 necrotic /
non-enhancing core, 2 peritumoural oedema, 4 enhancing tumour) used by the multi-modal synthesis
chapter (04) and, with :mod:`.degrade`, for MedGAN (02).

Contrast is *computed*, not painted: each tissue has proton density and relaxation times, and each
contrast is a standard signal equation (spin echo ``PD (1 - e^{-TR/T1}) e^{-TE/T2}``; FLAIR is
inversion recovery with TI chosen to null CSF; T1c is the T1 sequence with gadolinium shortening
T1 in the enhancing rim, ``1/T1' = 1/T1 + r1 C``). Normal-tissue parameters are the BrainWeb
1.5 T table (Kwan, Evans & Pike, "MRI simulation-based evaluation of image-processing and
classification methods", IEEE TMI 18(11):1085-97, 1999; Cocosco et al., NeuroImage 5:S425, 1997).
Tumour values are typical literature figures for glioblastoma: oedema (vasogenic, long T1/T2),
necrosis (near-fluid), enhancing rim (r1 ~ 4 /mM/s, C ~ 0.5 mM). Partial volume, a smooth bias
field and Rician noise (magnitude of complex Gaussian noise) finish the images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from medsynth.data.fields import grid, smooth_noise

__all__ = ["BrainSample", "make_brain", "TISSUES", "SEQUENCES", "signal"]

# tissue: (T1 ms, T2 ms, PD)  -- BrainWeb 1.5 T (Kwan et al. 1999) for the normal tissues
TISSUES: dict[str, tuple[float, float, float]] = {
    "background": (1.0, 1.0, 0.0),
    "scalp": (350.0, 70.0, 1.0),       # BrainWeb "fat" (subcutaneous fat dominates scalp signal)
    "skull": (1.0, 1.0, 0.0),          # cortical bone: no MR signal
    "csf": (2569.0, 329.0, 1.0),
    "gm": (833.0, 83.0, 0.86),
    "wm": (500.0, 70.0, 0.77),
    "oedema": (1100.0, 200.0, 0.90),   # vasogenic oedema: long T1 and T2
    "necrosis": (2000.0, 250.0, 0.95),  # near-fluid necrotic core
    "enhancing": (1000.0, 120.0, 0.90),  # viable tumour rim (pre-contrast)
}
# name: (kind, TR, TE, TI) ms; typical 1.5 T clinical protocol
SEQUENCES: dict[str, tuple[str, float, float, float]] = {
    "t1": ("se", 500.0, 15.0, 0.0), "t1c": ("se", 500.0, 15.0, 0.0),
    "t2": ("se", 4000.0, 100.0, 0.0), "flair": ("ir", 9000.0, 120.0, 0.0)}
GD_R1, GD_CONC = 4.0e-3, 0.5  # relaxivity (1/(mM ms)), gadolinium concentration (mM) in the rim
LABELS = {"necrosis": 1, "oedema": 2, "enhancing": 4}


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


def make_brain(seed: int, size: tuple[int, int] = (240, 240), tumour: bool = True, noise: float = 0.02,
               bias: float = 0.15, skull_strip: bool = False) -> BrainSample:
    """One axial slice; anatomy (head shape, cortex folding, ventricles, tumour) varies with ``seed``.

    ``noise``: Rician noise sigma relative to the brightest tissue; ``bias``: bias-field strength;
    ``skull_strip``: zero everything outside the brain mask, as BraTS distributes its volumes.
    """
    h, w = size
    rng = np.random.default_rng([int(seed), 24001])
    yy, xx = grid((h, w))
    s = min(h, w)
    cy, cx = (h - 1) / 2 + rng.normal(0, 0.01 * s), (w - 1) / 2 + rng.normal(0, 0.01 * s)
    ang = np.deg2rad(rng.normal(0, 4))
    u = np.cos(ang) * (xx - cx) + np.sin(ang) * (yy - cy)
    v = -np.sin(ang) * (xx - cx) + np.cos(ang) * (yy - cy)
    a, b = rng.uniform(0.34, 0.38) * s, rng.uniform(0.41, 0.45) * s  # head wider front-back (rows)
    th = np.arctan2(v, u)
    k = np.arange(2, 6)[:, None, None]
    wob = 1 + (rng.normal(0, 0.012, (4, 1, 1)) * np.cos(k * th + rng.uniform(0, 6.3, (4, 1, 1)))).sum(0)
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) / wob
    fold = smooth_noise(rng, (h, w), 0.045 * s)  # gyri and sulci
    lab = np.zeros((h, w), np.uint8)  # index into the tissue list below
    names = ["background", "scalp", "skull", "csf", "gm", "wm", "oedema", "necrosis", "enhancing"]
    T = {n: i for i, n in enumerate(names)}
    t_scalp, t_skull = rng.uniform(0.05, 0.07), rng.uniform(0.05, 0.07)
    r_csf = 1 - t_scalp - t_skull
    r_gm = r_csf - rng.uniform(0.015, 0.025)
    r_wm = r_gm - 0.11 - 0.07 * fold  # folded grey/white boundary
    lab[rho < 1] = T["scalp"]
    lab[rho < 1 - t_scalp] = T["skull"]
    lab[rho < r_csf] = T["csf"]
    lab[rho < r_gm] = T["gm"]
    lab[(rho < r_gm) & (fold > 0.9) & (rho > r_wm + 0.01)] = T["csf"]  # sulci
    lab[rho < r_wm] = T["wm"]
    # Deep grey matter (basal ganglia/thalami) and the lateral ventricles (butterfly) at the centre.
    for sgn in (-1, 1):
        dg = np.hypot((u - sgn * 0.16 * a) / (0.11 * a), (v - 0.05 * b) / (0.2 * b))
        lab[dg < 1] = T["gm"]
        vw = rng.uniform(0.05, 0.08) * a
        vt = np.hypot((u - sgn * (0.09 * a + 0.25 * vw * v / b * 5)) / vw, (v + 0.05 * b) / (rng.uniform(0.28, 0.36) * b))
        lab[vt < 1] = T["csf"]
    brain = (rho < r_csf) & (lab != T["skull"]) & (lab != T["scalp"])
    labels = np.zeros((h, w), np.uint8)
    if tumour:
        for _ in range(50):  # centre in the hemisphere white/grey matter, away from the midline
            ty, tx = cy + rng.uniform(-0.5, 0.5) * b, cx + rng.choice((-1, 1)) * rng.uniform(0.2, 0.55) * a
            if lab[int(ty), int(tx)] in (T["wm"], T["gm"]):
                break
        rt = rng.uniform(0.06, 0.13) * s
        tn = smooth_noise(rng, (h, w), 0.08 * s)
        rt_map = np.hypot(yy - ty, xx - tx) / (rt * (1 + 0.18 * tn))
        oed = rt_map < rng.uniform(1.7, 2.3) * (1 + 0.15 * fold)
        oed &= brain & (lab != T["csf"])  # vasogenic oedema spreads in the parenchyma, not in CSF
        lab[oed] = T["oedema"]
        lab[rt_map < 1] = T["enhancing"]
        core = rng.uniform(0.45, 0.7) if rng.random() < 0.85 else 0.0  # most GBMs have a necrotic core
        lab[rt_map < core] = T["necrosis"]
        for n, v_ in LABELS.items():
            labels[lab == T[n]] = v_
    labels[~brain] = 0
    # Partial volume: fractional tissue maps (soft one-hot) -> signal is their weighted sum.
    frac = np.stack([ndi.gaussian_filter((lab == i).astype(np.float32), 0.6) for i in range(len(names))])
    bias_f = np.exp(bias * smooth_noise(rng, (h, w), 0.6 * s))
    images: dict[str, np.ndarray] = {}
    for seq in ("t1", "t2", "t1c", "flair"):
        vals = []
        for n in names:
            t1, t2, pd = TISSUES[n]
            if seq == "t1c" and n == "enhancing":
                t1 = 1.0 / (1.0 / t1 + GD_R1 * GD_CONC)
            vals.append(signal(seq, t1, t2, pd))
        vals = np.asarray(vals, np.float32)
        img = np.tensordot(vals, frac, axes=1) * bias_f * (1 + 0.03 * smooth_noise(rng, (h, w), 0.02 * s))
        ref = float(vals[[T["csf"], T["gm"], T["wm"], T["scalp"], T["oedema"], T["enhancing"]]].max())
        img = img / (1.15 * ref)
        sig = noise
        img = np.hypot(img + rng.normal(0, sig, (h, w)), rng.normal(0, sig, (h, w)))  # Rician magnitude
        if skull_strip:
            img = img * brain
        images[seq] = np.clip(img, 0, 1).astype(np.float32)
    tissues = {n: frac[i] for i, n in enumerate(names)}
    meta = {"seed": int(seed), "size": [h, w], "tumour": bool(tumour), "noise": noise, "bias": bias}
    return BrainSample(images, labels, brain, tissues, meta)
