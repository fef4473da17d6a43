"""Shared building blocks: Fundus2Angio Fig. 2 parameter counts, shapes, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from medsynth.blocks import (
    LanczosDownsample,
    ResidualBlock,
    SeparableConv2d,
    SeparableResidualBlock,
    UNetBlock,
    avg_downsample,
    conv_unit,
    count_params,
    down,
    keras_param_count,
    up,
)


def test_fig2_parameter_counts_keras_and_pytorch() -> None:
    """Fig. 2: C = 32, K = 3 -> 18,688 (original) vs 10,784 (proposed), Keras counting."""
    plain, novel = ResidualBlock(32), SeparableResidualBlock(32)
    assert keras_param_count(plain) == 18_688
    assert keras_param_count(novel) == 10_784
    # PyTorch counts trainable parameters only: BN's running stats are buffers (2 x 32 per BN fewer)
    assert count_params(plain) == 18_688 - 2 * 2 * 32 == 18_560
    assert count_params(novel) == 10_784 - 2 * 2 * 32 == 10_656


def test_novel_block_structure() -> None:
    """Reflection pad -> conv -> BN -> LeakyReLU -> pad -> separable conv -> BN (no final activation)."""
    block = SeparableResidualBlock(8)
    kinds = [type(m).__name__ for m in block.body.modules() if not isinstance(m, nn.Sequential)]
    assert kinds == [
        "ReflectionPad2d",
        "Conv2d",
        "BatchNorm2d",
        "LeakyReLU",
        "ReflectionPad2d",
        "Conv2d",
        "Conv2d",
        "BatchNorm2d",
    ]  # the separable conv = depthwise + pointwise
    x = torch.randn(2, 8, 12, 12)
    assert block(x).shape == x.shape


def test_separable_conv_counts() -> None:
    conv = SeparableConv2d(32, 32, 3, bias=False)
    assert count_params(conv) == 9 * 32 + 32 * 32


def test_conv_unit_bias_rule_and_shapes() -> None:
    assert conv_unit(3, 8, norm="batch")[0].bias is None  # BN cancels a bias
    assert conv_unit(3, 8, norm="none", act="none")[0].bias is not None
    x = torch.randn(1, 4, 16, 16)
    assert down(4, 8)(x).shape == (1, 8, 8, 8)
    assert up(4, 2)(x).shape == (1, 2, 32, 32)


def test_unet_block_concatenates_skip() -> None:
    inner = UNetBlock(8, 16, innermost=True)
    assert inner(torch.randn(2, 8, 4, 4)).shape == (2, 16, 4, 4)
    outer = UNetBlock(1, 8, in_ch=3, submodule=inner, outermost=True)
    y = outer(torch.randn(2, 3, 8, 8))
    assert y.shape == (2, 1, 8, 8) and y.abs().max() <= 1


def test_lanczos_matches_pil_in_the_interior() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((48, 48)).astype(np.float32)
    pil = np.asarray(Image.fromarray(a, mode="F").resize((24, 24), Image.LANCZOS))
    ours = LanczosDownsample()(torch.from_numpy(a * 2 - 1)[None, None])[0, 0].numpy() / 2 + 0.5
    pil = np.clip(pil, 0, 1)  # ours clamps to the image range, PIL's float mode does not
    inner = (slice(3, -3), slice(3, -3))  # borders differ: reflection vs PIL's renormalisation
    assert np.abs(ours[inner] - pil[inner]).max() < 1e-5


def test_avg_downsample_excludes_padding() -> None:
    x = torch.ones(1, 1, 8, 8)
    y = avg_downsample(x)
    assert y.shape == (1, 1, 4, 4) and torch.allclose(y, torch.ones_like(y))


@pytest.mark.parametrize("sep", [False, True])
def test_residual_block_gradients_flow(sep: bool) -> None:
    block = ResidualBlock(4, separable=sep)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    block(x).sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in block.parameters())


def test_count_params_skips_frozen_parameters_unless_asked() -> None:
    """Defaults as values (issue 18): trainable only by default; ``trainable_only=False`` counts everything."""
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 16 + 10 parameters
    net[0].requires_grad_(False)
    assert count_params(net) == 10
    assert count_params(net, trainable_only=False) == 26
    assert count_params(net, trainable_only=True) == 10


def test_keras_count_adds_conv_biases_only_when_asked() -> None:
    """Fig. 2 counts bias-free convs; ``conv_bias=True`` adds exactly the conv/linear biases, never BN's."""
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ConvTranspose2d(3, 5, 2), nn.Conv2d(5, 1, 1, bias=False)
    )
    weights = 2 * 3 * 9 + 3 * 5 * 4 + 5
    assert keras_param_count(net) == weights + 4 * 3
    assert keras_param_count(net, conv_bias=True) == weights + 4 * 3 + 3 + 5


def _spec(m: nn.Module) -> tuple:
    """A layer as the official ``UnetSkipConnectionBlock`` defines it: type and the arguments that matter."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        return (type(m).__name__, m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.bias is not None)
    if isinstance(m, nn.LeakyReLU):
        return ("LeakyReLU", m.negative_slope)
    if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return (type(m).__name__, m.num_features)
    if isinstance(m, nn.Dropout):
        return ("Dropout", m.p)
    return (type(m).__name__,)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_blocks_match_the_official_layer_sequence(norm: str) -> None:
    """junyanz/pytorch-CycleGAN-and-pix2pix ``UnetSkipConnectionBlock``, layer by layer, at non-default widths:
    conv biases only without BatchNorm (the outermost up-conv always has one), the down-norm on the inner
    channels, dropout after the up-norm of a middle block, tanh at the top."""
    b = norm != "batch"
    k, s, p = (4, 4), (2, 2), (1, 1)
    inner = UNetBlock(6, 12, norm=norm, innermost=True)
    mid = UNetBlock(5, 6, submodule=inner, norm=norm, dropout=0.5)
    top = UNetBlock(2, 5, in_ch=3, submodule=mid, outermost=True, norm=norm)
    N = "BatchNorm2d" if norm == "batch" else "InstanceNorm2d"
    assert [_spec(m) for m in inner.model] == [
        ("LeakyReLU", 0.2),
        ("Conv2d", 6, 12, k, s, p, b),
        ("ReLU",),
        ("ConvTranspose2d", 12, 6, k, s, p, b),
        (N, 6),
    ]
    assert [_spec(m) for m in mid.model] == [
        ("LeakyReLU", 0.2),
        ("Conv2d", 5, 6, k, s, p, b),
        (N, 6),
        ("UNetBlock",),
        ("ReLU",),
        ("ConvTranspose2d", 12, 5, k, s, p, b),
        (N, 5),
        ("Dropout", 0.5),
    ]
    assert [_spec(m) for m in top.model] == [
        ("Conv2d", 3, 5, k, s, p, b),
        ("UNetBlock",),
        ("ReLU",),
        ("ConvTranspose2d", 10, 2, k, s, p, True),
        ("Tanh",),
    ]
    x = torch.randn(1, 3, 8, 8)
    assert top(x).shape == (1, 2, 8, 8) and mid(torch.randn(1, 5, 4, 4)).shape == (1, 10, 4, 4)
    assert torch.equal(mid(y := torch.randn(1, 5, 4, 4))[:, :5], y)  # the skip: input first, then the up path
