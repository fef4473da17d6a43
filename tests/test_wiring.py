"""Data flow through the networks (issue 18, point 1): bugs that keep shapes, counts and layer names.

Each test pins one wiring fact that a plausible one-line bug would break while every shape and parameter
count stayed the same: the residual add, the order of the separable convolution's two steps, and where
Fundus2Angio's coarse feature enters the fine generator.
"""

from __future__ import annotations

import torch
from torch import nn

from medsynth.blocks import ResidualBlock, SeparableConv2d, SeparableResidualBlock
from medsynth.models.fundus2angio import CoarseGenerator, FineGenerator


def _zero_last_norm(block: ResidualBlock) -> None:
    norm = [m for m in block.body.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))][-1]
    nn.init.zeros_(norm.weight)
    nn.init.zeros_(norm.bias)


def test_residual_block_is_identity_when_its_body_outputs_zero() -> None:
    """``x + F(x)``: with F's last norm scaled to 0, F(x) = 0 and the block returns x exactly."""
    for block in (ResidualBlock(8), SeparableResidualBlock(8), ResidualBlock(8, act="lrelu", dropout=0.5)):
        _zero_last_norm(block)
        x = torch.randn(2, 8, 10, 10)
        assert torch.equal(block.train()(x), x)  # not body(x) alone (that would be all zeros)


def test_residual_block_adds_its_body_to_the_input() -> None:
    torch.manual_seed(0)
    block = ResidualBlock(4).eval()
    x = torch.randn(1, 4, 9, 9)
    assert torch.allclose(block(x), x + block.body(x))
    assert not torch.allclose(block(x), block.body(x))


def test_separable_conv_is_depthwise_kxk_then_pointwise() -> None:
    """The first step is a per-channel K x K conv (groups = C), the second a 1 x 1 conv: checked by value."""
    conv = SeparableConv2d(3, 5, 3, bias=False)
    dw, pw = conv[0], conv[1]
    assert (dw.kernel_size, dw.groups, dw.in_channels, dw.out_channels) == ((3, 3), 3, 3, 3)
    assert pw.kernel_size == (1, 1) and (pw.in_channels, pw.out_channels) == (3, 5)
    # hand-built: depthwise kernels pick one neighbour per channel, the 1x1 mixes channels
    with torch.no_grad():
        dw.weight.zero_()
        dw.weight[0, 0, 0, 0] = 1.0  # channel 0: top-left neighbour
        dw.weight[1, 0, 1, 1] = 2.0  # channel 1: centre, x2
        dw.weight[2, 0, 2, 2] = -1.0  # channel 2: bottom-right, negated
        pw.weight.copy_(torch.arange(15, dtype=torch.float32).reshape(5, 3, 1, 1))
    x = torch.randn(1, 3, 5, 5)
    depth = torch.stack([x[0, 0, :3, :3], 2 * x[0, 1, 1:4, 1:4], -x[0, 2, 2:5, 2:5]])  # (3, 3, 3)
    want = torch.einsum("oc,chw->ohw", pw.weight[:, :, 0, 0], depth)
    assert torch.allclose(conv(x)[0], want, atol=1e-5)


def test_novel_block_second_conv_is_the_separable_one() -> None:
    block = SeparableResidualBlock(6)
    convs = [m for m in block.body.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.groups) for c in convs] == [((3, 3), 1), ((3, 3), 6), ((1, 1), 1)]


def test_coarse_feature_enters_before_the_fine_residual_blocks() -> None:
    """Sec. 3.2: G_fine adds the coarse feature right after its downsampling, before its residual blocks."""
    torch.manual_seed(0)
    gc, gf = CoarseGenerator(ncf=8, n_blocks=1).eval(), FineGenerator(nff=4, n_blocks=2).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        _, feat = gc(torch.randn(1, 3, 16, 16))
        seen = {}
        hook = gf.blocks[0].register_forward_hook(lambda m, inp, out: seen.setdefault("in", inp[0].clone()))
        out = gf(x, feat)
        hook.remove()
        assert torch.allclose(seen["in"], gf.down(x) + feat)
        # and the feature changes the output (it is not added after the last layer or dropped)
        assert not torch.allclose(out, gf(x, torch.zeros_like(feat)))
