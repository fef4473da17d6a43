"""Why chapter 05's quick model does (not) beat the mean training video: diagnostics computed in the run.

The course rule: in quick mode the main model beats the mean-target baseline on the primary metric (PSNR) or the
notebook says with numbers why not. :func:`diagnose` gives those numbers, all scored by the same
:func:`medsynth.metrics.psnr` / :func:`medsynth.metrics.ssim` per frame on the same test eyes:

* ``rollout`` -- the trained Fundus2Video generator as evaluated (autoregressive, triple-frame averaging);
* ``no averaging`` -- the same rollout, each frame from one window (what triple-frame averaging buys);
* ``teacher forced`` -- every window fed the *ground-truth* previous window (what the autoregressive drift costs);
* ``L1 U-Net`` -- a plain regression network (pix2pix's U-Net, photo -> 12 frames at once, L1 loss, no GAN) trained
  on the same eyes for the same number of iterations: roughly how much of the video the photo determines at this
  size and set size, for a model that optimises the pixel error directly;
* ``mean training video`` / ``random training video`` -- the input-free baselines;
* ``nearest training video (oracle)`` -- per test eye, the training video closest to its true video (it peeks at
  the answer): how far apart the eyes are, i.e. the room there is above the mean.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medsynth.models import fundus2video as f2v
from medsynth.models.pix2pix import UNetGenerator
from medsynth.training import eval_mode

__all__ = ["teacher_forced_videos", "train_l1_unet", "diagnose"]


@torch.no_grad()
def teacher_forced_videos(G: torch.nn.Module, cf: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Frame k = channel 0 of window k predicted from the ground-truth window k-1 (the CF photo for k = 0).
    ``cf`` (N,3,H,W) and ``frames`` (N,T,1,H,W) in [-1,1]; returns (N,T,1,H,W) in [-1,1]."""
    fr, T, out = frames[:, :, 0], frames.shape[1], []
    with eval_mode(G):
        for n in range(T):
            prev = cf if n == 0 else fr[:, f2v.window_indices(n - 1, T)]
            out.append(G(cf, prev)[0][:, :1])
    return torch.stack(out, 1)


def train_l1_unet(train_ds: Dataset, steps: int, lr: float = 1e-3, batch_size: int = 2, seed: int = 0,
                  ngf: int = 16) -> UNetGenerator:
    """A pix2pix U-Net (6 levels, instance norm, no dropout) from the photo to all T frames, L1 loss, Adam."""
    item = train_ds[0]
    T, size = item["frames"].shape[0], item["frames"].shape[-1]
    levels = min(6, int(np.log2(size)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNetGenerator(3, T, num_downs=max(levels, 5), ngf=ngf, norm="instance", dropout=0.0)
        opt = torch.optim.Adam(net.parameters(), lr, betas=(0.5, 0.999))
        loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=True)
        step = 0
        while step < steps:
            for b in loader:
                loss = (net(b["src"]) - b["frames"][:, :, 0]).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step >= steps:
                    break
    return net.eval()


def _ps(real01: torch.Tensor, fake01: torch.Tensor) -> dict[str, float]:
    from medsynth.metrics import framewise, psnr, ssim

    f = fake01.float().clamp(0, 1)
    return {"PSNR": float(framewise(real01, f, psnr).mean()), "SSIM": float(framewise(real01, f, ssim).mean())}


def diagnose(task: Any, train_ds: Dataset, train_eval: Dataset, test_ds: Dataset, steps: int, seed: int = 0,
             unet_lr: float = 1e-3) -> dict[str, dict[str, float]]:
    """PSNR / SSIM (ours, [0,1]) of the rows in the module docstring, on ``test_ds``."""
    from medsynth.evidence import BASELINES, baseline_predictions

    cf, real01 = f2v.photos_and_videos(test_ds)
    _, train01 = f2v.photos_and_videos(train_eval)
    G = task.nets["G"]
    dev = next(G.parameters()).device
    rows: dict[str, dict[str, float]] = {}
    rows["rollout (as evaluated)"] = _ps(real01, (task.generate(cf.to(dev), real01.shape[1]).cpu() + 1) / 2)
    rows["rollout, no averaging"] = _ps(real01, (task.generate(cf.to(dev), real01.shape[1], False).cpu() + 1) / 2)
    tf = teacher_forced_videos(G, cf.to(dev), (real01 * 2 - 1).to(dev)).cpu()
    rows["teacher forced (GT previous window)"] = _ps(real01, (tf + 1) / 2)
    net = train_l1_unet(train_ds, steps, unet_lr, seed=seed)
    with torch.no_grad():
        rows[f"L1 U-Net, {steps} iterations"] = _ps(real01, (net(cf)[:, :, None] + 1) / 2)
    base = baseline_predictions(train01, len(real01), seed=seed)
    rows["mean training video"] = _ps(real01, base[BASELINES[0]])
    rows["random training video"] = _ps(real01, base[BASELINES[1]])
    d = ((real01[:, None] - train01[None]) ** 2).flatten(2).mean(2)           # (n_test, n_train)
    rows["nearest training video (oracle)"] = _ps(real01, train01[d.argmin(1)])
    return rows
