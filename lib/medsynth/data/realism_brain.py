"""How close are the brain phantoms to real MRI? Both phantoms against the real MNI152 T1 slices.

Real side: axial slices of the ICBM 2009a T1 template (:mod:`.mni`), evenly spaced through the
phantom's slab, unposed, inside the template's brain mask. Phantom side: tumour-free T1 slices of
the MNI phantom (default) and of the ellipse phantom, inside their brain masks (the template has
no tumour). Statistics, computed the same way on all three sets (as :mod:`.realism` does for the
retina):

* in-brain intensity histogram after dividing each slice by its in-brain 99th percentile (T1w
  scales are arbitrary; WM is the brightest brain tissue on every side), earth mover's distance;
* GM/WM contrast ratio: mean T1 where the GM fraction > 0.9 over mean T1 where the WM fraction > 0.9;
* radially averaged power spectrum of the central square in the brain (``realism.power_spectrum``),
  mean |log10 power difference|.

Two acquisitions of the phantoms are compared (``PROTOCOLS``): ``"as generated"`` is
``make_brain``'s T1 as the chapters get it (spin-echo T1w TR 500/TE 15, Rician noise 0.02, bias
field 0.15); ``"template-matched"`` renders the same tissue fractions with the acquisition the
template resembles - a T1w spoiled gradient echo (signal ``PD sin(a)(1-E1)/(1-cos(a)E1) e^{-TE/T2*}``,
E1 = e^{-TR/T1}) with the parameters of BrainWeb's simulated T1 (spoiled FLASH, TR 18 ms, TE 10 ms,
30 deg; Cocosco et al. 1997), T2* taken as T2 (not in the table), noise 0.02 / sqrt(152) (an average
of 152 scans), no bias field (the template is non-uniformity corrected).

Caveat: the MNI phantom's anatomy *is* the template's, so its spectrum distance mostly measures how
the contrasts, noise and deformation change an image of the right anatomy; the histogram and the
GM/WM ratio come from the signal equations, not from the template's intensities. The template is an
average of 152 registered brains: smoother (blurrier GM/WM borders, almost no noise) than one subject's
scan. As generated, the phantoms carry a single scan's Rician noise, which the average lacks; that
noise floor dominates the high-frequency half of the log-spectrum distance.
"""
from __future__ import annotations

import numpy as np

from medsynth.data.realism import SPECTRUM_N, hist_emd, histograms, power_spectrum, spectrum_distance

__all__ = ["real_mni_slices", "normalise", "brain_stats", "spgr_t1", "compare_brain", "brain_summary_rows", "brain_claims",
           "PROTOCOLS"]


def real_mni_slices(n: int = 15, size: tuple[int, int] = (240, 240)) -> list[dict]:
    """``n`` template slices evenly spaced in the slab: dicts ``t1``, ``gm``, ``wm``, ``brain`` (bool), ``z``."""
    from medsynth.data import mni
    from medsynth.data.brain_mni import _coords
    from medsynth.data.fields import grid
    yy, xx = grid(size)
    pose = {"z": 0.0, "flip": False, "scale": 1.0, "rot_deg": 0.0, "tilt": [0.0, 0.0]}
    out = []
    for z in np.linspace(mni.SLAB[0], mni.SLAB[1], n):
        c = _coords({**pose, "z": float(z)}, (yy, xx), np.zeros((2, *size), np.float32), size)
        d = mni.sample(c, ("t1", "gm", "wm", "brain"))
        out.append({**d, "brain": d["brain"] > 0.5, "z": float(z)})
    return out


def normalise(img: np.ndarray, mask: np.ndarray, q: float = 99.0) -> np.ndarray:
    """``img`` divided by its ``q``-th percentile inside ``mask``, clipped to [0,1]."""
    return np.clip(img / max(float(np.percentile(img[mask], q)), 1e-6), 0, 1)


def brain_stats(t1: list[np.ndarray], masks: list[np.ndarray], gm: list[np.ndarray], wm: list[np.ndarray]) -> dict:
    """Normalised in-brain histogram (1, 64), mean power spectrum, GM/WM ratio per slice (module docstring)."""
    ims = [normalise(im, m) for im, m in zip(t1, masks)]
    ratios = [float(im[g > 0.9].mean() / im[w > 0.9].mean()) for im, g, w in zip(ims, gm, wm)
              if (g > 0.9).any() and (w > 0.9).any()]
    return {"hist": histograms(ims, masks), "spectrum": np.mean([power_spectrum(im, m)[1] for im, m in zip(ims, masks)], 0),
            "gm_wm": ratios, "n": len(ims)}


PROTOCOLS = ("as generated", "template-matched")
SPGR = (18.0, 10.0, 30.0)  # TR ms, TE ms, flip deg (module docstring)


