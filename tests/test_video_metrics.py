"""Chapter 05's video metrics by value and data flow: which frame and channel reach the I3D, what it is called
with, the per-video FVD by hand on a stand-in network (one whose features are known), the frame-wise curves,
the value-range checks at their tolerance, and how ``score_videos``, ``evaluate`` and ``evaluate_baselines``
pass their arguments on (stand-in metrics record the calls)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from medsynth.evidence import baseline_predictions
from medsynth.metrics import fid_from_features, framewise, psnr, ssim
from medsynth.metrics.video import I3D_SIZE, VideoMetric, fvd, fvd_per_video, i3d_features, i3d_preprocess

vid = importlib.import_module("medsynth.metrics.video")
ve = importlib.import_module("medsynth.metrics.video_eval")


class _StandIn(nn.Module):
    """Features (mean, 2 * mean) of the whole clip, NaN for clips of ``nan_at`` frames; records each call."""

    def __init__(self, kind: str, calls: list, nan_at: int | None = None) -> None:
        super().__init__()
        self.features_kind, self.calls, self.nan_at = kind, calls, nan_at

    def forward(self, x, **kw):
        self.calls.append((tuple(x.shape), kw, x.clone()))
        m = x.double().flatten(1).mean(1, keepdim=True)
        f = torch.cat([m, 2 * m], 1)
        return torch.full_like(f, float("nan")) if x.shape[2] == self.nan_at else f


@pytest.fixture()
def standin(monkeypatch):
    """Replace the I3D loader; ``loads`` records (features, seed, dims, device); ``kind`` maps features -> kind."""
    rec = {
        "loads": [],
        "calls": [],
        "kind": {"pretrained": "pretrained", "random": "random", "auto": "random"},
        "nan_at": None,
    }

    def load(features, seed, dims, device):
        rec["loads"].append((features, seed, dims, str(device)))
        return _StandIn(rec["kind"][features], rec["calls"], rec["nan_at"])

    monkeypatch.setattr(vid, "load_i3d", load)
    return rec


def _const_videos(values: np.ndarray, size: int = 8) -> torch.Tensor:
    """(N, T) values -> (N, T, 1, size, size) videos, each frame constant."""
    v = torch.tensor(values, dtype=torch.float64)
    return v[:, :, None, None, None].expand(-1, -1, 1, size, size).contiguous()


def test_videometric_labels() -> None:
    s = VideoMetric(3.0, "FVD", "pretrained", "I3D", 5, protocol="set")
    p = VideoMetric(3.0, "FVD", "pretrained", "I3D", 5, 0.5, protocol="per video")
    r = VideoMetric(3.0, "FVD", "random", "3D-conv", 5, protocol="per video")
    assert s.label == "FVD (I3D); set-level FVD (ours) — never comparable to Table 1's per-video FVD"
    assert p.label == "FVD (I3D); per-video FVD (official protocol)" and p.comparable and not s.comparable
    assert (
        r.label == ("FVD, random 3D-conv features — not comparable to published FVD; per-video FVD (official protocol)")
        and not r.comparable
    )
    assert VideoMetric(1.0, "FVD", "pretrained", "I3D", 2).protocol == "set"  # the default protocol is ours
    assert str(p) == "FVD (I3D); per-video FVD (official protocol) = 3 ± 0.5 (n=5)"


def test_preprocess_keeps_each_frame_and_channel_in_place_at_a_non_default_size() -> None:
    assert I3D_SIZE == 224  # common_metrics' preprocess_single(resolution=224)
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 4, 3, 8, 8, generator=g)
    out = i3d_preprocess(v, size=8)  # no resize: only the layout and (v - 0.5) * 2
    assert out.shape == (2, 3, 4, 8, 8)
    for n in range(2):
        for t in range(4):
            for c in range(3):
                assert torch.allclose(out[n, c, t], (v[n, t, c] - 0.5) * 2)
    grey = i3d_preprocess(v[:, :, :1], size=8)
    assert all(torch.allclose(grey[:, c], (v[:, :, 0] - 0.5) * 2) for c in range(3))  # grey repeated to 3
    # portrait and landscape at size 6: the shorter side -> 6, the longer ceil(...), the centre kept
    for hw, target in (((8, 12), (6, 9)), ((12, 8), (9, 6))):
        x = torch.rand(1, 2, 1, *hw, generator=g)
        up = torch.nn.functional.interpolate(
            x[0].expand(-1, 3, -1, -1), size=target, mode="bilinear", align_corners=False
        )
        y0, x0 = (target[0] - 6) // 2, (target[1] - 6) // 2
        ref = ((up[..., y0 : y0 + 6, x0 : x0 + 6] - 0.5) * 2).permute(1, 0, 2, 3)
        assert torch.allclose(i3d_preprocess(x, size=6)[0], ref, atol=1e-6)


def test_value_range_checks_at_their_tolerance(standin) -> None:
    v = torch.full((1, 2, 1, 8, 8), 0.5)
    for lo, hi in ((-5e-4, 1.0), (0.0, 1 + 5e-4)):  # within 1e-3 of [0, 1]: accepted
        w = v.clone()
        w[0, 0, 0, 0, :2] = torch.tensor([lo, hi])
        i3d_features(w, "random")
    for bad in (-2e-3, 1 + 2e-3):
        w = v.clone()
        w[0, 1, 0, 3, 3] = bad
        with pytest.raises(ValueError, match=r"\[0,1\].*generator output\? pass \(x \+ 1\) / 2"):
            i3d_features(w, "random")
    i3d_features(v * 0 - 1.0005, "random", value_range=(-1.0, 1.0))
    w = v * 0
    w[0, 0, 0, 1, 1] = -1.01
    with pytest.raises(ValueError, match=r"must lie in \[-1,1\], got \[-1.01, 0\]$"):  # no [0,1] hint here
        i3d_features(w, "random", value_range=(-1.0, 1.0))
    for bad in (torch.zeros(2, 1, 8, 8), torch.zeros(1, 2, 2, 8, 8), np.zeros((1, 2, 1, 8, 8))):
        with pytest.raises(ValueError, match=r"\(N,T,C,H,W\) with C in \{1,3\}"):
            i3d_features(bad, "random")


def test_i3d_features_calls_the_network_as_common_metrics_in_batches(standin) -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.rand(5, 3, 1, 10, 12, generator=g)
    f, kind = i3d_features(v, "pretrained", seed=7, dims=9, device="cpu", batch_size=2)
    assert kind == "pretrained" and f.dtype == np.float64 and f.shape == (5, 2)
    assert standin["loads"] == [("pretrained", 7, 9, "cpu")]
    assert [c[0][0] for c in standin["calls"]] == [2, 2, 1]  # batches of batch_size, in order
    for _, kw, _ in standin["calls"]:
        assert kw == {"rescale": False, "resize": False, "return_features": True}
    seen = torch.cat([c[2] for c in standin["calls"]])
    assert torch.allclose(seen, i3d_preprocess(v))  # the network gets the preprocessed clip, videos in order
    want = i3d_preprocess(v).double().flatten(1).mean(1).numpy()
    np.testing.assert_allclose(f[:, 0], want) and np.testing.assert_allclose(f[:, 1], 2 * want)
    standin["loads"].clear(), standin["calls"].clear()
    i3d_features(v, device="cpu")  # defaults: pretrained I3D, seed 0, 400 dims (only the fallback uses them), 4/batch
    assert standin["loads"] == [("pretrained", 0, 400, "cpu")]
    assert [c[0][0] for c in standin["calls"]] == [4, 1]


def test_set_fvd_is_fid_of_the_features_and_resolves_auto_once(standin) -> None:
    g = torch.Generator().manual_seed(2)
    real, fake = torch.rand(4, 3, 1, 8, 8, generator=g), torch.rand(4, 3, 1, 8, 8, generator=g) * 0.5
    f1, _ = i3d_features(real, "pretrained")
    f2, _ = i3d_features(fake, "pretrained")
    standin["loads"].clear()
    r = fvd(real, fake, "auto", seed=3, dims=5, device="cpu")
    # "auto" resolved by the first call (stand-in: random); the second set is embedded with that same kind
    assert [x[:3] for x in standin["loads"]] == [("auto", 3, 5), ("random", 3, 5)]
    assert (r.features, r.backbone, r.n, r.protocol, r.name) == ("random", "3D-conv", 4, "set", "FVD")
    p = fvd(real, fake, "pretrained")
    assert p.value == pytest.approx(fid_from_features(f1, f2)) and p.backbone == "I3D"
    assert p.value > 0 and fvd(real, real, "pretrained").value == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        fvd(real * 2 - 1, fake, "pretrained")
    fvd(real * 2 - 1, fake * 2 - 1, "pretrained", value_range=(-1.0, 1.0))


def test_per_video_fvd_by_hand(standin) -> None:
    # constant frames: the stand-in's features are m and 2m with m = 2 * mean(clip) - 1, so per clip length L the
    # squared distance is (1 + 4) * (2 * (mean real[:L] - mean fake[:L]))^2 = 20 * delta_L^2
    real = np.array([[0.2, 0.4, 0.6, 0.8, 1.0], [0.5, 0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    fake = np.array([[0.2, 0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])

    def hand(min_length: int) -> np.ndarray:
        return np.mean([20 * (real[:, :L].mean(1) - fake[:, :L].mean(1)) ** 2 for L in range(min_length, 6)], 0)

    r, f = _const_videos(real), _const_videos(fake)
    for min_length in (3, 5):
        got = fvd_per_video(r, f, "pretrained", min_length=min_length)
        want = hand(min_length)
        assert got.value == pytest.approx(want.mean()) and got.std == pytest.approx(want.std())
        assert (got.protocol, got.n, got.features, got.backbone, got.comparable) == (
            "per video",
            3,
            "pretrained",
            "I3D",
            True,
        )
    standin["loads"].clear()
    got = fvd_per_video(r, f, "auto", seed=2, dims=6, min_length=4)
    # "auto" is resolved by the first call; every later call uses the kind it gave
    assert [x[:3] for x in standin["loads"]] == [("auto", 2, 6)] + [("random", 2, 6)] * 3
    assert got.features == "random" and got.backbone == "3D-conv"
    # a clip length whose features are NaN is left out (np.nanmean, as common_metrics)
    standin["nan_at"] = 4
    got = fvd_per_video(r, f, "pretrained", min_length=4)
    assert got.value == pytest.approx(hand(5).mean())
    standin["nan_at"] = None
    one = fvd_per_video(r[:1], f[:1], "pretrained", min_length=5)
    assert one.n == 1 and one.std is None and one.value == pytest.approx(hand(5)[0])


def test_per_video_fvd_default_min_length_is_10_frames(standin) -> None:
    v = torch.rand(2, 10, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    fvd_per_video(v, v * 0.5, "pretrained")  # exactly 10 frames: one clip length
    assert [c[0][2] for c in standin["calls"]] == [10, 10]
    with pytest.raises(ValueError, match=">= 10 frames"):
        fvd_per_video(v[:, :9], v[:, :9], "pretrained")
    with pytest.raises(ValueError, match="one shape"):
        fvd_per_video(v, v[:1], "pretrained")
    fvd_per_video(v[:, :3] * 2 - 1, v[:, :3] * 0, "pretrained", value_range=(-1.0, 1.0), min_length=3)
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        fvd_per_video(v[:, :3] * 2 - 1, v[:, :3] * 0, "pretrained", min_length=3)


def test_framewise_pairs_frame_t_with_frame_t() -> None:
    real = torch.rand(3, 4, 1, 6, 6, generator=torch.Generator().manual_seed(4)) * 0.5
    fake = real + torch.arange(4.0).view(1, 4, 1, 1, 1) / 10  # frame t is off by t / 10
    seen = []

    def metric(a, b, reduction, k=1.0):
        seen.append(reduction)
        return (b - a).flatten(1).mean(1) * k

    np.testing.assert_allclose(framewise(real, fake, metric, k=3.0), [0.0, 0.3, 0.6, 0.9], atol=1e-6)
    assert seen == ["none"] * 4
    np.testing.assert_allclose(
        framewise(real * 2 - 1, fake * 2 - 1, metric, (-1.0, 1.0)), [0, 0.2, 0.4, 0.6], atol=1e-6
    )
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        framewise(real * 2 - 1, fake, metric)
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        framewise(real, fake * 2 - 1, metric)
    with pytest.raises(ValueError, match="differ in shape"):
        framewise(real, fake[:, :3], metric)


def test_conventions_and_to_convention() -> None:
    assert ve.CONVENTIONS == {"ours": (0.0, 1.0), "official": (-1.0, 1.0)}
    v = torch.rand(1, 2, 1, 4, 4)
    assert ve.to_convention(v, "ours") is v
    assert torch.allclose(ve.to_convention(v, "official"), v * 2 - 1)
    with pytest.raises(ValueError, match=r"convention must be one of \['official', 'ours'\], got 'x'"):
        ve.to_convention(v, "x")


def test_score_videos_passes_each_convention_its_inputs(standin, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    g = torch.Generator().manual_seed(5)
    real = torch.rand(2, 10, 1, 16, 16, generator=g)
    fake = (real + 0.1 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    lp_calls = []
    real_lpips = importlib.import_module("medsynth.metrics.lpips").lpips

    def lpips_rec(a, b, net, features):
        lp_calls.append((a.clone(), b.clone(), net, features))
        return real_lpips(a, b, net, features=features)

    monkeypatch.setattr(
        importlib.import_module("medsynth.metrics"), "lpips", lpips_rec
    )  # what _score imports from medsynth.metrics
    s = ve.score_videos(real, fake, features="random", fvd_dims=6, lpips_net="vgg")
    for conv, out in (("ours", s), ("official", s["official"])):
        r, f = ve.to_convention(real, conv), ve.to_convention(fake, conv)
        vr = ve.CONVENTIONS[conv]
        np.testing.assert_allclose(out["ssim_per_frame"], framewise(r, f, ssim, vr, data_range=1.0))
        np.testing.assert_allclose(out["psnr_per_frame"], framewise(r, f, psnr, vr, data_range=1.0))
        assert out["SSIM"] == pytest.approx(out["ssim_per_frame"].mean())
        assert out["PSNR"] == pytest.approx(out["psnr_per_frame"].mean())
        assert out["LPIPS"].backbone == "VGG16" and out["LPIPS"].n == 20  # every frame of every video
        assert out["FVD"].protocol == ("set" if conv == "ours" else "per video")
    # LPIPS gets the frames flattened video by video, in each convention's range, with the net and features asked
    assert [(c[2], c[3]) for c in lp_calls] == [("vgg", "random")] * 2
    assert torch.equal(lp_calls[0][0], real.flatten(0, 1)) and torch.equal(lp_calls[0][1], fake.flatten(0, 1))
    assert torch.allclose(lp_calls[1][0], real.flatten(0, 1) * 2 - 1)
    assert torch.allclose(lp_calls[1][1], fake.flatten(0, 1) * 2 - 1)
    # FVD: ours over the set, the official per video (one clip length here: 10 frames), each in its own range
    assert {x[:3] for x in standin["loads"]} == {("random", 0, 6)}
    assert s["FVD"].value == pytest.approx(fvd(real, fake, "random", dims=6).value)
    assert s["official"]["FVD"].value == pytest.approx(
        fvd_per_video(real * 2 - 1, fake * 2 - 1, "random", dims=6, value_range=(-1.0, 1.0)).value
    )
    assert "official" not in ve.score_videos(real, fake, features="random", fvd_dims=6, lpips_net="vgg", official=False)


def test_score_videos_defaults(standin, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no weights, offline: "auto" falls back, labelled
    real = torch.rand(3, 10, 1, 32, 32, generator=torch.Generator().manual_seed(6))
    with pytest.warns(UserWarning, match="RANDOM"):
        s = ve.score_videos(real, real * 0.9)
    assert s["LPIPS"].backbone == "AlexNet" and s["LPIPS"].features == "random"
    assert {x[:3] for x in standin["loads"]} == {("auto", 0, 400), ("random", 0, 400)}
    assert s["official"]["FVD"].protocol == "per video" and s["official"]["FVD"].n == 3


class _Task:
    """Generates video i as a constant 0.1 * (photo mean index) clip; records how it was called."""

    def __init__(self) -> None:
        self.calls = []

    def generate(self, cf, frames, average):
        self.calls.append((len(cf), frames, average))
        return cf.mean((1, 2, 3))[:, None, None, None, None].expand(-1, frames, 1, 4, 4) * 0.5


def _items(n: int, t: int = 3):
    g = torch.Generator().manual_seed(7)
    return [
        {"src": torch.rand(3, 4, 4, generator=g) * 2 - 1, "frames": torch.rand(t, 1, 4, 4, generator=g) * 2 - 1}
        for _ in range(n)
    ]


def test_photos_and_videos_and_evaluate_data_flow(monkeypatch) -> None:
    items = _items(5)
    cf, real01 = ve.photos_and_videos(items)
    assert torch.equal(cf, torch.stack([it["src"] for it in items]))
    assert torch.allclose(real01, (torch.stack([it["frames"] for it in items]) + 1) / 2)
    scored = []
    monkeypatch.setattr(ve, "score_videos", lambda *a: scored.append(a) or {"SSIM": 0.5})
    task = _Task()
    out = ve.evaluate(task, items, "random", 7, "vgg", average=False, batch_size=2, official=False)
    assert task.calls == [(2, 3, False), (2, 3, False), (1, 3, False)]
    want_fake01 = (cf.mean((1, 2, 3))[:, None, None, None, None].expand(-1, 3, 1, 4, 4) * 0.5 + 1) / 2
    assert torch.allclose(out["fake"], want_fake01) and torch.allclose(out["real"], real01)
    assert torch.allclose(out["cf"], (cf + 1) / 2) and out["SSIM"] == 0.5
    ((r, f, *rest),) = scored
    assert torch.equal(r, real01) and torch.allclose(f, want_fake01) and rest == ["random", 7, "vgg", False]
    scored.clear(), task.calls.clear()
    ve.evaluate(task, items)  # defaults: auto features, 400-d fallback, AlexNet, averaged, 4 per batch, official
    assert task.calls == [(4, 3, True), (1, 3, True)] and scored[0][2:] == ("auto", 400, "alex", True)


def test_evaluate_baselines_scores_the_training_videos_against_the_test_videos(monkeypatch) -> None:
    train, test = _items(4), _items(3)[::-1]
    scored = []
    monkeypatch.setattr(ve, "score_videos", lambda *a: scored.append(a) or len(scored))
    out = ve.evaluate_baselines(train, test, seed=5, features="random", fvd_dims=8, lpips_net="vgg", official=False)
    _, train01 = ve.photos_and_videos(train)
    _, test01 = ve.photos_and_videos(test)
    preds = baseline_predictions(train01, 3, seed=5)
    assert list(out) == list(preds) and list(out.values()) == [1, 2]
    for (r, v, *rest), want in zip(scored, preds.values(), strict=True):
        assert torch.equal(r, test01) and torch.equal(v, want) and rest == ["random", 8, "vgg", False]
    scored.clear()
    ve.evaluate_baselines(train, test)
    assert scored[0][2:] == ("auto", 400, "alex", True)
    assert torch.equal(scored[1][1], baseline_predictions(train01, 3, seed=0)["random training target"])


def test_check_videos_boundaries_channels_and_messages(standin) -> None:
    # float64 so that the tolerance itself is representable: exactly 1e-3 outside the range is still accepted
    v = torch.full((1, 2, 1, 8, 8), 0.5, dtype=torch.float64)
    for edge in (-1e-3, 1 + 1e-3):
        w = v.clone()
        w[0, 0, 0, 0, 0] = edge
        i3d_features(w, "pretrained")
    i3d_features(torch.rand(1, 2, 3, 8, 8), "pretrained")  # RGB videos are accepted
    with pytest.raises(ValueError, match=r"with C in \{1,3\}, got \(1, 2, 4, 8, 8\)"):
        i3d_features(torch.rand(1, 2, 4, 8, 8), "pretrained")
    with pytest.raises(ValueError, match=r"got ndarray$"):
        i3d_features(np.zeros((1, 2, 1, 8, 8)), "pretrained")


def test_fvd_defaults_device_and_names(standin) -> None:
    g = torch.Generator().manual_seed(8)
    real, fake = torch.rand(2, 3, 1, 8, 8, generator=g), torch.rand(2, 3, 1, 8, 8, generator=g)
    fvd(real, fake)
    fvd_per_video(real, fake, min_length=3)
    # the published settings by default: the pretrained I3D (400-d); both sets embedded by it
    assert {x[:3] for x in standin["loads"]} == {("pretrained", 0, 400)} and len(standin["loads"]) == 4
    standin["loads"].clear()
    fvd(real, fake, device="cpu:0")
    r = fvd_per_video(real, fake, device="cpu:0", min_length=3)
    assert {x[3] for x in standin["loads"]} == {"cpu:0"}  # the device asked for reaches every embedding
    assert r.name == "FVD" and r.n == 2 and r.std is not None and r.std >= 0
    per = ((i3d_features(real, "pretrained")[0] - i3d_features(fake, "pretrained")[0]) ** 2).sum(1)  # one length
    assert r.value == pytest.approx(per.mean()) and r.std == pytest.approx(per.std())
