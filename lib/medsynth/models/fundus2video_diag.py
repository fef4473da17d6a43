"""Why chapter 05's quick model does (not) beat the mean training video: diagnostics computed in the run.

The course rule: in quick mode the main model beats the mean-target baseline on the primary metric (PSNR) or the
notebook says with numbers why not. :func:`diagnose` gives those numbers, all scored by the same
:func:`medsynth.metrics.psnr` / :func:`medsynth.metrics.ssim` per frame on the same test eyes:

* ``rollout`` -- the trained Fundus2Video generator as evaluated (autoregressive, triple-frame averaging);
* ``no averaging`` -- the same rollout, each frame from one window (what triple-frame averaging buys);
* ``teacher forced`` -- every window fed the *ground-truth* previous window (what the autoregressive drift costs);
* ``L1 U-Net`` -- a plain regression network (pix2pix's U-Net, photo -> 12 frames at once, L1 loss, no GAN) trained
  on the same eyes for the same number of iterations: roughly how much of the video the photo determines at this
  size and set size, for a model that optimises the pixel error directly;
* ``mean training video`` / ``random training video`` -- the input-free baselines;
* ``nearest training video (oracle)`` -- per test eye, the training video closest to its true video (it peeks at
  the answer): how far apart the eyes are, i.e. the room there is above the mean.

:func:`photo_ceiling` (phantom eyes only) asks what the photograph can determine at all. The phantom renders each
eye's angiography from the anatomy the photo shows *and* from draws the photo cannot show (camera gain, gamma,
background and vessel levels, choroidal texture, noise, misalignment); ``make_retina(..., fa_draw=k)`` redraws only
the latter -- another angiography session of the same eye. Averaging ``n_draws`` sessions estimates
``E[video | photo]``, the per-pixel best any predictor can do in squared error; one other session is what an ideal
conditional *sampler* would produce; the same session rescaled to the expected brightness is roughly what a perfect
*deterministic* generator (pix2pixHD's G has no noise input) would produce: the photo's anatomy and the expected gain,
with invented texture and noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medsynth.models import fundus2video as f2v
from medsynth.models.pix2pix import UNetGenerator
from medsynth.training import eval_mode

__all__ = ["teacher_forced_videos", "train_l1_unet", "diagnose", "photo_ceiling", "CEILING_ROWS"]

#: :func:`photo_ceiling`'s rows
CEILING_ROWS = (
    "E[video | photo] (best possible predictor)",
    "another session of the same eye (ideal sampler)",
    "another session at the expected brightness",
    "mean training video x true gain (oracle)",
)


@torch.no_grad()
def teacher_forced_videos(G: torch.nn.Module, cf: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Frame k = channel 0 of window k predicted from the ground-truth window k-1 (the CF photo for k = 0).
    ``cf`` (N,3,H,W) and ``frames`` (N,T,1,H,W) in [-1,1]; returns (N,T,1,H,W) in [-1,1]."""
    fr, T, out = frames[:, :, 0], frames.shape[1], []
    with eval_mode(G):
        for n in range(T):
            prev = cf if n == 0 else fr[:, f2v.window_indices(n - 1, T)]
            out.append(G(cf, prev)[0][:, :1])
    return torch.stack(out, 1)


