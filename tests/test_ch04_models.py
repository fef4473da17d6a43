"""Chapter 04 networks: shapes, heads, the bottleneck condition, the VAE pieces."""

from __future__ import annotations

import math

import pytest
import torch

from medsynth.models.structsynth import (
    CondUNet,
    Decoder,
    LatentDisc,
    VAEEncoder,
    VGGDisc,
    kl_divergence,
    latent_shape,
    one_hot_map,
    reparameterise,
)


def test_vae_shapes_and_reparameterisation():
    e, g = VAEEncoder(1, z_ch=4, width=8, stages=4), Decoder(4, 1, width=8, stages=4)
    s = torch.rand(2, 1, 32, 32)
    mean, logvar = e(s)
    assert mean.shape == logvar.shape == (2, *latent_shape(32, 4, 4))
    z = torch.ones_like(mean)
    f = reparameterise(mean, logvar, z)
    torch.testing.assert_close(f, mean + torch.exp(0.5 * logvar))
    out = g(f)
    assert out.shape == (2, 1, 32, 32) and 0 <= float(out.detach().min()) and float(out.detach().max()) <= 1
    assert LatentDisc(4, 8)(f).shape == (2, 1, 2, 2)
    with pytest.raises(ValueError):
        latent_shape(30, 4, 4)


def test_kl_hand_value():
    assert float(kl_divergence(torch.zeros(3, 2, 2, 2), torch.zeros(3, 2, 2, 2))) == 0.0
    mean = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 * [(1 + 1 - 1 - 0) + (0 + 2 - 1 - ln 2)] = 0.5 * (2 - ln 2)
    assert float(kl_divergence(mean, logvar)) == pytest.approx(0.5 * (2 - math.log(2.0)), rel=1e-6)


def test_acgan_discriminator_heads():
    d = VGGDisc(1, n_classes=4, width=8, stages=3)
    real, cls = d(torch.randn(3, 1, 64, 64))
    assert real.shape == (3, 1, 8, 8) and cls.shape == (3, 4, 8, 8)
    d1 = VGGDisc(1, n_classes=0, width=8, stages=3)
    real, cls = d1(torch.randn(3, 1, 64, 64))
    assert real.shape == (3, 1, 8, 8) and cls is None


def test_cond_unet_shapes_and_condition_changes_output():
    torch.manual_seed(0)
    g = CondUNet(2, 1, n_cond=4, width=8, depth=3)  # train mode: fresh BatchNorm running stats are not data stats
    x = torch.rand(2, 2, 64, 64)
    y0 = g(x, torch.tensor([0, 0])).detach()
    y1 = g(x, torch.tensor([1, 1])).detach()
    assert y0.shape == (2, 1, 64, 64) and float(y0.detach().abs().max()) <= 1
    assert float((y0 - y1).abs().mean()) > 0.01 * float(y0.abs().mean())  # the one-hot condition matters
    torch.testing.assert_close(g(x, torch.eye(4)[[1, 1]]), y1)  # indices == one-hot rows
    with pytest.raises(ValueError):
        g(x)  # a conditional net needs its condition
    with pytest.raises(ValueError):
        g(torch.rand(1, 2, 60, 60), torch.tensor([0]))
    seg = CondUNet(1, 1, 0, 8, 2, out_act="none")
    assert seg(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    assert one_hot_map(torch.tensor([2]), 4, (3, 3))[0, 2].sum() == 9
