"""Fundus2Video (chapter 05): windows, autoregressive rollout, attention loss, training, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medsynth.models.fundus2video import (
    ABLATIONS,
    PAPER_TABLE1,
    Fundus2VideoGenerator,
    Fundus2VideoTask,
    Techniques,
    VideoDataset,
    attention_loss,
    iter_rollout,
    p_generated,
    rollout,
    window_indices,
)
from medsynth.training import StepContext, TrainConfig, Trainer

TINY = dict(ngf=8, n_down=2, n_blocks=1, ndf=8, num_d=3, n_layers_d=2, num_patches=32, nce_nc=16)


def _batch(n: int = 2, t: int = 6, size: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(n, t, 1, size, size, generator=g) * 2 - 1
    return {
        "src": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
        "frames": frames,
        "km": (torch.rand(n, 1, size, size, generator=g) > 0.8).float(),
        "lesion": (torch.rand(n, 1, size, size, generator=g) > 0.9).float(),
    }


def _ctx(task) -> StepContext:
    return StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False)


def test_windows_and_teacher_forcing_schedule() -> None:
    assert window_indices(0, 12) == [0, 1, 2] and window_indices(10, 12) == [10, 11, 11]
    assert window_indices(11, 12) == [11, 11, 11]
    assert p_generated(0) == 0.5 and p_generated(100) == pytest.approx(2 / 3) and p_generated(1000) == 1.0


def test_generator_shapes_and_encoder_taps() -> None:
    G = Fundus2VideoGenerator(ngf=8, n_down=2, n_blocks=1)
    cf, prev = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    out, feat = G(cf, prev)
    assert out.shape == (2, 3, 32, 32) and feat.shape == (2, 8, 32, 32) and out.abs().max() <= 1
    taps = G.encode(out)
    assert [f.shape[1] for f in taps] == G.nce_channels == [6, 8, 16, 32, 32]
    assert [f.shape[-1] for f in taps] == [32, 32, 16, 8, 8]


class _Counter(nn.Module):
    """Window n predicts value (n + c) / 100 in channel c: frame k should average to k / 100."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.in_shapes = 0, set()

    def forward(self, cf, prev):
        self.in_shapes.add(tuple(torch.cat([cf, prev], 1).shape))
        n = self.calls
        self.calls += 1
        out = torch.stack([torch.full_like(cf[:, 0], (n + c) / 100) for c in range(3)], 1)
        return out, out


@pytest.mark.parametrize("t", [6, 12])
def test_rollout_is_frame_by_frame_with_a_flat_buffer(t: int) -> None:
    G, stats = _Counter(), {}
    frames = list(iter_rollout(G, torch.zeros(2, 3, 8, 8), t, stats=stats))
    assert len(frames) == t and G.calls == t and G.in_shapes == {(2, 6, 8, 8)}
    assert all(f.shape == (2, 1, 8, 8) for f in frames)
    assert stats["max_buffered"] == 3  # the same for 6 and 12 frames: memory flat in the length
    # every prediction of frame k is k / 100, so the average is too -- also for the last frame, because the
    # clamped channels (value > (t-1)/100) are skipped as in the official code
    for k in range(t):
        assert torch.allclose(frames[k], torch.full_like(frames[k], k / 100))
    assert stats["counts"] == [1, 2] + [3] * (t - 2)  # no frame gets more than 3 predictions
    plain = list(iter_rollout(_Counter(), torch.zeros(1, 3, 8, 8), t, average=False))
    assert all(torch.allclose(f, torch.full_like(f, k / 100)) for k, f in enumerate(plain))


class _WindowId(_Counter):
    """Window n predicts n / 100 in every channel: frame k averages the ids of the windows counted."""

    def forward(self, cf, prev):
        n = self.calls
        self.calls += 1
        out = torch.full((cf.shape[0], 3, *cf.shape[-2:]), n / 100)
        return out, out


def test_triple_frame_averaging_uses_windows_k_minus_2_to_k() -> None:
    t = 7
    frames = [100 * float(f.mean()) for f in iter_rollout(_WindowId(), torch.zeros(1, 3, 4, 4), t)]
    # frame 0: window 0; frame 1: windows 0, 1; frame k >= 2: windows k-2, k-1, k -- the last frame too
    # (counting the clamped repeats, as before, would give (4 + 2*5 + 3*6) / 6 = 5.33 for frame 6)
    assert frames == pytest.approx([0.0, 0.5] + [k - 1.0 for k in range(2, t)])


