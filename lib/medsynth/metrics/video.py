"""Video metrics for chapter 05 (Fundus2Video Sec. 3.0.3): FVD, and SSIM / PSNR / LPIPS per frame.

* FVD (Unterthiner et al. 2019, "FVD: A new metric for video generation"): the Frechet distance
  (as FID) between Gaussians fitted to I3D features of real and generated videos. The I3D is
  StyleGAN-V's TorchScript port, fed as common_metrics_on_video_quality (the metric code the official
  Fundus2Video code calls, ``fvd/styleganv/fvd.py``) feeds it: :func:`i3d_preprocess` scales each
  video's shorter side to 224 (bilinear, ``align_corners=False``), centre-crops 224 x 224 and maps
  ``v -> (v - 0.5) * 2``; the network is then called with ``rescale=False, resize=False,
  return_features=True`` -> (N, 400).
* Two protocols. ``fvd`` (ours): one distance between the test SET of real and of generated videos,
  full length. ``fvd_per_video`` (the official evaluation): common_metrics' ``frechet_distance`` on
  ONE video per set -- with a single sample there is no covariance, so it is ``||f(real) - f(fake)||^2``
  -- for every clip length 10..T (``calculate_fvd``), averaged (``np.nanmean``) and then averaged over
  the test videos. Only the second is what Table 1 reports; set-level FVD is never comparable to it.
* Frame-wise paired metrics: each metric of frame t of every generated video against frame t of
  its real video, giving a (T,) curve and its mean.

Videos are float tensors (N, T, C, H, W), C in {1, 3}, in ``value_range`` ((0, 1) by default; the
official convention passes (-1, 1) videos to these same functions, see :mod:`medsynth.metrics.video_eval`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medsynth.metrics.fid import fid_from_features
from medsynth.metrics.lpips import FeatureMetric
from medsynth.weights import load_i3d

__all__ = ["i3d_preprocess", "i3d_features", "fvd", "fvd_per_video", "framewise", "VideoMetric", "I3D_SIZE"]

I3D_SIZE = 224  # common_metrics' preprocess_single(resolution=224)


@dataclass(frozen=True)
class VideoMetric(FeatureMetric):
    """An FVD value with its protocol: ``"set"`` (ours) or ``"per video"`` (the official evaluation)."""

    protocol: str = "set"

    @property
    def comparable(self) -> bool:
        """Only the official per-video protocol on the pretrained I3D is what Table 1 reports."""
        return self.features == "pretrained" and self.protocol == "per video"

    @property
    def label(self) -> str:
        base = super().label
        if self.protocol == "set":
            return f"{base}; set-level FVD (ours) — never comparable to Table 1's per-video FVD"
        return f"{base}; per-video FVD (official protocol)"


def _check_videos(v: Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    if not isinstance(v, Tensor) or v.dim() != 5 or v.shape[2] not in (1, 3):
        raise ValueError(
            f"expected videos (N,T,C,H,W) with C in {{1,3}}, got "
            f"{tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__}"
        )
    lo, hi = float(v.min()), float(v.max())
    if lo < value_range[0] - 1e-3 or hi > value_range[1] + 1e-3:
        raise ValueError(
            f"videos must lie in [{value_range[0]:g},{value_range[1]:g}], got [{lo:.3g}, {hi:.3g}]"
            + (" (generator output? pass (x + 1) / 2)" if value_range == (0.0, 1.0) else "")
        )
    return v


def i3d_preprocess(videos: Tensor, size: int = I3D_SIZE) -> Tensor:
    """common_metrics' ``preprocess_single`` for a batch: (N,T,C,H,W) -> (N,3,T,size,size), ``(v - 0.5) * 2``.

    Grey videos are repeated to 3 channels (``trans``); the shorter side is scaled to ``size`` with
    ``ceil`` for the longer one, bilinear, then the centre ``size x size`` is kept.
    """
    v = videos.float().expand(-1, -1, 3, -1, -1) if videos.shape[2] == 1 else videos.float()
    n, t, c, h, w = v.shape
    scale = size / min(h, w)
    target = (size, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), size)
    x = F.interpolate(v.reshape(n * t, c, h, w), size=target, mode="bilinear", align_corners=False)
    y0, x0 = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., y0 : y0 + size, x0 : x0 + size].reshape(n, t, c, size, size)
    return ((x - 0.5) * 2).permute(0, 2, 1, 3, 4).contiguous()


@torch.no_grad()
def i3d_features(
    videos: Tensor,
    features: str = "pretrained",
    seed: int = 0,
    dims: int = 400,
    device: torch.device | str | None = None,
    batch_size: int = 4,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[np.ndarray, str]:
    """(N, D) float64 features of videos (N,T,C,H,W) and the kind used ("pretrained"|"random").

    Preprocessed by :func:`i3d_preprocess` (the random fallback gets the same input as the I3D);
    ``dims`` only affects the random fallback (the I3D gives 400).
    """
    from medsynth.device import pick_device

    v = _check_videos(videos, value_range)
    dev = pick_device("auto") if device is None else torch.device(device)
    net = load_i3d(features, seed, dims, dev)
    out = [
        net(i3d_preprocess(v[i : i + batch_size]).to(dev), rescale=False, resize=False, return_features=True)
        .double()
        .cpu()
        for i in range(0, len(v), batch_size)
    ]
    return torch.cat(out).numpy(), net.features_kind


def fvd(
    real: Tensor,
    fake: Tensor,
    features: str = "pretrained",
    seed: int = 0,
    dims: int = 400,
    device: torch.device | str | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> VideoMetric:
    """Set-level FVD between two sets of videos (N,T,C,H,W); labelled with the features used.

    Few videos and 400-d features give rank-deficient covariances: :func:`fid_from_features` warns (the
    warning is the caller's to see); published FVD uses hundreds to thousands of videos.
    """
    f1, kind = i3d_features(real, features, seed, dims, device, value_range=value_range)
    f2, _ = i3d_features(fake, kind, seed, dims, device, value_range=value_range)
    return VideoMetric(
        fid_from_features(f1, f2), "FVD", kind, "I3D" if kind == "pretrained" else "3D-conv", len(f1), protocol="set"
    )


def fvd_per_video(
    real: Tensor,
    fake: Tensor,
    features: str = "pretrained",
    seed: int = 0,
    dims: int = 400,
    device: torch.device | str | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    min_length: int = 10,
) -> VideoMetric:
    """The official protocol: per test video, ``||f(real[:, :L]) - f(fake[:, :L])||^2`` for L = min_length..T
    (common_metrics' ``frechet_distance`` of one sample has no covariance term), mean over L, then mean
    (and std) over videos."""
    T = real.shape[1]
    if real.shape != fake.shape or T < min_length:
        raise ValueError(
            f"need videos of one shape with >= {min_length} frames, got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    per_len, kind = [], features
    for L in range(min_length, T + 1):
        f1, kind = i3d_features(real[:, :L], kind, seed, dims, device, value_range=value_range)
        f2, _ = i3d_features(fake[:, :L], kind, seed, dims, device, value_range=value_range)
        per_len.append(((f1 - f2) ** 2).sum(1))
    per_video = np.nanmean(np.stack(per_len), 0)
    return VideoMetric(
        float(per_video.mean()),
        "FVD",
        kind,
        "I3D" if kind == "pretrained" else "3D-conv",
        len(per_video),
        float(per_video.std()) if len(per_video) > 1 else None,
        protocol="per video",
    )


def framewise(
    real: Tensor, fake: Tensor, metric: Callable[..., Tensor], value_range: tuple[float, float] = (0.0, 1.0), **kwargs
) -> np.ndarray:
    """Per-frame mean of a paired image metric over videos: (T,) array.

    ``metric(a, b, reduction="none", **kwargs)`` takes (N,C,H,W) (ssim, psnr, lpips).
    """
    _check_videos(real, value_range), _check_videos(fake, value_range)
    if real.shape != fake.shape:
        raise ValueError(f"videos differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    return np.array(
        [
            float(torch.as_tensor(metric(real[:, t], fake[:, t], reduction="none", **kwargs)).mean())
            for t in range(real.shape[1])
        ]
    )
