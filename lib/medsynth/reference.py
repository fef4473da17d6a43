"""``python -m medsynth.reference``: run chapters in a preset and commit-ready results (``make reference``).

For each chosen chapter the notebook is executed headless (papermill, through
:func:`medsynth.course.run_notebook`) with ``preset=<preset>`` into ``runs/reference/<chapter>/``;
then ``results/<chapter>/`` receives what a reader needs without rerunning it:

* ``metrics.json`` -- everything the notebook computed, baselines and per-seed values included;
* ``claims.md``    -- the computed claims table;
* ``fig_*.png``    -- the figures the notebook saved (2-4 per chapter);
* ``env.json``     -- device, versions, preset, wall time, commit.

The notebooks read ``results/<chapter>/metrics.json`` back to show "paper | reference run | this run".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from medsynth.course import _literal, chapters, run_notebook
from medsynth.nbutils import REPO_ROOT

__all__ = ["environment", "git_commit", "collect", "main"]


def git_commit() -> str | None:
    """HEAD of the repository, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return None
    return (head + ("+dirty" if dirty else "")) or None


def environment(preset: str, wall_seconds: float, device: str, commit: str | None) -> dict[str, Any]:
    """Where and how a reference run was made; ``commit``: the code's commit when the run started."""
    import numpy
    import torch
    import torchvision

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "preset": preset,
        "device": device,
        "gpu": gpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "wall_seconds": round(wall_seconds, 1),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def collect(run_dir: Path, dest: Path, env: dict[str, Any]) -> list[Path]:
    """Copy a run's metrics.json, claims.md and fig_*.png into ``dest`` and write env.json there."""
    for required in ("metrics.json", "claims.md"):
        if not (run_dir / required).is_file():
            raise FileNotFoundError(f"{run_dir / required}: the notebook did not write it")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("fig_*.png"):
        old.unlink()
    copied = [
        Path(shutil.copy2(p, dest / p.name))
        for p in [run_dir / "metrics.json", run_dir / "claims.md", *sorted(run_dir.glob("fig_*.png"))]
    ]
    env_path = dest / "env.json"
    env_path.write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")
    return copied + [env_path]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="chapter prefixes, e.g. 01 05 (default: every chapter with presets)")
    ap.add_argument("--preset", default="standard", choices=["quick", "standard", "full"])
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--runs-dir", type=Path, default=REPO_ROOT / "runs" / "reference")
    ap.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")
    args = ap.parse_args(argv)
    params = {"preset": args.preset, **{k: _literal(v) for k, v in args.parameter}}
    failed = []
    for nb in chapters():
        if nb.name.startswith("00_") or (args.only and not any(nb.name.startswith(p) for p in args.only)):
            continue
        if "preset" not in nb.read_text():
            print(f"-- {nb.name}: no presets, skipped", flush=True)
            continue
        run_dir = args.runs_dir / nb.stem
        print(f"-> {nb.name} (preset {args.preset}) ...", flush=True)
        t0, commit = time.perf_counter(), git_commit()  # the code the run uses, before anything can change it
        try:
            run_notebook(nb, run_dir, params, timeout=6 * 3600)
            device = json.loads((run_dir / "metrics.json").read_text()).get("device", "unknown")
            files = collect(
                run_dir, args.results_dir / nb.stem, environment(args.preset, time.perf_counter() - t0, device, commit)
            )
        except Exception as exc:  # keep going: one broken chapter should not hide the others
            failed.append(nb.name)
            print(f"   FAILED: {type(exc).__name__}: {str(exc)[:2000]}", flush=True)
            continue
        print(f"   done in {time.perf_counter() - t0:.0f} s -> {files[0].parent} ({len(files)} files)", flush=True)
    if failed:
        print(f"\nFailed chapters: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
