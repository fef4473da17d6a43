"""Presets: one dataclass per chapter says what "quick", "standard" and "full" mean.

* ``quick``    -- the default: at most 5 minutes on a 2-core CPU (tests, ``make course``).
* ``standard`` -- at most ~45 minutes per chapter on 2 CPU cores, over several seeds; its runs are
  the committed reference results (``make reference`` -> ``results/<chapter>/``).
* ``full``     -- the paper's resolution and schedule, for a GPU.

Each chapter's model module subclasses :class:`Preset` with its own fields and defines
``PRESETS = {"quick": ..., "standard": ..., "full": ...}``. A notebook picks one with
:func:`choose`, overriding fields from its parameters cell (``None`` keeps the preset's value), and
trains through :func:`train`, so the loop settings live in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from torch.utils.data import Dataset

from medsynth.training import GANTask, TrainConfig, Trainer

__all__ = ["Preset", "choose", "train", "seeds_of"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """Fields every chapter has. ``n_seeds``: how many seeds (``seed, seed+1, ...``) the claims rest on."""

    name: str
    steps: int
    batch_size: int
    image_size: int
    n_seeds: int = 1
    log_every: int = 10
    ckpt_every: int = 0  # 0: only at the end
    lr_decay_from: float | None = None  # linear lr decay to 0 over the last (1 - this) of the steps; None: constant

    def describe(self) -> str:
        fields = dataclasses.asdict(self)
        return f"preset {fields.pop('name')!r}: " + ", ".join(f"{k}={v}" for k, v in fields.items())


P = TypeVar("P", bound=Preset)


def choose(presets: Mapping[str, P], name: str, **overrides: Any) -> P:
    """``presets[name]`` with the non-None ``overrides`` applied; clear errors for unknown names."""
    if name not in presets:
        raise ValueError(f"preset {name!r} unknown; choose one of {sorted(presets)}")
    base = presets[name]
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(k for k in overrides if k not in fields)
    if unknown:
        raise ValueError(f"preset {name!r} has no field(s) {unknown}; its fields are {sorted(fields)}")
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def seeds_of(preset: Preset, seed: int) -> list[int]:
    """The seeds a preset's claims rest on: ``seed, seed + 1, ..., seed + n_seeds - 1``."""
    return [seed + i for i in range(max(1, preset.n_seeds))]


def train(
    task: GANTask,
    dataset: Dataset,
    preset: Preset,
    out_dir: str | Path,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    batch_multiplier: int = 1,
    steps: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train ``task`` with the preset's schedule through the course's :class:`~medsynth.training.Trainer`.

    ``batch_multiplier``: batches a task draws per iteration (Fundus2Angio's three, one per D update and
    one for G); ``steps`` overrides the preset's (ablation rows). Returns the logged history.
    """
    n = steps or preset.steps
    cfg = TrainConfig(
        steps=n,
        out_dir=out_dir,
        batch_size=preset.batch_size * batch_multiplier,
        log_every=preset.log_every,
        sample_every=n,
        ckpt_every=preset.ckpt_every or n,
        device=device,
        seed=seed,
        resume=resume,
        progress=progress,
        lr_decay_start=None if preset.lr_decay_from is None else int(n * preset.lr_decay_from),
    )
    return Trainer(task, dataset, cfg).fit()
