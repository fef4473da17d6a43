"""medsynth.weights: cache lookup, fast clear errors offline, the seeded random fallback."""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import pytest
import torch

from medsynth import weights
from medsynth.weights import WeightSpec, WeightsUnavailable

HAVE_INCEPTION = weights.cache_path("inception").is_file()
HAVE_VGG19 = weights.cache_path("vgg19").is_file()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """An empty torch cache and no download attempts: the state of a fresh offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MEDSYNTH_OFFLINE", "1")
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_registry_paths_follow_torch_home(empty_cache):
    rows = weights.available()
    names = [r["name"] for r in rows]
    assert names[:2] == ["inception", "vgg19"] and {"lpips_alex", "i3d"} <= set(names)
    for r in rows:
        assert set(r) >= {"name", "file", "present", "path", "url"}
        assert r["present"] is False
        assert Path(r["path"]) == empty_cache / r["file"]
        assert r["url"].startswith("https://")
    assert weights.cache_path("vgg19") == empty_cache / "vgg19-dcbfe0ab.pth"
    with pytest.raises(KeyError, match="unknown weights"):
        weights.cache_path("nope")


@pytest.mark.parametrize("loader, name", [(weights.load_inception, "inception"), (weights.load_vgg19, "vgg19")])
def test_missing_pretrained_raises_fast_with_file_url_and_path(empty_cache, loader, name):
    spec = weights.REGISTRY[name]
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as info:
        loader(features="pretrained")
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert spec.file in msg and spec.url in msg and str(empty_cache / spec.file) in msg
    assert "MEDSYNTH_OFFLINE" in msg and "features='random'" in msg
    assert isinstance(info.value, RuntimeError)


def test_failed_download_is_fast_and_explained(empty_cache, monkeypatch):
    """A refused connection (no internet needed to test it) gives the same clear error, quickly."""
    monkeypatch.delenv("MEDSYNTH_OFFLINE")
    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 1.0)
    spec = WeightSpec("inception", weights.REGISTRY["inception"].file, "http://127.0.0.1:9/x.pth", "test")
    monkeypatch.setitem(weights.REGISTRY, "inception", spec)
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailable, match="download failed"):
        weights.load_inception(64)
    assert time.perf_counter() - t0 < 10
    assert not empty_cache.exists() or not any(empty_cache.iterdir())  # no partial file left behind


def test_download_writes_cache_and_checks_hash(empty_cache, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDSYNTH_OFFLINE")
    src = tmp_path / "blob.bin"
    src.write_bytes(b"weights" * 100)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setitem(weights.REGISTRY, "good", WeightSpec("good", "good.bin", src.as_uri(), "t", digest[:8]))
    monkeypatch.setitem(weights.REGISTRY, "bad", WeightSpec("bad", "bad.bin", src.as_uri(), "t", "00000000"))
    path = weights.fetch("good")
    assert path == empty_cache / "good.bin" and path.read_bytes() == src.read_bytes()
    with pytest.raises(WeightsUnavailable, match="sha256"):
        weights.fetch("bad")
    assert sorted(p.name for p in empty_cache.iterdir()) == ["good.bin"]
    with pytest.raises(WeightsUnavailable, match="download=False"):
        weights.fetch("bad", download=False)


def test_corrupt_cached_file_is_named(empty_cache):
    empty_cache.mkdir(parents=True)
    (empty_cache / weights.REGISTRY["vgg19"].file).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailable, match="could not be read"):
        weights.load_vgg19()


def test_random_inception_is_pytorch_fid_architecture_with_spread(empty_cache, monkeypatch):
    """Our offline builder equals pytorch-fid's InceptionV3 given the same weights, and the
    seeded re-init gives features with spread (PyTorch's default init gives ~1e-8)."""
    from pytorch_fid import inception as pi

    ours = weights.load_inception(64, features="random", seed=3)
    assert ours.features_kind == "random" and not ours.training
    assert not any(p.requires_grad for p in ours.parameters())
    full = weights._fid_backbone()
    weights._reinit_random(full, 3)
    monkeypatch.setattr(pi, "load_state_dict_from_url", lambda *a, **k: full.state_dict())
    ref = pi.InceptionV3([0]).eval()  # pytorch-fid's own constructor, strict load of our weights
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        f_ours, f_ref = ours(x)[0], ref(x)[0]
    torch.testing.assert_close(f_ours, f_ref)
    assert f_ours.std() > 0.05  # unit-scale activations, not ~1e-8
    with torch.no_grad():
        other = weights.load_inception(64, features="random", seed=4)(x)[0]
        again = weights.load_inception(64, features="random", seed=3)(x)[0]
    torch.testing.assert_close(again, f_ours)
    assert (other - f_ours).abs().max() > 1e-3
    deeper = weights.load_inception(192, features="random", seed=3)  # same seed: same first block
    torch.testing.assert_close(deeper.blocks[0][0].conv.weight, ours.blocks[0][0].conv.weight)


def test_cached_file_is_loaded_as_pretrained(empty_cache):
    """The cache path is honoured (a stand-in state dict: the real file is not needed for this)."""
    full = weights._fid_backbone()
    weights._reinit_random(full, 7)
    empty_cache.mkdir(parents=True)
    torch.save(full.state_dict(), empty_cache / weights.REGISTRY["inception"].file)
    assert [r["present"] for r in weights.available() if r["name"] == "inception"] == [True]
    net = weights.load_inception(64)  # offline, file present: no download attempted
    assert net.features_kind == "pretrained"
    torch.testing.assert_close(net.blocks[0][0].conv.weight, full.Conv2d_1a_3x3.conv.weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" with the file present: pretrained, no fallback warning
        assert weights.load_inception(64, features="auto").features_kind == "pretrained"


def test_auto_falls_back_loudly(empty_cache):
    with pytest.warns(UserWarning, match="RANDOM"):
        net = weights.load_inception(64, features="auto")
    assert net.features_kind == "random"
    with pytest.raises(ValueError, match="features must be one of"):
        weights.load_inception(64, features="imagenet")
    with pytest.raises(ValueError, match="dims must be one of"):
        weights.load_inception(100, features="random")


def test_random_vgg19_is_frozen_seeded_features(empty_cache):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = weights.load_vgg19(features="random", seed=1)
    weights.load_inception(64, features="random", seed=1)
    assert torch.rand(1) == before  # building and seeding leave the global RNG alone
    b = weights.load_vgg19(features="random", seed=1)
    assert isinstance(a, torch.nn.Sequential) and len(a) == 37 and a.features_kind == "random"
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    torch.testing.assert_close(a[0].weight, b[0].weight)


@pytest.mark.skipif(not HAVE_INCEPTION, reason=f"Inception weights not in {weights.cache_path('inception')}")
def test_pretrained_inception_loads_from_cache():
    net = weights.load_inception(64)
    assert net.features_kind == "pretrained"
    with torch.no_grad():
        f = net(torch.rand(2, 3, 32, 32))[0]
    assert f.shape[:2] == (2, 64) and torch.isfinite(f).all() and f.std() > 1e-3


@pytest.mark.skipif(not HAVE_VGG19, reason=f"torchvision VGG19 weights not in {weights.cache_path('vgg19')}")
def test_pretrained_vgg19_loads_from_cache():
    net = weights.load_vgg19()
    assert net.features_kind == "pretrained" and not any(p.requires_grad for p in net.parameters())


def test_with_fallback_resolves_auto_loudly_and_only_auto():
    def build(kind: str) -> str:
        if kind == "pretrained":
            raise weights.WeightsUnavailable("no file here")
        return kind

    with pytest.warns(UserWarning, match="RANDOM toy features.*no file here"):
        assert weights.with_fallback(build, "auto", "toy") == "random"
    with pytest.raises(weights.WeightsUnavailable):
        weights.with_fallback(build, "pretrained", "toy")
    with pytest.raises(ValueError, match="features must be one of"):
        weights.with_fallback(build, "imagenet", "toy")


def test_features_for_needs_every_named_file(empty_cache):
    assert weights.features_for("inception") == "random"
    path = weights.cache_path("alexnet")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    assert weights.features_for("alexnet") == "pretrained"  # present: no download needed
    assert weights.features_for("alexnet", "lpips_alex") == "random"  # one of two missing
