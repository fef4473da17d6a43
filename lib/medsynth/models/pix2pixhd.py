"""pix2pixHD (Wang et al., CVPR 2018): coarse-to-fine generator, multi-scale D, feature matching, VGG.

The generator is a *global* ResNet generator G1 working at half resolution and a *local
enhancer* G2 at full resolution; G2 adds G1's last feature map to its own after its first
downsampling (pix2pixHD Sec. 3.2, Fig. 3). Fundus2Angio (chapter 01) keeps exactly this
structure and changes the pieces: its separable residual block, BatchNorm + LeakyReLU instead
of InstanceNorm + ReLU, 2 instead of 4 downsamplings, and its own discriminators -- which is
why :class:`GlobalGenerator` and :class:`LocalEnhancer` take those as arguments.

Defaults follow NVIDIA's code for ``--netG local --ngf 32`` (global ngf 64, 4 downsamplings,
9 blocks; local ngf 32, 3 blocks), ``num_D 2``, ``n_layers_D 3``, ``ndf 64``, LSGAN,
lambda_feat 10 for both feature matching and VGG, Adam 2e-4 (0.5, 0.999).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medsynth.blocks import ResidualBlock, avg_downsample, down, head, init_weights, stem, up
from medsynth.discriminators import MultiScaleDiscriminator
from medsynth.losses import GANLoss, feature_matching_loss, optional_vgg_loss
from medsynth.models import translate
from medsynth.training import GANTask, StepContext, adam, set_requires_grad

__all__ = ["GlobalGenerator", "LocalEnhancer", "Pix2PixHDGenerator", "Pix2PixHDTask"]


def _res_block(ch: int, separable: bool, norm: str, act: str) -> nn.Module:
    return ResidualBlock(ch, separable=separable, norm=norm, act=act)


class GlobalGenerator(nn.Module):
    """stem(7x7) -> ``n_down`` stride-2 convs -> ``n_blocks`` residual blocks -> ``n_down`` transposed
    convs -> head(7x7, tanh). ``forward`` returns ``(image, feature)``, where ``feature`` is the last
    decoder activation (``ngf`` channels at full size): what the local enhancer / G_fine adds in.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_down: int = 4,
        n_blocks: int = 9,
        norm: str = "instance",
        act: str = "relu",
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.n_down = n_down
        layers = [stem(in_ch, ngf, norm, act)]
        layers += [down(ngf * 2**i, ngf * 2 ** (i + 1), norm, act) for i in range(n_down)]
        layers += [_res_block(ngf * 2**n_down, separable, norm, act) for _ in range(n_blocks)]
        layers += [up(ngf * 2 ** (n_down - i), ngf * 2 ** (n_down - i - 1), norm, act) for i in range(n_down)]
        self.body = nn.Sequential(*layers)
        self.head = head(ngf, out_ch)
        self.feature_channels = ngf

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] % 2**self.n_down or x.shape[-2] % 2**self.n_down:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be divisible by 2**n_down = {2**self.n_down}")
        feat = self.body(x)
        return self.head(feat), feat


