"""Chapter 05's two metric conventions (ours [0,1], the official [-1,1]) and common_metrics' I3D preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate

from medsynth.metrics.video import VideoMetric, fvd_per_video, i3d_features, i3d_preprocess
from medsynth.metrics.video_eval import score_videos, to_convention


def _official_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """common_metrics' ``ssim`` (cv2.filter2D with an 11x11 Gaussian, sigma 1.5, then [5:-5, 5:-5]), with scipy."""
    C1, C2 = 0.01**2, 0.03**2
    r = np.arange(11) - 5
    k = np.exp(-(r**2) / (2 * 1.5**2))
    k /= k.sum()
    win = np.outer(k, k)

    def filt(x):
        return correlate(x, win, mode="mirror")[5:-5, 5:-5]

    m1, m2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - m1**2, filt(b * b) - m2**2, filt(a * b) - m1 * m2
    return float((((2 * m1 * m2 + C1) * (2 * s12 + C2)) / ((m1**2 + m2**2 + C1) * (s1 + s2 + C2))).mean())


def _videos(seed: int = 0, n: int = 3, t: int = 11, size: int = 32):
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n, t, 1, size, size, generator=g)
    fake = (real + 0.2 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    return real.double(), fake.double()


def test_official_convention_is_ours_on_2v_minus_1_and_matches_common_metrics() -> None:
    real, fake = _videos()
    s = score_videos(real, fake, features="random", fvd_dims=4)
    ours, off = s, s["official"]
    # PSNR with peak 1 on [-1,1] data: exactly 10 log10(4) dB lower, frame by frame
    assert np.allclose(ours["psnr_per_frame"] - off["psnr_per_frame"], 10 * math.log10(4), atol=1e-9)
    # SSIM: the official function applied to [-1,1] frames, re-implemented independently
    r1, f1 = to_convention(real, "official"), to_convention(fake, "official")
    hand = np.mean(
        [[_official_ssim(r1[i, t, 0].numpy(), f1[i, t, 0].numpy()) for i in range(3)] for t in range(11)], axis=1
    )
    assert np.allclose(off["ssim_per_frame"], hand, atol=1e-6)
    assert not np.allclose(off["ssim_per_frame"], ours["ssim_per_frame"], atol=1e-3)  # the conventions differ
    # LPIPS: the official trans() maps [-1,1] once more, so the official value differs from ours
    assert off["LPIPS"].value != pytest.approx(ours["LPIPS"].value)
    # FVD: ours over the set, the official per video
    assert ours["FVD"].protocol == "set" and off["FVD"].protocol == "per video" and off["FVD"].n == 3
    with pytest.raises(ValueError, match="convention"):
        to_convention(real, "other")


def test_official_fvd_is_the_mean_squared_feature_distance_per_video_over_clip_lengths() -> None:
    real, fake = _videos(1, n=2, t=12, size=16)
    got = fvd_per_video(real, fake, features="random", dims=6)
    per_len = []
    for L in (10, 11, 12):
        f1, _ = i3d_features(real[:, :L], "random", dims=6)
        f2, _ = i3d_features(fake[:, :L], "random", dims=6)
        per_len.append(((f1 - f2) ** 2).sum(1))
    assert got.value == pytest.approx(float(np.mean(per_len, 0).mean()))
    assert fvd_per_video(real, real, features="random", dims=6).value == 0.0
    with pytest.raises(ValueError, match="10 frames"):
        fvd_per_video(real[:, :9], fake[:, :9], features="random", dims=6)


def _reference_preprocess_single(video: torch.Tensor, resolution: int = 224) -> torch.Tensor:
    """common_metrics' fvd/styleganv preprocess_single, (C,T,H,W) in [0,1] (the function as published)."""
    c, t, h, w = video.shape
    scale = resolution / min(h, w)
    target = (resolution, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), resolution)
    video = F.interpolate(video, size=target, mode="bilinear", align_corners=False)
    c, t, h, w = video.shape
    w0, h0 = (w - resolution) // 2, (h - resolution) // 2
    video = video[:, :, h0 : h0 + resolution, w0 : w0 + resolution]
    return ((video - 0.5) * 2).contiguous()


@pytest.mark.parametrize("hw", [(20, 30), (33, 21), (16, 16)])
def test_i3d_preprocessing_is_common_metrics(hw) -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 5, 1, *hw, generator=g)
    got = i3d_preprocess(v)
    assert got.shape == (2, 3, 5, 224, 224)
    for i in range(2):
        ref = _reference_preprocess_single(v[i].repeat(1, 3, 1, 1).permute(1, 0, 2, 3))  # trans(): grey x3, CTHW
        assert torch.allclose(got[i], ref, atol=1e-6)


def test_only_the_official_protocol_on_pretrained_i3d_is_comparable() -> None:
    assert not VideoMetric(1.0, "FVD", "pretrained", "I3D", 10, protocol="set").comparable
    assert not VideoMetric(1.0, "FVD", "random", "3D-conv", 10, protocol="per video").comparable
    assert VideoMetric(1.0, "FVD", "pretrained", "I3D", 10, protocol="per video").comparable
