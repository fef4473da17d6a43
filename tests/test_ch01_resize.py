"""Chapter 01's coarse-branch resize: TensorFlow's ``tf.image.resize(..., LANCZOS3)``, antialias=False.

The reference below is written from TF's documented kernel (``sampling_kernels.h``: Lanczos radius 3,
``3 sin(pi x) sin(pi x / 3) / (pi x)^2``) and its span rule (``scale_and_translate_op.cc``: sample at
``(i + 0.5) / scale``, take the input pixels whose centres lie within the radius, unstretched when
antialias is off, drop those outside the image and renormalise) -- by hand, in float64, not via PIL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medsynth.blocks import LanczosDownsample
from medsynth.models.fundus2angio import Fundus2AngioTask


def tf_lanczos3(x: float) -> float:
    x = abs(x)
    if x > 3:
        return 0.0
    if x <= 1e-3:
        return 1.0
    return 3 * math.sin(math.pi * x) * math.sin(math.pi * x / 3) / (math.pi * x) ** 2


def tf_weights(n_out: int, n_in: int, antialias: bool = False) -> np.ndarray:
    """The (n_out, n_in) resampling matrix of TF's ComputeSpansCore for scale n_out / n_in."""
    inv_scale = n_in / n_out
    ks = max(inv_scale, 1.0) if antialias else 1.0
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        s = (i + 0.5) * inv_scale
        lo = max(0, math.ceil(s - 3 * ks - 0.5))
        hi = min(n_in - 1, math.floor(s + 3 * ks - 0.5)) + 1
        w = np.array([tf_lanczos3((j + 0.5 - s) / ks) for j in range(lo, hi)])
        m[i, lo:hi] = w / w.sum()
    return m


def test_interior_taps_are_tf_lanczos3_by_hand() -> None:
    """Factor 2, antialias off: 6 taps at +-0.5, +-1.5, +-2.5 px, L3 = 0.6079, -0.1351, 0.0243 before
    normalisation (their sum 0.9943), so 0.6114, -0.1359, 0.0245 after."""
    m = tf_weights(16, 32)
    row = m[8, 16 - 2 : 16 + 4]
    raw = np.array([0.024317, -0.135095, 0.607927, 0.607927, -0.135095, 0.024317])
    assert np.abs(row - raw / raw.sum()).max() < 1e-5 and np.count_nonzero(m[8]) == 6
    # the module's impulse response is that row: output 8 reads inputs 14..19
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    x[0, 0, 16, 16] = 1.0
    y = LanczosDownsample(antialias=False).double()(x)[0, 0]
    assert y[8, 8].item() == pytest.approx((raw / raw.sum())[2] ** 2, abs=1e-6)


@pytest.mark.parametrize("hw", [(32, 32), (24, 40), (8, 6)])
def test_matches_tf_resampling_everywhere_including_borders(hw) -> None:
    h, w = hw
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    ours = LanczosDownsample(antialias=False).double()(x)
    ref = np.einsum("oh,nchw,pw->ncop", tf_weights(h // 2, h), x.numpy(), tf_weights(w // 2, w))
    assert ours.shape == (2, 3, h // 2, w // 2)
    assert np.abs(ours.numpy() - ref).max() < 1e-6  # taps stored in float32, like TF's kernel
    # float32 (the training path) agrees to float rounding; no clamp: Lanczos overshoot is kept, as in TF
    assert np.abs(LanczosDownsample(antialias=False)(x.float()).numpy() - ref).max() < 1e-5
    step = torch.ones(1, 1, h, w, dtype=torch.float64)
    step[..., : 2 * (w // 4)] = -1  # an edge between output samples: the -0.136 lobe overshoots (1.22)
    assert LanczosDownsample(antialias=False).double()(step).max().item() == pytest.approx(1.2228, abs=1e-3)


def _gain(down: LanczosDownsample, f: float) -> float:
    """Amplitude of a cos at ``f`` cycles/px after downsampling, measured on interior output pixels."""
    n = 256
    j = torch.arange(n, dtype=torch.float64)
    x = torch.cos(2 * math.pi * f * (j + 0.5)).expand(1, 1, 16, n).clone()
    y = down.double()(x)[0, 0, 4, 8:-8]
    c = torch.cos(2 * math.pi * f * (2 * torch.arange(n // 2, dtype=torch.float64) + 1))[8:-8]
    return float((y * c).sum() / (c * c).sum())


def test_fine_detail_passes_as_in_tf_and_the_antialiased_option_filters_it() -> None:
    """At 0.3 cycles/px the official (6-tap) resize keeps 98 % of the amplitude, the antialiased 12-tap 18 %."""
    tf_gain = 2 * (
        0.611415 * math.cos(0.3 * math.pi) - 0.135869 * math.cos(0.9 * math.pi) + 0.024456 * math.cos(1.5 * math.pi)
    )
    assert _gain(LanczosDownsample(antialias=False), 0.3) == pytest.approx(tf_gain, abs=1e-4)
    assert tf_gain == pytest.approx(0.977, abs=1e-3)
    assert _gain(LanczosDownsample(antialias=True), 0.3) == pytest.approx(0.18, abs=0.02)
    assert _gain(LanczosDownsample(antialias=False), 0.05) == pytest.approx(1.0, abs=0.01)


def test_fundus2angio_coarse_inputs_use_the_tf_resize() -> None:
    task = Fundus2AngioTask(ncf=8, nff=4, ndf=4, width=8, n_blocks_coarse=1, n_blocks_fine=1)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    src_c, dst_c = task.coarse_inputs({"src": x, "dst": y})
    m = tf_weights(16, 32)
    assert np.abs(src_c.numpy() - np.einsum("oh,nchw,pw->ncop", m, x.double().numpy(), m)).max() < 1e-5
    assert np.abs(dst_c.numpy() - np.einsum("oh,nchw,pw->ncop", m, y.double().numpy(), m)).max() < 1e-5
    assert Fundus2AngioTask(
        ncf=8, nff=4, ndf=4, width=8, n_blocks_coarse=1, n_blocks_fine=1, antialias=True
    ).half.antialias
