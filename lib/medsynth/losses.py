"""Losses shared by the chapters: adversarial (LSGAN, BCE), feature matching, VGG perceptual.

Discriminator outputs come in three shapes and every loss here accepts all of them:
a score map tensor (PatchGAN), a list of score maps (multi-scale D), or a list of per-scale
feature lists whose last entry is the score map (``D(x, features=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GANLoss",
    "feature_matching_loss",
    "VGGLoss",
    "VGG19_LAYERS",
    "scores",
    "gram_matrix",
    "VGGStyleContentLoss",
    "optional_vgg_loss",
]

Pred = torch.Tensor | Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]]


def scores(pred: Pred) -> list[torch.Tensor]:
    """The score map of every scale: ``[t]`` for a tensor, last entries of feature lists."""
    if isinstance(pred, torch.Tensor):
        return [pred]
    return [p[-1] if isinstance(p, (list, tuple)) else p for p in pred]


class GANLoss(nn.Module):
    """Adversarial loss against constant targets, summed over discriminator scales.

    * ``"lsgan"`` (Mao et al. 2017): ``mean((D - target)^2)``. Fundus2Angio Eq. (3) writes
      ``E[(D(x,y) - 1)^2] + E[(D(x,G(x)) + 1)^2]``, i.e. a fake target of -1; the official Keras
      code trains with ``mse`` against 1 (real) and 0 (fake), as pix2pixHD does. ``fake_label``
      chooses; the generator always aims at ``real_label``.
    * ``"vanilla"``: binary cross-entropy on logits (pix2pix, Isola et al. 2017 Eq. 1).

    Call as ``loss(pred, real=True)``; pix2pixHD sums the scales (its Eq. 3), so does this.
    """

    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"mode must be 'lsgan' or 'vanilla', got {mode!r}")
        self.mode, self.real_label, self.fake_label = mode, real_label, fake_label

    def forward(self, pred: Pred, real: bool) -> torch.Tensor:
        total = 0.0
        for s in scores(pred):
            s = s.float()  # losses in fp32 under AMP
            target = torch.full_like(s, self.real_label if real else self.fake_label)
            if self.mode == "lsgan":
                total = total + F.mse_loss(s, target)
            else:
                total = total + F.binary_cross_entropy_with_logits(s, target)
        return total


def feature_matching_loss(
    fake_feats: Sequence[Sequence[torch.Tensor]], real_feats: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD's feature-matching loss (Wang et al. 2018, Eq. 4), with its code's weights:

    ``sum_k sum_i  1/num_D * 4/(n_layers+1) * L1(D_k^(i)(x, G(x)), D_k^(i)(x, y))`` over every
    intermediate layer ``i`` (the score map excluded) of every scale ``k``; real features are
    detached. Multiply by lambda_FM (10 in pix2pixHD) at the call site.
    """
    num_d = len(fake_feats)
    total = 0.0
    for fk, rk in zip(fake_feats, real_feats, strict=True):
        layers = len(fk) - 1
        w = (1.0 / num_d) * (4.0 / layers)  # pix2pixHD: 4/(n_layers_D+1), n_layers_D+1 = hidden groups
        for f, r in zip(fk[:-1], rk[:-1], strict=True):
            total = total + w * F.l1_loss(f.float(), r.detach().float())
    return total


# torchvision vgg19().features indices that end in relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG19_LAYERS = (1, 6, 11, 20, 29)


