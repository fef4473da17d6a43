"""Inception pool features for FID/KID: batched, ``no_grad``, on any device.

The network is pytorch-fid's :class:`~pytorch_fid.inception.InceptionV3` (the TF-FID port of
Heusel et al. 2017), loaded through :mod:`medsynth.weights` so that a missing weight file gives
a clear error instead of a download traceback. Features are taken at one of pytorch-fid's four
blocks (``dims`` = 64, 192, 768 or 2048) and global-average-pooled exactly as pytorch-fid does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsynth.weights import load_inception, with_fallback

__all__ = ["inception_features", "as_image_batches"]

Images = Tensor | Iterable[Tensor]


@functools.lru_cache(maxsize=4)
def _net(dims: int, features: str, seed: int, device: str) -> nn.Module:
    """Built networks, cached per (dims, features, seed, device); ``features`` is never "auto" here."""
    return load_inception(dims, features, seed, device)


def _resolve_net(dims: int, features: str, seed: int, device: str) -> nn.Module:
    """Resolve "auto" on every call (so weights put in the cache mid-session are picked up)."""
    return with_fallback(lambda kind: _net(dims, kind, seed, device), features, "Inception (FID/KID)", stacklevel=5)


def as_image_batches(images: Images) -> Iterable[Tensor]:
    """Yield checked (n,3,H,W) float batches in [0,1] from a tensor or an iterable of tensors.

    Grey images (C=1) are repeated to 3 channels. Values outside [0,1] (beyond a 1e-3
    tolerance) raise, since the usual mistake is passing generator output in [-1,1].
    """
    batches = [images] if isinstance(images, Tensor) else images
    for x in batches:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected float images (N,C,H,W) with C in {{1,3}}, got {shape}")
        if not x.is_floating_point():
            raise TypeError(f"expected a float tensor in [0,1], got dtype {x.dtype}")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"images must lie in [0,1], got range [{lo:.3g}, {hi:.3g}] "
                f"(generator output in [-1,1]? pass (x + 1) / 2)"
            )
        yield x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@torch.no_grad()
def inception_features(
    images: Images,
    dims: int = 2048,
    features: str = "pretrained",
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 50,
) -> tuple[np.ndarray, str]:
    """Inception features of ``images``: returns ((N, dims) float64 array, kind used).

    ``kind`` is "pretrained" or "random" (see :func:`medsynth.weights.load_inception`);
    ``device=None`` picks CUDA, then MPS, then CPU.
    """
    from medsynth.device import pick_device

    dev = pick_device("auto") if device is None else torch.device(device)
    net = _resolve_net(dims, features, seed, str(dev))
    out = []
    for batch in as_image_batches(images):
        for chunk in batch.split(batch_size):
            f = net(chunk.to(dev, torch.float32))[0]
            if f.shape[2:] != (1, 1):  # blocks 0-2 give maps: pool them as pytorch-fid does
                f = F.adaptive_avg_pool2d(f, (1, 1))
            out.append(f.flatten(1).double().cpu())
    if not out:
        raise ValueError("no images given")
    return torch.cat(out).numpy(), net.features_kind
