"""MNI152 anatomy for the brain phantom (BrainWeb-style: tissue fractions from a real template).

One slice = an axial (optionally slightly oblique) cut through the ICBM 2009a GM/WM maps
(:mod:`.mni`), CSF = brain mask - GM - WM, posed by a seeded left/right flip, head-size scaling,
in-plane rotation and a smooth elastic deformation; a CSF/skull/scalp ring is grown outside the
intracranial outline. A tumour with the BraTS labels (1 necrotic core, 2 oedema, 4 enhancing rim)
is centred in white matter and pushes the surrounding tissue outwards (mass effect, below);
its vasogenic oedema takes over white matter only, so it follows the WM fingers and spares cortex,
as on FLAIR.

Mass effect: an expanding lesion in incompressible tissue displaces a point at distance r0 from
its centre to r with r^2 = r0^2 + a^2 (2-D area conservation, a = inserted radius), attenuated by
exp(-(r / 2.5 R)^2) so that the skull stays put. Sampling is backwards: each output pixel reads the
template at r0 = sqrt(r^2 - a^2) (monotone in r, so the warp never folds).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from medsynth.data import mni
from medsynth.data.fields import grid, smooth_noise

__all__ = ["NAMES", "FOV_MM", "mni_anatomy"]

NAMES = ["background", "scalp", "skull", "csf", "gm", "wm", "oedema", "necrosis", "enhancing"]
FOV_MM = 240.0  # BraTS slices: 240 x 240 at 1 mm
# non-brain head layers (mm): extra-axial CSF, skull (calvaria ~6-7 mm), scalp (~5-6 mm)
HEAD_MM = {"csf": 1.5, "skull": 6.5, "scalp": 5.5}


@lru_cache(maxsize=1)
def _row_centre() -> float:
    """Row of the brain's centroid in the slab (the slice is centred on it; columns on the midline)."""
    b = mni.template()["brain"]
    return float((b.sum((0, 2)) * np.arange(b.shape[1])).sum() / b.sum())


def _pose(rng: np.random.Generator, z: float | None, flip: bool | None, deform: float) -> dict:
    d = float(deform)
    return {
        "z": float(rng.uniform(*mni.SLAB)) if z is None else float(z),
        "flip": bool(rng.random() < 0.5) if flip is None else bool(flip),
        "scale": float(np.exp(rng.normal(0, 0.05 * d))),  # head size, ~ +-5 %
        "rot_deg": float(rng.normal(0, 5 * d)),  # in-plane head rotation
        "tilt": [float(t) for t in rng.normal(0, 0.05 * d, 2)],  # ~3 deg pitch/roll: oblique cut
        "elastic_mm": 2.5 * d,
    }


def _coords(pose: dict, src_rc: tuple[np.ndarray, np.ndarray], elastic: np.ndarray, size: tuple[int, int]):
    """Template voxel coordinates (3,H,W) for output positions ``src_rc`` (px, possibly displaced)."""
    h, w = size
    mm = FOV_MM / max(h, w) / pose["scale"]  # template mm per output pixel
    oy, ox = (src_rc[0] + 0.5 - h / 2) * mm, (src_rc[1] + 0.5 - w / 2) * mm
    a = np.deg2rad(pose["rot_deg"])
    dy = np.cos(a) * oy - np.sin(a) * ox + elastic[0]
    dx = np.sin(a) * oy + np.cos(a) * ox + elastic[1]
    if pose["flip"]:
        dx = -dx
    zz = pose["z"] + pose["tilt"][0] * dy + pose["tilt"][1] * dx
    return np.stack(np.broadcast_arrays(zz, _row_centre() + dy, mni.MIDLINE_X + dx))


def _soft(t: np.ndarray | float, d: np.ndarray) -> np.ndarray:
    """Coverage of a layer reaching ``t`` px beyond the outline, given distance ``d`` px outside it."""
    return np.clip(t - d + 0.5, 0.0, 1.0)


def _tumour(
    rng: np.random.Generator, wm: np.ndarray, brain: np.ndarray, side_mm: np.ndarray, mm: float, s: int
) -> dict:
    """Centre (in white matter, away from the brain edge and the midline), radius, shape of one glioma."""
    h, w = wm.shape
    r_px = rng.uniform(10.0, 24.0) / mm
    depth = ndi.distance_transform_edt(brain > 0.5)
    ok = (wm > 0.85) & (depth > 1.3 * r_px) & (np.abs(side_mm) > 1.1 * r_px * mm)
    if not ok.any():  # a high or low slice with little deep white matter: take the deepest WM
        ok = (wm > 0.5) & (depth >= np.percentile(depth[wm > 0.5], 75)) if (wm > 0.5).any() else brain > 0.5
    ys, xs = np.nonzero(ok)
    k = int(rng.integers(len(ys)))
    necrotic = rng.random() < 0.85  # most glioblastomas have a necrotic core
    return {
        "centre": [float(ys[k]), float(xs[k])],
        "radius_px": float(r_px),
        "push": float(rng.uniform(0.55, 0.85)),  # a / R: how much the lesion displaces
        "core": float(rng.uniform(0.45, 0.7)) if necrotic else 0.0,
        "oedema": float(rng.uniform(1.4, 2.1)),  # oedema reach, in tumour radii
        "shape": smooth_noise(rng, (h, w), 0.08 * s),
        "reach": smooth_noise(rng, (h, w), 0.06 * s),
    }


