"""Diabetic-retinopathy lesions for the retinal phantom, and the leakage sources they imply.

Lesion types and how they look (clinical FA/CF reading, as used by Fundus2Angio's abnormal pairs,
01_fundus2angio Sec. 4, and by Fundus2Video's knowledge mask, 05_fundus2video Sec. 2.2):

* microaneurysms: small red dots on the photograph, pin-point *hyper*fluorescent on the FA;
* haemorrhages (dot/blot, flame-shaped near the disc): dark red on the photograph and dark on the
  FA, because blood *blocks* the fluorescence beneath it;
* hard exudates: yellow flecks on the photograph, often in a circinate ring around a leaking
  centre; barely visible on the FA;
* leakage: dye escaping from leaking microaneurysms / the ring centres / new vessels: a blob that
  grows and brightens through the late phase (``retina_fa``).

Counts grow with ``severity`` in [0, 1]; severity 0 gives a normal eye with no lesion. Rendering
loops over lesions (tens), each vectorised on its bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from medsynth.data.fields import paste_max, soft_disk

__all__ = ["Lesions", "make_lesions"]


@dataclass
class Lesions:
    """Soft lesion densities (H,W) float32 in [0,1], their masks, and leakage sources."""

    ma: np.ndarray
    haem: np.ndarray
    exud: np.ndarray
    # leakage sources, one row each: y, x, strength (peak added FA intensity), sigma_max (px)
    leak: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    def masks(self) -> dict[str, np.ndarray]:
        m = {"microaneurysms": self.ma > 0.5, "haemorrhages": self.haem > 0.5, "exudates": self.exud > 0.5}
        m["lesions"] = m["microaneurysms"] | m["haemorrhages"] | m["exudates"]
        return m


def _blob(rng: np.random.Generator, a: float, b: float, angle: float, wobble: float) -> np.ndarray:
    """Irregular ellipse patch (soft edge): radius modulated by low angular harmonics."""
    m = int(np.ceil(max(a, b) * (1 + 2 * wobble))) + 2
    yy, xx = np.mgrid[-m : m + 1, -m : m + 1].astype(np.float32)
    ca, sa = np.cos(angle), np.sin(angle)
    u, v = ca * xx + sa * yy, -sa * xx + ca * yy
    phi = np.arctan2(v / b, u / a)
    rho = np.hypot(u / a, v / b)  # 1 on the ellipse
    k = np.arange(2, 6)[:, None, None]
    c = rng.normal(0, wobble / np.sqrt(4), (4, 1, 1))
    p = rng.uniform(0, 2 * np.pi, (4, 1, 1))
    edge = 1.0 + (c * np.cos(k * phi + p)).sum(0)
    return soft_disk(rho * min(a, b), edge * min(a, b), edge=1.2).astype(np.float32)


def _poisson(rng: np.random.Generator, lam: float) -> int:
    return int(rng.poisson(max(lam, 0.0)))


def make_lesions(
    rng: np.random.Generator,
    shape: tuple[int, int],
    radius: float,
    fovea: tuple[float, float],
    disc: tuple[float, float],
    disc_radius: float,
    fov: np.ndarray,
    vessels: np.ndarray,
    severity: float,
) -> Lesions:
    """Place lesions in the posterior pole (canonical orientation), near vessels for microaneurysms."""
    R = radius
    ma, haem, exud = (np.zeros(shape, np.float32) for _ in range(3))
    leak: list[tuple[float, float, float, float]] = []
    if severity <= 0:
        return Lesions(ma, haem, exud, np.zeros((0, 4), np.float32))
    sev = float(np.clip(severity, 0.0, 1.0))
    h, w = shape

    # Candidate sites: posterior pole annulus around the fovea, inside the FOV, off the disc.
    def sites(n: int, rmin: float, rmax: float) -> np.ndarray:
        n_try = 8 * n + 16
        rho = np.sqrt(rng.uniform(rmin**2, rmax**2, n_try)) * R
        th = rng.uniform(0, 2 * np.pi, n_try)
        yx = np.stack([fovea[0] + rho * np.sin(th), fovea[1] + rho * np.cos(th)], 1)
        ok = (yx[:, 0] >= 2) & (yx[:, 0] < h - 2) & (yx[:, 1] >= 2) & (yx[:, 1] < w - 2)
        yx = yx[ok]
        ok = fov[yx[:, 0].astype(int), yx[:, 1].astype(int)]
        ok &= np.hypot(yx[:, 0] - disc[0], yx[:, 1] - disc[1]) > 1.6 * disc_radius
        return yx[ok][:n]

    # Microaneurysms: outpouchings of capillaries, so pull them towards the nearest vessel.
    dvess, (iy, ix) = ndi.distance_transform_edt(~vessels, return_indices=True)
    n_ma = _poisson(rng, 45 * sev**1.2) + 1
    for y, x in sites(n_ma, 0.12, 0.75):
        yi, xi = int(y), int(x)
        if dvess[yi, xi] < 0.06 * R:  # sit next to the vessel wall, not on it
            ty, tx = iy[yi, xi], ix[yi, xi]
            d = max(float(dvess[yi, xi]), 1e-3)
            y, x = ty + (y - ty) * (2.5 + 0.004 * R) / d, tx + (x - tx) * (2.5 + 0.004 * R) / d
        r = rng.uniform(0.0045, 0.010) * R
        m = int(np.ceil(r)) + 2
        yy, xx = np.mgrid[-m : m + 1, -m : m + 1].astype(np.float32)
        fy, fx = y - np.floor(y), x - np.floor(x)
        paste_max(ma, int(y) - m, int(x) - m, soft_disk(np.hypot(yy - fy, xx - fx), max(r, 0.8)))
        if rng.random() < 0.35 * sev:
            leak.append((y, x, rng.uniform(0.25, 0.45), rng.uniform(0.02, 0.035) * R))
    # Haemorrhages: blots; flame-shaped ones near the disc are stretched along the nerve fibres.
    for y, x in sites(_poisson(rng, 10 * sev**1.5), 0.12, 0.9):
        a = rng.uniform(0.012, 0.04) * R
        ang = np.arctan2(y - disc[0], x - disc[1])
        flame = rng.random() < 0.4
        b = a / rng.uniform(2.0, 3.0) if flame else a * rng.uniform(0.6, 1.0)
        p = _blob(rng, a, b, ang if flame else rng.uniform(0, np.pi), 0.25)
        m = p.shape[0] // 2
        paste_max(haem, int(y) - m, int(x) - m, p)
    # Hard exudates in circinate rings around a leaking centre (microaneurysm cluster).
    n_ring = _poisson(rng, 3 * sev**1.5) + (1 if sev >= 0.3 else 0)
    for cy, cx in sites(n_ring, 0.15, 0.55):
        ring = rng.uniform(0.035, 0.09) * R
        for _ in range(_poisson(rng, 14) + 4):
            th = rng.uniform(0, 2 * np.pi)
            rr = ring * rng.normal(1.0, 0.15)
            y, x = cy + rr * np.sin(th), cx + rr * np.cos(th)
            a = rng.uniform(0.003, 0.011) * R
            p = _blob(rng, max(a, 0.8), max(a * rng.uniform(0.5, 1.0), 0.8), rng.uniform(0, np.pi), 0.3)
            m = p.shape[0] // 2
            paste_max(exud, int(y) - m, int(x) - m, p)
        leak.append((cy, cx, rng.uniform(0.45, 0.7), 0.8 * ring))
    # Proliferative disease: new vessels leak profusely (disc or along the arcades).
    if sev > 0.7 and rng.random() < sev:
        th = rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 1.3)
        rho = rng.uniform(0.0, 2.5) * disc_radius
        leak.append(
            (disc[0] + rho * np.sin(th), disc[1] + rho * np.cos(th), rng.uniform(0.6, 0.9), rng.uniform(0.05, 0.09) * R)
        )
    for f in (ma, haem, exud):
        f *= fov
    return Lesions(ma, haem, exud, np.asarray(leak, np.float32).reshape(-1, 4))
