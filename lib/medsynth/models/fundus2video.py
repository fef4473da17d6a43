"""Fundus2Video (Zhang et al., MICCAI 2024): an FFA video from one colour fundus photograph.

05_fundus2video Sec. 2.1: an *autoregressive* pix2pixHD global generator. Its input is the CF
photo concatenated with the previous window of 3 frames; its output is the next window of 3
frames. Following the official code (``train.py``), window ``n`` holds frames ``n, n+1, n+2``
(clamped at the last frame) and is predicted from the CF photo and window ``n-1`` (the CF photo
itself stands in for the window before the first). During training the previous window is the
ground truth or the model's own (detached) previous output, drawn at random with a probability of
"generated" that rises with the step (official: ``random.choice([0,1] + [1]*(step//100))``, always
generated after 1000 steps); every window is one optimiser step, so memory is that of one window.
At inference each frame is predicted by up to three windows and the predictions are averaged
("triple-frame averaging"); :func:`iter_rollout` streams finished frames and keeps only the
3-frame accumulation buffer, so memory stays flat in the number of frames.

Knowledge-mask-guided techniques (Sec. 2.3), each switchable for the Table 1 ablation
(:class:`Techniques`):

* knowledge-boosted attention, Eq. 1 (:func:`attention_loss`);
* mask-enhanced unsupervised / supervised PatchNCE, Eqs. 2-4 (:mod:`medsynth.patchnce`),
  computed on ``image * M`` with the generator's own encoder, as in CUT and the official code;
* knowledge-aware discriminators, Eqs. 5-6: the same 3-scale PatchGAN also judges ``(x*M, y*M)``
  against ``(x*M, G(x)*M)`` (the official ``MultiscaleDiscriminator.forward(input, tempo_map)``);
* Eq. 7, *our reading*: ``L = L_pix2pixHD + l1 L_att + l2 L_UP + l3 L_SP + l4 L_KD`` with l = 1, 1, 4, 2
  (Sec. 3.0.2 gives the values; the equation's body is not in our copy of the text, so the order of the
  lambdas is read from the order of Secs. 2.3.1-2.3.3 and of Table 1's technique columns). The official
  ``train.py`` weighs differently: GAN x2, knowledge-aware GAN x1, one NCE term x1 that averages UP and SP
  (x0.5 each), feature matching and VGG x1 (each already x10 inside), a gradient-variance loss x5, and no
  attention loss.

Training order (:meth:`Fundus2VideoTask._window_step`): every discriminator output of a window is computed
with the same D weights, then G steps, then D steps -- pix2pixHD's and the official code's order, so the
feature-matching loss compares real and fake features of one and the same D.

The dataset lives in :mod:`medsynth.data.fundus2video`, the evaluation in :mod:`medsynth.metrics.video_eval`
(both re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsynth.blocks import init_weights
from medsynth.data.fundus2video import VideoDataset
from medsynth.discriminators import MultiScaleDiscriminator
from medsynth.losses import GANLoss, feature_matching_loss, optional_vgg_loss
from medsynth.metrics.video_eval import evaluate, evaluate_baselines, photos_and_videos, score_videos
from medsynth.models.pix2pixhd import GlobalGenerator
from medsynth.patchnce import NCE_TEMPERATURE, NUM_PATCHES, PatchProjector, patch_nce_loss
from medsynth.training import GANTask, StepContext, adam, eval_mode, set_requires_grad, unwrap

__all__ = [
    "WINDOW",
    "window_indices",
    "Fundus2VideoGenerator",
    "iter_rollout",
    "rollout",
    "attention_loss",
    "Techniques",
    "ABLATIONS",
    "PAPER_TABLE1",
    "Fundus2VideoTask",
    "VideoDataset",
    "p_generated",
    "score_videos",
    "evaluate",
    "evaluate_baselines",
    "photos_and_videos",
]

WINDOW = 3  # frames per generator output (and per previous-window input)


def window_indices(n: int, n_frames: int) -> list[int]:
    """Frames in window ``n``: ``n, n+1, n+2`` clamped to the last frame (official ``min(n+k, N-1)``)."""
    return [min(n + k, n_frames - 1) for k in range(WINDOW)]


class Fundus2VideoGenerator(nn.Module):
    """pix2pixHD global generator with input = CF (3) + previous window (3), output = next window (3).

    ``forward(cf, prev) -> (window, feature)``: window (N,3,H,W) in [-1,1], one frame per channel;
    ``feature`` is the last decoder activation, the map Eq. 1's attention is read from.
    ``encode(img3)`` returns the PatchNCE taps of the encoder for a 3-channel image, fed as
    ``cat(img, img)`` to fill the 6 input channels (the official code does the same): the input
    itself, the 7x7 stem, every downsampling stage and the first residual block (CUT/official
    ``nce_layers = 0,4,8,12,16`` of pix2pixHD's 4-down generator).
    """

    def __init__(self, ngf: int = 64, n_down: int = 4, n_blocks: int = 9, norm: str = "instance") -> None:
        super().__init__()
        self.net = GlobalGenerator(3 + WINDOW, WINDOW, ngf, n_down, n_blocks, norm)
        self.n_down = n_down
        self.n_taps = n_down + 2 if n_blocks else n_down + 1  # body children tapped
        top = ngf * 2**n_down
        self.nce_channels = (
            [3 + WINDOW, ngf] + [ngf * 2 ** (i + 1) for i in range(n_down)] + ([top] if n_blocks else [])
        )

    def forward(self, cf: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(torch.cat([cf, prev], 1))

    def encode(self, img: torch.Tensor) -> list[torch.Tensor]:
        h = torch.cat([img, img], 1)
        feats = [h]
        for layer in list(self.net.body)[: self.n_taps]:
            h = layer(h)
            feats.append(h)
        return feats


@torch.no_grad()
def iter_rollout(
    G: nn.Module, cf: torch.Tensor, n_frames: int, average: bool = True, stats: dict | None = None
) -> Iterator[torch.Tensor]:
    """Generate frame by frame; yields each finished frame (N,1,H,W) in time order.

    ``average=True``: triple-frame averaging (Sec. 2.1) -- frame k is the mean of the predictions of
    windows k-2, k-1 and k (fewer at the start). As in the official ``train.py``, a window's channels
    that were clamped to the last frame are skipped (``if n+k >= N-1: continue``), so no frame gets more
    than 3 predictions. ``average=False``: frame k is channel 0 of window k (no smoothing). Frame k is
    final once window k is made, so at most 3 running sums are alive: memory is flat in ``n_frames``
    (``stats["max_buffered"]`` records it for the test).
    """
    prev, sums, counts = cf, {}, {}
    for n in range(n_frames):
        out, _ = G(cf, prev)
        prev = out
        for c in range(WINDOW if average else 1):
            k = n + c
            if k >= n_frames:  # a clamped repeat of the last frame: not a prediction of its own
                continue
            sums[k] = out[:, c : c + 1] + sums.get(k, 0.0)
            counts[k] = counts.get(k, 0) + 1
        if stats is not None:
            stats["max_buffered"] = max(stats.get("max_buffered", 0), len(sums))
            stats.setdefault("counts", []).append(counts[n])
        yield (sums.pop(n) / counts.pop(n)).clamp(-1, 1)


def rollout(G: nn.Module, cf: torch.Tensor, n_frames: int, average: bool = True) -> torch.Tensor:
    """All frames of :func:`iter_rollout` stacked: (N, T, 1, H, W); G is put in eval mode meanwhile."""
    with eval_mode(G):
        return torch.stack(list(iter_rollout(G, cf, n_frames, average)), 1)


def attention_loss(feature: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Knowledge-boosted attention, Eq. 1 (Sec. 2.3.1), as we read it.

    The activation map ``a`` is the channel mean of the generator's last feature map, scaled to
    [0, 1] per image (divided by its maximum); ``A = a * M`` and ``L_att = sum |A' - M| / sum M``:
    the mean shortfall of the activation from its peak over the mask's pixels, 0 when the
    activation peaks everywhere on the mask, at most 1. The paper's ReLU (``A' = ReLU(A)``) is left
    out: the feature has just passed a ReLU, so ``A >= 0`` and it would change nothing. Normalising over
    the mask's pixels (not all pixels) keeps the term's scale independent of the mask's area (1-2 % of
    the image at threshold 45, which would make an all-pixel mean ~0 at lambda_1 = 1). The equation
    itself is missing from our copy and the official code has no attention loss (its ``seg_loss`` flag
    enables a gradient-variance loss instead), so this reconstruction is ours. An empty mask gives 0.
    """
    a = feature.float().mean(1, keepdim=True)
    a = a / a.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1, 1)
    if a.shape[-2:] != mask.shape[-2:]:
        mask = F.interpolate(mask.float(), size=a.shape[-2:], mode="nearest")
    mask = mask.float()
    return (a * mask - mask).abs().sum() / mask.sum().clamp_min(1.0)


