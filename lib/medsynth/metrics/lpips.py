"""LPIPS v0.1 (Zhang, Isola, Efros, Shechtman, Wang 2018, "The unreasonable effectiveness of deep
features as a perceptual metric", Eq. 1) with AlexNet or VGG16 features.

``d(x, y) = sum_l  mean_{h,w} || w_l * (x^l_hw - y^l_hw) ||^2`` where ``x^l`` are the backbone's
activations at five ReLU taps, unit-normalised along channels, and ``w_l`` the learned non-negative
per-channel weights (the v0.1 linear layers). Inputs are shifted/scaled as the reference code's
``ScalingLayer`` does. Weights come from :mod:`medsynth.weights`: the torchvision backbone file and
the LPIPS linear-layer file. With ``features="random"`` (or "auto" when a file is missing) the
backbone is seeded-random and the linear weights equal (1/C per channel): the result is labelled
and not comparable to published LPIPS.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from medsynth.metrics.fid import LabelledValue
from medsynth.weights import FEATURE_CHOICES, WeightsUnavailable, load_lpips_backbone, load_lpips_linear, with_fallback

__all__ = ["FeatureMetric", "LPIPS", "lpips", "LPIPS_TAPS"]

# indices of the ReLUs tapped in torchvision's .features (LPIPS' slices end there)
LPIPS_TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
_BACKBONE = {"alex": "AlexNet", "vgg": "VGG16"}


@dataclass(frozen=True)
class FeatureMetric(LabelledValue):
    """A value computed on a pretrained network's features, with what it was computed on."""

    value: float
    name: str
    features: str  # "pretrained" | "random"
    backbone: str
    n: int
    std: float | None = None

    @property
    def comparable(self) -> bool:
        return self.features == "pretrained"

    @property
    def label(self) -> str:
        if self.features == "random":
            return f"{self.name}, random {self.backbone} features — not comparable to published {self.name}"
        return f"{self.name} ({self.backbone})"

    def _counts(self) -> str:
        return f"n={self.n}"


class LPIPS(nn.Module):
    """LPIPS distance module: ``forward(x, y)`` on (N,C,H,W) in [-1, 1] (C in {1,3}) -> (N,) distances.

    ``features_kind`` is "pretrained" only when both the backbone and the linear layers are.
    """

    def __init__(self, net: str = "alex", features: str = "pretrained", seed: int = 0) -> None:
        super().__init__()
        if features not in FEATURE_CHOICES:
            raise ValueError(f"features must be one of {FEATURE_CHOICES}, got {features!r}")
        body = load_lpips_backbone(net, features, seed)
        taps = LPIPS_TAPS[net]
        self.body = body[: taps[-1] + 1]
        self.taps = taps
        kind = body.features_kind
        lins = None
        if kind == "pretrained":
            try:
                lins = load_lpips_linear(net)
            except WeightsUnavailable:
                if features == "pretrained":
                    raise
                warnings.warn(
                    "features='auto': LPIPS linear layers missing, using equal weights (labelled random)", stacklevel=2
                )
                kind = "random"
        if lins is None:
            chans = [self._channels_at(t) for t in taps]
            lins = [torch.full((1, c, 1, 1), 1.0 / c) for c in chans]
        for i, w in enumerate(lins):
            self.register_buffer(f"w{i}", w)
        self.features_kind, self.net = kind, net
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def _channels_at(self, tap: int) -> int:
        convs = [m for m in list(self.body)[: tap + 1] if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels

    def _feats(self, x: Tensor) -> list[Tensor]:
        x = (x.expand(-1, 3, -1, -1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in self.taps:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx, fy = self._feats(x.float()), self._feats(y.float())
        return sum(
            ((a - b) ** 2 * getattr(self, f"w{i}")).sum(1).mean((1, 2))
            for i, (a, b) in enumerate(zip(fx, fy, strict=True))
        )


@functools.lru_cache(maxsize=4)
def _lpips_net(net: str, features: str, seed: int, device: str) -> LPIPS:
    return LPIPS(net, features, seed).to(device)


@torch.no_grad()
def lpips(
    a: Tensor,
    b: Tensor,
    net: str = "alex",
    features: str = "pretrained",
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    reduction: str = "mean",
):
    """LPIPS between paired images (N,C,H,W) in [0,1] (C in {1,3}); the other metrics' convention.

    ``reduction="mean"`` -> :class:`FeatureMetric` (mean, std over pairs); ``"none"`` -> (N,) tensor.
    """
    from medsynth.device import pick_device

    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"expected two (N,C,H,W) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    dev = pick_device("auto") if device is None else torch.device(device)
    m = with_fallback(
        lambda kind: _lpips_net(net, kind, seed, str(dev)), features, f"LPIPS ({_BACKBONE[net]})", stacklevel=4
    )  # past the no_grad wrapper, to the caller
    d = torch.cat(
        [
            m(a[i : i + batch_size].to(dev) * 2 - 1, b[i : i + batch_size].to(dev) * 2 - 1).cpu()
            for i in range(0, len(a), batch_size)
        ]
    )
    if reduction == "none":
        return d
    return FeatureMetric(
        float(d.mean()), "LPIPS", m.features_kind, _BACKBONE[net], len(d), float(d.std()) if len(d) > 1 else None
    )
