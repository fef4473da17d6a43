"""Chapter 01 training steps: losses fall on a fixed batch, the Trainer resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from medsynth.models import translate
from medsynth.models.fundus2angio import Fundus2AngioTask
from medsynth.models.pix2pix import Pix2PixTask
from medsynth.models.pix2pixhd import Pix2PixHDTask
from medsynth.training import StepContext, TrainConfig, Trainer, set_requires_grad

SIZE = 32


class FixedPairs(Dataset):
    """Smooth random 'fundus' images and a fixed grey mapping as the 'angiogram'."""

    def __init__(self, n: int = 12, size: int = SIZE) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.nn.functional.avg_pool2d(torch.rand(n, 3, size + 4, size + 4, generator=g), 5, 1)
        self.src = ((x - x.mean()) / x.std() * 0.5).clamp(-1, 1)
        self.dst = (self.src[:, 1:2] - 0.5 * self.src[:, :1]).clamp(-1, 1)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"src": self.src[i], "dst": self.dst[i]}


def small(name: str, seed: int = 0):
    if name == "fundus2angio":
        return Fundus2AngioTask(ncf=8, nff=4, ndf=8, width=8, n_blocks_coarse=2, n_blocks_fine=1, seed=seed), 6
    if name == "pix2pix":
        return Pix2PixTask(num_downs=5, ngf=8, ndf=8, lr=1e-3, seed=seed), 4  # a tiny U-Net needs a larger step
    return Pix2PixHDTask(
        ngf_local=4, n_down_global=2, n_blocks_global=2, n_blocks_local=1, ndf=8, vgg_features="random", seed=seed
    ), 4


def _ctx(task) -> StepContext:
    return StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False)


@pytest.mark.parametrize("name", ["fundus2angio", "pix2pix", "pix2pixhd"])
def test_steps_reduce_reconstruction_error_on_a_fixed_batch(name: str) -> None:
    torch.manual_seed(0)
    task, bs = small(name)
    data = FixedPairs(bs)
    batch = {"src": data.src, "dst": data.dst}
    before = (translate(task, data.src) - data.dst).abs().mean()
    ctx = _ctx(task)
    logs = [task.train_step(batch, ctx) for _ in range(25)]
    after = (translate(task, data.src) - data.dst).abs().mean()
    assert all(torch.isfinite(torch.as_tensor(v)) for row in logs for v in row.values())
    first, last = float(logs[0]["L1"]), min(float(r["L1"]) for r in logs[-5:])
    assert last < 0.8 * first, (first, last)
    assert after < before


def test_fundus2angio_step_updates_every_network_in_the_paper_order() -> None:
    """train.py's order: 2 x (D_fine real, fake; D_coarse real, fake), then G_coarse, G_fine, the joint GAN;
    D iteration j sees sub-batch j, the three generator updates the third sub-batch."""
    task, bs = small("fundus2angio")
    data = FixedPairs(bs)
    before = {k: [p.detach().clone() for p in v.parameters()] for k, v in task.nets.items()}
    order: list[str] = []
    for k, opt in task.opts.items():
        opt.register_step_post_hook(lambda o, a, kw, k=k: order.append(k))
    seen: list[tuple[str, torch.Tensor]] = []  # (network, its fundus input) in call order
    for k in ("D_fine", "G_coarse"):
        task.nets[k].register_forward_pre_hook(lambda m, args, k=k: seen.append((k, args[0][:, :3].detach().clone())))
    logs = task.train_step({"src": data.src, "dst": data.dst}, _ctx(task))
    assert order == ["D_fine", "D_fine", "D_coarse", "D_coarse"] * 2 + ["G_coarse", "G_fine", "GAN"]
    k = bs // 3
    part = [data.src[i * k : (i + 1) * k] for i in range(3)]
    d_fine = [x for name, x in seen if name == "D_fine"]
    assert len(d_fine) == 2 + 2 + 1  # real + fake per D iteration, one in the joint update
    for x, j in zip(d_fine, (0, 0, 1, 1, 2), strict=True):
        assert torch.equal(x, part[j])
    g_coarse = [x for name, x in seen if name == "G_coarse"]
    half = task.half
    assert len(g_coarse) == 4  # one fake per D iteration, one MSE/feature pass, one in the joint update
    for x, j in zip(g_coarse, (0, 1, 2, 2), strict=True):
        assert torch.allclose(x, half(part[j]))
    for name, net in task.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)), name
    assert {
        "D_fine_real",
        "D_fine_fake",
        "D_coarse_real",
        "D_coarse_fake",
        "G_coarse_mse",
        "G_fine_mse",
        "GAN_adv",
        "L1",
    } <= set(logs)
    assert all(p.requires_grad for net in task.nets.values() for p in net.parameters())
    with pytest.raises(ValueError, match="divisible by 3"):
        task.train_step({"src": data.src[:4], "dst": data.dst[:4]}, _ctx(task))


class _TwoCoarsePasses(Fundus2AngioTask):
    """The generator phase as it was before issue 17 (G_coarse run twice on the same input, once under
    no_grad for the feature), verbatim; with d_iters=0 the production step runs only this phase too."""

    def train_step(self, batch, ctx):
        import torch.nn.functional as F

        Gc, Gf = self.nets["G_coarse"], self.nets["G_fine"]
        set_requires_grad([self.nets["D_fine"], self.nets["D_coarse"]], False)
        src, dst = batch["src"], batch["dst"]
        src_c, dst_c = self.coarse_inputs(batch)
        with torch.no_grad():
            feat = Gc(src_c)[1]
        mse_c = F.mse_loss(Gc(src_c)[0].float(), dst_c.float())
        ctx.update(mse_c, "G_coarse")
        mse_f = F.mse_loss(Gf(src, feat).float(), dst.float())
        ctx.update(mse_f, "G_fine")
        fake_c = Gc(src_c)[0]
        fake_f = Gf(src, feat)
        adv = self.gan(self.nets["D_fine"](torch.cat([src, fake_f], 1)), True) + self.gan(
            self.nets["D_coarse"](torch.cat([src_c, fake_c], 1)), True
        )
        total = adv + self.lam * (F.mse_loss(fake_f, dst) + F.mse_loss(fake_c, dst_c))
        ctx.update(total, "GAN")
        set_requires_grad([self.nets["D_fine"], self.nets["D_coarse"]], True)
        return {"G_coarse_mse": mse_c.detach(), "G_fine_mse": mse_f.detach(), "GAN_total": total.detach()}


def test_one_coarse_forward_equals_the_former_two() -> None:
    """Issue 17: one G_coarse forward for its MSE update and G_fine's feature. Same losses and the same
    weights after all three generator updates (BatchNorm in training mode normalises with batch
    statistics, so both passes give equal outputs); only the running statistics differ: now updated once
    per forward, like Keras' train_on_batch (its predict() updates none)."""
    data = FixedPairs(4)
    batch = {"src": data.src, "dst": data.dst}
    kw = dict(ncf=8, nff=4, ndf=8, width=8, n_blocks_coarse=2, n_blocks_fine=1, seed=5, d_iters=0, batches_per_step=1)
    old, new = _TwoCoarsePasses(**kw), Fundus2AngioTask(**kw)
    calls = []
    new.nets["G_coarse"].register_forward_hook(lambda m, a, o: calls.append(torch.is_grad_enabled()))
    lo, ln = old.train_step(batch, _ctx(old)), new.train_step(batch, _ctx(new))
    assert calls == [True, True]  # the MSE update (+ feature), the joint update; no extra no_grad pass
    for k in ("G_coarse_mse", "G_fine_mse", "GAN_total"):
        assert float(lo[k]) == pytest.approx(float(ln[k]), rel=1e-6, abs=1e-7), k
    for name in ("G_coarse", "G_fine"):
        for (n, a), b in zip(old.nets[name].named_parameters(), new.nets[name].parameters(), strict=True):
            assert torch.allclose(a, b, rtol=0, atol=1e-6), f"{name}.{n}"
    means = [
        [m.running_mean for m in t.nets["G_coarse"].modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
        for t in (old, new)
    ]
    assert not torch.allclose(*means)  # three momentum updates (old) vs two


def test_pix2pixhd_feature_matching_uses_one_set_of_discriminator_weights() -> None:
    """NVIDIA: real and fake features from the same D (G step before D step). The logged losses must equal
    the ones computed by hand with copies of G and D taken before the step."""
    import copy

    from medsynth.losses import feature_matching_loss

    task, bs = small("pix2pixhd")
    task.vgg = None  # keep the check to the GAN + FM terms
    data = FixedPairs(bs)
    G0, D0 = copy.deepcopy(task.nets["G"]), copy.deepcopy(task.nets["D"])
    order: list[str] = []
    for k, opt in task.opts.items():
        opt.register_step_post_hook(lambda o, a, kw, k=k: order.append(k))
    logs = task.train_step({"src": data.src, "dst": data.dst}, _ctx(task))
    with torch.no_grad():
        fake = G0(data.src)
        f_fake = D0(torch.cat([data.src, fake], 1), features=True)
        f_real = D0(torch.cat([data.src, data.dst], 1), features=True)
        fm = task.lambda_feat * feature_matching_loss(f_fake, f_real)
        gan = task.gan(f_fake, True)
        d = 0.5 * (task.gan(f_fake, False) + task.gan(f_real, True))
    assert float(logs["G_fm"]) == pytest.approx(float(fm), rel=1e-5) and float(fm) > 0
    assert float(logs["G_gan"]) == pytest.approx(float(gan), rel=1e-5)
    assert float(logs["D"]) == pytest.approx(float(d), rel=1e-5)
    assert all(not torch.equal(a, b) for a, b in zip(D0.parameters(), task.nets["D"].parameters(), strict=True))
    assert order == ["G", "D"]


def _fit(out: Path, steps: int, name: str) -> Fundus2AngioTask:
    task, bs = small(name, seed=1)
    cfg = TrainConfig(steps=steps, out_dir=out, batch_size=bs, log_every=1, ckpt_every=2, progress=False, seed=3)
    Trainer(task, FixedPairs(12), cfg).fit()
    return task


@pytest.mark.parametrize("name", ["fundus2angio", "pix2pixhd"])
def test_resume_through_the_trainer_is_exact(tmp_path: Path, name: str) -> None:
    full = _fit(tmp_path / "full", 4, name)
    _fit(tmp_path / "part", 2, name)
    resumed = _fit(tmp_path / "part", 4, name)  # continues from the step-2 checkpoint
    for k in full.nets:
        for (n, a), b in zip(full.nets[k].state_dict().items(), resumed.nets[k].state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{k}.{n}"
