"""How close are the phantoms to real images? Statistics computed the same way on both.

Measured (issue 3, "realism measured, not asserted"):

* per-channel intensity histograms inside the field of view (FOV), and their distance (earth
  mover's distance, EMD, in intensity units of [0,1]);
* vessel pixel fraction inside the FOV (DRIVE's manual annotations give the real value, ~12%);
* radially averaged power spectra of a square crop inside the FOV, resampled to 256 px so the
  frequency axis is in cycles per crop (crop side = 1.27 x FOV radius) whatever the camera size;
  the distance is the mean absolute difference of log10 power.

Real data come from ``../shared/data`` (DRIVE training split, Isfahan normal angiograms) when it
exists; :func:`shared_data_dir` finds it relative to the repository. Nothing here is needed to
train; it is what the data tour notebook shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

from medsynth.nbutils import shared_data_dir  # re-exported: notebooks import it from here

__all__ = [
    "shared_data_dir",
    "fov_from_image",
    "histograms",
    "hist_emd",
    "vessel_fraction",
    "power_spectrum",
    "spectrum_distance",
    "load_drive",
    "load_isfahan",
    "phantom_set",
    "compare_retina",
]


def fov_from_image(img: np.ndarray, thr: float = 0.06) -> np.ndarray:
    """FOV mask of a photo/angiogram: the largest bright connected region, holes filled, eroded 3 px."""
    g = img.mean(-1) if img.ndim == 3 else img
    m = ndi.gaussian_filter(g, 2) > thr
    lab, n = ndi.label(m)
    if n > 1:
        m = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    return ndi.binary_erosion(ndi.binary_fill_holes(m), iterations=3)


def histograms(images: list[np.ndarray], masks: list[np.ndarray], bins: int = 64) -> np.ndarray:
    """Pooled normalised histograms inside the masks: (C, bins) over [0,1]."""
    c = images[0].shape[-1] if images[0].ndim == 3 else 1
    out = np.zeros((c, bins))
    for im, m in zip(images, masks, strict=True):
        im = im.reshape(*im.shape[:2], c)
        for k in range(c):
            out[k] += np.histogram(im[..., k][m], bins=bins, range=(0, 1))[0]
    return out / out.sum(1, keepdims=True)


def hist_emd(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """Earth mover's distance between histograms on [0,1] (per row): integral of |CDF1 - CDF2|."""
    return np.abs(np.cumsum(h1, -1) - np.cumsum(h2, -1)).sum(-1) / h1.shape[-1]


def vessel_fraction(vessels: np.ndarray, fov: np.ndarray) -> float:
    return float(vessels[fov].mean())


SPECTRUM_N = 256  # side of the resampled crop: frequencies 1 .. 127 cycles per crop


