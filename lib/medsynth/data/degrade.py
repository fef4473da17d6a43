"""MedGAN's degradations (02_medgan Sec. III): MR motion artefacts, low-count PET, PET/CT pairs.

* :func:`motion_kspace` - rigid head motion *during* a Cartesian acquisition: phase-encode lines
  acquired after each movement come from the moved head, so k-space is a patchwork of the k-spaces
  of several rigidly moved copies; the inverse FFT shows ghosting and blurring along the phase
  direction (the motion/motion-free pairs MedGAN corrects).
* :func:`low_count_poisson` - PET counts are Poisson; a low-dose scan has fewer counts per voxel,
  so the reconstructed activity is noisier (MedGAN's PET denoising).
* :func:`pet_like` / :func:`ct_like` - a registered PET-like (FDG uptake: grey matter > white
  matter, tumour rim hot, necrosis cold; blurred by the scanner PSF) and CT-like (Hounsfield units:
  bone bright, soft tissue nearly flat) image from the brain phantom's tissue maps, for the
  PET -> CT translation task.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medsynth.data.brain import BrainSample

__all__ = ["motion_kspace", "low_count_poisson", "pet_like", "ct_like", "medgan_set"]

# relative FDG uptake per tissue (typical SUV ratios, grey ~ 2.5-3x white matter)
PET_UPTAKE = {
    "background": 0.0,
    "scalp": 0.15,
    "skull": 0.05,
    "csf": 0.03,
    "gm": 1.0,
    "wm": 0.35,
    "oedema": 0.3,
    "necrosis": 0.08,
    "enhancing": 1.3,
}
# Hounsfield units per tissue
CT_HU = {
    "background": -1000.0,
    "scalp": -60.0,
    "skull": 1200.0,
    "csf": 5.0,
    "gm": 40.0,
    "wm": 28.0,
    "oedema": 18.0,
    "necrosis": 15.0,
    "enhancing": 45.0,
}


def motion_kspace(
    img: np.ndarray, rng: np.random.Generator, n_moves: int = 3, max_shift: float = 4.0, max_rot: float = 3.0
) -> np.ndarray:
    """Corrupt ``img`` (H,W) in [0,1] with rigid in-plane motion between phase-encode lines (rows).

    Lines are acquired top to bottom in time; at ``n_moves`` random times the head jumps to a new
    pose (shift up to ``max_shift`` px, rotation up to ``max_rot`` deg). The centre of k-space
    (contrast) comes from whichever pose was held mid-scan; edges from the others -> ghosts.
    """
    h, w = img.shape
    k = np.fft.fftshift(np.fft.fft2(img))
    times = np.sort(rng.uniform(0.1, 0.9, n_moves))
    bounds = (np.concatenate([times, [1.0]]) * h).astype(int)
    start = int(times[0] * h)
    for i in range(n_moves):
        shift = rng.uniform(-max_shift, max_shift, 2)
        moved = ndi.rotate(img, rng.uniform(-max_rot, max_rot), reshape=False, order=1, mode="constant")
        moved = ndi.shift(moved, shift, order=1, mode="constant")
        km = np.fft.fftshift(np.fft.fft2(moved))
        lo, hi = (start if i == 0 else bounds[i - 1]), bounds[i]
        k[lo:hi] = km[lo:hi]
        start = hi
    out = np.abs(np.fft.ifft2(np.fft.ifftshift(k)))
    return np.clip(out, 0, 1).astype(np.float32)


def low_count_poisson(activity: np.ndarray, counts: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-resample an activity image (max ~1) at ``counts`` expected counts at activity 1."""
    lam = np.clip(activity, 0, None) * counts
    return (rng.poisson(lam).astype(np.float32) / counts).clip(0, 1)


def _mix(b: BrainSample, table: dict[str, float]) -> np.ndarray:
    return sum(table[n] * f for n, f in b.tissues.items()).astype(np.float32)


def pet_like(b: BrainSample, psf_px: float = 2.5) -> np.ndarray:
    """Noise-free FDG-PET-like activity in [0,1] (blurred by a Gaussian PSF of ``psf_px`` sigma)."""
    act = ndi.gaussian_filter(_mix(b, PET_UPTAKE), psf_px)
    return (act / 1.35).clip(0, 1).astype(np.float32)


def ct_like(
    b: BrainSample,
    rng: np.random.Generator | None = None,
    window: tuple[float, float] = (-100.0, 1500.0),
    noise_hu: float = 8.0,
) -> np.ndarray:
    """CT-like image: tissue HU + Gaussian noise, displayed in ``window`` (bone window) -> [0,1]."""
    hu = _mix(b, CT_HU)
    if rng is not None and noise_hu > 0:
        hu = hu + rng.normal(0, noise_hu, hu.shape).astype(np.float32)
    lo, hi = window
    return ((hu - lo) / (hi - lo)).clip(0, 1).astype(np.float32)


def medgan_set(b: BrainSample, seed: int) -> dict[str, np.ndarray]:
    """The MedGAN modalities for one slice: ``t1_motion`` (-> t1), ``pet_low`` (-> pet), ``pet`` (-> ct)."""
    rng = np.random.default_rng([int(seed), 3303])
    pet_clean = pet_like(b)
    return {
        "t1_motion": motion_kspace(b.images["t1"], rng),
        "pet": ndi.gaussian_filter(low_count_poisson(pet_clean, 400.0, rng), 0.7),  # full dose
        "pet_low": low_count_poisson(pet_clean, 25.0, rng),  # ~1/16 dose
        "ct": ct_like(b, rng),
    }
