"""(photograph, vessel tree, FOV) sets for the vessel segmenter and RetiGAN, from DRIVE or the phantom.

Sources, all returned as one :class:`VesselSet` at a square working size:

* a **converted DRIVE** folder (``data_scripts/convert_drive.py``: ``<root>/<train|test>/fundus``,
  ``mask_vessels``, ``mask_fov``) -- :func:`load_layout`;
* the **official DRIVE folder** as distributed (``training/images``, ``1st_manual``, ``mask``; e.g. the 20
  training images in ``../shared/data/DRIVE``) -- :func:`load_official`;
* **phantom eyes** (:func:`medsynth.data.make_retina`, normal eyes by default) -- :func:`phantom_set`.

:func:`drive_protocol` picks the evaluation protocol: the official test split when ``data_root`` holds a
converted full DRIVE (training and test with manual annotations), else a stated hold-out of the training
images (ids 36-40 tested, 21-35 trained on).

Resizing: photographs bilinear with antialiasing; FOV masks by area averaging then > 0.5; vessel labels by area
averaging then >= :data:`VESSEL_COVER` (a pixel is vessel when at least a quarter of it was: at 64 px a majority
vote breaks DRIVE's thin vessels into dots). DRIVE's 584x565 becomes square (a 3 % aspect change). Low working
sizes lose the capillaries; every table states the size and the vessel fraction that remained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medsynth.data.layout import list_ids, read_image, read_meta

__all__ = [
    "VESSEL_COVER",
    "outside_black",
    "VesselSet",
    "load_layout",
    "load_official",
    "phantom_set",
    "drive_protocol",
    "HOLDOUT_IDS",
    "official_drive_dir",
]

#: Fraction of a downsized pixel that must be vessel for the pixel to be labelled vessel.
VESSEL_COVER = 0.25


def outside_black(images: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """Images in [-1,1] with every pixel outside the FOV set to -1 (black), as in the photographs."""
    return torch.where(fov.bool().expand_as(images), images, torch.full_like(images, -1.0))


#: The stated hold-out when only DRIVE's 20 training images exist: the last five ids.
HOLDOUT_IDS = ("36", "37", "38", "39", "40")


@dataclass
class VesselSet:
    """``images`` (N,3,S,S) in [-1,1]; ``vessels`` (N,1,S,S) float {0,1}; ``fov`` (N,1,S,S) bool."""

    images: torch.Tensor
    vessels: torch.Tensor
    fov: torch.Tensor
    ids: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: list[int] | slice, source: str | None = None) -> VesselSet:
        idx_t = idx if isinstance(idx, slice) else torch.as_tensor(idx, dtype=torch.long)
        ids = self.ids[idx] if isinstance(idx, slice) else [self.ids[i] for i in idx]
        return VesselSet(self.images[idx_t], self.vessels[idx_t], self.fov[idx_t], ids, source or self.source)

    def __add__(self, other: VesselSet) -> VesselSet:
        return VesselSet(
            torch.cat([self.images, other.images]),
            torch.cat([self.vessels, other.vessels]),
            torch.cat([self.fov, other.fov]),
            self.ids + other.ids,
            f"{self.source} + {other.source}",
        )


def _stack(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: int) -> tuple[torch.Tensor, ...]:
    """(image HxWx3 in [0,1], vessels bool, fov bool) -> resized tensors (images in [-1,1])."""
    img = torch.from_numpy(np.stack([i[0] for i in items]).astype(np.float32)).permute(0, 3, 1, 2)
    ves = torch.from_numpy(np.stack([i[1] for i in items]).astype(np.float32))[:, None]
    fov = torch.from_numpy(np.stack([i[2] for i in items]).astype(np.float32))[:, None]
    if img.shape[-2:] != (size, size):
        img = F.interpolate(img, (size, size), mode="bilinear", antialias=True, align_corners=False)
        ves = F.interpolate(ves, (size, size), mode="area")
        fov = F.interpolate(fov, (size, size), mode="area")
    fov_b = fov > 0.5
    img = outside_black(img.clamp(0, 1) * 2 - 1, fov_b)
    return img, ((ves >= VESSEL_COVER - 1e-6) & fov_b).float(), fov_b


def load_layout(root: str | Path, split: str, size: int, ids: list[str] | None = None) -> VesselSet:
    """A split of a dataset in the course layout with ``fundus``, ``mask_vessels``, ``mask_fov``."""
    root = Path(root)
    ids = list(ids) if ids is not None else list_ids(root, split, "fundus")
    items = []
    for i in ids:
        img = read_image(root / split / "fundus" / f"{i}.png")
        if img.ndim != 3:
            raise ValueError(f"{root / split / 'fundus' / (i + '.png')}: expected an RGB photograph")
        ves = read_image(root / split / "mask_vessels" / f"{i}.png", raw=True) > 127
        fov = read_image(root / split / "mask_fov" / f"{i}.png", raw=True) > 127
        if not (img.shape[:2] == ves.shape == fov.shape):
            raise ValueError(
                f"{root / split}: id {i}: photograph {img.shape[:2]}, vessels {ves.shape} and "
                f"fov {fov.shape} differ in size"
            )
        items.append((img, ves, fov))
    if not items:
        raise ValueError(f"{root / split}: no images")
    return VesselSet(*_stack(items, size), ids=ids, source=f"{root.name}/{split}")


def official_drive_dir(base: str | Path | None) -> Path | None:
    """``<base>/DRIVE/training`` (or ``<base>/training``) when it holds DRIVE's official layout, else None."""
    if base is None:
        return None
    for cand in (Path(base) / "DRIVE" / "training", Path(base) / "training"):
        if (cand / "images").is_dir() and (cand / "1st_manual").is_dir() and (cand / "mask").is_dir():
            return cand
    return None


