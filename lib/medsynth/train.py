"""``python -m medsynth.train <chapter>``: train a chapter's models headless, on one device or many (``torchrun``).

It trains exactly what the chapter's notebook trains -- the presets of ``medsynth.models.<chapter>_run.PRESETS``,
the tasks and schedules of that module's ``run_seed``, over the preset's seeds -- and scores them with the same
code, writing into ``--out-dir``: per model ``seed<k>/<model>/{checkpoint.pt, log.jsonl, samples/}``, and
``metrics.json`` (per-seed scores, mean over seeds, claims), ``claims.md`` and ``run.json`` (what was run).
A notebook evaluates such a folder instead of training (its ``train_dir`` parameter, :func:`load_run`).

Several processes: ``torchrun --nproc_per_node=N -m medsynth.train ...`` runs DDP (NCCL on GPUs, gloo on CPU).
The rule: **the preset's ``batch_size`` is the global batch**, split evenly over the N processes (it must be a
multiple of N), and **the learning rate is the preset's**, unchanged: N processes take the same optimisation steps
as one process with the whole batch (each sees ``batch_size / N`` of the same samples; DDP averages the gradients),
so the paper's schedule is kept. What differs: BatchNorm statistics are computed per process (as pix2pixHD's
multi-GPU runs), and random draws (dropout, flips, crops) come from one stream per process (seed + rank). For a
larger batch, raise it with ``--set batch_size=...`` and choose the learning rate yourself (``--set lr=...`` where
the preset has one; the linear scaling rule is one choice, not applied for you).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from medsynth import evidence, presets
from medsynth.nbutils import REPO_ROOT, write_claims, write_metrics
from medsynth.train_chapters import CHAPTERS, Chapter, find
from medsynth.training import set_config_overrides

__all__ = ["main", "parse_sets", "preset_for", "LoadedRun", "load_run"]

EPILOG = """\
examples:
  python -m medsynth.train 01 --preset quick --out-dir runs/f2a
  python -m medsynth.train 05 --preset full --data-root /data/f2v --set steps=2000 --out-dir runs/f2v
  (after a kill: the same command again with --resume; each model continues from its checkpoint)
  torchrun --nproc_per_node=4 -m medsynth.train 01 --preset full --out-dir runs/f2a_full
several nodes (torchrun's own rendezvous; the same command on every node, --out-dir on a shared filesystem):
  torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 --rdzv_id=f2a \\
      -m medsynth.train 01 --preset full --out-dir /shared/runs/f2a_full
  (or --nnodes=2 --node_rank=0|1 --master_addr=HOST --master_port=29500 with the static rendezvous)
global batch = the preset's batch_size, split over all processes (a multiple of their number); learning rate =
the preset's, not rescaled (a batch of 1, the full presets of 03-05, needs --set batch_size=N on N GPUs).
Resume a DDP run with the same number of processes."""


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["steps=20", "rows=('A','F')"]`` -> ``{"steps": 20, "rows": ("A", "F")}`` (Python literals, else text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected key=value, e.g. --set steps=20")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def preset_for(chapter: Chapter, name: str, overrides: dict[str, Any]) -> presets.Preset:
    """The chapter's preset ``name`` with ``overrides``, chosen as its notebook chooses it (the chapter's own
    ``choose`` for image_size/steps/batch_size where it has one, e.g. chapter 01's), then the other fields."""
    run = chapter.run
    own = {k: overrides[k] for k in ("image_size", "steps", "batch_size") if k in overrides}
    rest = {k: v for k, v in overrides.items() if k not in own}
    p = run.choose(name, **own) if hasattr(run, "choose") else presets.choose(run.PRESETS, name, **own)
    return presets.choose({name: p}, name, **rest)


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _check_run_file(path: Path, spec: dict[str, Any], resume: bool) -> None:
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    if not resume:
        raise SystemExit(
            f"{path.parent} already holds a run of {old.get('chapter')}: pass --resume to continue it, "
            "or choose another --out-dir"
        )
    diff = {k: (old.get(k), v) for k, v in spec.items() if old.get(k) != v}
    if diff:
        raise SystemExit(
            f"--resume: {path} was run with other settings: "
            + ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in diff.items())
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m medsynth.train",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("chapter", help=f"a chapter number or name: {', '.join(CHAPTERS)}")
    ap.add_argument("--preset", default="quick", choices=["quick", "standard", "full"])
    ap.add_argument("--data-root", default=None, help="a dataset in the standard layout (default: phantoms)")
    ap.add_argument("--out-dir", type=Path, default=None, help="default: runs/train/<chapter>")
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset field (repeatable), e.g. --set steps=20 --set batch_size=8",
    )
    ap.add_argument("--seed", type=int, default=0, help="first seed; the preset's n_seeds seeds follow it")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (under torchrun: cuda:LOCAL_RANK or cpu)")
    ap.add_argument("--resume", action="store_true", help="continue every model from its checkpoint in --out-dir")
    args = ap.parse_args(argv)
    try:
        chapter = find(args.chapter)
        overrides = parse_sets(args.sets)
        p = preset_for(chapter, args.preset, overrides)
    except ValueError as exc:
        ap.error(str(exc))
    rank, world = _rank()
    out = Path(args.out_dir or REPO_ROOT / "runs" / "train" / chapter.name)
    spec = {
        "chapter": chapter.name,
        "preset": args.preset,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "seed": args.seed,
        "data_root": None if args.data_root is None else str(args.data_root),
    }
    if rank == 0:
        _check_run_file(out / "run.json", spec, args.resume)
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({**spec, "world_size": world}, indent=2) + "\n")
        print(
            f"{chapter.name}: {p.describe()}\n{world} process(es); global batch {p.batch_size}"
            + (f" = {world} x {p.batch_size // world}" if world > 1 else "")
            + f"; run folder {out}",
            flush=True,
        )
    t0 = time.perf_counter()
    previous = set_config_overrides(resume=args.resume, batch_is_global=True)
    try:
        runs, metrics = chapter.recipe(p, args.seed, args.data_root, out, args.device)
    finally:
        set_config_overrides(**previous)
    if rank == 0:
        import torch

        from medsynth.device import pick_device

        device = ("cuda" if torch.cuda.is_available() else "cpu") if world > 1 else str(pick_device(args.device))
        claims_md = evidence.claims_markdown(metrics["claims"])
        write_claims(out, claims_md)
        path = write_metrics(
            out,
            {
                "chapter": chapter.name,
                "preset": p,
                "seeds": presets.seeds_of(p, args.seed),
                "device": device,
                "world_size": world,
                "global_batch": p.batch_size,
                "trained_by": "python -m medsynth.train",
                "torch": torch.__version__,
                **metrics,
                "wall_seconds": round(time.perf_counter() - t0, 1),
            },
        )
        print(f"\n{claims_md}\n\nwrote {path} ({time.perf_counter() - t0:.0f} s)", flush=True)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank tears the process group down while rank 0 still writes
        dist.destroy_process_group()
    return 0


