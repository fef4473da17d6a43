"""Retinal vessel segmentation scores inside the field of view (FOV), the way DRIVE results are reported.

DRIVE papers (Staal et al. 2004 and every U-Net after it; the chapter 04 thesis's baseline AUC 0.9705,
accuracy 0.9477, sensitivity 0.7781) count only pixels inside the camera's circular FOV mask: the black
corners are trivially "background" and would inflate accuracy and specificity. With TP, FP, TN, FN
counted over FOV pixels of the whole test set pooled (one confusion matrix, not a mean of per-image
scores -- the usual DRIVE convention):

* accuracy    = (TP + TN) / (TP + FP + TN + FN)
* sensitivity = TP / (TP + FN)            (vessel recall)
* specificity = TN / (TN + FP)
* Dice (= F1) = 2 TP / (2 TP + FP + FN)
* AUC         = area under the ROC curve of the vessel probabilities (threshold-free), computed
  from ranks (Mann-Whitney U): ``(sum of positive ranks - P(P+1)/2) / (P N)``, ties given their
  mean rank, which equals the trapezoidal ROC area. scikit-learn is not installed in the course's
  environment, so this is vectorised numpy + ``scipy.stats.rankdata`` (checked against a pairwise
  count in the tests).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

__all__ = ["roc_auc", "fov_scores", "VESSEL_METRICS"]

VESSEL_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "dice")


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def roc_auc(scores: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> float:
    """ROC AUC of ``scores`` for binary ``labels`` (any shapes, flattened together); NaN if one class is absent."""
    s, y = _np(scores).ravel().astype(np.float64), _np(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.size} vs {y.size}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def fov_scores(
    prob: torch.Tensor | np.ndarray,
    true: torch.Tensor | np.ndarray,
    fov: torch.Tensor | np.ndarray,
    threshold: float = 0.5,
) -> dict[str, float]:
    """AUC, accuracy, sensitivity, specificity and Dice of vessel probabilities inside the FOV.

    ``prob``: probabilities in [0, 1] (any shape, e.g. (N,1,H,W)); ``true``: the manual vessel mask;
    ``fov``: the field-of-view mask (same shape). The binary scores use ``prob > threshold``.
    Returns the five scores plus ``n_pixels`` (FOV pixels counted) and ``vessel_fraction``.
    """
    p, t, m = _np(prob).astype(np.float64), _np(true).astype(bool), _np(fov).astype(bool)
    if not (p.shape == t.shape == m.shape):
        raise ValueError(f"prob {p.shape}, true {t.shape} and fov {m.shape} must have the same shape")
    if not m.any():
        raise ValueError("the FOV mask is empty: nothing to score")
    if np.nanmin(p) < 0 or np.nanmax(p) > 1:
        raise ValueError("prob must be probabilities in [0, 1] (apply the sigmoid to logits first)")
    p, t = p[m], t[m]
    pred = p > threshold
    tp = int((pred & t).sum())
    fp = int((pred & ~t).sum())
    fn = int((~pred & t).sum())
    tn = int((~pred & ~t).sum())

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    return {
        "auc": roc_auc(p, t),
        "accuracy": ratio(tp + tn, tp + tn + fp + fn),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "dice": ratio(2 * tp, 2 * tp + fp + fn),
        "n_pixels": int(m.sum()),
        "vessel_fraction": float(t.mean()),
    }
