"""Chapter 04 networks (Yili Qu, multi-modal medical image synthesis from structural feature maps, SYSU master's
thesis 2020).

The thesis says only "adapted from VGG11" (E_s, D_z, D_s, D, D_t) and "adapted from U-Net" (G_s,
G_m, G, G_t, the tumour segmenter G_l); no layer tables are given. The author's TensorFlow demo
(quyili/MultimodalMedicalImagesSynthesis, code_demo/) uses ngf = 64 and a fully connected 4096-unit VAE
code; the course narrows every width (``width``) so that the quick preset runs on a CPU (a stated
difference). The choices here:

* :class:`VGGTrunk` — VGG11's conv plan (1-1-2-2-2 convs per stage, widths w, 2w, 4w, 8w, 8w) with
  BatchNorm + LeakyReLU; the number of stages is set by the input size.
* :class:`VGGDisc` — trunk + two forked last layers (Sec. 4.3: "the last two layers output two
  results"): a real/fake map ``d`` and a modality map ``c`` (ACGAN); ``n_classes=0`` gives the
  single-headed D_s.
* :class:`VAEEncoder` (E_s) — trunk -> ``[f_mean, f_logvar]`` latent *matrices* (Fig. 7: "encoding
  matrices"), and :func:`reparameterise` (Eq. 3 / Fig. 7: ``f = f_mean + exp(0.5 f_logvar) z``).
* :class:`LatentDisc` (D_z) — a small conv net on the latent matrix (Eq. 8-9).
* :class:`Decoder` (G_s) — the U-Net's expanding path (no skips: its input is a latent) -> sigmoid.
  ``dense=True`` (E_s and G_s, the default of the structure task): a fully connected layer between the latent
  matrix and the convolutions, so every latent entry reaches the whole map, as the code's dense layers do; ``norm``
  "instance" as the code's ``ops.norm``.
* :class:`CondUNet` — U-Net whose bottleneck gets the one-hot condition concatenated
  (Sec. 4.3: "after the last encoder layer, stack the condition matrix, then decode"); used for
  G (multi-modal generator), G_t (modality translator, Sec. 4.4), G_m (``n_cond=0``, mask generator)
  and the segmenter (``n_cond=0``, logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medsynth.blocks import conv_unit, init_weights

__all__ = [
    "VGG11_PLAN",
    "VGGTrunk",
    "VGGDisc",
    "VAEEncoder",
    "reparameterise",
    "kl_divergence",
    "LatentDisc",
    "Decoder",
    "CondUNet",
    "one_hot_map",
    "latent_shape",
]

VGG11_PLAN = (1, 1, 2, 2, 2)  # convs per stage in VGG11 (Simonyan & Zisserman 2015, config A)


def one_hot_map(idx: torch.Tensor, n: int, size: tuple[int, int]) -> torch.Tensor:
    """``one_hot(i)`` as a matrix (Fig. 8): (B,) class indices -> (B, n, h, w) constant planes."""
    oh = F.one_hot(idx.long(), n).float()
    return oh[:, :, None, None].expand(-1, -1, *size)


class VGGTrunk(nn.Sequential):
    """VGG11 conv stages, each ending in a stride-2 downsampling (VGG's max-pool -> 2x2 max-pool)."""

    def __init__(self, in_ch: int, width: int = 16, stages: int = 4, norm: str = "batch") -> None:
        layers: list[nn.Module] = []
        ch = in_ch
        for k in range(stages):
            out = width * min(2**k, 8)
            for j in range(VGG11_PLAN[min(k, 4)]):
                layers.append(conv_unit(ch, out, 3, 1, 1, norm="none" if (k == 0 and j == 0) else norm, act="lrelu"))
                ch = out
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)
        self.out_ch = ch


