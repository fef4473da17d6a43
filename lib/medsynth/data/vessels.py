"""Retinal vessel tree: growth from the optic disc, and vectorised rasterisation.

Anatomy modelled (what the chapters depend on): four arterial and four venous trunks leave the
disc (superior/inferior temporal arcades curving around the macula, superior/inferior nasal), plus
small papillomacular branches; every segment branches repeatedly with Murray's law
(r_parent^3 = r_child^3 + r_rest^3), tapers, wanders (tortuosity) and stops at the field-of-view
edge or at the foveal avascular zone, so small vessels converge radially on a vessel-free fovea.

Growth loops over *segments* (a few hundred), each built as a whole numpy polyline; pixels are never
visited in Python. Rasterisation writes all centre-line samples at once and takes one Euclidean
distance transform per (vessel kind, calibre bin) (``scipy.ndimage.distance_transform_edt`` with
indices), which gives for every pixel its distance to the nearest centre line and that centre
line's radius and path length from the disc (used for the FA filling order).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import ndimage as ndi

__all__ = ["VesselTree", "VesselMaps", "grow_tree", "rasterise"]

ARTERY, VEIN = 0, 1


@dataclass
class VesselTree:
    """Centre-line samples of the whole tree (canonical orientation: disc left, fovea right)."""

    y: np.ndarray  # (N,) float32 row
    x: np.ndarray  # (N,) float32 column
    r: np.ndarray  # (N,) float32 radius in pixels
    s: np.ndarray  # (N,) float32 path length from the disc, pixels
    kind: np.ndarray  # (N,) uint8, 0 artery, 1 vein
    n_segments: int


@dataclass
class VesselMaps:
    """Per-pixel vessel description for one kind (artery or vein)."""

    mask: np.ndarray  # bool, inside a vessel wall
    profile: np.ndarray  # float32 [0,1]: anti-aliased chord length through the (cylindrical) vessel / diameter
    radius: np.ndarray  # float32 radius of the vessel covering the pixel (0 outside)
    path: np.ndarray  # float32 path length from the disc of the nearest centre line
    reld: np.ndarray  # float32 distance to the centre line / radius, in [0,1] inside (laminar flow)


def _segment(
    rng: np.random.Generator,
    y0: float,
    x0: float,
    h0: float,
    length: float,
    turn: float,
    turn_len: float,
    tort: float,
    knot: float,
    ds: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One polyline: heading = h0 + turn*(1-exp(-s/turn_len)) + smooth wiggle (tortuosity)."""
    n = max(int(length / ds), 2)
    s = np.arange(n, dtype=np.float32) * ds
    nk = int(length / knot) + 3
    knots = rng.standard_normal(nk).astype(np.float32) * tort
    knots[0] = 0.0  # leave the branch point in the intended direction
    wiggle = np.interp(s / knot, np.arange(nk), knots)
    drift = np.cumsum(rng.standard_normal(n).astype(np.float32)) * (0.15 * tort * np.sqrt(ds / knot))
    head = h0 + turn * (1.0 - np.exp(-s / turn_len)) + wiggle + drift
    y = y0 + np.concatenate([[0.0], np.cumsum(ds * np.sin(head[:-1]))])
    x = x0 + np.concatenate([[0.0], np.cumsum(ds * np.cos(head[:-1]))])
    return y.astype(np.float32), x.astype(np.float32), head


