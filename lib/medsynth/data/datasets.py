"""torch Datasets over the layout of :mod:`medsynth.data.layout`, with the papers' augmentations.

Every item is a dict of tensors (default collate works); images are float32 in [-1, 1] (tanh
generator range), masks float32 {0, 1}, labels int64. Randomness (crop position, flips) comes from
torch's global generator, which the training loop seeds per worker, so runs are repeatable.
Images are decoded once and kept in memory as uint8 (17 Isfahan-size pairs are ~30 MB).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from medsynth.data.layout import list_ids, read_image, read_meta

__all__ = ["PairedDataset", "SequenceDataset", "MultiModalDataset"]


def _to_chw(a: np.ndarray) -> torch.Tensor:
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class _Base(Dataset):
    def __init__(self, root: str | Path, split: str, resize: int | None, crop: int | None, flip: bool) -> None:
        self.root, self.split = Path(root), split
        self.meta = read_meta(self.root)
        self.resize, self.crop, self.flip = resize, crop, flip
        self._cache: dict[tuple[str, str], torch.Tensor] = {}

    def _load(self, rel: str, key: str) -> torch.Tensor:
        """uint8 (C,H,W), resized once (shorter side = ``resize``) and cached."""
        k = (rel, key)
        if k not in self._cache:
            a = read_image(self.root / self.split / rel, raw=True)
            t = _to_chw(a)
            if self.resize is not None:
                h, w = t.shape[-2:]
                sc = self.resize / min(h, w)
                size = (max(1, round(h * sc)), max(1, round(w * sc)))
                mode = "nearest" if key == "nearest" else "bilinear"
                t = F.interpolate(
                    t[None].float(),
                    size=size,
                    mode=mode,
                    **({} if mode == "nearest" else {"antialias": True, "align_corners": False}),
                )[0]
                t = t.round().clamp(0, 255).to(torch.uint8)
            self._cache[k] = t
        return self._cache[k]

    def _window(
        self, h: int, w: int, where: str, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int]:
        """Random crop window (or the whole image); ``generator`` None: torch's global generator."""
        if self.crop is None:
            return 0, 0, h, w
        c = int(self.crop)
        if c > h or c > w:
            raise ValueError(f"crop {c} larger than image {h}x{w} ({where}); lower crop or raise resize")
        y0 = int(torch.randint(0, h - c + 1, (), generator=generator).item())
        x0 = int(torch.randint(0, w - c + 1, (), generator=generator).item())
        return y0, x0, c, c

    def _flips(self) -> tuple[bool, bool]:
        if not self.flip:
            return False, False
        f = torch.rand(2)
        return bool(f[0] < 0.5), bool(f[1] < 0.5)

    @staticmethod
    def _apply(t: torch.Tensor, win: tuple[int, int, int, int], flips: tuple[bool, bool]) -> torch.Tensor:
        y0, x0, h, w = win
        t = t[..., y0 : y0 + h, x0 : x0 + w]
        if flips[0]:
            t = t.flip(-1)
        if flips[1]:
            t = t.flip(-2)
        return t.contiguous()


def _img(t: torch.Tensor) -> torch.Tensor:
    return t.float().div(127.5).sub(1.0)