def _displaced(t: dict, size: tuple[int, int]) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Source positions under the mass effect (module docstring) and the distance map to the centre."""
    yy, xx = grid(size)
    cy, cx = t["centre"]
    ry, rx = yy - cy, xx - cx
    rho = np.hypot(ry, rx)
    a, big_r = t["push"] * t["radius_px"], t["radius_px"]
    r0 = np.sqrt(np.maximum(rho**2 - a**2, 0.0))
    shrink = 1 - (rho - r0) * np.exp(-((rho / (2.5 * big_r)) ** 2)) / np.maximum(rho, 1e-6)
    return (cy + ry * shrink, cx + rx * shrink), rho


def mni_anatomy(
    rng: np.random.Generator,
    rng_t: np.random.Generator,
    size: tuple[int, int],
    tumour: bool,
    z: float | None = None,
    flip: bool | None = None,
    deform: float = 1.0,
):
    """Tissue fractions (len(NAMES), H, W) summing to 1, BraTS labels, intracranial mask, meta.

    ``rng`` draws the anatomy (pose, deformation, head ring) and ``rng_t`` the tumour, so the same
    seed with ``tumour=False`` gives the same brain without the lesion and its mass effect.
    """
    h, w = size
    s = max(h, w)
    pose = _pose(rng, z, flip, deform)
    mm = FOV_MM / s / pose["scale"]
    sc = 45.0 / mm  # elastic deformation: smooth over ~45 mm
    elastic = pose["elastic_mm"] * np.stack([smooth_noise(rng, size, sc), smooth_noise(rng, size, sc)])
    thick = {k: v / mm * (1 + 0.15 * smooth_noise(rng, size, 60.0 / mm)) for k, v in HEAD_MM.items()}
    yy, xx = grid(size)
    c = _coords(pose, (yy, xx), elastic, size)
    # with a tumour this first look only places it (trilinear is enough); the rendered maps are cubic (mni.sample)
    sample = mni.sample(c, ("wm", "brain"), order=1) if tumour else mni.sample(c)
    meta = {"anatomy": "mni", **{k: v for k, v in pose.items() if k != "elastic_mm"}, "deform": float(deform)}
    frac = np.zeros((len(NAMES), h, w), np.float32)
    lab = np.zeros((h, w), np.uint8)
    tum = None
    if tumour:
        tum = _tumour(rng_t, sample["wm"], sample["brain"], c[2] - mni.MIDLINE_X, mm, s)
        src, rho = _displaced(tum, size)
        c = _coords(pose, src, elastic, size)
        sample = mni.sample(c)
        # the falx stops the oedema: it stays in the tumour's hemisphere (template x on the same side)
        cy, cx = (int(round(v)) for v in tum["centre"])
        same_side = np.clip(0.5 + (c[2] - mni.MIDLINE_X) * np.sign(c[2][cy, cx] - mni.MIDLINE_X), 0, 1)
        meta["tumour_centre"], meta["tumour_radius_px"] = tum["centre"], tum["radius_px"]
    br = sample["brain"]
    gm, wm = np.minimum(sample["gm"], br), np.minimum(sample["wm"], br)  # no tissue beyond the brain (spline ringing)
    # non-brain head: smooth inner table of the skull, then CSF, skull, scalp rings of seeded thickness
    inner = ndi.binary_fill_holes(ndi.gaussian_filter(br, 3.0 / mm) > 0.3)
    d = ndi.distance_transform_edt(~inner)
    ic = np.maximum(_soft(thick["csf"], d), br)
    sk = np.maximum(_soft(thick["csf"] + thick["skull"], d), ic)
    sc_ = np.maximum(_soft(thick["csf"] + thick["skull"] + thick["scalp"], d), sk)
    csf = np.clip(br - gm - wm, 0, None) + (ic - br)
    if tum is not None:
        r_map = rho / (tum["radius_px"] * (1 + 0.18 * tum["shape"]))  # 1 on the lobulated tumour border
        core = np.clip((1 - r_map) * tum["radius_px"] + 0.5, 0, 1) * ic  # 1-px anti-aliased edges
        nec = np.clip((tum["core"] - r_map) * tum["radius_px"] + 0.5, 0, 1) * core if tum["core"] else 0 * core
        reach = tum["oedema"] * (1 + 0.15 * tum["reach"])
        oed_w = np.clip((reach - r_map) / 0.15, 0, 1) * same_side  # oedema takes over WM within reach
        gm, csf = gm * (1 - core), csf * (1 - core)
        oed = wm * (1 - core) * oed_w
        wm = wm * (1 - core) * (1 - oed_w)
        frac[NAMES.index("oedema")], frac[NAMES.index("necrosis")] = oed, nec
        frac[NAMES.index("enhancing")] = core - nec
        lab[oed > 0.35] = 2
        lab[core > 0.5] = 4
        lab[nec > 0.5] = 1
    frac[NAMES.index("gm")], frac[NAMES.index("wm")], frac[NAMES.index("csf")] = gm, wm, csf
    frac[NAMES.index("skull")], frac[NAMES.index("scalp")] = sk - ic, sc_ - sk
    frac[NAMES.index("background")] = 1 - sc_
    frac /= frac.sum(0, keepdims=True)  # exact partition where a tumour edge meets a partial-volume skull
    brain = ic > 0.5
    lab[~brain] = 0
    return frac, lab, brain, meta
