"""medsynth.metrics against known cases: closed-form FID, hand KID/PSNR/Dice, skimage SSIM/PSNR."""

from __future__ import annotations

import json
import math
import warnings
from itertools import pairwise

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from medsynth import metrics, weights
from medsynth.metrics import MetricResult, dice, fid_from_features, kid_from_features, ms_ssim, psnr, ssim

CPU = "cpu"


def _exact_gaussian(n: int, mu: np.ndarray, var: np.ndarray, seed: int) -> np.ndarray:
    """n samples whose sample mean is exactly ``mu`` and sample covariance exactly ``diag(var)``."""
    z = np.random.default_rng(seed).standard_normal((n, len(mu)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)).T)  # whiten: cov(z) == I
    return mu + z * np.sqrt(var)


def _textures(n: int, seed: int, smooth: bool) -> torch.Tensor:
    """(n,1,64,64) images in [0,1]: upsampled noise, smooth (bilinear) or blocky (nearest)."""
    z = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(z, size=64, mode="bilinear" if smooth else "nearest")


# ---------------------------------------------------------------- FID / KID from features


def test_fid_closed_form_diagonal_gaussians():
    d = 6
    mu1, mu2 = np.arange(d, dtype=float), np.arange(d, dtype=float)[::-1] * 0.5
    v1, v2 = np.linspace(0.5, 2.0, d), np.linspace(3.0, 0.2, d)
    f1, f2 = _exact_gaussian(200, mu1, v1, 0), _exact_gaussian(300, mu2, v2, 1)
    # ||mu1-mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) with diagonal S: sum (sqrt v1 - sqrt v2)^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-9)
    assert fid_from_features(f1, f1) == pytest.approx(0.0, abs=1e-8)


def test_fid_works_when_pytorch_fid_meets_new_scipy(monkeypatch):
    """SciPy 1.18 removed sqrtm(disp=...), which pytorch-fid 0.3.0 passes: same value either way."""
    import types

    from pytorch_fid import fid_score
    from scipy import linalg

    f1, f2 = _exact_gaussian(50, np.zeros(4), np.ones(4), 0), _exact_gaussian(50, np.ones(4), np.full(4, 2.0), 1)
    expected = fid_from_features(f1, f2)
    monkeypatch.setattr(fid_score, "linalg", types.SimpleNamespace(sqrtm=lambda a: linalg.sqrtm(a)))
    with pytest.raises(TypeError, match="disp"):
        fid_score.calculate_frechet_distance(np.zeros(4), np.eye(4), np.zeros(4), np.eye(4))
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(4 + 4 * (np.sqrt(2) - 1) ** 2, rel=1e-9)


