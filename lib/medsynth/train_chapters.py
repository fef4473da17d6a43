"""What ``python -m medsynth.train`` runs for each chapter: the notebook's data, its ``run_seed`` over the preset's
seeds, and its per-seed records, claims and means, so ``metrics.json`` reads as the notebook's does.

Nothing here is a setting: presets live in ``medsynth.models.<chapter>_run.PRESETS``, tasks and schedules in each
chapter's ``run_seed``; a recipe only wires the same library calls a notebook's cells make, in the same order.
Each recipe returns ``(runs, metrics)``: the ``run_seed`` results per seed and the plain-data metrics.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsynth import evidence, presets
from medsynth.weights import features_for

__all__ = ["Chapter", "CHAPTERS", "find", "mean_records", "retina_phantom", "retina_seq_phantom", "brain_struct_data"]

Recipe = Callable[[Any, int, Any, Path, str], tuple[list[dict[str, Any]], dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class Chapter:
    """A chapter the CLI trains. ``first_seed_top_level``: its notebook trains the first seed in the run folder
    itself and the other seeds in ``seed<k>/`` (chapter 04), where ``run_seed`` always uses ``seed<k>/``."""

    name: str
    module: str
    recipe: Recipe
    first_seed_top_level: bool = False

    @property
    def run(self) -> Any:
        return importlib.import_module(self.module)


def mean_records(records: list[Mapping[str, Any]]) -> Any:
    """The mean over seeds of nested ``{name: {...: number}}`` records (the notebooks' ``mean_over_seeds``)."""
    first = records[0]
    if isinstance(first, Mapping):
        return {k: mean_records([r[k] for r in records]) for k in first}
    return float(np.mean([float(r) for r in records]))


# -- data: the notebooks' phantom recipes -------------------------------------------------------------------------
def retina_phantom(p: Any, data_root: Any, seed: int) -> Any:
    """Chapter 01's data folder: ``data_root``, else the cached retinal phantom pairs (17 train / 14 test eyes)."""
    from medsynth.data import ensure_phantoms
    from medsynth.models.fundus2angio_run import PHANTOM_SPLITS

    return data_root or ensure_phantoms("retina", PHANTOM_SPLITS, size=p.image_hw, seed=seed)


def retina_seq_phantom(p: Any, data_root: Any, seed: int) -> Any:
    """Chapter 05's data folder: ``data_root``, else phantom angiography sequences (as notebook 05's data cell)."""
    from medsynth.data import ensure_phantoms

    return data_root or ensure_phantoms(
        "retina_seq",
        {"train": p.n_train, "test": p.n_test},
        size=(p.image_size, p.image_size),
        seed=seed,
        severity=0.7,
        misalign=0.3,
    )


def brain_struct_data(p: Any, data_root: Any, seed: int) -> tuple[Any, Any]:
    """Chapter 04's (train, test) slices: ``data_root`` in the standard layout, else brain phantoms (notebook 04)."""
    from medsynth.models import structsynth_run as pipe
    from medsynth.models.structsynth.data import BrainStructDataset

    size = p.image_size
    kw = dict(alg1=pipe.alg1_for(size), alg2=pipe.alg2_for(size))
    if data_root:
        return (
            BrainStructDataset.from_layout(data_root, "train", size, limit=p.n_train, **kw),
            BrainStructDataset.from_layout(data_root, "test", size, limit=p.n_test, **kw),
        )
    base = seed * 100000
    return (
        BrainStructDataset(range(base, base + p.n_train), size, **kw),
        BrainStructDataset(range(base + 50000, base + 50000 + p.n_test), size, **kw),
    )


# -- recipes --------------------------------------------------------------------------------------------------------
def _fundus2angio(p: Any, seed: int, data_root: Any, out: Path, device: str):
    from medsynth import data as msdata
    from medsynth.models import fundus2angio_run as run
    from medsynth.models.fundus2angio import quadrant_crops

    root = retina_phantom(p, data_root, seed)
    train_set = run.train_set(p, root, crop_seed=seed)
    test = [msdata.load_pair(root, "test", i) for i in msdata.list_ids(root, "test", "fundus")]
    src = torch.cat([quadrant_crops(x["src"], p.image_size) for x in test])
    real = torch.cat([quadrant_crops(x["dst"], p.image_size) for x in test])
    targets = torch.cat(
        [quadrant_crops(msdata.load_pair(root, "train", i)["dst"], p.image_size) for i in train_set.ids]
    )
    fid, vgg = features_for("inception"), features_for("vgg19")
    dims = 2048 if fid == "pretrained" else 64
    runs = [
        run.run_seed(p, s, train_set, src, real, targets, out, device, fid, dims, vgg)
        for s in presets.seeds_of(p, seed)
    ]
    records = [{"seed": r["seed"], "scores": run.scores_json(r["scores"])} for r in runs]
    comparable = runs[0]["scores"]["Fundus2Angio"]["fid"].comparable
    claims = run.claims("FID" if comparable else f"FID[{fid} {dims}-d]")
    return runs, {
        "fid_features": fid,
        "fid_dims": dims,
        "vgg_features": vgg,
        "per_seed": records,
        "mean_over_seeds": mean_records([r["scores"] for r in records]),
        "claims": evidence.evaluate_claims(claims, records),
    }


def _medgan(p: Any, seed: int, data_root: Any, out: Path, device: str):
    from medsynth.data.medgan_tasks import make_medgan_data
    from medsynth.models import medgan_run as run

    if data_root is not None:
        raise ValueError(f"--data-root {data_root}: chapter 02 runs on the brain phantom only so far")
    if p.image_size != 2**p.num_downs:
        raise ValueError(f"image_size={p.image_size}: a U-block of {p.num_downs} stages needs {2**p.num_downs}")
    train, test = (
        make_medgan_data(p.n_train, p.image_size, seed, "train"),
        make_medgan_data(p.n_test, p.image_size, seed, "test"),
    )
    vgg, lp = features_for("vgg19"), features_for("alexnet", "lpips_alex")
    runs = [run.run_seed(p, s, train, test, out, device, vgg, lp) for s in presets.seeds_of(p, seed)]
    records = [{"seed": r["seed"], "scores": run.scores_json(r["scores"])} for r in runs]
    return runs, {
        "vgg_features": vgg,
        "lpips_features": lp,
        "tasks": list(p.tasks),
        "per_seed": records,
        "mean_over_seeds": mean_records([r["scores"] for r in records]),
        "claims": evidence.evaluate_claims(run.claims(p.tasks), records),
    }


def _retigan(p: Any, seed: int, data_root: Any, out: Path, device: str):
    from medsynth.models import retigan_run as run
    from medsynth.nbutils import shared_data_dir

    data = run.chapter_data(p, data_root, shared_data_dir(), seed)
    vgg = features_for("vgg19")
    runs = [run.run_seed(p, s, data, out, device, vgg) for s in presets.seeds_of(p, seed)]
    records = [run.seed_record(r) for r in runs]
    return runs, {
        "data": data.source,
        "protocol": data.protocol,
        "vgg_features": vgg,
        "per_seed": records,
        "mean_over_seeds": run.mean_over_seeds(records),
        "claims": evidence.evaluate_claims(run.claims(p.ablation, p.downstream), records),
    }


def _structsynth(p: Any, seed: int, data_root: Any, out: Path, device: str):
    from medsynth.models import structsynth_run as pipe

    train, test = brain_struct_data(p, data_root, seed)
    fid = features_for("inception")
    dims = 2048 if fid == "pretrained" else 64
    seeds = presets.seeds_of(p, seed)
    records = [pipe.run_seed(p, s, train, test, out, device, fid, dims, data_root) for s in seeds]
    fid_name = "FID" if (fid == "pretrained" and dims == 2048) else f"FID[{fid} {dims}-d]"
    claims = pipe.claims(p.rows, fid_name, contrast=records[0]["contrast"] is not None)
    t5 = {
        f"row {x['NO.']}": [next(y["dice"] for y in r["table5"]["rows"] if y["NO."] == x["NO."]) for r in records]
        for x in records[0]["table5"]["rows"]
    }
    t5.update({k: [r["table5"]["baselines"][k]["dice"] for r in records] for k in records[0]["table5"]["baselines"]})
    mean_fid = {k: float(np.mean([r["quality"][k]["FID"] for r in records])) for k in records[0]["quality"]}
    return records, {
        "fid_features": fid,
        "fid_dims": dims,
        "fid_label": records[0]["quality"]["F (full)"]["label"],
        "per_seed": records,
        "claims": evidence.evaluate_claims(claims, records),
        "mean_over_seeds": {"table5_dice": {k: float(np.mean(v)) for k, v in t5.items()}, "fid": mean_fid},
    }


def _fundus2video(p: Any, seed: int, data_root: Any, out: Path, device: str):
    from medsynth.models import fundus2video_run as run

    train_ds, train_eval, test_ds = run.datasets(p, retina_seq_phantom(p, data_root, seed))
    features = features_for("alexnet", "lpips_alex", "i3d")
    dims = 400 if features == "pretrained" else 32
    runs = [
        run.run_seed(p, s, train_ds, train_eval, test_ds, out, device, features, dims)
        for s in presets.seeds_of(p, seed)
    ]
    records = [{"seed": r["seed"], "scores": run.scores_json(r["scores"])} for r in runs]
    return runs, {
        "metric_features": features,
        "per_seed": records,
        "mean_over_seeds": mean_records([r["scores"] for r in records]),
        "claims": evidence.evaluate_claims(run.claims(p.rows), records),
    }


CHAPTERS: dict[str, Chapter] = {
    c.name: c
    for c in (
        Chapter("01_fundus2angio", "medsynth.models.fundus2angio_run", _fundus2angio),
        Chapter("02_medgan", "medsynth.models.medgan_run", _medgan),
        Chapter("03_retigan", "medsynth.models.retigan_run", _retigan),
        Chapter("04_structure_maps", "medsynth.models.structsynth_run", _structsynth, first_seed_top_level=True),
        Chapter("05_fundus2video", "medsynth.models.fundus2video_run", _fundus2video),
    )
}


def find(name: str) -> Chapter:
    """A chapter by number (``1``, ``01``), full name (``01_fundus2angio``) or short name (``fundus2angio``)."""
    key = name.strip().lower()
    for c in CHAPTERS.values():
        num, short = c.name.split("_", 1)
        if key in (c.name, num, num.lstrip("0"), short) or (key.isdigit() and int(key) == int(num)):
            return c
    raise ValueError(f"unknown chapter {name!r}; choose one of {', '.join(CHAPTERS)}")
