"""Fundus2Angio (Kamran et al. 2020; chapter 01): coarse/fine generators, four PatchGANs, LSGAN + MSE.

Section and equation numbers refer to the reproduction report ``01_fundus2angio.txt``. Where the
paper is vague we follow the official Keras code (SharifAmit/Fundus2Angio, ``src/model.py``,
``train.py``); the differences are listed in the chapter notebook. In short:

* G_coarse (Sec. 3.2, Fig. 4): 256x256 fundus -> 7x7 stem (64) -> 2 stride-2 convs (the paper's
  figure shows 4 encoder blocks; the code has 2) -> 9 novel residual blocks (256 ch) -> 2
  transposed convs -> 256x256x64 feature -> 7x7 head -> tanh angiogram.
* G_fine: 512x512 fundus -> 7x7 stem (32) -> one stride-2 conv (64 ch, 256x256) -> **+ the coarse
  feature** -> 3 novel residual blocks -> transposed conv -> 7x7 head -> tanh.
* Four PatchGANs on (fundus, angiogram) pairs (Sec. 3.3): D1/D2 fine on 512 inputs (64x64 and 32x32
  score maps), D1/D2 coarse on 256 inputs (32x32, 16x16). D2 average-pools its input first;
  widths 32, 64, 64, 64 as in the code (the doubling stops at 64 there).
* The coarse inputs (fundus and real angiogram) are the 512 crops Lanczos-3-downsampled by 2, as the code's
  ``tf.image.resize(..., LANCZOS3)`` with its default ``antialias=False`` (6 taps; ``LanczosDownsample``).

Training (Sec. 3.4, Eqs. 3-5, and ``train.py``), per iteration:
  1. twice: fresh batch -> fakes from G_coarse, G_fine -> update D_fine and D_coarse on real, then
     on fake (separate steps, as Keras ``train_on_batch`` calls);
  2. discriminators frozen: G_coarse on MSE (Eq. 4), then G_fine on MSE given the coarse feature;
  3. joint update of both generators: LSGAN against all four Ds (Eq. 3) + lambda=10 * MSE on both
     outputs (Eq. 5), with its own Adam (the Keras GAN model has its own optimiser).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsynth.blocks import LanczosDownsample, init_weights
from medsynth.discriminators import MultiScaleDiscriminator
from medsynth.losses import GANLoss
from medsynth.models.pix2pixhd import GlobalGenerator, LocalEnhancer
from medsynth.training import GANTask, StepContext, adam, eval_mode, set_requires_grad

__all__ = [
    "CoarseGenerator",
    "FineGenerator",
    "fundus2angio_discriminator",
    "Fundus2AngioTask",
    "quadrant_crops",
    "evaluate_translations",
    "PAPER_FID",
]


class CoarseGenerator(GlobalGenerator):
    """G_coarse: pix2pixHD's global generator built from the novel block, BN and LeakyReLU(0.2).

    ``forward(x)`` returns ``(angiogram, feature)``; feature is ``ncf`` x H x W (64 x 256 x 256).
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 1, ncf: int = 64, n_down: int = 2, n_blocks: int = 9) -> None:
        super().__init__(in_ch, out_ch, ncf, n_down, n_blocks, norm="batch", act="lrelu", separable=True)


