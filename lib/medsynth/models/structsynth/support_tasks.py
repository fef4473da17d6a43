"""Chapter 04's supporting tasks: the modality translator G_t (Sec. 4.4, Fig. 9, Eqs. 19-21), whose frozen
copy gives Eq. 16, and the tumour segmenter (Eq. 22) that Table 5 trains on real and synthetic data."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medsynth.models.structsynth.networks import CondUNet, VGGDisc, one_hot_map
from medsynth.models.structsynth.objectives import adam_b1, lsgan, mse
from medsynth.training import GANTask, StepContext, set_requires_grad

__all__ = ["TranslatorTask", "SegTask"]


class TranslatorTask(GANTask):
    """Fig. 9 / Sec. 4.4: conditional U-Net G_t (one-hot target modality at the bottleneck) and a
    VGG11-style D_t with real/fake and modality heads, trained CycleGAN-style on real slices.

    Eq. 19 sums the cycle loss over every ordered pair (i, j); each step here draws one random target
    ``j != i`` per slice (``all_pairs=True``: every pair, 3x the cost at four modalities). Eq. 20's class
    target for the translated image is printed as ``i``; the image is of modality ``j`` (what G_t is asked
    for), so the target here is ``j``. Eqs. 19-21 carry no weights; ``w_cycle`` defaults to 1 as written.
    """

    def __init__(
        self,
        n_mod: int = 4,
        width: int = 16,
        depth: int = 3,
        lr: float = 2e-5,
        w_cycle: float = 1.0,
        all_pairs: bool = False,
    ) -> None:
        self.n_mod, self.w_cycle, self.all_pairs = n_mod, w_cycle, all_pairs
        self.nets = {"G_t": CondUNet(1, 1, n_mod, width, depth, "tanh"), "D_t": VGGDisc(1, n_mod, width, 3)}
        self.opts = {
            "G_t": adam_b1(self.nets["G_t"].parameters(), lr),
            "D_t": adam_b1(self.nets["D_t"].parameters(), lr),
        }

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        x = batch["x"]
        x_i = x.transpose(0, 1).reshape(-1, 1, *x.shape[-2:])
        i = torch.arange(self.n_mod, device=x.device).repeat_interleave(len(x))
        if self.all_pairs:
            k = self.n_mod - 1
            x_i, i = x_i.repeat(k, 1, 1, 1), i.repeat(k)
            j = (i + torch.arange(1, self.n_mod, device=x.device).repeat_interleave(len(x) * self.n_mod)) % self.n_mod
        else:
            j = (i + torch.randint(1, self.n_mod, i.shape, device=x.device)) % self.n_mod
        oh_i, oh_j = (one_hot_map(k_, self.n_mod, (1, 1)) for k_ in (i, j))
        G, D = self.nets["G_t"], self.nets["D_t"]
        with ctx.autocast():
            x_t = G(x_i, j)
            d_r, c_r = D(x_i)
            d_f, c_f = D(x_t.detach())
            loss_d = lsgan(d_r, True) + lsgan(d_f, False) + mse(c_r, oh_i) + mse(c_f, oh_j)  # Eq. 20
        ctx.update(loss_d, "D_t")
        set_requires_grad(D, False)
        with ctx.autocast():
            d_f, c_f = D(x_t)
            loss_g = lsgan(d_f, True) + mse(c_f, oh_j)  # Eq. 21
            loss_cyc = mse(G(x_t, i), x_i)  # Eq. 19
            loss = loss_g + self.w_cycle * loss_cyc
        ctx.update(loss, "G_t")
        set_requires_grad(D, True)
        return {"L_d3": loss_d, "L_g3": loss_g, "L_cycle": loss_cyc}

    def sample(self, batch: dict) -> list[torch.Tensor]:
        src = batch["x"][:, 3:4]  # FLAIR -> every modality
        return [src] + [self.nets["G_t"](src, torch.full((len(src),), k, device=src.device)) for k in range(self.n_mod)]


class SegTask(GANTask):
    """Tumour segmenter (U-Net, logits). Eq. 22 names a squared error; Sec. 4.5 says to use the
    segmenter's own loss, for U-Net the weighted cross-entropy: binary cross-entropy with the tumour
    class weighted by ``pos_weight`` here. Sec. 5.2.1 / the author's SEGMENTATION code: Adam lr 1e-5 (code
    2e-5), beta1 0.5. Batch keys ``image`` (B,C,H,W) in [-1,1], ``label`` (B,1,H,W)."""

    def __init__(
        self,
        in_ch: int = 1,
        width: int = 16,
        depth: int = 3,
        lr: float = 1e-5,
        pos_weight: float = 3.0,
        beta1: float = 0.5,
    ) -> None:
        self.nets = {"seg": CondUNet(in_ch, 1, 0, width, depth, out_act="none")}
        self.opts = {"seg": adam_b1(self.nets["seg"].parameters(), lr, beta1)}
        self.pos_weight = pos_weight

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            logits = self.nets["seg"](batch["image"]).float()
            pw = torch.tensor(self.pos_weight, device=logits.device)
            loss = F.binary_cross_entropy_with_logits(logits, batch["label"], pos_weight=pw)
        ctx.update(loss, "seg")
        return {"L_seg": loss}
