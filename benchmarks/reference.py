"""``bench.py --reference PATH...``: our pix2pix / pix2pixHD against the official networks, interleaved.

PATH is the user's own checkout of ``junyanz/pytorch-CycleGAN-and-pix2pix`` (U-Net + PatchGAN) and/or
``NVIDIA/pix2pixHD`` (global / local generator + multi-scale D); nothing of them is copied into this
repository: their ``models/networks.py`` is imported from the checkout at run time. Each pair of steps is
timed in alternation on the same tensors, so the ratio (reference / ours; > 1 means ours is faster) survives
the load of a shared machine. Two reference variants:

* ``networks``: the official networks inside our step (same losses, same fused Adam, D frozen during the G
  update): the ratio isolates the network code;
* ``as shipped``: the official step as its ``train.py`` runs it -- ``torch.optim.Adam`` with torch's default
  (single-tensor on the CPU) implementation; pix2pixHD's G backward also runs through an unfrozen D, whose
  gradients its D ``zero_grad`` then discards (NVIDIA's ``pix2pixHD_model.py`` / ``train.py``).

Not the official code's VGG loss: NVIDIA's ``Vgg19`` downloads ImageNet weights at construction, so both sides
use the course's VGG19 with random features (the same network and FLOPs). Both sides use one loss code for
LSGAN / feature matching (NVIDIA's weighting: 4 / (n_layers + 1) per layer, 1 / num_D per scale).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import timing
import torch
from torch import nn


class ReferenceError_(ValueError):
    """A --reference path that is not a checkout of one of the two repositories."""


def load_networks(checkout: Path) -> tuple[str, Any]:
    """(``"junyanz"`` or ``"nvidia"``, the imported ``models/networks.py``) of a checkout."""
    path = Path(checkout).expanduser() / "models" / "networks.py"
    if not path.is_file():
        raise ReferenceError_(
            f"--reference {checkout}: no models/networks.py (expected a checkout of "
            "junyanz/pytorch-CycleGAN-and-pix2pix or NVIDIA/pix2pixHD)"
        )
    text = path.read_text()
    kind = "nvidia" if "class LocalEnhancer" in text else "junyanz" if "class UnetSkipConnectionBlock" in text else None
    if kind is None:
        raise ReferenceError_(
            f"--reference {checkout}: {path} defines neither UnetSkipConnectionBlock (junyanz) "
            "nor LocalEnhancer (NVIDIA)"
        )
    name = f"_medsynth_ref_{kind}_networks"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return kind, mod


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def biases_before_instancenorm(net: nn.Module) -> int:
    """Parameters of conv biases that an InstanceNorm follows directly (the norm subtracts the per-channel mean,
    so such a bias cancels exactly and never affects the output)."""
    total = 0
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            kids = list(seq.children())
            for a, b in pairwise(kids):
                if (
                    isinstance(a, (nn.Conv2d, nn.ConvTranspose2d))
                    and a.bias is not None
                    and isinstance(b, nn.InstanceNorm2d)
                ):
                    total += a.bias.numel()
    return total


def _lsgan(preds: list, real: bool) -> torch.Tensor:
    """LSGAN over the last output of every scale (NVIDIA GANLoss with getIntermFeat)."""
    return sum(torch.mean((p[-1] - (1.0 if real else 0.0)) ** 2) for p in preds)


def _fm(fake: list, real: list, n_layers: int = 3, lam: float = 10.0) -> torch.Tensor:
    w = 4.0 / (n_layers + 1) / len(fake)
    return sum(
        w * lam * torch.mean(torch.abs(f - r.detach()))
        for pf, pr in zip(fake, real, strict=True)
        for f, r in zip(pf[:-1], pr[:-1], strict=True)
    )


class RefPix2Pix:
    """junyanz's ``unet_256`` + ``basic`` D (batch norm, dropout), the pix2pix objective (vanilla GAN + 100 L1)."""

    def __init__(self, nets: Any, num_downs: int, shipped: bool) -> None:
        norm = functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
        self.G = nets.UnetGenerator(3, 1, num_downs, 64, norm_layer=norm, use_dropout=True)
        self.D = nets.NLayerDiscriminator(4, 64, 3, norm_layer=norm)
        self.bce = nn.BCEWithLogitsLoss()
        self.shipped = shipped

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def step(self, src: torch.Tensor, dst: torch.Tensor, opts: dict[str, torch.optim.Optimizer]) -> None:
        fake = self.G(src)
        self.D.requires_grad_(True)
        pf, pr = self.D(torch.cat([src, fake.detach()], 1)), self.D(torch.cat([src, dst], 1))
        loss_d = 0.5 * (self.bce(pf, torch.zeros_like(pf)) + self.bce(pr, torch.ones_like(pr)))
        opts["D"].zero_grad()
        loss_d.backward()
        opts["D"].step()
        self.D.requires_grad_(False)
        pg = self.D(torch.cat([src, fake], 1))
        loss_g = self.bce(pg, torch.ones_like(pg)) + 100.0 * torch.mean(torch.abs(fake - dst))
        opts["G"].zero_grad()
        loss_g.backward()
        opts["G"].step()
        self.D.requires_grad_(True)