class FineGenerator(LocalEnhancer):
    """G_fine: the local enhancer with novel blocks; ``forward(x, coarse_feature)``, feature has ``2*nff`` ch.

    Every conv is followed by BN and LeakyReLU (Sec. 3.2; the official code since its fix of 2020-05-18).
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 1, nff: int = 32, n_blocks: int = 3) -> None:
        super().__init__(in_ch, out_ch, nff, n_blocks, norm="batch", act="lrelu", separable=True)


def fundus2angio_discriminator(in_ch: int = 4, ndf: int = 32, width: int = 64) -> MultiScaleDiscriminator:
    """A [D1, D2] pair (Sec. 3.3): 3 stride-2 4x4 convs, a stride-1 conv, a score conv, 'same' padding.

    D1 sees the input, D2 the input average-pooled once, so a 512 input gives 64x64 and 32x32 maps.
    """
    return MultiScaleDiscriminator(
        in_ch, num_d=2, channels=(ndf, width, width, width), n_layers=3, norm="batch", same_tail=True
    )


def _split(batch: dict[str, Any], n: int) -> list[dict[str, Any]]:
    if n == 1:
        return [batch]
    size = batch["src"].shape[0]
    if size % n:
        raise ValueError(
            f"batches_per_step={n} needs a batch size divisible by {n}, got {size} "
            f"(set TrainConfig.batch_size = {n} x the paper's batch of 4)"
        )
    k = size // n
    return [{key: v[i * k : (i + 1) * k] for key, v in batch.items() if isinstance(v, torch.Tensor)} for i in range(n)]


class Fundus2AngioTask(GANTask):
    """Fundus2Angio's networks, optimisers and training iteration (Eqs. 3-5; see the module docstring).

    Args:
        ncf, nff, ndf, width: widths of G_coarse, G_fine and the discriminators (64, 32, 32, 64 in the
            paper's code; smaller in quick mode). ``ncf`` must be ``2 * nff``.
        n_blocks_coarse, n_blocks_fine: novel residual blocks (9 and 3).
        lam: lambda of Eq. (5), the weight of the MSE terms in the joint update (10).
        fake_label: LSGAN target for fakes; 0 as in the code (Eq. 3 as printed implies -1).
        d_iters: discriminator iterations per step (2, Sec. 3.4).
        batches_per_step: 3 = a fresh sub-batch for each D iteration and one for the generators,
            as ``train.py`` draws them (give the Trainer batch_size 3 x 4); 1 = reuse one batch.
        antialias: the half-size inputs' resize; False (default) = the code's ``tf.image.resize(LANCZOS3)``
            (6 taps, unstretched), True = an antialiased 12-tap Lanczos (see :class:`LanczosDownsample`).
    Batches are ``{"src": (N,3,H,W), "dst": (N,1,H,W)}`` in [-1, 1], H = W = the fine size.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 1,
        ncf: int = 64,
        nff: int = 32,
        ndf: int = 32,
        width: int = 64,
        n_blocks_coarse: int = 9,
        n_blocks_fine: int = 3,
        lam: float = 10.0,
        fake_label: float = 0.0,
        d_iters: int = 2,
        batches_per_step: int = 3,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        seed: int = 0,
        antialias: bool = False,
    ) -> None:
        if ncf != 2 * nff:
            raise ValueError(f"the coarse feature ({ncf} ch) is added to G_fine's ({2 * nff} ch): need ncf == 2*nff")
        if batches_per_step not in (1, d_iters + 1):
            raise ValueError(f"batches_per_step must be 1 or d_iters + 1 = {d_iters + 1}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets = {
                "G_coarse": CoarseGenerator(in_ch, out_ch, ncf, 2, n_blocks_coarse),
                "G_fine": FineGenerator(in_ch, out_ch, nff, n_blocks_fine),
                "D_fine": fundus2angio_discriminator(in_ch + out_ch, ndf, width),
                "D_coarse": fundus2angio_discriminator(in_ch + out_ch, ndf, width),
            }
            self.nets: dict[str, nn.Module] = {k: init_weights(v) for k, v in nets.items()}

        def opt(*names: str) -> torch.optim.Adam:
            return adam([p for n in names for p in self.nets[n].parameters()], lr, betas)

        self.opts = {
            "D_fine": opt("D_fine"),
            "D_coarse": opt("D_coarse"),
            "G_coarse": opt("G_coarse"),
            "G_fine": opt("G_fine"),
            "GAN": opt("G_coarse", "G_fine"),
        }
        self.gan = GANLoss("lsgan", real_label=1.0, fake_label=fake_label)
        self.lam, self.d_iters, self.batches_per_step = lam, d_iters, batches_per_step
        self.half = LanczosDownsample(antialias)  # False: TF's tf.image.resize(LANCZOS3) default, as train.py

    # -- forward passes ----------------------------------------------------------------------
    def coarse_inputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The 256-px (half-size) fundus and angiogram: the code's ``resize`` (TF Lanczos-3, antialias off)."""
        half = self.half.to(batch["src"].device)
        return half(batch["src"]), half(batch["dst"])

    def generate(self, src: torch.Tensor, coarse: bool = False) -> torch.Tensor:
        """The fine angiogram for a full-size fundus (or the coarse one with ``coarse=True``)."""
        out_c, feat = self.nets["G_coarse"](self.half.to(src.device)(src))
        return out_c if coarse else self.nets["G_fine"](src, feat)

    # -- one iteration -----------------------------------------------------------------------
    def _d_update(
        self, name: str, src: torch.Tensor, real: torch.Tensor, fake: torch.Tensor, ctx: StepContext
    ) -> tuple[torch.Tensor, torch.Tensor]:
        D = self.nets[name]
        with ctx.autocast():
            loss_real = self.gan(D(torch.cat([src, real], 1)), True)
        ctx.update(loss_real, name)
        with ctx.autocast():
            loss_fake = self.gan(D(torch.cat([src, fake], 1)), False)
        ctx.update(loss_fake, name)
        return loss_real.detach(), loss_fake.detach()

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        Gc, Gf = self.nets["G_coarse"], self.nets["G_fine"]
        Ds = ("D_fine", "D_coarse")
        parts = _split(batch, self.batches_per_step)
        logs: dict[str, torch.Tensor] = {}
        # 1. discriminators, d_iters times, on fresh batches (Sec. 3.4: "two iterations")
        set_requires_grad([self.nets[d] for d in Ds], True)
        for it in range(self.d_iters):
            b = parts[it % len(parts)]
            src_c, dst_c = self.coarse_inputs(b)
            with torch.no_grad(), ctx.autocast():
                fake_c, feat = Gc(src_c)
                fake_f = Gf(b["src"], feat)
            rf, ff = self._d_update("D_fine", b["src"], b["dst"], fake_f, ctx)
            rc, fc = self._d_update("D_coarse", src_c, dst_c, fake_c, ctx)
            for k, v in (("D_fine_real", rf), ("D_fine_fake", ff), ("D_coarse_real", rc), ("D_coarse_fake", fc)):
                logs[k] = logs.get(k, 0.0) + v / self.d_iters
        set_requires_grad([self.nets[d] for d in Ds], False)
        # 2. generators alone on MSE (Eq. 4): coarse, then fine given the coarse feature
        b = parts[-1]
        src, dst = b["src"], b["dst"]
        src_c, dst_c = self.coarse_inputs(b)
        # one G_coarse forward gives both its MSE output and the feature for G_fine, taken before G_coarse
        # moves (as the code's predict() does); detached, it equals the former separate no_grad pass
        with ctx.autocast():
            out_c, feat = Gc(src_c)
            mse_c = F.mse_loss(out_c.float(), dst_c.float())
        feat = feat.detach()
        ctx.update(mse_c, "G_coarse")
        with ctx.autocast():
            mse_f = F.mse_loss(Gf(src, feat).float(), dst.float())
        ctx.update(mse_f, "G_fine")
        # 3. joint update (Eq. 5): LSGAN on all four Ds + lambda * (MSE_fine + MSE_coarse);
        # the coarse feature enters as a detached input, as in the Keras GAN model
        with ctx.autocast():
            fake_c = Gc(src_c)[0]
            fake_f = Gf(src, feat)
            adv = self.gan(self.nets["D_fine"](torch.cat([src, fake_f], 1)), True) + self.gan(
                self.nets["D_coarse"](torch.cat([src_c, fake_c], 1)), True
            )
            rec_f = F.mse_loss(fake_f.float(), dst.float())
            rec_c = F.mse_loss(fake_c.float(), dst_c.float())
            total = adv + self.lam * (rec_f + rec_c)
        ctx.update(total, "GAN")
        set_requires_grad([self.nets[d] for d in Ds], True)
        logs.update(
            {
                "G_coarse_mse": mse_c.detach(),
                "G_fine_mse": mse_f.detach(),
                "GAN_adv": adv.detach(),
                "GAN_total": total.detach(),
                "L1": (fake_f.detach().float() - dst).abs().mean(),
            }
        )
        return logs

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        with eval_mode([self.nets["G_coarse"], self.nets["G_fine"]]):
            coarse = self.generate(batch["src"], coarse=True)
            fine = self.generate(batch["src"])
        up = F.interpolate(coarse, size=fine.shape[-2:], mode="nearest")
        return [batch["src"], up, fine, batch["dst"]]


