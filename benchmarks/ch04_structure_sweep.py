"""Chapter 04 structure-stage sweep (issue 13 item 3): which KL and D_s weights give organ-like, varied maps?

Trains only the structure generator (Eqs. 6-11, :func:`~medsynth.models.structsynth_run.train_structure`) on the
notebook's phantom slices for each variant and seed, and records :func:`structure_diversity` on the held-out
maps plus Eq. 7's reconstruction error on the training maps (``train_rec_mse`` beside ``train_const_mse``, the
per-pixel mean map's: an encoder that carries nothing scores the constant). The variants vary the CPU presets'
two departures: the classic KL weight ``struct_kl`` and G_s's D_s weight ``struct_gs`` (None: the code's 0.1).
Notebook 04 (Sec. 4) reads the JSON this writes; nothing is asserted here.

    OMP_NUM_THREADS=1 PYTHONPATH=lib python benchmarks/ch04_structure_sweep.py --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))  # run from a checkout without install

#: name -> preset overrides; "preset" is the quick preset as committed
VARIANTS: dict[str, dict] = {
    "KL 0.01, D_s weight 1 (the earlier preset)": dict(struct_kl=0.01, struct_gs=1.0),
    "KL 0.01, D_s weight 0.1 (code)": dict(struct_kl=0.01, struct_gs=None),
    "KL 0, D_s weight 0.1 (code)": dict(struct_kl=0.0, struct_gs=None),
    "preset": {},
}
OUT = Path(__file__).resolve().parents[1] / "results" / "04_structure_maps" / "structure_sweep.json"


def one(args: tuple[str, str, int]) -> tuple[str, int, dict]:
    """Train one variant with one seed on the notebook's data of that seed; its metrics."""
    import torch

    from medsynth.models import structsynth_run as pipe
    from medsynth.models.structsynth.experiments import reconstruction_error, structure_diversity
    from medsynth.train_chapters import brain_struct_data

    torch.set_num_threads(1)
    name, preset, seed = args
    p = dataclasses.replace(pipe.PRESETS[preset], **VARIANTS[name])
    train, test = brain_struct_data(p, None, seed)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as out:
        task, _ = pipe.train_structure(p, train, Path(out), seed, "cpu")
    d = structure_diversity(task, train, test, seed=seed)
    d["train_rec_mse"], d["train_const_mse"] = reconstruction_error(task, train.s_struct, train.s_struct)
    d.update(struct_kl=p.struct_kl, struct_gs=p.struct_gs, seconds=time.time() - t0)
    return name, seed, d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    todo = [(n, a.preset, s) for n in VARIANTS for s in a.seeds]
    with ProcessPoolExecutor(a.jobs) as pool:
        done = list(pool.map(one, todo))
    runs: dict[str, dict[str, dict]] = {}
    for name, seed, d in done:
        runs.setdefault(name, {})[str(seed)] = d
        print(name, seed, {k: round(v, 4) for k, v in d.items() if isinstance(v, float)}, flush=True)
    meta = {"preset": a.preset, "device": f"cpu ({platform.processor() or platform.machine()}), 1 thread per run"}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    tmp.replace(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
