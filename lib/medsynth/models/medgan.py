"""MedGAN (Armanious et al., "MedGAN: Medical image translation using GANs", CMIG 79:101684, 2020;
arXiv:1806.06397): the CasNet generator, a PatchGAN whose features give a perceptual loss, VGG19 style and
content losses, and the discriminator updated once per three generator iterations.

What comes from where (the course could retrieve the paper's abstract and the summary in
``shared/papers/02_medgan.txt``, not its full text, so every number below says how sure it is):

* **U-block** (Sec. II-C, "U-blocks"; summary): an encoder of 8 conv-BN-ReLU stages taking 256x256 down to
  1x1, a mirrored decoder, skip connections concatenated at each level, no noise input. Built here as
  pix2pix's ``unet_256`` (:class:`~medsynth.models.pix2pix.UNetGenerator`, 4x4 stride-2 convs, LeakyReLU 0.2
  in the encoder as the pix2pix code does) **without dropout**: pix2pix's dropout is its noise, and MedGAN
  feeds no noise.
* **CasNet** (Sec. II-C, Fig. 2; summary): 6 U-blocks chained end to end, each refining the previous block's
  output image (``x -> U1 -> U2 -> ... -> U6``). No skip across blocks (an unofficial port adds one; the
  paper's description has none).
* **Discriminator** (Sec. II-C; summary): a conditional PatchGAN; the paper's ablation uses a 16x16 patch
  (Table I set-up, summary Sec. III-B). ``PatchDiscriminator(n_layers=1)`` has exactly a 16x16 receptive field.
* **Perceptual loss** (Sec. II-A): ``L_perc = sum_i lambda_pi * P_i`` with
  ``P_i = 1/(h_i w_i d_i) || D_i(x, y) - D_i(x, G(x)) ||_1`` over the discriminator's hidden layers, and
  ``i = 0`` the pixel L1 itself (the summary: "the perceptual loss keeps the pixel term"). The paper's
  per-layer weights ``lambda_pi`` could **not** be retrieved: ``PERCEPTUAL_WEIGHTS`` is 1 for every layer,
  the course's choice, named as such.
* **Style/content losses** (Sec. II-B): Gram-matrix style and feature content losses on a pretrained VGG19
  (:class:`~medsynth.losses.VGGStyleContentLoss`); which VGG layers the paper taps could not be verified
  (here relu1_1..relu4_1).
* **Objective** ``L = L_cGAN + lambda_1 L_perc + lambda_2 L_style + lambda_3 L_content`` with
  lambda_1 = 20, lambda_2 = lambda_3 = 1e-4 (``LAMBDAS``): the values as we recall them from the arXiv
  version's training details; the retrievable text does not contain them, so they are **unverified**.
* **Training** (Sec. II-D; summary): Adam, lr 2e-4, beta1 0.5; D updated once per 3 CasNet iterations.
  Inference 115 ms per 256x256 image and 36 h training on one Titan X (summary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsynth.blocks import count_params, init_weights
from medsynth.discriminators import PatchDiscriminator
from medsynth.losses import VGG19_LAYERS, GANLoss, VGGStyleContentLoss
from medsynth.models import translate
from medsynth.models.pix2pix import UNetGenerator
from medsynth.training import GANTask, StepContext, adam, set_requires_grad

__all__ = [
    "CasNet",
    "ublock",
    "MedGANTask",
    "d_perceptual_loss",
    "PERCEPTUAL_WEIGHTS",
    "LAMBDAS",
    "PAPER",
    "generator_params",
]

#: lambda_1 (perceptual), lambda_2 (style), lambda_3 (content): recalled from arXiv:1806.06397, unverified
LAMBDAS = {"perceptual": 20.0, "style": 1e-4, "content": 1e-4}
#: lambda_pi for i = 0 (pixel), 1, 2 (the 16x16 PatchGAN's two hidden layers): the paper's not retrieved; 1 each
PERCEPTUAL_WEIGHTS = (1.0, 1.0, 1.0)
PAPER = {
    "n_ublocks": 6,
    "encoder_stages": 8,
    "image_size": 256,
    "patch": 16,
    "lr": 2e-4,
    "beta1": 0.5,
    "d_every": 3,
    "inference_ms_titan_x": 115,
    "training_hours_titan_x": 36,
}


def ublock(in_ch: int = 1, out_ch: int = 1, num_downs: int = 8, ngf: int = 64, norm: str = "batch") -> UNetGenerator:
    """One U-block: pix2pix's U-Net with ``num_downs`` stages (8: 256 -> 1x1) and no dropout (no noise)."""
    return UNetGenerator(in_ch, out_ch, num_downs, ngf, norm, dropout=0.0)


