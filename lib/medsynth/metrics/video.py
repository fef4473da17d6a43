"""Video metrics for chapter 05 (Fundus2Video Sec. 3.0.3): FVD, and SSIM / PSNR / LPIPS per frame.

* FVD (Unterthiner et al. 2019, "FVD: A new metric for video generation"): the Frechet distance
  (as FID) between Gaussians fitted to I3D features of real and generated videos. The I3D is
  StyleGAN-V's TorchScript port, called as common_metrics_on_video_quality (used by the official
  Fundus2Video code) calls it: videos (N, 3, T, H, W) in [-1, 1], ``rescale=False, resize=True,
  return_features=True`` -> (N, 400). The official code computes FVD per validation video, i.e.
  from ONE video per set, where the covariance is undefined; here FVD is over the test set.
* Frame-wise paired metrics: each metric of frame t of every generated video against frame t of
  its real video, giving a (T,) curve and its mean.

Videos are float tensors (N, T, C, H, W) in [0, 1], C in {1, 3}.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from medsynth.metrics.fid import fid_from_features
from medsynth.metrics.lpips import FeatureMetric
from medsynth.weights import load_i3d

__all__ = ["i3d_features", "fvd", "framewise"]


def _check_videos(v: Tensor) -> Tensor:
    if not isinstance(v, Tensor) or v.dim() != 5 or v.shape[2] not in (1, 3):
        raise ValueError(f"expected videos (N,T,C,H,W) with C in {{1,3}}, got "
                         f"{tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}")
    lo, hi = float(v.min()), float(v.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"videos must lie in [0,1], got [{lo:.3g}, {hi:.3g}] (generator output? pass (x + 1) / 2)")
    return v


@torch.no_grad()
def i3d_features(videos: Tensor, features: str = "pretrained", seed: int = 0, dims: int = 400,
                 device: torch.device | str | None = None, batch_size: int = 8) -> tuple[np.ndarray, str]:
    """(N, D) float64 features of videos (N,T,C,H,W) in [0,1] and the kind used ("pretrained"|"random").

    ``dims`` only affects the random fallback (the I3D gives 400).
    """
    from medsynth.device import pick_device

    v = _check_videos(videos)
    dev = pick_device("auto") if device is None else torch.device(device)
    net = load_i3d(features, seed, dims, dev)
    out = []
    for i in range(0, len(v), batch_size):
        x = v[i:i + batch_size].to(dev, torch.float32)
        x = x.expand(-1, -1, 3, -1, -1).permute(0, 2, 1, 3, 4) * 2 - 1   # (n, 3, T, H, W) in [-1, 1]
        out.append(net(x, rescale=False, resize=True, return_features=True).double().cpu())
    return torch.cat(out).numpy(), net.features_kind


def fvd(real: Tensor, fake: Tensor, features: str = "pretrained", seed: int = 0, dims: int = 400,
        device: torch.device | str | None = None) -> FeatureMetric:
    """FVD between two sets of videos (N,T,C,H,W) in [0,1]; labelled with the features used.

    Few videos and 400-d features give rank-deficient covariances (a warning says so); published
    FVD uses hundreds to thousands of videos.
    """
    f1, kind = i3d_features(real, features, seed, dims, device)
    f2, _ = i3d_features(fake, kind, seed, dims, device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "FID from", UserWarning)
        value = fid_from_features(f1, f2)
    return FeatureMetric(value, "FVD", kind, "I3D" if kind == "pretrained" else "3D-conv", len(f1))


def framewise(real: Tensor, fake: Tensor, metric: Callable[..., Tensor], **kwargs) -> np.ndarray:
    """Per-frame mean of a paired image metric over videos: (T,) array.

    ``metric(a, b, reduction="none", **kwargs)`` takes (N,C,H,W) in [0,1] (ssim, psnr, lpips).
    """
    _check_videos(real), _check_videos(fake)
    if real.shape != fake.shape:
        raise ValueError(f"videos differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    return np.array([float(torch.as_tensor(metric(real[:, t], fake[:, t], reduction="none", **kwargs)).mean())
                     for t in range(real.shape[1])])
