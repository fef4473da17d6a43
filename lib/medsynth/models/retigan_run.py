"""Chapter 03's runs: presets, data, one seed's train-and-evaluate, the ablation, the downstream test, claims.

One seed (:func:`run_seed`) trains, on the same (tree, photograph) training pairs:

1. the vessel segmenter on the real photographs (:mod:`medsynth.models.vessel_segmenter`), scored inside the
   FOV on the test images beside the mean-training-label baseline;
2. RetiGAN and its ablations (:data:`VARIANTS`), scored on the test trees: SSIM/PSNR of the generated photograph
   against the real one, and **structure preservation** -- the segmenter run on the generated photograph,
   Dice/sensitivity against the input tree inside the FOV -- beside the mean and a random training photograph;
3. the downstream test: RetiGAN turns phantom trees into synthetic pairs; segmenters trained on them alone and
   mixed with the real training pairs are scored on the real test images against the real-only segmenter.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from medsynth import evidence, presets
from medsynth.blocks import count_params
from medsynth.metrics import psnr, ssim
from medsynth.metrics.vessel import fov_scores
from medsynth.models import translate
from medsynth.models import vessel_segmenter as vseg
from medsynth.models.retigan import RetiGANTask, TreePhotoDataset, tree_input
from medsynth.models.vessel_data import VesselSet, drive_protocol, outside_black, phantom_set

__all__ = [
    "RetiGANPreset",
    "PRESETS",
    "VARIANTS",
    "PRIMARY",
    "ChapterData",
    "chapter_data",
    "build_task",
    "run_seed",
    "claims",
    "scores_json",
    "DOWNSTREAM_ROWS",
    "seed_record",
    "mean_over_seeds",
    "headline",
]

#: Ablation rows (the issue's; the paper's own ablation table could not be found): name -> RetiGANTask overrides.
VARIANTS: dict[str, dict[str, Any]] = {
    "RetiGAN": {},
    "no smoothed negatives": {"smooth_negatives": False},
    "no VGG loss": {"vgg_features": "off"},
    "single-scale D": {"num_d": 1},
}
DOWNSTREAM_ROWS = ("real only", "synthetic only", "real + synthetic")
#: Structure preservation, the paper's central claim: Dice of the segmented synthetic photo vs its input tree.
PRIMARY = ("structure_dice", True)
MEAN, RANDOM = evidence.BASELINES[0], evidence.BASELINES[1]
SEG_MEAN = "mean training label"  # the segmentation tables' input-free row: the pixel-wise mean training label


@dataclasses.dataclass(frozen=True)
class RetiGANPreset(presets.Preset):
    """Chapter 03's schedule. ``image_size``: the square working size of every image; G/D/segmenter widths;
    ``seg_steps``: segmenter Adam steps (each segmenter of the seed); ``n_synthetic``: phantom trees turned
    into synthetic pairs for the downstream test; ``n_phantom``: (train, test) eyes when no DRIVE is reachable."""

    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    seg_width: int = 64
    seg_steps: int = 2000
    seg_batch: int = 4
    n_synthetic: int = 20
    n_phantom: tuple[int, int] = (15, 5)
    smooth_dilate: int = 2  # edge band half-width (px) of the smoothed negatives; 1 at 64 px keeps it at edges
    ablation: bool = True
    downstream: bool = True
    flips: bool = True  # random flips of the GAN's and the segmenters' training images (False: none)


PRESETS: dict[str, RetiGANPreset] = {
    # 64-px images, quarter widths, 3 instead of 9 residual blocks, 60 GAN steps; ~4 min on 2 busy CPU cores
    "quick": RetiGANPreset(
        "quick",
        steps=60,
        batch_size=2,
        image_size=64,
        n_seeds=1,
        log_every=10,
        ngf=16,
        n_blocks=3,
        ndf=16,
        seg_width=8,
        seg_steps=150,
        n_synthetic=15,
        smooth_dilate=1,
    ),
    # the same networks, 2.5x longer GAN and 2x longer segmenter training, over 3 seeds: the committed reference run
    "standard": RetiGANPreset(
        "standard",
        steps=150,
        batch_size=2,
        image_size=64,
        n_seeds=3,
        log_every=15,
        ngf=16,
        n_blocks=3,
        ndf=16,
        seg_width=8,
        seg_steps=300,
        n_synthetic=15,
        smooth_dilate=1,
    ),
    # near DRIVE's size (584x565 -> 576^2), the walk-through's widths; pix2pixHD's 100 + 100 epoch schedule on
    # 15-20 images at batch 1 (RetiGAN's own schedule could not be found); for a GPU
    "full": RetiGANPreset(
        "full",
        steps=4000,
        batch_size=1,
        image_size=576,
        n_seeds=1,
        log_every=50,
        ckpt_every=500,
        lr_decay_from=0.5,
        ngf=64,
        n_blocks=9,
        ndf=64,
        seg_width=64,
        seg_steps=4000,
        n_synthetic=40,
        smooth_dilate=4,
    ),
}


@dataclasses.dataclass
class ChapterData:
    """Training and test (tree, photograph) pairs, how they were split, and the phantom trees for the downstream
    test."""

    train: VesselSet
    test: VesselSet
    protocol: str
    source: str
    trees: VesselSet


def chapter_data(
    p: RetiGANPreset, data_root: str | Path | None, shared: str | Path | None, seed: int = 0
) -> ChapterData:
    """Real DRIVE when reachable (``data_root`` = a converted DRIVE, or ``shared``/DRIVE), else phantom eyes."""
    found = drive_protocol(data_root, shared, p.image_size)
    if data_root is not None and found is None:
        from medsynth.data.layout import read_meta

        raise ValueError(
            f"data_root {data_root}: expected a DRIVE converted by data_scripts/convert_drive.py "
            f"(meta.json kind 'drive'), found kind {read_meta(data_root).get('kind')!r}"
        )
    trees = phantom_set(p.n_synthetic, p.image_size, seed=10_000 + seed)  # never the phantom test eyes
    if found is not None:
        train, test, protocol = found
        return ChapterData(train, test, protocol, "DRIVE", trees)
    n_tr, n_te = p.n_phantom
    train = phantom_set(n_tr, p.image_size, seed=seed)
    test = phantom_set(n_te, p.image_size, seed=5_000 + seed)
    return ChapterData(
        train, test, f"phantom eyes (no DRIVE found): {n_tr} for training, {n_te} for testing", "phantom", trees
    )


def build_task(
    p: RetiGANPreset, seed: int, vgg_features: str, overrides: Mapping[str, Any] | None = None
) -> RetiGANTask:
    """RetiGAN at the preset's widths, seeded; ``overrides`` (a :data:`VARIANTS` entry) switch parts off."""
    kw = dict(ngf=p.ngf, n_blocks=p.n_blocks, ndf=p.ndf, vgg_features=vgg_features, lr=2e-4, seed=seed)
    return RetiGANTask(**{**kw, **(overrides or {})})


