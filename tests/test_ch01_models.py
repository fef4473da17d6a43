"""Chapter 01 networks: shapes, patch sizes and parameter counts the papers state."""

from __future__ import annotations

import pytest
import torch

from medsynth.blocks import count_params
from medsynth.discriminators import PatchDiscriminator, patch_output_size, receptive_field
from medsynth.models.fundus2angio import CoarseGenerator, FineGenerator, Fundus2AngioTask, fundus2angio_discriminator
from medsynth.models.pix2pix import UNetGenerator
from medsynth.models.pix2pixhd import Pix2PixHDGenerator, Pix2PixHDTask


@torch.no_grad()
def test_coarse_and_fine_generator_shapes() -> None:
    """Sec. 3.2: G_coarse 256 in/out with a 256x256x64 feature; G_fine 512 in/out, tanh outputs."""
    gc, gf = CoarseGenerator().eval(), FineGenerator().eval()
    img, feat = gc(torch.randn(1, 3, 256, 256))
    assert img.shape == (1, 1, 256, 256) and feat.shape == (1, 64, 256, 256)
    out = gf(torch.randn(1, 3, 512, 512), feat)
    assert out.shape == (1, 1, 512, 512) and out.abs().max() <= 1
    assert sum(isinstance(m, torch.nn.Tanh) for m in gc.modules()) == 1


def test_generator_structure_follows_code() -> None:
    """2 stride-2 convs and 9 blocks in G_coarse, 1 and 3 in G_fine."""
    gc, gf = CoarseGenerator(), FineGenerator()
    strided = lambda g: sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in g.modules())  # noqa: E731
    blocks = lambda g: sum(type(m).__name__ == "ResidualBlock" for m in g.modules())  # noqa: E731
    assert (strided(gc), blocks(gc), strided(gf), blocks(gf)) == (2, 9, 1, 3)
    assert count_params(gc) == 6_679_297 and count_params(gf) == 168_769


def test_four_patchgan_output_sizes() -> None:
    """Sec. 3.3: D1/D2 fine give 64x64 and 32x32 on 512 inputs; D1/D2 coarse 32x32 and 16x16 on 256."""
    d = fundus2angio_discriminator(in_ch=4)
    assert patch_output_size(d, 4, 512) == [(64, 64), (32, 32)]
    assert patch_output_size(d, 4, 256) == [(32, 32), (16, 16)]
    task = Fundus2AngioTask(ncf=8, nff=4, ndf=4, width=8, n_blocks_coarse=1, n_blocks_fine=1)
    assert patch_output_size(task.nets["D_fine"], 4, 512) == [(64, 64), (32, 32)]
    assert patch_output_size(task.nets["D_coarse"], 4, 256) == [(32, 32), (16, 16)]


def test_multiscale_discriminators_have_independent_weights() -> None:
    d = fundus2angio_discriminator(in_ch=4)
    p0, p1 = (set(map(id, s.parameters())) for s in d.ds)
    assert not p0 & p1
    with torch.no_grad():
        next(d.ds[0].parameters()).add_(1.0)
    assert not torch.equal(next(d.ds[0].parameters()), next(d.ds[1].parameters()))


def test_pix2pix_unet256_and_70x70_patchgan() -> None:
    g = UNetGenerator(3, 1, num_downs=8, ngf=64)
    assert count_params(g) == 54_409_857
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3
    d = PatchDiscriminator(4, ndf=64, n_layers=3)
    assert receptive_field(d) == 70 and patch_output_size(d, 4, 256) == [(30, 30)]
    with torch.no_grad():
        assert g.eval()(torch.randn(1, 3, 256, 256)).shape == (1, 1, 256, 256)
    with pytest.raises(ValueError, match="divisible"):
        g(torch.randn(1, 3, 200, 200))


@torch.no_grad()
def test_pix2pixhd_global_plus_local() -> None:
    g = Pix2PixHDGenerator(3, 1, ngf_local=4, n_down_global=2, n_blocks_global=1, n_blocks_local=1).eval()
    assert g(torch.randn(2, 3, 64, 64)).shape == (2, 1, 64, 64)
    assert g.global_g.feature_channels == 2 * 4
    task = Pix2PixHDTask(ngf_local=4, n_down_global=2, n_blocks_global=1, ndf=8, num_d=3, vgg_features="off")
    assert patch_output_size(task.nets["D"], 4, 64) == [(11, 11), (7, 7), (5, 5)]
    assert len({id(p) for s in task.nets["D"].ds for p in s.parameters()}) == sum(
        1 for s in task.nets["D"].ds for _ in s.parameters()
    )


def test_fundus2angio_widths_must_match() -> None:
    with pytest.raises(ValueError, match="ncf == 2\\*nff"):
        Fundus2AngioTask(ncf=16, nff=16)


def _keras_conv2d(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)  # keras.layers.Conv2D


def _keras_separable(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return k * k * c_in + c_in * c_out + (c_out if bias else 0)  # SeparableConv2D, depth_multiplier=1


def _keras_bn(c: int) -> int:
    return 4 * c  # gamma, beta, moving mean and variance


@pytest.mark.parametrize("c", [32, 64, 256])
def test_block_counts_follow_the_official_layer_arithmetic(c: int) -> None:
    """src/model.py's novel_residual_block is Conv2D, BN, LeakyReLU, SeparableConv2D, BN (+ skip); the plain
    block has two Conv2D. Keras' summary() counts conv biases (default use_bias=True): 18,752 / 10,848 at
    C = 32; Fig. 2's 18,688 / 10,784 are the same layers without the two conv biases (BN follows them)."""
    from medsynth.blocks import ResidualBlock, SeparableResidualBlock, keras_param_count

    novel = _keras_conv2d(c, c) + _keras_bn(c) + _keras_separable(c, c) + _keras_bn(c)
    plain = 2 * (_keras_conv2d(c, c) + _keras_bn(c))
    assert keras_param_count(SeparableResidualBlock(c)) == novel - 2 * c
    assert keras_param_count(ResidualBlock(c, act="relu")) == plain - 2 * c
    assert count_params(SeparableResidualBlock(c)) == novel - 2 * c - 2 * 2 * c  # minus BN moving stats
    if c == 32:
        assert (novel, plain) == (10_848, 18_752) and (novel - 64, plain - 64) == (10_784, 18_688)


def test_what_makes_the_generators_small() -> None:
    """G_coarse: 6.68 M with the novel block, 11.38 M with plain blocks; pix2pixHD's 182 M global generator
    comes from its four downsamplings (1024-channel blocks): the novel block alone at 4 downsamplings is 107 M."""
    from medsynth.models.pix2pixhd import GlobalGenerator

    assert count_params(CoarseGenerator()) == 6_679_297
    assert count_params(GlobalGenerator(3, 1, 64, 2, 9, norm="batch", act="lrelu", separable=False)) == 11_377_153
    assert count_params(GlobalGenerator(3, 1, 64, 4, 9, norm="batch", act="lrelu", separable=True)) == 107_043_841
    assert count_params(Pix2PixHDGenerator(3, 1).global_g) == 182_415_617