def test_rollout_of_a_real_generator() -> None:
    G = Fundus2VideoGenerator(ngf=8, n_down=2, n_blocks=1).train()
    v = rollout(G, torch.randn(2, 3, 32, 32), 5)
    assert v.shape == (2, 5, 1, 32, 32) and G.training


def test_attention_loss_values() -> None:
    feat = torch.rand(2, 4, 8, 8)
    assert float(attention_loss(feat, torch.zeros(2, 1, 8, 8))) == 0.0
    assert float(attention_loss(torch.ones(2, 4, 8, 8), torch.ones(2, 1, 8, 8))) == pytest.approx(0.0)
    m = torch.zeros(1, 1, 8, 8)
    m[..., :4, :] = 1
    dead = torch.zeros(1, 4, 8, 8)
    dead[..., 4:, :] = 1  # activation only outside the mask: the whole mask falls short by 1
    assert float(attention_loss(dead, m)) == pytest.approx(1.0)
    half = torch.ones(1, 4, 8, 8)
    half[..., :2, :] = 0.5  # half of the mask at half the peak
    assert float(attention_loss(half, m)) == pytest.approx(0.25)
    feat = torch.rand(1, 4, 8, 8, requires_grad=True)
    attention_loss(feat, m).backward()
    assert feat.grad.abs().sum() > 0


def test_attention_loss_scale_does_not_shrink_with_the_mask_area() -> None:
    """Normalised over the mask's pixels: a 1.5 % mask (threshold 45's typical area) weighs as much as a
    50 % one; averaged over all pixels it would be capped at the area (0.015)."""
    feat = torch.zeros(1, 4, 64, 64)
    feat[..., :, :8] = 1.0  # the activation peaks only in a strip the masks do not touch
    small, large = torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64)
    small[..., 30:38, 30:38] = 1  # 64 px = 1.6 %
    large[..., :, 32:] = 1  # 50 %
    assert float(small.mean()) < 0.02
    assert float(attention_loss(feat, small)) == pytest.approx(1.0)
    assert float(attention_loss(feat, large)) == pytest.approx(1.0)
    # the mask at a lower resolution than the feature map is resized (nearest), not broadcast wrongly
    assert float(attention_loss(feat, small[..., ::2, ::2])) == pytest.approx(1.0)


def test_ablation_table_matches_the_paper_rows() -> None:
    assert set(ABLATIONS) == set(PAPER_TABLE1)
    assert PAPER_TABLE1["all_knowledge_mask"] == dict(FVD=1503.21, SSIM=0.3814, PSNR=11.81, LPIPS=0.2001)
    assert ABLATIONS["all_lesion_mask"].mask == "lesion" and ABLATIONS["baseline"] == Techniques(
        False, False, False, False
    )
    with pytest.raises(ValueError):
        Techniques(mask="other")


def test_train_step_updates_everything_including_the_projection_head() -> None:
    task = Fundus2VideoTask(**TINY, windows_per_step=2, seed=0)
    assert len(task.nets["D"]) == 3  # three scales (Sec. 2.3.3), not the official two
    head_params = {id(p) for p in task.nets["F"].parameters()}
    assert head_params <= {id(p) for g in task.opts["G"].param_groups for p in g["params"]}
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in task.nets.items()}
    torch.manual_seed(0)
    losses = task.train_step(_batch(), _ctx(task))
    assert {"D", "G_gan", "G_fm", "G_att", "G_up", "G_sp", "G_kd", "L1"} <= set(losses)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    for k, ps in before.items():
        assert any(not torch.equal(b, p) for b, p in zip(ps, task.nets[k].parameters(), strict=True)), (
            f"{k} did not move"
        )


def test_baseline_leaves_the_head_alone_and_masks_switch() -> None:
    task = Fundus2VideoTask(**TINY, techniques=ABLATIONS["baseline"], windows_per_step=1)
    before = [p.detach().clone() for p in task.nets["F"].parameters()]
    losses = task.train_step(_batch(), _ctx(task))
    assert float(losses["G_up"]) == 0 and float(losses["G_kd"]) == 0
    assert all(torch.equal(b, p) for b, p in zip(before, task.nets["F"].parameters(), strict=True))
    b = _batch()
    assert torch.equal(Fundus2VideoTask(**TINY, techniques=Techniques(mask="lesion")).mask_of(b), b["lesion"])
    assert float(Fundus2VideoTask(**TINY, techniques=Techniques(mask="none")).mask_of(b).min()) == 1.0


