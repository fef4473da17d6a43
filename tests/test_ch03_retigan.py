"""RetiGAN (chapter 03): the three-term D loss by hand, smoothed negatives, per-scale weights, data flow."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medsynth.blocks import count_params
from medsynth.discriminators import MultiScaleDiscriminator
from medsynth.models.retigan import (
    LAMBDAS,
    RetiGANTask,
    SharedScaleDiscriminator,
    TreePhotoDataset,
    discriminator_counts,
    smooth_edges,
    tree_input,
)
from medsynth.models.vessel_data import VesselSet
from medsynth.training import StepContext


def _tiny(**kw) -> RetiGANTask:
    args = dict(ngf=4, n_down=2, n_blocks=1, ndf=4, n_layers_d=2, vgg_features="off", seed=0)
    return RetiGANTask(**{**args, **kw})


def _ctx(task) -> StepContext:
    return StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler("cpu", enabled=False), False)


class MeanD(nn.Module):
    """A stub D: per scale k, features [x.mean(1)], score = (k + 1) * channel-mean of the input."""

    def __init__(self, num_d: int = 2) -> None:
        super().__init__()
        self.num_d = num_d
        self.w = nn.Parameter(torch.ones(()))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, features=False):
        self.inputs.append(x.detach().clone())
        return [
            [x.mean(1, keepdim=True) * self.w, (k + 1) * x.mean(1, keepdim=True) * self.w] for k in range(self.num_d)
        ]


def _batch(n=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(n, 2, size, size, generator=g) * 2 - 1
    dst = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    return {"src": src, "dst": dst, "dst_smooth": dst * 0.5}


def test_d_loss_three_terms_by_hand():
    task = _tiny()
    task.nets["D"] = MeanD(2)
    b = _batch()
    fake = torch.full_like(b["dst"], 0.25)
    terms, _ = task.d_terms(b["src"], b["dst"], fake, b["dst_smooth"])

    def lsgan(img, target):  # sum over scales k of mean(((k+1) * mean_c[src, img] - target)^2)
        m = torch.cat([b["src"], img], 1).mean(1, keepdim=True)
        return sum((((k + 1) * m - target) ** 2).mean() for k in range(2))

    assert terms["real"].item() == pytest.approx(lsgan(b["dst"], 1.0).item(), rel=1e-6)
    assert terms["fake"].item() == pytest.approx(lsgan(fake, 0.0).item(), rel=1e-6)
    assert terms["smooth"].item() == pytest.approx(lsgan(b["dst_smooth"], 0.0).item(), rel=1e-6)
    assert set(terms) == {"real", "fake", "smooth"}
    # without smoothed negatives the smooth term is gone, the others unchanged
    task.smooth_negatives = False
    terms2, _ = task.d_terms(b["src"], b["dst"], fake, None)
    assert set(terms2) == {"real", "fake"} and terms2["real"].item() == pytest.approx(terms["real"].item())
    task.smooth_negatives = True
    with pytest.raises(ValueError, match="dst_smooth"):
        task.d_terms(b["src"], b["dst"], fake, None)


def test_train_step_d_is_the_sum_and_g_uses_normalised_lambdas():
    task = _tiny(vgg_features="random")
    logs = task.train_step(_batch(), _ctx(task))
    assert logs["D"].item() == pytest.approx((logs["D_real"] + logs["D_fake"] + logs["D_smooth"]).item(), rel=1e-6)
    s = sum(LAMBDAS)
    g = (LAMBDAS[0] * logs["G_adv"] + LAMBDAS[1] * logs["G_vgg"] + LAMBDAS[2] * logs["G_fm"]) / s
    assert logs["G"].item() == pytest.approx(g.item(), rel=1e-5)
    assert (task.w_adv, task.w_vgg, task.w_fm) == pytest.approx((1 / 111, 100 / 111, 10 / 111))
    raw = _tiny(normalise_lambdas=False, lambdas=(2.0, 3.0, 4.0))
    assert (raw.w_adv, raw.w_vgg, raw.w_fm) == (2.0, 3.0, 4.0)
    no_smooth = _tiny(smooth_negatives=False).train_step(_batch(), _ctx(task))
    assert "D_smooth" not in no_smooth


def test_which_tensor_is_input_and_which_target():
    task = _tiny()
    d = MeanD(2)
    task.nets["D"] = d
    seen = {}
    task.nets["G"].register_forward_pre_hook(lambda m, i: seen.__setitem__("g_in", i[0].clone()))
    b = _batch()
    task.train_step(b, _ctx(task))
    assert torch.equal(seen["g_in"], b["src"])  # G sees the tree + FOV, never the photograph
    real, fake_d, smooth = d.inputs[:3]  # D pass order: real pair, fake pair, smooth pair
    assert torch.equal(real, torch.cat([b["src"], b["dst"]], 1))
    assert torch.equal(smooth, torch.cat([b["src"], b["dst_smooth"]], 1))
    assert torch.equal(fake_d[:, :2], b["src"]) and not torch.equal(fake_d[:, 2:], b["dst"])


def test_tree_input_channels():
    ves = torch.zeros(1, 1, 4, 4)
    ves[0, 0, 1, 2] = 1
    fov = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    fov[0, 0, 0, 0] = False
    x = tree_input(ves, fov)
    assert x[0, 0, 1, 2] == 1 and x[0, 0, 0, 0] == -1 and x[0, 1, 0, 0] == -1 and x[0, 1, 3, 3] == 1


def test_smoothed_negatives_differ_only_near_edges():
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    disk = (((yy - 24) ** 2 + (xx - 24) ** 2) < 12**2).float()
    photo = (disk * 1.6 - 0.8)[None, None].expand(1, 3, 48, 48).contiguous()
    xb, band = smooth_edges(photo, dilate=2, blur_sigma=1.5, return_mask=True)
    diff = (xb - photo).abs().amax(1)[0]
    r = torch.sqrt((yy - 24) ** 2 + (xx - 24) ** 2)
    assert diff[(r - 12).abs() > 5].max() == 0  # far from the circle: untouched, exactly
    assert diff[~band[0, 0]].max() == 0 and band[0, 0][(r - 12).abs() < 1].all()
    assert diff[(r - 12).abs() < 1].mean() > 0.1  # at the edge: smoothed

    def gy(im):
        return (im[0, 0, 1:] - im[0, 0, :-1]).abs().max()

    assert gy(xb) < 0.8 * gy(photo)  # the sharpest step is gone
    wide, _ = smooth_edges(photo, dilate=4, return_mask=True)
    assert (wide - photo).abs().sum() > (xb - photo).abs().sum()  # a wider band smooths more pixels


def test_independent_scale_weights_vs_shared():
    ind = MultiScaleDiscriminator(5, 3, ndf=8, n_layers=2, norm="instance", padding=2)
    sh = SharedScaleDiscriminator(5, 3, ndf=8, n_layers=2, norm="instance", padding=2)
    ptrs = [{p.data_ptr() for p in d.parameters()} for d in ind.ds]
    assert not (ptrs[0] & ptrs[1]) and not (ptrs[1] & ptrs[2])
    assert count_params(ind) == 3 * count_params(sh)
    with torch.no_grad():  # change scale 0 only: scales 1, 2 unchanged
        x = torch.randn(1, 5, 32, 32)
        before = [o.clone() for o in ind(x)]
        for p in ind.ds[0].parameters():
            p.add_(0.1)
        after = ind(x)
    assert not torch.allclose(before[0], after[0])
    assert torch.equal(before[1], after[1]) and torch.equal(before[2], after[2])
    # the shared D applies the same network to the pooled input: scale 1 == scale-0 net on avg-pooled x
    from medsynth.blocks import avg_downsample

    with torch.no_grad():
        assert torch.allclose(sh(x)[1], sh.d(avg_downsample(x)))
    counts = discriminator_counts(ndf=64)
    assert counts["independent"] == 3 * counts["shared (walk-through code)"]


def test_dataset_crops_tree_photo_and_smooth_copy_together():
    g = torch.Generator().manual_seed(0)
    data = VesselSet(
        torch.rand(2, 3, 16, 16, generator=g) * 2 - 1,
        (torch.rand(2, 1, 16, 16, generator=g) > 0.8).float(),
        torch.ones(2, 1, 16, 16, dtype=torch.bool),
        ["a", "b"],
    )
    ds = TreePhotoDataset(data, crop=8, per_image=3)
    assert len(ds) == 6
    torch.manual_seed(5)
    it = ds[4]  # image 1
    full_src, full_dst, full_sm = ds.src[1], ds.dst[1], ds.dst_smooth[1]
    # find the window by matching the photograph and check the tree and smooth copy come from the same one
    found = False
    for fl in ([], [-1], [-2], [-1, -2]):
        for y in range(9):
            for x in range(9):

                def win(t, y=y, x=x, fl=fl):
                    return t[:, y : y + 8, x : x + 8].flip(fl) if fl else t[:, y : y + 8, x : x + 8]

                if torch.equal(win(full_dst), it["dst"]):
                    assert torch.equal(win(full_src), it["src"]) and torch.equal(win(full_sm), it["dst_smooth"])
                    found = True
    assert found


def test_feature_matching_uses_one_set_of_discriminator_weights():
    """pix2pixHD's order (G step before D step): the logged G_fm and G_adv equal those computed by hand with copies
    of G and D taken before the step; D moves afterwards. (D-before-G would score fake features on an updated D.)"""
    import copy

    from medsynth.losses import feature_matching_loss

    task = _tiny()
    b = _batch()
    G0, D0 = copy.deepcopy(task.nets["G"]), copy.deepcopy(task.nets["D"])
    order: list[str] = []
    for k, opt in task.opts.items():
        opt.register_step_post_hook(lambda o, a, kw, k=k: order.append(k))
    logs = task.train_step(b, _ctx(task))
    with torch.no_grad():
        fake = G0(b["src"])
        f_fake = D0(torch.cat([b["src"], fake], 1), features=True)
        f_real = D0(torch.cat([b["src"], b["dst"]], 1), features=True)
        fm, adv = feature_matching_loss(f_fake, f_real), task.gan(f_fake, True)
    assert logs["G_fm"].item() == pytest.approx(fm.item(), rel=1e-5) and fm.item() > 0
    assert logs["G_adv"].item() == pytest.approx(adv.item(), rel=1e-5)
    assert order == ["G", "D"]
    assert all(not torch.equal(a, c) for a, c in zip(D0.parameters(), task.nets["D"].parameters(), strict=True))
