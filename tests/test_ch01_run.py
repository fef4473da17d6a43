"""Chapter 01's run recipe: the paper's data recipe in full mode, the baselines' official schedule, budgets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from medsynth.data.layout import write_image, write_meta
from medsynth.models import fundus2angio_run as run
from medsynth.training import TrainConfig


def _layout(root: Path, n: int = 2, hw: tuple[int, int] = (20, 24)) -> Path:
    """Pairs whose pixels are unique (value = position), so a crop's position and orientation can be read back."""
    rng = np.random.default_rng(0)
    for i in range(n):
        f = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        write_image(root / "train" / "fundus" / f"p{i}.png", f)
        write_image(root / "train" / "angio" / f"p{i}.png", f[..., 0].copy())
    write_meta(root, {"kind": "test", "splits": {"train": [f"p{i}" for i in range(n)]}})
    return root


def _where(crop: torch.Tensor, full: torch.Tensor) -> list[tuple[int, int]]:
    c = crop.shape[-1]
    return [
        (y, x)
        for y in range(full.shape[-2] - c + 1)
        for x in range(full.shape[-1] - c + 1)
        if torch.equal(full[..., y : y + c, x : x + c], crop)
    ]


def test_full_preset_reads_fixed_unflipped_crops(tmp_path: Path) -> None:
    """Sec. 4.2 / random_crop.py: 50 crops per pair drawn once, no flips; quick draws fresh flipped crops."""
    from medsynth.data import load_pair

    root = _layout(tmp_path)
    p = dataclasses.replace(run.PRESETS["full"], image_size=8)
    ds = run.train_set(p, root, crop_seed=3)
    assert len(ds) == 2 * 50
    full = load_pair(root, "train", "p1")["src"]
    torch.manual_seed(0)
    a = [ds[i]["src"] for i in range(50, 60)]
    torch.manual_seed(1)
    b = [ds[i]["src"] for i in range(50, 60)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # the same crop whenever item i is read
    places = [_where(x, full) for x in a]
    assert all(len(w) == 1 for w in places)  # found unflipped in its own pair
    assert len({w[0] for w in places}) > 5  # at different positions
    again = run.train_set(p, root, crop_seed=3)[55]["src"]
    assert torch.equal(again, a[5])  # and the same set in a new run
    assert not torch.equal(run.train_set(p, root, crop_seed=4)[55]["src"], a[5])
    q = dataclasses.replace(run.PRESETS["quick"], image_size=8)
    ds_q = run.train_set(q, root)
    torch.manual_seed(0)
    reads = [ds_q[50]["src"] for _ in range(12)]
    assert len({tuple(w) for x in reads for w in _where(x, full)}) > 1  # fresh position per read
    assert any(not _where(x, full) for x in reads)  # some reads flipped


def test_baselines_official_schedule_and_budgets_in_samples_seen() -> None:
    """Full: pix2pix/pix2pixHD at batch 1 for 100 + 100 epochs of the 850 crops, lr decaying linearly over the
    second half (junyanz n_epochs/n_epochs_decay, NVIDIA niter/niter_decay); Fundus2Angio 21,200 iterations of
    3 batches of 4 (train.py). Quick: one schedule for all, constant lr."""
    full = run.PRESETS["full"]
    plan = run.schedules(full, 17 * 50)
    for name in ("pix2pix", "pix2pixHD"):
        s = plan[name]
        assert (s.steps, s.batch_size, s.lr_decay_from) == (170_000, 1, 0.5)
        cfg = TrainConfig(steps=s.steps, out_dir=".", lr_decay_start=int(s.steps * s.lr_decay_from))
        assert cfg.lr_factor(85_000) == 1.0 and cfg.lr_factor(127_500) == pytest.approx(0.5, abs=1e-4)
        assert cfg.lr_factor(170_000) == pytest.approx(1 / 85_000)
    assert plan["Fundus2Angio"] is full and full.lr_decay_from is None
    b = run.budget(full, 850)
    assert b["Fundus2Angio"]["samples_seen"] == 21_200 * 4 * 3 == 254_400
    assert b["pix2pix"]["samples_seen"] == b["pix2pixHD"]["samples_seen"] == 170_000
    assert b["pix2pix"]["lr_decay_from_iteration"] == 85_000
    quick = run.budget(run.PRESETS["quick"], 850)
    assert {k: v["samples_seen"] for k, v in quick.items()} == {"pix2pix": 400, "pix2pixHD": 400, "Fundus2Angio": 1200}
    # an explicit steps override applies to all three (a short smoke run of "full" stays short)
    smoke = run.schedules(run.choose("full", steps=10), 850)
    assert {s.steps for s in smoke.values()} == {10}
