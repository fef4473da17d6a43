"""Chapter 05's dataset (Fundus2Video, 05_fundus2video Sec. 3.0.1-3.0.2): a CF photo, its FFA video and two masks.

:class:`VideoDataset` wraps :class:`medsynth.data.SequenceDataset` (12 frames per eye, 4 per phase on the phantoms)
and adds the knowledge mask (Sec. 2.2) and the ground-truth lesion mask (Table 1's "GT Lesion Seg" row).
Augmentation (``augment``):

* ``"flip"``: a random horizontal flip of photo, frames and masks alike (quick/standard presets);
* ``"paper"``: Sec. 3.0.2's "random cropping, scaling, and color augmentation", without flips (the paper names
  none). Crop and scale follow the official ``aligned_dataset_fundus2video_tempo.py``: a random box whose corners
  are ``x ~ U[0, w/1.5]``, ``x2 ~ U[x + w/3, w]`` (likewise in y), cut from every frame and resized back to the
  working size. Colour: brightness, contrast and saturation of the photo scaled by factors in [0.8, 1.2] (the
  paper gives no range and the official code has none: our choice). The knowledge mask is computed after the
  crop, from the cropped first and last frames, as the official code does;
* ``"none"``: the eyes as stored (evaluation, baselines).

Not reproduced: the official loader draws 4 frames per phase at random from each eye's (longer) series every epoch;
our eyes store exactly 12 frames, so every epoch sees the same 12.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from medsynth.knowledge import KM_THRESHOLD, knowledge_mask

__all__ = ["VideoDataset", "AUGMENTATIONS", "COLOUR_JITTER"]

AUGMENTATIONS = ("flip", "paper", "none")
COLOUR_JITTER = 0.2  # brightness / contrast / saturation factors in [1 - 0.2, 1 + 0.2] ("paper" augmentation)


def _crop_box(h: int, w: int) -> tuple[int, int, int, int]:
    """The official random box: ``x ~ U[0, w//1.5]``, ``x2 ~ U[x + w//3, w]`` (inclusive), likewise in y."""

    def axis(n: int) -> tuple[int, int]:
        a = int(torch.randint(0, int(n // 1.5) + 1, ()))
        b = int(torch.randint(min(a + n // 3, n), n + 1, ()))
        return a, max(b, a + 1)

    y0, y1 = axis(h)
    x0, x1 = axis(w)
    return y0, y1, x0, x1


def _colour(src: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation jitter of a (3,H,W) photo in [-1,1] (torchvision's definitions)."""
    from torchvision.transforms import functional as TF

    x = (src + 1) / 2
    f = 1 + COLOUR_JITTER * (2 * torch.rand(3) - 1)
    x = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x, float(f[0])), float(f[1])), float(f[2]))
    return x.clamp(0, 1) * 2 - 1


class VideoDataset(Dataset):
    """CF photo + FA sequence (:class:`medsynth.data.SequenceDataset`) + the two masks of Table 1.

    Adds ``km``: the knowledge mask (Sec. 2.2) of this item's first and last frames at the working
    resolution (official: computed after resizing to 512), and ``lesion``: the ground-truth lesion
    mask (``mask_lesions``; zeros when the folder has none, e.g. real data). ``augment`` as in the module
    docstring (``flip`` is the older spelling: ``flip=False`` means ``augment="none"``).
    Items: ``src, frames, km, lesion, times, id``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        resize: int | None = None,
        flip: bool = True,
        n_frames: int | None = None,
        threshold: float = KM_THRESHOLD,
        augment: str | None = None,
    ) -> None:
        from medsynth.data import SequenceDataset

        augment = augment or ("flip" if flip else "none")
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
        self.seq = SequenceDataset(root, split, n_frames=n_frames, crop=None, resize=resize, flip=False)
        self.augment, self.threshold = augment, threshold
        self.root, self.split = Path(root), split
        self._lesion: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.seq)

    def _lesion_mask(self, iid: str, size: tuple[int, int]) -> torch.Tensor:
        if iid not in self._lesion:
            p = self.root / self.split / "mask_lesions" / f"{iid}.png"
            if p.is_file():
                from medsynth.data import read_image

                m = torch.from_numpy(np.asarray(read_image(p, raw=True)) > 127).float()[None, None]
                m = F.interpolate(m, size=size, mode="nearest")[0]
            else:
                m = torch.zeros(1, *size)
            self._lesion[iid] = m
        return self._lesion[iid]

    def _crop_scale(self, item: dict[str, Any]) -> None:
        size = tuple(item["frames"].shape[-2:])
        y0, y1, x0, x1 = _crop_box(*size)
        for key, mode in (("src", "bilinear"), ("frames", "bilinear"), ("lesion", "nearest")):
            v = item[key][..., y0:y1, x0:x1]
            flat = v.reshape(-1, 1, *v.shape[-2:]) if key == "frames" else v[None]
            out = F.interpolate(
                flat.float(), size=size, mode=mode, **({} if mode == "nearest" else {"align_corners": False})
            )
            item[key] = out.reshape(item[key].shape) if key == "frames" else out[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.seq[i])
        item["lesion"] = self._lesion_mask(item["id"], tuple(item["frames"].shape[-2:])).clone()
        item.pop("leakage", None)  # ground truth for analysis only; the model never sees it
        if self.augment == "paper":
            self._crop_scale(item)
            item["src"] = _colour(item["src"])
        frames = item["frames"]
        item["km"] = knowledge_mask(frames[0], frames[-1], self.threshold, (-1.0, 1.0)).float()
        if self.augment == "flip" and float(torch.rand(())) < 0.5:
            for key in ("src", "frames", "km", "lesion"):
                item[key] = item[key].flip(-1)
        return item
