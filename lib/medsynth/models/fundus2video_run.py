"""Chapter 05's runs: presets, one seed's ablation rows, and Table 1's claims as data.

The notebook (and ``make reference``) picks a :class:`Fundus2VideoPreset`, calls :func:`run_seed` for
each seed (it trains the preset's Table 1 rows and scores them and the input-free baselines with the
same :func:`~medsynth.models.fundus2video.score_videos`), then checks :func:`claims` over the seeds
with :func:`medsynth.evidence.evaluate_claims`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from medsynth import evidence, presets
from medsynth.models import fundus2video as f2v

__all__ = [
    "Fundus2VideoPreset",
    "PRESETS",
    "MAIN",
    "PRIMARY",
    "run_seed",
    "claims",
    "scores_json",
    "METRICS",
    "knowledge_mask_claim",
    "knowledge_mask_margins",
    "FULL_DIFFERENCES",
    "datasets",
    "g_loss_shares",
    "headline",
]

MAIN = "all_knowledge_mask"  # Table 1's full model
PRIMARY = ("PSNR", True)  # (metric, higher is better): the mean video is the MSE-optimal constant

_QUICK_MODEL = dict(
    ngf=16,
    n_down=2,
    n_blocks=3,
    ndf=16,
    num_d=3,
    n_layers_d=3,
    num_patches=64,
    windows_per_step=2,
    lr=5e-4,
    tf_ramp_every=10,
    tf_until=100,
)
# Full: Sec. 3.0.2 as printed -- lr 2e-3 (the official train.py keeps the option default 2e-4; the course follows the
# paper's text where it speaks, so 2e-3; pass model overrides for 2e-4), Adam betas (0.5, 0.999), batch 1, 512 px.
_FULL_MODEL = dict(
    ngf=64,
    n_down=4,
    n_blocks=9,
    ndf=64,
    num_d=3,
    n_layers_d=3,
    num_patches=256,
    windows_per_step=None,
    lr=2e-3,
    vgg_features="pretrained",
)

#: What the full preset still does differently from Sec. 3.0.2 / the official train.py (the notebook lists them).
FULL_DIFFERENCES = (
    "LR schedule: the paper 'adjusts the learning rate every 50 iterations' with an unnamed PyTorch scheduler; we use "
    "the official code's (constant for 10 of 50 epochs, then linear to 0).",
    "Frames: the paper and the official loader draw 4 frames per phase at random from each eye's series every epoch; "
    "our eyes store exactly 12 frames (4 per phase), so every epoch sees the same 12.",
    "Crop/scale augmentation: the official loader's random-box branch never runs (it sets aug = 0 right before "
    "'if aug > 0'), so the official training saw whole eyes; we crop and rescale as Sec. 3.0.2 says.",
    "Colour augmentation: the paper gives no range and the official code has none; ours scales brightness, contrast "
    "and saturation of the photo by factors in [0.8, 1.2].",
    "Discriminators: 3 scales as Sec. 2.3.3 states (the official code uses num_D = 2).",
    "Eq. 7's weights: our reading of the lost equation (1, 1, 4, 2 on attention, UP, SP, KD); the official train.py "
    "uses GAN x2, KD x1, one NCE term x1 (UP and SP x0.5 each) and a gradient-variance loss x5 instead of attention.",
    "PatchNCE: 7 encoder taps of our generator (the official layers 0, 4, 8, 12, 16 give 5) and a projection head that "
    "trains (the official one is never updated).",
)


@dataclasses.dataclass(frozen=True)
class Fundus2VideoPreset(presets.Preset):
    """Chapter 05's schedule: phantom eyes per split, the task's settings and the Table 1 rows trained."""

    n_train: int = 245
    n_test: int = 53
    model: tuple[tuple[str, Any], ...] = tuple(_FULL_MODEL.items())
    rows: tuple[str, ...] = tuple(f2v.ABLATIONS)
    augment: str = "paper"  # VideoDataset augmentation of the training eyes (Sec. 3.0.2: crop, scale, colour)

    @property
    def model_cfg(self) -> dict[str, Any]:
        return dict(self.model)


#: The official train.py: ``niter=10, niter_decay=40`` epochs -- the rate is constant for the first fifth of training
#: and then falls linearly to 0 (pix2pixHD's schedule); every preset follows it.
LR_DECAY_FROM = 10 / 50

PRESETS: dict[str, Fundus2VideoPreset] = {
    # 64-px eyes, a narrow generator, 150 sequences per row, 3 of Table 1's rows: a few minutes on 2 CPU cores
    "quick": Fundus2VideoPreset(
        "quick",
        steps=150,
        batch_size=2,
        image_size=64,
        n_seeds=1,
        n_train=12,
        n_test=6,
        lr_decay_from=LR_DECAY_FROM,
        augment="flip",
        model=tuple(_QUICK_MODEL.items()),
        rows=("baseline", "all_lesion_mask", MAIN),
    ),
    # the same network 3x longer at the official code's lr 2e-4 (quick's 5e-4 is for speed; the paper prints 2e-3),
    # over 3 seeds, two rows:
    # the committed reference run
    "standard": Fundus2VideoPreset(
        "standard",
        steps=450,
        batch_size=2,
        image_size=64,
        n_seeds=3,
        n_train=12,
        n_test=6,
        lr_decay_from=LR_DECAY_FROM,
        augment="flip",
        model=tuple({**_QUICK_MODEL, "lr": 2e-4}.items()),
        rows=("baseline", MAIN),
    ),
    # Sec. 3.0.2: 512 px, batch 1, 50 epochs over the training eyes, all seven rows (GPU)
    "full": Fundus2VideoPreset(
        "full",
        steps=50 * 245,
        batch_size=1,
        image_size=512,
        n_seeds=1,
        n_train=245,
        n_test=53,
        ckpt_every=1000,
        lr_decay_from=LR_DECAY_FROM,
    ),
}


def datasets(p: Fundus2VideoPreset, root: str | Path) -> tuple[Dataset, Dataset, Dataset]:
    """(training eyes with the preset's augmentation, training eyes as stored, test eyes as stored)."""
    from medsynth.data.fundus2video import VideoDataset

    return (
        VideoDataset(root, "train", augment=p.augment),
        VideoDataset(root, "train", augment="none"),
        VideoDataset(root, "test", augment="none"),
    )


def g_loss_shares(history: list[dict[str, Any]], last: float = 0.5) -> dict[str, float]:
    """Each generator term's share of the total G loss (Eq. 7), averaged over the ``last`` fraction of the log."""
    rows = history[int(len(history) * (1 - last)) :] or history
    terms = sorted({k for r in rows for k in r if k.startswith("G_")})
    tot = {k: float(sum(float(r.get(k, 0.0)) for r in rows)) for k in terms}
    total = sum(tot.values()) or 1.0
    return {k: v / total for k, v in tot.items()}


def run_seed(
    p: Fundus2VideoPreset,
    seed: int,
    train_ds: Dataset,
    train_eval: Dataset,
    test_ds: Dataset,
    out_dir: str | Path,
    device: str = "auto",
    features: str = "random",
    fvd_dims: int = 32,
    resume: bool = False,
) -> dict[str, Any]:
    """Train the preset's Table 1 rows with ``seed`` and score them and the baselines on ``test_ds``.

    ``train_eval``: the training eyes without flips (the baselines' source). Returns ``tasks``,
    ``histories``, ``train_seconds`` (per row) and ``scores`` (row or baseline -> :func:`score_videos`
    output; model rows also carry the videos).
    """
    tasks, histories, seconds, scores = {}, {}, {}, {}
    for row in p.rows:
        task = f2v.Fundus2VideoTask(**p.model_cfg, techniques=f2v.ABLATIONS[row], seed=seed)
        t0 = time.perf_counter()
        histories[row] = presets.train(task, train_ds, p, Path(out_dir) / f"seed{seed}" / row, device, seed, resume)
        seconds[row] = time.perf_counter() - t0
        tasks[row] = task
        scores[row] = f2v.evaluate(task, test_ds, features=features, fvd_dims=fvd_dims)
    scores.update(f2v.evaluate_baselines(train_eval, test_ds, seed=seed, features=features, fvd_dims=fvd_dims))
    return {"seed": seed, "tasks": tasks, "histories": histories, "train_seconds": seconds, "scores": scores}


METRICS = ("SSIM", "PSNR", "LPIPS", "FVD")


def scores_json(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """The four Table 1 metrics per row as plain numbers (per-seed records, metrics.json): ours as ``SSIM`` ...,
    the official convention as ``SSIM_official`` ... when scored (:func:`medsynth.metrics.video_eval.score_videos`)."""
    out = {}
    for row, m in scores.items():
        out[row] = {k: evidence.number(m[k]) for k in METRICS}
        if "official" in m:
            out[row].update({f"{k}_official": evidence.number(m["official"][k]) for k in METRICS})
    return out


def claims(rows: tuple[str, ...]) -> list[evidence.Claim]:
    """Table 1's claims that the trained ``rows`` can test, plus "the full model beats the input-free baselines"."""
    t1, mean = f2v.PAPER_TABLE1, evidence.BASELINES[0]

    def d(a: str, b: str, k: str, sign: float = 1.0) -> Any:
        return lambda r: sign * (r["scores"][a][k] - r["scores"][b][k])

    out = [
        evidence.Claim(
            f"the full model ({MAIN}) beats the baseline row in {k}",
            f"{t1[MAIN][k]} vs {t1['baseline'][k]} (Table 1)",
            d(MAIN, "baseline", k),
            f"{k}({MAIN}) - {k}(baseline)",
        )
        for k in ("SSIM", "PSNR")
        if "baseline" in rows
    ]
    if "all_lesion_mask" in rows:
        out.append(
            evidence.Claim(
                "the knowledge mask beats the GT lesion mask (all techniques) in SSIM",
                f"{t1[MAIN]['SSIM']} vs {t1['all_lesion_mask']['SSIM']} (Table 1)",
                d(MAIN, "all_lesion_mask", "SSIM"),
                f"SSIM({MAIN}) - SSIM(all_lesion_mask)",
            )
        )
    out += [
        evidence.Claim(
            f"the full model beats the mean training video in {k}",
            "implied (not reported)",
            d(MAIN, mean, k),
            f"{k}({MAIN}) - {k}({mean})",
        )
        for k in ("PSNR", "SSIM")
    ]
    return out


def knowledge_mask_margins(pairs: list[tuple[Any, Any, Any]], threshold: float = 45) -> list[float]:
    """Per eye: the knowledge mask's precision against the true leakage minus the leakage's share of the image
    (the precision of a mask drawn at random). ``pairs``: (first frame, last frame, true leakage) in [0, 1]."""
    from medsynth.knowledge import threshold_sweep

    return [float(threshold_sweep([pr], [threshold])["precision"][0] - pr[2].mean()) for pr in pairs]


def knowledge_mask_claim() -> evidence.Claim:
    """Sec. 2.2: the annotation-free mask marks leakage. No training is involved, so the evidence is the spread
    over eyes (a bootstrap over them), not over seeds; ``min_seeds=1``."""
    return evidence.Claim(
        "the knowledge mask (threshold 45) marks leakage better than chance",
        "Sec. 2.2 (no number)",
        lambda r: r["km_margins"],
        "precision - leakage area, per eye",
        rule="bootstrap",
        min_seeds=1,
    )


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The course summary's line: the full model's PSNR in the official convention (the only one comparable with
    Table 1's 11.81 dB) beside the best input-free baseline's, from this run's ``mean_over_seeds``."""
    rows = {k: v["PSNR_official"] for k, v in metrics["mean_over_seeds"].items()}
    return evidence.headline("PSNR, official convention", True, MAIN, rows, "11.81 (Table 1)")
