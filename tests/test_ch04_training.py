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
    cfg = TrainConfig(
        steps=steps,
        out_dir=tmp_path / name,
        batch_size=4,
        device="cpu",
        progress=False,
        log_every=1,
        ckpt_every=0,
        **kw,
    )
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
    assert float(item["s_struct"][0][lab].sum()) == 0  # tumour structure removed (Sec. 5.2.1)


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
    assert float((syn["label"] * syn["m"]).sum()) == 0  # lesions only inside the organ (Sec. 4.5)
    again = synthesise(task, data.label, 5, seed=1, batch_size=2)
    assert torch.equal(syn["x"], again["x"])
    noise = MultiModalTask(st, None, None, width=8, depth=2, input_mode="noise")
    assert not noise.reg_loss and not noise.les_loss


def test_pick_lesions_filter():
    m = torch.ones(3, 1, 16, 16)
    m[:, :, 4:12, 4:12] = 0
    pool = torch.zeros(2, 1, 16, 16)
    pool[0, 0, 7:9, 7:9] = 1  # fits (even after a small shift)
    pool[1, 0, 0:3, 0:3] = 1  # always outside
    g = torch.Generator().manual_seed(0)
    out = pick_lesions(pool, m, g, mask_filter=True, augment=False)
    assert float((out * m).sum()) == 0 and float(out.sum()) == 3 * 4
    raw = pick_lesions(pool[1:], m, g, mask_filter=False, augment=False)
    assert float((raw * m).sum()) > 0  # no filter: lesions may leave the organ
    assert augment_label(pool[0], g, max_shift=0).sum() == 4  # flips and 90-degree turns keep the lesion


def test_lesion_shift_fills_with_zeros_instead_of_wrapping():
    """torch.roll would carry a lesion at the right edge round to the left edge; the shift must not."""
    from medsynth.models.structsynth.data import shift_zero

    lab = torch.zeros(1, 8, 8)
    lab[0, 3:5, 6:8] = 1  # touches the right edge
    out = shift_zero(lab, 1, 2)
    assert float(out.sum()) == 0  # pushed off the image, not wrapped
    out = shift_zero(lab, 1, -2)
    assert torch.equal(out[0, 4:6, 4:6], torch.ones(2, 2)) and float(out.sum()) == 4
    assert float(shift_zero(lab, 0, 1)[0, :, 0].sum()) == 0  # nothing appears at the left edge


def test_resume_is_exact(data, tmp_path):
    def run(steps, out):
        torch.manual_seed(0)
        task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
        Trainer(
            task,
            data,
            TrainConfig(steps=steps, out_dir=out, batch_size=4, device="cpu", progress=False, ckpt_every=2, seed=3),
        ).fit()
        return task

    full = run(4, tmp_path / "full")
    run(2, tmp_path / "half")
    resumed = run(4, tmp_path / "half")
    for k in full.nets:
        for a, b in zip(full.nets[k].state_dict().values(), resumed.nets[k].state_dict().values(), strict=True):
            assert torch.equal(a, b), k


def test_table5_row(data, tmp_path, monkeypatch):
    import medsynth.models.structsynth.experiments as ex

    real = SegDataset(data.x01[:6] * 2 - 1, data.label[:6])
    syn = SegDataset(data.x01[2:] * 2 - 1, data.label[2:])
    test = (data.x01[6:] * 2 - 1, data.label[6:])
    seen, real_seg_dice = [], ex.seg_dice

    def scored(net, images, labels):  # the row's Dice/MSE are seg_dice of the trained net on the real test slices
        seen.append((net, images, labels, real_seg_dice(net, images, labels)))
        return seen[-1][3]

    monkeypatch.setattr(ex, "seg_dice", scored)
    r = table5_run(
        real, syn, test, 0.5, 0.5, "synthetic first", 1, tmp_path, batch_size=2, width=8, depth=2, device="cpu"
    )
    assert r["n_real"] == 3 and r["n_synthetic"] == 3 and r["steps"] == 3
    ((net, images, labels, (d, mse)),) = seen
    assert images is test[0] and labels is test[1] and (r["dice"], r["mse"]) == (d, mse)
    # the net scored is the one trained: a fresh net of the same shape scores differently
    fresh = SegTask(real.images.shape[1], 8, 2, 1e-3).nets["seg"]
    assert any(
        not torch.equal(a, b) for a, b in zip(net.state_dict().values(), fresh.state_dict().values(), strict=True)
    )
    assert 0 <= r["dice"] <= 1 and 0 < r["mse"] < 1


@pytest.mark.parametrize(
    "mode, order",
    [("synthetic first", ["synthetic", "real"]), ("real first", ["real", "synthetic"]), ("random mixing", ["mixed"])],
)
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


class _ConstG(torch.nn.Module):
    """A stand-in conditional network: output = the target modality index (or the input, ``copy=True``)."""

    def __init__(self, copy: bool = False) -> None:
        super().__init__()
        self.copy, self.w = copy, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, cond):
        if self.copy:
            return x[:, :1]
        return cond.float()[:, None, None, None].expand(len(x), 1, *x.shape[-2:])


