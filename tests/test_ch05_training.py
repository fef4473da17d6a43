"""Fundus2Video (chapter 05) training step: one D for real and fake features, masked inputs where Eqs. 3-6 say."""

from __future__ import annotations

import copy

import pytest
import torch

from medsynth.losses import GANLoss, feature_matching_loss
from medsynth.models.fundus2video import ABLATIONS, Fundus2VideoTask
from medsynth.training import StepContext

TINY = dict(ngf=8, n_down=2, n_blocks=1, ndf=8, num_d=2, n_layers_d=2, num_patches=16, nce_nc=16)


def _batch(seed: int = 0, size: int = 32) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "src": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
        "frames": torch.rand(1, 1, 1, size, size, generator=g) * 2 - 1,  # T = 1: one window, prev = CF
        "km": (torch.rand(1, 1, size, size, generator=g) > 0.7).float(),
        "lesion": torch.zeros(1, 1, size, size),
    }


def _ctx(task) -> StepContext:
    return StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False)


@pytest.mark.parametrize("row", ["baseline", "all_knowledge_mask"])
def test_feature_matching_compares_real_and_fake_features_of_the_same_discriminator(row: str) -> None:
    task = Fundus2VideoTask(**TINY, techniques=ABLATIONS[row], windows_per_step=1, lr=1e-2, seed=0)
    b = _batch()
    G0, D0 = copy.deepcopy(task.nets["G"]), copy.deepcopy(task.nets["D"])
    losses = task.train_step(b, _ctx(task))
    cf, target = b["src"], b["frames"][:, [0, 0, 0], 0]
    with torch.no_grad():
        fake, _ = G0(cf, cf)
        real_in, fake_in = torch.cat([cf, target], 1), torch.cat([cf, fake], 1)
        d_real, d_fake = D0(real_in, features=True), D0(fake_in, features=True)
        expect = task.lambda_feat * float(feature_matching_loss(d_fake, d_real))
        # the old order (D stepped between the real and the fake features) gives another value
        wrong = task.lambda_feat * float(feature_matching_loss(task.nets["D"](fake_in, features=True), d_real))
        gan = float(GANLoss("lsgan")(D0(fake_in), True))
    assert float(losses["G_fm"]) == pytest.approx(expect, rel=1e-5)
    assert float(losses["G_gan"]) == pytest.approx(gan, rel=1e-5)
    assert abs(wrong - expect) > 1e-3 * expect  # the test can tell the two orders apart
    for name in ("G", "D"):  # both networks stepped
        assert any(
            not torch.equal(p, q)
            for p, q in zip(task.nets[name].parameters(), (G0 if name == "G" else D0).parameters(), strict=True)
        )


def _spy(monkeypatch, obj, name: str, seen: list) -> None:
    orig = getattr(obj, name)

    def wrapper(x, *a, **k):
        seen.append(x.detach().clone())
        return orig(x, *a, **k)

    monkeypatch.setattr(obj, name, wrapper)


@pytest.mark.parametrize("row", ["all_knowledge_mask", "baseline", "kd"])
def test_knowledge_aware_d_and_patchnce_receive_masked_inputs(monkeypatch, row: str) -> None:
    task = Fundus2VideoTask(**TINY, techniques=ABLATIONS[row], windows_per_step=1, seed=0)
    b = _batch(1)
    m = b["km"]
    assert 0 < float(m.mean()) < 1
    with torch.no_grad():
        fake, _ = copy.deepcopy(task.nets["G"])(b["src"], b["src"])
    cf, target = b["src"], b["frames"][:, [0, 0, 0], 0]
    real_in, fake_in = torch.cat([cf, target], 1), torch.cat([cf, fake], 1)
    d_in, enc_in = [], []
    _spy(monkeypatch, task.nets["D"], "forward", d_in)
    _spy(monkeypatch, task.nets["G"], "encode", enc_in)
    task.train_step(b, _ctx(task))

    def count(seen, want):
        return sum(bool(torch.allclose(x, want, atol=1e-6)) for x in seen)

    kd, nce = task.tech.kd, task.tech.up or task.tech.sp
    assert count(d_in, real_in) == 1 and count(d_in, fake_in) == 2  # Eq. 5: D step, G step
    assert count(d_in, real_in * m) == int(kd) and count(d_in, fake_in * m) == 2 * int(kd)  # Eq. 6
    assert len(d_in) == 3 + 3 * int(kd)
    # Eqs. 3-4: the anchor is G(x) * M, the positives x * M (UP) and y * M (SP)
    assert count(enc_in, fake * m) == int(nce)
    assert count(enc_in, cf * m) == int(task.tech.up) and count(enc_in, target * m) == int(task.tech.sp)
    assert len(enc_in) == int(nce) + int(task.tech.up) + int(task.tech.sp)