class LoadedRun(NamedTuple):
    """What a notebook needs to evaluate a CLI run: the run's preset, first seed, seeds and data folder."""

    preset: presets.Preset
    seed: int
    seeds: list[int]
    data_root: str | None


def load_run(chapter: str, train_dir: str | Path, out_dir: str | Path | None = None) -> LoadedRun:
    """Make this process evaluate the models that ``python -m medsynth.train`` trained in ``train_dir``.

    Returns the run's preset, seeds and data (a notebook uses them in place of its own parameters), mirrors every
    ``checkpoint.pt`` of ``train_dir`` into ``out_dir`` (a link; ``log.jsonl`` copied) at the path the notebook's
    own training uses, and from then on makes every :class:`~medsynth.training.Trainer` of this process resume:
    a finished model is loaded, not trained (``train_dir`` is only read). A model the run lacks is trained here,
    with a warning naming its checkpoint.
    """
    c = find(chapter)
    train_dir = Path(train_dir)
    spec_file = train_dir / "run.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"{spec_file}: not a run of `python -m medsynth.train` (no run.json)")
    spec = json.loads(spec_file.read_text())
    if spec["chapter"] != c.name:
        raise ValueError(f"{train_dir} is a run of {spec['chapter']}, not of {c.name}")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["overrides"].items()}
    p = preset_for(c, spec["preset"], overrides)
    seeds = presets.seeds_of(p, spec["seed"])
    if out_dir is not None and Path(out_dir).resolve() != train_dir.resolve():
        _mirror(train_dir, Path(out_dir), f"seed{seeds[0]}" if c.first_seed_top_level else None)
    set_config_overrides(resume=True, expect_checkpoint=True)
    return LoadedRun(p, spec["seed"], seeds, spec["data_root"])


def _mirror(src: Path, dst: Path, top_level_seed: str | None) -> None:
    """Link ``src``'s checkpoints into ``dst`` at the same paths; ``top_level_seed``: that seed's also one level up
    (a notebook that trains its first seed in the run folder itself, as chapter 04's)."""
    for ckpt in sorted(src.rglob("checkpoint.pt")):
        rel = ckpt.parent.relative_to(src)
        targets = [rel]
        if top_level_seed is not None and rel.parts and rel.parts[0] == top_level_seed:
            targets.append(Path(*rel.parts[1:]))
        for t in targets:
            target = dst / t
            target.mkdir(parents=True, exist_ok=True)
            link = target / "checkpoint.pt"
            link.unlink(missing_ok=True)
            try:
                link.symlink_to(ckpt.resolve())
            except OSError:  # no symlinks (some Windows setups): copy
                shutil.copy2(ckpt, link)
            if (ckpt.parent / "log.jsonl").is_file():
                shutil.copy2(ckpt.parent / "log.jsonl", target / "log.jsonl")


if __name__ == "__main__":
    sys.exit(main())
