"""Paired image metrics in torch (batched, any device): SSIM, MS-SSIM, PSNR.

* SSIM (Wang, Bovik, Sheikh, Simoncelli 2004, "Image quality assessment: from error visibility to
  structural similarity", Eq. 13): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
  population (not sample) covariances, mean over the "valid" window positions. This matches
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=...)`` (tested to ~1e-6).
* MS-SSIM (Wang, Simoncelli, Bovik 2003, "Multi-scale structural similarity for image quality
  assessment", Eq. 7): contrast-structure terms at scales 1..M-1 and full SSIM at scale M,
  weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333, 2x average pooling between scales. Negative
  per-scale terms are clamped to 0 before the fractional powers (as pytorch-msssim does).
  Images too small for 5 scales (each scale must be at least 11 px, i.e. >= 176 px for 5) use
  the largest possible number of scales with the first weights renormalised to sum to 1
  (see :func:`ms_ssim_scales`); fewer than 11 px raises.
* PSNR: ``10 log10(data_range^2 / MSE)`` per image; identical images give ``inf``.

Inputs: two tensors (or arrays) of equal shape, (N,C,H,W) or (H,W). ``reduction="mean"``
returns the mean over images as a float; ``"none"`` returns a (N,) tensor. Colour images are
averaged over channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ssim", "ms_ssim", "psnr", "ms_ssim_scales", "MS_SSIM_WEIGHTS"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def _pair(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() == 2:
        a, b = a[None, None], b[None, None]
    elif a.dim() != 4:
        raise ValueError(f"expected (H,W) or (N,C,H,W), got {tuple(a.shape)}; for one (C,H,W) image pass x[None]")
    dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
    return a.to(dtype), b.to(a.device, dtype)


def _reduce(v: Tensor, reduction: str) -> float | Tensor:
    if reduction == "mean":
        return float(v.mean())
    if reduction == "none":
        return v
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _blur(x: Tensor) -> Tensor:
    """Separable Gaussian filter, valid positions only (no padding), per channel."""
    r = torch.arange(WIN, dtype=x.dtype, device=x.device) - (WIN - 1) / 2
    g = torch.exp(-(r**2) / (2 * SIGMA**2))
    g = (g / g.sum()).repeat(x.shape[1], 1, 1, 1)  # (C,1,1,WIN)
    x = F.conv2d(x, g, groups=x.shape[1])
    return F.conv2d(x, g.transpose(2, 3), groups=x.shape[1])


def _ssim_cs(x: Tensor, y: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """Per-(image, channel) mean SSIM and mean contrast-structure term, each (N,C)."""
    if min(x.shape[-2:]) < WIN:
        raise ValueError(f"SSIM needs images of at least {WIN}x{WIN} px, got {tuple(x.shape[-2:])}")
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mx, my = _blur(x), _blur(y)
    vx, vy, cxy = _blur(x * x) - mx**2, _blur(y * y) - my**2, _blur(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    return (lum * cs).mean((-2, -1)), cs.mean((-2, -1))


def ssim(
    a: Tensor | np.ndarray, b: Tensor | np.ndarray, data_range: float = 1.0, reduction: str = "mean"
) -> float | Tensor:
    """Mean SSIM (Wang et al. 2004) of image pairs; see the module docstring."""
    x, y = _pair(a, b)
    return _reduce(_ssim_cs(x, y, data_range)[0].mean(1), reduction)


def ms_ssim_scales(size: tuple[int, int], n_weights: int = len(MS_SSIM_WEIGHTS)) -> int:
    """How many MS-SSIM scales an (H, W) image allows: each scale (floor-halved) >= 11 px."""
    s, m = min(size), 0
    while m < n_weights and s >= WIN:
        m, s = m + 1, s // 2
    if m == 0:
        raise ValueError(f"MS-SSIM needs images of at least {WIN}x{WIN} px, got {tuple(size)}")
    return m


def ms_ssim(
    a: Tensor | np.ndarray,
    b: Tensor | np.ndarray,
    data_range: float = 1.0,
    reduction: str = "mean",
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> float | Tensor:
    """MS-SSIM (Wang et al. 2003) of image pairs; fewer scales for small images (module docstring)."""
    x, y = _pair(a, b)
    m = ms_ssim_scales(tuple(x.shape[-2:]), len(weights))
    w = torch.tensor(weights[:m], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    terms = []
    for j in range(m):
        s, cs = _ssim_cs(x, y, data_range)
        terms.append(torch.relu(s if j == m - 1 else cs))
        if j < m - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)  # odd sizes: the last row/col is dropped
    per_channel = torch.prod(torch.stack(terms, -1) ** w, -1)  # (N,C)
    return _reduce(per_channel.mean(1), reduction)


def psnr(
    a: Tensor | np.ndarray, b: Tensor | np.ndarray, data_range: float = 1.0, reduction: str = "mean"
) -> float | Tensor:
    """PSNR in dB per image pair, ``10 log10(data_range^2 / MSE)``; the mean is over per-image PSNRs."""
    x, y = _pair(a, b)
    mse = ((x - y) ** 2).mean((1, 2, 3))
    return _reduce(10 * torch.log10(data_range**2 / mse), reduction)
