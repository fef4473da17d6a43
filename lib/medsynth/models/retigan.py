"""RetiGAN (BSPC 2022, doi 10.1016/j.bspc.2022.104004): vessel tree -> colour fundus photograph.

Sources: the paper's text was not reachable from this course's tools; what is here follows the walk-through
in ``../shared/papers/03_retigan.txt`` (its prose and its code) and, where that is silent, pix2pixHD
(Wang et al. 2018) and CartoonGAN (Chen et al. 2018, whose edge-promoting loss the smoothed negatives are).

* **Generator** -- pix2pixHD's GlobalGenerator alone ("RetiGAN simply uses the GlobalGenerator ... one
  generator reduces model complexity"): 7x7 stem, ``n_down`` stride-2 convs, 9 residual blocks, transposed
  convs, 7x7 tanh head; InstanceNorm + ReLU. The walk-through's code uses ``n_enc=3`` downsamplings (pix2pixHD's
  ``--netG global`` uses 4); ``local=True`` adds pix2pixHD's LocalEnhancer. Input: the binary vessel tree and
  the FOV mask (2 channels, in [-1, 1]); output: RGB in [-1, 1].
* **Discriminator** -- 3 PatchGANs (4x4 convs, 64-128-256-512, InstanceNorm, LeakyReLU 0.2) on the input
  average-pooled 0, 1, 2 times (pix2pixHD Sec. 3.2). The walk-through's ``MultiScaleDiscriminator`` assigns ONE
  ``PatchDiscriminator`` instance to all three attributes, so its three "scales" share weights;
  :class:`SharedScaleDiscriminator` reproduces that for comparison, the default has independent weights as in
  pix2pixHD. Conditional: D sees (tree, FOV, photo), as the walk-through's ``D(s, x) -> 1`` (its code's default
  ``in_channel=3`` would be unconditional).
* **Generator loss** -- ``L_G = l0 L_adv + l1 L_VGG + l2 L_FM`` with the walk-through code's ``(l0, l1, l2) =
  (1, 100, 10)`` divided by their sum (111). LSGAN (its ``MSELoss``); VGG19 perceptual with layer weights
  1/32, 1/16, 1/8, 1/4, 1 (:class:`medsynth.losses.VGGLoss`; the walk-through's ``Perception`` prepends the raw
  image to the VGG outputs, so its 1/32 lands on a pixel L1 and relu5_1 is never used -- we use pix2pixHD's
  relu1_1 ... relu5_1); feature matching over D's intermediate layers of every scale (pix2pixHD Eq. 4,
  :func:`medsynth.losses.feature_matching_loss`, already divided by the number of scales as the walk-through's
  ``/ n_dim``; the walk-through's D returns only score maps, so its "feature matching" compares those).
* **Discriminator loss with edge-smoothed negatives** -- ``L_D = E[log D(x)] + E[log(1 - D(x_hat))] +
  E[log(1 - D(x_b))]``: ``x_b`` is a real photograph whose precise edges were removed (Canny edges, dilated,
  Gaussian-blurred there: :func:`smooth_edges`), shown to D as fake so that D learns sharp vs blurred. In LSGAN
  form: ``(D(s,x)-1)^2 + D(s,x_hat)^2 + D(s,x_b)^2``, each a mean over patches, summed over scales; the three
  terms are summed as written (pix2pixHD halves its two-term loss; not done here).

Optimiser: Adam 2e-4, betas (0.5, 0.999) -- pix2pixHD's; the RetiGAN schedule could not be found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi
from torch import nn
from torch.utils.data import Dataset

from medsynth.blocks import count_params, init_weights
from medsynth.discriminators import MultiScaleDiscriminator, PatchDiscriminator
from medsynth.losses import GANLoss, feature_matching_loss, optional_vgg_loss
from medsynth.models import translate
from medsynth.models.pix2pixhd import Pix2PixHDGenerator
from medsynth.models.vessel_data import VesselSet
from medsynth.training import GANTask, StepContext, adam, set_requires_grad

__all__ = [
    "smooth_edges",
    "TreePhotoDataset",
    "SharedScaleDiscriminator",
    "RetiGANTask",
    "LAMBDAS",
    "tree_input",
    "discriminator_counts",
]

#: The walk-through code's (adversarial, VGG, feature matching) weights, before normalising by their sum.
LAMBDAS = (1.0, 100.0, 10.0)


def smooth_edges(
    photos: torch.Tensor, canny_sigma: float = 1.0, dilate: int = 2, blur_sigma: float = 1.5, return_mask: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Edge-smoothed copies ``x_b`` of photographs (N,3,H,W) in [-1,1] (CartoonGAN Sec. 3.2's procedure).

    Per image: Canny edges of the grey image (``canny_sigma``), dilated by ``dilate`` pixels; inside that
    band the pixels are replaced by a Gaussian-blurred (``blur_sigma``) copy, elsewhere they are untouched.
    ``return_mask=True`` also returns the band (N,1,H,W) bool.
    """
    from skimage.feature import canny

    x = photos.detach().float().cpu().numpy()
    out, masks = x.copy(), np.zeros((len(x), 1, *x.shape[-2:]), bool)
    st = ndi.generate_binary_structure(2, 1)
    for k, img in enumerate(x):  # one image at a time: canny is 2-D; the pixel work is vectorised
        grey = img.mean(0)
        band = (
            ndi.binary_dilation(canny(grey, sigma=canny_sigma), st, iterations=dilate)
            if dilate
            else canny(grey, canny_sigma)
        )
        blurred = ndi.gaussian_filter(img, (0, blur_sigma, blur_sigma), mode="reflect")
        out[k] = np.where(band[None], blurred, img)
        masks[k, 0] = band
    res = torch.from_numpy(out).to(photos.dtype)
    return (res, torch.from_numpy(masks)) if return_mask else res