# -- evaluation protocol (Sec. 5) -----------------------------------------------------------------
#: Table 1 of the reproduction report: FID on 56 test crops (lower is better).
PAPER_FID = {
    "pix2pix": {"TensorFlow": 48.6, "PyTorch": 49.9},
    "pix2pixHD": {"TensorFlow": 42.8, "PyTorch": 43.2},
    "Fundus2Angio": {"TensorFlow": 30.3, "PyTorch": 29.7},
}


def quadrant_crops(img: torch.Tensor, size: int) -> torch.Tensor:
    """The paper's test crops (Sec. 5): one ``size`` crop anchored in each corner of the image.

    ``img`` (C,H,W) -> (4,C,size,size), order top-left, top-right, bottom-left, bottom-right.
    For 576x720 Isfahan images and size 512 the four crops overlap, as in the paper's 14 x 4 = 56.
    """
    h, w = img.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop {size} larger than image {h}x{w}")
    return torch.stack([img[..., y : y + size, x : x + size] for y in (0, h - size) for x in (0, w - size)])


def evaluate_translations(
    fakes: dict[str, torch.Tensor],
    real: torch.Tensor,
    features: str = "pretrained",
    dims: int = 2048,
    seed: int = 0,
    kid_subset: int = 50,
) -> dict[str, dict[str, Any]]:
    """FID and KID (generated vs real angiograms, as Table 1) plus SSIM and PSNR against the registered truth.

    ``fakes``: model name -> (N,1,H,W) in [-1, 1]; ``real`` (N,1,H,W) in [-1, 1], pixel-aligned with
    each fake (phantoms are registered by construction). Real Inception features are computed once.
    FID/KID come back as :class:`~medsynth.metrics.MetricResult` carrying their label
    ("random Inception features -- not comparable ..." when ``features="random"``).
    """
    import warnings

    from medsynth.metrics import MetricResult, fid_from_features, inception_features, kid_from_features, psnr, ssim

    def unit(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() + 1) / 2).clamp(0, 1)

    f_real, kind = inception_features(unit(real), dims=dims, features=features, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    for name, fake in fakes.items():
        f_fake, _ = inception_features(unit(fake), dims=dims, features=features, seed=seed)
        with warnings.catch_warnings():  # 56 samples <= dims: singular covariances, discussed in the chapter
            warnings.filterwarnings("ignore", "FID from", UserWarning)
            warnings.filterwarnings("ignore", "Matrix is singular")
            fid_v = fid_from_features(f_real, f_fake)
        kid_v, kid_s = kid_from_features(f_real, f_fake, subset_size=kid_subset, seed=seed)
        n = (len(f_real), len(f_fake))
        out[name] = {
            "fid": MetricResult(fid_v, "FID", kind, dims, *n),
            "kid": MetricResult(kid_v, "KID", kind, dims, *n, std=kid_s),
            "ssim": float(ssim(unit(fake), unit(real))),
            "psnr": float(psnr(unit(fake), unit(real))),
        }
    return out
