"""Chapter 01 evaluation protocol (Sec. 5): quadrant crops, labelled FID/KID, SSIM/PSNR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from medsynth.models.fundus2angio import PAPER_FID, evaluate_translations, quadrant_crops


def test_quadrant_crops_are_the_four_corners() -> None:
    img = torch.arange(2 * 10 * 12, dtype=torch.float32).view(2, 10, 12)
    crops = quadrant_crops(img, 8)
    assert crops.shape == (4, 2, 8, 8)
    assert torch.equal(crops[0], img[:, :8, :8]) and torch.equal(crops[3], img[:, 2:, 4:])
    assert torch.equal(crops[1], img[:, :8, 4:]) and torch.equal(crops[2], img[:, 2:, :8])
    with pytest.raises(ValueError, match="larger"):
        quadrant_crops(img, 11)


def test_evaluation_labels_random_features_and_scores_registered_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(8, 1, 32, 32, generator=g) * 2 - 1
    fakes = {"perfect": real.clone(), "noisy": (real + 0.5 * torch.randn(8, 1, 32, 32, generator=g)).clamp(-1, 1)}
    res = evaluate_translations(fakes, real, features="random", dims=64)
    fid = res["noisy"]["fid"]
    assert fid.features == "random" and not fid.comparable and "not comparable" in fid.label
    assert abs(res["perfect"]["fid"].value) < 1e-6 < res["noisy"]["fid"].value
    assert res["perfect"]["ssim"] == pytest.approx(1.0) and res["noisy"]["ssim"] < 0.9
    assert res["noisy"]["psnr"] < 20


PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "01_fundus2angio.txt"


@pytest.mark.skipif(not PAPER.is_file(), reason="../shared/papers/01_fundus2angio.txt absent (a fresh clone)")
def test_paper_fid_is_table_1_of_the_paper_text() -> None:
    """PAPER_FID against the rows of Table 1 as the paper text prints them (``PIX2PIX(Tensorflow)\t48.6``)."""
    found = re.findall(
        r"^(PIX2PIX|PIX2PIXHD|Fundus2Angio)\((Tensorflow|Pytorch)\)\t([\d.]+)$", PAPER.read_text(encoding="utf-8"), re.M
    )
    rows = {(m, f): float(v) for m, f, v in found}
    names = {"PIX2PIX": "pix2pix", "PIX2PIXHD": "pix2pixHD", "Fundus2Angio": "Fundus2Angio"}
    frameworks = {"Tensorflow": "TensorFlow", "Pytorch": "PyTorch"}
    assert len(rows) == 6
    assert {(names[m], frameworks[f]): v for (m, f), v in rows.items()} == {
        (m, f): v for m, d in PAPER_FID.items() for f, v in d.items()
    }


def test_claims_take_the_differences_in_the_claimed_direction() -> None:
    """Each Table 1 claim is positive exactly when the run agrees with the paper's ordering."""
    from medsynth import evidence
    from medsynth.models.fundus2angio_run import claims

    def record(fid: dict[str, float], ssim: dict[str, float]) -> dict:
        return {"seed": 0, "scores": {m: {"fid": fid[m], "ssim": ssim[m]} for m in fid}}

    mean, rand = evidence.BASELINES[0], evidence.BASELINES[1]
    good = record(
        {"pix2pix": 50.0, "pix2pixHD": 40.0, "Fundus2Angio": 30.0, mean: 90.0, rand: 60.0},
        {"pix2pix": 0.5, "pix2pixHD": 0.6, "Fundus2Angio": 0.7, mean: 0.4, rand: 0.2},
    )
    values = [c.stat(good) for c in claims()]
    assert values == pytest.approx([10.0, 10.0, 20.0, 0.3, 0.1, 30.0])
    assert "30.3 vs 42.8 (Table 1)" in claims()[0].paper and "42.8 vs 48.6" in claims()[1].paper
    bad = record(
        {"pix2pix": 30.0, "pix2pixHD": 40.0, "Fundus2Angio": 50.0, mean: 90.0, rand: 45.0},
        {"pix2pix": 0.3, "pix2pixHD": 0.6, "Fundus2Angio": 0.35, mean: 0.4, rand: 0.2},
    )
    assert all(c.stat(bad) < 0 for c in claims())