def tree_input(vessels: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
    """Generator input (N,2,H,W) in [-1,1]: channel 0 the vessel tree, channel 1 the FOV mask."""
    return torch.cat([vessels.float(), fov.float()], 1) * 2 - 1


class TreePhotoDataset(Dataset):
    """(tree + FOV, photograph, edge-smoothed photograph) with the same random crop and flips.

    Items: ``src`` (2,c,c) = :func:`tree_input`, ``dst`` (3,c,c) the photograph, ``dst_smooth`` its
    :func:`smooth_edges` copy (computed once, on the whole image, then cropped along). ``crop=None``: whole images.
    """

    def __init__(
        self,
        data: VesselSet,
        crop: int | None = None,
        per_image: int = 1,
        flip: bool = True,
        smooth_kwargs: dict | None = None,
    ) -> None:
        self.src = tree_input(data.vessels, data.fov)
        self.dst = data.images.float()
        self.dst_smooth = smooth_edges(self.dst, **(smooth_kwargs or {}))
        self.crop, self.flip = crop, flip
        self.per = per_image if crop is not None else 1

    def __len__(self) -> int:
        return len(self.src) * self.per

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = i // self.per
        ts = [self.src[j], self.dst[j], self.dst_smooth[j]]
        if self.crop is not None:
            h, w = ts[0].shape[-2:]
            y, x = (int(torch.randint(0, n - self.crop + 1, ())) for n in (h, w))
            ts = [t[:, y : y + self.crop, x : x + self.crop] for t in ts]
        if self.flip:
            f = torch.rand(2)
            dims = [d for d, flag in ((-1, f[0] < 0.5), (-2, f[1] < 0.5)) if flag]
            if dims:
                ts = [t.flip(dims) for t in ts]
        return dict(zip(("src", "dst", "dst_smooth"), (t.contiguous() for t in ts), strict=True))


class SharedScaleDiscriminator(nn.Module):
    """The walk-through code's multi-scale D: ONE PatchGAN applied to the input pooled 0 .. num_d-1 times."""

    def __init__(self, in_ch: int, num_d: int = 3, **kwargs: Any) -> None:
        super().__init__()
        self.d = PatchDiscriminator(in_ch, **kwargs)
        self.num_d = num_d

    def __len__(self) -> int:
        return self.num_d

    def forward(self, x: torch.Tensor, features: bool = False) -> list:
        from medsynth.blocks import avg_downsample

        out = []
        for _ in range(self.num_d):
            out.append(self.d(x, features=features))
            x = avg_downsample(x)
        return out


def discriminator_counts(in_ch: int = 5, ndf: int = 64, num_d: int = 3, n_layers: int = 3) -> dict[str, int]:
    """Trainable parameters of the 3-scale D with independent weights (ours) and with one shared network."""
    kw = dict(ndf=ndf, n_layers=n_layers, norm="instance", padding=2)
    return {
        "independent": count_params(MultiScaleDiscriminator(in_ch, num_d, **kw)),
        "shared (walk-through code)": count_params(SharedScaleDiscriminator(in_ch, num_d, **kw)),
    }


class RetiGANTask(GANTask):
    """RetiGAN's training iteration (see the module docstring). Batches: :class:`TreePhotoDataset` items.

    Ablation switches: ``smooth_negatives`` (the third D term), ``vgg_features="off"`` (no VGG term),
    ``num_d=1`` (single-scale D), ``shared_d`` (the walk-through's shared-weight D).
    ``normalise_lambdas``: divide ``lambdas`` by their sum (the walk-through code does).
    """

    def __init__(
        self,
        in_ch: int = 2,
        ngf: int = 64,
        n_down: int = 3,
        n_blocks: int = 9,
        local: bool = False,
        ndf: int = 64,
        num_d: int = 3,
        n_layers_d: int = 3,
        shared_d: bool = False,
        lambdas: tuple[float, float, float] = LAMBDAS,
        normalise_lambdas: bool = True,
        smooth_negatives: bool = True,
        vgg_features: str = "pretrained",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        seed: int = 0,
    ) -> None:
        kw = dict(ndf=ndf, n_layers=n_layers_d, norm="instance", padding=2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            g = init_weights(
                Pix2PixHDGenerator(
                    in_ch,
                    3,
                    ngf_local=ngf // 2,
                    ngf_global=ngf,
                    n_down_global=n_down,
                    n_blocks_global=n_blocks,
                    local=local,
                )
            )
            d_cls = SharedScaleDiscriminator if shared_d else MultiScaleDiscriminator
            d = init_weights(d_cls(in_ch + 3, num_d, **kw))
        self.nets: dict[str, nn.Module] = {"G": g, "D": d}
        self.opts = {"G": adam(g.parameters(), lr, betas), "D": adam(d.parameters(), lr, betas)}
        self.gan = GANLoss("lsgan")
        total = sum(lambdas) if normalise_lambdas else 1.0
        self.w_adv, self.w_vgg, self.w_fm = (lam / total for lam in lambdas)
        self.smooth_negatives = smooth_negatives
        self.vgg, self.vgg_features = optional_vgg_loss(vgg_features, seed)

    def generate(self, src: torch.Tensor) -> torch.Tensor:
        return self.nets["G"](src)

    def d_terms(
        self, src: torch.Tensor, dst: torch.Tensor, fake: torch.Tensor, dst_smooth: torch.Tensor | None
    ) -> tuple[dict[str, torch.Tensor], list]:
        """The D loss's terms ``real``, ``fake`` (and ``smooth``) and D's features of the real pair."""
        D = self.nets["D"]
        d_real = D(torch.cat([src, dst], 1), features=True)
        terms = {"real": self.gan(d_real, True), "fake": self.gan(D(torch.cat([src, fake], 1), features=True), False)}
        if self.smooth_negatives:
            if dst_smooth is None:
                raise ValueError("smooth_negatives=True needs the batch's 'dst_smooth' (TreePhotoDataset makes it)")
            terms["smooth"] = self.gan(D(torch.cat([src, dst_smooth], 1), features=True), False)
        return terms, d_real

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        src, dst = batch["src"], batch["dst"]
        G, D = self.nets["G"], self.nets["D"]
        if self.vgg is not None:
            self.vgg.to(ctx.device)
        with ctx.autocast():
            fake = G(src)
        # pix2pixHD's order (as chapter 01's, NVIDIA train.py: optimizer_G.step() before optimizer_D.step()):
        # every D pass of the iteration sees the same D weights, so the feature-matching targets (real features)
        # and the fake features come from one discriminator; D is updated last, from the graph built here
        set_requires_grad(D, True)
        with ctx.autocast():
            terms, d_real = self.d_terms(src, dst, fake.detach(), batch.get("dst_smooth"))
            loss_d = sum(terms.values())
        set_requires_grad(D, False)
        with ctx.autocast():
            g_fake = D(torch.cat([src, fake], 1), features=True)
            adv = self.gan(g_fake, True)
            fm = feature_matching_loss(g_fake, d_real)  # real features from the D pass above, detached inside
            vgg = self.vgg(fake.float(), dst.float()) if self.vgg is not None else torch.zeros((), device=src.device)
            loss_g = self.w_adv * adv + self.w_vgg * vgg + self.w_fm * fm
        ctx.update(loss_g, "G")
        set_requires_grad(D, True)
        ctx.update(loss_d, "D")  # the graph of loss_d holds no G parameter (fake was detached)
        out = {
            "D": loss_d.detach(),
            **{f"D_{k}": v.detach() for k, v in terms.items()},
            "G": loss_g.detach(),
            "G_adv": adv.detach(),
            "G_fm": fm.detach(),
            "G_vgg": vgg.detach(),
            "L1": (fake.detach() - dst).abs().mean(),
        }
        return out

    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        src = batch["src"]
        return [src[:, :1].expand(-1, 3, -1, -1), translate(self, src).to(src.device), batch["dst"]]
