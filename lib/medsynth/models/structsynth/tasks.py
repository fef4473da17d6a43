"""Chapter 04 training tasks, each a :class:`~medsynth.training.GANTask` run by the shared Trainer:
the structure-map generator (Sec. 4.2.2, Fig. 7, Eqs. 6-11), the multi-modal generator (Sec. 4.3,
Fig. 8, Eqs. 13-18), the modality translator (Sec. 4.4, Eqs. 19-21) and the tumour segmenter (Eq. 22).

Adversarial terms are least-squares (the thesis writes ``||D(.) - 1||^2``, ``||D(.)||^2``):
:class:`medsynth.losses.GANLoss` ("lsgan", real 1 / fake 0). The thesis prints no loss weights; the
author's TensorFlow demo (quyili/MultimodalMedicalImagesSynthesis, ``code_demo/BRATS2015/Ours``) uses
weights far from 1. :data:`STRUCT_WEIGHTS` / :data:`MM_WEIGHTS` hold both: ``"code"`` (the default) and
``"printed"`` (every weight 1, the thesis as written; an ablation switch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medsynth.losses import GANLoss
from medsynth.models.structsynth.data import pick_lesions
from medsynth.models.structsynth.networks import (
    CondUNet,
    Decoder,
    LatentDisc,
    VAEEncoder,
    VGGDisc,
    kl_divergence,
    latent_shape,
    one_hot_map,
    reparameterise,
)
from medsynth.structure import fuse_noise_torch
from medsynth.training import GANTask, StepContext, adam, set_requires_grad

__all__ = [
    "STRUCT_WEIGHTS",
    "MM_WEIGHTS",
    "StructureGenTask",
    "MultiModalTask",
    "TranslatorTask",
    "SegTask",
    "straight_through",
    "density_threshold",
]

_LS = GANLoss("lsgan")

#: Stage-A loss weights. "code": GET_S_AND_MASK/model.py (D_z x10 per term, E_s's Eq. 9 x0.001 plus the
#: code's latent-moment terms x0.001, D_s x25 per term, G_s's Eq. 11 adversarial x0.1, Eq. 7 as
#: MSE x25 + L1 x10, the mask terms x1, G_m's Eq. 6 x15). "printed": all 1, no extra terms.
STRUCT_WEIGHTS = {
    "code": dict(d_z=10.0, g_z=0.001, moments=0.001, d_s=25.0, g_s=0.1, rec_mse=25.0, rec_l1=10.0, mask=1.0, m=15.0),
    "printed": dict(d_z=1.0, g_z=1.0, moments=0.0, d_s=1.0, g_s=1.0, rec_mse=1.0, rec_l1=0.0, mask=1.0, m=1.0),
}
#: Stage-B loss weights. "code": GET_MRI/model.py (D real x5, D fake x3, G adversarial x3, class terms x5,
#: Eq. 16 x20 per pair, Eq. 18 x5). "printed": all 1. (The code's Eq. 15 uses per-class weights on a
#: 5-class softmax; with one binary tumour channel here it keeps weight 1 in both.)
MM_WEIGHTS = {
    "code": dict(d_real=5.0, d_fake=3.0, g_adv=3.0, cls=5.0, reg=20.0, les=1.0, pre=5.0),
    "printed": dict(d_real=1.0, d_fake=1.0, g_adv=1.0, cls=1.0, reg=1.0, les=1.0, pre=1.0),
}


def _mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||pred - target||^2`` as a mean, in fp32 (class maps against one-hot matrices, reconstructions)."""
    return F.mse_loss(pred.float(), target.float().expand_as(pred))


def _adam(params, lr: float, beta1: float = 0.5) -> torch.optim.Adam:
    return adam(params, lr, betas=(beta1, 0.999))  # Sec. 5.2.1 and the code: Adam, beta1 = 0.5


