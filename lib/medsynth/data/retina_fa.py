"""Fluorescein angiogram (FA) of the retinal phantom, at any time through the sequence.

Time ``t`` is normalised to [0, 1] over a typical 10-minute study. The phases (clinical FA timing,
also the three groups Fundus2Video samples 4 frames from, 05_fundus2video Sec. 3.0.1):

* choroidal flush  t ~ 0.02-0.12: patchy background fluorescence appears first;
* arterial         t ~ 0.05-0.25: arteries fill from the disc outwards (path length / velocity);
* venous           t ~ 0.25-0.55: laminar flow (walls first) then full veins, filling from the
                                  periphery (small venules) towards the disc;
* late             t ~ 0.55-1.0 : vessels and background fade (recirculation), the disc margin
                                  stains, and leakage around lesions grows in area and brightness.

Lesions: microaneurysms hyperfluorescent dots from the arterial phase on; haemorrhages block the
fluorescence (dark); exudates are mildly hypofluorescent. The macula is darker (xanthophyll, RPE)
with an avascular fovea. The knowledge mask of Fundus2Video (Sec. 2.2, |F_last - F_first| > thr)
therefore lights up exactly the leakage and vessels, as in the paper's Fig. 2.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medsynth.data.fields import smooth_noise, smoothstep
from medsynth.data.lesions import Lesions
from medsynth.data.vessels import VesselMaps

__all__ = ["PHASES", "frame_times", "FARenderer", "LEAK_THRESHOLD"]

PHASES = ("arterial", "venous", "late")
ANGIO_TIME = 0.5  # the static "angio" of a pair: late venous phase
LEAK_THRESHOLD = 0.08  # added FA intensity above which a pixel counts as leakage


def frame_times(n_frames: int) -> tuple[np.ndarray, list[str]]:
    """Times of ``n_frames`` frames spread over the arterial, venous and late phases (equal thirds)."""
    if n_frames <= 0:
        return np.zeros(0, np.float32), []
    bounds = {"arterial": (0.1, 0.24), "venous": (0.28, 0.5), "late": (0.58, 1.0)}
    per = np.array_split(np.arange(n_frames), 3)
    times, phases = [], []
    for name, idx in zip(PHASES, per, strict=True):
        lo, hi = bounds[name]
        times += list(np.linspace(lo, hi, len(idx))) if len(idx) > 1 else [0.5 * (lo + hi)] * len(idx)
        phases += [name] * len(idx)
    return np.asarray(times, np.float32), phases


class FARenderer:
    """Static fields computed once per eye; :meth:`frame` composes the FA at time ``t``."""

    def __init__(
        self,
        rng: np.random.Generator,
        shape: tuple[int, int],
        fov_soft: np.ndarray,
        vignette: np.ndarray,
        macula: np.ndarray,
        disc_soft: np.ndarray,
        disc_ring: np.ndarray,
        arteries: VesselMaps,
        veins: VesselMaps,
        lesions: Lesions,
        radius: float,
    ) -> None:
        self.shape, self.R = shape, radius
        self.fov, self.vignette, self.macula = fov_soft, vignette, macula
        self.disc, self.ring = disc_soft, disc_ring
        self.art, self.vein, self.les = arteries, veins, lesions
        scale = radius / 360.0
        # Choroidal lobules fill unevenly first: a patchy pattern that fades as the flush completes.
        self.patch = smooth_noise(rng, shape, 22 * scale)
        self.texture = (
            0.07 * smooth_noise(rng, shape, 40 * scale)
            + 0.05 * smooth_noise(rng, shape, 5 * scale)
            + 0.04 * smooth_noise(rng, shape, 2 * scale)
        )
        self.gain = float(np.exp(rng.normal(0.0, 0.3)))  # cameras/operators vary a lot
        self.gamma = float(rng.uniform(0.9, 1.1))
        self.bg_level = float(rng.uniform(0.42, 0.52))
        self.vessel_level = float(rng.uniform(0.3, 0.42))
        # Filling times: arteries from the disc outwards; veins from the periphery back to the disc.
        self.t_art = 0.05 + 0.035 * arteries.path / radius
        smax = float(veins.path.max()) if veins.mask.any() else radius
        self.t_vein = 0.2 + 0.12 * np.clip(1.0 - veins.path / max(smax, 1.0), 0, 1) ** 0.5
        self.vcon = {k: 1.0 - np.exp(-m.radius / (1.6 * scale + 0.4)) for k, m in (("a", arteries), ("v", veins))}
        ly, lx = np.mgrid[0 : shape[0], 0 : shape[1]]
        self.grid = (ly.astype(np.float32), lx.astype(np.float32))
        self.noise_sigma = float(rng.uniform(0.02, 0.035))

    def leakage(self, t: float) -> np.ndarray:
        """Added FA intensity from leakage at time ``t``: grows in radius and brightness (monotone)."""
        out = np.zeros(self.shape, np.float32)
        g = float(smoothstep(0.2, 1.0, t))
        if g <= 0:
            return out
        yy, xx = self.grid
        for y, x, amp, smax in self.les.leak:
            sig = smax * (0.3 + 0.7 * g)
            m = int(3 * smax) + 2
            ya, yb = max(int(y) - m, 0), min(int(y) + m + 1, self.shape[0])
            xa, xb = max(int(x) - m, 0), min(int(x) + m + 1, self.shape[1])
            if ya >= yb or xa >= xb:
                continue
            d2 = (yy[ya:yb, xa:xb] - y) ** 2 + (xx[ya:yb, xa:xb] - x) ** 2
            out[ya:yb, xa:xb] += amp * g * np.exp(-d2 / (2 * sig * sig))
        return out * self.fov

    def frame(self, t: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """FA image (H,W) float32 in [0,1] and leakage mask (H,W) bool at time ``t``."""
        flush = float(smoothstep(0.02, 0.12, t)) * (1.0 - 0.2 * float(smoothstep(0.35, 1.0, t)))
        patchy = 1.0 + (0.35 * (1.0 - float(smoothstep(0.02, 0.15, t)))) * self.patch
        bg = self.bg_level * flush * patchy * (1.0 + self.texture) * (1.0 - 0.7 * self.macula)
        wash = 1.0 - 0.5 * float(smoothstep(0.35, 1.0, t))
        fill_a = 1.0 / (1.0 + np.exp(-(t - self.t_art) / 0.012))
        # Laminar venous flow: dye hugs the walls first (reld -> 1 near the wall).
        fill_v = 1.0 / (1.0 + np.exp(-(t - self.t_vein + 0.05 * self.vein.reld**2) / 0.015))
        # A vessel not yet reached by dye is a column of blood in front of the glowing choroid: dark.
        fa = (
            bg
            * (1.0 - 0.5 * self.art.profile * self.vcon["a"] * (1.0 - fill_a))
            * (1.0 - 0.5 * self.vein.profile * self.vcon["v"] * (1.0 - fill_v))
        )
        vl = self.vessel_level * wash
        fa = fa + np.maximum(
            vl * self.art.profile * self.vcon["a"] * fill_a, vl * 1.05 * self.vein.profile * self.vcon["v"] * fill_v
        )
        # Disc: capillaries fill with the arteries; the margin stains late.
        fa += self.disc * (0.12 * flush) + self.ring * 0.25 * float(smoothstep(0.3, 1.0, t))
        fa += 0.45 * self.les.ma * float(smoothstep(0.09, 0.16, t)) * (1.0 - 0.3 * float(smoothstep(0.5, 1.0, t)))
        leak = self.leakage(t)
        fa = fa + leak
        fa *= (1.0 - 0.85 * self.les.haem) * (1.0 - 0.2 * self.les.exud)  # blood blocks fluorescence
        fa = ndi.gaussian_filter(fa, 0.45 * max(self.R / 360.0, 0.5))
        fa = self.gain * fa * self.vignette
        fa = fa + self.noise_sigma * rng.standard_normal(self.shape, dtype=np.float32) * np.sqrt(np.clip(fa, 0.02, 1))
        fa = np.clip(fa, 0.0, 1.0) ** self.gamma * self.fov
        return fa.astype(np.float32), (leak > LEAK_THRESHOLD) & (self.fov > 0.5)
