"""LPIPS v0.1 (Zhang et al. 2018, Eq. 1) by value: a hand-built backbone with a hand-computed distance, an
independent numpy Eq. 1 on the real (random-weight) AlexNet/VGG16, the taps and channel counts of the paper's
networks, the scaling layer's constants, which learned weight multiplies which channel, batching and labels."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from medsynth.metrics import FeatureMetric, lpips
from medsynth.weights import WeightsUnavailable, load_lpips_backbone

lp = importlib.import_module("medsynth.metrics.lpips")  # the module: medsynth.metrics.lpips is the function

# the reference code's ScalingLayer (PerceptualSimilarity, lpips/pretrained_networks + lpips.py)
SHIFT = np.array([-0.030, -0.088, -0.188])
SCALE = np.array([0.458, 0.448, 0.450])
ALEX_TAPS, VGG_TAPS = (1, 4, 7, 9, 11), (3, 8, 15, 22, 29)
# channels at relu1..relu5 of AlexNet and at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of VGG16 (Zhang et al. 2018)
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


@pytest.fixture(autouse=True)
def _fresh_cache():
    lp._lpips_net.cache_clear()  # the factory is cached; a monkeypatched backbone must not leak either way
    yield
    lp._lpips_net.cache_clear()


class _AddConst(nn.Module):
    """x + c: makes every layer's output distinct, so tapping the wrong layer changes the distance."""

    def __init__(self, c: tuple[float, float, float]) -> None:
        super().__init__()
        self.register_buffer("c", torch.tensor(c).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c


def _consts(n: int) -> list[tuple[float, float, float]]:
    return [(0.1 * (i + 1), -0.07 * i, 0.05 * (i % 3)) for i in range(n)]


def _fake_body(kind: str, n: int = 12) -> nn.Sequential:
    """Layer 0: a 1x1 identity conv (3 -> 3); layers 1..n-1 add distinct constants; labelled ``kind``."""
    conv = nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    body = nn.Sequential(conv, *[_AddConst(c) for c in _consts(n - 1)])
    body.features_kind = kind
    return body


def _patch(monkeypatch, kind: str = "pretrained", lins: list[torch.Tensor] | None = None) -> None:
    monkeypatch.setattr(lp, "load_lpips_backbone", lambda net, features, seed: _fake_body(kind))
    if lins is not None:
        monkeypatch.setattr(lp, "load_lpips_linear", lambda net: lins)


def _eq1_fake(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Eq. 1 on the fake body in numpy: x, y (N,3,H,W) in [-1,1]; w (5, 3) channel weights -> (N,)."""
    cum = np.cumsum(np.array([(0.0, 0.0, 0.0), *_consts(11)]), 0)  # constant added up to layer i
    d = np.zeros(len(x))
    for li, t in enumerate(ALEX_TAPS):
        fx = (x - SHIFT[:, None, None]) / SCALE[:, None, None] + cum[t][:, None, None]
        fy = (y - SHIFT[:, None, None]) / SCALE[:, None, None] + cum[t][:, None, None]
        fx = fx / (np.sqrt((fx**2).sum(1, keepdims=True)) + 1e-10)
        fy = fy / (np.sqrt((fy**2).sum(1, keepdims=True)) + 1e-10)
        d += (((fx - fy) ** 2) * w[li][:, None, None]).sum(1).mean((1, 2))
    return d


def test_hand_computed_distance_on_a_one_pixel_image(monkeypatch) -> None:
    # a 1-conv body with no constants: the tapped feature is the scaled input, so pick inputs whose scaled
    # values are the unit vectors e0 and e2: ||e0 - e2||^2 weighted by (1, 2, 3) is 1 + 3 = 4 per layer, 5 layers
    body = nn.Sequential(_fake_body("pretrained")[0], *[nn.Identity() for _ in range(11)])
    body.features_kind = "pretrained"
    monkeypatch.setattr(lp, "load_lpips_backbone", lambda net, features, seed: body)
    monkeypatch.setattr(lp, "load_lpips_linear", lambda net: [torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)] * 5)
    m = lp.LPIPS("alex", "pretrained")
    x = torch.tensor(SHIFT + SCALE * np.array([1, 0, 0]), dtype=torch.float32).view(1, 3, 1, 1)
    y = torch.tensor(SHIFT + SCALE * np.array([0, 0, 1]), dtype=torch.float32).view(1, 3, 1, 1)
    assert m(x, y).item() == pytest.approx(20.0, rel=1e-5)
    assert m(x, x).item() == 0.0
    # scaled (2, 0, 0) normalises to e0 too: only the direction counts; (0, 1, 0) weighs 2: (1 + 2) * 5
    x2 = torch.tensor(SHIFT + SCALE * np.array([2, 0, 0]), dtype=torch.float32).view(1, 3, 1, 1)
    y2 = torch.tensor(SHIFT + SCALE * np.array([0, 1, 0]), dtype=torch.float32).view(1, 3, 1, 1)
    assert m(x2, x).item() == pytest.approx(0.0, abs=1e-6)
    assert m(x, y2).item() == pytest.approx(15.0, rel=1e-5)
    # through lpips(): inputs in [0, 1] become 2v - 1 first
    assert lpips((x + 1) / 2, (y + 1) / 2, features="pretrained", reduction="none").item() == pytest.approx(20.0, 1e-5)


def test_eq1_against_numpy_with_channel_weights_and_distinct_layers(monkeypatch) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.rand(5, 3, generator=g) + 0.1  # learned, non-negative, different per layer and channel
    _patch(monkeypatch, "pretrained", [w[i].view(1, 3, 1, 1) for i in range(5)])
    x, y = torch.rand(3, 3, 2, 3, generator=g) * 2 - 1, torch.rand(3, 3, 2, 3, generator=g) * 2 - 1
    m = lp.LPIPS("alex", "pretrained")
    want = _eq1_fake(x.double().numpy(), y.double().numpy(), w.double().numpy())
    np.testing.assert_allclose(m(x, y).numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(m(x.double(), y.double()).numpy(), want, rtol=1e-5)  # float64 in: cast, same value
    # each layer weight is a buffer w0..w4 holding exactly the learned (1, C, 1, 1) tensor
    for i in range(5):
        assert torch.equal(getattr(m, f"w{i}"), w[i].view(1, 3, 1, 1))
    assert m.features_kind == "pretrained" and m.net == "alex"
    # lpips(): [0,1] -> 2v - 1, batched in chunks of batch_size, mean and std (unbiased) over the pairs
    a, b = (x + 1) / 2, (y + 1) / 2
    d = lpips(a, b, features="pretrained", reduction="none", batch_size=2)
    np.testing.assert_allclose(d.numpy(), want, rtol=1e-5)
    r = lpips(a, b, features="pretrained", batch_size=1)
    assert isinstance(r, FeatureMetric) and r.n == 3 and r.comparable
    assert r.value == pytest.approx(want.mean(), rel=1e-5) and r.std == pytest.approx(want.std(ddof=1), rel=1e-4)
    assert (r.name, r.features, r.backbone, r.label) == ("LPIPS", "pretrained", "AlexNet", "LPIPS (AlexNet)")
    assert str(r) == f"LPIPS (AlexNet) = {want.mean():.4g} ± {want.std(ddof=1):.3g} (n=3)"
    one = lpips(a[:1], b[:1], features="pretrained")
    assert one.n == 1 and one.std is None and one.value == pytest.approx(want[0], rel=1e-5)


def test_grey_input_is_the_grey_value_in_all_three_channels(monkeypatch) -> None:
    _patch(monkeypatch, "pretrained", [torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)] * 5)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 1, 3, 3, generator=g), torch.rand(2, 1, 3, 3, generator=g)
    d1 = lpips(a, b, features="pretrained", reduction="none")
    d3 = lpips(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1), features="pretrained", reduction="none")
    assert torch.allclose(d1, d3)
    want = _eq1_fake(
        (2 * a - 1).expand(-1, 3, -1, -1).double().numpy(),
        (2 * b - 1).expand(-1, 3, -1, -1).double().numpy(),
        np.tile([0.5, 1.0, 2.0], (5, 1)),
    )
    np.testing.assert_allclose(d1.numpy(), want, rtol=1e-5)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_taps_are_the_papers_relus_with_their_channel_counts(net: str) -> None:
    full = load_lpips_backbone(net, "random")
    relus = [i for i, m in enumerate(full) if isinstance(m, nn.ReLU)]
    # AlexNet: every ReLU (relu1..relu5); VGG16: the last ReLU of each of the 5 blocks (before each max-pool)
    want = relus if net == "alex" else [i for i in relus if isinstance(full[i + 1], nn.MaxPool2d)]
    assert lp.LPIPS_TAPS[net] == tuple(want) == (ALEX_TAPS if net == "alex" else VGG_TAPS)
    m = lp.LPIPS(net, "random", seed=3)
    assert len(m.body) == want[-1] + 1 and isinstance(m.body[-1], nn.ReLU)  # cut after the last tap
    assert m.taps == tuple(want)
    for i, c in enumerate(CHANNELS[net]):  # random fallback: equal weights 1/C per channel
        w = getattr(m, f"w{i}")
        assert w.shape == (1, c, 1, 1) and torch.allclose(w, torch.full_like(w, 1.0 / c))
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    assert torch.allclose(m.shift.flatten(), torch.tensor(SHIFT, dtype=torch.float32))
    assert torch.allclose(m.scale.flatten(), torch.tensor(SCALE, dtype=torch.float32))
    assert m.features_kind == "random" and m.net == net


def _eq1_real(m: lp.LPIPS, x: torch.Tensor, y: torch.Tensor, taps: tuple[int, ...]) -> np.ndarray:
    """Eq. 1 in numpy on the features a forward hook sees at each given layer of ``m.body``."""
    seen: list[np.ndarray] = []
    hooks = [m.body[t].register_forward_hook(lambda mod, i, o: seen.append(o.double().numpy())) for t in taps]
    try:
        for v in (x, y):
            m.body(
                (v.expand(-1, 3, -1, -1) - torch.tensor(SHIFT).view(1, 3, 1, 1).float())
                / torch.tensor(SCALE).view(1, 3, 1, 1).float()
            )
    finally:
        for h in hooks:
            h.remove()
    k = len(taps)
    d = np.zeros(len(x))
    for li, (fx, fy) in enumerate(zip(seen[:k], seen[k:], strict=True)):
        fx = fx / (np.sqrt((fx**2).sum(1, keepdims=True)) + 1e-10)
        fy = fy / (np.sqrt((fy**2).sum(1, keepdims=True)) + 1e-10)
        w = getattr(m, f"w{li}").double().numpy()[0]
        d += (((fx - fy) ** 2) * w).sum(1).mean((1, 2))
    return d


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_real_backbone_matches_numpy_eq1(net: str) -> None:
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 40, 40, generator=g), torch.rand(2, 3, 40, 40, generator=g)
    m = lp.LPIPS(net, "random", seed=0)
    want = _eq1_real(m, a * 2 - 1, b * 2 - 1, ALEX_TAPS if net == "alex" else VGG_TAPS)
    got = lpips(a, b, net, features="random", reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)
    r = lpips(a, b, net, features="random")
    assert r.backbone == ("AlexNet" if net == "alex" else "VGG16") and r.features == "random" and not r.comparable
    assert r.label == f"LPIPS, random {r.backbone} features — not comparable to published LPIPS"


def test_defaults_alexnet_pretrained_seed0(monkeypatch, tmp_path) -> None:
    g = torch.Generator().manual_seed(4)
    a, b = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    base = lpips(a, b, "alex", "random", 0, reduction="none")
    assert torch.equal(lpips(a, b, features="random", reduction="none"), base)  # net="alex", seed=0
    assert not torch.allclose(lpips(a, b, features="random", seed=1, reduction="none"), base)
    assert lpips(a, b, features="random").backbone == "AlexNet"
    m0, m1 = lp.LPIPS(features="random"), lp.LPIPS("alex", "random", seed=1)  # the class: seed 0 by default too
    assert m0.net == "alex" and torch.equal(m0.body[0].weight, lp.LPIPS("alex", "random", seed=0).body[0].weight)
    assert not torch.equal(m0.body[0].weight, m1.body[0].weight)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached, offline: the default features are pretrained
    with pytest.raises(WeightsUnavailable, match="alexnet-owt"):
        lpips(a, b)
    with pytest.raises(WeightsUnavailable):
        lp.LPIPS()


def test_auto_falls_back_loudly_and_pretrained_linear_missing_raises(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with pytest.warns(UserWarning, match="RANDOM LPIPS \\(AlexNet\\) features") as rec:
        r = lpips(a, a.flip(0), features="auto")
    assert rec[0].filename == __file__  # the warning points at the caller of lpips()
    assert r.features == "random" and not r.comparable
    # backbone present, linear layers missing: "pretrained" raises; "auto" keeps the backbone, equal weights, random
    monkeypatch.setattr(lp, "load_lpips_backbone", lambda net, features, seed: _fake_body("pretrained"))
    with pytest.raises(WeightsUnavailable, match="lpips_v0.1_alex.pth"):
        lp.LPIPS("alex", "pretrained")
    with pytest.warns(UserWarning, match="'auto': LPIPS linear layers missing, using equal weights") as rec:
        m = lp.LPIPS("alex", "auto")
    assert rec[0].filename == __file__  # points at whoever built the module
    assert m.features_kind == "random"
    for i in range(5):
        assert torch.allclose(getattr(m, f"w{i}"), torch.full((1, 3, 1, 1), 1 / 3))


def test_bad_arguments_raise() -> None:
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="features must be one of"):
        lp.LPIPS("alex", "imagenet")
    with pytest.raises(ValueError, match=r"\(N,C,H,W\)"):
        lpips(a, a[:1], features="random")
    with pytest.raises(ValueError, match=r"\(N,C,H,W\)"):
        lpips(a[0], a[0], features="random")
