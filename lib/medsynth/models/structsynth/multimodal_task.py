"""Chapter 04's multi-modal generator task (Sec. 4.3, Fig. 8, Eqs. 13-18) and Eq. 16's modality pairs.

:data:`MM_WEIGHTS` holds the author's code's loss weights (``"code"``, the default) and the thesis as printed
(``"printed"``, every weight 1; an ablation switch), as :data:`.structure_task.STRUCT_WEIGHTS` does for stage A.
"""

from __future__ import annotations

import torch

from medsynth.models.structsynth.data import pick_lesions
from medsynth.models.structsynth.networks import CondUNet, VGGDisc, one_hot_map
from medsynth.models.structsynth.objectives import adam_b1, lsgan, mse
from medsynth.models.structsynth.structure_task import StructureGenTask
from medsynth.structure import fuse_noise_torch
from medsynth.training import GANTask, StepContext, set_requires_grad

__all__ = ["MM_WEIGHTS", "MultiModalTask", "modality_pairs"]

#: Stage-B loss weights. "code": GET_MRI/model.py (D real x5, D fake x3, G adversarial x3, class terms x5,
#: Eq. 16 x20 per pair, Eq. 18 x5). "printed": all 1. (The code's Eq. 15 uses per-class weights on a
#: 5-class softmax; with one binary tumour channel here it keeps weight 1 in both.)
MM_WEIGHTS = {
    "code": dict(d_real=5.0, d_fake=3.0, g_adv=3.0, cls=5.0, reg=20.0, les=1.0, pre=5.0),
    "printed": dict(d_real=1.0, d_fake=1.0, g_adv=1.0, cls=1.0, reg=1.0, les=1.0, pre=1.0),
}


def modality_pairs(n_mod: int) -> list[tuple[int, int]]:
    """Eq. 16's ordered pairs ``(i, j)``, ``i != j``: ``x_{g,i}`` is compared with ``G_t(x_{g,j}, one_hot(i))``."""
    return [(i, j) for j in range(n_mod) for i in range(n_mod) if i != j]


