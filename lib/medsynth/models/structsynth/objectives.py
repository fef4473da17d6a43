"""Loss and optimiser helpers shared by chapter 04's tasks (:mod:`.structure_task`, :mod:`.multimodal_task`,
:mod:`.support_tasks`).

Adversarial terms are least-squares (the thesis writes ``||D(.) - 1||^2``, ``||D(.)||^2``):
:class:`medsynth.losses.GANLoss` ("lsgan", real 1 / fake 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from medsynth.losses import GANLoss
from medsynth.training import adam

__all__ = ["lsgan", "mse", "adam_b1"]

#: the least-squares adversarial term, ``lsgan(pred, target_is_real)``
lsgan = GANLoss("lsgan")


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||pred - target||^2`` as a mean, in fp32 (class maps against one-hot matrices, reconstructions)."""
    return F.mse_loss(pred.float(), target.float().expand_as(pred))


def adam_b1(params: Iterable[torch.nn.Parameter], lr: float, beta1: float = 0.5) -> torch.optim.Adam:
    """Adam with ``betas=(beta1, 0.999)``: Sec. 5.2.1 and the author's code use beta1 = 0.5."""
    return adam(params, lr, betas=(beta1, 0.999))
