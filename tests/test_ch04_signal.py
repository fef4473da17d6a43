"""Chapter 04 signal fixes (issue 13 items 3-4), checked on values: the density-matched threshold of the structure
generator (Eqs. 10-11) and its buffer, the straight-through cut D_s sees, the mask terms of Eqs. 7 and 11, the
diversity and modality-contrast measures, and the two adversarial-phase switches (fresh Adam, Eq. 16 gate)."""

from __future__ import annotations

import io
import types

import pytest
import torch

from medsynth.models.structsynth import CondUNet, Decoder
from medsynth.models.structsynth.data import BrainStructDataset
from medsynth.models.structsynth.experiments import (
    contrast_orderings,
    modality_contrast,
    nearest_dice,
    nearest_distance,
    nearest_distances,
    pairwise_distance,
    reconstruction_error,
    structure_diversity,
)
from medsynth.models.structsynth.networks import VAEEncoder, latent_shape
from medsynth.models.structsynth.tasks import (
    STRUCT_WEIGHTS,
    MultiModalTask,
    StructureGenTask,
    density_threshold,
    straight_through,
)
from medsynth.training import TrainConfig, Trainer

SIZE = 32


# -- density_threshold ------------------------------------------------------------------------------
def test_density_threshold_on_hand_made_values():
    p = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    t = density_threshold(p, 0.3)  # top 3 = 0.9, 0.8, 0.7; the cut lies between 0.7 and 0.6
    assert t == pytest.approx(0.65)
    assert float((p > t).float().mean()) == pytest.approx(0.3)
    # shuffled and shaped as a map: the same cut
    m = p[torch.randperm(10, generator=torch.Generator().manual_seed(0))].reshape(1, 1, 2, 5)
    assert density_threshold(m, 0.3) == pytest.approx(0.65)
    assert density_threshold(p, 0.1) == pytest.approx(0.85)


def test_density_threshold_boundaries():
    p = torch.tensor([[0.2, 0.4], [0.6, 0.8]])
    assert density_threshold(p, 0.0) == pytest.approx(0.8)  # nothing strictly above the max
    assert int((p > density_threshold(p, 0.0)).sum()) == 0
    t1 = density_threshold(p, 1.0)
    assert t1 < 0.2 and bool((p > t1).all())  # everything above: just below the min
    assert int((p > density_threshold(p, 0.75)).sum()) == 3
    assert int((p > density_threshold(p, 0.25)).sum()) == 1
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError):
            density_threshold(p, bad)
    with pytest.raises(ValueError):
        density_threshold(torch.tensor([]), 0.5)