def straight_through(p: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Binary in the forward pass (``p > threshold``), identity gradient in the backward pass.

    D_s compares real structure maps, exactly binary, with G_s's sigmoid maps: a soft map is told apart
    by its grey values alone and D_s wins from the first steps (L_d2 -> 0, G_s collapses). Showing
    D_s the binarised fake keeps the comparison about shapes; the gradient still reaches G_s.
    """
    return p + ((p > threshold).to(p.dtype) - p).detach()


def density_threshold(p: torch.Tensor, fraction: float) -> float:
    """The threshold ``t`` at which ``(p > t)`` has foreground fraction ``fraction`` (to one pixel).

    Real structure maps (Algorithm 1) have a fixed share of structure pixels; G_s's sigmoid maps cross 0.5
    on far fewer (or more) pixels, so ``p > 0.5`` shows D_s maps of the wrong density, which it tells apart
    at once. Thresholding at this ``t`` gives the fakes the real maps' density, and D_s must judge shapes.
    With ``k = round(fraction * p.numel())``, ``t`` is the midpoint between the k-th and (k+1)-th largest
    values of ``p``; ``k = 0`` gives ``max(p)`` (nothing above it), ``k = numel`` a value just below ``min(p)``.
    Ties at the cut make the fraction exact only up to the tied pixels.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    v = p.detach().flatten().float()
    n = v.numel()
    if n == 0:
        raise ValueError("density_threshold needs a non-empty tensor")
    k = int(round(fraction * n))
    if k == 0:
        return float(v.max())
    top = torch.topk(v, min(k + 1, n)).values
    if k == n:
        lo = float(top[-1])
        return lo - max(1e-6, abs(lo) * 1e-6)
    t = ((top[k - 1].double() + top[k].double()) / 2).float()  # the float32 the threshold buffer will hold
    if not top[k] < t < top[k - 1]:  # neighbours one float apart: the midpoint rounds onto one of them
        t = top[k]
    return float(t)


class StructureGenTask(GANTask):
    """Fig. 7: E_s/G_s (VAE), D_z (latent D), D_s (structure-map D), G_m (mask generator).

    Batch keys ``s_struct`` (structure map s, Algorithm 1) and ``m_struct`` (mask m, Algorithm 2).
    One step: G_m on Eq. 6; D_z on Eq. 8 and D_s on Eq. 10; then E_s and G_s together on Eq. 7 + 9 + 11.
    ``weights``: "code" | "printed" | a dict (:data:`STRUCT_WEIGHTS`). ``binarise_fake``: D_s sees
    :func:`straight_through` maps (off = the soft sigmoid, which collapses). ``threshold``: where those
    maps are cut: ``"density"`` (default) at :func:`density_threshold` of each batch of fakes, matched to the
    real maps' mean structure fraction (set by :meth:`calibrate_threshold`, else the batch's), or a float
    (0.5: the earlier fixed cut, an ablation: G_s's maps then have the wrong density and D_s wins again).
    The cut in use is kept in ``G_s.threshold`` (an exponential average over steps, re-calibrated on many
    samples by :meth:`calibrate_threshold` after training) so that :meth:`Decoder.binarise` matches it.
    Mask terms: Eq. 7's ``m_r = G_m(s)`` is a constant for the E_s/G_s update (detached: it depends on the
    real map only); Eq. 11's ``m_g = G_m(s_g)`` back-propagates through the frozen G_m into ``s_g``, as Eq. 11
    writes it a function of G_s. In Eq. 11 both G_m and the term ``||m_g x s_g||`` get the binarised
    (straight-through) ``s_g`` that D_s sees: G_m was trained on binary maps and reads a soft map as
    "no organ" (measured: mask = background everywhere), and the term then shrinks every pixel of G_s's maps.
    Neither term trains G_m (its weights are frozen there; the author's code
    puts G_m in G_s's optimiser instead). ``kl_weight`` adds the classic VAE KL (0: D_z does its job).
    """

    def __init__(
        self,
        image_size: int = 64,
        z_ch: int = 8,
        width: int = 16,
        stages: int = 4,
        lr: float = 2e-5,
        kl_weight: float = 0.0,
        weights: str | dict = "code",
        binarise_fake: bool = True,
        threshold: str | float = "density",
        threshold_momentum: float = 0.9,
    ) -> None:
        if not (threshold == "density" or isinstance(threshold, (int, float))):
            raise ValueError(f"threshold must be 'density' or a number, got {threshold!r}")
        self.z_shape = latent_shape(image_size, z_ch, stages)
        self.kl_weight, self.binarise_fake = kl_weight, binarise_fake
        self.threshold, self.threshold_momentum = threshold, threshold_momentum
        self.real_fraction: float | None = None  # the real maps' mean structure fraction (calibrate_threshold)
        self.w = dict(STRUCT_WEIGHTS[weights]) if isinstance(weights, str) else dict(weights)
        self.nets = {
            "E_s": VAEEncoder(1, z_ch, width, stages),
            "G_s": Decoder(z_ch, 1, width, stages),
            "D_z": LatentDisc(z_ch, 2 * width),
            "D_s": VGGDisc(1, 0, width, 3),
            "G_m": CondUNet(1, 1, 0, width, 3, out_act="sigmoid"),
        }
        n = self.nets
        self.opts = {
            "G_m": _adam(n["G_m"].parameters(), lr),
            "D_z": _adam(n["D_z"].parameters(), lr),
            "D_s": _adam(n["D_s"].parameters(), lr),
            "EG": _adam(list(n["E_s"].parameters()) + list(n["G_s"].parameters()), lr),
        }

        if not isinstance(threshold, str):
            self.nets["G_s"].threshold.fill_(float(threshold))

    def _cut(self, s_g: torch.Tensor, s: torch.Tensor) -> float:
        """This step's threshold for D_s (see ``threshold``); updates the ``G_s.threshold`` buffer."""
        buf = self.nets["G_s"].threshold
        if self.threshold != "density":
            return float(self.threshold)
        frac = self.real_fraction if self.real_fraction is not None else float(s.float().mean())
        t = density_threshold(s_g, frac)
        with torch.no_grad():
            buf.mul_(self.threshold_momentum).add_((1 - self.threshold_momentum) * t)
        return t

    def _ds_input(self, s_g: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        return straight_through(s_g, t) if self.binarise_fake else s_g

    @torch.no_grad()
    def calibrate_threshold(self, real_maps: torch.Tensor, n: int = 256, seed: int = 0, batch_size: int = 64) -> float:
        """Set ``G_s.threshold`` to the density-matched cut: the :func:`density_threshold` of ``n`` maps
        ``G_s(z)`` (eval mode, ``z`` drawn with ``seed``) at the mean structure fraction of ``real_maps`` (the
        real training maps ``s_struct``), which is also kept for the training steps. Returns the threshold."""
        self.real_fraction = float(real_maps.float().mean())
        if self.threshold != "density":
            return float(self.nets["G_s"].threshold)
        G = self.nets["G_s"]
        dev = G.threshold.device
        g = torch.Generator().manual_seed(seed)
        was = G.training
        G.eval()
        try:
            p = torch.cat(
                [
                    G(torch.randn(min(batch_size, n - k), *self.z_shape, generator=g).to(dev)).cpu()
                    for k in range(0, n, batch_size)
                ]
            )
        finally:
            G.train(was)
        t = density_threshold(p, self.real_fraction)
        G.threshold.fill_(t)
        return t

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        n, w = self.nets, self.w
        s, m = batch["s_struct"], batch["m_struct"]
        with ctx.autocast():
            m_r = n["G_m"](s)
            loss_m = _mse(m_r, m)  # Eq. 6
        ctx.update(w["m"] * loss_m, "G_m")
        with ctx.autocast():
            mean, logvar = n["E_s"](s)
            f = reparameterise(mean, logvar)  # f = f_mean + exp(.5 f_logvar) z
            s_r = n["G_s"](f)
            z = torch.randn_like(mean)
            s_g = n["G_s"](z)
            loss_dz = _LS(n["D_z"](z), True) + _LS(n["D_z"](f.detach()), False)  # Eq. 8
        ctx.update(w["d_z"] * loss_dz, "D_z")
        with ctx.autocast():
            t = self._cut(s_g.detach(), s)
            loss_ds = _LS(n["D_s"](s)[0], True) + _LS(n["D_s"](self._ds_input(s_g.detach(), t))[0], False)  # Eq. 10
        ctx.update(w["d_s"] * loss_ds, "D_s")
        set_requires_grad([n["D_z"], n["D_s"], n["G_m"]], False)
        with ctx.autocast():
            s_b = self._ds_input(s_g, t)  # the binary s_g (straight-through): what D_s and G_m are shown
            m_g = n["G_m"](s_b)  # Eq. 11: through the frozen G_m (its weights get no gradient here)
            mask_r = (m_r.detach() * s_r).float().pow(2).mean()  # Eq. 7, mask term (m_r depends on s only)
            mask_g = (m_g * s_b).float().pow(2).mean()  # Eq. 11, mask term
            loss_r = w["rec_mse"] * _mse(s_r, s) + w["rec_l1"] * (s_r.float() - s.float()).abs().mean()  # Eq. 7
            loss_g1 = _LS(n["D_z"](f), True)  # Eq. 9
            loss_g2 = _LS(n["D_s"](s_b)[0], True)  # Eq. 11, adversarial
            std = torch.exp(0.5 * logvar.float())
            moments = mean.float().mean().pow(2) + (std.mean() - 1).pow(2)  # the code's extra latent terms
            kl = kl_divergence(mean.float(), logvar.float())
            loss = (
                loss_r
                + w["mask"] * (mask_r + mask_g)
                + w["g_z"] * loss_g1
                + w["g_s"] * loss_g2
                + w["moments"] * moments
                + self.kl_weight * kl
            )
        ctx.update(loss, "EG")
        set_requires_grad([n["D_z"], n["D_s"], n["G_m"]], True)
        return {
            "L_m": loss_m,
            "L_r": loss_r,
            "L_mask": mask_r + mask_g,
            "L_d1": loss_dz,
            "L_g1": loss_g1,
            "L_d2": loss_ds,
            "L_g2": loss_g2,
            "KL": kl,
            "threshold": torch.tensor(t),
        }

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s_g = G_s(z)`` (soft, in [0,1]) and ``m_g = G_m(G_s.binarise(s_g))`` (Sec. 4.6), both (B,1,H,W): G_m
        reads the binary map, as in training (Eq. 11) and synthesis; on a soft map it sees no structure."""
        s_g = self.nets["G_s"](z)
        return s_g, self.nets["G_m"](self.nets["G_s"].binarise(s_g))

    def sample(self, batch: dict) -> list[torch.Tensor]:
        s = batch["s_struct"]
        mean, _ = self.nets["E_s"](s)
        s_g, m_g = self.generate(torch.randn_like(mean))
        s_g = self.nets["G_s"].binarise(s_g)  # as D_s and synthesis see it (the soft map's scale drifts)
        return [s * 2 - 1, self.nets["G_s"](mean) * 2 - 1, self.nets["G_m"](s) * 2 - 1, s_g * 2 - 1, m_g * 2 - 1]


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
        self.opts = {"G": _adam(self.nets["G"].parameters(), lr), "D": _adam(self.nets["D"].parameters(), lr)}

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
            self.opts["G"] = _adam(self.nets["G"].parameters(), lr, old.defaults["betas"][0])

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
                w["d_real"] * _LS(d_r, True)
                + w["d_fake"] * _LS(d_f, False)
                + w["cls"] * (_mse(c_r, onehot) + _mse(c_f, onehot))
            )  # Eq. 13
        ctx.update(loss_d, "D")
        set_requires_grad(self.nets["D"], False)
        out = {"L_D": loss_d}
        with ctx.autocast():
            d_f, c_f = self.nets["D"](x_g)
            loss_g = _LS(d_f, True) + _mse(c_f, onehot)  # Eq. 14
            loss = w["g_adv"] * _LS(d_f, True) + w["cls"] * _mse(c_f, onehot)
            if self.les_loss:  # Eq. 15
                l_g = torch.sigmoid(self.nets["G_l"](x_g))
                out["L_les"] = _mse(l_g, rnd["label"].repeat(self.n_mod, 1, 1, 1))
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
        return _mse(x_g, x_flat) + _mse(x_g * m, x_flat * m)

    def registration_loss(self, x_g: torch.Tensor) -> torch.Tensor:
        """Eq. 16: ``sum_j sum_{i != j} ||x_{g,i} - G_t(x_{g,j}, one_hot(i))||^2`` (x_g: (n_mod,B,1,H,W)), as a mean."""
        pairs = modality_pairs(self.n_mod)
        src = torch.cat([x_g[j] for i, j in pairs])
        tgt_idx = torch.cat([torch.full((x_g.shape[1],), i, device=x_g.device) for i, j in pairs])
        return _mse(self.nets["G_t"](src, tgt_idx), torch.cat([x_g[i] for i, j in pairs]))

    def sample(self, batch: dict) -> list[torch.Tensor]:
        if self.phase == "pretrain":
            inp = self.fuse(batch["s_struct"], batch["m_struct"], batch["label"])
        else:
            inp = self.random_inputs(len(batch["x"]), batch["label"], batch["x"].device)["input"]
        x_g = self.generate(inp)
        return [inp[:, :1] * 2 - 1] + [x_g[:, i : i + 1] for i in range(self.n_mod)]


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
        self.opts = {"G_t": _adam(self.nets["G_t"].parameters(), lr), "D_t": _adam(self.nets["D_t"].parameters(), lr)}

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
            loss_d = _LS(d_r, True) + _LS(d_f, False) + _mse(c_r, oh_i) + _mse(c_f, oh_j)  # Eq. 20
        ctx.update(loss_d, "D_t")
        set_requires_grad(D, False)
        with ctx.autocast():
            d_f, c_f = D(x_t)
            loss_g = _LS(d_f, True) + _mse(c_f, oh_j)  # Eq. 21
            loss_cyc = _mse(G(x_t, i), x_i)  # Eq. 19
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
        self.opts = {"seg": _adam(self.nets["seg"].parameters(), lr, beta1)}
        self.pos_weight = pos_weight

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            logits = self.nets["seg"](batch["image"]).float()
            pw = torch.tensor(self.pos_weight, device=logits.device)
            loss = F.binary_cross_entropy_with_logits(logits, batch["label"], pos_weight=pw)
        ctx.update(loss, "seg")
        return {"L_seg": loss}
