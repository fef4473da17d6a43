"""Chapter 05's diagnostics of the mean-video gap and the run helpers they feed (data flow checked by hand values)."""
from __future__ import annotations

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
    assert out.shape == frames.shape and G.training          # eval only meanwhile
    assert torch.equal(out[:, 0, 0], cf[:, 0])                # window 0 sees the CF photo
    for k in range(1, 5):                                     # window k sees GT window k-1, whose channel 0 is frame k-1
        assert torch.equal(out[:, k], frames[:, k - 1])


def test_g_loss_shares_by_hand() -> None:
    hist = [{"step": 1, "G_a": 9.0, "G_b": 1.0, "D": 5.0}, {"step": 2, "G_a": 1.0, "G_b": 3.0, "D": 5.0}]
    assert run.g_loss_shares(hist, last=0.5) == pytest.approx({"G_a": 0.25, "G_b": 0.75})
    assert run.g_loss_shares(hist, last=1.0) == pytest.approx({"G_a": 10 / 14, "G_b": 4 / 14})


def test_scores_json_keeps_both_conventions_apart() -> None:
    row = {"SSIM": 0.5, "PSNR": 20.0, "LPIPS": 0.1, "FVD": 3.0,
           "official": {"SSIM": 0.4, "PSNR": 20.0 - 6.0206, "LPIPS": 0.2, "FVD": 9.0}}
    out = run.scores_json({"m": row})["m"]
    assert out["PSNR"] == 20.0 and out["PSNR_official"] == pytest.approx(13.9794) and out["FVD_official"] == 9.0
    assert set(run.scores_json({"m": {k: row[k] for k in run.METRICS}})["m"]) == set(run.METRICS)


def test_full_preset_is_the_papers_recipe() -> None:
    f, q = run.PRESETS["full"], run.PRESETS["quick"]
    assert f.model_cfg["lr"] == 2e-3 and f.augment == "paper"      # Sec. 3.0.2 as printed
    assert q.augment == "flip" and len(run.FULL_DIFFERENCES) >= 4