class CasNet(nn.Module):
    """``n_blocks`` U-blocks in a chain, each refining the previous output (Sec. II-C, Fig. 2).

    ``forward(x, all_outputs=True)`` returns every block's output image (to watch the refinement).
    """

    def __init__(
        self, in_ch: int = 1, out_ch: int = 1, n_blocks: int = 6, num_downs: int = 8, ngf: int = 64, norm: str = "batch"
    ) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"CasNet needs n_blocks >= 1, got {n_blocks}")
        self.blocks = nn.ModuleList(
            ublock(in_ch if i == 0 else out_ch, out_ch, num_downs, ngf, norm) for i in range(n_blocks)
        )

    def forward(self, x: torch.Tensor, all_outputs: bool = False) -> torch.Tensor | list[torch.Tensor]:
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs if all_outputs else x


def generator_params(n_blocks: int = 6, num_downs: int = 8, ngf: int = 64, in_ch: int = 1, out_ch: int = 1) -> int:
    """Trainable parameters of a CasNet (``n_blocks=1``: one U-block)."""
    return count_params(CasNet(in_ch, out_ch, n_blocks, num_downs, ngf))


def d_perceptual_loss(
    fake: torch.Tensor,
    real: torch.Tensor,
    fake_feats: Sequence[torch.Tensor],
    real_feats: Sequence[torch.Tensor],
    weights: Sequence[float],
) -> tuple[torch.Tensor, list]:
    """MedGAN's perceptual loss (Sec. II-A): ``sum_i lambda_pi * mean|D_i(x, G(x)) - D_i(x, y)|``.

    ``i = 0`` is the pixel term ``mean|G(x) - y|``; ``i >= 1`` are the discriminator's hidden activations
    (``D(..., features=True)`` without its last entry, the score map). The mean is the paper's
    ``1/(h_i w_i d_i)`` normalisation, averaged over the batch. Real features are constants (detached).
    Returns the weighted sum and the unweighted terms ``[P_0, P_1, ...]``.
    """
    hidden = list(zip(fake_feats[:-1], real_feats[:-1], strict=True))
    if len(weights) != len(hidden) + 1:
        raise ValueError(
            f"{len(hidden) + 1} perceptual weights needed (pixel + {len(hidden)} D layers), got {len(weights)}"
        )
    terms = [F.l1_loss(fake.float(), real.float())]
    terms += [F.l1_loss(f.float(), r.detach().float()) for f, r in hidden]
    return sum(w * t for w, t in zip(weights, terms, strict=True)), terms


