"""The course's ONE retinal vessel segmenter: a U-Net trained on DRIVE (and/or phantom trees), scored in the FOV.

RetiGAN (chapter 03) segments the vessel tree with a U-Net (Ronneberger et al. 2015) and feeds it to its
generator; it segments the generated photographs again to check that the tree survived. Chapter 04's
Table 6 uses the same network. The architecture follows the RetiGAN walk-through's code (``UNet``):

* encoder: 5 ``DualConv`` levels (reflection pad 2, two 3x3 convs without padding -- size-preserving --
  each followed by InstanceNorm (no affine) and ReLU), max-pool 2 between levels, widths
  ``width * (1, 2, 4, 8, 16)`` (64 ... 1024 in the walk-through);
* decoder: 4 levels of 2x2 stride-2 transposed conv, concatenation with the encoder feature of the same
  size, ``DualConv``; a 1x1 conv to one channel. The walk-through ends in a sigmoid; this module returns
  **logits** (numerically stable BCE) and :func:`predict` applies the sigmoid.

Loss: binary cross-entropy (the U-Net's) plus ``dice_weight`` x soft Dice -- a choice of this course,
not the paper's (whose loss we could not find): with a few hundred CPU steps and ~10 % vessel pixels, BCE
alone sits at low sensitivity for a long time. Adam, lr 1e-3 (our choice; not given in the walk-through).

API: :func:`build`, :func:`train` (through the course's :class:`~medsynth.training.Trainer`: checkpointed,
resumable), :func:`predict` (probabilities), :func:`evaluate_fov` (DRIVE scores inside the FOV, from
:mod:`medsynth.metrics.vessel`). Data: :class:`VesselSet` from :mod:`medsynth.models.vessel_data`.

Typical use (chapter 03; chapter 04's Table 6 the same way)::

    train, test, protocol = vessel_data.drive_protocol(data_root, shared_data_dir(), size=64)
    net = build(width=8, seed=0)
    train(net, train, steps=300, out_dir=run_dir / "segmenter")
    scores = evaluate_fov(net, test)          # {"auc", "accuracy", "sensitivity", "specificity", "dice", ...}
    prob = predict(net, images)               # (N,1,H,W) vessel probabilities for any photographs in [-1,1]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from medsynth.metrics.vessel import fov_scores
from medsynth.models.vessel_data import VesselSet
from medsynth.training import GANTask, StepContext, TrainConfig, Trainer, adam, eval_mode

__all__ = ["VesselUNet", "SegmenterTask", "VesselCrops", "build", "train", "predict", "evaluate_fov", "THESIS_DRIVE"]

#: The structure-map thesis's (chapter 04) DRIVE baseline for its U-Net: the numbers to stand beside.
THESIS_DRIVE = {"auc": 0.9705, "accuracy": 0.9477, "sensitivity": 0.7781}


class DualConv(nn.Sequential):
    """(reflect pad 2) -> conv3x3 -> IN -> ReLU -> conv3x3 -> IN -> ReLU: same size out as in."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.ReflectionPad2d(2),
            nn.Conv2d(in_ch, out_ch, 3),
            nn.InstanceNorm2d(out_ch),
            nn.ReLU(True),
            nn.Conv2d(out_ch, out_ch, 3),
            nn.InstanceNorm2d(out_ch),
            nn.ReLU(True),
        )


