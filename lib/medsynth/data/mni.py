"""The MNI152 ICBM 2009a template that ships inside the ``nilearn`` wheel, read offline with nibabel.

Files (1 mm, 197 x 233 x 189, uint8): ``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a
_converted.nii.gz`` - the T1-weighted average of 152 brains (skull-stripped) and its grey- and
white-matter probability maps. Fonov, Evans, McKinstry, Almli & Collins, "Unbiased nonlinear average
age-appropriate brain templates from birth to adulthood", NeuroImage 47:S102, 2009; Fonov et al.,
"Unbiased average age-appropriate atlases for pediatric studies", NeuroImage 54(1):313-327, 2011.
Terms of the template (Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre,
Montreal Neurological Institute): use, copy, modify and distribute freely, keeping the copyright
notice; no warranty.

The package is located with ``importlib.util.find_spec`` and never imported (importing nilearn pulls
in pandas and scikit-learn: seconds). The slab of axial slices is read once per process
(:func:`template`, ``lru_cache``) and sampled with :func:`sample` at any in-plane or oblique pose.

Interpolation: the tissue maps are sampled with a cubic B-spline (``order=3``; coefficients computed
once per process) because trilinear interpolation at a random sub-voxel offset ``u`` multiplies the
power at spatial frequency w by ``1 - 2u(1-u)(1 - cos w)``: on average 1/3 of it survives at the
Nyquist frequency, so a posed linear-interpolated slice is blurrier than the template's own 1 mm
voxels (measured in :mod:`.realism_brain`: -0.5 decades of power at 2-3 mm wavelengths). The cubic
spline's response stays near 1 over most of the band.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = ["TemplateMissing", "template_dir", "template", "sample", "SLAB", "MIDLINE_X", "BRAIN_THRESHOLD"]

FILES = {k: f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}
SLAB = (50, 124)  # axial voxel indices z (MNI z = -22 .. +52 mm): temporal lobes to centrum semiovale,
MARGIN = 12  # where BraTS gliomas sit; +-MARGIN more voxels are kept for oblique slices
MIDLINE_X = 98.0  # voxel column of MNI x = 0 (affine offset -98 mm): the symmetric template's midline
BRAIN_THRESHOLD = 0.2  # nilearn's load_mni152_brain_mask threshold on the [0,1] T1 template


class TemplateMissing(FileNotFoundError):
    """The nilearn package (or one of its template files) is not installed."""


def template_dir() -> Path:
    """Folder of the template files inside the installed nilearn (raises :class:`TemplateMissing`)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise TemplateMissing(
            "the MNI152 brain phantom needs the nilearn package (its wheel holds the "
            "ICBM 2009a template): pip install nilearn  - or use make_brain(..., anatomy='ellipse')"
        )
    d = Path(spec.origin).parent / "datasets" / "data"
    for f in FILES.values():
        if not (d / f).is_file():
            raise TemplateMissing(f"MNI152 template file missing: {d / f} (reinstall nilearn>=0.10)")
    return d


@lru_cache(maxsize=1)
def template() -> dict[str, np.ndarray]:
    """The slab as float32 volumes (Z, rows, cols) in [0,1]: ``t1``, ``gm``, ``wm`` and ``brain``.

    Axial slices with anterior at the top (rows = -y) and columns along +x (patient right on the
    image right, neurological convention); z index 0 is voxel ``SLAB[0] - MARGIN``. ``brain`` is the
    T1 template above nilearn's 0.2 threshold, holes filled; GM and WM are zeroed outside it, so
    CSF = brain - GM - WM is >= 0.
    """
    import nibabel as nib  # a dependency of nilearn; imported here so ellipse phantoms do not need it

    d = template_dir()
    z0, z1 = SLAB[0] - MARGIN, SLAB[1] + MARGIN + 1
    out = {}
    for k, f in FILES.items():
        try:
            vol = np.asarray(nib.load(str(d / f)).dataobj)[:, :, z0:z1]
        except Exception as e:  # a truncated download or a changed format: name the file
            raise TemplateMissing(f"cannot read MNI152 template {d / f}: {e}") from e
        out[k] = np.ascontiguousarray(np.transpose(vol, (2, 1, 0))[:, ::-1, :], dtype=np.float32) / 255.0
    brain = ndi.binary_fill_holes(out["t1"] > BRAIN_THRESHOLD, structure=np.ones((1, 3, 3), bool))
    out["brain"] = brain.astype(np.float32)
    for k in ("gm", "wm"):  # the probability maps leak ~0.1 outside the T1 mask: keep tissue inside the brain
        out[k] *= out["brain"]
    for v in out.values():
        v.setflags(write=False)  # shared by every call in the process
    return out


@lru_cache(maxsize=4)
def _spline(key: str) -> np.ndarray:
    """Cubic B-spline coefficients of one slab volume (scipy's prefilter, computed once: ~0.1 s)."""
    c = ndi.spline_filter(template()[key], order=3, mode="grid-constant", output=np.float32)
    c.setflags(write=False)
    return c


def sample(coords: np.ndarray, keys: tuple[str, ...] = ("gm", "wm", "brain"), order: int = 3) -> dict[str, np.ndarray]:
    """Samples of template volumes at ``coords`` (3, H, W) = (z, row, col) in voxels.

    ``z`` is the MNI axial voxel index (``SLAB`` is the default range); outside the volume is 0.
    ``order=3``: cubic B-spline for the probability maps and the T1 (module docstring), clipped to
    [0, 1] and evaluated only where the trilinear brain mask is > 0 (0 elsewhere: the template's GM and
    WM are zero outside the brain, a T1 read this way is brain-only; this halves the cost at 240 px);
    the ``brain`` mask is always trilinear (it is thresholded, and a spline would ring at its step
    edge). ``order=1``: trilinear for every key (cheaper: placement heuristics).
    """
    if order not in (1, 3):
        raise ValueError(f"mni.sample(order={order}): expected 1 (trilinear) or 3 (cubic B-spline)")
    t = template()
    c = np.asarray(coords, np.float32).copy()
    c[0] -= SLAB[0] - MARGIN

    def lin(k: str) -> np.ndarray:
        return ndi.map_coordinates(t[k], c, order=1, mode="constant", cval=0.0, prefilter=False)

    if order == 1:
        return {k: lin(k) for k in keys}
    brain = lin("brain")
    inside = brain > 0
    out = {}
    for k in keys:
        if k == "brain":
            out[k] = brain
            continue
        v = np.zeros(brain.shape, np.float32)
        v[inside] = ndi.map_coordinates(
            _spline(k), c[:, inside], order=3, mode="grid-constant", cval=0.0, prefilter=False
        )
        out[k] = np.clip(v, 0.0, 1.0, out=v)
    return out