def test_a_few_steps_lower_the_reconstruction_error() -> None:
    torch.manual_seed(0)
    task = Fundus2VideoTask(**TINY, techniques=ABLATIONS["baseline"], windows_per_step=2, lr=2e-3, seed=1)
    ctx = _ctx(task)
    b = _batch(n=1, t=4)
    b["frames"] = b["frames"].mean(1, keepdim=True).expand(-1, 4, -1, -1, -1) * 0.2  # a smooth, learnable target
    l1 = []
    for s in range(25):
        ctx.step = s
        l1.append(float(task.train_step(b, ctx)["L1"]))
    assert sum(l1[-5:]) / 5 < 0.7 * sum(l1[:5]) / 5, l1


class _Seqs(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        b = _batch(n=1, t=4, seed=i)
        return {k: v[0] for k, v in b.items()}


def test_resume_via_trainer_is_exact(tmp_path) -> None:
    def run(out, steps, ckpt_every):
        task = Fundus2VideoTask(**TINY, windows_per_step=2, seed=0)
        cfg = TrainConfig(
            steps=steps,
            out_dir=out,
            batch_size=2,
            log_every=1,
            ckpt_every=ckpt_every,
            device="cpu",
            progress=False,
            seed=3,
        )
        Trainer(task, _Seqs(), cfg).fit()
        return task

    full = run(tmp_path / "a", 4, 2)
    run(tmp_path / "b", 2, 2)
    resumed = run(tmp_path / "b", 4, 2)
    for k in full.nets:
        for p, q in zip(full.nets[k].parameters(), resumed.nets[k].parameters(), strict=True):
            assert torch.equal(p, q), k


def test_video_dataset_adds_both_masks(tmp_path) -> None:
    from medsynth.data import write_phantoms
    from medsynth.knowledge import knowledge_mask

    root = write_phantoms(
        tmp_path / "seq", "retina_seq", {"train": 2}, size=(32, 32), seed=0, severity=0.8, misalign=0.3
    )
    ds = VideoDataset(root, "train", flip=False)
    item = ds[0]
    assert item["frames"].shape == (12, 1, 32, 32) and item["src"].shape == (3, 32, 32)
    assert item["km"].shape == item["lesion"].shape == (1, 32, 32)
    assert torch.equal(item["km"].bool(), knowledge_mask(item["frames"][0], item["frames"][-1], 45, (-1.0, 1.0)))
    assert "leakage" not in item


def test_paper_augmentation_crops_all_alike_and_recomputes_the_mask(tmp_path, monkeypatch) -> None:
    import torch.nn.functional as F

    from medsynth.data import fundus2video as data05
    from medsynth.data import write_phantoms
    from medsynth.knowledge import knowledge_mask

    root = write_phantoms(
        tmp_path / "seq", "retina_seq", {"train": 1}, size=(32, 32), seed=0, severity=0.8, misalign=0.3
    )
    plain = VideoDataset(root, "train", augment="none")[0]
    monkeypatch.setattr(data05, "_crop_box", lambda h, w: (4, 28, 2, 18))  # rows 4:28, cols 2:18
    monkeypatch.setattr(data05, "_colour", lambda src: src)  # colour: tested below
    item = VideoDataset(root, "train", augment="paper")[0]

    def crop(x):
        return F.interpolate(
            x[..., 4:28, 2:18].reshape(-1, 1, 24, 16), size=(32, 32), mode="bilinear", align_corners=False
        ).reshape(x.shape)

    assert torch.allclose(item["frames"], crop(plain["frames"]), atol=1e-6)
    assert torch.allclose(item["src"], crop(plain["src"]), atol=1e-6)  # photo and frames cut alike
    assert torch.equal(item["km"].bool(), knowledge_mask(item["frames"][0], item["frames"][-1], 45, (-1.0, 1.0)))
    assert not torch.equal(item["km"], plain["km"])  # the mask of the cropped frames
    with pytest.raises(ValueError, match="augment"):
        VideoDataset(root, "train", augment="vflip")


def test_crop_box_follows_the_official_bounds_and_colour_jitter_stays_in_range() -> None:
    from medsynth.data.fundus2video import _colour, _crop_box

    torch.manual_seed(0)
    for _ in range(200):
        y0, y1, x0, x1 = _crop_box(60, 90)
        assert 0 <= y0 <= 40 and min(y0 + 20, 60) <= y1 <= 60 and y1 > y0
        assert 0 <= x0 <= 60 and min(x0 + 30, 90) <= x1 <= 90 and x1 > x0
    src = torch.rand(3, 8, 8) * 2 - 1
    out = _colour(src)
    assert out.shape == src.shape and float(out.min()) >= -1 and float(out.max()) <= 1 and not torch.equal(out, src)