def test_eq16_pairs_compare_x_gi_with_the_translation_of_x_gj_into_i():
    """Eq. 16: ||x_{g,i} - G_t(x_{g,j}, one_hot(i))||. With x_{g,i} = i everywhere: a G_t that outputs its target
    index gives 0 (right pairing); a G_t that copies its input gives mean (i - j)^2 over the 12 pairs = 10/3."""
    x_g = torch.arange(4.0)[:, None, None, None, None].expand(4, 2, 1, 8, 8).clone()
    task = MultiModalTask(None, _ConstG(), None, width=8, depth=2)
    assert float(task.registration_loss(x_g)) == pytest.approx(0.0)
    task.nets["G_t"] = _ConstG(copy=True)
    assert float(task.registration_loss(x_g)) == pytest.approx(40 / 12)
    from medsynth.models.structsynth.tasks import modality_pairs

    assert len(modality_pairs(4)) == 12 and all(i != j for i, j in modality_pairs(4))


def test_eq13_class_targets_line_up_with_real_and_generated_modalities():
    """Real slices and generated slices are flattened in the same modality-major order as their class targets."""
    task = MultiModalTask(None, None, None, width=8, depth=2)
    task.nets["G"] = _ConstG()
    x = torch.arange(4.0)[None, :, None, None].expand(3, 4, 8, 8)  # x[:, i] == i: the modality index
    flat, idx = task.flat_real(x)
    assert torch.equal(flat.mean((1, 2, 3)), idx.float())  # each real image sits at its own index
    big, idx_g = task._expand(torch.zeros(3, 2, 8, 8))
    assert torch.equal(idx, idx_g)
    y = task.generate(torch.zeros(3, 2, 8, 8))  # (B, n_mod, H, W): channel i from one_hot(i)
    assert torch.equal(y.mean((0, 2, 3)), torch.arange(4.0))


def test_eq18_pretraining_uses_one_structure_map_for_every_modality(data):
    """Eq. 18 writes one s for the sum over i: all four outputs of a slice must come from the same input."""
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, cond):
            seen.append((x.detach().clone(), cond.clone()))
            return x[:, :1] * 0 + self.w

    task = MultiModalTask(None, None, None, width=8, depth=2, noise_fusion=False)
    task.nets["G"] = Spy()
    task.opts["G"] = torch.optim.SGD(task.nets["G"].parameters(), lr=0.0)
    from medsynth.training import StepContext

    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in data[0]}
    task.train_step(
        batch, StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False)
    )
    x, cond = seen[0]
    assert torch.equal(cond, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    for k in range(2):  # slice k's input for every modality
        for i in range(1, 4):
            assert torch.equal(x[i * 2 + k], x[k])
        assert torch.equal(x[k, 0], batch["s_struct"][k, 0]) and torch.equal(x[k, 1], batch["label"][k, 0])


def test_straight_through_is_binary_forward_identity_backward_and_reaches_d_s():
    from medsynth.models.structsynth.tasks import straight_through

    p = torch.tensor([0.2, 0.6, 0.49, 0.51], requires_grad=True)
    y = straight_through(p)
    assert torch.equal(y.detach(), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert torch.equal(p.grad, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    seen = []
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    task.nets["D_s"].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    task.nets["D_s"].eval()
    task._ds_input(torch.rand(2, 1, SIZE, SIZE))
    task.nets["D_s"](task._ds_input(torch.rand(2, 1, SIZE, SIZE)))
    assert set(torch.unique(seen[-1]).tolist()) <= {0.0, 1.0}  # D_s never sees grey fakes
    soft = StructureGenTask(SIZE, z_ch=4, width=8, stages=3, binarise_fake=False)
    assert len(torch.unique(soft._ds_input(torch.rand(2, 1, SIZE, SIZE)))) > 2


def test_conventional_augment_moves_image_and_label_together():
    from medsynth.models.structsynth.data import conventional_augment

    img = torch.full((6, 4, 16, 16), -1.0)
    lab = torch.zeros(6, 1, 16, 16)
    img[:, :, 2:6, 3:9] = 1.0
    lab[:, :, 2:6, 3:9] = 1.0
    a, b = conventional_augment(img, lab, torch.Generator().manual_seed(0))
    assert not torch.equal(a, img)
    for k in range(6):  # the label still marks the bright block
        bright = a[k, 0] > 0.5
        assert torch.equal(bright, b[k, 0] > 0.5)


def test_modality_spread_is_zero_for_copies_and_exact_for_known_means():
    from medsynth.models.structsynth.experiments import modality_spread

    organ = torch.zeros(2, 1, 8, 8)
    organ[:, :, 2:6, 2:6] = 1
    same = torch.rand(2, 1, 8, 8).repeat(1, 4, 1, 1) * 2 - 1
    assert modality_spread(same, organ) == pytest.approx(0.0, abs=1e-6)
    x = torch.full((2, 4, 8, 8), -1.0)  # outside the organ: ignored
    for i, v in enumerate((0.0, 0.2, 0.4, 0.6)):
        x[:, i, 2:6, 2:6] = v * 2 - 1
    assert modality_spread(x, organ) == pytest.approx(float(torch.tensor([0.0, 0.2, 0.4, 0.6]).std()), abs=1e-6)