class MultiModalTask(GANTask):
    """Fig. 8: conditional U-Net G + VGG11-style ACGAN D, with optional G_t (Eq. 16) and G_l (Eq. 15).

    ``phase="pretrain"``: Eq. 18 on real slices: ONE structure map per slice (``s_struct``, with its mask
    and lesion) and every modality ``i`` as a target, ``x_{g,i} = G(concat(s', l), one_hot(i))`` — Eq. 18
    writes one ``s`` for the sum over ``i``, and the author's code feeds one map (from T1) to all four
    outputs. (A map per modality would let G read the modality off the map and ignore ``one_hot(i)``;
    the synthesis then makes four copies of one slice.) ``phase="adversarial"``: Eqs. 13-17 on maps
    ``s_g`` from the frozen G_s, masks ``m_g = G_m(s_g)``, real lesion labels (filtered by ``m_g`` with
    ``mask_filter``). Table 1 switches: ``input_mode`` ("structure" | "noise", row A), ``mask_filter``
    (B), ``noise_fusion`` (Eq. 12; C), ``reg_loss`` (D), ``les_loss`` (E). ``weights``: :data:`MM_WEIGHTS`.

    Two switches keep the Eq. 18 pretraining's modality contrast through the adversarial phase (issue 13
    item 4): :meth:`gate_registration` (the preset's ``reg_gate``) drops Eq. 16 when the frozen G_t does not
    translate better than copying its input -- a G_t that returns (nearly) its input makes Eq. 16 pull every
    ``x_{g,i}`` towards every other, i.e. four copies of one image; and :meth:`start_adversarial` with
    ``fresh_adam`` gives G a new Adam at the phase change, so that the moment estimates of Eq. 18's gradients
    (a different loss) do not set the size of the first steps on Eqs. 13-17.
    """

    def __init__(
        self,
        struct: StructureGenTask | None = None,
        translator: torch.nn.Module | None = None,
        segmenter: torch.nn.Module | None = None,
        n_mod: int = 4,
        width: int = 16,
        depth: int = 3,
        lr: float = 2e-5,
        phase: str = "pretrain",
        input_mode: str = "structure",
        mask_filter: bool = True,
        noise_fusion: bool = True,
        reg_loss: bool = True,
        les_loss: bool = True,
        alpha1: float = 0.5,
        alpha2: float = 0.6,
        use_lesion: bool = True,
        weights: str | dict = "code",
        cond_every: bool = False,
        adv_maps: str = "generated",
        anchor: float = 0.0,
        freeze_bn: bool = False,
    ) -> None:
        if phase not in ("pretrain", "adversarial") or input_mode not in ("structure", "noise"):
            raise ValueError(f"bad phase {phase!r} or input_mode {input_mode!r}")
        if adv_maps not in ("generated", "real"):
            raise ValueError(f"adv_maps must be 'generated' or 'real', got {adv_maps!r}")
        self.adv_maps, self.anchor, self.freeze_bn = adv_maps, anchor, freeze_bn
        self.n_mod, self.phase, self.input_mode = n_mod, phase, input_mode
        self.mask_filter, self.noise_fusion, self.use_lesion = mask_filter, noise_fusion, use_lesion
        self.reg_loss, self.les_loss = reg_loss and translator is not None, les_loss and segmenter is not None
        self.alpha1, self.alpha2 = alpha1, alpha2
        self.w = dict(MM_WEIGHTS[weights]) if isinstance(weights, str) else dict(weights)
        self.z_shape = struct.z_shape if struct is not None else None
        self.nets = {"G": CondUNet(2, 1, n_mod, width, depth, "tanh", cond_every), "D": VGGDisc(1, n_mod, width, 3)}
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
        self.lr = lr
        self.reg_gated = False  # set by gate_registration when Eq. 16 was dropped
        self.opts = {"G": adam_b1(self.nets["G"].parameters(), lr), "D": adam_b1(self.nets["D"].parameters(), lr)}

    def gate_registration(self, gt_score: float, copy_score: float) -> bool:
        """Keep Eq. 16 only if G_t beats "copy the input" (``gt_score > copy_score``, e.g. SSIM of G_t's
        translations and of the untranslated inputs against the target modality, measured on training slices).
        Returns whether Eq. 16 stays on; ``reg_gated`` records that the gate turned it off."""
        keep = bool(gt_score > copy_score)
        self.reg_gated = self.reg_loss and not keep
        self.reg_loss = self.reg_loss and keep
        return self.reg_loss

    def start_adversarial(self, fresh_adam: bool = True) -> None:
        """Switch from Eq. 18 pretraining to Eqs. 13-17; ``fresh_adam``: G's Adam restarts (moments and step
        count cleared, same lr and betas), so the adversarial phase's steps are not scaled by the moment
        estimates of the pretraining's gradients. D's Adam is untouched (D is not trained in pretraining)."""
        self.phase = "adversarial"
        if fresh_adam:
            old = self.opts["G"]
            lr = old.param_groups[0].get("initial_lr", old.param_groups[0]["lr"])
            self.opts["G"] = adam_b1(self.nets["G"].parameters(), lr, old.defaults["betas"][0])

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
        s_g = self.nets["G_s"].binarise(self.nets["G_s"](z))  # the density-matched cut D_s was trained at
        m_g = (self.nets["G_m"](s_g) > 0.5).float()
        s_g = s_g * (1 - m_g)  # as the author's code stores s: (1 - mask) * s
        lab = pick_lesions(pool.to(device), m_g, None, self.mask_filter)
        return {"s": s_g, "m": m_g, "label": lab, "input": self.fuse(s_g, m_g, lab)}

    @torch.no_grad()
    def real_map_inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """The author's GET_MRI/train.py: the adversarial phase reads the structure maps and masks extracted from
        the real training slices (``s_struct``, ``m_struct``), with a lesion drawn from other slices and filtered by
        the mask; the thesis (Sec. 4.3) says maps from G_s. ``adv_maps="real"`` selects this reading."""
        s, m = batch["s_struct"], batch["m_struct"]
        lab = pick_lesions(batch["label"], m, None, self.mask_filter)
        return {"s": s, "m": m, "label": lab, "input": self.fuse(s, m, lab)}

    def _expand(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every modality for every input: (B,C,H,W) -> (n_mod*B,C,H,W) plus modality indices (modality-major)."""
        idx = torch.arange(self.n_mod, device=inp.device).repeat_interleave(len(inp))
        return inp.repeat(self.n_mod, 1, 1, 1), idx

    def flat_real(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real slices (B,n_mod,H,W) -> (n_mod*B,1,H,W) modality-major with their modality indices, in the same
        order as :meth:`_expand` (so Eq. 13's class targets of real and generated images line up)."""
        idx = torch.arange(self.n_mod, device=x.device).repeat_interleave(len(x))
        return x.transpose(0, 1).reshape(-1, 1, *x.shape[-2:]), idx

    def generate(self, inp: torch.Tensor) -> torch.Tensor:
        """``x_{g,i} = G(concat(s', l), one_hot(i))`` for every i: (B,2,H,W) -> (B,n_mod,H,W) in [-1,1]."""
        big, idx = self._expand(inp)
        return self.nets["G"](big, idx).reshape(self.n_mod, len(inp), *inp.shape[-2:]).transpose(0, 1)

    # -- training -----------------------------------------------------------------------------------
    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        for net in self.frozen.values():
            net.eval()
        w = self.w
        x, b = batch["x"], len(batch["x"])
        x_flat, real_idx = self.flat_real(x)  # modality-major, like _expand
        if self.phase == "pretrain":  # Eq. 18
            with ctx.autocast():
                loss = self.pretrain_loss(batch, x_flat)
            ctx.update(w["pre"] * loss, "G")
            return {"L_p": loss}
        if self.freeze_bn:  # keep G's BatchNorm statistics those of the Eq. 18 pretraining (see freeze_bn)
            for mod in self.nets["G"].modules():
                if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                    mod.eval()
        rnd = (
            self.random_inputs(b, batch["label"], x.device)
            if self.adv_maps == "generated"
            else self.real_map_inputs(batch)
        )
        big, idx = self._expand(rnd["input"])
        if not torch.equal(idx, real_idx):
            raise RuntimeError("real and generated modality orders differ")
        onehot = one_hot_map(idx, self.n_mod, (1, 1))
        with ctx.autocast():
            x_g = self.nets["G"](big, idx)
            d_r, c_r = self.nets["D"](x_flat)
            d_f, c_f = self.nets["D"](x_g.detach())
            loss_d = (
                w["d_real"] * lsgan(d_r, True)
                + w["d_fake"] * lsgan(d_f, False)
                + w["cls"] * (mse(c_r, onehot) + mse(c_f, onehot))
            )  # Eq. 13
        ctx.update(loss_d, "D")
        set_requires_grad(self.nets["D"], False)
        out = {"L_D": loss_d}
        with ctx.autocast():
            d_f, c_f = self.nets["D"](x_g)
            loss_g = lsgan(d_f, True) + mse(c_f, onehot)  # Eq. 14
            loss = w["g_adv"] * lsgan(d_f, True) + w["cls"] * mse(c_f, onehot)
            if self.les_loss:  # Eq. 15
                l_g = torch.sigmoid(self.nets["G_l"](x_g))
                out["L_les"] = mse(l_g, rnd["label"].repeat(self.n_mod, 1, 1, 1))
                loss = loss + w["les"] * out["L_les"]
            if self.anchor:  # Eq. 18 kept (see anchor)
                out["L_p"] = self.pretrain_loss(batch, x_flat)
                loss = loss + self.anchor * w["pre"] * out["L_p"]
            if self.reg_loss:  # Eq. 16
                out["L_reg"] = self.registration_loss(x_g.reshape(self.n_mod, b, 1, *x.shape[-2:]))
                loss = loss + w["reg"] * out["L_reg"]
        ctx.update(loss, "G")
        set_requires_grad(self.nets["D"], True)
        out["L_g"] = loss_g
        return out

    def pretrain_loss(self, batch: dict, x_flat: torch.Tensor) -> torch.Tensor:
        """Eq. 18 on real slices: one map ``s_struct`` per slice (with its mask and lesion) for every modality."""
        big, idx = self._expand(self.fuse(batch["s_struct"], batch["m_struct"], batch["label"]))
        m = batch["m"].transpose(0, 1).reshape(-1, 1, *x_flat.shape[-2:])  # m_i of each modality
        x_g = self.nets["G"](big, idx)
        return mse(x_g, x_flat) + mse(x_g * m, x_flat * m)

    def registration_loss(self, x_g: torch.Tensor) -> torch.Tensor:
        """Eq. 16: ``sum_j sum_{i != j} ||x_{g,i} - G_t(x_{g,j}, one_hot(i))||^2`` (x_g: (n_mod,B,1,H,W)), as a mean."""
        pairs = modality_pairs(self.n_mod)
        src = torch.cat([x_g[j] for i, j in pairs])
        tgt_idx = torch.cat([torch.full((x_g.shape[1],), i, device=x_g.device) for i, j in pairs])
        return mse(self.nets["G_t"](src, tgt_idx), torch.cat([x_g[i] for i, j in pairs]))

    def sample(self, batch: dict) -> list[torch.Tensor]:
        if self.phase == "pretrain":
            inp = self.fuse(batch["s_struct"], batch["m_struct"], batch["label"])
        else:
            inp = self.random_inputs(len(batch["x"]), batch["label"], batch["x"].device)["input"]
        x_g = self.generate(inp)
        return [inp[:, :1] * 2 - 1] + [x_g[:, i : i + 1] for i in range(self.n_mod)]
