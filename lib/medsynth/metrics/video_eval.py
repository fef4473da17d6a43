"""Chapter 05's evaluation (Fundus2Video Sec. 3.0.3, Table 1) in two conventions, by one code path.

* ``"ours"`` (standard): videos in [0, 1], as the metric functions are written for. SSIM/PSNR per frame with
  data range 1, LPIPS on ``2v - 1``, FVD between the test *set* of real and of generated videos.
* ``"official"``: what the official ``train.py`` computes. Its videos are the generator's tanh output and the
  normalised ground truth, i.e. in [-1, 1], and go unchanged into common_metrics_on_video_quality's functions,
  which are written for [0, 1]: PSNR with peak 1 (so exactly ``10 log10 4 = 6.02`` dB below ours), SSIM with
  ``C1 = 0.01^2, C2 = 0.03^2`` (the constants of data range 1 on data of range 2), LPIPS after another ``2v - 1``
  (inputs in [-3, 1]), and FVD per single video (no covariance term) over clip lengths 10..T, averaged
  (:func:`medsynth.metrics.video.fvd_per_video`). Here the same functions as ``"ours"`` receive ``2v - 1``.

Only the official column is put beside Table 1. Where we still differ from the official metric code: LPIPS
averages each layer's distance map directly, the official ``lpips.LPIPS(spatial=True)`` first upsamples each
map to the image size (bilinear), which weights border pixels slightly differently; SSIM uses the same Gaussian
window and valid region (``cv2.filter2D`` then ``[5:-5, 5:-5]``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["CONVENTIONS", "to_convention", "score_videos", "photos_and_videos", "evaluate", "evaluate_baselines"]

#: convention -> the value range its videos are passed in
CONVENTIONS: dict[str, tuple[float, float]] = {"ours": (0.0, 1.0), "official": (-1.0, 1.0)}


def to_convention(videos01: torch.Tensor, convention: str) -> torch.Tensor:
    """Videos in [0, 1] as the convention passes them to the metric functions (official: ``2v - 1``)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
    return videos01 if convention == "ours" else videos01 * 2 - 1


def _score(
    real01: torch.Tensor, fake01: torch.Tensor, convention: str, features: str, fvd_dims: int, lpips_net: str
) -> dict[str, Any]:
    from medsynth.metrics import framewise, lpips, psnr, ssim
    from medsynth.metrics.video import fvd, fvd_per_video

    vr = CONVENTIONS[convention]
    r, f = to_convention(real01, convention), to_convention(fake01, convention)
    per_ssim = framewise(r, f, ssim, vr, data_range=1.0)
    per_psnr = framewise(r, f, psnr, vr, data_range=1.0)
    lp = lpips(r.flatten(0, 1), f.flatten(0, 1), lpips_net, features=features)
    fv = (fvd if convention == "ours" else fvd_per_video)(r, f, features=features, dims=fvd_dims, value_range=vr)
    return {
        "ssim_per_frame": per_ssim,
        "psnr_per_frame": per_psnr,
        "SSIM": float(per_ssim.mean()),
        "PSNR": float(per_psnr.mean()),
        "LPIPS": lp,
        "FVD": fv,
    }


def score_videos(
    real01: torch.Tensor,
    fake01: torch.Tensor,
    features: str = "auto",
    fvd_dims: int = 400,
    lpips_net: str = "alex",
    official: bool = True,
) -> dict[str, Any]:
    """Sec. 3.0.3's metrics of generated videos against real ones, both (N,T,1,H,W) in [0,1].

    Returns ours at the top level (``SSIM, PSNR, LPIPS, FVD`` and the per-frame curves) and, when ``official``,
    the same four in the official convention under ``"official"``. Models and input-free baselines go through
    this one function, so their rows are comparable.
    """
    out = _score(real01, fake01, "ours", features, fvd_dims, lpips_net)
    if official:
        out["official"] = _score(real01, fake01, "official", features, fvd_dims, lpips_net)
    return out


def photos_and_videos(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item's CF photo in [-1, 1] and its video in [0, 1]."""
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([it["src"] for it in items]), (torch.stack([it["frames"] for it in items]) + 1) / 2


def evaluate(
    task: Any,
    dataset: Dataset,
    features: str = "auto",
    fvd_dims: int = 400,
    lpips_net: str = "alex",
    average: bool = True,
    batch_size: int = 4,
    official: bool = True,
) -> dict[str, Any]:
    """Sec. 3.0.3 on a test set: ``task.generate`` every video (in [-1, 1]), then :func:`score_videos`.

    ``features`` goes to LPIPS and FVD ("auto": pretrained weights when present, else the labelled random
    fallback; ``fvd_dims`` sizes only that fallback). Returns the scores plus the videos in [0,1]
    (``real``, ``fake``, ``cf``).
    """
    cf, real01 = photos_and_videos(dataset)
    fake = torch.cat(
        [task.generate(cf[i : i + batch_size], real01.shape[1], average).cpu() for i in range(0, len(cf), batch_size)]
    )
    fake01 = (fake.float() + 1) / 2
    return {
        **score_videos(real01, fake01, features, fvd_dims, lpips_net, official),
        "cf": (cf + 1) / 2,
        "real": real01,
        "fake": fake01,
    }


def evaluate_baselines(
    train: Dataset,
    test: Dataset,
    seed: int = 0,
    features: str = "auto",
    fvd_dims: int = 400,
    lpips_net: str = "alex",
    official: bool = True,
) -> dict[str, dict[str, Any]]:
    """The input-free rows: the mean training video and a random training video per test eye (seeded), scored
    by :func:`score_videos` against the test videos (``train`` without augmentation: the eyes as stored)."""
    from medsynth.evidence import baseline_predictions

    _, train01 = photos_and_videos(train)
    _, real01 = photos_and_videos(test)
    preds = baseline_predictions(train01, len(real01), seed=seed)
    return {name: score_videos(real01, v, features, fvd_dims, lpips_net, official) for name, v in preds.items()}
