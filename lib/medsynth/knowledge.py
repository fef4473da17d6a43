"""The knowledge mask of Fundus2Video (05_fundus2video Sec. 2.2, Fig. 2) and how well it marks leakage.

Clinical knowledge (Comin et al. 2021, the paper's ref. [3]): while fluorescein flows through
the retina, dye leaks around lesions, so the late frame differs most from the first (arterial)
frame exactly there. The paper turns that into a label-free binary mask::

    M = 1[ |F_last - F_first| > 45 ]      (8-bit intensities; threshold 45, Sec. 3.0.2)

The official code (``data/aligned_dataset_fundus2video_tempo.py``) reads both frames as 8-bit
images, keeps the **green channel** (FA frames are stored as RGB there; ours are grey, where the
green channel is the image) and applies ``cv2.threshold(absdiff, 45, 255, THRESH_BINARY)``, i.e. a
strict ``>``. :func:`knowledge_mask` does the same on numpy arrays or torch tensors.

Here we can also ask what the paper could not: how well does the mask mark *true* leakage? The
phantom knows its leakage (``RetinaSample.leakage_frames``), so :func:`mask_scores` gives
IoU/precision/recall and :func:`threshold_sweep` their curves over the threshold.
:func:`knowledge_view` is the pure function behind the notebook's explorer
(``medsynth.widgets.knowledge_explorer`` wraps it in ipywidgets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "KM_THRESHOLD",
    "to_uint8",
    "knowledge_mask",
    "mask_scores",
    "threshold_sweep",
    "knowledge_view",
    "MaskScores",
]

KM_THRESHOLD = 45.0  # on the 0-255 scale (Sec. 3.0.2, "determined through comparative experiments")
GREEN = 1


def to_uint8(x: np.ndarray | torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray | torch.Tensor:
    """Map ``value_range`` to 0..255 and round, as the 8-bit files the official code reads (float out)."""
    lo, hi = value_range
    y = (x - lo) * (255.0 / (hi - lo))
    return y.round().clamp(0, 255) if isinstance(y, torch.Tensor) else np.clip(np.round(y), 0, 255)


def _green(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """numpy: (H,W) or channel-last (H,W,3); torch: (..., C, H, W) with C in {1,3}. Green if 3 channels."""
    if isinstance(x, torch.Tensor):
        if x.dim() >= 3 and x.shape[-3] == 3:
            return x[..., GREEN : GREEN + 1, :, :]
        return x
    x = np.asarray(x)
    return x[..., GREEN] if x.ndim == 3 and x.shape[-1] == 3 else x


def knowledge_mask(
    first: np.ndarray | torch.Tensor,
    last: np.ndarray | torch.Tensor,
    threshold: float = KM_THRESHOLD,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray | torch.Tensor:
    """Sec. 2.2: ``|last - first| > threshold`` on the 8-bit (0-255) green channel; bool mask.

    ``first``/``last``: the first (arterial) and last (late) frames, in ``value_range`` (``(0, 1)``
    for phantoms on disk, ``(-1, 1)`` for dataset tensors). numpy (H,W)/(H,W,3) -> (H,W) bool;
    torch (N,C,H,W) -> (N,1,H,W) bool. Frames are quantised to 8 bits first, as the official code
    reads PNGs, so the threshold means the same thing on both paths.
    """
    a, b = to_uint8(_green(first), value_range), to_uint8(_green(last), value_range)
    return (b - a).abs() > threshold if isinstance(a, torch.Tensor) else np.abs(b - a) > threshold


@dataclass(frozen=True)
class MaskScores:
    """Overlap of a predicted mask with a ground-truth mask (pixels counted over the whole image)."""

    iou: float
    precision: float
    recall: float
    dice: float
    area: float  # fraction of pixels marked by the prediction


def mask_scores(pred: np.ndarray, true: np.ndarray) -> MaskScores:
    """IoU, precision, recall, Dice of boolean masks; an empty prediction has precision 1 by convention
    (it marks nothing wrongly), an empty truth has recall 1; both empty give IoU = Dice = 1."""
    p, t = np.asarray(pred, bool), np.asarray(true, bool)
    if p.shape != t.shape:
        raise ValueError(f"masks differ in shape: {p.shape} vs {t.shape}")
    tp, fp, fn = float((p & t).sum()), float((p & ~t).sum()), float((~p & t).sum())
    union = tp + fp + fn
    return MaskScores(
        iou=tp / union if union else 1.0,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        dice=2 * tp / (2 * tp + fp + fn) if union else 1.0,
        area=float(p.mean()),
    )


def threshold_sweep(
    pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], thresholds: Sequence[float] = tuple(range(5, 125, 5))
) -> dict[str, np.ndarray]:
    """Mean IoU/precision/recall/Dice/area over eyes for each threshold.

    ``pairs``: ``(first_frame, last_frame, true_leakage)`` per eye, frames in [0,1].
    Returns ``{"threshold": (K,), "iou": (K,), ...}`` (means over eyes).
    """
    th = np.asarray(thresholds, float)
    out = {k: np.zeros(len(th)) for k in ("iou", "precision", "recall", "dice", "area")}
    for first, last, true in pairs:
        diff = np.abs(to_uint8(_green(last)) - to_uint8(_green(first)))  # once per eye, then threshold
        for i, t in enumerate(th):
            s = mask_scores(diff > t, true)
            for k in out:
                out[k][i] += getattr(s, k) / len(pairs)
    return {"threshold": th, **out}


def knowledge_view(
    frames: np.ndarray, true: np.ndarray, threshold: float = KM_THRESHOLD, first: int = 0, last: int = -1
) -> tuple[np.ndarray, MaskScores, str]:
    """The explorer's picture: frame ``first`` | frame ``last`` | |difference| | mask on the last frame
    (green) | mask (green) against the ground-truth leakage (magenta; overlap looks white-ish).

    ``frames``: (T,H,W) in [0,1]; ``true``: the true leakage per frame, (T,H,W) bool, scored at frame
    ``last`` (the frame the mask is computed from), or one (H,W) bool mask used whatever ``last`` is.
    Returns (H, 5W, 3) image, scores, caption.
    """
    from medsynth.viz import overlay, to_rgb

    true = np.asarray(true, bool)
    if true.ndim == 3:
        if len(true) != len(frames):
            raise ValueError(f"true leakage has {len(true)} frames, the video {len(frames)}")
        true = true[last]
    f0, f1 = frames[first], frames[last]
    m = knowledge_mask(f0, f1, threshold)
    s = mask_scores(m, true)
    diff = np.abs(f1 - f0)
    gt = overlay(np.zeros_like(f1), true, (1.0, 0.0, 1.0), 0.8)
    both = overlay(gt, m, (0.0, 1.0, 0.0), 0.5)
    img = np.concatenate(
        [
            to_rgb(f0),
            to_rgb(f1),
            to_rgb(diff / max(float(diff.max()), 1e-6)),
            overlay(f1, m, (0.1, 1.0, 0.2), 0.6),
            both,
        ],
        axis=1,
    )
    t = len(frames)
    cap = (
        f"frames {first % t} -> {last % t}, threshold {threshold:g}/255: mask {100 * s.area:.1f}% of pixels, "
        f"IoU {s.iou:.3f}, precision {s.precision:.3f}, recall {s.recall:.3f} vs true leakage"
    )
    return img, s, cap
