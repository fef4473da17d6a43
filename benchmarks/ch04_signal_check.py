"""Chapter 04 signal check (issue 13 items 3-4): does the structure generator vary, and do the modalities differ?

For each training seed, on the notebook's data (phantom slices of data seed ``--data-seed``, the preset's
``n_train`` / ``n_test``), runs the chapter's stages as the notebook does (:mod:`medsynth.models.structsynth_run`):
the structure generator (Eqs. 6-11) -> :func:`structure_diversity`; the translator and lesion segmenter; the
multi-modal generator (Eq. 18 pretraining, then Eqs. 13-17) -> :func:`modality_contrast` after pretraining and at
the end, beside the "same image for every modality" baseline. Prints one row per seed:

* ``pw gen / real``: mean pairwise distance (fraction of differing pixels) among 64 generated maps vs among the
  held-out real maps (a collapsed G_s gives ~0);
* ``near gen / real``: mean distance to the nearest training map of generated vs held-out real maps (generated
  nearer than held-out real = memorised);
* ``frac gen / real``: structure-pixel fraction; ``thr``: the threshold ``G_s.threshold`` that binarised them;
* ``contrast pre / final / same``: tissue-contrast error (mean |generated - real| of the per-tissue, per-modality
  mean intensities) after Eq. 18, at the end, and for the same image for every modality;
* ``order``: class orderings right of those the real slices show; ``reg``: Eq. 16 on/off (``reg_gate``).

    OMP_NUM_THREADS=1 PYTHONPATH=lib python benchmarks/ch04_signal_check.py --preset quick --seeds 0 1 2
    ... --threshold 0.5 --no-reg-gate --no-fresh-adam      # the earlier behaviour (ablation)

Numbers are printed (and written with ``--json``); nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))  # run from a checkout without install

from medsynth import presets  # noqa: E402
from medsynth.models import structsynth_run as pipe  # noqa: E402
from medsynth.models.structsynth.data import BrainStructDataset  # noqa: E402
from medsynth.models.structsynth.experiments import modality_contrast, structure_diversity  # noqa: E402


def data(p: pipe.StructSynthPreset, seed: int) -> tuple[BrainStructDataset, BrainStructDataset]:
    """The notebook's phantom train/test slices for data seed ``seed``."""
    size = p.image_size
    alg1, alg2 = pipe.alg1_for(size), pipe.alg2_for(size)
    base = seed * 100000
    train = BrainStructDataset(range(base, base + p.n_train), size, alg1=alg1, alg2=alg2)
    test = BrainStructDataset(range(base + 50000, base + 50000 + p.n_test), size, alg1=alg1, alg2=alg2)
    return train, test


def one_seed(p, seed, train, test, out: Path, device: str) -> dict:
    t0 = time.perf_counter()
    struct, _ = pipe.train_structure(p, train, out, seed, device)
    div = structure_diversity(struct, train, test, seed=seed)
    t_struct = time.perf_counter() - t0
    aux = pipe.train_translator_and_segmenter(p, train, test, out, seed, device)
    mm, _, _ = pipe.train_multimodal(p, struct, aux, train, out, "full", seed, device)
    con = modality_contrast(mm, test, seed)
    pre = pipe.contrast_after_pretraining(mm, test, seed)
    return {
        "seed": seed,
        "diversity": div,
        "contrast": con,
        "contrast_pretrain": pre,
        "reg_on": mm.reg_loss,
        "reg_gated": mm.reg_gated,
        "gt_train_ssim": aux["translator_train"]["G_t"]["SSIM"],
        "copy_train_ssim": aux["translator_train"]["copy the input"]["SSIM"],
        "seconds_structure": t_struct,
        "seconds": time.perf_counter() - t0,
    }


def row(r: dict) -> str:
    d, c, q = r["diversity"], r["contrast"], r["contrast_pretrain"]
    return (
        f"{r['seed']:>4} | {d['pairwise_generated']:.3f} / {d['pairwise_real']:.3f} | "
        f"{d['nearest_generated']:.3f} / {d['nearest_real']:.3f} | "
        f"{d['fraction_generated']:.3f} / {d['fraction_real']:.3f} | {d['threshold']:.3f} | "
        f"{q['error']:.3f} / {c['error']:.3f} / {c['error_same']:.3f} | "
        f"{c['orderings_right']}/{c['orderings_total']} | {'on' if r['reg_on'] else 'off'} | {r['seconds']:.0f}"
    )


HEADER = (
    "seed | pw gen / real | near gen / real | frac gen / real | thr | contrast pre / final / same | order | reg | s"
)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="quick", choices=sorted(pipe.PRESETS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-seed", type=int, default=0, help="phantom data seed (the notebook's `seed`)")
    ap.add_argument("--threshold", default="density", help="struct_threshold: 'density' or a float (0.5: old)")
    ap.add_argument("--no-reg-gate", action="store_true")
    ap.add_argument("--no-fresh-adam", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    thr = a.threshold if a.threshold == "density" else float(a.threshold)
    p = dataclasses.replace(
        presets.choose(pipe.PRESETS, a.preset),
        struct_threshold=thr,
        reg_gate=not a.no_reg_gate,
        fresh_adam=not a.no_fresh_adam,
    )
    train, test = data(p, a.data_seed)
    print(
        f"preset {a.preset}: threshold={thr!r} reg_gate={p.reg_gate} fresh_adam={p.fresh_adam}; "
        f"data seed {a.data_seed}, {len(train)} train / {len(test)} test slices",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in a.seeds:
            rows.append(one_seed(p, s, train, test, Path(tmp), a.device))
            print(row(rows[-1]), file=sys.stderr, flush=True)
    print(HEADER)
    for r in rows:
        print(row(r))
    c0 = rows[0]["contrast"]
    print(f"per-tissue means, seed {rows[0]['seed']} (tissue: generated | real; {', '.join(c0['modalities'])}):")
    for t, g, rr in zip(c0["tissues"], c0["generated"], c0["real"], strict=True):
        print(f"  {t:>10}: {' '.join(f'{v:.2f}' for v in g)} | {' '.join(f'{v:.2f}' for v in rr)}")
    fin = [r["contrast"]["error"] for r in rows]
    print(
        f"final contrast error mean {np.mean(fin):.3f} (same-image baseline {rows[0]['contrast']['error_same']:.3f}); "
        f"seeds beating the baseline: {sum(r['contrast']['error'] < r['contrast']['error_same'] for r in rows)}"
        f"/{len(rows)}"
    )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1, default=float))
    return rows


if __name__ == "__main__":
    main()
