"""Adversarial, feature-matching and VGG losses, and the explicit random-feature fallback."""

from __future__ import annotations

import pytest
import torch

from medsynth.discriminators import MultiScaleDiscriminator
from medsynth.losses import GANLoss, VGGLoss, feature_matching_loss, scores
from medsynth.weights import WeightsUnavailable


def test_lsgan_targets_and_scale_sum() -> None:
    gan = GANLoss("lsgan")
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert gan(ones, real=True) == 0 and gan(zeros, real=False) == 0
    assert gan(zeros, real=True) == 1
    assert gan([zeros, zeros], real=True) == 2  # summed over scales (pix2pixHD Eq. 3)
    assert gan([[ones, zeros], [ones, zeros]], real=True) == 2  # feature lists: the last entry is the score
    eq3 = GANLoss("lsgan", fake_label=-1.0)  # Eq. (3) as printed: (D(x, G(x)) + 1)^2
    assert eq3(-ones, real=False) == 0 and eq3(zeros, real=False) == 1


def test_vanilla_is_bce_on_logits() -> None:
    gan = GANLoss("vanilla")
    logits = torch.zeros(1, 1, 2, 2)
    assert torch.isclose(gan(logits, True), torch.log(torch.tensor(2.0)))
    with pytest.raises(ValueError):
        GANLoss("wgan")


def test_feature_matching_zero_for_equal_and_weighted() -> None:
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(4, num_d=2, ndf=8, n_layers=3, norm="instance", padding=2)
    x = torch.randn(2, 4, 32, 32)
    real = d(x, features=True)
    assert len(real) == 2 and len(real[0]) == 5 and scores(real)[1].shape[1] == 1
    assert feature_matching_loss(real, real) == 0
    fake = [[f + 1.0 for f in scale] for scale in real]
    # every hidden layer differs by exactly 1: sum over 2 scales x 4 layers of (1/2)(4/4) * 1 = 4
    assert torch.isclose(feature_matching_loss(fake, real), torch.tensor(4.0))


def test_feature_matching_detaches_real() -> None:
    a = [[torch.randn(1, 2, 4, 4, requires_grad=True), torch.randn(1, 1, 2, 2)]]
    b = [[torch.randn(1, 2, 4, 4, requires_grad=True), torch.randn(1, 1, 2, 2)]]
    feature_matching_loss(a, b).backward()
    assert a[0][0].grad is not None and b[0][0].grad is None


def test_vgg_loss_without_weights_raises(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("MEDSYNTH_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="vgg19"):
        VGGLoss()
    with pytest.raises(ValueError):
        VGGLoss(features="auto")  # the fallback must be asked for by name


def test_vgg_loss_random_fallback_is_labelled_and_works() -> None:
    loss = VGGLoss(features="random")
    assert loss.features_kind == "random"
    assert not any(p.requires_grad for p in loss.parameters())
    torch.manual_seed(0)
    y = torch.rand(1, 1, 32, 32) * 2 - 1
    fake = (y + 0.3 * torch.randn_like(y)).clamp(-1, 1).requires_grad_(True)
    assert loss(y, y) == 0
    value = loss(fake, y)
    value.backward()
    assert value > 0 and fake.grad is not None


def test_vgg_loss_takes_stacks_of_grey_frames() -> None:
    loss = VGGLoss(features="random")
    a, b = torch.rand(2, 4, 32, 32) * 2 - 1, torch.rand(2, 4, 32, 32) * 2 - 1
    expected = loss(a.reshape(8, 1, 32, 32), b.reshape(8, 1, 32, 32))
    assert torch.isclose(loss(a, b), expected)


def test_optional_vgg_loss_switch_and_error():
    from medsynth.losses import VGGLoss, optional_vgg_loss

    assert optional_vgg_loss("off") == (None, "off")
    vgg, kind = optional_vgg_loss("random", seed=3)
    assert isinstance(vgg, VGGLoss) and kind == "random" == vgg.features_kind
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(vgg(x, x)) == 0.0 and float(vgg(x, -x)) > 0  # a real loss, not a placeholder
    # the same seed gives the same random features (the task's seed reaches the loss)
    again, _ = optional_vgg_loss("random", seed=3)
    assert torch.allclose(vgg(x, -x), again(x, -x))
    with pytest.raises(ValueError, match="vgg_features must be 'pretrained', 'random' or 'off', got 'vgg16'"):
        optional_vgg_loss("vgg16")
