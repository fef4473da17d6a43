"""Chapter 04's structure-map generator task (Sec. 4.2.2, Fig. 7, Eqs. 6-11) and the binarisation D_s sees.

The thesis prints no loss weights; the author's TensorFlow demo (quyili/MultimodalMedicalImagesSynthesis,
``code_demo/BRATS2015/Ours``) uses weights far from 1. :data:`STRUCT_WEIGHTS` holds both: ``"code"`` (the default)
and ``"printed"`` (every weight 1, the thesis as written; an ablation switch).
"""

from __future__ import annotations

import torch

from medsynth.models.structsynth.networks import (
    CondUNet,
    Decoder,
    LatentDisc,
    VAEEncoder,
    VGGDisc,
    kl_divergence,
    latent_shape,
    reparameterise,
)
from medsynth.models.structsynth.objectives import adam_b1, lsgan, mse
from medsynth.training import GANTask, StepContext, set_requires_grad

__all__ = ["STRUCT_WEIGHTS", "StructureGenTask", "straight_through", "density_threshold"]

#: Stage-A loss weights. "code": GET_S_AND_MASK/model.py (D_z x10 per term, E_s's Eq. 9 x0.001 plus the
#: code's latent-moment terms x0.001, D_s x25 per term, G_s's Eq. 11 adversarial x0.1, Eq. 7 as
#: MSE x25 + L1 x10, the mask terms x1, G_m's Eq. 6 x15). "printed": all 1, no extra terms.
STRUCT_WEIGHTS = {
    "code": dict(d_z=10.0, g_z=0.001, moments=0.001, d_s=25.0, g_s=0.1, rec_mse=25.0, rec_l1=10.0, mask=1.0, m=15.0),
    "printed": dict(d_z=1.0, g_z=1.0, moments=0.0, d_s=1.0, g_s=1.0, rec_mse=1.0, rec_l1=0.0, mask=1.0, m=1.0),
}


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
    ``norm`` / ``dense_latent``: E_s and G_s as in the author's code -- instance norm (``ops.norm``) and a dense
    layer between the latent and the convolutions (``VAE_encoder.py``'s and ``VAE_decoder.py``'s dense layers).
    With BatchNorm, G_s normalises posterior batches ``f`` and prior batches ``z`` by their own statistics in
    training but by one running mix in eval mode, so posterior means decode to black maps; with a purely
    convolutional latent, i.i.d. ``z`` entries pick local content independently and samples become textures
    without a skull ring ("batch" / False keep that earlier version as an ablation).
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
        norm: str = "instance",
        dense_latent: bool = True,
    ) -> None:
        if not (threshold == "density" or isinstance(threshold, (int, float))):
            raise ValueError(f"threshold must be 'density' or a number, got {threshold!r}")
        self.z_shape = latent_shape(image_size, z_ch, stages)
        self.kl_weight, self.binarise_fake = kl_weight, binarise_fake
        self.threshold, self.threshold_momentum = threshold, threshold_momentum
        self.real_fraction: float | None = None  # the real maps' mean structure fraction (calibrate_threshold)
        self.w = dict(STRUCT_WEIGHTS[weights]) if isinstance(weights, str) else dict(weights)
        self.nets = {
            "E_s": VAEEncoder(1, z_ch, width, stages, norm, dense_latent, image_size),
            "G_s": Decoder(z_ch, 1, width, stages, norm, dense_latent, image_size),
            "D_z": LatentDisc(z_ch, 2 * width),
            "D_s": VGGDisc(1, 0, width, 3),
            "G_m": CondUNet(1, 1, 0, width, 3, out_act="sigmoid"),
        }
        n = self.nets
        self.opts = {
            "G_m": adam_b1(n["G_m"].parameters(), lr),
            "D_z": adam_b1(n["D_z"].parameters(), lr),
            "D_s": adam_b1(n["D_s"].parameters(), lr),
            "EG": adam_b1(list(n["E_s"].parameters()) + list(n["G_s"].parameters()), lr),
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
            loss_m = mse(m_r, m)  # Eq. 6
        ctx.update(w["m"] * loss_m, "G_m")
        with ctx.autocast():
            mean, logvar = n["E_s"](s)
            f = reparameterise(mean, logvar)  # f = f_mean + exp(.5 f_logvar) z
            s_r = n["G_s"](f)
            z = torch.randn_like(mean)
            s_g = n["G_s"](z)
            loss_dz = lsgan(n["D_z"](z), True) + lsgan(n["D_z"](f.detach()), False)  # Eq. 8
        ctx.update(w["d_z"] * loss_dz, "D_z")
        with ctx.autocast():
            t = self._cut(s_g.detach(), s)
            loss_ds = lsgan(n["D_s"](s)[0], True) + lsgan(n["D_s"](self._ds_input(s_g.detach(), t))[0], False)  # Eq. 10
        ctx.update(w["d_s"] * loss_ds, "D_s")
        set_requires_grad([n["D_z"], n["D_s"], n["G_m"]], False)
        with ctx.autocast():
            s_b = self._ds_input(s_g, t)  # the binary s_g (straight-through): what D_s and G_m are shown
            m_g = n["G_m"](s_b)  # Eq. 11: through the frozen G_m (its weights get no gradient here)
            mask_r = (m_r.detach() * s_r).float().pow(2).mean()  # Eq. 7, mask term (m_r depends on s only)
            mask_g = (m_g * s_b).float().pow(2).mean()  # Eq. 11, mask term
            loss_r = w["rec_mse"] * mse(s_r, s) + w["rec_l1"] * (s_r.float() - s.float()).abs().mean()  # Eq. 7
            loss_g1 = lsgan(n["D_z"](f), True)  # Eq. 9
            loss_g2 = lsgan(n["D_s"](s_b)[0], True)  # Eq. 11, adversarial
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
