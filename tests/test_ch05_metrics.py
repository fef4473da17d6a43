"""LPIPS and FVD (chapter 05): identities, symmetry, labelled fallbacks, clear errors offline."""

from __future__ import annotations

import pytest
import torch

from medsynth.metrics import FeatureMetric, framewise, fvd, lpips, psnr, ssim
from medsynth.weights import WeightsUnavailable, load_i3d, load_lpips_linear


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_identity_symmetry_and_label(net: str) -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 1, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    a3 = a.expand(-1, 3, -1, -1).contiguous()
    assert torch.equal(lpips(a, a, net, features="random", reduction="none"), torch.zeros(3))
    d_ab = lpips(a3, b, net, features="random", reduction="none")
    d_ba = lpips(b, a3, net, features="random", reduction="none")
    assert torch.allclose(d_ab, d_ba) and bool((d_ab > 0).all())
    r = lpips(a3, b, net, features="random")
    assert isinstance(r, FeatureMetric) and not r.comparable and "not comparable" in r.label


def test_lpips_grows_with_the_distortion() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.rand(4, 3, 32, 32, generator=g)
    noise = torch.randn(4, 3, 32, 32, generator=g)
    small = float(lpips(a, (a + 0.05 * noise).clamp(0, 1), features="random"))
    large = float(lpips(a, (a + 0.5 * noise).clamp(0, 1), features="random"))
    assert 0 < small < large


def test_pretrained_weights_missing_raise_clearly(monkeypatch, tmp_path) -> None:
    # an empty torch cache and no downloads: on a machine that has the files this still tests the error
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("MEDSYNTH_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="lpips_v0.1_alex.pth"):
        load_lpips_linear("alex", download=False)
    with pytest.raises(WeightsUnavailable, match="i3d_torchscript.pt"):
        load_i3d("pretrained")


def test_fvd_of_a_set_with_itself_is_zero_with_random_features() -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.rand(6, 12, 1, 32, 32, generator=g)
    w = (v + 0.3 * torch.rand(v.shape, generator=g)).clamp(0, 1)
    with pytest.warns(UserWarning, match="rank-deficient"):  # 6 videos, 8-d features: the warning reaches the caller
        same = fvd(v, v, features="random", dims=8)
    diff = fvd(v, w, features="random", dims=4)
    assert abs(same.value) < 1e-6 and diff.value > 100 * max(abs(same.value), 1e-9)
    assert same.features == "random" and "not comparable to published FVD" in same.label
    assert same.protocol == "set" and "never comparable" in same.label and not same.comparable
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        fvd(v * 2 - 1, v, features="random", dims=8)


def test_framewise_curves() -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 5, 1, 16, 16, generator=g)
    w = (v + 0.1 * torch.rand(v.shape, generator=g)).clamp(0, 1)
    s = framewise(v, w, ssim)
    p = framewise(v, w, psnr)
    assert s.shape == p.shape == (5,) and (s < 1).all() and (p > 10).all()
    assert s[2] == pytest.approx(float(ssim(v[:, 2], w[:, 2])))
