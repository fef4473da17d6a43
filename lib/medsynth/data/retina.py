"""Retinal phantom: colour fundus photograph + registered fluorescein angiogram (+ sequence, masks).

The stand-in for the Isfahan MISP fundus/angiography pairs of Fundus2Angio (01_fundus2angio
Sec. 4: 720x576 RGB photographs with greyscale angiograms, 30 normal + 30 abnormal) and for the
CF -> FFA-video data of Fundus2Video (05_fundus2video Sec. 3.0.1, arterial/venous/late frames).

Anatomy (all sizes relative to the field-of-view radius R, so every image size looks alike):
circular FOV (clipped top and bottom at 576x720, like the Isfahan camera), optic disc 0.12R in
radius about 0.75R nasal to the fovea and slightly above it, macula darker with an avascular
fovea, a branching vessel tree (:mod:`.vessels`), lesions scaled by ``severity`` (:mod:`.lesions`),
vignetting and choroidal texture. Left/right eyes are mirror images (random per seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from medsynth.data.fields import elastic_warp_coords, grid, smooth_noise, soft_disk, warp
from medsynth.data.lesions import Lesions, make_lesions
from medsynth.data.retina_fa import ANGIO_TIME, FARenderer, frame_times
from medsynth.data.vessels import ARTERY, VEIN, VesselMaps, grow_tree, rasterise

__all__ = ["RetinaSample", "make_retina", "MASK_NAMES"]

MASK_NAMES = (
    "vessels",
    "arteries",
    "veins",
    "fov",
    "disc",
    "fovea",
    "microaneurysms",
    "haemorrhages",
    "exudates",
    "lesions",
    "leakage",
)


@dataclass
class RetinaSample:
    """One phantom eye. Images float32 in [0,1]; masks bool (H,W), registered to ``fundus``.

    ``angio`` is the late-venous FA (t = 0.5). With ``misalign > 0`` the angiogram and frames are
    resampled at ``warp`` (2,H,W) coordinates (``angio = fields.warp(registered_angio, warp)``); the
    masks stay registered to the photograph, as annotations on real pairs would be.
    """

    fundus: np.ndarray  # (H,W,3)
    angio: np.ndarray  # (H,W)
    masks: dict[str, np.ndarray]
    frames: np.ndarray | None = None  # (T,H,W)
    leakage_frames: np.ndarray | None = None  # (T,H,W) bool
    frame_times: np.ndarray | None = None  # (T,) normalised time in [0,1]
    phases: list[str] | None = None  # "arterial" | "venous" | "late" per frame
    warp: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


def _fundus(
    rng: np.random.Generator,
    shape: tuple[int, int],
    R: float,
    fov: np.ndarray,
    vignette: np.ndarray,
    macula: np.ndarray,
    disc: np.ndarray,
    cup: np.ndarray,
    art: VesselMaps,
    vein: VesselMaps,
    les: Lesions,
) -> np.ndarray:
    """Colour photograph: orange-red choroid, yellow disc, vessels absorbing by Beer-Lambert."""
    scale = R / 360.0
    pig = rng.uniform(-1, 1)  # fundus pigmentation: darker/redder vs lighter/oranger
    base = np.array([0.87 + 0.10 * pig, 0.50 + 0.09 * pig, 0.30 + 0.06 * pig], np.float32)
    tex = 0.035 * smooth_noise(rng, shape, 60 * scale) + 0.012 * smooth_noise(rng, shape, 6 * scale)
    grad = 0.14 * smooth_noise(rng, shape, 1.2 * R)  # uneven illumination across the field
    light = (1.0 + grad) * vignette
    img = base[None, None, :] * (1.0 + tex[..., None] * np.array([1.0, 1.4, 1.6], np.float32)) * light[..., None]
    img *= 1.0 - macula[..., None] * np.array([0.22, 0.45, 0.45], np.float32) * rng.uniform(0.7, 1.2)
    disc_col = np.array([0.97, 0.74, 0.48], np.float32) * rng.uniform(0.9, 1.05)
    cup_col = np.array([1.0, 0.93, 0.78], np.float32)
    dl = disc[..., None] * 0.7
    img = img * (1 - dl) + dl * disc_col * (0.85 + 0.3 * light[..., None])
    img = img * (1 - cup[..., None] * 0.8) + cup[..., None] * 0.8 * cup_col
    ca = 1.0 - np.exp(-art.radius / (1.8 * scale + 0.4))  # thin vessels: less optical density
    cv = 1.0 - np.exp(-vein.radius / (1.8 * scale + 0.4))
    od = (
        np.array([0.2, 0.55, 0.5], np.float32) * (art.profile * ca)[..., None]
        + np.array([0.34, 0.85, 0.72], np.float32) * (vein.profile * cv)[..., None]
    )
    od += np.array([0.45, 1.6, 1.3], np.float32) * np.maximum(les.haem, les.ma)[..., None]  # red: absorbs G, B
    img *= np.exp(-od)
    # Central light reflex on larger arteries.
    reflex = np.exp(-((art.reld / 0.22) ** 2)) * (art.radius > 2.2 * scale) * art.profile
    img += 0.10 * reflex[..., None]
    ex = les.exud[..., None]
    img = img * (1 - ex) + ex * np.array([0.98, 0.88, 0.42], np.float32) * light[..., None]
    img = ndi.gaussian_filter(img, (0.6 * max(scale, 0.5), 0.6 * max(scale, 0.5), 0))  # optics
    img += 0.008 * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * fov[..., None]).astype(np.float32)


def make_retina(
    seed: int,
    size: tuple[int, int] = (576, 720),
    severity: float = 0.5,
    n_frames: int = 0,
    misalign: float = 0.0,
    density: float = 1.6,
    fa_draw: int | None = None,
) -> RetinaSample:
    """Generate one phantom eye from ``seed``.

    Args:
        seed: every random choice derives from it (independent streams, so ``n_frames`` and
            ``misalign`` do not change the photograph or the static angiogram).
        size: (H, W); the default 576x720 is the Isfahan image size (Fundus2Angio Sec. 4).
        severity: diabetic-retinopathy severity in [0,1]; 0 = normal eye, no lesions or leakage.
        n_frames: length of the FA sequence (0: none); frames spread over arterial/venous/late.
        misalign: 0 = registered; 1 = up to ~3 deg rotation, ~2% shift and a smooth elastic warp of
            the FA w.r.t. the photograph, like real pairs (Fundus2Angio Sec. 4 kept 17 aligned pairs).
        density: vessel branching density (1 tunes the vessel fraction to DRIVE's ~12% in the FOV).
        fa_draw: None = the eye as always. An int redraws only what the photograph cannot show -- the FA
            renderer's own randomness (camera gain, gamma, background and vessel levels, choroidal texture),
            the frame noise and the misalignment -- from a stream of its own, keeping anatomy, lesions and the
            photograph: another angiography session of the same eye. Chapter 05's diagnostics average such
            draws to estimate the best any predictor from the photo can do (E[video | photo]).
    """
    h, w = size
    ss = np.random.SeedSequence([int(seed), 7041])
    r_anat, r_les, r_cf, r_fa, r_noise, r_mis, r_seq = (np.random.default_rng(s) for s in ss.spawn(7))
    if fa_draw is not None:  # the photo-independent streams from their own seed (see ``fa_draw``)
        alt = np.random.SeedSequence([int(seed), 7041, 1, int(fa_draw)]).spawn(4)
        r_fa, r_noise, r_mis, r_seq = (np.random.default_rng(s) for s in alt)
    R = 0.985 * min(0.5 * w, 0.62 * h)
    cy, cx = (h - 1) / 2 + r_anat.normal(0, 0.01 * R), (w - 1) / 2 + r_anat.normal(0, 0.01 * R)
    fovea = (cy + r_anat.normal(0.02, 0.03) * R, cx + r_anat.normal(0.03, 0.03) * R)
    dd = r_anat.uniform(0.7, 0.8) * R
    disc = (fovea[0] - r_anat.uniform(0.03, 0.1) * R, fovea[1] - dd)
    rd = r_anat.uniform(0.105, 0.13) * R
    yy, xx = grid((h, w))
    rc = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    fov_soft = np.clip(R - rc + 0.5, 0, 1).astype(np.float32)
    vignette = (1.0 - r_anat.uniform(0.3, 0.45) * (rc / R) ** 2.5).clip(0.2, 1).astype(np.float32)
    df = np.sqrt((yy - fovea[0]) ** 2 + (xx - fovea[1]) ** 2)
    macula = np.exp(-((df / (0.26 * R)) ** 2)).astype(np.float32)
    ddisc = np.sqrt(((yy - disc[0]) / 1.08) ** 2 + (xx - disc[1]) ** 2)  # disc slightly taller than wide
    disc_soft = soft_disk(ddisc, rd, 0.15 * rd).astype(np.float32)
    cup = soft_disk(
        np.sqrt(((yy - disc[0]) / 1.1) ** 2 + (xx - disc[1] - 0.15 * rd) ** 2), rd * r_anat.uniform(0.3, 0.5), 3.0
    ).astype(np.float32)
    ring = np.exp(-(((ddisc - rd) / (0.12 * rd)) ** 2)).astype(np.float32)

    tree = grow_tree(r_anat, (cy, cx), R, disc, rd, fovea, density=density, tortuosity=1.0 + 0.3 * severity)
    art, vein = rasterise(tree, (h, w), ARTERY), rasterise(tree, (h, w), VEIN)
    fov = fov_soft > 0.5
    art.mask &= fov
    vein.mask &= fov
    vessels = art.mask | vein.mask
    les = make_lesions(r_les, (h, w), R, fovea, disc, rd, fov, vessels, severity)
    fundus = _fundus(r_cf, (h, w), R, fov_soft, vignette, macula, disc_soft, cup, art, vein, les)
    fa = FARenderer(r_fa, (h, w), fov_soft, vignette, macula, disc_soft, ring, art, vein, les, R)
    angio, leak_mask = fa.frame(ANGIO_TIME, r_noise)
    masks = {
        "vessels": vessels,
        "arteries": art.mask,
        "veins": vein.mask,
        "fov": fov,
        "disc": disc_soft > 0.5,
        "fovea": df <= rd,
        **les.masks(),
        "leakage": leak_mask,
    }
    sample = RetinaSample(fundus, angio, masks)
    if n_frames > 0:
        times, phases = frame_times(n_frames)
        out = [fa.frame(float(t), r_seq) for t in times]
        sample.frames = np.stack([o[0] for o in out])
        sample.leakage_frames = np.stack([o[1] for o in out])
        sample.frame_times, sample.phases = times, phases
    if misalign > 0:
        m = float(misalign)
        sample.warp = elastic_warp_coords(
            r_mis, (h, w), r_mis.normal(0, 1.5 * m), tuple(r_mis.normal(0, 0.01 * m * R, 2)), 0.006 * m * R, 0.5 * R
        )
        sample.angio = np.clip(warp(sample.angio, sample.warp), 0, 1)
        if sample.frames is not None:
            sample.frames = np.clip(warp(sample.frames, sample.warp), 0, 1)
    if r_anat.random() < 0.5:  # the other eye: mirror every image, mask and the warp field
        sample.fundus = np.ascontiguousarray(sample.fundus[:, ::-1])
        sample.angio = np.ascontiguousarray(sample.angio[:, ::-1])
        sample.masks = {k: np.ascontiguousarray(v[:, ::-1]) for k, v in sample.masks.items()}
        if sample.frames is not None:
            sample.frames = np.ascontiguousarray(sample.frames[..., ::-1])
            sample.leakage_frames = np.ascontiguousarray(sample.leakage_frames[..., ::-1])
        if sample.warp is not None:  # coordinates of the mirrored warp: flip the field and the x values
            wp = sample.warp[..., ::-1].copy()
            wp[1] = (w - 1) - wp[1]
            sample.warp = wp
        eye = "right"  # the disc is nasal: on the viewer's right for a right eye
    else:
        eye = "left"
    sample.meta = {
        "seed": int(seed),
        "size": [h, w],
        "severity": float(severity),
        "n_frames": int(n_frames),
        "misalign": float(misalign),
        "eye": eye,
        "fov_radius": float(R),
        "n_segments": int(tree.n_segments),
    }
    return sample