class MedGANTask(GANTask):
    """One MedGAN iteration; the ablation rows of Table I are its switches.

    * ``perceptual=False, style=False``: the cGAN alone; ``perceptual=True``: + D-feature perceptual loss;
      ``style=True``: + VGG19 style and content losses; ``n_blocks=6``: full MedGAN (``1``: one U-block).
    * D (conditional PatchGAN on ``cat(src, image)``) is updated on iterations 1, 1 + d_every, ... (``ctx.step``
      counts from 1 and survives resume), before that iteration's generator update; G is updated every iteration.
    * Adversarial loss: BCE on logits (the cGAN log-likelihood), D loss halved as in pix2pix's code (a choice:
      the paper does not say).
    Batches are ``{"src": (N,1,H,W), "dst": (N,1,H,W)}`` in [-1, 1].
    """

    def __init__(
        self,
        in_ch: int = 1,
        out_ch: int = 1,
        n_blocks: int = 6,
        num_downs: int = 8,
        ngf: int = 64,
        ndf: int = 64,
        n_layers_d: int = 1,
        perceptual: bool = True,
        style: bool = True,
        lambdas: dict[str, float] | None = None,
        perceptual_weights: Sequence[float] | None = None,
        vgg_features: str = "pretrained",
        vgg_layers: Sequence[int] = VGG19_LAYERS[:4],
        d_every: int = 3,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        seed: int = 0,
    ) -> None:
        if d_every < 1:
            raise ValueError(f"d_every must be >= 1, got {d_every}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = init_weights(CasNet(in_ch, out_ch, n_blocks, num_downs, ngf))
            d = init_weights(PatchDiscriminator(in_ch + out_ch, ndf, n_layers_d))
        self.nets: dict[str, nn.Module] = {"G": g, "D": d}
        self.opts = {"G": adam(g.parameters(), lr, betas), "D": adam(d.parameters(), lr, betas)}
        self.gan = GANLoss("vanilla")
        self.perceptual, self.style, self.d_every = perceptual, style, d_every
        self.lambdas = {**LAMBDAS, **(lambdas or {})}
        self.perceptual_weights = tuple(perceptual_weights or [1.0] * (n_layers_d + 2))
        self.vgg = VGGStyleContentLoss(vgg_features, vgg_layers, seed=seed) if style else None
        self.vgg_features = self.vgg.features_kind if self.vgg is not None else "off"
        self._last_d = torch.zeros(())

    def generate(self, src: torch.Tensor) -> torch.Tensor:
        return self.nets["G"](src)

    def updates_d(self, step: int) -> bool:
        """Whether iteration ``step`` (1-based) updates the discriminator: D:G = 1:d_every."""
        return (step - 1) % self.d_every == 0

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor | float]:
        src, dst = batch["src"], batch["dst"]
        G, D = self.nets["G"], self.nets["D"]
        if self.vgg is not None:
            self.vgg.to(src.device)
        with ctx.autocast():
            fake = G(src)
        d_step = self.updates_d(ctx.step)
        if d_step:
            set_requires_grad(D, True)
            with ctx.autocast():
                loss_d = 0.5 * (
                    self.gan(D(torch.cat([src, fake.detach()], 1)), False) + self.gan(D(torch.cat([src, dst], 1)), True)
                )
            ctx.update(loss_d, "D")
            self._last_d = loss_d.detach()
        set_requires_grad(D, False)
        with ctx.autocast():
            fake_feats = D(torch.cat([src, fake], 1), features=True)
            loss_gan = self.gan(fake_feats[-1], True)
            loss_g = loss_gan
            logs: dict[str, torch.Tensor | float] = {}
            if self.perceptual:
                with torch.no_grad():
                    real_feats = D(torch.cat([src, dst], 1), features=True)
                perc, terms = d_perceptual_loss(fake, dst, fake_feats, real_feats, self.perceptual_weights)
                loss_g = loss_g + self.lambdas["perceptual"] * perc
                logs.update({"perceptual": perc.detach(), **{f"P{i}": t.detach() for i, t in enumerate(terms)}})
            if self.vgg is not None:
                sty, con = self.vgg(fake, dst)
                loss_g = loss_g + self.lambdas["style"] * sty + self.lambdas["content"] * con
                logs.update({"style": sty.detach(), "content": con.detach()})
        ctx.update(loss_g, "G")
        set_requires_grad(D, True)
        l1 = F.l1_loss(fake.detach().float(), dst.float())
        return {"D": self._last_d, "D_updated": float(d_step), "G_gan": loss_gan.detach(), "L1": l1, **logs}

    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        return [batch["src"], translate(self, batch["src"]), batch["dst"]]
