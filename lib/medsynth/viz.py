"""Figure helpers: image grids, mask overlays, sequence strips, realism plots.

Pure functions: arrays in, numpy arrays or matplotlib Figures out (nothing is saved here). Figures
are made with ``plt.figure`` so a notebook cell shows them with ``plt.show()``; tests run headless
(Agg) and close them.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "to_rgb",
    "overlay",
    "label_rgb",
    "image_grid",
    "mask_panel",
    "sequence_strip",
    "brain_panel",
    "realism_figure",
    "brain_realism_figure",
    "BRATS_COLOURS",
]

BRATS_COLOURS = {1: (0.9, 0.2, 0.2), 2: (0.2, 0.8, 0.2), 4: (1.0, 0.9, 0.1)}  # core, oedema, enhancing
MASK_COLOURS = {
    "vessels": (0.1, 0.9, 0.2),
    "arteries": (1.0, 0.2, 0.2),
    "veins": (0.2, 0.4, 1.0),
    "fov": (0.9, 0.9, 0.9),
    "disc": (1.0, 1.0, 0.2),
    "fovea": (0.2, 1.0, 1.0),
    "microaneurysms": (1.0, 0.1, 1.0),
    "haemorrhages": (0.1, 1.0, 1.0),
    "exudates": (0.1, 0.3, 1.0),
    "lesions": (1.0, 0.5, 0.0),
    "leakage": (0.0, 1.0, 0.3),
}


def to_rgb(img: np.ndarray) -> np.ndarray:
    """(H,W) / (H,W,1) / (H,W,3) / torch-like (C,H,W) in [0,1] or [-1,1] -> (H,W,3) float in [0,1]."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.min() < -0.01:  # tanh range
        a = (a + 1) / 2
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, -1)
    return np.clip(a, 0, 1)


