"""pix2pix (Isola et al., CVPR 2017): U-Net generator, 70x70 PatchGAN, cGAN + lambda L1.

The objective is the paper's Eq. (4): ``G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)``
with lambda = 100, the BCE ("vanilla") GAN loss, D loss halved (the paper's "divide the
objective by 2 while optimising D"), Adam 2e-4 (0.5, 0.999). Dropout in the decoder's three
innermost layers is the generator's only noise (Sec. 3.1); the paper keeps it (and batch
statistics) on at test time, whereas ``sample`` and :func:`medsynth.models.translate` use eval mode
(running statistics, no dropout), like the reference ``test.py`` with ``--eval``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsynth.blocks import UNetBlock, init_weights
from medsynth.discriminators import PatchDiscriminator
from medsynth.losses import GANLoss
from medsynth.models import translate
from medsynth.training import GANTask, StepContext, adam, set_requires_grad

__all__ = ["UNetGenerator", "Pix2PixTask"]


class UNetGenerator(nn.Module):
    """U-Net with ``num_downs`` 4x4 stride-2 levels (8 for "unet_256": 256 -> 1x1 bottleneck).

    Widths ngf, 2ngf, 4ngf, then 8ngf for the remaining levels; dropout 0.5 in the three
    decoder levels nearest the bottleneck (pix2pix's ``unet_256``). Inputs must be divisible by
    ``2**num_downs``.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 1,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError("num_downs must be >= 5 (ngf..8ngf ladder)")
        self.num_downs = num_downs
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        block = UNetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UNetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UNetBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UNetBlock(out_ch, ngf, in_ch=in_ch, submodule=block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2**self.num_downs
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be divisible by 2**num_downs = {f}")
        return self.model(x)


class Pix2PixTask(GANTask):
    """One pix2pix iteration: D on (src, real) vs (src, G(src)) then G on cGAN + lambda L1.

    Batches are ``{"src": (N,3,H,W), "dst": (N,1,H,W)}`` in [-1, 1].
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 1,
        num_downs: int = 8,
        ngf: int = 64,
        ndf: int = 64,
        n_layers_d: int = 3,
        lambda_l1: float = 100.0,
        gan_mode: str = "vanilla",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        seed: int = 0,
    ) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = init_weights(UNetGenerator(in_ch, out_ch, num_downs, ngf))
            d = init_weights(PatchDiscriminator(in_ch + out_ch, ndf, n_layers_d))
        self.nets: dict[str, nn.Module] = {"G": g, "D": d}
        self.opts = {"G": adam(g.parameters(), lr, betas), "D": adam(d.parameters(), lr, betas)}
        self.gan = GANLoss(gan_mode)
        self.lambda_l1 = lambda_l1

    def generate(self, src: torch.Tensor) -> torch.Tensor:
        return self.nets["G"](src)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        src, dst = batch["src"], batch["dst"]
        G, D = self.nets["G"], self.nets["D"]
        with ctx.autocast():
            fake = G(src)
        set_requires_grad(D, True)
        with ctx.autocast():
            loss_d = 0.5 * (
                self.gan(D(torch.cat([src, fake.detach()], 1)), False) + self.gan(D(torch.cat([src, dst], 1)), True)
            )
        ctx.update(loss_d, "D")
        set_requires_grad(D, False)
        with ctx.autocast():
            loss_gan = self.gan(D(torch.cat([src, fake], 1)), True)
            loss_l1 = F.l1_loss(fake.float(), dst.float())
            loss_g = loss_gan + self.lambda_l1 * loss_l1
        ctx.update(loss_g, "G")
        set_requires_grad(D, True)
        return {"D": loss_d.detach(), "G_gan": loss_gan.detach(), "L1": loss_l1.detach()}

    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        return [batch["src"], translate(self, batch["src"]), batch["dst"]]
