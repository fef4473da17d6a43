"""Chapter 04 helpers: modality translator G_t + D_t (Sec. 4.4, Eqs. 19-21), the tumour segmenter G_l
(Sec. 4.5, Eq. 22), the synthetic data set (Sec. 4.6, Fig. 10) and the Table 5 mixing experiment
(Sec. 5.6.1). Every trainable piece is a :class:`~medsynth.training.GANTask` run by the shared Trainer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medsynth.metrics import dice
from medsynth.models.structsynth import CondUNet, VGGDisc, one_hot_map
from medsynth.models.structsynth_data import SegDataset
from medsynth.models.structsynth_tasks import MultiModalTask, _adam, ls
from medsynth.training import GANTask, StepContext, TrainConfig, Trainer, eval_mode, set_requires_grad

__all__ = ["TranslatorTask", "SegTask", "predict", "seg_dice", "synthesise", "TABLE5", "table5_run"]


class TranslatorTask(GANTask):
    """Fig. 9 / Sec. 4.4: conditional U-Net G_t (one-hot target modality at the bottleneck) and a
    VGG11-style D_t with real/fake and modality heads, trained CycleGAN-style on real slices.

    Each real ``x_i`` goes to a random other modality ``j``: ``x_{t,i,j} = G_t(x_i, one_hot(j))`` and
    back, ``x_{cr,j,i} = G_t(x_{t,i,j}, one_hot(i))``. Eq. 20's class target for the translated image
    is printed as ``i``; the image is of modality ``j`` (that is what G_t is asked for), so the target
    here is ``j``. Eq. 19-21 carry no weights; ``w_cycle`` defaults to 1 as written.
    """

    def __init__(self, n_mod: int = 4, width: int = 16, depth: int = 3, lr: float = 2e-4, w_cycle: float = 1.0) -> None:
        self.n_mod, self.w_cycle = n_mod, w_cycle
        self.nets = {"G_t": CondUNet(1, 1, n_mod, width, depth, "tanh"), "D_t": VGGDisc(1, n_mod, width, 3)}
        self.opts = {"G_t": _adam(self.nets["G_t"].parameters(), lr), "D_t": _adam(self.nets["D_t"].parameters(), lr)}

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        x = batch["x"]
        b = len(x)
        x_i = x.transpose(0, 1).reshape(-1, 1, *x.shape[-2:])
        i = torch.arange(self.n_mod, device=x.device).repeat_interleave(b)
        j = (i + torch.randint(1, self.n_mod, i.shape, device=x.device)) % self.n_mod
        oh_i, oh_j = (one_hot_map(k, self.n_mod, (1, 1)) for k in (i, j))
        G, D = self.nets["G_t"], self.nets["D_t"]
        with ctx.autocast():
            x_t = G(x_i, j)
            d_r, c_r = D(x_i)
            d_f, c_f = D(x_t.detach())
            loss_d = ls(d_r, 1.0) + ls(d_f, 0.0) + ls(c_r, oh_i) + ls(c_f, oh_j)          # Eq. 20
        ctx.update(loss_d, "D_t")
        set_requires_grad(D, False)
        with ctx.autocast():
            d_f, c_f = D(x_t)
            loss_g = ls(d_f, 1.0) + ls(c_f, oh_j)                                           # Eq. 21
            loss_cyc = ls(G(x_t, i), x_i)                                                   # Eq. 19
            loss = loss_g + self.w_cycle * loss_cyc
        ctx.update(loss, "G_t")
        set_requires_grad(D, True)
        return {"L_d3": loss_d, "L_g3": loss_g, "L_cycle": loss_cyc}

    def sample(self, batch: dict) -> list[torch.Tensor]:
        x = batch["x"]
        src = x[:, 3:4]  # FLAIR -> every modality
        return [src] + [self.nets["G_t"](src, torch.full((len(x),), k, device=x.device)) for k in range(self.n_mod)]


class SegTask(GANTask):
    """Tumour segmenter (U-Net, logits). Eq. 22 names a squared error; Sec. 4.5 says to use the
    segmenter's own loss, for U-Net the weighted cross-entropy: binary cross-entropy with the tumour
    class weighted by ``pos_weight`` here. Batch keys ``image`` (B,C,H,W) in [-1,1], ``label`` (B,1,H,W)."""

    def __init__(self, in_ch: int = 1, width: int = 16, depth: int = 3, lr: float = 1e-3, pos_weight: float = 3.0) -> None:
        self.nets = {"seg": CondUNet(in_ch, 1, 0, width, depth, out_act="none")}
        self.opts = {"seg": torch.optim.Adam(self.nets["seg"].parameters(), lr=lr)}
        self.pos_weight = pos_weight

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            logits = self.nets["seg"](batch["image"]).float()
            pw = torch.tensor(self.pos_weight, device=logits.device)
            loss = F.binary_cross_entropy_with_logits(logits, batch["label"], pos_weight=pw)
        ctx.update(loss, "seg")
        return {"L_seg": loss}


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Tumour probabilities (N,1,H,W) from a segmenter in eval mode (training mode restored)."""
    dev = next(net.parameters()).device
    with eval_mode(net):
        return torch.cat([torch.sigmoid(net(images[k:k + batch_size].to(dev))).cpu()
                          for k in range(0, len(images), batch_size)])


