"""The ellipse brain phantom (the course's first one): a head of ellipses, smooth-noise folds.

Fast, needs no template, so unit tests that only need *a* registered multi-contrast slice use it
(``make_brain(..., anatomy="ellipse")``). No gyri or sulci beyond one noise fold, a round tumour;
its distance to real MNI T1 slices is measured next to the MNI phantom's in :mod:`.realism_brain`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medsynth.data.fields import grid, smooth_noise

__all__ = ["ellipse_anatomy"]

LABELS = {"necrosis": 1, "oedema": 2, "enhancing": 4}


def ellipse_anatomy(rng: np.random.Generator, size: tuple[int, int], tumour: bool, names: list[str]):
    """Tissue fractions (len(names), H, W), BraTS labels, brain mask; draws from ``rng`` in the old order."""
    h, w = size
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
    lab = np.zeros((h, w), np.uint8)  # index into ``names``
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
        vt = np.hypot(
            (u - sgn * (0.09 * a + 0.25 * vw * v / b * 5)) / vw, (v + 0.05 * b) / (rng.uniform(0.28, 0.36) * b)
        )
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
    return frac, labels, brain