class RefPix2PixHD:
    """NVIDIA's ``local`` (or ``global``) generator + 2-scale D with intermediate features, pix2pixHD's objective."""

    def __init__(self, nets: Any, local: bool, shipped: bool, vgg: nn.Module) -> None:
        if local:
            self.G = nets.LocalEnhancer(3, 1, 32, 4, 9, 1, 3, norm_layer=nn.InstanceNorm2d)
        else:
            self.G = nets.GlobalGenerator(3, 1, 64, 4, 9, norm_layer=nn.InstanceNorm2d)
        self.G.apply(nets.weights_init)
        self.D = nets.MultiscaleDiscriminator(4, 64, 3, nn.InstanceNorm2d, False, 2, True)
        self.D.apply(nets.weights_init)
        self.vgg, self.shipped = vgg, shipped

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def step(self, src: torch.Tensor, dst: torch.Tensor, opts: dict[str, torch.optim.Optimizer]) -> None:
        fake = self.G(src)
        pf = self.D(torch.cat([src, fake.detach()], 1))
        pr = self.D(torch.cat([src, dst], 1))
        loss_d = 0.5 * (_lsgan(pf, False) + _lsgan(pr, True))
        if not self.shipped:  # our skeleton: D frozen while G's loss flows through it
            self.D.requires_grad_(False)
        pg = self.D(torch.cat([src, fake], 1))
        loss_g = _lsgan(pg, True) + _fm(pg, pr) + 10.0 * self.vgg(fake, dst)
        opts["G"].zero_grad()
        loss_g.backward()
        opts["G"].step()
        self.D.requires_grad_(True)
        opts["D"].zero_grad()
        loss_d.backward()
        opts["D"].step()


def _ours(model: str, size: int, local: bool = True) -> Any:
    from medsynth.blocks import init_weights
    from medsynth.models.pix2pix import Pix2PixTask
    from medsynth.models.pix2pixhd import Pix2PixHDGenerator, Pix2PixHDTask
    from medsynth.training import adam

    if model == "pix2pix":
        return Pix2PixTask(3, 1, 8 if size >= 256 else 7, 64, 64)
    task = Pix2PixHDTask(3, 1, 32, vgg_features="random")
    if not local:
        task.nets["G"] = init_weights(Pix2PixHDGenerator(3, 1, 32, None, 4, 9, 3, local=False))
        task.opts["G"] = adam(task.nets["G"].parameters(), 2e-4)
    return task


