"""Device choice and seeding, shared by every chapter."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(pref: str = "auto") -> torch.device:
    """Return the device to run on.

    ``"auto"`` picks CUDA, then Apple's MPS, then the CPU. Any other value is passed to
    :class:`torch.device` after checking that the backend exists, so a notebook run with
    ``-p device cuda`` on a machine without a GPU fails with a clear message instead of a
    CUDA stack trace deep inside the first forward pass.
    """
    if not isinstance(pref, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {pref!r}")
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(pref)
    except RuntimeError as exc:
        raise ValueError(f"device={pref!r} is not a device name (try 'auto', 'cpu', 'cuda', 'cuda:0', 'mps')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={pref!r} was asked for, but no CUDA GPU is visible to PyTorch")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device={pref!r} was asked for, but MPS is not available")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so quick runs repeat on one machine."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