# -- the threshold buffer ---------------------------------------------------------------------------
def test_binarise_uses_the_buffer_and_survives_a_checkpoint_round_trip():
    g = Decoder(4, 1, 8, 3)
    p = torch.tensor([0.3, 0.55, 0.65, 0.9])
    assert torch.equal(g.binarise(p), torch.tensor([0.0, 1.0, 1.0, 1.0]))  # default 0.5
    g.threshold.fill_(0.6)
    assert torch.equal(g.binarise(p), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    buf = io.BytesIO()
    torch.save(g.state_dict(), buf)
    buf.seek(0)
    h = Decoder(4, 1, 8, 3)
    h.load_state_dict(torch.load(buf, weights_only=True))
    assert float(h.threshold) == pytest.approx(0.6)
    assert torch.equal(h.binarise(p), g.binarise(p))
    old = {k: v for k, v in g.state_dict().items() if k != "threshold"}  # a checkpoint from before the buffer
    k = Decoder(4, 1, 8, 3)
    k.threshold.fill_(0.9)
    k.load_state_dict(old)
    assert float(k.threshold) == 0.5


def test_fixed_threshold_sets_the_buffer_and_density_follows_the_fakes():
    assert float(StructureGenTask(SIZE, z_ch=4, width=8, stages=3, threshold=0.3).nets["G_s"].threshold) == (
        pytest.approx(0.3)
    )
    with pytest.raises(ValueError):
        StructureGenTask(SIZE, z_ch=4, width=8, stages=3, threshold="median")
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    task.real_fraction = 0.25
    s_g = torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    t = task._cut(s_g, torch.zeros_like(s_g))
    assert float((s_g > t).float().mean()) == pytest.approx(0.25, abs=1 / s_g.numel())
    assert float(task.nets["G_s"].threshold) == pytest.approx(0.9 * 0.5 + 0.1 * t)  # moving average
    task.real_fraction = None  # uncalibrated: the batch's own real maps set the density
    real = (torch.rand_like(s_g) < 0.1).float()
    t2 = task._cut(s_g, real)
    assert float((s_g > t2).float().mean()) == pytest.approx(float(real.mean()), abs=1 / s_g.numel())
    fixed = StructureGenTask(SIZE, z_ch=4, width=8, stages=3, threshold=0.5)
    assert fixed._cut(s_g, real) == 0.5 and float(fixed.nets["G_s"].threshold) == 0.5


def test_calibrate_threshold_matches_the_real_density():
    torch.manual_seed(0)
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    torch.nn.init.normal_(task.nets["G_s"].out.weight, std=3.0)  # an untrained G_s is nearly constant: spread it
    real = torch.zeros(6, 1, SIZE, SIZE)
    real[:, :, :8] = 1.0  # fraction 0.25
    t = task.calibrate_threshold(real, n=20, seed=3, batch_size=8)
    G = task.nets["G_s"]
    assert task.real_fraction == 0.25 and float(G.threshold) == pytest.approx(t)
    assert G.training  # calibrate_threshold restores the training mode
    g = torch.Generator().manual_seed(3)  # the same latents, drawn as calibrate_threshold draws them
    G.eval()
    with torch.no_grad():
        p = torch.cat([G(torch.randn(min(8, 20 - k), *task.z_shape, generator=g)) for k in range(0, 20, 8)])
    assert t == density_threshold(p, 0.25)  # the same latents, in eval mode, at the real maps' fraction
    # nearest upsampling from a 4x4 latent repeats values: the fraction is exact up to the tied pixels
    assert float(G.binarise(p).mean()) == pytest.approx(0.25, abs=0.02)
    fixed = StructureGenTask(SIZE, z_ch=4, width=8, stages=3, threshold=0.5)
    assert fixed.calibrate_threshold(real) == 0.5  # a fixed cut is not re-calibrated


# -- what D_s sees, and the mask terms ----------------------------------------------------------------
def test_straight_through_at_a_threshold_is_binary_forward_identity_backward():
    p = torch.tensor([0.2, 0.35, 0.25, 0.9], requires_grad=True)
    y = straight_through(p, 0.3)
    assert torch.equal(y.detach(), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    (y * torch.tensor([1.0, -2.0, 3.0, 4.0])).sum().backward()
    assert torch.equal(p.grad, torch.tensor([1.0, -2.0, 3.0, 4.0]))


@pytest.fixture(scope="module")
def data() -> BrainStructDataset:
    return BrainStructDataset(range(4), SIZE)


def _fit(task, ds, steps, tmp_path):
    cfg = TrainConfig(
        steps=steps, out_dir=tmp_path, batch_size=4, device="cpu", progress=False, log_every=1, ckpt_every=0
    )
    return Trainer(task, ds, cfg).fit()


def test_d_s_sees_density_matched_binary_fakes_and_eq11_reaches_g_s_through_g_m(data, tmp_path):
    torch.manual_seed(0)
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3, lr=1e-3)
    task.real_fraction = float(data.s_struct.mean())
    seen, through_gm = [], []
    task.nets["D_s"].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))

    def on_gm(module, args, out):  # count gradients that reach G_m's output when its input is G_s's map
        if args[0].requires_grad:
            out.register_hook(lambda g: through_gm.append(float(g.abs().sum())))

    task.nets["G_m"].register_forward_hook(on_gm)
    gm_before = [p.detach().clone() for p in task.nets["G_m"].parameters()]
    task.w["m"] = 0.0  # Eq. 6 off: G_m may change only if a mask term trained it (it must not)
    hist = _fit(task, data, 1, tmp_path)
    fakes = seen[1]  # D_s calls: real, fake (Eq. 10), fake (Eq. 11)
    assert set(torch.unique(fakes).tolist()) <= {0.0, 1.0}
    assert float(fakes.mean()) == pytest.approx(task.real_fraction, abs=1 / fakes.numel())
    assert float(hist[-1]["threshold"]) != 0.5
    assert through_gm and through_gm[0] > 0  # Eq. 11's m_g = G_m(s_g) is not detached
    assert all(torch.equal(a, b) for a, b in zip(gm_before, task.nets["G_m"].parameters(), strict=True))