class PairedDataset(_Base):
    """Registered (or nearly) image pairs, e.g. fundus -> angio (Fundus2Angio), t1_motion -> t1 (MedGAN).

    ``crops_per_image`` random ``crop`` windows per pair, ``len = n_pairs * crops_per_image``: by default a
    fresh window (and flips) each time an item is read; ``fixed_crops=seed`` draws every item's window
    once, from ``seed`` and the item's index, so item ``i`` is always the same crop -- Fundus2Angio's recipe
    (01_fundus2angio Sec. 4, official ``random_crop.py``: 50 fixed 512 crops per pair written to disk,
    no flips; use ``flip=False``). ``crop=None`` gives whole
    images (``crops_per_image`` is then ignored). ``resize`` scales the shorter side first (quick
    CPU runs). ``masks``: names of ``mask_<name>`` folders cropped along, as ``mask_<name>`` (1,h,w).
    Items: ``{"src": (C,h,w), "dst": (C,h,w)`` in [-1,1], ``"id": str}``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        src: str = "fundus",
        dst: str = "angio",
        crop: int | None = 512,
        crops_per_image: int = 50,
        resize: int | None = None,
        flip: bool = True,
        masks: Iterable[str] = (),
        fixed_crops: int | None = None,
    ) -> None:
        super().__init__(root, split, resize, crop, flip)
        self.src, self.dst, self.masks = src, dst, tuple(masks)
        self.fixed_crops = fixed_crops
        self.ids = list_ids(self.root, split, src)
        self.per = int(crops_per_image) if crop is not None else 1
        for m in (src, dst):
            p = self.root / split / m
            if not p.is_dir():
                raise FileNotFoundError(f"modality folder missing: {p}")

    def __len__(self) -> int:
        return len(self.ids) * self.per

    def __getitem__(self, i: int) -> dict:
        iid = self.ids[i // self.per]
        a = self._load(f"{self.src}/{iid}.png", "img")
        b = self._load(f"{self.dst}/{iid}.png", "img")
        if a.shape[-2:] != b.shape[-2:]:
            raise ValueError(
                f"{self.root / self.split}: {self.src}/{iid}.png {tuple(a.shape[-2:])} and "
                f"{self.dst}/{iid}.png {tuple(b.shape[-2:])} differ in size"
            )
        gen = None if self.fixed_crops is None else torch.Generator().manual_seed(self.fixed_crops * 1_000_003 + i)
        win, fl = self._window(*a.shape[-2:], where=f"{self.src}/{iid}.png", generator=gen), self._flips()
        out = {"src": _img(self._apply(a, win, fl)), "dst": _img(self._apply(b, win, fl)), "id": iid}
        for m in self.masks:
            out[f"mask_{m}"] = (self._apply(self._load(f"mask_{m}/{iid}.png", "nearest"), win, fl) > 127).float()
        return out


class SequenceDataset(_Base):
    """Fundus photo + its FA frames (Fundus2Video, 05_fundus2video Sec. 3.0.1: 12 frames, 4 per phase).

    Items: ``{"src": (3,h,w), "frames": (T,1,h,w)`` in [-1,1], ``"times": (T,)`` (normalised study
    time), ``"id"}`` and, when the folder has them (phantoms), ``"leakage": (T,1,h,w)`` {0,1}.
    ``n_frames`` picks that many frames evenly (None: all). Crops/flips apply to all frames alike.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        src: str = "fundus",
        n_frames: int | None = None,
        crop: int | None = None,
        resize: int | None = None,
        flip: bool = True,
    ) -> None:
        super().__init__(root, split, resize, crop, flip)
        self.src = src
        self.ids = list_ids(self.root, split, src)
        first = self.root / split / "frames" / self.ids[0]
        nk = len(sorted(first.glob("*.png")))
        if nk == 0:
            raise FileNotFoundError(f"no frames in {first}")
        self.frame_idx = (
            list(range(nk))
            if n_frames is None
            else sorted(set(np.linspace(0, nk - 1, int(n_frames)).round().astype(int).tolist()))
        )
        times = self.meta.get("frame_times") or list(np.linspace(0, 1, nk))
        self.times = torch.tensor([float(times[k]) for k in self.frame_idx])
        self.has_leak = (self.root / split / "frames_leakage").is_dir()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        iid = self.ids[i]
        a = self._load(f"{self.src}/{iid}.png", "img")
        win, fl = self._window(*a.shape[-2:], where=f"{self.src}/{iid}.png"), self._flips()
        frames = []
        for k in self.frame_idx:
            f = self._load(f"frames/{iid}/{k:02d}.png", "img")
            if f.shape[-2:] != a.shape[-2:]:
                raise ValueError(
                    f"frame {self.root / self.split / 'frames' / iid / f'{k:02d}.png'} "
                    f"{tuple(f.shape[-2:])} differs from {self.src} {tuple(a.shape[-2:])}"
                )
            frames.append(_img(self._apply(f, win, fl)))
        out = {
            "src": _img(self._apply(a, win, fl)),
            "frames": torch.stack(frames),
            "times": self.times.clone(),
            "id": iid,
        }
        if self.has_leak:
            out["leakage"] = torch.stack(
                [
                    (self._apply(self._load(f"frames_leakage/{iid}/{k:02d}.png", "nearest"), win, fl) > 127).float()
                    for k in self.frame_idx
                ]
            )
        return out


class MultiModalDataset(_Base):
    """Registered MRI contrasts + BraTS labels + brain mask (MultiModal synthesis, chapter 04).

    Items: ``{"images": (M,h,w)`` in [-1,1] in ``modalities`` order, ``"labels": (h,w)`` int64 with
    BraTS values 0/1/2/4, ``"mask": (1,h,w)`` {0,1}, ``"id"}``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        modalities: Iterable[str] = ("t1", "t2", "t1c", "flair"),
        crop: int | None = None,
        resize: int | None = None,
        flip: bool = True,
    ) -> None:
        super().__init__(root, split, resize, crop, flip)
        self.modalities = tuple(modalities)
        self.ids = list_ids(self.root, split, self.modalities[0])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        iid = self.ids[i]
        ims = [self._load(f"{m}/{iid}.png", "img") for m in self.modalities]
        for m, t in zip(self.modalities, ims, strict=True):
            if t.shape != ims[0].shape:
                raise ValueError(
                    f"{self.root / self.split / m / (iid + '.png')} {tuple(t.shape)} differs from "
                    f"{self.modalities[0]} {tuple(ims[0].shape)}"
                )
        win, fl = self._window(*ims[0].shape[-2:], where=f"{self.modalities[0]}/{iid}.png"), self._flips()
        images = torch.cat([_img(self._apply(t, win, fl)) for t in ims])
        labels = self._apply(self._load(f"labels/{iid}.png", "nearest"), win, fl)[0].long()
        mask = (self._apply(self._load(f"mask_brain/{iid}.png", "nearest"), win, fl) > 127).float()
        return {"images": images, "labels": labels, "mask": mask, "id": iid}
