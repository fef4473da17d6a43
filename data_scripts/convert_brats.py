#!/usr/bin/env python
"""Convert a local BraTS copy (NIfTI volumes) into 2-D slices in the MedSynth layout.

BraTS is behind a registration wall: point this at your copy. Each case folder holds
``<case>_t1.nii[.gz]``, ``<case>_t1ce.nii[.gz]`` (or ``_t1c``), ``<case>_t2``, ``<case>_flair`` and
``<case>_seg`` (labels 0/1/2/4; BraTS 2023 uses 3 for enhancing: mapped to 4), 240x240x155 voxels.
Output per kept axial slice: ``t1, t2, t1c, flair`` (each volume scaled by its 99.5th percentile
inside the brain), ``labels``, ``mask_brain`` (any contrast > 0: BraTS is skull-stripped).
Needs nibabel: ``pip install medsynth[nifti]``. Usage:
``python data_scripts/convert_brats.py BraTS_dir data/brats --slices 5 --test-fraction 0.2``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DataError, add_output_args, cli, open_source

from medsynth.data.layout import atomic_dir, write_image, write_meta

MODS = {"t1": ("t1",), "t1c": ("t1ce", "t1c"), "t2": ("t2", "t2w"), "flair": ("flair", "t2f")}
BRATS_SHAPE = (240, 240, 155)


def _nib():
    try:
        import nibabel
    except ImportError as e:
        raise DataError("reading BraTS NIfTI needs nibabel: pip install 'medsynth[nifti]'") from e
    return nibabel


def _find(case: Path, keys: tuple[str, ...]) -> Path:
    for k in keys:
        for ext in (".nii.gz", ".nii"):
            for p in case.glob(f"*[_-]{k}{ext}"):
                return p
    raise DataError(f"missing file: {case}/{case.name}_{keys[0]}.nii.gz (case folder {case})")


def _load(p: Path, shape: tuple[int, ...]) -> np.ndarray:
    try:
        v = np.asarray(_nib().load(str(p)).dataobj, dtype=np.float32)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"unreadable NIfTI: {p} ({e})") from e
    if v.shape != shape:
        raise DataError(f"wrong size: {p} has shape {v.shape}, expected {shape}")
    return v


def convert_brats(
    src: str | Path,
    out: str | Path,
    slices: int = 5,
    test_fraction: float = 0.2,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    overwrite: bool = False,
) -> Path:
    """Keep the ``slices`` axial slices with the largest tumour area per case (spread apart)."""
    with tempfile.TemporaryDirectory() as work:
        root = open_source(src, Path(work))
        cases = sorted({p.parent for p in root.rglob("*seg.nii*")})
        if not cases:
            raise DataError(f"no BraTS case (a *_seg.nii[.gz] file) under {root}")
        n_test = int(round(len(cases) * test_fraction))
        with atomic_dir(Path(out), "replace" if overwrite else "refuse") as tmp:
            splits: dict[str, list[str]] = {}
            for ci, case in enumerate(cases):
                split = "test" if ci >= len(cases) - n_test else "train"
                vols = {m: _load(_find(case, keys), shape) for m, keys in MODS.items()}
                seg = _load(_find(case, ("seg",)), shape).astype(np.uint8)
                seg[seg == 3] = 4  # BraTS 2023 relabelled enhancing tumour 4 -> 3
                if not set(np.unique(seg)) <= {0, 1, 2, 4}:
                    raise DataError(f"unexpected labels {sorted(np.unique(seg))} in {_find(case, ('seg',))}")
                brain = np.any([v > 0 for v in vols.values()], axis=0)
                area = (seg > 0).sum((0, 1))
                order = np.argsort(-area, kind="stable")
                keep: list[int] = []
                for z in order:  # largest tumour slices, at least 3 apart
                    if area[z] == 0 or len(keep) >= slices:
                        break
                    if all(abs(int(z) - k) >= 3 for k in keep):
                        keep.append(int(z))
                for z in sorted(keep):
                    iid = f"{case.name}_z{z:03d}"
                    for m, v in vols.items():
                        scale = np.percentile(v[brain], 99.5) if brain.any() else 1.0
                        write_image(tmp / split / m / f"{iid}.png", np.rot90(v[:, :, z] / max(scale, 1e-6)))
                    write_image(tmp / split / "labels" / f"{iid}.png", np.rot90(seg[:, :, z]).astype(np.uint8))
                    write_image(tmp / split / "mask_brain" / f"{iid}.png", np.rot90(brain[:, :, z]))
                    splits.setdefault(split, []).append(iid)
            write_meta(tmp, {"kind": "brats", "source": str(src), "size": list(shape[:2]), "splits": splits})
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="BraTS NIfTI -> MedSynth 2-D layout")
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--slices", type=int, default=5)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    add_output_args(ap)
    a = ap.parse_args(argv)
    print(convert_brats(a.src, a.out, a.slices, a.test_fraction, overwrite=a.overwrite))


if __name__ == "__main__":
    sys.exit(cli(main))