class LocalEnhancer(nn.Module):
    """stem(7x7) -> one stride-2 conv -> (+ coarse feature) -> ``n_blocks`` residual blocks ->
    transposed conv -> head(7x7, tanh). ``forward(x, coarse_feature)``; the feature must have
    ``2 * ngf`` channels at half the input size (pix2pixHD: the global generator has ``2 * ngf``).
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 32,
        n_blocks: int = 3,
        norm: str = "instance",
        act: str = "relu",
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.down = nn.Sequential(stem(in_ch, ngf, norm, act), down(ngf, 2 * ngf, norm, act))
        self.blocks = nn.Sequential(*[_res_block(2 * ngf, separable, norm, act) for _ in range(n_blocks)])
        self.up = up(2 * ngf, ngf, norm, act)
        self.head = head(ngf, out_ch)
        self.feature_channels = 2 * ngf

    def forward(self, x: torch.Tensor, coarse_feature: torch.Tensor) -> torch.Tensor:
        return self.head(self.up(self.blocks(self.down(x) + coarse_feature)))


class Pix2PixHDGenerator(nn.Module):
    """G = {G1, G2}: the global generator runs on the input average-pooled by 2 (pix2pixHD's code),
    its feature is added into the local enhancer. ``local=False`` gives G1 alone, at full size."""

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf_local: int = 32,
        ngf_global: int | None = None,
        n_down_global: int = 4,
        n_blocks_global: int = 9,
        n_blocks_local: int = 3,
        local: bool = True,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        ngf_global = 2 * ngf_local if ngf_global is None else ngf_global
        self.global_g = GlobalGenerator(in_ch, out_ch, ngf_global, n_down_global, n_blocks_global, norm)
        self.local_g = LocalEnhancer(in_ch, out_ch, ngf_local, n_blocks_local, norm) if local else None
        if local and ngf_global != 2 * ngf_local:
            raise ValueError("the global generator's width must be twice the local enhancer's")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.local_g is None:
            return self.global_g(x)[0]
        _, feat = self.global_g(avg_downsample(x))
        return self.local_g(x, feat)


class Pix2PixHDTask(GANTask):
    """pix2pixHD's objective (its Eq. 4 + the VGG term of Sec. 3.2/4):

    ``min_G ( max_{D1..Dk} sum_k L_GAN(G, D_k) + lambda_FM sum_k L_FM(G, D_k) + lambda_VGG L_VGG )``
    with LSGAN, lambda_FM = lambda_VGG = 10; D loss = 0.5 (real + fake) as in NVIDIA's code, and its update
    order: all D passes first, then the G step, then the D step (one set of D weights per iteration).

    ``vgg_features``: "pretrained" (raises :class:`~medsynth.weights.WeightsUnavailable` when the
    VGG19 file is absent), "random" (the labelled fallback), or "off" (no VGG term, like
    ``--no_vgg_loss``). ``self.vgg_features`` records what was used, for labelling.
    Batches are ``{"src": (N,3,H,W), "dst": (N,1,H,W)}`` in [-1, 1].
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 1,
        ngf_local: int = 32,
        n_down_global: int = 4,
        n_blocks_global: int = 9,
        n_blocks_local: int = 3,
        ndf: int = 64,
        num_d: int = 2,
        n_layers_d: int = 3,
        lambda_feat: float = 10.0,
        lambda_vgg: float = 10.0,
        vgg_features: str = "pretrained",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        seed: int = 0,
    ) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = init_weights(
                Pix2PixHDGenerator(in_ch, out_ch, ngf_local, None, n_down_global, n_blocks_global, n_blocks_local)
            )
            d = init_weights(
                MultiScaleDiscriminator(in_ch + out_ch, num_d, ndf=ndf, n_layers=n_layers_d, norm="instance", padding=2)
            )
        self.nets: dict[str, nn.Module] = {"G": g, "D": d}
        self.opts = {"G": adam(g.parameters(), lr, betas), "D": adam(d.parameters(), lr, betas)}
        self.gan = GANLoss("lsgan")
        self.lambda_feat, self.lambda_vgg = lambda_feat, lambda_vgg
        self.vgg, self.vgg_features = optional_vgg_loss(vgg_features, seed)

    def generate(self, src: torch.Tensor) -> torch.Tensor:
        return self.nets["G"](src)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        src, dst = batch["src"], batch["dst"]
        G, D = self.nets["G"], self.nets["D"]
        if self.vgg is not None:
            self.vgg.to(ctx.device)
        with ctx.autocast():
            fake = G(src)
        # NVIDIA's order (pix2pixHD_model.forward, then train.py: optimizer_G.step() before optimizer_D.step()):
        # every D pass of the iteration uses the same D weights, so the feature-matching targets (real
        # features) and the fake features come from one discriminator
        set_requires_grad(D, True)
        with ctx.autocast():
            d_fake = D(torch.cat([src, fake.detach()], 1), features=True)
            d_real = D(torch.cat([src, dst], 1), features=True)
            loss_d = 0.5 * (self.gan(d_fake, False) + self.gan(d_real, True))
        # generator: fool every scale, match D's features on the real pair, match VGG features
        set_requires_grad(D, False)
        with ctx.autocast():
            g_fake = D(torch.cat([src, fake], 1), features=True)
            loss_gan = self.gan(g_fake, True)
            loss_fm = self.lambda_feat * feature_matching_loss(g_fake, d_real)  # d_real detached inside
            loss_vgg = (
                self.lambda_vgg * self.vgg(fake.float(), dst.float())
                if self.vgg is not None
                else torch.zeros((), device=src.device)
            )
            loss_g = loss_gan + loss_fm + loss_vgg
        ctx.update(loss_g, "G")
        set_requires_grad(D, True)
        ctx.update(loss_d, "D")  # the graph of loss_d was built before G moved; it holds no G parameter
        return {
            "D": loss_d.detach(),
            "G_gan": loss_gan.detach(),
            "G_fm": loss_fm.detach(),
            "G_vgg": loss_vgg.detach(),
            "L1": (fake.detach() - dst).abs().mean(),
        }

    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        return [batch["src"], translate(self, batch["src"]), batch["dst"]]