class VesselUNet(nn.Module):
    """U-Net with ``depth`` poolings (4 in the walk-through); input sides must be divisible by ``2**depth``."""

    def __init__(self, in_ch: int = 3, width: int = 64, depth: int = 4) -> None:
        super().__init__()
        chs = [width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.enc = nn.ModuleList(DualConv(a, b) for a, b in zip([in_ch] + chs[:-1], chs, strict=True))
        self.up = nn.ModuleList(nn.ConvTranspose2d(chs[i + 1], chs[i], 2, 2) for i in reversed(range(depth)))
        self.dec = nn.ModuleList(DualConv(2 * chs[i], chs[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(chs[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = 2**self.depth
        if x.shape[-1] % k or x.shape[-2] % k:
            raise ValueError(f"VesselUNet: input {tuple(x.shape[-2:])} must be divisible by 2**depth = {k}")
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], 1))  # [upsampled, encoder feature], as the walk-through
        return self.out(x)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - (2 sum(p t) + eps) / (sum p + sum t + eps)`` over the batch, ``p = sigmoid(logits)``."""
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * target).sum() + eps) / (p.sum() + target.sum() + eps)


class SegmenterTask(GANTask):
    """The segmenter as a task of the shared loop: batch keys ``image`` (B,3,H,W) in [-1,1], ``vessels`` (B,1,H,W)."""

    def __init__(self, net: nn.Module, lr: float = 1e-3, dice_weight: float = 1.0) -> None:
        self.nets = {"seg": net}
        self.opts = {"seg": adam(net.parameters(), lr, betas=(0.9, 0.999))}  # torch's default betas
        self.dice_weight = dice_weight

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            logits = self.nets["seg"](batch["image"]).float()
        bce = F.binary_cross_entropy_with_logits(logits, batch["vessels"])
        dl = soft_dice_loss(logits, batch["vessels"])
        ctx.update(bce + self.dice_weight * dl, "seg")
        return {"bce": bce.detach(), "soft_dice": dl.detach()}

    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        return [batch["image"], torch.sigmoid(self.nets["seg"](batch["image"])) * 2 - 1, batch["vessels"] * 2 - 1]


class VesselCrops(Dataset):
    """Random ``crop`` windows (None: whole images) with flips from a :class:`VesselSet`; ``per_image`` per epoch."""

    def __init__(self, data: VesselSet, crop: int | None = None, per_image: int = 8, flip: bool = True) -> None:
        self.data, self.crop, self.flip = data, crop, flip
        self.per = per_image if crop is not None else 1
        h, w = data.images.shape[-2:]
        if crop is not None and (crop > h or crop > w):
            raise ValueError(f"crop {crop} larger than the images ({h}x{w})")

    def __len__(self) -> int:
        return len(self.data) * self.per

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = i // self.per
        img, ves = self.data.images[j], self.data.vessels[j]
        if self.crop is not None:
            h, w = img.shape[-2:]
            y, x = (int(torch.randint(0, n - self.crop + 1, ())) for n in (h, w))
            img, ves = img[:, y : y + self.crop, x : x + self.crop], ves[:, y : y + self.crop, x : x + self.crop]
        if self.flip:
            f = torch.rand(2)
            dims = [d for d, flag in ((-1, f[0] < 0.5), (-2, f[1] < 0.5)) if flag]
            if dims:
                img, ves = img.flip(dims), ves.flip(dims)
        return {"image": img.contiguous(), "vessels": ves.contiguous()}


def build(width: int = 64, depth: int = 4, in_ch: int = 3, seed: int = 0) -> VesselUNet:
    """A freshly initialised segmenter (PyTorch's default init, seeded; the global RNG is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VesselUNet(in_ch, width, depth)


def train(
    net: nn.Module,
    data: VesselSet | Dataset,
    steps: int,
    out_dir: str | Path,
    batch_size: int = 4,
    crop: int | None = None,
    lr: float = 1e-3,
    dice_weight: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    log_every: int = 10,
) -> list[dict[str, Any]]:
    """Train ``net`` for ``steps`` Adam steps on ``data`` (a :class:`VesselSet`, cut by :class:`VesselCrops`, or
    any Dataset with ``image``/``vessels`` items); checkpoints in ``out_dir``. Returns the loss log."""
    ds = VesselCrops(data, crop) if isinstance(data, VesselSet) else data
    cfg = TrainConfig(
        steps=steps,
        out_dir=out_dir,
        batch_size=batch_size,
        log_every=log_every,
        ckpt_every=steps,
        device=device,
        seed=seed,
        resume=resume,
        progress=progress,
    )
    return Trainer(SegmenterTask(net, lr, dice_weight), ds, cfg).fit()


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
    """Vessel probabilities (N,1,H,W) on the CPU for images (N,3,H,W) in [-1,1]; eval mode, restored after."""
    dev = next(net.parameters()).device
    with eval_mode(net):
        return torch.cat(
            [
                torch.sigmoid(net(images[k : k + batch_size].to(dev)).float()).cpu()
                for k in range(0, len(images), batch_size)
            ]
        )


def evaluate_fov(
    net: nn.Module | None, data: VesselSet, prob: torch.Tensor | None = None, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, accuracy, sensitivity, specificity, Dice inside ``data.fov`` against ``data.vessels``.

    Pass ``net`` (its :func:`predict` on ``data.images`` is scored) or ready ``prob`` (e.g. an input-free
    baseline such as the mean training label).
    """
    if prob is None:
        if net is None:
            raise ValueError("evaluate_fov needs a network or ready probabilities")
        prob = predict(net, data.images)
    return fov_scores(prob, data.vessels > 0.5, data.fov, threshold)
