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
from medsynth.training import StepContext, TrainConfig, Trainer



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
    return Pix2PixHDTask(ngf_local=4, n_down_global=2, n_blocks_global=2, n_blocks_local=1, ndf=8,
                         vgg_features="random", seed=seed), 4


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
    task, bs = small("fundus2angio")
    data = FixedPairs(bs)
    before = {k: [p.detach().clone() for p in v.parameters()] for k, v in task.nets.items()}
    steps = {k: [] for k in task.opts}
    for k, opt in task.opts.items():  # count optimiser steps per optimiser
        opt.register_step_post_hook(lambda o, a, kw, k=k: steps[k].append(1))
    logs = task.train_step({"src": data.src, "dst": data.dst}, _ctx(task))
    assert {k: len(v) for k, v in steps.items()} == {"D_fine": 4, "D_coarse": 4, "G_coarse": 1, "G_fine": 1, "GAN": 1}
    for k, net in task.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters())), k
    assert {"D_fine_real", "D_fine_fake", "D_coarse_real", "D_coarse_fake", "G_coarse_mse", "G_fine_mse",
            "GAN_adv", "L1"} <= set(logs)
    assert all(p.requires_grad for net in task.nets.values() for p in net.parameters())
    with pytest.raises(ValueError, match="divisible by 3"):
        task.train_step({"src": data.src[:4], "dst": data.dst[:4]}, _ctx(task))


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
        for (n, a), b in zip(full.nets[k].state_dict().items(), resumed.nets[k].state_dict().values()):
            assert torch.equal(a, b), f"{k}.{n}"