def overlay(
    img: np.ndarray, mask: np.ndarray, colour: Sequence[float] = (0.1, 0.9, 0.2), alpha: float = 0.55
) -> np.ndarray:
    """Tint ``mask`` pixels of ``img`` with ``colour``."""
    out = to_rgb(img).copy()
    m = np.asarray(mask, bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
    return out


def label_rgb(labels: np.ndarray, base: np.ndarray | None = None, alpha: float = 0.6) -> np.ndarray:
    """BraTS labels (0/1/2/4) as colours, over ``base`` if given."""
    out = to_rgb(base) if base is not None else np.zeros((*labels.shape, 3), np.float32)
    for v, c in BRATS_COLOURS.items():
        out = overlay(out, labels == v, c, alpha if base is not None else 1.0)
    return out


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 2.6,
    suptitle: str | None = None,
) -> Figure:
    """Images in a grid (grey or RGB, any range handled by :func:`to_rgb`)."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    h, w = (
        np.asarray(images[0]).shape[-2:]
        if np.asarray(images[0]).ndim == 3 and np.asarray(images[0]).shape[0] in (1, 3)
        else np.asarray(images[0]).shape[:2]
    )
    fig = plt.figure(figsize=(size * ncols * w / max(h, w) * 1.1, size * nrows * h / max(h, w) * 1.15))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(to_rgb(images[i]), interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def mask_panel(fundus: np.ndarray, masks: dict[str, np.ndarray], ncols: int = 4, size: float = 2.6) -> Figure:
    """Every mask overlaid on the photograph, one panel each."""
    names = list(masks)
    ims = [overlay(fundus, masks[k], MASK_COLOURS.get(k, (0.1, 0.9, 0.2))) for k in names]
    return image_grid(ims, [f"{k} ({int(masks[k].sum())} px)" for k in names], ncols, size)


def sequence_strip(
    frames: np.ndarray,
    times: Sequence[float] | None = None,
    phases: Sequence[str] | None = None,
    leakage: np.ndarray | None = None,
    size: float = 2.0,
    ncols: int | None = None,
) -> Figure:
    """Frames of an FA sequence in a row (or grid), titled with time/phase, leakage outlined."""
    ims = []
    for k, f in enumerate(frames):
        ims.append(overlay(f, _edge(leakage[k]), (0.1, 1.0, 0.3), 0.9) if leakage is not None else f)
    titles = [
        (f"t={times[k]:.2f}" if times is not None else f"frame {k}") + (f" {phases[k]}" if phases else "")
        for k in range(len(frames))
    ]
    return image_grid(ims, titles, ncols or len(frames), size)


def _edge(m: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    m = np.asarray(m, bool)
    return m & ~ndi.binary_erosion(m)


def brain_panel(images: dict[str, np.ndarray], labels: np.ndarray, brain_mask: np.ndarray, size: float = 2.4) -> Figure:
    """Four contrasts, the label map over T1c, and the brain mask."""
    names = list(images)
    ims = [images[k] for k in names] + [label_rgb(labels, images.get("t1c", images[names[0]])), brain_mask]
    return image_grid(ims, names + ["labels 1 core, 2 oedema, 4 enh.", "brain mask"], 6, size)


def realism_figure(res: dict) -> Figure:
    """Histograms (phantom solid, real dashed) and power spectra from ``realism.compare_retina``."""
    fig = plt.figure(figsize=(12, 3.2))
    ax = fig.subplots(1, 4)
    c = (np.arange(64) + 0.5) / 64
    for k, col in enumerate("rgb"):
        ax[0].plot(c, res["fundus"]["phantom"]["hist"][k], col, label=f"phantom {col.upper()}")
        if res["fundus"]["real"]:
            ax[0].plot(c, res["fundus"]["real"]["hist"][k], col + "--", label=f"DRIVE {col.upper()}")
    ax[0].set_title("fundus histograms (FOV)", fontsize=9)
    ax[0].legend(fontsize=6)
    ax[1].plot(c, res["angio"]["phantom"]["hist"][0], "k", label="phantom")
    if res["angio"]["real"]:
        ax[1].plot(c, res["angio"]["real"]["hist"][0], "k--", label="Isfahan")
    ax[1].set_title("angiogram histogram (FOV)", fontsize=9)
    ax[1].legend(fontsize=6)
    f = res["freq"]
    for i, name in ((2, "fundus"), (3, "angio")):
        ax[i].loglog(f, res[name]["phantom"]["spectrum"], "k", label="phantom")
        if res[name]["real"]:
            ax[i].loglog(f, res[name]["real"]["spectrum"], "k--", label="DRIVE" if name == "fundus" else "Isfahan")
        ax[i].set_title(f"{name} radial power spectrum", fontsize=9)
        ax[i].set_xlabel("cycles per crop", fontsize=8)
        ax[i].legend(fontsize=6)
    fig.tight_layout()
    return fig


def brain_realism_figure(res: dict) -> Figure:
    """In-brain T1 histograms (top row) and power spectra (bottom) from ``realism_brain.compare_brain``: the
    real side of each protocol (black; acquisition-matched: the template acquired like the phantom), MNI
    phantom (red), ellipse phantom (blue); one column per protocol."""
    from medsynth.data.realism_brain import PROTOCOLS

    fig = plt.figure(figsize=(12, 6))
    ax = fig.subplots(2, len(PROTOCOLS))
    c = (np.arange(64) + 0.5) / 64
    for i, p in enumerate(PROTOCOLS):
        h, s = ax[0, i], ax[1, i]
        sides = (
            ("real MNI152 T1" + (" (acquired)" if p == "acquisition-matched" else ""), res[p]["reference"], "k"),
            ("MNI phantom", res[p]["mni"], "r"),
            ("ellipse phantom", res[p]["ellipse"], "b"),
        )
        for name, st, col in sides:
            h.plot(c, st["hist"][0], col, label=name)
            s.loglog(res["freq"], st["spectrum"], col, label=name)
        h.set_title(f"T1 histogram in brain ({p})", fontsize=9)
        h.set_xlabel("intensity / in-brain 99th percentile", fontsize=8)
        s.set_title(f"radial power spectrum ({p})", fontsize=9)
        s.set_xlabel("cycles per 80 mm crop", fontsize=8)
        h.legend(fontsize=6)
    fig.tight_layout()
    return fig
