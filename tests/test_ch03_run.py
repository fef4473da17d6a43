"""Chapter 03's run module: presets, claims wired to the right numbers, run_seed end to end at a tiny size."""

from __future__ import annotations

import dataclasses
import math

import pytest

from medsynth import evidence
from medsynth.models import retigan_run as run
from medsynth.models.retigan_explorer import edit_tree, explorer_view


def test_presets_quick_standard_full():
    assert set(run.PRESETS) == {"quick", "standard", "full"}
    q, s, f = (run.PRESETS[k] for k in ("quick", "standard", "full"))
    assert q.n_seeds == 1 and s.n_seeds == 3 and s.steps > q.steps and s.seg_steps > q.seg_steps
    assert (f.ngf, f.n_blocks, f.ndf, f.seg_width) == (64, 9, 64, 64)  # the walk-through's widths
    assert f.image_size % 16 == 0 and q.image_size % 16 == 0  # U-Net depth 4 and G's 3 downsamplings


def _record(seg_gap: float, dice: dict[str, float], mixed_gap: float, syn_auc: float) -> dict:
    seg = {"U-Net (real training images)": {"auc": 0.8}, run.SEG_MEAN: {"auc": 0.8 - seg_gap}}
    gan = {k: {"structure_dice": v, "ssim": v} for k, v in dice.items()}
    down = {
        "real only": {"dice": 0.5},
        "real + synthetic": {"dice": 0.5 + mixed_gap},
        "synthetic only": {"auc": syn_auc},
        run.SEG_MEAN: {"auc": 0.6},
    }
    return {"segmenter": seg, "gan": gan, "downstream": down}


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_claims_read_the_right_rows_both_orderings(sign):
    d = {
        "RetiGAN": 0.5,
        run.MEAN: 0.5 - 0.1 * sign,
        run.RANDOM: 0.5 - 0.2 * sign,
        "no smoothed negatives": 0.5 - 0.03 * sign,
        "no VGG loss": 0.5 - 0.04 * sign,
        "single-scale D": 0.5 - 0.05 * sign,
    }
    recs = [_record(0.1 * sign, d, 0.02 * sign, 0.6 + 0.1 * sign) for _ in range(3)]
    rows = evidence.evaluate_claims(run.claims(), recs)
    want = evidence.SUPPORTED if sign > 0 else evidence.CONTRADICTED
    assert [r["verdict"] for r in rows] == [want] * len(rows)
    expected = [0.1, 0.1, 0.2, 0.1, 0.03, 0.04, 0.05, 0.02, 0.1]
    assert [r["per_seed"][0] for r in rows] == pytest.approx([sign * e for e in expected])
    assert len(evidence.evaluate_claims(run.claims(ablation=False, downstream=False), recs)) == 4


def test_edit_tree_prunes_and_thickens():
    import numpy as np

    v = np.zeros((20, 20), bool)
    v[10, 2:18] = True
    v[2:10, 9] = True  # a T: three branches meeting at (10, 9)
    assert edit_tree(v).sum() == v.sum()
    assert edit_tree(v, prune=1.0).sum() < 0.5 * v.sum()
    thick = edit_tree(v, thicken=1)
    assert thick.sum() > 2 * v.sum() and (thick | v).sum() == thick.sum()


def test_run_seed_end_to_end_tiny(tmp_path):
    p = dataclasses.replace(
        run.PRESETS["quick"],
        steps=2,
        batch_size=2,
        image_size=64,
        ngf=4,
        n_blocks=1,
        ndf=4,
        seg_width=2,
        seg_steps=2,
        seg_batch=2,
        n_synthetic=2,
        n_phantom=(3, 2),
    )
    data = run.chapter_data(p, None, None, seed=0)  # no DRIVE given: phantoms
    assert data.source == "phantom" and len(data.train) == 3 and len(data.test) == 2
    r = run.run_seed(p, 0, data, tmp_path, "cpu", vgg_features="off")
    assert set(r["gan"]) == set(run.VARIANTS) | {run.MEAN, run.RANDOM, "real photograph"}
    assert set(r["downstream"]) == set(run.DOWNSTREAM_ROWS) | {run.SEG_MEAN}
    assert r["gan"]["real photograph"]["ssim"] == pytest.approx(1.0)
    # the real photograph's tree score is the segmenter's own score on the test images
    assert r["gan"]["real photograph"]["structure_dice"] == pytest.approx(
        r["segmenter"]["U-Net (real training images)"]["dice"]
    )
    assert (
        r["tasks"]["single-scale D"].nets["D"].__len__() == 1
        and not r["tasks"]["no smoothed negatives"].smooth_negatives
    )
    rec = run.seed_record(r)
    mos = run.mean_over_seeds([rec, rec])
    assert mos["gan"]["RetiGAN"]["ssim"]["mean"] == pytest.approx(rec["gan"]["RetiGAN"]["ssim"])
    assert math.isnan(mos["gan"]["real photograph"]["psnr"]["mean"])  # inf PSNR skipped, not averaged
    img, cap = explorer_view(r["tasks"]["RetiGAN"], r["segmenter_net"], seed=1, prune=0.5, thicken=1, size=64)
    assert img.shape == (64, 192, 3) and "Dice" in cap


def test_chapter_data_refuses_a_non_drive_data_root(tmp_path):
    from medsynth.data.layout import write_meta

    write_meta(tmp_path, {"kind": "retina", "splits": {"train": []}})
    with pytest.raises(ValueError, match="convert_drive"):
        run.chapter_data(run.PRESETS["quick"], tmp_path, None)
