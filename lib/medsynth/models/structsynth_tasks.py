"""Chapter 04 training tasks: the structure-map generator (Sec. 4.2.2, Fig. 7, Eqs. 6-11) and the
multi-modal generator (Sec. 4.3, Fig. 8, Eqs. 13-18), both run through :class:`medsynth.training.Trainer`.

All adversarial terms are least-squares, as the thesis writes them (``||D(.) - 1||^2``, ``||D(.)||^2``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from medsynth.models.structsynth import (CondUNet, Decoder, LatentDisc, VAEEncoder, VGGDisc, kl_divergence, latent_shape,
                                         one_hot_map, reparameterise)
from medsynth.models.structsynth_data import pick_lesions
from medsynth.structure import fuse_noise_torch
from medsynth.training import GANTask, StepContext, set_requires_grad

__all__ = ["StructureGenTask", "MultiModalTask", "ls"]


def ls(pred: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    """``||pred - target||_2^2`` as a mean (the thesis's squared-norm losses)."""
    t = torch.full_like(pred, float(target)) if not isinstance(target, torch.Tensor) else target.expand_as(pred)
    return F.mse_loss(pred.float(), t.float())


def _adam(params, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))  # Sec. 5.2.1: Adam, beta1 = 0.5


class StructureGenTask(GANTask):
    """Fig. 7: E_s/G_s (VAE), D_z (latent D), D_s (structure-map D), G_m (mask generator).

    Batch keys ``s_struct`` (structure map s, Algorithm 1) and ``m_struct`` (mask m, Algorithm 2).
    One step: G_m on Eq. 6; D_z on Eq. 8 and D_s on Eq. 10; then E_s and G_s together on
    Eq. 7 + Eq. 9 + Eq. 11 (the thesis lists the stages, not an update order or weights: all 1).
    ``kl_weight`` adds the classic VAE KL term (0 = as written: D_z does its job).
    """

    def __init__(self, image_size: int = 64, z_ch: int = 8, width: int = 16, stages: int = 4,
                 lr: float = 2e-4, kl_weight: float = 0.0) -> None:
        self.z_shape = latent_shape(image_size, z_ch, stages)
        self.kl_weight = kl_weight
        self.nets = {"E_s": VAEEncoder(1, z_ch, width, stages), "G_s": Decoder(z_ch, 1, width, stages),
                     "D_z": LatentDisc(z_ch, 2 * width), "D_s": VGGDisc(1, 0, width, 3),
                     "G_m": CondUNet(1, 1, 0, width, 3, out_act="sigmoid")}
        n = self.nets
        self.opts = {"G_m": _adam(n["G_m"].parameters(), lr), "D_z": _adam(n["D_z"].parameters(), lr),
                     "D_s": _adam(n["D_s"].parameters(), lr),
                     "EG": _adam(list(n["E_s"].parameters()) + list(n["G_s"].parameters()), lr)}

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        n = self.nets
        s, m = batch["s_struct"], batch["m_struct"]
        with ctx.autocast():
            m_r = n["G_m"](s)
            loss_m = ls(m_r, m)                                            # Eq. 6
        ctx.update(loss_m, "G_m")
        with ctx.autocast():
            mean, logvar = n["E_s"](s)
            f = reparameterise(mean, logvar)                               # f = f_mean + exp(.5 f_logvar) z
            s_r = n["G_s"](f)
            z = torch.randn_like(mean)
            s_g = n["G_s"](z)
            loss_dz = ls(n["D_z"](z), 1.0) + ls(n["D_z"](f.detach()), 0.0)        # Eq. 8
        ctx.update(loss_dz, "D_z")
        with ctx.autocast():
            loss_ds = ls(n["D_s"](s)[0], 1.0) + ls(n["D_s"](s_g.detach())[0], 0.0)  # Eq. 10
        ctx.update(loss_ds, "D_s")
        set_requires_grad([n["D_z"], n["D_s"], n["G_m"]], False)
        with ctx.autocast():
            loss_r = ls(s_r, s) + (m_r.detach() * s_r).float().pow(2).mean()       # Eq. 7
            loss_g1 = ls(n["D_z"](f), 1.0)                                         # Eq. 9
            m_g = n["G_m"](s_g)
            loss_g2 = ls(n["D_s"](s_g)[0], 1.0) + (m_g * s_g).float().pow(2).mean()  # Eq. 11
            kl = kl_divergence(mean.float(), logvar.float())
            loss = loss_r + loss_g1 + loss_g2 + self.kl_weight * kl
        ctx.update(loss, "EG")
        set_requires_grad([n["D_z"], n["D_s"], n["G_m"]], True)
        return {"L_m": loss_m, "L_r": loss_r, "L_d1": loss_dz, "L_g1": loss_g1, "L_d2": loss_ds,
                "L_g2": loss_g2, "KL": kl}

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s_g = G_s(z)`` and ``m_g = G_m(s_g)`` (Sec. 4.6), both (B,1,H,W) in [0,1]."""
        s_g = self.nets["G_s"](z)
        return s_g, self.nets["G_m"](s_g)

    def sample(self, batch: dict) -> list[torch.Tensor]:
        s = batch["s_struct"]
        mean, _ = self.nets["E_s"](s)
        s_g, m_g = self.generate(torch.randn_like(mean))
        return [s * 2 - 1, self.nets["G_s"](mean) * 2 - 1, self.nets["G_m"](s) * 2 - 1, s_g * 2 - 1, m_g * 2 - 1]


class MultiModalTask(GANTask):
    """Fig. 8: conditional U-Net G + VGG11-style ACGAN D, with optional G_t (Eq. 16) and G_l (Eq. 15).

    ``phase="pretrain"``: Eq. 18 on real structure maps ``s_i`` of every modality (self-supervised).
    ``phase="adversarial"``: Eqs. 13-17 on structure maps ``s_g`` sampled from the frozen G_s, masks
    ``m_g = G_m(s_g)``, real lesion labels drawn (and, with ``mask_filter``, filtered by ``m_g``).
    Table 1 switches: ``input_mode`` ("structure" | "noise", row A), ``mask_filter`` (B),
    ``noise_fusion`` (Eq. 12; C), ``reg_loss`` (D), ``les_loss`` (E).
    """

    def __init__(self, struct: StructureGenTask | None = None, translator: torch.nn.Module | None = None,
                 segmenter: torch.nn.Module | None = None, n_mod: int = 4, width: int = 16, depth: int = 3,
                 lr: float = 2e-4, phase: str = "pretrain", input_mode: str = "structure", mask_filter: bool = True,
                 noise_fusion: bool = True, reg_loss: bool = True, les_loss: bool = True,
                 alpha1: float = 0.5, alpha2: float = 0.6, use_lesion: bool = True) -> None:
        if phase not in ("pretrain", "adversarial") or input_mode not in ("structure", "noise"):
            raise ValueError(f"bad phase {phase!r} or input_mode {input_mode!r}")
        self.n_mod, self.phase, self.input_mode = n_mod, phase, input_mode
        self.mask_filter, self.noise_fusion, self.use_lesion = mask_filter, noise_fusion, use_lesion
        self.reg_loss, self.les_loss = reg_loss and translator is not None, les_loss and segmenter is not None
        self.alpha1, self.alpha2 = alpha1, alpha2
        self.z_shape = struct.z_shape if struct is not None else None
        self.nets = {"G": CondUNet(2, 1, n_mod, width, depth, "tanh"), "D": VGGDisc(1, n_mod, width, 3)}
        self.frozen = {}
        if struct is not None:
            self.frozen.update(G_s=struct.nets["G_s"], G_m=struct.nets["G_m"])
        if translator is not None:
            self.frozen["G_t"] = translator
        if segmenter is not None:
            self.frozen["G_l"] = segmenter
        for k, net in self.frozen.items():
            set_requires_grad(net, False)
            self.nets[k] = net
        self.opts = {"G": _adam(self.nets["G"].parameters(), lr), "D": _adam(self.nets["D"].parameters(), lr)}

    # -- inputs -------------------------------------------------------------------------------------
    def fuse(self, s: torch.Tensor, m: torch.Tensor, lesion: torch.Tensor) -> torch.Tensor:
        """``concat(s', l)`` (Sec. 4.3), ``s'`` from Eq. 12 (or ``s`` / pure noise for Table 1 rows C / A)."""
        if self.input_mode == "noise":
            s_in = torch.rand_like(s)
        elif self.noise_fusion:
            s_in = fuse_noise_torch(s, m, self.alpha1, self.alpha2)
        else:
            s_in = s
        return torch.cat([s_in, lesion if self.use_lesion else torch.zeros_like(lesion)], 1)

    @torch.no_grad()
    def random_inputs(self, n: int, pool: torch.Tensor, device) -> dict[str, torch.Tensor]:
        """Sec. 4.6 / Fig. 10: ``s_g = G_s(z)`` (binarised), ``m_g = G_m(s_g)``, a filtered lesion, the fused input."""
        z = torch.randn(n, *self.z_shape, device=device)
        s_g = (self.nets["G_s"](z) > 0.5).float()
        m_g = (self.nets["G_m"](s_g) > 0.5).float()
        s_g = s_g * (1 - m_g)  # the structure lives inside the organ (Eq. 7/11 push G_s there as well)
        lab = pick_lesions(pool.to(device), m_g, None, self.mask_filter)
        return {"s": s_g, "m": m_g, "label": lab, "input": self.fuse(s_g, m_g, lab)}

    def _expand(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every modality for every input: (B,C,H,W) -> (n_mod*B,C,H,W) plus modality indices (modality-major)."""
        b = len(inp)
        idx = torch.arange(self.n_mod, device=inp.device).repeat_interleave(b)
        return inp.repeat(self.n_mod, 1, 1, 1), idx

    def generate(self, inp: torch.Tensor) -> torch.Tensor:
        """``x_{g,i} = G(concat(s', l), one_hot(i))`` for every i: (B,2,H,W) -> (B,n_mod,H,W) in [-1,1]."""
        big, idx = self._expand(inp)
        return self.nets["G"](big, idx).reshape(self.n_mod, len(inp), *inp.shape[-2:]).transpose(0, 1)

    # -- training -----------------------------------------------------------------------------------
    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        for net in self.frozen.values():
            net.eval()
        x, b = batch["x"], len(batch["x"])
        x_flat = x.transpose(0, 1).reshape(-1, 1, *x.shape[-2:])          # modality-major, like _expand
        if self.phase == "pretrain":                                        # Eq. 18
            s = batch["s"].transpose(0, 1).reshape(-1, 1, *x.shape[-2:])
            m = batch["m"].transpose(0, 1).reshape(-1, 1, *x.shape[-2:])
            lab = batch["label"].repeat(self.n_mod, 1, 1, 1)
            idx = torch.arange(self.n_mod, device=x.device).repeat_interleave(b)
            with ctx.autocast():
                x_g = self.nets["G"](self.fuse(s, m, lab), idx)
                loss = ls(x_g, x_flat) + ls(x_g * m, x_flat * m)
            ctx.update(loss, "G")
            return {"L_p": loss}
        rnd = self.random_inputs(b, batch["label"], x.device)
        big, idx = self._expand(rnd["input"])
        onehot = one_hot_map(idx, self.n_mod, (1, 1))
        with ctx.autocast():
            x_g = self.nets["G"](big, idx)
            d_r, c_r = self.nets["D"](x_flat)
            d_f, c_f = self.nets["D"](x_g.detach())
            loss_d = ls(d_r, 1.0) + ls(d_f, 0.0) + ls(c_r, onehot) + ls(c_f, onehot)      # Eq. 13
        ctx.update(loss_d, "D")
        set_requires_grad(self.nets["D"], False)
        out = {"L_D": loss_d}
        with ctx.autocast():
            d_f, c_f = self.nets["D"](x_g)
            loss_g = ls(d_f, 1.0) + ls(c_f, onehot)                                      # Eq. 14
            loss = loss_g
            if self.les_loss:                                                            # Eq. 15
                l_g = torch.sigmoid(self.nets["G_l"](x_g))
                out["L_les"] = ls(l_g, rnd["label"].repeat(self.n_mod, 1, 1, 1))
                loss = loss + out["L_les"]
            if self.reg_loss:                                                            # Eq. 16
                out["L_reg"] = self.registration_loss(x_g.reshape(self.n_mod, b, 1, *x.shape[-2:]))
                loss = loss + out["L_reg"]
        ctx.update(loss, "G")
        set_requires_grad(self.nets["D"], True)
        out["L_g"] = loss_g
        return out

    def registration_loss(self, x_g: torch.Tensor) -> torch.Tensor:
        """Eq. 16: ``sum_j sum_{i != j} ||x_{g,i} - G_t(x_{g,j}, one_hot(i))||^2`` (x_g: (n_mod,B,1,H,W))."""
        pairs = [(i, j) for j in range(self.n_mod) for i in range(self.n_mod) if i != j]
        src = torch.cat([x_g[j] for i, j in pairs])
        tgt_idx = torch.cat([torch.full((x_g.shape[1],), i, device=x_g.device) for i, j in pairs])
        x_gt = self.nets["G_t"](src, tgt_idx)
        return ls(x_gt, torch.cat([x_g[i] for i, j in pairs]))

    def sample(self, batch: dict) -> list[torch.Tensor]:
        if self.phase == "pretrain":
            inp = self.fuse(batch["s"][:, 3:4], batch["m"][:, 3:4], batch["label"])
        else:
            inp = self.random_inputs(len(batch["x"]), batch["label"], batch["x"].device)["input"]
        x_g = self.generate(inp)
        return [inp[:, :1] * 2 - 1] + [x_g[:, i:i + 1] for i in range(self.n_mod)]
