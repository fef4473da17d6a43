"""Chapter 04 data: brain slices with their structure maps and masks, lesion labels, lesion selection
(Sec. 4.5), conventional augmentation (Table 5 rows 18-23) and the segmenter's data set.

:class:`BrainStructDataset` holds, per slice, the four registered modalities (T1, T2, T1c, FLAIR;
the BRATS2015 setting of Sec. 5.1/5.2.1), each modality's Algorithm-1 structure map ``s_i`` and
Algorithm-2 mask ``m_i``, the FLAIR structure map with the tumour removed (what the structure
generator learns, Sec. 5.2.1 and Fig. 11) with its mask, and the whole-tumour label ``l`` (labels
1, 2, 4 united — the thesis does not say which BRATS classes its lesion labels keep; the author's code
keeps five classes in a softmax, here one binary channel). As the author's ``get_s_and_m_from_image.py``
stores them, every map is ``(1 - m) * s``: structure only inside the organ.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from medsynth.structure import ALG1_DEFAULTS, ALG2_DEFAULTS, organ_mask, structure_map_steps

__all__ = [
    "MODALITIES",
    "BrainStructDataset",
    "shift_zero",
    "augment_label",
    "pick_lesions",
    "conventional_augment",
    "SegDataset",
    "TISSUE_CLASSES",
]

MODALITIES = ("t1", "t2", "t1c", "flair")
#: Tissue classes scored by the modality-contrast check (index = value of ``BrainStructDataset.tissue``).
TISSUE_CLASSES = ("background", "csf", "gm", "wm", "tumour")
_TISSUE_OF = {
    "background": 0,
    "scalp": 0,
    "skull": 0,
    "csf": 1,
    "gm": 2,
    "wm": 3,
    "oedema": 4,
    "necrosis": 4,
    "enhancing": 4,
}


def _tissue_map(sample) -> np.ndarray | None:
    """Hard tissue classes (H,W) of :data:`TISSUE_CLASSES` from a phantom's fractional maps (None if absent)."""
    tissues = getattr(sample, "tissues", None) or {}
    names = [n for n in tissues if n in _TISSUE_OF]
    if not names:
        return None
    frac = np.stack([tissues[n] for n in names])
    return np.asarray([_TISSUE_OF[n] for n in names], np.int64)[frac.argmax(0)]


