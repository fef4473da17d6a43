"""Chapter 02 (MedGAN): CasNet wiring and parameter counts, the D-feature perceptual loss by hand,
the D:G = 1:3 schedule, which tensor reaches the discriminator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medsynth.blocks import count_params
from medsynth.discriminators import PatchDiscriminator, receptive_field
from medsynth.models.medgan import CasNet, MedGANTask, d_perceptual_loss, ublock
from medsynth.models.pix2pix import UNetGenerator
from medsynth.training import StepContext


def _ctx(task) -> StepContext:
    return StepContext(task, torch.device("cpu"), None, torch.amp.GradScaler(enabled=False), False)


def test_ublock_param_count_by_hand() -> None:
    # ngf=1, 5 stages, 1 -> 1 channel (4x4 kernels; conv biases only where no BatchNorm follows):
    # outer: down 1*1*16, up (2->1) 2*16 + 1 bias              = 49
    # level 2 (1 -> 2): down 32, BN(2) 4, up (4->1) 64, BN(1) 2    = 102
    # level 3 (2 -> 4): down 128, BN 8, up (8->2) 256, BN 4       = 396
    # level 4 (4 -> 8): down 512, BN 16, up (16->4) 1024, BN 8     = 1560
    # innermost (8 -> 8): down 1024, up (8->8) 1024, BN 16        = 2064
    assert count_params(ublock(1, 1, num_downs=5, ngf=1)) == 4171


def test_paper_width_ublock_is_pix2pix_unet_without_dropout() -> None:
    u = ublock(1, 1, num_downs=8, ngf=64)
    assert count_params(u) == count_params(UNetGenerator(1, 1, 8, 64)) == 54_407_809
    assert not any(isinstance(m, torch.nn.Dropout) for m in u.modules())  # MedGAN feeds no noise
    assert any(isinstance(m, torch.nn.Dropout) for m in UNetGenerator(1, 1, 8, 64).modules())


@pytest.mark.parametrize("n_blocks", [1, 3, 6])
def test_casnet_params_are_n_ublocks(n_blocks: int) -> None:
    net = CasNet(1, 1, n_blocks, num_downs=5, ngf=4)
    assert len(net.blocks) == n_blocks
    assert count_params(net) == n_blocks * count_params(ublock(1, 1, 5, 4))
    # the first block takes the input's channels, later blocks the previous output's
    assert count_params(CasNet(3, 1, n_blocks, 5, 4)) == count_params(ublock(3, 1, 5, 4)) + (
        n_blocks - 1
    ) * count_params(ublock(1, 1, 5, 4))


def test_casnet_chains_blocks_without_cross_block_skips() -> None:
    torch.manual_seed(0)
    net = CasNet(1, 1, 4, num_downs=5, ngf=4).eval()
    seen = []
    hooks = [
        b.register_forward_hook(lambda m, i, o: seen.append((i[0].detach().clone(), o.detach().clone())))
        for b in net.blocks
    ]
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        outs = net(x, all_outputs=True)
        y = net(x)
    for h in hooks:
        h.remove()
    assert torch.equal(seen[0][0], x)
    for k in range(1, 4):
        assert torch.equal(seen[k][0], seen[k - 1][1])  # block k refines block k-1's output image
    assert torch.equal(y, outs[-1]) and torch.equal(y, seen[3][1])
    with torch.no_grad():  # nothing else reaches the last block: recomputing it from block 3's output agrees
        assert torch.allclose(net.blocks[3](outs[2]), y)
    assert y.shape == (2, 1, 32, 32) and y.abs().max() <= 1


def test_casnet_gradient_reaches_every_block() -> None:
    net = CasNet(1, 1, 3, num_downs=5, ngf=2)
    net(torch.rand(2, 1, 32, 32)).mean().backward()
    for b in net.blocks:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in b.parameters() if p.dim() == 4)


def test_16x16_patch_discriminator() -> None:
    d = PatchDiscriminator(2, 8, n_layers=1)
    assert receptive_field(d) == 16
    assert len(d(torch.zeros(1, 2, 64, 64), features=True)) == 3  # 2 hidden layers + score map


def test_d_perceptual_loss_by_hand() -> None:
    torch.manual_seed(1)
    d = PatchDiscriminator(2, ndf=2, n_layers=1).eval()  # eval: BatchNorm uses running stats (0, 1)
    src, fake, real = (torch.rand(2, 1, 16, 16) * 2 - 1 for _ in range(3))
    g0, g1 = d.groups[0][0], d.groups[1][0]

    def feats(img):  # the two hidden layers written out with plain convolutions
        x = torch.cat([src, img], 1)
        h0 = F.leaky_relu(F.conv2d(x, g0.weight, g0.bias, stride=2, padding=1), 0.2)
        h1 = F.conv2d(h0, g1.weight, None, stride=1, padding=1) / (1 + 1e-5) ** 0.5
        return [h0, F.leaky_relu(h1, 0.2)]

    w = (0.5, 2.0, 3.0)
    hf, hr = feats(fake), feats(real)
    by_hand = (
        w[0] * (fake - real).abs().mean() + w[1] * (hf[0] - hr[0]).abs().mean() + w[2] * (hf[1] - hr[1]).abs().mean()
    )
    with torch.no_grad():
        ff, rf = d(torch.cat([src, fake], 1), features=True), d(torch.cat([src, real], 1), features=True)
    total, terms = d_perceptual_loss(fake, real, ff, rf, w)
    assert torch.allclose(total, by_hand, atol=1e-6)
    assert torch.allclose(terms[0], (fake - real).abs().mean())  # layer 0 is the pixel L1
    only_pixel, _ = d_perceptual_loss(fake, real, ff, rf, (1.0, 0.0, 0.0))
    assert torch.allclose(only_pixel, F.l1_loss(fake, real))
    with pytest.raises(ValueError, match="3 perceptual weights"):
        d_perceptual_loss(fake, real, ff, rf, (1.0, 1.0))


def _tiny(**kw) -> MedGANTask:
    return MedGANTask(n_blocks=2, num_downs=5, ngf=2, ndf=2, style=False, seed=0, **kw)


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"src": torch.rand(2, 1, 32, 32, generator=g) * 2 - 1, "dst": torch.rand(2, 1, 32, 32, generator=g) * 2 - 1}


@pytest.mark.parametrize("d_every, expected", [(3, [1, 4, 7]), (2, [1, 3, 5, 7]), (1, list(range(1, 8)))])
def test_discriminator_updated_once_per_d_every_generator_steps(d_every: int, expected: list[int]) -> None:
    task, ctx, b = _tiny(d_every=d_every), None, _batch()
    ctx = _ctx(task)
    d_changed, g_changed, logged = [], [], []
    for step in range(1, 8):
        ctx.step = step
        d0 = [p.detach().clone() for p in task.nets["D"].parameters()]
        g0 = [p.detach().clone() for p in task.nets["G"].parameters()]
        out = task.train_step(b, ctx)
        if any(not torch.equal(a, p) for a, p in zip(d0, task.nets["D"].parameters(), strict=True)):
            d_changed.append(step)
        if any(not torch.equal(a, p) for a, p in zip(g0, task.nets["G"].parameters(), strict=True)):
            g_changed.append(step)
        logged.append(out["D_updated"])
    assert d_changed == expected
    assert g_changed == list(range(1, 8))  # the generator trains every iteration
    assert [s for s, f in zip(range(1, 8), logged, strict=True) if f] == expected


def test_discriminator_sees_condition_and_the_right_image() -> None:
    task, b = _tiny(), _batch()
    ctx = _ctx(task)
    ctx.step = 1
    seen = []
    h = task.nets["D"].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    task.train_step(b, ctx)
    h.remove()
    # D step: (src, fake), (src, dst); G step: (src, fake) with grad, (src, dst) for the perceptual targets
    assert len(seen) == 4
    for x in seen:
        assert x.shape[1] == 2 and torch.equal(x[:, :1], b["src"])  # channel 0: the condition (input)
    assert torch.equal(seen[1][:, 1:], b["dst"]) and torch.equal(seen[3][:, 1:], b["dst"])  # channel 1: the target
    assert not torch.equal(seen[0][:, 1:], b["dst"]) and torch.allclose(seen[0][:, 1:], seen[2][:, 1:])


def test_ablation_switches_change_the_objective() -> None:
    b = _batch()
    logs = {}
    for name, kw in {"cgan": dict(perceptual=False), "perc": dict(perceptual=True)}.items():
        task = _tiny(**kw)
        ctx = _ctx(task)
        ctx.step = 1
        logs[name] = task.train_step(b, ctx)
    assert "perceptual" not in logs["cgan"] and {"perceptual", "P0", "P1", "P2"} <= set(logs["perc"])
    assert torch.allclose(logs["perc"]["P0"], logs["perc"]["L1"])