def _seg(p: RetiGANPreset, data: VesselSet, out: Path, seed: int, device: str) -> tuple[torch.nn.Module, list]:
    net = vseg.build(p.seg_width, seed=seed)
    items = data if p.flips else vseg.VesselCrops(data, flip=False)
    hist = vseg.train(
        net,
        items,
        p.seg_steps,
        out,
        batch_size=p.seg_batch,
        seed=seed,
        device=device,
        log_every=max(1, p.seg_steps // 10),
    )
    return net.cpu(), hist


def _photo_scores(net: torch.nn.Module, photos: torch.Tensor, test: VesselSet) -> dict[str, float]:
    """SSIM/PSNR against the real photographs ([0,1]) and the segmenter's recovery of the input tree in the FOV."""
    x, real = (photos.clamp(-1, 1) + 1) / 2, (test.images + 1) / 2
    rec = fov_scores(vseg.predict(net, photos), test.vessels > 0.5, test.fov)
    return {
        "ssim": float(ssim(x, real)),
        "psnr": float(psnr(x, real)),
        "structure_dice": rec["dice"],
        "structure_sensitivity": rec["sensitivity"],
        "structure_auc": rec["auc"],
    }


def run_seed(
    p: RetiGANPreset,
    seed: int,
    data: ChapterData,
    out_dir: str | Path,
    device: str = "auto",
    vgg_features: str = "random",
) -> dict[str, Any]:
    """One seed of the chapter (see the module docstring). Returns scores, histories, params, fakes, seconds."""
    out = Path(out_dir) / f"seed{seed}"
    t0 = time.perf_counter()
    seg, seg_hist = _seg(p, data.train, out / "segmenter_real", seed, device)
    mean_label = data.train.vessels.mean(0, keepdim=True).expand_as(data.test.vessels)
    segmenter = {
        "U-Net (real training images)": vseg.evaluate_fov(seg, data.test),
        SEG_MEAN: vseg.evaluate_fov(None, data.test, prob=mean_label),
    }
    seconds = {"segmenter": time.perf_counter() - t0}

    train_set = TreePhotoDataset(data.train, flip=p.flips, smooth_kwargs={"dilate": p.smooth_dilate})
    src = tree_input(data.test.vessels, data.test.fov)
    variants = VARIANTS if p.ablation else {"RetiGAN": {}}
    tasks, histories, fakes = {}, {}, {}
    for name, kw in variants.items():
        t0 = time.perf_counter()
        task = build_task(p, seed, vgg_features, kw)
        histories[name] = presets.train(task, train_set, p, out / name.replace(" ", "_"), device, seed)
        fakes[name] = translate(task, src, batch_size=4)
        tasks[name] = task
        seconds[name] = time.perf_counter() - t0
    base = evidence.baseline_predictions(data.train.images, len(data.test), seed=seed)
    photos = {
        **fakes,
        **{k: outside_black(v, data.test.fov) for k, v in base.items()},
        "real photograph": data.test.images,
    }
    gan = {name: _photo_scores(seg, ph, data.test) for name, ph in photos.items()}

    downstream: dict[str, dict[str, float]] = {}
    synthetic = None
    if p.downstream:
        t0 = time.perf_counter()
        g = tasks["RetiGAN"]
        synth_photos = outside_black(
            translate(g, tree_input(data.trees.vessels, data.trees.fov), batch_size=4), data.trees.fov
        )
        synthetic = VesselSet(
            synth_photos, data.trees.vessels, data.trees.fov, data.trees.ids, "RetiGAN(phantom trees)"
        )
        net_s, _ = _seg(p, synthetic, out / "segmenter_synthetic", seed, device)
        net_m, _ = _seg(p, data.train + synthetic, out / "segmenter_mixed", seed, device)
        downstream = {
            "real only": segmenter["U-Net (real training images)"],
            "synthetic only": vseg.evaluate_fov(net_s, data.test),
            "real + synthetic": vseg.evaluate_fov(net_m, data.test),
            SEG_MEAN: segmenter[SEG_MEAN],
        }
        seconds["downstream"] = time.perf_counter() - t0
    return {
        "seed": seed,
        "segmenter_net": seg,
        "segmenter_history": seg_hist,
        "segmenter": segmenter,
        "tasks": tasks,
        "histories": histories,
        "fakes": fakes,
        "gan": gan,
        "downstream": downstream,
        "synthetic": synthetic,
        "train_seconds": seconds,
        "params": {n: {k: count_params(m) for k, m in t.nets.items()} for n, t in tasks.items()},
    }


def _g(run: Mapping[str, Any], table: str, row: str, metric: str) -> float:
    return evidence.number(run[table][row][metric])


def claims(ablation: bool = True, downstream: bool = True) -> list[evidence.Claim]:
    """The paper's testable claims (structure preservation, the smoothed negatives, VGG, multi-scale D) and ours."""
    seg = "U-Net (real training images)"
    nf = "claimed; number not found"
    c = [
        evidence.Claim(
            "the U-Net segmenter beats the mean training label (AUC in the FOV)",
            "implied (thesis AUC 0.9705)",
            lambda r: _g(r, "segmenter", seg, "auc") - _g(r, "segmenter", SEG_MEAN, "auc"),
            f"AUC(U-Net) - AUC({SEG_MEAN})",
        ),
        evidence.Claim(
            "RetiGAN's photographs preserve the input tree better than the mean training photograph",
            f"{nf} (central claim)",
            lambda r: _g(r, "gan", "RetiGAN", "structure_dice") - _g(r, "gan", MEAN, "structure_dice"),
            f"Dice_tree(RetiGAN) - Dice_tree({MEAN})",
        ),
        evidence.Claim(
            "... and better than a random real training photograph",
            f"{nf} (central claim)",
            lambda r: _g(r, "gan", "RetiGAN", "structure_dice") - _g(r, "gan", RANDOM, "structure_dice"),
            f"Dice_tree(RetiGAN) - Dice_tree({RANDOM})",
        ),
        evidence.Claim(
            "RetiGAN beats the mean training photograph in SSIM against the real photograph",
            "implied (SSIM reported; number not found)",
            lambda r: _g(r, "gan", "RetiGAN", "ssim") - _g(r, "gan", MEAN, "ssim"),
            f"SSIM(RetiGAN) - SSIM({MEAN})",
        ),
    ]
    if ablation:
        for other, paper in (
            ("no smoothed negatives", f"{nf} (sharper edges)"),
            ("no VGG loss", f"{nf} (semantic content)"),
            ("single-scale D", "pix2pixHD Sec. 3.2 (multi-scale D)"),
        ):
            c.append(
                evidence.Claim(
                    f"RetiGAN preserves the tree better than its '{other}' ablation",
                    paper,
                    lambda r, o=other: _g(r, "gan", "RetiGAN", "structure_dice") - _g(r, "gan", o, "structure_dice"),
                    f"Dice_tree(RetiGAN) - Dice_tree({other})",
                )
            )
    if downstream:
        c += [
            evidence.Claim(
                "adding RetiGAN's synthetic pairs to the real ones improves the segmenter (Dice)",
                "beyond the paper",
                lambda r: _g(r, "downstream", "real + synthetic", "dice") - _g(r, "downstream", "real only", "dice"),
                "Dice(real + synthetic) - Dice(real only)",
            ),
            evidence.Claim(
                "a segmenter trained on synthetic pairs alone beats the mean training label (AUC)",
                "beyond the paper",
                lambda r: _g(r, "downstream", "synthetic only", "auc") - _g(r, "downstream", SEG_MEAN, "auc"),
                f"AUC(synthetic only) - AUC({SEG_MEAN})",
            ),
        ]
    return c


def scores_json(table: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """A score table as plain numbers per row (for metrics.json)."""
    return {row: {k: evidence.number(v) for k, v in m.items()} for row, m in table.items()}


def seed_record(run: Mapping[str, Any]) -> dict[str, Any]:
    """One seed's numbers as plain data (what the claims read and metrics.json stores)."""
    return {"seed": run["seed"], **{t: scores_json(run[t]) for t in ("segmenter", "gan", "downstream")}}


def mean_over_seeds(records: list[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{table: {row: {metric: {"mean", "sd", "n"}}}}`` over the seeds' records (non-finite values skipped)."""
    import math

    import numpy as np

    out: dict = {}
    for t in ("segmenter", "gan", "downstream"):
        out[t] = {}
        for row in records[0][t]:
            out[t][row] = {}
            for k in records[0][t][row]:
                v = [r[t][row][k] for r in records if r[t][row][k] is not None and math.isfinite(r[t][row][k])]
                out[t][row][k] = {
                    "mean": float(np.mean(v)) if v else float("nan"),
                    "sd": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"),
                    "n": len(v),
                }
    return out


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The course summary's line: the tree recovered from RetiGAN's photographs (Dice of the segmenter's map
    against the input tree) beside the best input-free baseline's, from this run's ``mean_over_seeds``."""
    rows = {k: v["structure_dice"]["mean"] for k, v in metrics["mean_over_seeds"]["gan"].items()}
    return evidence.headline("tree Dice", True, "RetiGAN", rows, "number not found")
