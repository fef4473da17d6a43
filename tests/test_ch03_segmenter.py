"""Chapter 03's vessel segmenter and FOV metrics: values by hand, data flow, the DRIVE protocols."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medsynth.metrics.vessel import fov_scores, roc_auc
from medsynth.models import vessel_segmenter as vs
from medsynth.models.vessel_data import HOLDOUT_IDS, VesselSet, drive_protocol, load_official, phantom_set

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "data_scripts"))
from convert_drive import convert_drive  # noqa: E402


# ---------------------------------------------------------------- metrics
def test_auc_equals_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 300).astype(float)  # many ties
    y = rng.random(300) < 0.3
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(s, y) == pytest.approx(pairwise, abs=1e-12)
    assert roc_auc(np.r_[0.1, 0.2, 0.8, 0.9], np.r_[0, 0, 1, 1]) == 1.0
    assert roc_auc(np.r_[0.9, 0.8, 0.2, 0.1], np.r_[0, 0, 1, 1]) == 0.0
    assert np.isnan(roc_auc(np.r_[0.1, 0.2], np.r_[1, 1]))


def test_fov_scores_by_hand_and_outside_fov_ignored():
    prob = np.array([[0.9, 0.8, 0.3, 0.1, 0.6, 0.7]])
    true = np.array([[1, 0, 1, 0, 0, 1]], bool)
    fov = np.array([[1, 1, 1, 1, 1, 0]], bool)  # last pixel outside the FOV
    r = fov_scores(prob, true, fov)
    # inside: pred = [1,1,0,0,1], true = [1,0,1,0,0] -> TP 1, FP 2, FN 1, TN 1
    assert r["accuracy"] == pytest.approx(2 / 5) and r["sensitivity"] == pytest.approx(1 / 2)
    assert r["specificity"] == pytest.approx(1 / 3) and r["dice"] == pytest.approx(2 / 5)
    assert r["auc"] == pytest.approx(roc_auc(prob[fov], true[fov])) and r["n_pixels"] == 5
    prob2 = prob.copy()
    prob2[0, 5] = 0.0  # change a pixel outside the FOV: nothing moves
    assert fov_scores(prob2, true, fov) == r
    assert fov_scores(prob, true, fov, threshold=0.75)["sensitivity"] == pytest.approx(1 / 2)  # 0.9 only
    assert fov_scores(prob, true, fov, threshold=0.75)["specificity"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="probabilities"):
        fov_scores(prob * 3, true, fov)


# ---------------------------------------------------------------- network
def test_unet_shapes_and_divisibility():
    net = vs.build(width=4, depth=3)
    assert net(torch.zeros(2, 3, 24, 32)).shape == (2, 1, 24, 32)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.zeros(1, 3, 20, 32))


def test_unet_last_decoder_sees_upsampled_then_first_encoder_feature():
    """Wiring: the last DualConv's input is [upsampled deep feature, full-size encoder feature], in that order."""
    net = vs.build(width=4, depth=2, seed=1).eval()
    seen = {}
    net.enc[0].register_forward_hook(lambda m, i, o: seen.__setitem__("enc0", o))
    net.up[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("up", o))
    net.dec[-1].register_forward_pre_hook(lambda m, i: seen.__setitem__("dec_in", i[0]))
    net(torch.randn(1, 3, 16, 16))
    assert seen["dec_in"].shape == (1, 8, 16, 16)
    assert torch.equal(seen["dec_in"][:, :4], seen["up"]) and torch.equal(seen["dec_in"][:, 4:], seen["enc0"])


def _toy(n: int, size: int, seed: int) -> VesselSet:
    """Photographs whose 'vessels' are the dark pixels of channel 1 (a learnable rule)."""
    g = torch.Generator().manual_seed(seed)
    ves = (torch.rand(n, 1, size, size, generator=g) < 0.15).float()
    img = torch.rand(n, 3, size, size, generator=g) * 0.4
    img[:, 1:2] = 0.8 - 1.2 * ves + 0.1 * torch.rand(n, 1, size, size, generator=g)
    return VesselSet(img.clamp(-1, 1), ves, torch.ones(n, 1, size, size, dtype=torch.bool), [str(i) for i in range(n)])