class VGGLoss(nn.Module):
    """Perceptual loss on frozen VGG19 features (Johnson et al. 2016), as pix2pixHD uses it:

    ``sum_i w_i * L1(VGG_i(G(x)), VGG_i(y))`` at relu1_1 ... relu5_1 with weights
    1/32, 1/16, 1/8, 1/4, 1 (pix2pixHD's ``VGGLoss``). Images in [-1, 1]: 3 channels are RGB, 1 is
    grey (repeated), any other count is a stack of grey images (each channel scored on its own);
    they are ImageNet-normalised first (pix2pixHD feeds [-1, 1] unnormalised --
    a small difference, noted in the chapter).

    ``features="pretrained"`` needs torchvision's VGG19 file and raises
    :class:`medsynth.weights.WeightsUnavailable` (naming the file and the cache path) without it.
    ``features="random"`` is the labelled fallback: a seeded random VGG19; the value is then only a
    multi-scale random-filter texture loss, and ``self.features_kind == "random"`` says so.
    """

    def __init__(
        self,
        features: str = "pretrained",
        layers: Sequence[int] = VGG19_LAYERS,
        weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
        seed: int = 0,
    ) -> None:
        super().__init__()
        from medsynth.weights import load_vgg19  # raises WeightsUnavailable when absent

        if len(layers) != len(weights):
            raise ValueError("one weight per VGG layer")
        if features not in ("pretrained", "random"):
            raise ValueError(f"features must be 'pretrained' or 'random' (explicitly), got {features!r}")
        vgg = load_vgg19(features=features, seed=seed)
        self.features_kind: str = getattr(vgg, "features_kind", features)
        self.vgg = vgg[: max(layers) + 1]
        self.layers, self.weights = tuple(layers), tuple(weights)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGLoss:  # the VGG stays in eval mode, always
        super().train(mode)
        self.vgg.eval()
        return self

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] not in (1, 3):  # e.g. a stack of grey frames: each channel is a grey image
            x = x.reshape(-1, 1, *x.shape[-2:])
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.vgg):
            x = layer(x)
            if i in self.layers:
                out.append(x)
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real_f = self._feats(real)
        return sum(w * F.l1_loss(f, r) for w, f, r in zip(self.weights, self._feats(fake), real_f, strict=True))


def optional_vgg_loss(vgg_features: str, seed: int = 0) -> tuple[VGGLoss | None, str]:
    """A task's perceptual term from its ``vgg_features`` switch: ``(loss or None, kind)``.

    ``"pretrained"`` / ``"random"`` build :class:`VGGLoss` (whose ``features_kind`` says which features it
    really got, since pretrained weights may be unavailable); ``"off"`` gives ``(None, "off")``.
    """
    if vgg_features not in ("pretrained", "random", "off"):
        raise ValueError(f"vgg_features must be 'pretrained', 'random' or 'off', got {vgg_features!r}")
    if vgg_features == "off":
        return None, "off"
    vgg = VGGLoss(vgg_features, seed=seed)
    return vgg, vgg.features_kind


def gram_matrix(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (N, C, H, W) features, normalised by ``C*H*W`` (Gatys et al. 2016; Johnson et al. 2016):

    ``Gr(m, n) = 1/(C H W) * sum_{h,w} x[m,h,w] x[n,h,w]``, returned as (N, C, C). It keeps which channels
    fire together and discards where: a texture statistic, what a style loss compares.
    """
    n, c, h, w = x.shape
    f = x.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


class VGGStyleContentLoss(VGGLoss):
    """Style and content losses on frozen VGG19 features (Gatys et al. 2016; Johnson et al. 2016), as MedGAN uses:

    ``style   = sum_j ws_j * 1/(4 C_j^2) * ||Gr_j(G(x)) - Gr_j(y)||_F^2``   (per image, averaged)
    ``content = sum_j wc_j * 1/(C_j H_j W_j) * ||V_j(G(x)) - V_j(y)||_F^2`` (= the mean squared difference)

    ``forward`` returns ``(style, content)``. Feature extraction (grey handling, ImageNet normalisation,
    ``features="pretrained" | "random"`` and the labelled ``features_kind``) is :class:`VGGLoss`'s.
    """

    def __init__(
        self,
        features: str = "pretrained",
        layers: Sequence[int] = VGG19_LAYERS[:4],
        style_weights: Sequence[float] | None = None,
        content_weights: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(features, layers, [1.0] * len(layers), seed)
        self.style_weights = tuple(style_weights or [1.0] * len(layers))
        self.content_weights = tuple(content_weights or [1.0] * len(layers))
        if not len(self.style_weights) == len(self.content_weights) == len(layers):
            raise ValueError("one style and one content weight per VGG layer")

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            real_f = self._feats(real)
        style = content = 0.0
        for ws, wc, f, r in zip(self.style_weights, self.content_weights, self._feats(fake), real_f, strict=True):
            c = f.shape[1]
            style = style + ws * ((gram_matrix(f) - gram_matrix(r)) ** 2).sum((1, 2)).mean() / (4 * c * c)
            content = content + wc * F.mse_loss(f.float(), r.float())
        return style, content