# -- diversity -----------------------------------------------------------------------------------------
def test_pairwise_and_nearest_distance_on_hand_made_maps():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    c = torch.ones(1, 1, 2, 2)
    assert pairwise_distance(torch.cat([a, a, a])) == 0.0  # collapsed
    # pairs: a-b 1/4, a-c 1, b-c 3/4 -> mean 2/3
    assert pairwise_distance(torch.cat([a, b, c])) == pytest.approx(2 / 3)
    assert nearest_distance(torch.cat([b, c]), torch.cat([a, a])) == pytest.approx((0.25 + 1.0) / 2)
    assert nearest_distance(torch.cat([a, c]), torch.cat([a, c])) == 0.0  # memorised
    with pytest.raises(ValueError):
        pairwise_distance(a)


def test_structure_diversity_binarises_at_the_buffer(data):
    torch.manual_seed(0)
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    task.nets["G_s"].threshold.fill_(2.0)  # above any sigmoid: no structure at all
    d = structure_diversity(task, data, data, n=6)
    assert d["fraction_generated"] == 0.0 and d["pairwise_generated"] == 0.0 and d["threshold"] == 2.0
    assert d["pairwise_real"] == pytest.approx(pairwise_distance(data.s_struct))
    assert d["nearest_real"] == 0.0  # the held-out set is the training set here
    # empty maps overlap no training map, while the held-out maps (= the training maps) overlap themselves
    assert d["organ_like_share"] == 0.0 and d["nearest_dice_generated"] == 0.0 and d["nearest_dice_real"] == 1.0
    task.nets["G_s"].threshold.fill_(-1.0)  # everything is structure, except where G_m's mask says outside
    seen = []

    class _HalfMask(torch.nn.Module):  # G_m stand-in: left half outside the organ; records its input
        def forward(self, s):
            seen.append(s.clone())
            m = torch.zeros_like(s)
            m[..., : SIZE // 2] = 1.0
            return m

    task.nets["G_m"] = _HalfMask()
    d = structure_diversity(task, data, data, n=6)
    assert d["fraction_generated"] == pytest.approx(0.5)
    assert bool((seen[-1] == 1).all())  # G_m read the binarised map, not G_s's soft output


def test_nearest_distances_per_map_and_the_organ_like_share(data):
    real = data.s_struct.float()
    empty = torch.zeros_like(real[:2])
    per = nearest_distances(torch.cat([real[:2], empty]), real)
    assert per[:2].tolist() == [0.0, 0.0]  # themselves
    assert per[2:].tolist() == pytest.approx([float(real.flatten(1).mean(1).min())] * 2)  # the sparsest map
    assert nearest_distance(torch.cat([real[:2], empty]), real) == pytest.approx(float(per.mean()))
    dice = nearest_dice(torch.cat([real[:2], empty]), real)
    assert dice.tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0])  # an empty map overlaps nothing
    a = torch.zeros(1, 1, 4, 4)
    a[..., :2, :] = 1  # 8 pixels
    b = torch.zeros(1, 1, 4, 4)
    b[..., :1, :] = 1  # 4 of them
    assert float(nearest_dice(b, torch.cat([a, torch.zeros_like(a)]))[0]) == pytest.approx(2 * 4 / 12)

    torch.manual_seed(0)
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)

    class _Copy(torch.nn.Module):  # G_s stand-in: half the samples are training maps, half are empty
        def __init__(self):
            super().__init__()
            self.w, self.threshold = torch.nn.Parameter(torch.zeros(())), torch.tensor(0.5)

        def forward(self, f):
            out = torch.zeros(len(f), 1, SIZE, SIZE)
            out[: len(f) // 2] = real[: len(f) // 2]
            return out

        def binarise(self, p):
            return (p > self.threshold).float()

    class _Inside(torch.nn.Module):  # G_m stand-in: nothing is outside the organ
        def forward(self, s):
            return torch.zeros_like(s)

    task.nets["G_s"], task.nets["G_m"] = _Copy(), _Inside()
    d = structure_diversity(task, data, data, n=4)  # held-out = training maps: the worst real overlap is 1
    assert d["organ_like_share"] == pytest.approx(0.5)  # the copied half, not the empty half
    assert d["nearest_dice_generated"] == pytest.approx(0.5)


def test_structure_diversity_scores_the_reconstruction_against_the_mean_map(data):
    torch.manual_seed(0)
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    real = data.s_struct.float()
    const = real.mean(0, keepdim=True)

    class _Fixed(torch.nn.Module):  # a decoder that ignores its latent and returns one map
        def __init__(self, out):
            super().__init__()
            self.out, self.threshold = out, torch.tensor(0.5)
            self.w = torch.nn.Parameter(torch.zeros(()))  # structure_diversity reads the device off a parameter

        def forward(self, f):
            return self.out.expand(len(f), -1, -1, -1)

        def binarise(self, p):
            return (p > self.threshold).float()

    task.nets["G_s"] = _Fixed(const)  # the per-pixel mean: exactly the constant's error
    d = structure_diversity(task, data, data, n=4)
    assert d["constant_mse"] == pytest.approx(float((const - real).pow(2).mean()))
    assert d["reconstruction_mse"] == pytest.approx(d["constant_mse"], rel=1e-6)
    task.nets["G_s"] = _Fixed(1 - const)  # a worse map scores worse, by its own squared error
    d = structure_diversity(task, data, data, n=4)
    assert d["reconstruction_mse"] == pytest.approx(float((1 - const - real).pow(2).mean()))
    assert d["reconstruction_mse"] > d["constant_mse"]


@pytest.mark.parametrize("p, best", [(0.1, 0.0), (1 / 7, 0.0), (0.3, 0.22), (0.5, 0.5)])
def test_code_reconstruction_weights_leave_unlikely_pixels_black(p, best):
    """Notebook Sec. 4's caveat: 25 MSE + 10 L1 (the author's Eq. 7) is lowest at max(0, 1.4 p - 0.2)."""
    w = STRUCT_WEIGHTS["code"]
    y = torch.linspace(0, 1, 100001, dtype=torch.float64)
    loss = w["rec_mse"] * (p * (1 - y) ** 2 + (1 - p) * y**2) + w["rec_l1"] * (p * (1 - y) + (1 - p) * y)
    assert float(y[loss.argmin()]) == pytest.approx(best, abs=1e-4)


# -- modality contrast ---------------------------------------------------------------------------------
_REAL = torch.tensor([[0.2, 0.8, 0.3, 0.9], [0.6, 0.4, 0.5, 0.3]])  # csf, wm per modality (t1, t2, t1c, flair)


class _Fake:
    """A stand-in task: ``generate`` returns the images it was given, in [-1, 1]."""

    def __init__(self, x01: torch.Tensor) -> None:
        self.x01 = x01
        self.nets = {"G": torch.nn.Linear(1, 1)}

    def fuse(self, s, m, lab):
        return torch.arange(len(s), dtype=torch.float)[:, None, None, None].expand(-1, 2, *s.shape[-2:])

    def generate(self, inp):
        idx = inp[:, 0, 0, 0].long()
        return self.x01[idx] * 2 - 1


def _contrast_ds():
    tissue = torch.zeros(2, 4, 4, dtype=torch.long)
    tissue[:, :2], tissue[:, 2:] = 1, 3  # top half csf, bottom half wm; no background class present
    x01 = torch.zeros(2, 4, 4, 4)
    for i in range(4):
        x01[:, i][tissue == 1], x01[:, i][tissue == 3] = _REAL[0, i], _REAL[1, i]
    z = torch.zeros(2, 1, 4, 4)
    return types.SimpleNamespace(tissue=tissue, x01=x01, s_struct=z, m_struct=z, label=z)


def test_modality_contrast_on_hand_made_images():
    ds = _contrast_ds()
    exact = modality_contrast(_Fake(ds.x01), ds)
    assert exact["tissues"] == ["csf", "wm"]
    assert exact["error"] == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(torch.tensor(exact["real"]), _REAL)
    # the same-image baseline: each tissue's mean over modalities (csf 0.55, wm 0.45) -> (1.2 + 0.4) / 8 = 0.2
    assert exact["error_same"] == pytest.approx(0.2)
    assert (exact["orderings_right"], exact["orderings_total"]) == (4, 4)
    flat = modality_contrast(_Fake(torch.full_like(ds.x01, 0.5)), ds)  # one grey for everything
    assert flat["error"] == pytest.approx((0.3 + 0.3 + 0.2 + 0.4 + 0.1 + 0.1 + 0.0 + 0.2) / 8)
    assert flat["spread_generated"] == pytest.approx(0.0, abs=1e-6)
    assert flat["orderings_right"] == 0
    swapped = ds.x01.flip(1)  # modalities reversed: flair's contrast in t1's place, ...
    sw = modality_contrast(_Fake(swapped), ds)
    assert sw["error"] == pytest.approx(float((_REAL.flip(1) - _REAL).abs().mean()))
    assert sw["orderings_right"] == 0


def test_contrast_orderings_counts_only_clear_real_differences():
    real = [[0.2, 0.5], [0.6, 0.52]]  # modality 1's difference (0.02) is under the margin
    assert contrast_orderings([[0.1, 0.9], [0.9, 0.1]], real, 0.05) == (1, 1)
    assert contrast_orderings([[0.9, 0.9], [0.1, 0.1]], real, 0.05) == (0, 1)
    assert contrast_orderings([[0.1, 0.9], [0.9, 0.1]], real, 0.01) == (1, 2)


# -- adversarial-phase switches ------------------------------------------------------------------------
def _mm(translator=None):
    return MultiModalTask(None, translator, None, width=8, depth=2, lr=1e-3)


def test_start_adversarial_with_fresh_adam_clears_g_state():
    task = _mm()
    G = task.nets["G"]
    x = torch.rand(2, 2, 16, 16)
    G(x, torch.tensor([0, 1])).mean().backward()
    task.opts["G"].step()
    old_g, old_d = task.opts["G"], task.opts["D"]
    assert len(old_g.state) > 0
    task.start_adversarial(fresh_adam=True)
    assert task.phase == "adversarial"
    new = task.opts["G"]
    assert new is not old_g and len(new.state) == 0 and task.opts["D"] is old_d
    assert new.param_groups[0]["lr"] == 1e-3 and new.defaults["betas"] == old_g.defaults["betas"]
    assert {id(p) for p in new.param_groups[0]["params"]} == {id(p) for p in G.parameters()}
    keep = _mm()
    before = keep.opts["G"]
    keep.start_adversarial(fresh_adam=False)
    assert keep.opts["G"] is before and keep.phase == "adversarial"


def test_reg_gate_drops_eq16_unless_g_t_beats_copying():
    gt = CondUNet(1, 1, 4, 8, 2)
    task = _mm(gt)
    assert task.reg_loss and not task.reg_gated
    assert task.gate_registration(0.70, 0.60) and task.reg_loss  # G_t better than copy: Eq. 16 stays
    assert not task.gate_registration(0.55, 0.60)  # worse than copying: off, and recorded
    assert not task.reg_loss and task.reg_gated
    none = _mm(None)  # no translator: Eq. 16 was never on, so the gate did not turn it off
    assert not none.gate_registration(0.9, 0.1) and not none.reg_gated


def test_presets_default_to_the_fixes():
    from medsynth.models.structsynth_run import PRESETS

    for name in ("quick", "standard", "full"):
        p = PRESETS[name]
        assert p.struct_threshold == "density" and p.reg_gate and p.fresh_adam
        assert p.struct_gs is None  # G_s's D_s weight: the code's 0.1 (1 gave mostly non-organ-like samples)


def test_a_gated_task_never_calls_g_t_in_the_adversarial_phase(data, tmp_path):
    calls = []

    class _CountingGt(torch.nn.Module):  # a stand-in G_t that copies its input and counts calls
        def forward(self, x, cond):
            calls.append(len(x))
            return x[:, :1]

    torch.manual_seed(0)
    st = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    on = MultiModalTask(st, _CountingGt(), None, width=8, depth=2, lr=1e-3)
    on.start_adversarial()
    assert "L_reg" in _fit(on, data, 1, tmp_path / "on")[-1] and calls
    calls.clear()
    off = MultiModalTask(st, _CountingGt(), None, width=8, depth=2, lr=1e-3)
    off.gate_registration(0.2, 0.5)
    off.start_adversarial()
    assert "L_reg" not in _fit(off, data, 1, tmp_path / "off")[-1] and not calls


# -- E_s / G_s as in the author's code: instance norm and a dense latent code (issue 13 item 3) ----------------
def test_structure_vae_behaves_alike_in_train_and_eval_mode_with_instance_norm():
    torch.manual_seed(0)
    z = torch.randn(3, *latent_shape(SIZE, 4, 3))
    s = (torch.rand(3, 1, SIZE, SIZE) < 0.1).float()
    for norm, same in (("instance", True), ("batch", False)):
        task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3, norm=norm)
        G, E = task.nets["G_s"], task.nets["E_s"]
        with torch.no_grad():
            for _ in range(3):  # a few training-mode passes move BatchNorm's running statistics
                G(z * 3 + 1), E(s)
            out_train, enc_train = G(z), E(s)[0]
            G.eval(), E.eval()
            out_eval, enc_eval = G(z), E(s)[0]
        assert torch.allclose(out_train, out_eval, atol=1e-6) is same, norm
        assert torch.allclose(enc_train, enc_eval, atol=1e-6) is same, norm