def test_training_learns_the_labels_not_the_image(tmp_path):
    train, test = _toy(6, 16, 0), _toy(3, 16, 1)
    net = vs.build(width=4, depth=2, seed=0)
    before = vs.evaluate_fov(net, test)["auc"]
    vs.train(net, train, 60, tmp_path / "seg", batch_size=2, progress=False, seed=0)
    after = vs.evaluate_fov(net, test)
    assert after["auc"] > 0.95 and after["auc"] > before
    # labels flipped -> the scores flip: the evaluation reads data.vessels, not something else
    flipped = VesselSet(test.images, 1 - test.vessels, test.fov, test.ids)
    assert vs.evaluate_fov(net, flipped)["auc"] == pytest.approx(1 - after["auc"], abs=1e-9)
    prob = vs.predict(net, test.images)
    assert vs.evaluate_fov(None, test, prob=prob) == after and prob.min() >= 0 and prob.max() <= 1


# ---------------------------------------------------------------- DRIVE protocols
def _fake_full_drive(root: Path, size=(40, 36)) -> Path:
    rng = np.random.default_rng(0)
    for folder, nums in (("training", range(21, 25)), ("test", range(1, 4))):
        d = root / "DRIVE" / folder
        for sub in ("images", "1st_manual", "mask"):
            (d / sub).mkdir(parents=True)
        for i in nums:
            num = f"{i:02d}"
            ves = np.zeros(size, bool)
            ves[rng.integers(0, size[0], 4), :] = True  # horizontal and vertical 'vessels'
            ves[:, rng.integers(0, size[1], 4)] = True
            img = np.full((*size, 3), 170, np.uint8)
            img[ves] = (90, 40, 30)
            Image.fromarray(img).save(d / "images" / f"{num}_{folder}.tif")
            Image.fromarray(ves.astype(np.uint8) * 255).save(d / "1st_manual" / f"{num}_manual1.gif")
            Image.fromarray(np.full(size, 255, np.uint8)).save(d / "mask" / f"{num}_{folder}_mask.gif")
    return root / "DRIVE"


def test_full_drive_from_data_root_uses_the_official_test_split(tmp_path):
    out = convert_drive(_fake_full_drive(tmp_path), tmp_path / "drive", size=(40, 36))
    train, test, protocol = drive_protocol(out, None, 32)
    assert train.ids == ["21", "22", "23", "24"] and test.ids == ["01", "02", "03"]
    assert "official split" in protocol
    net = vs.build(width=4, depth=2)
    vs.train(net, train, 40, tmp_path / "seg", batch_size=2, progress=False)
    assert vs.evaluate_fov(net, test)["auc"] > 0.9


def test_training_only_drive_from_data_root_holds_out_36_40(tmp_path):
    d = _fake_full_drive(tmp_path)
    import shutil

    shutil.rmtree(d / "test")
    for p in sorted(q for q in (d / "training").rglob("*_*") if q.is_file()):  # renumber 21-24 -> 35-38
        p.rename(p.with_name(f"{int(p.name[:2]) + 14}{p.name[2:]}"))
    out = convert_drive(d, tmp_path / "drive", size=(40, 36))
    train, test, protocol = drive_protocol(out, None, 32)
    assert train.ids == ["35"] and test.ids == ["36", "37", "38"]
    assert "held out" in protocol


@pytest.mark.realdata
def test_real_drive_holdout_and_converted_copy_agree(tmp_path, shared_data):
    if not (shared_data / "DRIVE" / "training" / "images").is_dir():
        pytest.skip("no DRIVE training split")
    train, test, protocol = drive_protocol(None, shared_data, 64)
    assert len(train) == 15 and test.ids == list(HOLDOUT_IDS) and "held out" in protocol
    frac = test.vessels[test.fov].mean().item()
    assert 0.08 < frac < 0.25  # DRIVE: ~12 % at full size; at 64 px quarter-cover labels widen vessels
    out = convert_drive(shared_data / "DRIVE", tmp_path / "drive")
    train2, test2, _ = drive_protocol(out, None, 64)
    assert train2.ids == train.ids and torch.equal(test2.vessels, test.vessels)
    assert (test2.images - test.images).abs().max() < 2 / 255 + 1e-6  # PNG round trip of the same pixels


def test_phantom_set_is_seeded_and_masked():
    a, b = phantom_set(2, 64, seed=3), phantom_set(2, 64, seed=3)
    assert torch.equal(a.images, b.images) and a.ids == ["phantom3", "phantom4"]
    assert (a.images[~a.fov.expand_as(a.images)] == -1).all() and (a.vessels[~a.fov] == 0).all()
    assert 0.01 < a.vessels[a.fov].mean().item() < 0.3
    with pytest.raises(FileNotFoundError):
        load_official(Path("/nonexistent"), 32)
