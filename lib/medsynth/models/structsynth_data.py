"""Chapter 04 data: brain slices with their structure maps and masks, lesion labels, and the
synthetic data set of Sec. 4.6 (Fig. 10).

:class:`BrainStructDataset` holds, per slice, the four registered modalities (T1, T2, T1c, FLAIR;
the BRATS2015 setting of Sec. 5.1/5.2.1), each modality's Algorithm-1 structure map ``s_i`` and
Algorithm-2 mask ``m_i`` (for the Eq. 18 pretraining), the FLAIR structure map with the tumour
removed (what the structure generator learns, Sec. 5.2.1 and Fig. 11) with its mask, and the
whole-tumour label ``l`` (labels 1, 2, 4 united — the thesis does not say which BRATS classes its
lesion labels keep; one binary channel is used here).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from medsynth.structure import ALG1_DEFAULTS, ALG2_DEFAULTS, organ_mask, structure_map_steps

__all__ = ["MODALITIES", "BrainStructDataset", "augment_label", "pick_lesions", "SegDataset"]

MODALITIES = ("t1", "t2", "t1c", "flair")


class BrainStructDataset(Dataset):
    """Brain slices (phantoms from ``seeds``, or arrays) with Algorithm 1/2 outputs precomputed.

    Items: ``x`` (4,H,W) in [-1,1]; ``s`` (4,H,W) and ``m`` (4,H,W) in {0,1} per modality;
    ``s_struct`` / ``m_struct`` (1,H,W): the FLAIR map with the lesion removed and its mask;
    ``label`` (1,H,W) whole tumour in {0,1}.
    """

    def __init__(self, seeds=None, size: int = 64, alg1: dict | None = None, alg2: dict | None = None,
                 images: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
        self.alg1 = {**ALG1_DEFAULTS, **(alg1 or {})}
        self.alg2 = {**ALG2_DEFAULTS, **(alg2 or {})}
        if images is None:
            from medsynth.data import make_brain
            samples = [make_brain(int(s), (size, size)) for s in seeds]
            images = np.stack([[b.images[k] for k in MODALITIES] for b in samples]).astype(np.float32)
            labels = np.stack([b.labels > 0 for b in samples]).astype(np.float32)
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
                s[k, i] = st["s"]
                m[k, i] = organ_mask(img, **self.alg2)
                if i == 3:
                    s_struct[k, 0] = st["s_no_lesion"]
        self.s, self.m = torch.from_numpy(s), torch.from_numpy(m)
        self.s_struct = torch.from_numpy(s_struct)
        self.m_struct = self.m[:, 3:4].clone()

    @classmethod
    def from_layout(cls, root, split: str, size: int = 64, limit: int | None = None, **kw) -> "BrainStructDataset":
        """Read ``<root>/<split>/{t1,t2,t1c,flair,labels}/<id>.png`` (the standard layout; BRATS converted to it)."""
        from pathlib import Path

        from skimage.transform import resize

        from medsynth.data.layout import list_ids, read_image
        root = Path(root)
        ids = list_ids(root, split, "flair")[:limit]
        def rd(mod, i, order):
            a = read_image(root / split / mod / f"{i}.png", raw=mod == "labels").astype(np.float32)
            return resize(a, (size, size), order=order, preserve_range=True, anti_aliasing=order > 0)
        imgs = np.stack([[rd(m, i, 1) for m in MODALITIES] for i in ids])
        labels = np.stack([rd("labels", i, 0) > 0 for i in ids]).astype(np.float32)
        return cls(images=imgs, labels=labels, size=size, **kw)

    def __len__(self) -> int:
        return len(self.x01)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return {"x": self.x01[k] * 2 - 1, "s": self.s[k], "m": self.m[k], "s_struct": self.s_struct[k],
                "m_struct": self.m_struct[k], "label": self.label[k]}


def augment_label(label: torch.Tensor, gen: torch.Generator, max_shift: int = 8) -> torch.Tensor:
    """Sec. 4.6: random flip, 90-degree rotation and shift of a (1,H,W) lesion label."""
    lab = label
    if torch.rand((), generator=gen) < 0.5:
        lab = lab.flip(-1)
    lab = torch.rot90(lab, int(torch.randint(0, 4, (), generator=gen)), (-2, -1))
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    return torch.roll(lab, (dy, dx), (-2, -1))


def pick_lesions(pool: torch.Tensor, m: torch.Tensor, gen: torch.Generator, mask_filter: bool = True,
                 augment: bool = True, max_tries: int = 20) -> torch.Tensor:
    """Sec. 4.5: for each background mask in ``m`` (B,1,H,W), a real lesion label from ``pool`` (N,1,H,W).

    With ``mask_filter`` (the thesis's filtering), labels are redrawn until the lesion lies inside the
    organ (``m == 0``); after ``max_tries`` failures the slice gets no lesion. Without it (Table 1 row
    B) the first draw is used, wherever it lands.
    """
    out = torch.zeros_like(m)
    bg = m > 0.5
    for b in range(len(m)):
        for _ in range(max_tries):
            lab = pool[int(torch.randint(0, len(pool), (), generator=gen))].to(m.device)
            if augment:
                lab = augment_label(lab, gen)
            if not mask_filter or not bool((lab.bool() & bg[b]).any()):
                out[b] = lab
                break
    return out


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