def grow_tree(
    rng: np.random.Generator,
    centre: tuple[float, float],
    radius: float,
    disc: tuple[float, float],
    disc_radius: float,
    fovea: tuple[float, float],
    density: float = 1.0,
    tortuosity: float = 1.0,
    max_segments: int = 700,
) -> VesselTree:
    """Grow arteries and veins from the disc (canonical orientation: fovea to the right of the disc).

    ``density`` scales the branching rate (vessel pixel fraction), ``tortuosity`` the wiggle
    amplitude. Calibres are relative to the FOV radius ``radius`` so any image size looks alike.
    """
    R = radius
    ds = 0.7  # < 1 px so rounded samples form a connected 8-neighbour skeleton
    r_min = max(0.45, 0.002 * R)
    deg = np.pi / 180
    # (heading, total turn, radius factor, length factor) of the trunks, canonical frame (y down).
    trunks = [
        (-78, 70, 1.0, 1.9),
        (78, -70, 1.0, 1.9),
        (-135, -25, 0.8, 0.7),
        (135, 25, 0.8, 0.7),
        (-18, -10, 0.45, 0.7),
        (18, 10, 0.45, 0.7),
        (178, 0, 0.55, 0.4),
    ]
    stack: list[tuple] = []
    for kind, r0 in ((ARTERY, 0.0115 * R), (VEIN, 0.0155 * R)):
        for h, turn, rf, lf in trunks:
            jitter = rng.uniform(4, 12) * (1 if kind == VEIN else -1) + rng.normal(0, 5)
            oy, ox = rng.normal(0, 0.15 * disc_radius, 2)
            stack.append(
                (
                    kind,
                    disc[0] + oy,
                    disc[1] + ox,
                    (h + jitter) * deg,
                    turn * rng.uniform(0.8, 1.2) * deg,
                    r0 * rf * rng.uniform(0.9, 1.1),
                    lf * R * rng.uniform(0.85, 1.15),
                    0.0,
                    0,
                    (0.22 if abs(turn) > 45 else 0.4) * R * rng.uniform(0.85, 1.15),
                )
            )
    ys, xs, rs, ss, ks = [], [], [], [], []
    n_seg = 0
    while stack and n_seg < max_segments:
        kind, y0, x0, h0, turn, r0, length, s0, depth, turn_len = stack.pop()
        n_seg += 1
        y, x, head = _segment(rng, y0, x0, h0, length, turn, turn_len, 0.18 * tortuosity, 0.05 * R, ds)
        dc = np.hypot(y - centre[0], x - centre[1])
        df = np.hypot(y - fovea[0], x - fovea[1])
        stop = (dc > R) | (df < 0.11 * R + 6.0 * r0)
        stop[: max(2, int(disc_radius / ds) if depth == 0 else 2)] = False  # trunks start inside the disc
        n = int(np.argmax(stop)) if stop.any() else len(y)
        if n < 3:
            continue
        y, x, head = y[:n], x[:n], head[:n]
        s = np.arange(n, dtype=np.float32) * ds
        # Branch points: exponential gaps, proportional to calibre (thick vessels run long between
        # branchings, thin ones branch often), so the tree spreads over the whole field.
        gap = max(0.04 * R, 13.0 * r0) / density
        cuts = np.cumsum(rng.exponential(gap, size=int(s[-1] / gap * 3) + 3))
        first = 1.3 * disc_radius if depth == 0 else 0.4 * gap
        cuts = cuts[(cuts > first) & (cuts < s[-1] - 3 * ds)]
        # Radius along the segment: slow taper times Murray reductions at each branch point.
        r = r0 * (1.0 - 0.15 * s / max(s[-1], 1.0))
        for c in cuts:
            i = int(c / ds)
            rp = float(r[i])
            alpha = rng.uniform(0.4, 0.8)
            rc = alpha * rp
            r[i:] *= (1.0 - alpha**3) ** (1.0 / 3.0)
            if rc >= r_min:
                ang = rng.uniform(35, 75) * deg
                # Either side, but never turning back towards the disc (trees radiate from it).
                out = np.arctan2(y[i] - disc[0], x[i] - disc[1])
                a = float(head[i]) + (ang if rng.random() < 0.5 else -ang)
                if np.cos(a - out) < -0.1:
                    a = 2 * float(head[i]) - a
                child_len = rng.uniform(0.6, 1.0) * (0.3 * R + 90.0 * rc)
                stack.append(
                    (
                        kind,
                        float(y[i]),
                        float(x[i]),
                        a,
                        rng.normal(0, 15) * deg,
                        rc,
                        child_len,
                        s0 + c,
                        depth + 1,
                        0.3 * R,
                    )
                )
        keep = r >= r_min
        if not keep.all():
            k = int(np.argmin(keep))
            y, x, r, s = y[:k], x[:k], r[:k], s[:k]
        ys.append(y)
        xs.append(x)
        rs.append(r.astype(np.float32))
        ss.append(s + s0)
        ks.append(np.full(len(y), kind, np.uint8))
    cat = (lambda a, dt: np.concatenate(a).astype(dt)) if ys else (lambda a, dt: np.zeros(0, dt))
    return VesselTree(
        cat(ys, np.float32), cat(xs, np.float32), cat(rs, np.float32), cat(ss, np.float32), cat(ks, np.uint8), n_seg
    )


def rasterise(tree: VesselTree, shape: tuple[int, int], kind: int, bins: tuple[float, ...] = (1.6,)) -> VesselMaps:
    """Per-pixel maps of one vessel kind: one distance transform per calibre bin.

    Separate bins keep a thin vessel from "stealing" the pixels at the edge of a thick one where
    they meet (the nearest centre line would otherwise be the thin one).
    """
    h, w = shape
    sel = tree.kind == kind
    yi = np.rint(tree.y).astype(np.int64)
    xi = np.rint(tree.x).astype(np.int64)
    sel &= (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)  # the FOV circle may overhang the frame
    yi, xi, r, s = yi[sel], xi[sel], tree.r[sel], tree.s[sel]
    edges = (0.0, *bins, np.inf)
    best = np.zeros(shape, np.float32)
    out = VesselMaps(
        np.zeros(shape, bool),
        best,
        np.zeros(shape, np.float32),
        np.zeros(shape, np.float32),
        np.ones(shape, np.float32),
    )
    for lo, hi in pairwise(edges):
        b = (r >= lo) & (r < hi)
        if not b.any():
            continue
        order = np.argsort(r[b], kind="stable")  # thicker written last: they win shared pixels
        rb = np.zeros(shape, np.float32)
        sb = np.zeros(shape, np.float32)
        rb[yi[b][order], xi[b][order]] = r[b][order]
        sb[yi[b][order], xi[b][order]] = s[b][order]
        dist, (iy, ix) = ndi.distance_transform_edt(rb == 0, return_indices=True)
        rad = rb[iy, ix]
        reach = rad + 0.5
        rel = np.clip(dist / reach, 0.0, 1.0)
        cover = np.clip(reach - dist, 0.0, 1.0)  # anti-aliased edge
        prof = (cover * np.sqrt(1.0 - rel * rel)).astype(np.float32)
        win = prof > best
        best[win] = prof[win]
        out.radius[win] = rad[win]
        out.path[win] = sb[iy, ix][win]
        out.reld[win] = rel[win]
        out.mask |= dist <= np.maximum(rad, 0.5)
    return out