def power_spectrum(img: np.ndarray, fov: np.ndarray, n: int = SPECTRUM_N) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the central square inside the FOV (grey, Hann-windowed).

    Returns (frequency in cycles per crop, normalised power) for ``n // 2`` radial bins.
    """
    g = img.mean(-1) if img.ndim == 3 else img
    ys, xs = np.nonzero(fov)
    cy, cx = ys.mean(), xs.mean()
    r = np.sqrt(fov.sum() / np.pi)
    half = int(0.635 * r)
    y0, x0 = int(cy) - half, int(cx) - half
    crop = g[max(y0, 0) : y0 + 2 * half, max(x0, 0) : x0 + 2 * half]
    crop = resize(crop, (n, n), order=1, anti_aliasing=True)
    crop = (crop - crop.mean()) * np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fftshift(np.fft.fft2(crop))) ** 2
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    rr = np.hypot(yy, xx).astype(int)
    prof = np.bincount(rr.ravel(), p.ravel(), minlength=n)[: n // 2] / np.maximum(
        np.bincount(rr.ravel(), minlength=n)[: n // 2], 1
    )
    f = np.arange(n // 2)
    return f[1:], prof[1:] / prof[1:].sum()


def spectrum_distance(p1: np.ndarray, p2: np.ndarray) -> float:
    """Mean |log10 p1 - log10 p2| over frequencies (0: same shape; 1: a decade apart on average)."""
    return float(np.mean(np.abs(np.log10(p1 + 1e-20) - np.log10(p2 + 1e-20))))


def load_drive(root: str | Path, limit: int | None = None) -> list[dict]:
    """DRIVE split folder (``images/``, ``1st_manual/``, ``mask/``) -> dicts image/vessels/fov."""
    root = Path(root)
    from PIL import Image

    out = []
    for p in sorted((root / "images").glob("*.tif"))[:limit]:
        num = p.stem.split("_")[0]
        img = np.asarray(Image.open(p).convert("RGB"), np.float32) / 255
        ves = np.asarray(Image.open(root / "1st_manual" / f"{num}_manual1.gif")) > 0
        fov = np.asarray(Image.open(next((root / "mask").glob(f"{num}_*mask.gif")))) > 0
        out.append({"image": img, "vessels": ves, "fov": fov, "id": num})
    return out


def load_isfahan(root: str | Path, limit: int | None = None) -> list[dict]:
    """Folder of Isfahan angiograms (grey JPEG) -> dicts image/fov (FOV by thresholding)."""
    from PIL import Image

    paths = sorted(Path(root).glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))[:limit]
    out = []
    for p in paths:
        img = np.asarray(Image.open(p).convert("L"), np.float32) / 255
        out.append({"image": img, "fov": fov_from_image(img), "id": p.stem})
    return out


def phantom_set(n: int = 8, size: tuple[int, int] = (576, 720), seed: int = 0, severity: float = 0.0) -> list:
    from medsynth.data.retina import make_retina

    return [make_retina(seed + i, size, severity=severity) for i in range(n)]


def _stats(
    images: list[np.ndarray], fovs: list[np.ndarray], vessels: list[np.ndarray] | None = None, count: bool = False
) -> dict:
    """Histograms and mean spectrum of a set (+ vessel fractions when masks are given, + ``n``)."""
    out: dict = {
        "hist": histograms(images, fovs),
        "spectrum": np.mean([power_spectrum(im, m)[1] for im, m in zip(images, fovs, strict=True)], 0),
    }
    if vessels is not None:
        out["vessel_fraction"] = [vessel_fraction(v, m) for v, m in zip(vessels, fovs, strict=True)]
    if count:
        out["n"] = len(images)
    return out


def _add_real(side: dict, real: dict) -> None:
    """Attach the real set's statistics and the phantom-vs-real distances to one modality's entry."""
    side["real"] = real
    side["hist_emd"] = hist_emd(side["phantom"]["hist"], real["hist"])
    side["spectrum_dist"] = spectrum_distance(side["phantom"]["spectrum"], real["spectrum"])


def compare_retina(
    data_root: str | Path | None = None,
    n_phantoms: int = 8,
    size: tuple[int, int] = (576, 720),
    seed: int = 0,
    limit: int | None = None,
) -> dict:
    """Phantom vs DRIVE photographs and Isfahan angiograms. Real side is None when data are absent.

    Returns a dict with, per modality, ``phantom``/``real`` statistics (histograms, spectra, vessel
    fractions) and the summary numbers ``hist_emd`` (per channel), ``spectrum_dist``.
    Phantoms are normal eyes (severity 0), like DRIVE's mostly healthy training split and the
    Isfahan normal set.
    """
    ph = phantom_set(n_phantoms, size, seed)
    fovs = [s.masks["fov"] for s in ph]
    fund = {"phantom": _stats([s.fundus for s in ph], fovs, [s.masks["vessels"] for s in ph]), "real": None}
    fa = {"phantom": _stats([s.angio for s in ph], fovs), "real": None}
    res: dict = {"n_phantoms": n_phantoms, "freq": np.arange(1, SPECTRUM_N // 2)}  # power_spectrum's frequencies
    root = Path(data_root) if data_root is not None else shared_data_dir()
    drive = root / "DRIVE" / "training" if root is not None else None
    if drive is not None and (drive / "images").is_dir():
        d = load_drive(drive, limit)
        _add_real(fund, _stats([x["image"] for x in d], [x["fov"] for x in d], [x["vessels"] for x in d], count=True))
    isf = root / "isfahan_fa_normal" if root is not None else None
    if isf is not None and isf.is_dir():
        a = load_isfahan(isf, limit)
        _add_real(fa, _stats([x["image"] for x in a], [x["fov"] for x in a], count=True))
    res["fundus"], res["angio"] = fund, fa
    return res


def summary_rows(res: dict) -> list[dict]:
    """Flat table rows (statistic, phantom, real, distance) for printing / metrics.json."""
    rows = []
    f, a = res["fundus"], res["angio"]
    centres = (np.arange(64) + 0.5) / 64
    for k, ch in enumerate("RGB"):
        pm = float((f["phantom"]["hist"][k] * centres).sum())
        rm = float((f["real"]["hist"][k] * centres).sum()) if f["real"] else None
        rows.append(
            {
                "stat": f"fundus mean {ch} (FOV)",
                "phantom": pm,
                "real": rm,
                "distance": float(f["hist_emd"][k]) if f["real"] else None,
            }
        )
    vf = f["phantom"]["vessel_fraction"]
    rows.append(
        {
            "stat": "vessel fraction in FOV",
            "phantom": float(np.mean(vf)),
            "real": float(np.mean(f["real"]["vessel_fraction"])) if f["real"] else None,
            "distance": None,
        }
    )
    rows.append(
        {"stat": "fundus log-spectrum distance", "phantom": None, "real": None, "distance": f.get("spectrum_dist")}
    )
    pm = float((a["phantom"]["hist"][0] * centres).sum())
    rows.append(
        {
            "stat": "angio mean (FOV)",
            "phantom": pm,
            "real": float((a["real"]["hist"][0] * centres).sum()) if a["real"] else None,
            "distance": float(a["hist_emd"][0]) if a["real"] else None,
        }
    )
    rows.append(
        {"stat": "angio log-spectrum distance", "phantom": None, "real": None, "distance": a.get("spectrum_dist")}
    )
    return rows