def compare(
    paths: list[Path], device: torch.device, reps: int, warmup: int, sizes: tuple[int, ...] = (256, 512)
) -> list[dict[str, Any]]:
    """Rows: model, size, parameter counts, our / reference step medians and the ratio, per reference variant."""
    from medsynth.losses import VGGLoss
    from medsynth.training import StepContext, adam

    mods = dict(load_networks(p) for p in paths)
    sync = timing.sync_for(device)
    rows = []
    jobs = []
    if "junyanz" in mods:
        jobs += [("pix2pix U-Net + PatchGAN", "pix2pix", True, s) for s in sizes]
    if "nvidia" in mods:
        jobs += [
            (f"pix2pixHD {'local' if loc else 'global'} + 2-scale D", "pix2pixhd", loc, s)
            for loc in (False, True)
            for s in sizes
        ]
    for label, model, local, size in jobs:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        src = (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(device)
        dst = (torch.rand(1, 1, size, size, generator=g) * 2 - 1).to(device)
        ours = _ours(model, size, local)
        for net in ours.nets.values():
            net.to(device).train()
        ctx = StepContext(ours, device, None, torch.amp.GradScaler(device.type, enabled=False), False)
        refs = {}
        for variant in ("networks", "as shipped"):
            shipped = variant == "as shipped"
            if model == "pix2pix":
                ref = RefPix2Pix(mods["junyanz"], 8 if size >= 256 else 7, shipped)
            else:
                ref = RefPix2PixHD(mods["nvidia"], local, shipped, VGGLoss("random").to(device))
            for net in ref.nets().values():
                net.to(device).train()
            make = (
                (lambda ps: torch.optim.Adam(ps, 2e-4, betas=(0.5, 0.999))) if shipped else (lambda ps: adam(ps, 2e-4))
            )
            refs[variant] = (ref, {k: make(n.parameters()) for k, n in ref.nets().items()})

        batch = {"src": src, "dst": dst}

        def ours_step(task=ours, ctx=ctx, batch=batch) -> None:  # this iteration's objects, bound now
            ctx.step += 1
            task.train_step(batch, ctx)

        fns = {"ours": ours_step}
        for variant, (ref, opts) in refs.items():
            fns[variant] = functools.partial(ref.step, src, dst, opts)
        secs = timing.interleaved(fns, reps, warmup, sync)
        flops = timing.count_flops(ours_step)
        ref0 = refs["networks"][0]
        row = {
            "model": label,
            "size": size,
            "batch": 1,
            "params_ours": {k: n_params(v) for k, v in ours.nets.items()},
            "params_ref": {k: n_params(v) for k, v in ref0.nets().items()},
            "ref_biases_before_instancenorm": {k: biases_before_instancenorm(v) for k, v in ref0.nets().items()},
            "ours_biases_before_instancenorm": {k: biases_before_instancenorm(v) for k, v in ours.nets.items()},
            "flops_step_ours": flops,
            "ours": timing.summary(secs["ours"]),
        }
        for variant in refs:
            row[variant] = timing.summary(secs[variant])
            pair = sorted(r / o for r, o in zip(secs[variant], secs["ours"], strict=True))
            row[f"ratio_{variant}"] = pair[len(pair) // 2]  # median of the per-round ratios
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
        del ours, refs
    return rows


def explain(r: dict[str, Any]) -> str:
    """The parameter difference, split into conv biases in front of InstanceNorm (which the norm cancels: no
    effect on any output) and the rest (in local mode: the global generator's 7x7 output head, which our
    generator keeps but does not use and NVIDIA's LocalEnhancer drops)."""
    diff = sum(r["params_ref"].values()) - sum(r["params_ours"].values())
    if diff == 0:
        return "identical"
    bias = sum(r["ref_biases_before_instancenorm"].values()) - sum(r["ours_biases_before_instancenorm"].values())
    rest = diff - bias
    text = f"{diff:+,}: {bias:,} reference conv biases before InstanceNorm (cancelled by the norm: no effect)"
    return text + (f"; {rest:+,} other (our unused global head in local mode)" if rest else "")


def _ratios(r: dict[str, Any], variant: str) -> str:
    """Median of the per-round ratios, then the ratio of the medians (they differ when the load changed)."""
    return f"{r[f'ratio_{variant}']:.2f} ({r[variant]['median_s'] / r['ours']['median_s']:.2f})"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | px | params ours | params reference | where they differ | ours s/step "
        "| reference (networks) s/step | ratio | reference (as shipped) s/step | ratio |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['size']} | {sum(r['params_ours'].values()):,} "
            f"| {sum(r['params_ref'].values()):,} | {explain(r)} | {r['ours']['median_s']:.3f} "
            f"| {r['networks']['median_s']:.3f} | {_ratios(r, 'networks')} "
            f"| {r['as shipped']['median_s']:.3f} | {_ratios(r, 'as shipped')} |"
        )
    return "\n".join(lines) + (
        "\n\nratio = reference / ours: the median of the interleaved per-round ratios, "
        "in brackets the ratio of the medians (> 1: ours is faster)."
        if rows
        else ""
    )