def train_l1_unet(
    train_ds: Dataset, steps: int, lr: float = 1e-3, batch_size: int = 2, seed: int = 0, ngf: int = 16
) -> UNetGenerator:
    """A pix2pix U-Net (6 levels, instance norm, no dropout) from the photo to all T frames, L1 loss, Adam."""
    item = train_ds[0]
    T, size = item["frames"].shape[0], item["frames"].shape[-1]
    levels = min(6, int(np.log2(size)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNetGenerator(3, T, num_downs=max(levels, 5), ngf=ngf, norm="instance", dropout=0.0)
        opt = torch.optim.Adam(net.parameters(), lr, betas=(0.5, 0.999))
        loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=True)
        step = 0
        while step < steps:
            for b in loader:
                loss = (net(b["src"]) - b["frames"][:, :, 0]).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step >= steps:
                    break
    return net.eval()


def _ps(real01: torch.Tensor, fake01: torch.Tensor) -> dict[str, float]:
    from medsynth.metrics import framewise, psnr, ssim

    f = fake01.float().clamp(0, 1)
    return {"PSNR": float(framewise(real01, f, psnr).mean()), "SSIM": float(framewise(real01, f, ssim).mean())}


def diagnose(
    task: Any,
    train_ds: Dataset,
    train_eval: Dataset,
    test_ds: Dataset,
    steps: int,
    seed: int = 0,
    unet_lr: float = 1e-3,
) -> dict[str, dict[str, float]]:
    """PSNR / SSIM (ours, [0,1]) of the rows in the module docstring, on ``test_ds``."""
    from medsynth.evidence import BASELINES, baseline_predictions

    cf, real01 = f2v.photos_and_videos(test_ds)
    _, train01 = f2v.photos_and_videos(train_eval)
    G = task.nets["G"]
    dev = next(G.parameters()).device
    rows: dict[str, dict[str, float]] = {}
    rows["rollout (as evaluated)"] = _ps(real01, (task.generate(cf.to(dev), real01.shape[1]).cpu() + 1) / 2)
    rows["rollout, no averaging"] = _ps(real01, (task.generate(cf.to(dev), real01.shape[1], False).cpu() + 1) / 2)
    tf = teacher_forced_videos(G, cf.to(dev), (real01 * 2 - 1).to(dev)).cpu()
    rows["teacher forced (GT previous window)"] = _ps(real01, (tf + 1) / 2)
    net = train_l1_unet(train_ds, steps, unet_lr, seed=seed)
    with torch.no_grad():
        rows[f"L1 U-Net, {steps} iterations"] = _ps(real01, (net(cf)[:, :, None] + 1) / 2)
    base = baseline_predictions(train01, len(real01), seed=seed)
    rows["mean training video"] = _ps(real01, base[BASELINES[0]])
    rows["random training video"] = _ps(real01, base[BASELINES[1]])
    d = ((real01[:, None] - train01[None]) ** 2).flatten(2).mean(2)  # (n_test, n_train)
    rows["nearest training video (oracle)"] = _ps(real01, train01[d.argmin(1)])
    return rows


def _ls_gain(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Per video (dim 0), the factor g minimising ||target - g * pred||^2, shaped to broadcast over (T,C,H,W)."""
    g = (target * pred).flatten(1).sum(1) / (pred * pred).flatten(1).sum(1).clamp_min(1e-8)
    return g.view(-1, *([1] * (pred.dim() - 1)))


def photo_ceiling(
    test_root: Any, split: str = "test", n_draws: int = 16, train01: torch.Tensor | None = None
) -> dict[str, Any]:
    """How much of each test video its photograph determines, on phantom eyes (``{}`` for real data).

    Re-renders every eye of ``split`` (seeds and generator settings from ``meta.json``) ``n_draws`` times with
    :func:`medsynth.data.make_retina`'s ``fa_draw`` (8-bit quantised like the stored frames) and scores, against
    the stored videos with the same per-frame PSNR/SSIM as :func:`diagnose`: the draws' mean (``E[video | photo]``)
    draw 0, and draw 0 rescaled per eye by its least-squares gain against the draws' mean (:data:`CEILING_ROWS`);
    with ``train01`` (training videos in [0, 1]) also the mean training video
    rescaled per eye by its least-squares gain against the true video (it peeks at the answer's brightness).
    ``"photo_share"``: the share of the test videos' per-pixel variance that ``E[video | photo]`` explains,
    ``Var(E[y|x]) / (Var(E[y|x]) + E[Var(y|x)])`` over the eyes and draws.
    """
    import json
    from pathlib import Path

    from medsynth.data import SequenceDataset, make_retina

    root = Path(test_root)
    meta = json.loads((root / "meta.json").read_text()) if (root / "meta.json").is_file() else {}
    if meta.get("source") != "phantom" or meta.get("kind") != "retina_seq":
        return {}
    prm = meta.get("params", {})
    ids = meta["splits"][split]
    size = tuple(meta["size"])
    kw = dict(
        severity=prm.get("severity", 0.5),
        n_frames=int(prm.get("n_frames", 12)),
        misalign=float(prm.get("misalign", 0.0)),
    )
    seq = SequenceDataset(root, split, crop=None, flip=False)
    real01 = (torch.stack([seq[i]["frames"] for i in range(len(seq))]) + 1) / 2  # (N,T,1,H,W)
    draws = np.stack(
        [
            [
                np.round(make_retina(meta["items"][f"{split}/{iid}"]["seed"], size, fa_draw=d, **kw).frames * 255) / 255
                for d in range(n_draws)
            ]
            for iid in ids
        ]
    )
    draws_t = torch.from_numpy(draws).float()[:, :, :, None]  # (N,K,T,1,H,W)
    cond = draws_t.mean(1)
    one = draws_t[:, 0]
    rows = {
        CEILING_ROWS[0]: _ps(real01, cond),
        CEILING_ROWS[1]: _ps(real01, one),
        CEILING_ROWS[2]: _ps(real01, one * _ls_gain(cond, one)),
    }
    if train01 is not None:
        m = train01.mean(0, keepdim=True).expand_as(real01)
        rows[CEILING_ROWS[3]] = _ps(real01, m * _ls_gain(real01, m))
    within = float(draws_t.var(1).mean())
    between = float(cond.var(0).mean())
    return {"rows": rows, "photo_share": between / (between + within), "n_draws": n_draws}