def test_dense_latent_reaches_the_whole_map():
    torch.manual_seed(0)
    size = 64  # latent 8 x 8: the convolutions alone reach ~3 latent entries, not the opposite quarter
    zs = latent_shape(size, 4, 3)
    z = torch.randn(1, *zs)
    dz = z.clone()
    dz[0, :, 0, 0] += 5.0  # one latent position, top-left
    for dense, reaches in ((True, True), (False, False)):
        # norm "none": instance norm's per-map statistics would spread any change everywhere by themselves
        G = Decoder(4, 1, 8, 3, "none", dense, size).eval()
        with torch.no_grad():
            for w in G.parameters():  # weights large enough for a change to survive sigmoid(small logits)
                w.normal_(0, 0.3)
            diff = (G(dz) - G(z)).abs()[0, 0]
        far = diff[size // 2 :, size // 2 :]  # the opposite quarter of the map
        assert bool(far.max() > 1e-4) is reaches, dense
        assert diff[:8, :8].max() > 1e-4  # the entry's own corner changes either way
    with pytest.raises(ValueError, match="image_size"):
        Decoder(4, 1, 8, 3, dense=True)
    with pytest.raises(ValueError, match="image_size"):
        VAEEncoder(1, 4, 8, 3, dense=True)


def test_dense_encoder_shapes_and_task_defaults_follow_the_code():
    task = StructureGenTask(SIZE, z_ch=4, width=8, stages=3)
    assert task.nets["G_s"].mix is not None and task.nets["E_s"].dense  # dense latent by default
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for n in ("E_s", "G_s") for m in task.nets[n].modules())
    mean, logvar = task.nets["E_s"]((torch.rand(2, 1, SIZE, SIZE) < 0.1).float())
    assert mean.shape == logvar.shape == (2, *task.z_shape)


@pytest.mark.slow
def test_quick_structure_stage_gives_organ_like_maps_from_an_encoder_that_carries_its_input(tmp_path):
    """Issue 13 item 3 end to end: the quick preset's structure stage on the notebook's data (seed 0, ~90 s). The
    earlier preset (KL 0.01, D_s weight 1) gave 55 % / 42 % organ-like samples on seeds 0 / 1 and reconstructed
    training maps no better than the mean map; the sweep (benchmarks/ch04_structure_sweep.py) has the rest."""
    from medsynth.models import structsynth_run as pipe
    from medsynth.train_chapters import brain_struct_data

    p = pipe.PRESETS["quick"]
    train, test = brain_struct_data(p, None, 0)
    task, _ = pipe.train_structure(p, train, tmp_path, 0, "cpu")
    assert task.nets["G_s"].threshold.item() not in (0.0, 0.5)  # calibrated on samples, not a default
    d = structure_diversity(task, train, test, seed=0)
    assert d["organ_like_share"] >= 0.75
    assert d["pairwise_generated"] >= 0.6 * d["pairwise_real"]  # varied, not one map
    rec, const = reconstruction_error(task, train.s_struct, train.s_struct)
    assert rec < 0.95 * const  # E_s's latent carries the map
