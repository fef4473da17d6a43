"""Chapter 04 tasks: each loss falls over a few steps, the Trainer resumes exactly, the synthetic set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medsynth.models.structsynth import CondUNet
from medsynth.models.structsynth.data import MODALITIES, BrainStructDataset, SegDataset, augment_label, pick_lesions
from medsynth.models.structsynth.experiments import synthesise, table5_run
from medsynth.models.structsynth.tasks import MultiModalTask, SegTask, StructureGenTask, TranslatorTask
from medsynth.training import TrainConfig, Trainer

SIZE = 32




@pytest.fixture(scope="module")
def data() -> BrainStructDataset:
    return BrainStructDataset(range(8), SIZE)


def fit(task, ds, steps, tmp_path, name, **kw):
    cfg = TrainConfig(steps=steps, out_dir=tmp_path / name, batch_size=4, device="cpu", progress=False,
                      log_every=1, ckpt_every=0, **kw)
    return Trainer(task, ds, cfg).fit()


def first_last(hist, key, k=3):
    v = [r[key] for r in hist]
    return float(np.mean(v[:k])), float(np.mean(v[-k:]))


def test_dataset_items(data):
    item = data[0]
    assert item["x"].shape == (len(MODALITIES), SIZE, SIZE) and float(item["x"].min()) >= -1
    assert item["s"].shape == item["m"].shape == (4, SIZE, SIZE)
    assert item["s_struct"].shape == item["label"].shape == (1, SIZE, SIZE)
    lab = item["label"][0] > 0
    assert float(item["s_struct"][0][lab].sum()) == 0           # tumour structure removed (Sec. 5.2.1)


def test_structure_generator_losses_fall(data, tmp_path):
    torch.manual_seed(0)
    hist = fit(StructureGenTask(SIZE, z_ch=4, width=8, stages=3, lr=2e-3), data, 24, tmp_path, "sg")
    for key in ("L_m", "L_r"):
        a, b = first_last(hist, key)
        assert b < a, (key, a, b)
    assert {"L_d1", "L_g1", "L_d2", "L_g2", "KL"} <= set(hist[0])


def test_translator_and_segmenter_losses_fall(data, tmp_path):
    torch.manual_seed(0)
    hist = fit(TranslatorTask(width=8, depth=2, lr=2e-3), data, 16, tmp_path, "tr")
    a, b = first_last(hist, "L_cycle")
    assert b < a
    seg_ds = SegDataset(data.x01.reshape(-1, 1, SIZE, SIZE) * 2 - 1, data.label.repeat_interleave(4, 0))
    hist = fit(SegTask(1, width=8, depth=2, lr=3e-3), seg_ds, 20, tmp_path, "seg")
    a, b = first_last(hist, "L_seg")
    assert b < a


def test_multimodal_pretrain_then_adversarial(data, tmp_path):
    torch.manual_seed(0)
    st = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    gt, gl = CondUNet(1, 1, 4, 8, 2), CondUNet(1, 1, 0, 8, 2, out_act="none")
    task = MultiModalTask(st, gt, gl, width=8, depth=2, lr=2e-3, phase="pretrain")
    hist = fit(task, data, 16, tmp_path, "pre")
    a, b = first_last(hist, "L_p")
    assert b < a
    task.phase = "adversarial"
    hist = fit(task, data, 3, tmp_path, "adv")
    assert {"L_D", "L_g", "L_les", "L_reg"} <= set(hist[-1])
    assert all(not p.requires_grad for k in ("G_s", "G_m", "G_t", "G_l") for p in task.nets[k].parameters())
    syn = synthesise(task, data.label, 5, seed=1, batch_size=2)
    assert syn["x"].shape == (5, 4, SIZE, SIZE) and syn["input"].shape == (5, 2, SIZE, SIZE)
    assert syn["label"].shape == syn["m"].shape == syn["s"].shape == (5, 1, SIZE, SIZE)
    assert float((syn["label"] * syn["m"]).sum()) == 0          # lesions only inside the organ (Sec. 4.5)
    again = synthesise(task, data.label, 5, seed=1, batch_size=2)
    assert torch.equal(syn["x"], again["x"])
    noise = MultiModalTask(st, None, None, width=8, depth=2, input_mode="noise")
    assert not noise.reg_loss and not noise.les_loss


def test_pick_lesions_filter():
    m = torch.ones(3, 1, 16, 16)
    m[:, :, 4:12, 4:12] = 0
    pool = torch.zeros(2, 1, 16, 16)
    pool[0, 0, 7:9, 7:9] = 1                                    # fits (even after a small shift)
    pool[1, 0, 0:3, 0:3] = 1                                    # always outside
    g = torch.Generator().manual_seed(0)
    out = pick_lesions(pool, m, g, mask_filter=True, augment=False)
    assert float((out * m).sum()) == 0 and float(out.sum()) == 3 * 4
    raw = pick_lesions(pool[1:], m, g, mask_filter=False, augment=False)
    assert float((raw * m).sum()) > 0                           # no filter: lesions may leave the organ
    assert augment_label(pool[0], g, max_shift=0).sum() == 4     # flips and 90-degree turns keep the lesion


def test_lesion_shift_fills_with_zeros_instead_of_wrapping():
    """torch.roll would carry a lesion at the right edge round to the left edge; the shift must not."""
    from medsynth.models.structsynth.data import shift_zero
    lab = torch.zeros(1, 8, 8)
    lab[0, 3:5, 6:8] = 1                                        # touches the right edge
    out = shift_zero(lab, 1, 2)
    assert float(out.sum()) == 0                                # pushed off the image, not wrapped
    out = shift_zero(lab, 1, -2)
    assert torch.equal(out[0, 4:6, 4:6], torch.ones(2, 2)) and float(out.sum()) == 4
    assert float(shift_zero(lab, 0, 1)[0, :, 0].sum()) == 0     # nothing appears at the left edge


def test_resume_is_exact(data, tmp_path):
    def run(steps, out):
        torch.manual_seed(0)
        task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
        Trainer(task, data, TrainConfig(steps=steps, out_dir=out, batch_size=4, device="cpu", progress=False,
                                        ckpt_every=2, seed=3)).fit()
        return task
    full = run(4, tmp_path / "full")
    run(2, tmp_path / "half")
    resumed = run(4, tmp_path / "half")
    for k in full.nets:
        for a, b in zip(full.nets[k].state_dict().values(), resumed.nets[k].state_dict().values()):
            assert torch.equal(a, b), k


def test_table5_row(data, tmp_path):
    real = SegDataset(data.x01[:6] * 2 - 1, data.label[:6])
    syn = SegDataset(data.x01[2:] * 2 - 1, data.label[2:])
    test = (data.x01[6:] * 2 - 1, data.label[6:])
    r = table5_run(real, syn, test, 0.5, 0.5, "synthetic first", 1, tmp_path, batch_size=2, width=8, depth=2,
                   device="cpu")
    assert r["n_real"] == 3 and r["n_synthetic"] == 3 and r["steps"] == 3
    assert 0 <= r["dice"] <= 1 and 0 < r["mse"] < 1


@pytest.mark.parametrize("mode, order", [("synthetic first", ["synthetic", "real"]), ("real first", ["real", "synthetic"]),
                                         ("random mixing", ["mixed"])])
def test_table5_modes_train_the_sources_in_order(data, tmp_path, mode, order):
    """Sec. 5.6.1: one source, then the other, iterations in proportion to their sizes (or one mixed stage)."""
    from medsynth.training import read_log
    real = SegDataset(data.x01[:4] * 2 - 1, data.label[:4])
    syn = SegDataset(data.x01[2:] * 2 - 1, data.label[2:])
    test = (data.x01[6:] * 2 - 1, data.label[6:])
    r = table5_run(real, syn, test, 1.0, 0.5, mode, 3, tmp_path, batch_size=2, width=8, depth=2, device="cpu")
    assert (r["n_real"], r["n_synthetic"], r["steps"]) == (4, 2, 3 * 4 // 2)
    stages = sorted((p for p in tmp_path.iterdir() if p.is_dir()), key=lambda p: (p / "log.jsonl").stat().st_mtime_ns)
    assert [p.name for p in stages] == order
    steps = [read_log(p / "log.jsonl")[-1]["step"] for p in stages]
    assert steps == ([6] if mode == "random mixing" else [4, 2] if mode == "real first" else [2, 4])
