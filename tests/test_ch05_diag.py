"""Chapter 05's diagnostics of the mean-video gap and the run helpers they feed (data flow checked by hand values)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from medsynth.models import fundus2video_diag as diag
from medsynth.models import fundus2video_run as run


class _Echo(nn.Module):
    """Returns its previous-window input: teacher forcing must then reproduce the ground truth shifted by one."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, cf, prev):
        return prev + 0 * self.w, prev


def test_teacher_forcing_feeds_the_true_previous_window() -> None:
    g = torch.Generator().manual_seed(0)
    cf, frames = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 5, 1, 4, 4, generator=g)
    G = _Echo().train()
    out = diag.teacher_forced_videos(G, cf, frames)
    assert out.shape == frames.shape and G.training  # eval only meanwhile
    assert torch.equal(out[:, 0, 0], cf[:, 0])  # window 0 sees the CF photo
    for k in range(1, 5):  # window k sees GT window k-1, whose channel 0 is frame k-1
        assert torch.equal(out[:, k], frames[:, k - 1])


def test_g_loss_shares_by_hand() -> None:
    hist = [{"step": 1, "G_a": 9.0, "G_b": 1.0, "D": 5.0}, {"step": 2, "G_a": 1.0, "G_b": 3.0, "D": 5.0}]
    assert run.g_loss_shares(hist, last=0.5) == pytest.approx({"G_a": 0.25, "G_b": 0.75})
    assert run.g_loss_shares(hist, last=1.0) == pytest.approx({"G_a": 10 / 14, "G_b": 4 / 14})


def test_scores_json_keeps_both_conventions_apart() -> None:
    row = {
        "SSIM": 0.5,
        "PSNR": 20.0,
        "LPIPS": 0.1,
        "FVD": 3.0,
        "official": {"SSIM": 0.4, "PSNR": 20.0 - 6.0206, "LPIPS": 0.2, "FVD": 9.0},
    }
    out = run.scores_json({"m": row})["m"]
    assert out["PSNR"] == 20.0 and out["PSNR_official"] == pytest.approx(13.9794) and out["FVD_official"] == 9.0
    assert set(run.scores_json({"m": {k: row[k] for k in run.METRICS}})["m"]) == set(run.METRICS)


def test_full_preset_is_the_papers_recipe() -> None:
    f, q = run.PRESETS["full"], run.PRESETS["quick"]
    assert f.model_cfg["lr"] == 2e-3 and f.augment == "paper"  # Sec. 3.0.2 as printed
    assert q.augment == "flip" and len(run.FULL_DIFFERENCES) >= 4


def test_fa_draw_redraws_only_what_the_photo_cannot_show() -> None:
    from medsynth.data import make_retina

    kw = dict(size=(40, 40), severity=0.7, n_frames=6, misalign=0.3)
    a, a2, b, c = (
        make_retina(5, **kw),
        make_retina(5, **kw, fa_draw=None),
        make_retina(5, **kw, fa_draw=0),
        make_retina(5, **kw, fa_draw=1),
    )
    assert np.array_equal(a.frames, a2.frames)  # default: the eye as always
    for s in (b, c):  # same photo, anatomy, lesions, eye side
        assert np.array_equal(s.fundus, a.fundus) and s.meta["eye"] == a.meta["eye"]
        assert all(np.array_equal(s.masks[k], a.masks[k]) for k in ("vessels", "lesions", "microaneurysms"))
    assert not np.allclose(b.frames, a.frames) and not np.allclose(b.frames, c.frames)  # another session
    assert np.array_equal(b.frames, make_retina(5, **kw, fa_draw=0).frames)  # seeded


def test_photo_ceiling_scores_the_re_rendered_sessions(tmp_path) -> None:
    from medsynth.data import SequenceDataset, make_retina, write_phantoms
    from medsynth.metrics import framewise, psnr

    root = write_phantoms(
        tmp_path / "seq", "retina_seq", {"test": 3}, 32, seed=3, severity=0.7, misalign=0.3, n_frames=6
    )
    out = diag.photo_ceiling(root, "test", n_draws=3)
    assert set(out["rows"]) == set(diag.CEILING_ROWS[:3]) and 0 < out["photo_share"] < 1
    # by hand: the stored eyes are make_retina(seed from meta.json); session 0 is fa_draw=0 of the same seed
    meta = json.loads((root / "meta.json").read_text())
    seeds = [meta["items"][f"test/{i}"]["seed"] for i in meta["splits"]["test"]]
    real = (torch.stack([it["frames"] for it in SequenceDataset(root, "test", crop=None, flip=False)]) + 1) / 2
    stored_again = torch.from_numpy(
        np.stack([make_retina(s, (32, 32), severity=0.7, n_frames=6, misalign=0.3).frames for s in seeds])
    )[:, :, None]
    assert float((stored_again - real).abs().max()) <= 1 / 255 + 1e-6  # 8-bit PNGs of the same eyes
    draws = [
        torch.from_numpy(
            np.stack(
                [
                    np.round(make_retina(s, (32, 32), severity=0.7, n_frames=6, misalign=0.3, fa_draw=d).frames * 255)
                    / 255
                    for s in seeds
                ]
            )
        )
        for d in range(3)
    ]
    by_hand = float(framewise(real, draws[0][:, :, None].float(), psnr).mean())
    assert out["rows"][diag.CEILING_ROWS[1]]["PSNR"] == pytest.approx(by_hand, abs=1e-4)
    cond = torch.stack(draws).mean(0)[:, :, None].float()
    assert out["rows"][diag.CEILING_ROWS[0]]["PSNR"] == pytest.approx(
        float(framewise(real, cond, psnr).mean()), abs=1e-4
    )
    one = draws[0][:, :, None].float()
    g = [
        float((c * o).sum() / (o * o).sum()) for c, o in zip(cond, one, strict=True)
    ]  # session 0 at the draws' mean brightness
    assert any(abs(x - 1) > 1e-3 for x in g)
    scaled = torch.stack([o * x for o, x in zip(one, g, strict=True)]).clamp(0, 1)
    assert out["rows"][diag.CEILING_ROWS[2]]["PSNR"] == pytest.approx(
        float(framewise(real, scaled, psnr).mean()), abs=1e-4
    )
    # the gain oracle: the mean training video rescaled per eye by its least-squares gain, by hand
    train = torch.rand((4, *real.shape[1:]), generator=torch.Generator().manual_seed(0)) * 0.5
    out2 = diag.photo_ceiling(root, "test", n_draws=2, train01=train)
    m = train.mean(0)
    gains = [float((r * m).sum() / (m * m).sum()) for r in real]
    assert min(gains) > 0.3 and max(gains) < 3  # a real rescaling, not a no-op
    oracle = torch.stack([m * g for g in gains])
    assert out2["rows"][diag.CEILING_ROWS[3]]["PSNR"] == pytest.approx(
        float(framewise(real, oracle.clamp(0, 1), psnr).mean()), abs=1e-4
    )
    assert diag.photo_ceiling(tmp_path, "test") == {}  # not a phantom folder: nothing to re-render
