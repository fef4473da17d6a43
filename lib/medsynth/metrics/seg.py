"""Dice overlap for segmentation masks (Dice 1945; the usual score for vessel and tumour masks).

``Dice(A, B) = 2 |A ∩ B| / (|A| + |B|)``, pooled over every element given (a whole batch counts
as one volume). Two empty masks score 1.0 (perfect agreement on "nothing there"), a convention
stated here because libraries differ on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["dice"]

Label = int | tuple[int, ...]


def _dice(p: Tensor, t: Tensor) -> float:
    denom = int(p.sum()) + int(t.sum())
    return 1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom


def dice(
    pred: Tensor | np.ndarray, true: Tensor | np.ndarray, labels: Sequence[Label] | None = None
) -> float | dict[Label, float]:
    """Dice of binary masks, or per class of label maps.

    ``labels=None``: ``pred`` and ``true`` are binary (bool or 0/1 values); anything else raises
    (threshold probabilities first). With ``labels``, each entry is a class value, or a tuple of
    values forming one region (e.g. BraTS whole tumour ``(1, 2, 4)``); returns ``{label: dice}``.
    """
    p, t = torch.as_tensor(pred), torch.as_tensor(true)
    if p.shape != t.shape:
        raise ValueError(f"masks must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}")
    if labels is None:
        for name, m in (("pred", p), ("true", t)):
            if m.dtype != torch.bool and not bool(((m == 0) | (m == 1)).all()):
                raise ValueError(
                    f"{name} is not a binary mask (values other than 0/1); threshold it, "
                    f"or pass labels=[...] for a label map"
                )
        return _dice(p.bool(), t.bool())
    out: dict[Label, float] = {}
    for lab in labels:
        vals = torch.as_tensor(lab if isinstance(lab, tuple) else (lab,), dtype=p.dtype, device=p.device)
        out[lab] = _dice(torch.isin(p, vals), torch.isin(t, vals.to(t.dtype)))
    return out
