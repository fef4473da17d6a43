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

__all__ = ["shared_data_dir", "fov_from_image", "histograms", "hist_emd", "vessel_fraction", "power_spectrum",
           "spectrum_distance", "load_drive", "load_isfahan", "phantom_set", "compare_retina"]


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
    for im, m in zip(images, masks):
        im = im.reshape(*im.shape[:2], c)
        for k in range(c):
            out[k] += np.histogram(im[..., k][m], bins=bins, range=(0, 1))[0]
    return out / out.sum(1, keepdims=True)


def hist_emd(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """Earth mover's distance between histograms on [0,1] (per row): integral of |CDF1 - CDF2|."""
    return np.abs(np.cumsum(h1, -1) - np.cumsum(h2, -1)).sum(-1) / h1.shape[-1]


def vessel_fraction(vessels: np.ndarray, fov: np.ndarray) -> float:
    return float(vessels[fov].mean())


def power_spectrum(img: np.ndarray, fov: np.ndarray, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the central square inside the FOV (grey, Hann-windowed).

    Returns (frequency in cycles per crop, normalised power) for ``n // 2`` radial bins.
    """
    g = img.mean(-1) if img.ndim == 3 else img
    ys, xs = np.nonzero(fov)
    cy, cx = ys.mean(), xs.mean()
    r = np.sqrt(fov.sum() / np.pi)
    half = int(0.635 * r)
    y0, x0 = int(cy) - half, int(cx) - half
    crop = g[max(y0, 0):y0 + 2 * half, max(x0, 0):x0 + 2 * half]
    crop = resize(crop, (n, n), order=1, anti_aliasing=True)
    crop = (crop - crop.mean()) * np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fftshift(np.fft.fft2(crop))) ** 2
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    rr = np.hypot(yy, xx).astype(int)
    prof = np.bincount(rr.ravel(), p.ravel(), minlength=n)[: n // 2] / np.maximum(
        np.bincount(rr.ravel(), minlength=n)[: n // 2], 1)
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


def compare_retina(data_root: str | Path | None = None, n_phantoms: int = 8, size: tuple[int, int] = (576, 720),
                   seed: int = 0, limit: int | None = None) -> dict:
    """Phantom vs DRIVE photographs and Isfahan angiograms. Real side is None when data are absent.

    Returns a dict with, per modality, ``phantom``/``real`` statistics (histograms, spectra, vessel
    fractions) and the summary numbers ``hist_emd`` (per channel), ``spectrum_dist``.
    Phantoms are normal eyes (severity 0), like DRIVE's mostly healthy training split and the
    Isfahan normal set.
    """
    ph = phantom_set(n_phantoms, size, seed)
    res: dict = {"n_phantoms": n_phantoms}
    fund = {"phantom": {"hist": histograms([s.fundus for s in ph], [s.masks["fov"] for s in ph]),
                        "spectrum": np.mean([power_spectrum(s.fundus, s.masks["fov"])[1] for s in ph], 0),
                        "vessel_fraction": [vessel_fraction(s.masks["vessels"], s.masks["fov"]) for s in ph]},
            "real": None}
    fa = {"phantom": {"hist": histograms([s.angio for s in ph], [s.masks["fov"] for s in ph]),
                      "spectrum": np.mean([power_spectrum(s.angio, s.masks["fov"])[1] for s in ph], 0)},
          "real": None}
    res["freq"] = power_spectrum(ph[0].angio, ph[0].masks["fov"])[0]
    root = Path(data_root) if data_root is not None else shared_data_dir()
    drive = root / "DRIVE" / "training" if root is not None else None
    if drive is not None and (drive / "images").is_dir():
        d = load_drive(drive, limit)
        fund["real"] = {"hist": histograms([x["image"] for x in d], [x["fov"] for x in d]),
                        "spectrum": np.mean([power_spectrum(x["image"], x["fov"])[1] for x in d], 0),
                        "vessel_fraction": [vessel_fraction(x["vessels"], x["fov"]) for x in d], "n": len(d)}
        fund["hist_emd"] = hist_emd(fund["phantom"]["hist"], fund["real"]["hist"])
        fund["spectrum_dist"] = spectrum_distance(fund["phantom"]["spectrum"], fund["real"]["spectrum"])
    isf = root / "isfahan_fa_normal" if root is not None else None
    if isf is not None and isf.is_dir():
        a = load_isfahan(isf, limit)
        fa["real"] = {"hist": histograms([x["image"] for x in a], [x["fov"] for x in a]),
                      "spectrum": np.mean([power_spectrum(x["image"], x["fov"])[1] for x in a], 0), "n": len(a)}
        fa["hist_emd"] = hist_emd(fa["phantom"]["hist"], fa["real"]["hist"])
        fa["spectrum_dist"] = spectrum_distance(fa["phantom"]["spectrum"], fa["real"]["spectrum"])
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
        rows.append({"stat": f"fundus mean {ch} (FOV)", "phantom": pm, "real": rm,
                     "distance": float(f["hist_emd"][k]) if f["real"] else None})
    vf = f["phantom"]["vessel_fraction"]
    rows.append({"stat": "vessel fraction in FOV", "phantom": float(np.mean(vf)),
                 "real": float(np.mean(f["real"]["vessel_fraction"])) if f["real"] else None, "distance": None})
    rows.append({"stat": "fundus log-spectrum distance", "phantom": None, "real": None,
                 "distance": f.get("spectrum_dist")})
    pm = float((a["phantom"]["hist"][0] * centres).sum())
    rows.append({"stat": "angio mean (FOV)", "phantom": pm,
                 "real": float((a["real"]["hist"][0] * centres).sum()) if a["real"] else None,
                 "distance": float(a["hist_emd"][0]) if a["real"] else None})
    rows.append({"stat": "angio log-spectrum distance", "phantom": None, "real": None, "distance": a.get("spectrum_dist")})
    return rows
