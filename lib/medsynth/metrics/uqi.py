"""Universal image quality index (Wang & Bovik, "A universal image quality index", IEEE SPL 9(3):81-84, 2002).

``Q = 4 s_xy mu_x mu_y / ((s_x^2 + s_y^2)(mu_x^2 + mu_y^2))`` (their Eq. 1, the product of correlation,
luminance and contrast terms) in every ``window`` x ``window`` sliding window (8x8 in the paper, uniform
weights, population statistics), averaged over the window positions (their Eq. 3). MedGAN reports it beside
SSIM (Tables I-II); SSIM is this index with the stabilising constants C1, C2 and a Gaussian window.
Where a denominator vanishes: both windows flat and equal -> 1; both flat -> the luminance term alone
``2 mu_x mu_y / (mu_x^2 + mu_y^2)``; both flat and zero -> 1 (the brain phantom's black background).
Inputs as for :func:`medsynth.metrics.ssim`: (H,W) or (N,C,H,W); ``reduction`` "mean" | "none".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medsynth.metrics.image import _pair, _reduce

__all__ = ["uqi"]


def uqi(a: Tensor | np.ndarray, b: Tensor | np.ndarray, window: int = 8, reduction: str = "mean") -> float | Tensor:
    """Mean universal quality index of image pairs (per image: mean over windows and channels)."""
    x, y = _pair(a, b)
    if min(x.shape[-2:]) < window:
        raise ValueError(f"UQI needs images of at least {window}x{window} px, got {tuple(x.shape[-2:])}")
    n, c = x.shape[:2]
    x, y = x.reshape(n * c, 1, *x.shape[-2:]), y.reshape(n * c, 1, *y.shape[-2:])
    mean = lambda t: F.avg_pool2d(t, window, stride=1)  # noqa: E731 - uniform window, valid positions
    mx, my = mean(x), mean(y)
    vx, vy, cxy = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    vx, vy = vx.clamp_min(0), vy.clamp_min(0)
    # float round-off leaves ~1e-8 "variance" in flat windows: treat those as flat
    eps = 1e-6 if x.dtype == torch.float32 else 1e-12
    flat = (vx + vy) <= eps
    lum_den = mx**2 + my**2
    lum = torch.where(lum_den > 0, 2 * mx * my / lum_den.clamp_min(1e-30), torch.ones_like(mx))
    q = torch.where(flat, lum, 4 * cxy * mx * my / ((vx + vy) * lum_den).clamp_min(1e-30))
    return _reduce(q.reshape(n, c, -1).mean((1, 2)), reduction)