def test_fid_rejects_bad_features():
    with pytest.raises(ValueError, match="equal d"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.warns(UserWarning, match="rank-deficient"):
        fid_from_features(np.random.default_rng(0).random((4, 8)), np.random.default_rng(1).random((4, 8)))


def test_kid_hand_case_and_brute_force():
    # d=1, k(x,y) = (xy+1)^3: X={0,0}, Y={1,1} -> mean k_xx(off-diag)=1, k_yy=8, k_xy=1: 1 + 8 - 2 = 7
    mean, std = kid_from_features(np.zeros((2, 1)), np.ones((2, 1)), subsets=3)
    assert (mean, std) == (pytest.approx(7.0), pytest.approx(0.0))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(0.5, 1.0, size=(6, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    ref = (
        sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
        - 2 * sum(k(x[i], y[j]) for i in range(6) for j in range(6)) / 36
    )
    assert kid_from_features(x, y, subsets=2)[0] == pytest.approx(ref, rel=1e-10)
    big_x, big_y = rng.normal(size=(100, 4)), rng.normal(1.0, 1.0, size=(100, 4))
    m, s = kid_from_features(big_x, big_y, subsets=20, subset_size=30)
    assert m > 0 and s > 0  # subsets smaller than the sets: a spread over subsets
    assert abs(kid_from_features(big_x, big_x, subsets=20, subset_size=30)[0]) < 0.05 * m


# ---------------------------------------------------------------- FID / KID on images (random Inception)


@pytest.fixture(scope="module")
def texture_features() -> dict[str, np.ndarray]:
    """64-d random-Inception features of two sets from one distribution and one from another
    (40 images each: 299-px Inception input costs ~40 ms an image on 2 cores)."""
    sets = {"a1": _textures(40, 1, True), "a2": _textures(40, 2, True), "b": _textures(40, 3, False)}
    out = {}
    for k, v in sets.items():
        out[k], kind = metrics.inception_features(v, dims=64, features="random", device=CPU)
        assert kind == "random"
    return out


@pytest.mark.filterwarnings("ignore:FID from 40", "ignore::scipy.linalg.LinAlgWarning")
def test_random_features_separate_distributions(texture_features):
    """The documented fallback must rank sets: default-init Inception would give FID ~0 for all."""
    f = texture_features
    assert f["a1"].shape == (40, 64) and f["a1"].std(0).mean() > 1e-4
    same, diff = fid_from_features(f["a1"], f["a2"]), fid_from_features(f["a1"], f["b"])
    assert same < 0.05 * diff
    assert fid_from_features(f["a1"], f["a1"]) == pytest.approx(0.0, abs=1e-6 * diff)
    k_same, k_diff = kid_from_features(f["a1"], f["a2"])[0], kid_from_features(f["a1"], f["b"])[0]
    assert abs(k_same) < 0.05 * k_diff


def test_fid_kid_api_and_labels():
    real, fake = _textures(8, 1, True), _textures(8, 3, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 8 samples of 64-d: rank-deficient, expected here
        r = metrics.fid(real, fake, dims=64, features="random", device=CPU)
        rgb = metrics.fid(real.expand(-1, 3, -1, -1), list(fake.split(3)), dims=64, features="random", device=CPU)
    assert isinstance(r, MetricResult)
    assert (r.name, r.features, r.dims, r.n_real, r.n_fake) == ("FID", "random", 64, 8, 8)
    assert r.value == pytest.approx(rgb.value, rel=1e-6)  # grey repeated to 3 channels; batches as a list
    assert "random Inception features" in r.label and "not comparable" in r.label and not r.comparable
    assert r.label in str(r) and "n_real=8" in str(r)
    k = metrics.kid(real, fake, dims=64, features="random", device=CPU, subsets=5, subset_size=4)
    assert k.name == "KID" and k.std is not None and k.std > 0 and "±" in str(k)
    row = json.loads(json.dumps(k.as_dict()))
    assert row["features"] == "random" and row["label"] == k.label and row["comparable"] is False


def test_labels_of_pretrained_results():
    full = MetricResult(12.5, "FID", "pretrained", 2048, 100, 100)
    assert full.label == "FID (Inception pool3, 2048-d)" and full.comparable and float(full) == 12.5
    small = MetricResult(0.3, "FID", "pretrained", 64, 30, 30)
    assert "64-d" in small.label and "not comparable" in small.label and not small.comparable


def test_image_inputs_are_checked():
    good = _textures(2, 0, True)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.fid(good * 2 - 1, good, dims=64, features="random", device=CPU)
    with pytest.raises(ValueError, match="C in"):
        metrics.fid(good.expand(-1, 2, -1, -1), good, dims=64, features="random", device=CPU)
    with pytest.raises(ValueError, match="features must be one of"):
        metrics.fid(good, good, dims=64, features="imagenet", device=CPU)


def test_fid_offline_pretrained_raises_and_auto_says_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("MEDSYNTH_OFFLINE", "1")
    x = _textures(3, 0, True)
    with pytest.raises(weights.WeightsUnavailable, match="pt_inception-2015-12-05-6726825d.pth"):
        metrics.fid(x, x, dims=64, device=CPU)
    with pytest.warns(UserWarning, match="RANDOM"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "FID from 3")
        r = metrics.fid(x, x, dims=64, features="auto", device=CPU)
    assert r.features == "random" and "random" in r.label


@pytest.mark.skipif(
    not weights.cache_path("inception").is_file(),
    reason=f"pytorch-fid Inception weights not in {weights.cache_path('inception')}",
)
def test_pretrained_fid_identical_sets_is_zero():
    x = _textures(8, 0, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = metrics.fid(x, x, dims=64, device=CPU)
    assert r.features == "pretrained" and abs(r.value) < 1e-4 and "maxpool1" in r.label


# ---------------------------------------------------------------- SSIM / PSNR / MS-SSIM


def _noisy_pair(shape: tuple[int, ...], sigma: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    return a, (a + sigma * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)


def test_ssim_identity_and_agreement_with_skimage():
    a, b = _noisy_pair((3, 3, 40, 52), 0.1)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    ours = ssim(a, b, reduction="none")
    ref = [
        sk_ssim(
            a[i].numpy(),
            b[i].numpy(),
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for i in range(3)
    ]
    assert ours.shape == (3,) and np.allclose(ours.numpy(), ref, atol=1e-4)
    g, h = a[0, 0] * 255, b[0, 0] * 255  # (H,W) input, data_range 255, float32 path
    ref2 = sk_ssim(g.numpy(), h.numpy(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert ssim(g.float(), h.float(), data_range=255) == pytest.approx(ref2, abs=1e-4)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[..., :10, :10], b[..., :10, :10])
    with pytest.raises(ValueError, match=r"\(H,W\) or \(N,C,H,W\)"):
        ssim(a[0], b[0])


def test_psnr_hand_case_and_skimage():
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    for offset in (0.1, 0.05):
        assert psnr(x + offset, x) == pytest.approx(20 * math.log10(1 / offset), abs=1e-3)
    assert psnr(x, x) == math.inf
    a, b = _noisy_pair((2, 1, 20, 20), 0.2)
    ref = [sk_psnr(a[i, 0].numpy(), b[i, 0].numpy(), data_range=1.0) for i in range(2)]
    assert np.allclose(psnr(a, b, reduction="none").numpy(), ref, atol=1e-9)


def test_ms_ssim_identity_monotone_and_scales():
    x = torch.rand(1, 1, 180, 180, generator=torch.Generator().manual_seed(0))  # 5 scales
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    g = torch.Generator().manual_seed(1)
    vals = [ms_ssim(x, (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)) for s in (0.02, 0.1, 0.2, 0.4)]
    assert all(v1 > v2 for v1, v2 in pairwise(vals)) and vals[-1] > 0
    a, b = _noisy_pair((2, 3, 48, 48), 0.1)
    assert ms_ssim(a, b, weights=(1.0,)) == pytest.approx(ssim(a, b), abs=1e-12)  # one scale == SSIM
    assert [metrics.ms_ssim_scales((s, s)) for s in (176, 175, 64, 22, 21, 11)] == [5, 4, 3, 2, 1, 1]
    assert 0 < ms_ssim(a, b) < 1  # 48 px: 3 scales, weights renormalised
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ms_ssim_scales((10, 40))


# ---------------------------------------------------------------- Dice


def test_dice_hand_cases():
    assert dice(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == pytest.approx(0.5)  # 2*1/(2+2)
    assert dice(torch.tensor([True, True, True]), torch.tensor([True, True, False])) == pytest.approx(0.8)
    assert dice(np.zeros(4), np.zeros(4)) == 1.0 and dice(np.ones(4), np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="not a binary mask"):
        dice(np.array([0.2, 0.9]), np.array([0, 1]))
    lab_p = np.array([[0, 1, 2], [4, 4, 0]])
    lab_t = np.array([[0, 1, 1], [4, 2, 0]])
    out = dice(lab_p, lab_t, labels=[1, 2, 4, (1, 2, 4)])
    # class 1: pred {1}, true {1,2} -> 2/3; class 2: pred {2}, true {4} -> 0; 4: pred {3,4}, true {3} -> 2/3;
    # whole tumour (1,2,4): pred {1,2,3,4}, true {1,2,3,4} -> 1
    assert out == {1: pytest.approx(2 / 3), 2: 0.0, 4: pytest.approx(2 / 3), (1, 2, 4): 1.0}
