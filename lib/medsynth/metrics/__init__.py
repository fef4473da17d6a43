"""Evaluation metrics used across the chapters.

* :mod:`~medsynth.metrics.fid` -- FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) on
  pytorch-fid's Inception features, returned as a labelled :class:`MetricResult`.
* :mod:`~medsynth.metrics.image` -- SSIM (Wang et al. 2004), MS-SSIM (Wang et al. 2003), PSNR.
* :mod:`~medsynth.metrics.seg` -- Dice for binary masks and label maps.
* :mod:`~medsynth.metrics.vessel` -- DRIVE-style vessel scores inside the FOV (AUC, accuracy, sensitivity, ...).
* :mod:`~medsynth.metrics.uqi` -- the universal image quality index (Wang & Bovik 2002; chapter 02).
* :mod:`~medsynth.metrics.lpips`, :mod:`~medsynth.metrics.video` -- LPIPS, FVD, frame-wise curves (chapter 05).
"""

from medsynth.metrics.features import inception_features
from medsynth.metrics.fid import MetricResult, fid, fid_from_features, kid, kid_from_features
from medsynth.metrics.image import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_scales, psnr, ssim
from medsynth.metrics.lpips import FeatureMetric, lpips
from medsynth.metrics.seg import dice
from medsynth.metrics.uqi import uqi
from medsynth.metrics.vessel import fov_scores, roc_auc
from medsynth.metrics.video import framewise, fvd

__all__ = [
    "MetricResult",
    "fid",
    "kid",
    "fid_from_features",
    "kid_from_features",
    "inception_features",
    "ssim",
    "ms_ssim",
    "ms_ssim_scales",
    "psnr",
    "MS_SSIM_WEIGHTS",
    "dice",
    "FeatureMetric",
    "lpips",
    "fvd",
    "framewise",
    "uqi",
    "fov_scores",
    "roc_auc",
]