@dataclass(frozen=True)
class Techniques:
    """Switches of Table 1: attention (Eq. 1), UP (Eq. 3), SP (Eq. 4), knowledge-aware D (Eq. 6), mask type."""

    attention: bool = True
    up: bool = True
    sp: bool = True
    kd: bool = True
    mask: str = "knowledge"  # "knowledge" (Sec. 2.2) | "lesion" (GT lesion mask, Table 1) | "none"

    def __post_init__(self) -> None:
        if self.mask not in ("knowledge", "lesion", "none"):
            raise ValueError(f"mask must be 'knowledge', 'lesion' or 'none', got {self.mask!r}")


_OFF = Techniques(False, False, False, False)
ABLATIONS: dict[str, Techniques] = {
    "baseline": _OFF,
    "attention": replace(_OFF, attention=True),
    "up": replace(_OFF, up=True),
    "sp": replace(_OFF, sp=True),
    "kd": replace(_OFF, kd=True),
    "all_lesion_mask": Techniques(mask="lesion"),
    "all_knowledge_mask": Techniques(),
}

# Table 1, Fundus2Video rows (technique columns read as attention, UP, SP, KD; see the module docstring).
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "baseline": dict(FVD=1804.25, SSIM=0.3225, PSNR=11.11, LPIPS=0.2213),
    "attention": dict(FVD=1611.21, SSIM=0.3625, PSNR=11.41, LPIPS=0.2162),
    "up": dict(FVD=1527.94, SSIM=0.3738, PSNR=11.76, LPIPS=0.2093),
    "sp": dict(FVD=1701.30, SSIM=0.3694, PSNR=11.20, LPIPS=0.2133),
    "kd": dict(FVD=1664.42, SSIM=0.3442, PSNR=11.36, LPIPS=0.2166),
    "all_lesion_mask": dict(FVD=1586.35, SSIM=0.3688, PSNR=11.23, LPIPS=0.2136),
    "all_knowledge_mask": dict(FVD=1503.21, SSIM=0.3814, PSNR=11.81, LPIPS=0.2001),
}


