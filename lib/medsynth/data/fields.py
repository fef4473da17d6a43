"""Small numpy helpers shared by the phantoms: smooth noise, radial maps, smooth steps, warps.

Everything here is vectorised over pixels; noise is drawn on a coarse grid and upsampled with a
cubic spline (``scipy.ndimage.zoom``), which is ~10x cheaper than Gaussian-filtering white noise
at full resolution and gives the same band-limited look.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

__all__ = ["smooth_noise", "grid", "smoothstep", "soft_disk", "paste_max", "elastic_warp_coords", "warp"]


def grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinate arrays (float32, broadcastable (H,1) and (1,W))."""
    h, w = shape
    return (np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :])


@lru_cache(maxsize=64)
def _interp_matrix(n: int, g: int, scale: float) -> np.ndarray:
    """(n, g) Gaussian interpolation weights from a coarse grid (node every ``scale`` px) to n px."""
    pos = (np.arange(n, dtype=np.float64) + 0.5) / scale + 0.5  # in grid units; node j sits at j
    d = pos[:, None] - np.arange(g)[None, :]
    a = np.exp(-0.5 * (d / 0.55) ** 2)
    return (a / a.sum(1, keepdims=True)).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Band-limited noise with features about ``scale`` pixels across, zero mean and unit std.

    Drawn on a coarse grid (one node per ``scale`` px) and upsampled by two small matrix products
    with Gaussian interpolation weights: ``Ay @ low @ Ax.T`` (separable; a few ms at 576x720,
    ~10x cheaper than a cubic ``ndimage.zoom``). Fine grain (< 6 px) blurs white noise instead.
    """
    h, w = shape
    scale = max(float(scale), 1.0)
    if scale < 6:  # fine grain: a small Gaussian blur of white noise is cheaper than big matrices
        out = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 0.5 * scale, truncate=3.0)
        out -= out.mean()
        return out / max(float(out.std()), 1e-12)
    gh, gw = int(np.ceil(h / scale)) + 2, int(np.ceil(w / scale)) + 2
    low = rng.standard_normal((gh, gw)).astype(np.float32)
    # einsum, not ``@``: multithreaded OpenBLAS on a busy 2-core machine made this 100x slower.
    ay, ax = _interp_matrix(h, gh, round(scale, 3)), _interp_matrix(w, gw, round(scale, 3))
    out = np.einsum("ik,jk->ij", np.einsum("ik,kl->il", ay, low), ax)
    out -= out.mean()
    sd = out.std()
    return out / sd if sd > 0 else out


def smoothstep(a: float, b: float, x: np.ndarray | float) -> np.ndarray | float:
    """Cubic Hermite step: 0 below ``a``, 1 above ``b`` (used for every temporal curve of the FA)."""
    t = np.clip((np.asarray(x, dtype=np.float32) - a) / max(b - a, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def soft_disk(d: np.ndarray, r: float | np.ndarray, edge: float = 1.0) -> np.ndarray:
    """Anti-aliased disk coverage from a distance map: 1 inside ``r``, linear ramp of ``edge`` px."""
    return np.clip((r - d) / edge + 0.5, 0.0, 1.0)


def paste_max(field: np.ndarray, y0: int, x0: int, patch: np.ndarray) -> None:
    """``field[y0:, x0:] = max(field, patch)`` with clipping at the borders (in place)."""
    h, w = field.shape
    ph, pw = patch.shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + ph, h), min(x0 + pw, w)
    if ya >= yb or xa >= xb:
        return
    sub = patch[ya - y0 : yb - y0, xa - x0 : xb - x0]
    np.maximum(field[ya:yb, xa:xb], sub, out=field[ya:yb, xa:xb])


def elastic_warp_coords(
    rng: np.random.Generator,
    shape: tuple[int, int],
    rotation_deg: float,
    shift: tuple[float, float],
    elastic_px: float,
    elastic_scale: float,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """Sampling coordinates (2,H,W) of a small rigid + smooth elastic misalignment.

    ``out[y, x] = img[coords[0, y, x], coords[1, y, x]]`` (see :func:`warp`). Rigid part: rotation
    about ``centre`` plus ``shift``; elastic part: smooth noise displacement with ``elastic_px``
    standard deviation (the eye-movement/blink misregistration of real CF/FA pairs,
    Fundus2Video Sec. 1 and 2.3).
    """
    h, w = shape
    cy, cx = centre if centre is not None else ((h - 1) / 2, (w - 1) / 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(rotation_deg)
    ca, sa = np.cos(a), np.sin(a)
    ry = cy + ca * (yy - cy) - sa * (xx - cx) + shift[0]
    rx = cx + sa * (yy - cy) + ca * (xx - cx) + shift[1]
    if elastic_px > 0:
        ry += elastic_px * smooth_noise(rng, shape, elastic_scale)
        rx += elastic_px * smooth_noise(rng, shape, elastic_scale)
    return np.stack([ry, rx]).astype(np.float32)


def warp(img: np.ndarray, coords: np.ndarray, order: int = 1) -> np.ndarray:
    """Resample a 2-D image (or a stack (T,H,W)) at ``coords`` from :func:`elastic_warp_coords`."""
    if img.ndim == 3:
        return np.stack([warp(f, coords, order) for f in img])
    out = ndi.map_coordinates(img, coords, order=order, mode="constant", cval=0.0, prefilter=False)
    return out.astype(img.dtype, copy=False)
