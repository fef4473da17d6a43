"""The training loop's GPU options (AMP, channels_last, torch.compile, exact resume) on CUDA.

Skipped without a CUDA GPU (CI has none); run on a GPU machine with ``pytest tests/test_training_cuda.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_training import NoisyPairs, ToyPix2Pix, _weights

from medsynth import seed_everything
from medsynth.training import TrainConfig, Trainer, unwrap

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _fit(out: Path, steps: int, **kw) -> tuple[ToyPix2Pix, Trainer, list[dict]]:
    seed_everything(0)
    task = ToyPix2Pix()
    trainer = Trainer(
        task,
        NoisyPairs(),
        TrainConfig(steps=steps, out_dir=out, batch_size=3, log_every=2, ckpt_every=3, progress=False, **kw),
    )
    return task, trainer, trainer.fit()


def test_auto_options_on_cuda(tmp_path: Path) -> None:
    task, trainer, hist = _fit(tmp_path, 6)
    assert trainer.device.type == "cuda" and trainer.channels_last
    assert trainer.amp_dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    assert unwrap(task.nets["G"])[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert unwrap(task.nets["G"])[0].weight.dtype == torch.float32  # AMP keeps fp32 master weights
    assert all(torch.isfinite(torch.tensor(v)) for v in hist[-1].values())


def test_fp16_uses_the_grad_scaler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every backward under fp16 goes through the scaler, multiplied by its scale; bf16 needs none."""
    factors: list[float] = []
    scale = torch.amp.GradScaler.scale

    def spy(self, outputs):
        out = scale(self, outputs)
        if self.is_enabled():
            factors.append(float(out.detach().float() / outputs.detach().float()))
        return out

    monkeypatch.setattr(torch.amp.GradScaler, "scale", spy)
    _, trainer, hist = _fit(tmp_path, 6, amp="fp16")
    assert trainer.scaler.is_enabled() and len(factors) >= 6
    assert min(factors) > 1  # each loss was multiplied by the current scale (2**16 at the start)
    if torch.cuda.is_bf16_supported():
        factors.clear()
        _, t_bf16, _ = _fit(tmp_path / "bf16", 2, amp="bf16")
        assert not t_bf16.scaler.is_enabled() and factors == []
    assert all(torch.isfinite(torch.tensor(v)) for v in hist[-1].values())


def test_compile_option(tmp_path: Path) -> None:
    task, _, hist = _fit(tmp_path, 4, compile=True)
    assert hasattr(task.nets["G"], "_orig_mod")
    assert all(torch.isfinite(torch.tensor(v)) for v in hist[-1].values())


def test_resume_exact_on_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    full, _, _ = _fit(tmp_path / "full", 9, amp="off")
    _fit(tmp_path / "split", 5, amp="off")
    resumed, _, _ = _fit(tmp_path / "split", 9, amp="off")
    for k, v in _weights(full).items():
        assert torch.equal(v, _weights(resumed)[k]), k
