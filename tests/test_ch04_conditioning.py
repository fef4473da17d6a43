"""Chapter 04, issue 13 items 4-5: where G's modality condition reaches, the adversarial phase's inputs and
anchors, frozen BatchNorm statistics, and the DRIVE arm (Table 6)."""

from __future__ import annotations

import copy

import pytest
import torch

from medsynth.models.structsynth import CondUNet
from medsynth.models.structsynth.data import BrainStructDataset
from medsynth.models.structsynth.tasks import MultiModalTask, StructureGenTask
from medsynth.training import StepContext

SIZE = 32


@pytest.fixture(scope="module")
def data() -> BrainStructDataset:
    return BrainStructDataset(range(4), SIZE)


def _batch(ds: BrainStructDataset) -> dict:
    return {k: torch.stack([ds[i][k] for i in range(len(ds))]) for k in ds[0]}


@pytest.mark.parametrize("every", [False, True])
def test_condition_reaches_every_decoder_level_only_with_cond_every(every):
    torch.manual_seed(0)
    net = CondUNet(2, 1, 4, 8, 2, cond_every=every).eval()
    with torch.no_grad():
        net.bottleneck[0].weight[:, -4:] = 0  # the bottleneck no longer reads the condition
    x = torch.rand(2, 2, SIZE, SIZE)
    with torch.no_grad():
        a, b = net(x, torch.tensor([0, 0])), net(x, torch.tensor([3, 3]))
    assert (float((a - b).abs().max()) > 1e-4) is every
    assert net.decs[0][0][0].in_channels == 32 + 16 + (4 if every else 0)  # up(h) + skip (+ condition)


def _task(adv_maps="generated", **kw) -> MultiModalTask:
    torch.manual_seed(0)
    st = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    return MultiModalTask(
        st, None, None, width=8, depth=2, lr=2e-3, phase="adversarial", noise_fusion=False, adv_maps=adv_maps, **kw
    )


def test_real_map_inputs_are_the_batch_maps_with_lesions_inside_the_organ(data):
    task, batch = _task("real"), _batch(data)
    r = task.real_map_inputs(batch)
    assert torch.equal(r["input"][:, :1], batch["s_struct"]) and torch.equal(r["m"], batch["m_struct"])
    assert float((r["label"] * r["m"]).sum()) == 0
    with pytest.raises(ValueError, match="adv_maps"):
        _task("fake")


def _step(task, batch):
    ctx = StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False)
    return task.train_step(batch, ctx)


def test_anchor_adds_eq18_on_the_batch_computed_before_the_g_step(data):
    task, batch = _task("real", anchor=2.0), _batch(data)
    for k in ("G", "D"):
        task.nets[k].train()
    before = copy.deepcopy(task)
    out = _step(task, batch)
    x_flat, _ = before.flat_real(batch["x"])
    with torch.no_grad():
        expect = before.pretrain_loss(batch, x_flat)
    assert abs(float(out["L_p"]) - float(expect)) < 1e-5
    assert "L_p" not in _step(_task("real"), batch)


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_keeps_the_pretraining_statistics_of_g(data, freeze):
    task, batch = _task(freeze_bn=freeze), _batch(data)
    task.nets["G"].train()
    bn = next(m for m in task.nets["G"].modules() if isinstance(m, torch.nn.BatchNorm2d))
    mean0 = bn.running_mean.clone()
    _step(task, batch)
    assert torch.equal(bn.running_mean, mean0) is freeze


def test_structure_labels_are_binary_inside_the_fov_and_follow_the_vessels(shared_data):
    from medsynth.models.structsynth.drive import structure_labels
    from medsynth.models.vessel_data import drive_protocol

    found = drive_protocol(None, shared_data, 64)
    if found is None:
        pytest.skip("no DRIVE in ../shared/data")
    train = found[0].subset([0, 1, 2])
    lab = structure_labels(train)
    assert lab.shape == train.vessels.shape and set(lab.unique().tolist()) <= {0.0, 1.0}
    assert float(lab[~train.fov.bool()].sum()) == 0
    v = train.vessels > 0.5
    hit = float((lab.bool() & v).sum() / v.sum())  # recall of the manual vessels
    shuffled = float((lab.roll(1, 0).bool() & v).sum() / v.sum())  # another eye's map: the same density, wrong place
    assert hit > 0.3 and hit > shuffled + 0.1, (hit, shuffled)


def test_table6_rows_beside_the_thesis(shared_data, tmp_path):
    from medsynth.models.structsynth.drive import THESIS_TABLE6, table6

    r = table6(None, shared_data, tmp_path, size=64, steps=2, width=4, device="cpu", work=128)
    if r is None:
        pytest.skip("no DRIVE in ../shared/data")
    assert THESIS_TABLE6 == {"auc": 0.9705, "accuracy": 0.9477, "sensitivity": 0.7781}
    assert set(r["rows"]) == {
        "U-Net (manual labels)",
        "U-Net (Algorithm-1 maps as labels)",
        "Algorithm 1 map itself",
        "mean training label",
    }
    assert "36, 37, 38, 39, 40" in r["protocol"]
    for row in r["rows"].values():
        assert all(0.0 <= row[k] <= 1.0 for k in ("auc", "accuracy", "sensitivity"))


def test_table6_is_none_without_drive(tmp_path):
    from medsynth.models.structsynth.drive import table6

    assert table6(None, tmp_path, tmp_path / "out") is None