class BrainStructDataset(Dataset):
    """Brain slices (phantoms from ``seeds``, or arrays) with Algorithm 1/2 outputs precomputed.

    Items: ``x`` (4,H,W) in [-1,1]; ``s`` (4,H,W) and ``m`` (4,H,W) in {0,1} per modality;
    ``s_struct`` / ``m_struct`` (1,H,W): the FLAIR map with the lesion removed and its mask;
    ``label`` (1,H,W) whole tumour in {0,1}. ``tissue`` (N,H,W) int (phantoms only, else None).
    """

    def __init__(
        self,
        seeds=None,
        size: int = 64,
        alg1: dict | None = None,
        alg2: dict | None = None,
        images: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        self.alg1 = {**ALG1_DEFAULTS, **(alg1 or {})}
        self.alg2 = {**ALG2_DEFAULTS, **(alg2 or {})}
        self.tissue = None
        if images is None:
            from medsynth.data import make_brain

            samples = [make_brain(int(s), (size, size)) for s in seeds]
            images = np.stack([[b.images[k] for k in MODALITIES] for b in samples]).astype(np.float32)
            labels = np.stack([b.labels > 0 for b in samples]).astype(np.float32)
            maps = [_tissue_map(b) for b in samples]
            if all(t is not None for t in maps):
                self.tissue = torch.from_numpy(np.stack(maps))
        if labels is None:
            raise ValueError("BrainStructDataset(images=...) needs labels too")
        self.x01 = torch.from_numpy(np.asarray(images, dtype=np.float32))
        self.label = torch.from_numpy(np.asarray(labels, dtype=np.float32))[:, None]
        n = len(self.x01)
        s = np.zeros(self.x01.shape, np.float32)
        m = np.zeros(self.x01.shape, np.float32)
        s_struct = np.zeros((n, 1, *self.x01.shape[-2:]), np.float32)
        for k in range(n):
            for i in range(len(MODALITIES)):
                img = images[k, i]
                st = structure_map_steps(img, **self.alg1, lesion=labels[k] if i == 3 else None)
                m[k, i] = organ_mask(img, **self.alg2)
                s[k, i] = st["s"] * (1 - m[k, i])  # the code stores (1 - mask) * s
                if i == 3:
                    s_struct[k, 0] = st["s_no_lesion"] * (1 - m[k, i])
        self.s, self.m = torch.from_numpy(s), torch.from_numpy(m)
        self.s_struct = torch.from_numpy(s_struct)
        self.m_struct = self.m[:, 3:4].clone()

    @classmethod
    def from_layout(cls, root, split: str, size: int = 64, limit: int | None = None, **kw) -> BrainStructDataset:
        """Slices of ``<root>/<split>/`` in the standard layout, read by :class:`medsynth.data.MultiModalDataset`
        (square slices resized to ``size``; BRATS converted to that layout)."""
        from medsynth.data import MultiModalDataset

        ds = MultiModalDataset(root, split, MODALITIES, resize=size, flip=False)
        items = [ds[i] for i in range(len(ds) if limit is None else min(limit, len(ds)))]
        if not items:
            raise ValueError(f"no slices in {root}/{split}")
        if tuple(items[0]["images"].shape[-2:]) != (size, size):
            raise ValueError(
                f"{root}/{split}/{items[0]['id']}: slices must be square (got "
                f"{tuple(items[0]['images'].shape[-2:])} after resizing to {size})"
            )
        imgs = np.stack([((it["images"] + 1) / 2).numpy() for it in items])
        labels = np.stack([(it["labels"] > 0).numpy() for it in items]).astype(np.float32)
        return cls(images=imgs, labels=labels, size=size, **kw)

    def __len__(self) -> int:
        return len(self.x01)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return {
            "x": self.x01[k] * 2 - 1,
            "s": self.s[k],
            "m": self.m[k],
            "s_struct": self.s_struct[k],
            "m_struct": self.m_struct[k],
            "label": self.label[k],
        }


def shift_zero(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift the last two dims by (dy, dx) pixels, filling with zeros (``torch.roll`` would wrap a lesion
    at one edge round to the other; the author's ``rand_translation`` zero-fills too)."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    if p == 0:
        return x
    big = F.pad(x, (p, p, p, p))
    return big[..., p - dy : p - dy + h, p - dx : p - dx + w]


def augment_label(label: torch.Tensor, gen: torch.Generator | None, max_shift: int = 8) -> torch.Tensor:
    """Sec. 4.6: random flip, 90-degree rotation and shift (zero-filled) of a (1,H,W) lesion label."""
    lab = label
    if torch.rand((), generator=gen) < 0.5:
        lab = lab.flip(-1)
    lab = torch.rot90(lab, int(torch.randint(0, 4, (), generator=gen)), (-2, -1))
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    return shift_zero(lab, dy, dx)


def pick_lesions(
    pool: torch.Tensor,
    m: torch.Tensor,
    gen: torch.Generator | None,
    mask_filter: bool = True,
    augment: bool = True,
    max_tries: int = 20,
) -> torch.Tensor:
    """Sec. 4.5: for each background mask in ``m`` (B,1,H,W), a real lesion label from ``pool`` (N,1,H,W).

    With ``mask_filter`` (the thesis's filtering), labels are redrawn until the lesion lies inside the
    organ (no lesion pixel where ``m == 1``); after ``max_tries`` failures the slice gets no lesion.
    Without it (Table 1 row B) the first draw is used, wherever it lands.
    """
    out = torch.zeros_like(m)
    bg = m > 0.5
    for b in range(len(m)):
        for _ in range(max_tries):
            lab = pool[int(torch.randint(0, len(pool), (), generator=gen))].to(m.device)
            if augment:
                lab = augment_label(lab, gen)
            if not mask_filter or not bool(((lab > 0.5) & bg[b]).any()):
                out[b] = lab
                break
    return out


def conventional_augment(
    images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Table 5 rows 18-23's "enhanced data", after the author's ``DATA_ENHANCEMENT/MRI_enhancement.py``: per
    slice 1-2 random operations among transpose, 90-degree rotation (the code: any angle), zero-filled
    translation by 2-7 px and uniform noise +-0.03 (images only), applied alike to image and label."""
    out_i, out_l = images.clone(), labels.clone()
    for k in range(len(images)):
        x, y = out_i[k], out_l[k]
        for _ in range(int(torch.randint(1, 3, (), generator=gen))):
            op = int(torch.randint(0, 4, (), generator=gen))
            if op == 0:
                x, y = x.transpose(-1, -2), y.transpose(-1, -2)
            elif op == 1:
                r = int(torch.randint(1, 4, (), generator=gen))
                x, y = torch.rot90(x, r, (-2, -1)), torch.rot90(y, r, (-2, -1))
            elif op == 2:
                d = int(torch.randint(2, 8, (), generator=gen)) * (1 if torch.rand((), generator=gen) < 0.5 else -1)
                dy, dx = (d, 0) if torch.rand((), generator=gen) < 0.5 else (0, d)
                # images live in [-1, 1]: shift the [0, 1] version so the fill is black, as the code's zeros
                x, y = shift_zero(x + 1, dy, dx) - 1, shift_zero(y, dy, dx)
            else:
                x = (x + (torch.rand(x.shape, generator=gen) * 0.06 - 0.03)).clamp(-1, 1)
        out_i[k], out_l[k] = x.clone(), y.clone()
    return out_i, out_l


class SegDataset(Dataset):
    """Images (N,C,H,W) in [-1,1] with binary labels (N,1,H,W), for the tumour segmenter (Eq. 22, Table 5)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images.float(), labels.float()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[k], "label": self.labels[k]}