class VGGDisc(nn.Module):
    """VGG11-style D with two forked heads: real/fake map ``d`` and class map ``c`` (Eq. 10, 13, 20)."""

    def __init__(self, in_ch: int = 1, n_classes: int = 0, width: int = 16, stages: int = 3) -> None:
        super().__init__()
        self.trunk = VGGTrunk(in_ch, width, stages)
        ch = self.trunk.out_ch
        self.d = nn.Sequential(conv_unit(ch, ch, 3, 1, 1, norm="none"), nn.Conv2d(ch, 1, 1))
        self.c = (
            nn.Sequential(conv_unit(ch, ch, 3, 1, 1, norm="none"), nn.Conv2d(ch, n_classes, 1)) if n_classes else None
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.trunk(x)
        return self.d(h), (self.c(h) if self.c is not None else None)


def _dense_latent_shape(who: str, image_size: int | None, z_ch: int, stages: int) -> tuple[int, int, int]:
    """The latent matrix a dense E_s/G_s layer maps from or to: its size is fixed, so it needs ``image_size``."""
    if image_size is None:
        raise ValueError(f"{who}(dense=True) needs image_size")
    return latent_shape(image_size, z_ch, stages)


class VAEEncoder(nn.Module):
    """E_s (Fig. 7): structure map -> latent matrices ``f_mean``, ``f_logvar`` of shape (z_ch, H/2^k, W/2^k).
    ``dense``: a fully connected head on the flattened trunk (the code's dense layers), else a 3x3 conv head."""

    def __init__(
        self,
        in_ch: int = 1,
        z_ch: int = 8,
        width: int = 16,
        stages: int = 4,
        norm: str = "batch",
        dense: bool = False,
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        self.trunk = VGGTrunk(in_ch, width, stages, norm)
        self.dense = dense
        if dense:
            z = self.z_shape = _dense_latent_shape("VAEEncoder", image_size, z_ch, stages)
            n = self.trunk.out_ch * z[1] * z[2]
            self.head = nn.Linear(n, 2 * z[0] * z[1] * z[2])
        else:
            self.head = nn.Conv2d(self.trunk.out_ch, 2 * z_ch, 3, 1, 1)
        init_weights(self)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(s)
        if self.dense:
            c, k, _ = self.z_shape
            mean, logvar = self.head(h.flatten(1)).view(len(s), 2 * c, k, k).chunk(2, 1)
        else:
            mean, logvar = self.head(h).chunk(2, 1)
        return mean, logvar.clamp(-10, 10)


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 3 / Fig. 7: ``f = f_mean + exp(0.5 f_logvar) * z``, ``z ~ N(0, 1)``."""
    z = torch.randn_like(mean) if z is None else z
    return mean + torch.exp(0.5 * logvar) * z


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), summed over latent entries, averaged over the batch.

    Not in the thesis's losses (Eq. 7-9 replace it by the latent discriminator D_z, as an
    adversarial autoencoder does); logged as a diagnostic and available as an optional weight.
    """
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(1).mean()


class LatentDisc(nn.Module):
    """D_z (Eq. 8-9): is this latent matrix a sample of N(0, 1) (``z``) or an encoding (``f``)?"""

    def __init__(self, z_ch: int = 8, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            conv_unit(z_ch, width, 3, 1, 1, norm="none"),
            conv_unit(width, width, 3, 1, 1, norm="none"),
            nn.Conv2d(width, 1, 1),
        )
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


def _up(in_ch: int, out_ch: int, norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv_unit(in_ch, out_ch, 3, 1, 1, norm=norm, act="relu"),
        conv_unit(out_ch, out_ch, 3, 1, 1, norm=norm, act="relu"),
    )


class Decoder(nn.Module):
    """G_s (Fig. 7): latent matrix -> structure map in [0, 1] (U-Net expanding path, upsample + 2 convs).

    Real structure maps (Algorithm 1) are binary; G_s's sigmoid maps are soft. :meth:`binarise` turns a map
    into the binary ``s_g`` that D_s (Eq. 10-11), G_m (Eq. 11, Sec. 4.6) and G (Eq. 12-14) see, at the
    ``threshold`` buffer (0.5 until :meth:`StructureGenTask.calibrate_threshold` sets the density-matched
    value). Being a buffer, the threshold travels with the weights (checkpoints, ``state_dict``), so training,
    synthesis, the notebook and the explorers binarise alike.
    """

    def __init__(
        self,
        z_ch: int = 8,
        out_ch: int = 1,
        width: int = 16,
        stages: int = 4,
        norm: str = "batch",
        dense: bool = False,
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.tensor(0.5))
        if dense:
            z = _dense_latent_shape("Decoder", image_size, z_ch, stages)
            n = z[0] * z[1] * z[2]
            self.mix: nn.Module | None = nn.Sequential(nn.Flatten(), nn.Linear(n, n), nn.Unflatten(1, z))
        else:
            self.mix = None
        chs = [width * min(2**k, 8) for k in range(stages)][::-1]
        self.inp = conv_unit(z_ch, chs[0], 3, 1, 1, norm=norm, act="relu")
        self.ups = nn.Sequential(
            *[_up(chs[k], chs[min(k + 1, stages - 1)] if k + 1 < stages else width, norm) for k in range(stages)]
        )
        self.out = nn.Conv2d(width, out_ch, 3, 1, 1)
        init_weights(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        if self.mix is not None:
            f = self.mix(f)
        return torch.sigmoid(self.out(self.ups(self.inp(f))))

    def binarise(self, p: torch.Tensor) -> torch.Tensor:
        """``(p > threshold)`` as a float map: the binary structure map ``s_g`` of a G_s output ``p``."""
        return (p > self.threshold.to(p.device, p.dtype)).to(p.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints written before the threshold buffer existed binarised at 0.5: load them as such
        state_dict.setdefault(prefix + "threshold", torch.tensor(0.5))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CondUNet(nn.Module):
    """U-Net (Ronneberger et al. 2015, narrowed) with an optional one-hot condition at the bottleneck.

    ``forward(x, cond)``: ``cond`` is (B,) class indices or (B, n_cond) one-hot rows; the matrix
    ``one_hot(i)`` is concatenated to the deepest features (Sec. 4.3) before the expanding path.
    ``out_act``: "tanh" (images in [-1, 1]), "sigmoid" (masks) or "none" (segmentation logits).
    """

    def __init__(
        self,
        in_ch: int = 2,
        out_ch: int = 1,
        n_cond: int = 0,
        width: int = 16,
        depth: int = 3,
        out_act: str = "tanh",
        cond_every: bool = False,
    ) -> None:
        super().__init__()
        self.n_cond, self.out_act, self.depth, self.cond_every = n_cond, out_act, depth, cond_every and n_cond > 0
        extra = n_cond if self.cond_every else 0
        chs = [width * min(2**k, 8) for k in range(depth + 1)]
        self.inc = nn.Sequential(
            conv_unit(in_ch, chs[0], 3, 1, 1, norm="none", act="relu"), conv_unit(chs[0], chs[0], 3, 1, 1, act="relu")
        )
        self.downs = nn.ModuleList(
            [
                nn.Sequential(
                    nn.MaxPool2d(2),
                    conv_unit(chs[k], chs[k + 1], 3, 1, 1, act="relu"),
                    conv_unit(chs[k + 1], chs[k + 1], 3, 1, 1, act="relu"),
                )
                for k in range(depth)
            ]
        )
        self.bottleneck = conv_unit(chs[depth] + n_cond, chs[depth], 3, 1, 1, act="relu")
        self.ups = nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest") for _ in range(depth)])
        self.decs = nn.ModuleList(
            [
                nn.Sequential(
                    conv_unit(chs[k + 1] + chs[k] + extra, chs[k], 3, 1, 1, act="relu"),
                    conv_unit(chs[k], chs[k], 3, 1, 1, act="relu"),
                )
                for k in reversed(range(depth))
            ]
        )
        self.out = nn.Conv2d(chs[0], out_ch, 1)
        init_weights(self)

    def _planes(self, cond: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The condition as constant planes of ``h``'s size (Fig. 8's ``one_hot(i)`` matrix)."""
        planes = (
            one_hot_map(cond, self.n_cond, h.shape[-2:])
            if cond.ndim == 1
            else cond[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        )
        return planes.to(h.dtype)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] % (2**self.depth) or x.shape[-2] % (2**self.depth):
            raise ValueError(
                f"CondUNet(depth={self.depth}) needs H, W divisible by {2**self.depth}, got {tuple(x.shape[-2:])}"
            )
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(skips[-1]))
        h = skips.pop()
        if self.n_cond:
            if cond is None:
                raise ValueError("this CondUNet needs a condition (class indices or one-hot rows)")
            h = torch.cat([h, self._planes(cond, h)], 1)
        h = self.bottleneck(h)
        for up, dec in zip(self.ups, self.decs, strict=True):
            h = torch.cat([up(h), skips.pop()], 1)
            h = dec(torch.cat([h, self._planes(cond, h)], 1) if self.cond_every else h)
        y = self.out(h)
        if self.out_act == "tanh":
            return torch.tanh(y)
        if self.out_act == "sigmoid":
            return torch.sigmoid(y)
        return y


def latent_shape(image_size: int, z_ch: int = 8, stages: int = 4) -> tuple[int, int, int]:
    """Shape of the latent matrix for an ``image_size`` input: (z_ch, size/2^stages, size/2^stages)."""
    k = image_size // 2**stages
    if k * 2**stages != image_size:
        raise ValueError(f"image_size {image_size} is not divisible by 2**{stages}")
    return (z_ch, k, k)