def p_generated(step: int, ramp_every: int = 100, until: int = 1000) -> float:
    """Probability that the previous window is the model's own output (official schedule):
    ``(1 + k) / (2 + k)`` with ``k = step // ramp_every``, and 1 from step ``until`` on."""
    if step >= until:
        return 1.0
    k = step // max(ramp_every, 1)
    return (1 + k) / (2 + k)


class Fundus2VideoTask(GANTask):
    """Fundus2Video's networks and per-window training iteration (Eq. 7).

    Batches (:class:`VideoDataset`): ``src`` (N,3,H,W), ``frames`` (N,T,1,H,W) in [-1,1], ``km`` and
    ``lesion`` (N,1,H,W) in {0,1}. One :meth:`train_step` walks the windows of the sequence (all
    of them, or ``windows_per_step`` consecutive ones from a random start for quick CPU runs), with
    one D and one G update per window. ``nets``: G, D (3 scales, independent weights, Sec. 2.3.3;
    the official code uses 2) and F (the PatchNCE projection head, optimised together with G).
    ``vgg_features``: "off" (default), "pretrained" or "random", as in :class:`Pix2PixHDTask`.
    """

    def __init__(
        self,
        ngf: int = 64,
        n_down: int = 4,
        n_blocks: int = 9,
        ndf: int = 64,
        num_d: int = 3,
        n_layers_d: int = 3,
        techniques: Techniques = Techniques(),
        lambdas: tuple[float, float, float, float] = (1.0, 1.0, 4.0, 2.0),
        lambda_feat: float = 10.0,
        lambda_vgg: float = 10.0,
        vgg_features: str = "off",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        num_patches: int = NUM_PATCHES,
        tau: float = NCE_TEMPERATURE,
        nce_nc: int = 256,
        windows_per_step: int | None = None,
        tf_ramp_every: int = 100,
        tf_until: int = 1000,
        seed: int = 0,
    ) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = init_weights(Fundus2VideoGenerator(ngf, n_down, n_blocks))
            d = init_weights(
                MultiScaleDiscriminator(3 + WINDOW, num_d, ndf=ndf, n_layers=n_layers_d, norm="instance", padding=2)
            )
            f = PatchProjector(g.nce_channels, nce_nc)
        self.nets: dict[str, nn.Module] = {"G": g, "D": d, "F": f}
        self.opts = {"G": adam([*g.parameters(), *f.parameters()], lr, betas), "D": adam(d.parameters(), lr, betas)}
        self.tech, self.lambdas = techniques, tuple(lambdas)
        self.lambda_feat, self.lambda_vgg = lambda_feat, lambda_vgg
        self.num_patches, self.tau = num_patches, tau
        self.windows_per_step, self.tf_ramp_every, self.tf_until = windows_per_step, tf_ramp_every, tf_until
        self.gan = GANLoss("lsgan")
        self.vgg, self.vgg_features = optional_vgg_loss(vgg_features, seed)
        self.config = dict(
            ngf=ngf,
            n_down=n_down,
            n_blocks=n_blocks,
            ndf=ndf,
            num_d=num_d,
            n_layers_d=n_layers_d,
            techniques=asdict(techniques),
            lambdas=list(lambdas),
            lr=lr,
            num_patches=num_patches,
            tau=tau,
            windows_per_step=windows_per_step,
            vgg=self.vgg_features,
        )

    # -- helpers ---------------------------------------------------------------------------------
    def mask_of(self, batch: dict[str, Any]) -> torch.Tensor:
        """M for the configured mask type: knowledge mask, GT lesion mask, or all ones."""
        if self.tech.mask == "none":
            return torch.ones_like(batch["src"][:, :1])
        return batch["km" if self.tech.mask == "knowledge" else "lesion"].float()

    def _nce(self, q_feats: list[torch.Tensor], key_img: torch.Tensor) -> torch.Tensor:
        return patch_nce_loss(
            q_feats, unwrap(self.nets["G"]).encode(key_img), self.nets["F"], self.num_patches, self.tau
        )

    def _window_step(
        self, cf: torch.Tensor, prev: torch.Tensor, target: torch.Tensor, m: torch.Tensor, ctx: StepContext
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        G, D, t = self.nets["G"], self.nets["D"], self.tech
        l_att, l_up, l_sp, l_kd = self.lambdas
        zero = torch.zeros((), device=cf.device)
        with ctx.autocast():
            fake, feat = G(cf, prev)
        real_in, fake_in = torch.cat([cf, target], 1), torch.cat([cf, fake], 1)
        # Discriminator outputs (Eq. 5; + Eq. 6 on masked inputs, same weights as the official code), all
        # from D's current weights: the G step below uses d_real's features for feature matching.
        set_requires_grad(D, True)
        with ctx.autocast():
            d_real = D(real_in, features=True)
            loss_d = 0.5 * (self.gan(D(fake_in.detach()), False) + self.gan(d_real, True))
            if t.kd:
                loss_d = loss_d + 0.5 * (self.gan(D(fake_in.detach() * m), False) + self.gan(D(real_in * m), True))
        # Generator (Eq. 7), through the same D (frozen here, so no gradient reaches it)
        set_requires_grad(D, False)
        out = {"D": loss_d.detach()}
        with ctx.autocast():
            g_fake = D(fake_in, features=True)
            out["G_gan"] = self.gan(g_fake, True)
            out["G_fm"] = self.lambda_feat * feature_matching_loss(g_fake, d_real)
            out["G_vgg"] = self.lambda_vgg * self.vgg(fake.float(), target.float()) if self.vgg is not None else zero
            out["G_att"] = l_att * attention_loss(feat, m) if t.attention else zero
            if t.up or t.sp:
                q = unwrap(G).encode(fake * m)  # a method, not forward: call it on the plain module
                out["G_up"] = l_up * self._nce(q, cf * m) if t.up else zero
                out["G_sp"] = l_sp * self._nce(q, target * m) if t.sp else zero
            else:
                out["G_up"] = out["G_sp"] = zero
            out["G_kd"] = l_kd * self.gan(D(fake_in * m), True) if t.kd else zero
            loss_g = sum(v for k, v in out.items() if k.startswith("G_"))
        # pix2pixHD's / the official order: G steps first, then D (its loss was computed before either step)
        ctx.update(loss_g, "G")
        set_requires_grad(D, True)
        ctx.update(loss_d, "D")
        out = {k: v.detach() for k, v in out.items()}
        out["L1"] = (fake.detach() - target).abs().mean()
        return out, fake.detach()

    # -- GANTask --------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        if self.vgg is not None:
            self.vgg.to(ctx.device)
        cf, frames, m = batch["src"], batch["frames"][:, :, 0], self.mask_of(batch)
        T = frames.shape[1]
        k = T if self.windows_per_step is None else min(self.windows_per_step, T)
        start = int(torch.randint(0, T - k + 1, ()).item())
        p_gen = p_generated(ctx.step, self.tf_ramp_every, self.tf_until)
        sums: dict[str, torch.Tensor] = {}
        prev_gen = None
        for n in range(start, start + k):
            if n == 0:
                prev = cf
            elif prev_gen is not None and float(torch.rand(())) < p_gen:
                prev = prev_gen  # teacher forcing off: the model's own previous window
            else:
                prev = frames[:, window_indices(n - 1, T)]
            losses, prev_gen = self._window_step(cf, prev, frames[:, window_indices(n, T)], m, ctx)
            for name, v in losses.items():
                sums[name] = sums.get(name, 0.0) + v / k
        return sums

    def generate(self, cf: torch.Tensor, n_frames: int = 12, average: bool = True) -> torch.Tensor:
        """A video (N, T, 1, H, W) in [-1, 1] from CF photos (N,3,H,W): frame-by-frame rollout, eval mode."""
        G = self.nets["G"]
        dev = next(unwrap(G).parameters()).device
        return rollout(G, cf.to(dev), n_frames, average)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        frames = batch["frames"]
        T = frames.shape[1]
        fake = self.generate(batch["src"], T)
        ks = (0, T // 2, T - 1)
        return [batch["src"], *[frames[:, k] for k in ks], *[fake[:, k] for k in ks]]