def load_official(folder: str | Path, size: int, ids: list[str] | None = None) -> VesselSet:
    """DRIVE as distributed: ``images/NN_*.tif``, ``1st_manual/NN_manual1.gif``, ``mask/NN_*_mask.gif``."""
    from medsynth.data.realism import load_drive

    rows = load_drive(folder)
    if not rows:
        raise FileNotFoundError(f"no DRIVE photographs (images/*.tif) in {folder}")
    if ids is not None:
        rows = [r for r in rows if r["id"] in set(ids)]
    return VesselSet(
        *_stack([(r["image"], r["vessels"], r["fov"]) for r in rows], size),
        ids=[r["id"] for r in rows],
        source=f"DRIVE {Path(folder).name}",
    )


def phantom_set(n: int, size: int, seed: int = 0, severity: float = 0.0, density: float = 1.6) -> VesselSet:
    """``n`` phantom eyes (seeds ``seed .. seed+n-1``) rendered at ``2 * size`` and resized like DRIVE."""
    from medsynth.data import make_retina

    items = []
    for k in range(n):
        s = make_retina(seed + k, (2 * size, 2 * size), severity=severity, density=density)
        items.append((s.fundus, s.masks["vessels"], s.masks["fov"]))
    return VesselSet(*_stack(items, size), ids=[f"phantom{seed + k}" for k in range(n)], source="phantom")


def drive_protocol(
    data_root: str | Path | None, shared: str | Path | None, size: int
) -> tuple[VesselSet, VesselSet, str] | None:
    """(train, test, protocol sentence) for DRIVE, or None when no DRIVE is reachable.

    ``data_root``: a converted DRIVE (course layout, ``meta.json`` kind ``drive``); ``shared``: a folder that
    may hold the official ``DRIVE/training`` (``../shared/data``). A converted DRIVE with an annotated
    ``test`` split is evaluated on it (DRIVE's official protocol: 20 train, 20 test); otherwise the 20
    training images are split into 15 for training and :data:`HOLDOUT_IDS` for testing.
    """
    if data_root is not None:
        meta = read_meta(data_root)
        if meta.get("kind") != "drive":
            return None
        splits = meta.get("splits", {})
        if "test" in splits and (Path(data_root) / "test" / "mask_vessels").is_dir():
            return (
                load_layout(data_root, "train", size),
                load_layout(data_root, "test", size),
                f"DRIVE official split: {len(splits['train'])} training, {len(splits['test'])} test images",
            )
        ids = splits["train"]
        test_ids = [i for i in ids if i in HOLDOUT_IDS]
        train_ids = [i for i in ids if i not in HOLDOUT_IDS]
        return (
            load_layout(data_root, "train", size, train_ids),
            load_layout(data_root, "train", size, test_ids),
            _holdout_sentence(len(train_ids), test_ids),
        )
    folder = official_drive_dir(shared)
    if folder is None:
        return None
    full = load_official(folder, size)
    test = [k for k, i in enumerate(full.ids) if i in HOLDOUT_IDS]
    train = [k for k, i in enumerate(full.ids) if i not in HOLDOUT_IDS]
    return (full.subset(train), full.subset(test), _holdout_sentence(len(train), [full.ids[k] for k in test]))


def _holdout_sentence(n_train: int, test_ids: list[str]) -> str:
    return (
        f"DRIVE training images only (no official test split present): {n_train} for training, "
        f"ids {', '.join(test_ids)} held out for testing"
    )
