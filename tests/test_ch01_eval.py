"""Chapter 01 evaluation protocol (Sec. 5): quadrant crops, labelled FID/KID, SSIM/PSNR."""
from __future__ import annotations

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


def test_paper_table_1() -> None:
    assert PAPER_FID["Fundus2Angio"] == {"TensorFlow": 30.3, "PyTorch": 29.7}
    assert PAPER_FID["pix2pix"]["PyTorch"] == 49.9 and PAPER_FID["pix2pixHD"]["PyTorch"] == 43.2