def spgr_t1(tissues: dict[str, np.ndarray]) -> np.ndarray:
    """Noise-free spoiled-gradient-echo T1w image of a phantom's tissue fractions (max tissue = 1)."""
    from medsynth.data.brain import TISSUES
    tr, te, fa = SPGR
    a = np.deg2rad(fa)
    vals = {}
    for n, (t1, t2, pd) in TISSUES.items():
        e1 = np.exp(-tr / t1)
        vals[n] = pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1) * np.exp(-te / t2)
    img = sum(vals[n] * f for n, f in tissues.items())
    return (img / max(vals.values())).astype(np.float32)


def _phantom_t1(b, protocol: str, rng: np.random.Generator) -> np.ndarray:
    if protocol == "as generated":
        return b.images["t1"]
    img, sd = spgr_t1(b.tissues), 0.02 / np.sqrt(152)
    return np.hypot(img + rng.normal(0, sd, img.shape), rng.normal(0, sd, img.shape))  # Rician


def compare_brain(n_phantoms: int = 16, size: tuple[int, int] = (240, 240), seed: int = 0, n_real: int = 15) -> dict:
    """Real MNI T1 slices vs the MNI and the ellipse phantoms (T1, tumour-free), per protocol.

    Returns ``real`` statistics, ``freq`` (cycles per crop) and, for each of ``PROTOCOLS``, a dict
    ``{"mni": stats, "ellipse": stats}`` whose stats carry ``hist_emd``, ``spectrum_dist`` and
    ``gm_wm_diff`` (|phantom - real| of the mean GM/WM ratio).
    """
    from medsynth.data.brain import make_brain
    real = real_mni_slices(n_real, size)
    res: dict = {"freq": np.arange(1, SPECTRUM_N // 2), "size": list(size), "n_phantoms": n_phantoms,
                 "real": brain_stats([r["t1"] for r in real], [r["brain"] for r in real],
                                     [r["gm"] for r in real], [r["wm"] for r in real])}
    phantoms = {a: [make_brain(seed + i, size, tumour=False, anatomy=a) for i in range(n_phantoms)]
                for a in ("mni", "ellipse")}
    for protocol in PROTOCOLS:
        res[protocol] = {}
        for anat, bs in phantoms.items():
            rng = np.random.default_rng([seed, 4711])
            st = brain_stats([_phantom_t1(b, protocol, rng) for b in bs], [b.brain_mask for b in bs],
                             [b.tissues["gm"] for b in bs], [b.tissues["wm"] for b in bs])
            st["hist_emd"] = float(hist_emd(st["hist"], res["real"]["hist"])[0])
            st["spectrum_dist"] = spectrum_distance(st["spectrum"], res["real"]["spectrum"])
            st["gm_wm_diff"] = abs(float(np.mean(st["gm_wm"])) - float(np.mean(res["real"]["gm_wm"])))
            res[protocol][anat] = st
    return res


def brain_summary_rows(res: dict) -> list[dict]:
    """Rows (protocol, statistic, real, mni, ellipse) for printing and metrics.json; distances are to the real side."""
    rows = []
    for p in PROTOCOLS:
        m, e = res[p]["mni"], res[p]["ellipse"]
        rows.append({"protocol": p, "stat": "GM/WM ratio (T1)", "real": float(np.mean(res["real"]["gm_wm"])),
                     "mni": float(np.mean(m["gm_wm"])), "ellipse": float(np.mean(e["gm_wm"]))})
        for key, name in (("gm_wm_diff", "|GM/WM ratio - real|"), ("hist_emd", "histogram EMD to real"),
                          ("spectrum_dist", "log-spectrum distance to real")):
            rows.append({"protocol": p, "stat": name, "real": None, "mni": m[key], "ellipse": e[key]})
    return rows


def brain_claims() -> list:
    """Issue 19's done criterion as :class:`medsynth.evidence.Claim` s, per protocol and statistic.

    Each run is one :func:`compare_brain` result (a phantom seed); the statistic is the ellipse
    phantom's distance minus the MNI phantom's, so > 0 on every seed supports "MNI is closer".
    """
    from medsynth.evidence import Claim
    out = []
    for p in PROTOCOLS:
        for key, what in (("hist_emd", "in-brain histogram EMD"), ("spectrum_dist", "log-spectrum distance")):
            out.append(Claim(f"MNI phantom closer to real MNI152 T1 than the ellipse phantom: {what}, {p}",
                             "issue 19 (done criterion)",
                             lambda r, p=p, key=key: r[p]["ellipse"][key] - r[p]["mni"][key],
                             f"{key}(ellipse) - {key}(MNI)"))
    return out
