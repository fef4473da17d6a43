"""PatchGAN and multi-scale discriminators, with feature taps for feature matching.

* :class:`PatchDiscriminator` is the Markovian discriminator of pix2pix (Isola et al. 2017): a
  stack of 4x4 convs whose output is a map of real/fake scores, one per receptive-field patch.
  With ``n_layers=3`` and pix2pix padding it is the "70x70 PatchGAN" (256 input -> 30x30 map).
  ``same_tail=True`` keeps the two stride-1 convs size-preserving like Keras ``padding='same'``,
  which gives Fundus2Angio's maps: input / 2**n_layers (512 -> 64x64, 256 -> 32x32; Sec. 3.3).
  ``pre_downsample=k`` average-pools the input k times first (Fundus2Angio's D2: 512 -> 32x32).
* :class:`MultiScaleDiscriminator` holds ``num_d`` discriminators with INDEPENDENT weights, the
  i-th seeing the input average-pooled i times (pix2pixHD Sec. 3.2; Fundus2Angio's D1/D2 pairs).

``forward(x, features=True)`` returns every intermediate activation (the last entry is the score
map): the taps that pix2pixHD's feature-matching loss (its Eq. 4) compares between real and fake.
Conditional discriminators take the condition and the image concatenated on channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from medsynth.blocks import avg_downsample, norm_layer
from medsynth.training import eval_mode

__all__ = ["PatchDiscriminator", "MultiScaleDiscriminator", "patch_output_size", "receptive_field"]


class PatchDiscriminator(nn.Module):
    """A PatchGAN: ``n_layers`` stride-2 4x4 convs, one stride-1 4x4 conv, a 1-channel 4x4 score conv.

    Args:
        in_ch: input channels (condition + image for a conditional D).
        ndf: width of the first conv; the widths double up to ``max_ch`` (pix2pix, pix2pixHD).
        n_layers: number of stride-2 convs (3 gives the 70x70 PatchGAN).
        norm: norm after every conv but the first and the last ("batch" pix2pix/Fundus2Angio,
            "instance" pix2pixHD).
        channels: explicit widths of the ``n_layers + 1`` hidden convs, overriding ``ndf``/``max_ch``
            (Fundus2Angio's code keeps them at 32, 64, 64, 64).
        padding: 1 for pix2pix, 2 for pix2pixHD (``ceil((4-1)/2)``).
        same_tail: pad the stride-1 convs asymmetrically to keep their size (Keras 'same').
        pre_downsample: how many times to 3x3-average-pool the input before the first conv.
        sigmoid: end with a sigmoid (only for a BCE loss that expects probabilities; the losses
            here take logits, so leave it False).
    """

    def __init__(
        self,
        in_ch: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        channels: Sequence[int] | None = None,
        max_ch: int = 512,
        padding: int = 1,
        same_tail: bool = False,
        pre_downsample: int = 0,
        sigmoid: bool = False,
    ) -> None:
        super().__init__()
        if channels is None:
            channels = [min(ndf * 2**i, max_ch) for i in range(n_layers + 1)]
        if len(channels) != n_layers + 1:
            raise ValueError(f"channels needs n_layers + 1 = {n_layers + 1} widths, got {list(channels)}")
        self.pre_downsample = pre_downsample
        self.n_layers = n_layers
        tail_p = 0 if same_tail else padding

        def tail() -> nn.Module:  # Keras 'same' for a 4x4 stride-1 conv pads 1 before, 2 after
            return nn.ZeroPad2d((1, 2, 1, 2)) if same_tail else nn.Identity()

        groups: list[nn.Sequential] = []
        prev = in_ch
        for i, ch in enumerate(channels[:-1]):  # stride-2 convs
            conv = nn.Conv2d(prev, ch, 4, 2, padding, bias=(i == 0 or norm != "batch"))
            layers = [conv] if i == 0 else [conv, norm_layer(norm, ch)]
            groups.append(nn.Sequential(*layers, nn.LeakyReLU(0.2, True)))
            prev = ch
        ch = channels[-1]  # stride-1 conv
        groups.append(
            nn.Sequential(
                tail(),
                nn.Conv2d(prev, ch, 4, 1, tail_p, bias=norm != "batch"),
                norm_layer(norm, ch),
                nn.LeakyReLU(0.2, True),
            )
        )
        score = [tail(), nn.Conv2d(ch, 1, 4, 1, tail_p)] + ([nn.Sigmoid()] if sigmoid else [])
        groups.append(nn.Sequential(*score))
        self.groups = nn.ModuleList(nn.Sequential(*[m for m in g if not isinstance(m, nn.Identity)]) for g in groups)

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor | list[torch.Tensor]:
        for _ in range(self.pre_downsample):
            x = avg_downsample(x)
        feats = []
        for g in self.groups:
            x = g(x)
            feats.append(x)
        return feats if features else x


class MultiScaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs with independent weights; D_i sees the input downsampled i times.

    pix2pixHD (Wang et al. 2018, Sec. 3.2, Eq. 3) uses 2-3 scales; Fundus2Angio uses two pairs,
    ``[D1_fine, D2_fine]`` on 512 inputs and ``[D1_coarse, D2_coarse]`` on 256 (Sec. 3.3, Fig. 1).
    ``forward`` returns one entry per scale: the score map, or (``features=True``) the list of
    that scale's activations. ``**kwargs`` are passed to each :class:`PatchDiscriminator`.
    """

    def __init__(self, in_ch: int, num_d: int = 2, **kwargs) -> None:
        super().__init__()
        if kwargs.get("pre_downsample"):
            raise ValueError("MultiScaleDiscriminator does the downsampling; do not pass pre_downsample")
        self.ds = nn.ModuleList(PatchDiscriminator(in_ch, pre_downsample=i, **kwargs) for i in range(num_d))

    def __len__(self) -> int:
        return len(self.ds)

    def forward(self, x: torch.Tensor, features: bool = False) -> list:
        # Each scale pools from the full input (PatchDiscriminator.pre_downsample) rather than from
        # the previous scale's pooled copy: identical values, and every D stays usable on its own.
        return [d(x, features=features) for d in self.ds]


def patch_output_size(d: nn.Module, in_ch: int, size: int) -> list[tuple[int, int]]:
    """Spatial sizes of the score map(s) for a ``size`` x ``size`` input (runs a tiny forward pass)."""
    p = next(d.parameters())
    with torch.no_grad(), eval_mode(d):
        out = d(torch.zeros(1, in_ch, size, size, device=p.device, dtype=p.dtype))
    outs = out if isinstance(out, list) else [out]
    return [tuple(o.shape[-2:]) for o in outs]


def receptive_field(d: PatchDiscriminator) -> int:
    """Receptive field, in input pixels, of one score of a :class:`PatchDiscriminator` (70 for pix2pix's)."""
    rf, jump = 1, 1
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    for m in convs:
        rf += (m.kernel_size[0] - 1) * jump
        jump *= m.stride[0]
    # each 3x3/2 average pool before the convs widens the field and doubles the step
    for _ in range(d.pre_downsample):
        rf = (rf - 1) * 2 + 3
    return rf
