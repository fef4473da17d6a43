"""Shared building blocks: conv/norm/activation units, residual blocks, U-blocks, up/down.

Every generator in the course is assembled from these pieces, so the differences between
papers are visible as arguments rather than as copies of near-identical classes:

* :class:`ResidualBlock` with ``separable=False, act="relu"`` is pix2pixHD's ResNet block
  (the "original" row of Fundus2Angio Fig. 2); :class:`SeparableResidualBlock` is the
  Fundus2Angio "proposed" block (Eq. 1, Fig. 3).
* :func:`down` / :func:`up` / :func:`stem` / :func:`head` are the encoder, decoder and the
  7x7 reflection-padded input/output layers shared by pix2pixHD and Fundus2Angio.
* :class:`UNetBlock` is pix2pix's recursive U-Net skip block (MedGAN's CasNet chains U-Nets).

Tensors are NCHW; images live in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "norm_layer",
    "activation",
    "conv_unit",
    "SeparableConv2d",
    "stem",
    "down",
    "up",
    "head",
    "ResidualBlock",
    "SeparableResidualBlock",
    "UNetBlock",
    "LanczosDownsample",
    "avg_downsample",
    "init_weights",
    "count_params",
    "keras_param_count",
]


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``"batch"`` | ``"instance"`` | ``"none"``.

    Instance norm follows pix2pixHD (affine=False, no running stats), so it has no parameters.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


def activation(kind: str, slope: float = 0.2) -> nn.Module:
    """``"relu"`` | ``"lrelu"`` (LeakyReLU, slope 0.2 as in all three papers' code) | ``"tanh"`` | ``"none"``."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(slope, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"activation must be 'relu', 'lrelu', 'tanh' or 'none', got {kind!r}")


class SeparableConv2d(nn.Sequential):
    """Depthwise-separable convolution (Chollet, Xception): a per-channel KxK conv, then 1x1.

    Matches Keras ``SeparableConv2D`` with depth multiplier 1: K*K*C + C*C' weights
    (= 288 + 1024 for C = C' = 32, K = 3; Fundus2Angio Fig. 2).
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, padding: int = 0, bias: bool = True
    ) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, kernel_size, stride, padding, groups=in_ch, bias=False),
            nn.Conv2d(in_ch, out_ch, 1, bias=bias),
        )


def conv_unit(
    in_ch: int,
    out_ch: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | str = 0,
    pad_mode: str = "zeros",
    norm: str = "batch",
    act: str = "lrelu",
    separable: bool = False,
    transposed: bool = False,
    bias: bool | None = None,
    dropout: float = 0.0,
) -> nn.Sequential:
    """[reflection pad] -> conv (or separable / transposed) -> norm -> act -> [dropout].

    ``pad_mode="reflect"`` pads explicitly with :class:`nn.ReflectionPad2d` and convolves with no
    padding (the papers' "reflection padding before every convolution"). ``bias=None`` means
    "a bias only when no normalisation follows" (a bias before BatchNorm is cancelled by it).
    Transposed convs use ``kernel 3, stride 2, padding 1, output_padding 1``, which doubles the
    size exactly like Keras ``Conv2DTranspose(padding='same')`` and pix2pixHD's decoder.
    """
    if bias is None:
        bias = norm == "none"
    layers: list[nn.Module] = []
    if transposed:
        out_pad = stride - 1 if isinstance(padding, int) and 2 * padding == kernel_size - 1 else 0
        layers.append(nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride, padding, out_pad, bias=bias))
    else:
        if pad_mode == "reflect" and padding:
            layers.append(nn.ReflectionPad2d(padding))
            padding = 0
        conv: type[nn.Module] = SeparableConv2d if separable else nn.Conv2d
        layers.append(conv(in_ch, out_ch, kernel_size, stride, padding, bias=bias))
    layers += [norm_layer(norm, out_ch), activation(act)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


def stem(in_ch: int, out_ch: int, norm: str = "batch", act: str = "lrelu") -> nn.Sequential:
    """Reflection pad 3 -> 7x7 conv -> norm -> act: the first layer of pix2pixHD/Fundus2Angio generators."""
    return conv_unit(in_ch, out_ch, 7, 1, 3, "reflect", norm, act)


def down(in_ch: int, out_ch: int, norm: str = "batch", act: str = "lrelu") -> nn.Sequential:
    """3x3 stride-2 conv (halves H and W): the encoder step of pix2pixHD/Fundus2Angio."""
    return conv_unit(in_ch, out_ch, 3, 2, 1, "zeros", norm, act)


def up(in_ch: int, out_ch: int, norm: str = "batch", act: str = "lrelu") -> nn.Sequential:
    """3x3 stride-2 transposed conv (doubles H and W): the decoder step."""
    return conv_unit(in_ch, out_ch, 3, 2, 1, norm=norm, act=act, transposed=True)


def head(in_ch: int, out_ch: int, act: str = "tanh") -> nn.Sequential:
    """Reflection pad 3 -> 7x7 conv (with bias) -> tanh: the image output layer."""
    return conv_unit(in_ch, out_ch, 7, 1, 3, "reflect", norm="none", act=act, bias=True)


class ResidualBlock(nn.Module):
    """``x + F(x)`` with ``F`` = pad -> conv -> norm -> act -> [dropout] -> pad -> conv -> norm.

    No activation after the second norm (pix2pixHD's ResnetBlock and Fundus2Angio's code agree).
    ``separable=True`` makes the second conv depthwise-separable (Fundus2Angio Eq. 1).
    """

    def __init__(
        self,
        channels: int,
        separable: bool = False,
        norm: str = "batch",
        act: str = "relu",
        pad_mode: str = "reflect",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_unit(channels, channels, 3, 1, 1, pad_mode, norm, act, dropout=dropout),
            conv_unit(channels, channels, 3, 1, 1, pad_mode, norm, "none", separable=separable),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SeparableResidualBlock(ResidualBlock):
    """Fundus2Angio's novel residual block, Eq. (1) and Fig. 3:

    ``R_{i+1} = [R_i (x) F_Conv (x) F_SepConv] + R_i`` -- reflection pad -> 3x3 conv -> BN ->
    LeakyReLU(0.2) -> reflection pad -> 3x3 separable conv -> BN, plus the input.
    For C = 32 it has 10,784 parameters counted as Keras does (Fig. 2), against 18,688 for the
    plain block; see :func:`keras_param_count`.
    """

    def __init__(self, channels: int, norm: str = "batch", act: str = "lrelu") -> None:
        super().__init__(channels, separable=True, norm=norm, act=act)


class UNetBlock(nn.Module):
    """pix2pix's U-Net skip block: ``down -> submodule -> up``, output concatenated with the input.

    Built from the innermost block outward (Isola et al. 2017, Fig. 3; the official
    ``UnetSkipConnectionBlock``): down = LeakyReLU(0.2) -> 4x4/2 conv -> norm, up = ReLU -> 4x4/2
    transposed conv -> norm [-> dropout]. The outermost block has no norm on either side and ends
    in tanh, the innermost has no submodule and no down-norm.
    """

    def __init__(
        self,
        outer_ch: int,
        inner_ch: int,
        in_ch: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_ch = outer_ch if in_ch is None else in_ch
        use_bias = norm != "batch"  # pix2pix: BatchNorm has its own shift
        downconv = nn.Conv2d(in_ch, inner_ch, 4, 2, 1, bias=use_bias)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_ch * 2, outer_ch, 4, 2, 1)
            layers = [downconv, submodule, nn.ReLU(True), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_ch, outer_ch, 4, 2, 1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True), upconv, norm_layer(norm, outer_ch)]
        else:
            upconv = nn.ConvTranspose2d(inner_ch * 2, outer_ch, 4, 2, 1, bias=use_bias)
            layers = [
                nn.LeakyReLU(0.2, True),
                downconv,
                norm_layer(norm, inner_ch),
                submodule,
                nn.ReLU(True),
                upconv,
                norm_layer(norm, outer_ch),
            ]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


def _lanczos(x: torch.Tensor, a: int = 3) -> torch.Tensor:
    out = torch.sinc(x) * torch.sinc(x / a)
    return torch.where(x.abs() < a, out, torch.zeros_like(out))


class LanczosDownsample(nn.Module):
    """Downsample by 2 with a Lanczos-3 kernel (no parameters), applied separably as a stride-2 depthwise conv.

    Fundus2Angio's code makes the 256x256 coarse-branch input with TensorFlow's
    ``tf.image.resize(x, size, method=LANCZOS3)`` and its default ``antialias=False``
    (``src/real_fake_data_loader.py``; Sec. 3.3 of the paper also names Lanczos).

    * ``antialias=False`` -- TensorFlow's behaviour (``scale_and_translate_op.cc``): the kernel is NOT
      stretched, so each output pixel (centre ``2i + 1`` in pixel-edge coordinates) takes the **6** input
      pixels within 3 of it, at distances +-0.5, +-1.5, +-2.5, with weights ``L3(d) = sinc(d) sinc(d/3)``
      normalised to sum 1. At the borders the taps outside the image are dropped and the rest
      renormalised (as TF clamps its spans). No clamping of the output: Lanczos overshoots, TF keeps it.
      Passes fine detail: gain 0.98 at 0.3 cycles/px, and aliases what lies above 0.25.
    * ``antialias=True`` -- the kernel stretched by 2 (12 taps, a proper low-pass: gain 0.18 at 0.3
      cycles/px), like PIL's ``Image.LANCZOS`` or TF with ``antialias=True``; reflected borders and the
      output clamped to [-1, 1] (the course's earlier default, kept for comparison).
    """

    def __init__(self, antialias: bool = True) -> None:
        super().__init__()
        self.antialias = antialias
        if antialias:
            j = torch.arange(-5, 7, dtype=torch.float64)  # input taps around output centre 2i+0.5
            w = _lanczos((j - 0.5) / 2.0)
            w = w / w.sum()
        else:
            w = _lanczos(torch.arange(-2.5, 3.0, 1.0, dtype=torch.float64))  # raw: renormalised in forward
        self.register_buffer("taps", w.float(), persistent=False)

    def _tf(self, x: torch.Tensor) -> torch.Tensor:
        """TF's 6-tap resize; zero padding then division by the taps' in-image sum = TF's renormalisation."""
        c, (h, w) = x.shape[1], x.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(f"LanczosDownsample halves even sizes only, got {h}x{w}")
        k = self.taps.to(x.dtype)

        def in_image_sum(n: int) -> torch.Tensor:  # per output pixel: the sum of its taps inside the image
            return F.conv1d(F.pad(x.new_ones(1, 1, n), (2, 2)), k.view(1, 1, 6), stride=2)[0, 0]

        x = F.conv2d(F.pad(x, (2, 2, 0, 0)), k.view(1, 1, 1, 6).repeat(c, 1, 1, 1), stride=(1, 2), groups=c)
        x = F.conv2d(F.pad(x, (0, 0, 2, 2)), k.view(1, 1, 6, 1).repeat(c, 1, 1, 1), stride=(2, 1), groups=c)
        return x / (in_image_sum(h)[:, None] * in_image_sum(w)[None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.antialias:
            return self._tf(x)
        c = x.shape[1]
        k = self.taps.to(x.dtype)
        x = F.pad(x, (5, 5, 5, 5), mode="reflect")
        x = F.conv2d(x, k.view(1, 1, 1, 12).repeat(c, 1, 1, 1), stride=(1, 2), groups=c)
        x = F.conv2d(x, k.view(1, 1, 12, 1).repeat(c, 1, 1, 1), stride=(2, 1), groups=c)
        return x.clamp(-1.0, 1.0)


def avg_downsample(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 2, padding excluded from the mean.

    pix2pixHD's multi-scale downsampling; equals Keras ``AveragePooling2D((3,3), 2, 'same')`` used by
    Fundus2Angio's D2 discriminators for even sizes.
    """
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pix/pix2pixHD/DCGAN initialisation: conv weights ~ N(0, 0.02), BN weight ~ N(1, 0.02), biases 0.

    (Fundus2Angio's Keras code uses RandomNormal(0.02) for the coarse generator and discriminators
    and Keras' Glorot default elsewhere; one rule for all keeps the three models comparable.)
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return net


def count_params(net: nn.Module, trainable_only: bool = True) -> int:
    """PyTorch's count: the sum of ``numel`` over (trainable) parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def keras_param_count(net: nn.Module, conv_bias: bool = False) -> int:
    """Count parameters the way the Fundus2Angio paper's Fig. 2 does (Keras ``model.summary()``):

    conv weights (biases only if ``conv_bias``) plus 4 numbers per BatchNorm channel (gamma, beta
    and the non-trainable moving mean and variance). Padding, activations and parameter-free
    norms add nothing. Fig. 2: 18,688 (plain block, C=32) and 10,784 (separable block).
    """
    total = 0
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            total += m.weight.numel()
            if conv_bias and m.bias is not None:
                total += m.bias.numel()
        elif isinstance(m, nn.BatchNorm2d):
            total += 4 * m.num_features
    return total
