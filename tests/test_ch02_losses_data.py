"""Chapter 02 (MedGAN): Gram/style/content losses by hand, UQI, the tasks' data flow, the claims' wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsynth import evidence as ev
from medsynth.data import make_brain
from medsynth.data.degrade import medgan_set
from medsynth.data.medgan_tasks import TASKS, PairTensorDataset, degrade, make_medgan_data
from medsynth.losses import VGGStyleContentLoss, gram_matrix
from medsynth.metrics import uqi
from medsynth.models import medgan_run as run


def test_gram_matrix_by_hand() -> None:
    x = torch.randn(2, 3, 4, 5)
    g = gram_matrix(x)
    assert g.shape == (2, 3, 3)
    for n in range(2):
        for m in range(3):
            for k in range(3):
                assert g[n, m, k] == pytest.approx(float((x[n, m] * x[n, k]).sum()) / (3 * 4 * 5), rel=1e-5)
    # position-free: shuffling pixels (the same way in every channel) leaves the Gram matrix unchanged
    perm = torch.randperm(20)
    assert torch.allclose(gram_matrix(x.reshape(2, 3, 20)[..., perm].reshape(2, 3, 4, 5)), g, atol=1e-6)


def test_style_and_content_losses_by_hand(monkeypatch) -> None:
    loss = VGGStyleContentLoss("random", layers=(1, 6), style_weights=(1.0, 0.5), content_weights=(2.0, 1.0))
    assert loss.features_kind == "random"
    fake, real = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    feats = {id(fake): [fake.repeat(1, 2, 1, 1), fake[:, :, ::2, ::2].repeat(1, 3, 1, 1) * 2]}
    feats[id(real)] = [real.repeat(1, 2, 1, 1), real[:, :, ::2, ::2].repeat(1, 3, 1, 1) * 2]
    monkeypatch.setattr(loss, "_feats", lambda x: feats[id(x)])
    style, content = loss(fake, real)
    exp_style = exp_content = 0.0
    for ws, wc, f, r in zip((1.0, 0.5), (2.0, 1.0), feats[id(fake)], feats[id(real)], strict=True):
        c = f.shape[1]
        for n in range(2):
            ff, rr = f[n].reshape(c, -1), r[n].reshape(c, -1)
            gf, gr = ff @ ff.T / ff.numel(), rr @ rr.T / rr.numel()
            exp_style += ws * float(((gf - gr) ** 2).sum()) / (4 * c * c) / 2
        exp_content += wc * float(((f - r) ** 2).mean())
    assert float(style) == pytest.approx(exp_style, rel=1e-5)
    assert float(content) == pytest.approx(exp_content, rel=1e-5)
    s0, c0 = loss(real, real)
    assert float(s0) == 0 and float(c0) == 0


def _uqi_loop(x: np.ndarray, y: np.ndarray, w: int) -> float:
    qs = []
    for i in range(x.shape[0] - w + 1):
        for j in range(x.shape[1] - w + 1):
            a, b = x[i : i + w, j : j + w].ravel(), y[i : i + w, j : j + w].ravel()
            ma, mb = a.mean(), b.mean()
            va, vb, cab = a.var(), b.var(), ((a - ma) * (b - mb)).mean()
            qs.append(4 * cab * ma * mb / ((va + vb) * (ma**2 + mb**2)))
    return float(np.mean(qs))


def test_uqi_matches_wang_bovik_by_hand() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((14, 12)), rng.random((14, 12))
    assert uqi(x, y) == pytest.approx(_uqi_loop(x, y, 8), rel=1e-9)
    assert uqi(x, y, window=4) == pytest.approx(_uqi_loop(x, y, 4), rel=1e-9)
    assert uqi(x, x) == pytest.approx(1.0)
    assert uqi(x, 0.5 * x + 0.2) < 0.99  # luminance/contrast distortions lower Q
    z = np.zeros((10, 10))
    assert uqi(z, z) == pytest.approx(1.0)  # flat and equal (the background) counts as perfect
    assert uqi(np.full((10, 10), 0.2), np.full((10, 10), 0.6)) == pytest.approx(2 * 0.2 * 0.6 / (0.04 + 0.36))
    batch = torch.from_numpy(np.stack([x, y]))[:, None]
    per = uqi(batch, batch.flip(0), reduction="none")
    assert per.shape == (2,) and torch.allclose(per, per.flip(0))
    with pytest.raises(ValueError, match="at least 8x8"):
        uqi(np.zeros((6, 6)), np.zeros((6, 6)))


def test_task_pairs_put_degraded_image_in_src_and_clean_in_dst() -> None:
    data = make_medgan_data(2, 32, seed=3, split="train")
    b = make_brain(data.seeds[1], size=(32, 32))
    m = medgan_set(b, data.seeds[1])
    expect = {
        "motion": (m["t1_motion"], b.images["t1"]),
        "denoise": (m["pet_low"], m["pet"]),
        "pet2ct": (m["pet"], m["ct"]),
    }
    for task, (s, d) in expect.items():
        src, dst = data.pair(task)
        assert src.shape == dst.shape == (2, 1, 32, 32)
        assert torch.allclose(src[1, 0], torch.from_numpy(s) * 2 - 1)
        assert torch.allclose(dst[1, 0], torch.from_numpy(d) * 2 - 1)
    assert TASKS["motion"] == ("t1_motion", "t1")
    test = make_medgan_data(2, 32, seed=3, split="test")
    assert not set(test.seeds) & set(data.seeds)
    item = PairTensorDataset(*data.pair("denoise"))[0]
    assert torch.equal(item["src"], data.pair("denoise")[0][0]) and torch.equal(item["dst"], data.pair("denoise")[1][0])
    with pytest.raises(ValueError, match="task must be one of"):
        data.pair("ct2pet")


def test_degrade_severity_knob() -> None:
    b = make_brain(0, size=(48, 48))
    clean_src, t1 = degrade(b, "motion", severity=0.0)
    assert np.array_equal(clean_src, t1)
    err = [np.abs(degrade(b, "motion", s)[0] - t1).mean() for s in (0.5, 2.0)]
    assert err[0] < err[1]
    noisy = [np.abs(degrade(b, "denoise", s)[0] - degrade(b, "denoise", s)[1]).mean() for s in (0.5, 4.0)]
    assert noisy[0] < noisy[1]  # fewer counts -> noisier PET


def _record(ssim_by_row: dict[str, float]) -> dict:
    return {"scores": {t: {row: {"ssim": v} for row, v in ssim_by_row.items()} for t in TASKS}}


def test_claims_follow_tables_and_copy_baseline_only_where_modalities_match() -> None:
    rows = run.MODELS + ev.BASELINES
    paper_like = _record(dict(zip(rows, (0.5, 0.6, 0.7, 0.8, 0.55, 0.3, 0.2, 0.4), strict=True)))
    claims = run.claims()
    assert {r["verdict"] for r in ev.evaluate_claims(claims, [paper_like] * 3)} == {ev.SUPPORTED}
    reversed_ = _record(dict(zip(rows, (0.8, 0.7, 0.6, 0.5, 0.9, 0.95, 0.2, 0.99), strict=True)))
    assert {r["verdict"] for r in ev.evaluate_claims(claims, [reversed_] * 3)} == {ev.CONTRADICTED}
    copy_claims = [c.text for c in claims if ev.BASELINES[2] in c.text]
    assert sorted(copy_claims) == sorted(f"[{t}] MedGAN beats copy the input in SSIM" for t in run.COPY_TASKS)
    every = next(c for c in claims if c.text.startswith("[motion] every model"))
    worst = _record(dict(zip(rows, (0.1, 0.6, 0.7, 0.8, 0.55, 0.3, 0.2, 0.4), strict=True)))
    assert every.stat(worst) == pytest.approx(0.1 - 0.3)


def test_evaluate_scores_identity_perfectly() -> None:
    real = torch.rand(3, 1, 32, 32) * 2 - 1
    s = run.evaluate({"same": real.clone(), "flat": torch.zeros_like(real)}, real)
    assert s["same"]["ssim"] == pytest.approx(1.0) and s["same"]["mse"] == 0 and s["same"]["uqi"] == pytest.approx(1.0)
    assert float(s["same"]["lpips"]) == pytest.approx(0.0, abs=1e-6) and s["same"]["lpips"].features == "random"
    assert s["flat"]["mse"] > 0.05 and s["flat"]["ssim"] < 0.5


def test_presets() -> None:
    q, s, f = (run.PRESETS[k] for k in ("quick", "standard", "full"))
    assert q.image_size // 2**q.num_downs == 1 and f.image_size // 2**f.num_downs == 1
    assert (f.image_size, f.num_downs, f.n_blocks, f.ngf) == (256, 8, 6, 64)  # the paper's CasNet
    assert q.n_blocks == 6 and s.n_seeds == 3 and s.steps > q.steps


def test_explorer_view_shows_input_output_target() -> None:
    from medsynth.data.medgan_tasks import degrade
    from medsynth.models.medgan import MedGANTask
    from medsynth.widgets import medgan_view

    task = MedGANTask(n_blocks=1, num_downs=5, ngf=2, ndf=2, style=False)
    img, cap = medgan_view({"motion": task}, "motion", severity=2.0, seed=1, size=32, phantom_seed=5)
    src, dst = degrade(make_brain(6, size=(32, 32)), "motion", 2.0, 1)
    assert img.shape == (32, 96, 3)
    assert np.allclose(img[:, :32, 0], src, atol=1e-6) and np.allclose(img[:, 64:, 0], dst, atol=1e-6)
    assert "severity 2.00" in cap and "input as is" in cap
