"""MedGAN's three paired tasks on the brain phantom (chapter 02; Armanious et al. 2020, Sec. III-A).

Every slice comes from :func:`medsynth.data.make_brain` and its MedGAN modalities from
:func:`medsynth.data.degrade.medgan_set`; this module only decides **which image is the input and which the
target** of each task, and stacks them as tensors:

=========  =========================  ==================  =======================================
task       input (``src``)            target (``dst``)    the paper's dataset
=========  =========================  ==================  =======================================
pet2ct     ``pet`` (full-dose PET)    ``ct``              PET/CT, 38 patients, 1935 train / 414 test
motion     ``t1_motion`` (k-space     ``t1``              11 volunteers, 1445 train / 556 test
           rigid motion)
denoise    ``pet_low`` (~1/16 counts) ``pet``             11420 train / 4411 test
=========  =========================  ==================  =======================================

For the explorer, :func:`degrade` re-applies one task's degradation at a chosen severity (motion amplitude,
PET count level) with :func:`~medsynth.data.degrade.motion_kspace` / ``low_count_poisson``; at the defaults
(``severity=1``) it uses medgan_set's parameters (3 moves, 4 px, 3 deg; 25 counts).
Images are (N, 1, H, W) float tensors in [-1, 1], the course's convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from medsynth.data.brain import BrainSample, make_brain
from medsynth.data.degrade import low_count_poisson, medgan_set, motion_kspace, pet_like

__all__ = ["TASKS", "TASK_TITLES", "MedGANData", "make_medgan_data", "PairTensorDataset", "degrade", "TEST_ID_OFFSET"]

#: task -> (input modality, target modality) in :func:`medgan_set`'s names (t1 is the clean MR image)
TASKS: dict[str, tuple[str, str]] = {
    "pet2ct": ("pet", "ct"),
    "motion": ("t1_motion", "t1"),
    "denoise": ("pet_low", "pet"),
}
TASK_TITLES = {"pet2ct": "PET -> CT translation", "motion": "MR motion correction", "denoise": "PET denoising"}
#: test slices use phantom seeds from here on, so train and test anatomy never coincide
TEST_ID_OFFSET = 100_000


def _modalities(b: BrainSample, seed: int) -> dict[str, np.ndarray]:
    return {**medgan_set(b, seed), "t1": b.images["t1"]}


@dataclass
class MedGANData:
    """Stacked modalities (name -> (N,1,H,W) in [-1,1]) of one split; ``pair(task)`` gives (src, dst)."""

    images: dict[str, torch.Tensor]
    seeds: list[int]

    def pair(self, task: str) -> tuple[torch.Tensor, torch.Tensor]:
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        s, d = TASKS[task]
        return self.images[s], self.images[d]

    def __len__(self) -> int:
        return len(self.seeds)


def make_medgan_data(n: int, size: int, seed: int = 0, split: str = "train") -> MedGANData:
    """``n`` phantom slices of ``size`` x ``size`` with all MedGAN modalities; ``split`` picks disjoint seeds."""
    if n < 1 or size < 16:
        raise ValueError(f"make_medgan_data: need n >= 1 and size >= 16, got n={n}, size={size}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = seed * 1000 + (TEST_ID_OFFSET if split == "test" else 0)
    seeds = [base + i for i in range(n)]
    mods = [_modalities(make_brain(s, size=(size, size)), s) for s in seeds]
    images = {k: torch.from_numpy(np.stack([m[k] for m in mods]))[:, None] * 2 - 1 for k in mods[0]}
    return MedGANData(images, seeds)


class PairTensorDataset(Dataset):
    """``{"src": (1,H,W), "dst": (1,H,W)}`` items from two stacked tensors (the Trainer's batch format)."""

    def __init__(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        if src.shape[0] != dst.shape[0] or src.shape[-2:] != dst.shape[-2:]:
            raise ValueError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} are not paired")
        self.src, self.dst = src.float(), dst.float()

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"src": self.src[i], "dst": self.dst[i]}


def degrade(b: BrainSample, task: str, severity: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) in [0,1] for one slice with the degradation scaled by ``severity``.

    motion: ``max_shift = 4 * severity`` px and ``max_rot = 3 * severity`` deg (0 = no motion);
    denoise: ``counts = 25 / severity`` (severity 2 = half the counts); pet2ct has no severity knob.
    """
    rng = np.random.default_rng([int(seed), 3303])
    if task == "motion":
        src = motion_kspace(b.images["t1"], rng, 3, 4.0 * severity, 3.0 * severity) if severity > 0 else b.images["t1"]
        return src, b.images["t1"]
    full = _modalities(b, seed)
    if task == "denoise":
        return low_count_poisson(pet_like(b), 25.0 / max(severity, 1e-3), rng), full["pet"]
    if task == "pet2ct":
        return full["pet"], full["ct"]
    raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
