"""The benchmark scripts (benchmarks/): what they count and how they pair runs. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import ab  # noqa: E402
import bench  # noqa: E402
import bench_loader  # noqa: E402
import cases  # noqa: E402
import reference  # noqa: E402
import timing  # noqa: E402


def test_parse_config() -> None:
    assert bench.parse_config("fp32") == {"amp": "off", "channels_last": False, "compile": False}
    assert bench.parse_config("bf16+cl+compile") == {"amp": "bf16", "channels_last": True, "compile": True}
    assert bench.parse_config("fp16+cl") == {"amp": "fp16", "channels_last": True, "compile": False}
    for bad in ("fp8", "bf16+nhwc", "cl"):
        with pytest.raises(ValueError, match="--configs"):
            bench.parse_config(bad)


def test_interleaved_rotates_the_order_and_drops_warmup() -> None:
    calls: list[str] = []
    out = timing.interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b"), "c": lambda: calls.append("c")},
        reps=2,
        warmup=1,
    )
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {k: len(v) for k, v in out.items()} == {"a": 2, "b": 2, "c": 2}


def test_summary_and_flops() -> None:
    s = timing.summary([1.0, 2.0, 4.0])
    assert (s["median_s"], s["min_s"], s["spread_pct"], s["n"]) == (2.0, 1.0, 150.0, 3)
    lin = nn.Linear(10, 20)
    x = torch.randn(4, 10)
    assert timing.count_flops(lambda: lin(x)) == 2 * 4 * 10 * 20
    conv = nn.Conv2d(3, 5, 3, padding=1)
    y = torch.randn(2, 3, 8, 8, requires_grad=True)
    # forward + backward (grad of input and of weight): 3x the forward's conv FLOPs
    assert timing.count_flops(lambda: conv(y).sum().backward()) == 3 * 2 * 2 * 5 * 3 * 9 * 8 * 8


def test_peak_rss_sees_an_allocation() -> None:
    with timing.peak_rss(every_s=0.001) as mem:
        x = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
        x.add_(1)
        del x
    assert mem["peak"] - mem["start"] > 40 * 2**20


def test_biases_before_instancenorm_counts_only_cancelled_biases() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.InstanceNorm2d(8),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 4, 3), nn.BatchNorm2d(4)),  # BN: not counted
        nn.Conv2d(4, 6, 3, bias=False),
        nn.InstanceNorm2d(6),  # no bias
        nn.ConvTranspose2d(6, 5, 3),
        nn.InstanceNorm2d(5),
        nn.Conv2d(5, 1, 1),
    )
    assert reference.biases_before_instancenorm(net) == 8 + 5


def test_bias_before_instancenorm_has_no_effect() -> None:
    """The reason the pix2pixHD parameter difference does not matter, checked."""
    conv, norm = nn.Conv2d(3, 8, 3), nn.InstanceNorm2d(8)
    x = torch.randn(2, 3, 16, 16)
    a = norm(conv(x))
    with torch.no_grad():
        conv.bias.add_(torch.randn(8) * 5)
    assert torch.allclose(a, norm(conv(x)), atol=1e-5)


def test_reference_feature_matching_equals_ours() -> None:
    from medsynth.losses import feature_matching_loss

    g = torch.Generator().manual_seed(0)
    shapes = [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 3, 3), (1, 1, 2, 2)]  # n_layers 3: 5 outputs
    fake = [[torch.randn(s, generator=g) for s in shapes] for _ in range(2)]
    real = [[torch.randn(s, generator=g) for s in shapes] for _ in range(2)]
    assert torch.allclose(reference._fm(fake, real), 10 * feature_matching_loss(fake, real))


def test_load_networks_names_the_bad_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no models/networks.py"):
        reference.load_networks(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "networks.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match="neither UnetSkipConnectionBlock"):
        reference.load_networks(tmp_path)
    (tmp_path / "models" / "networks.py").write_text("class LocalEnhancer:\n    pass\nMARK = 7\n")
    kind, mod = reference.load_networks(tmp_path)
    assert kind == "nvidia" and mod.MARK == 7


def test_case_names_match_what_build_returns() -> None:
    for ch in cases.CHAPTERS:
        built = cases.build(ch, "quick", 1)
        assert [c.model for c in built] == cases.CASE_NAMES[ch]
        for c in built:
            assert c.setting == "quick" and c.batch == 1
    f2a = cases.build("01", "quick", 2)[2]
    assert f2a.data["src"].shape[0] == 6  # Fundus2Angio draws 3 batches per step
    f2v = cases.ch05("quick", 1, windows=1)[0]
    assert f2v.task.windows_per_step == 1 and "1 window" in f2v.note


def test_run_case_gpu_path_on_cpu() -> None:
    """bf16 autocast + channels_last (the GPU configuration) runs on the CPU and counts the same FLOPs as fp32."""
    fp32 = bench.run_case("02", "quick", 1, "fp32", "cpu", 1, reps=1, warmup=0, f2v_windows=None)
    bf16 = bench.run_case("02", "quick", 1, "bf16+cl", "cpu", 1, reps=1, warmup=0, f2v_windows=None)
    assert fp32["model"] == bf16["model"] == "pix2pix" and bf16["config"] == "bf16+cl"
    assert fp32["flops_step"] == bf16["flops_step"] > 0
    assert fp32["params"] == sum(p.numel() for p in cases.build("02", "quick", 1)[1].task.nets["G"].parameters()) + sum(
        p.numel() for p in cases.build("02", "quick", 1)[1].task.nets["D"].parameters()
    )
    assert fp32["gflops_per_s"] == pytest.approx(fp32["flops_step"] / fp32["train"]["median_s"] / 1e9)


def test_merge_rows_replaces_same_case_only() -> None:
    old = [
        {"chapter": "01", "model": "a", "setting": "quick", "config": "fp32", "v": 1},
        {"chapter": "01", "model": "a", "setting": "full", "config": "fp32", "v": 2},
    ]
    new = [{"chapter": "01", "model": "a", "setting": "full", "config": "fp32", "v": 3}]
    rows = bench.merge_rows(old, new)
    assert [(r["setting"], r["v"]) for r in rows] == [("quick", 1), ("full", 3)]


def test_keep_grads_context_reuses_gradient_tensors() -> None:
    from medsynth.training import GANTask, StepContext

    class T(GANTask):
        def __init__(self) -> None:
            self.nets = {"G": nn.Linear(4, 4)}
            self.opts = {"G": torch.optim.Adam(self.nets["G"].parameters(), 1e-3)}

        def train_step(self, batch, ctx):  # noqa: ANN001
            ctx.update(self.nets["G"](batch).pow(2).mean(), "G")
            return {}

    for keep, same in ((False, True), (True, False)):
        t = T()
        ctx = ab._Ctx(
            StepContext(t, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False), keep
        )
        x = torch.randn(3, 4)
        t.train_step(x, ctx)
        g0 = t.nets["G"].weight.grad
        t.train_step(x, ctx)
        assert (t.nets["G"].weight.grad is g0) == same


def test_loader_headroom_arithmetic() -> None:
    rows = [
        {"chapter": "05", "setting": "quick", "kind": "read", "wall_s_per_item": 0.05, "n_set": None},
        {"chapter": "02", "setting": "quick", "kind": "generate", "wall_s_per_item": 0.1, "n_set": 120},
    ]
    for r in rows:
        r.update(what="x", cpu_s_per_item=0.01)
    steps = [
        {
            "chapter": "05",
            "setting": "quick",
            "model": "Fundus2Video",
            "config": "fp32",
            "batch": 1,
            "train": {"median_s": 0.5},
        },
        {
            "chapter": "02",
            "setting": "quick",
            "model": "MedGAN",
            "config": "fp32",
            "batch": 1,
            "train": {"median_s": 0.2},
        },
    ]
    bench_loader.against_steps(rows, steps)
    assert rows[0]["items_per_s_needed"] == pytest.approx(2.0) and rows[0]["headroom"] == pytest.approx(10.0)
    from medsynth.models.medgan_run import PRESETS

    p = PRESETS["quick"]
    assert rows[1]["share_of_training"] == pytest.approx(12.0 / (p.steps * 0.2 * p.batch_size))
    assert "10.0x" in bench_loader.table(rows)