def seg_dice(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(Dice, MSE) of a segmenter on held-out slices (the two columns of Tables 4-5); Dice over the whole set."""
    p = predict(net, images)
    return dice(p > 0.5, labels > 0.5), float(((p - labels) ** 2).mean())


@torch.no_grad()
def synthesise(task: MultiModalTask, pool: torch.Tensor, n: int, seed: int = 0, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Sec. 4.6 / Fig. 10: ``n`` synthetic labelled multi-modal slices from random latents.

    Returns ``s`` (structure map), ``m`` (mask from G_m), ``label`` (real lesion, augmented and
    filtered by ``m`` when the task's ``mask_filter`` is on), ``input`` (``concat(s', l)``) and ``x``
    (n, n_mod, H, W) in [-1, 1]. The global RNG is restored afterwards.
    """
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    dev = next(task.nets["G"].parameters()).device
    try:
        with eval_mode(task.nets.values()):
            parts = []
            for k in range(0, n, batch_size):
                r = task.random_inputs(min(batch_size, n - k), pool, dev)
                r["x"] = task.generate(r["input"])
                parts.append({key: v.cpu() for key, v in r.items()})
    finally:
        torch.random.set_rng_state(state)
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


#: Table 5 rows reproduced (NO., real fraction, synthetic multiple, mixing mode, thesis MSE, thesis Dice).
TABLE5 = [(1, 1.0, 0.0, "-", 0.026, 0.915), (2, 0.5, 0.0, "-", 0.032, 0.902), (3, 0.0, 1.0, "-", 0.205, 0.708),
          (6, 0.1, 1.0, "synthetic first", 0.031, 0.908), (10, 0.5, 0.5, "random mixing", 0.031, 0.904),
          (13, 1.0, 0.5, "random mixing", 0.023, 0.939), (24, 1.0, 1.0, "real first", 0.195, 0.795),
          (25, 1.0, 1.0, "synthetic first", 0.021, 0.940)]


def table5_run(real: SegDataset, synth: SegDataset, test: tuple[torch.Tensor, torch.Tensor], real_frac: float,
               synth_frac: float, mode: str, epochs: int, out_dir: str | Path, batch_size: int = 8, width: int = 16,
               depth: int = 3, seed: int = 0, device: str = "auto", lr: float = 1e-3) -> dict:
    """One Table 5 row (Sec. 5.6.1): train a fresh segmenter on ``real_frac`` of the real set plus
    ``synth_frac`` x |real| synthetic slices, then Dice/MSE on the real test slices.

    The thesis trains every row for the same number of iterations (100 epochs of the full real set);
    here ``epochs`` of the full real set. "random mixing" trains on the union; "synthetic first" /
    "real first" train on one source then the other, iterations split in proportion to their sizes.
    """
    g = np.random.default_rng(seed)
    n_real, n_syn = int(round(real_frac * len(real))), int(round(synth_frac * len(real)))
    r_idx, s_idx = g.permutation(len(real))[:n_real], g.permutation(len(synth))[:n_syn]
    if n_syn > len(synth):
        raise ValueError(f"row needs {n_syn} synthetic slices, the set has {len(synth)}")
    parts = {"real": SegDataset(real.images[r_idx], real.labels[r_idx]),
             "synthetic": SegDataset(synth.images[s_idx], synth.labels[s_idx])}
    total = max(1, epochs * len(real) // batch_size)
    task = SegTask(real.images.shape[1], width, depth, lr)
    if mode in ("-", "random mixing"):
        data = SegDataset(torch.cat([parts["real"].images, parts["synthetic"].images]),
                          torch.cat([parts["real"].labels, parts["synthetic"].labels]))
        stages = [("mixed", data, total)]
    else:
        order = ["synthetic", "real"] if mode == "synthetic first" else ["real", "synthetic"]
        n1 = len(parts[order[0]])
        k1 = max(1, round(total * n1 / (n_real + n_syn)))
        stages = [(order[0], parts[order[0]], k1), (order[1], parts[order[1]], max(1, total - k1))]
    done = 0
    for name, data, steps in stages:
        if len(data) == 0:
            continue
        cfg = TrainConfig(steps=steps, out_dir=Path(out_dir) / name, batch_size=min(batch_size, len(data)),
                          seed=seed, device=device, resume=False, progress=False, ckpt_every=0, log_every=max(1, steps))
        Trainer(task, data, cfg).fit()
        done += steps
    dice, mse = seg_dice(task.nets["seg"], *test)
    return {"dice": dice, "mse": mse, "steps": done, "n_real": n_real, "n_synthetic": n_syn}
