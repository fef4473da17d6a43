#!/usr/bin/env python
"""Data is never the bottleneck: loader throughput against the training step rate, quick and full presets.

Two kinds of data cost, per chapter:

* read per step (01 ``PairedDataset``, 05 ``VideoDataset``: PNGs from the standard on-disk layout, cropped,
  flipped/augmented): items per second of ``dataset[i]`` in this process (``num_workers=0``, the CPU default)
  against the items a training step consumes per second (from ``make bench``'s rows for the chapter's main
  model, same device label: batch x batches drawn per step / seconds per step). Headroom > 1: the loader keeps up
  without workers.
* generated once before training (the phantoms on disk for 01/05; 02 MedGAN slices, 03 phantom eyes, 04 slices
  with Algorithms 1/2, all in memory): seconds per item, and the preset's whole set as a share of the preset's
  training time (its steps x the measured step time).

    python benchmarks/bench_loader.py                      # quick and full, appends to results/bench/<label>.json
    python benchmarks/bench_loader.py --settings quick
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
import torch  # noqa: E402

MAIN = {
    "01": "Fundus2Angio",
    "02": "MedGAN",
    "03": "RetiGAN",
    "04": "multi-modal G (adversarial)",
    "05": "Fundus2Video",
}


def _timed(fn: Callable[[int], Any], n: int) -> tuple[float, float]:
    """(wall seconds per call, CPU seconds per call) of ``fn(0..n-1)``."""
    w, c = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - w) / n, (time.process_time() - c) / n


def measure(setting: str, n_read: int = 8) -> list[dict[str, Any]]:
    from medsynth.data import PairedDataset, write_phantoms
    from medsynth.data.fundus2video import VideoDataset
    from medsynth.data.medgan_tasks import make_medgan_data
    from medsynth.models import fundus2angio_run as r01
    from medsynth.models import fundus2video_run as r05
    from medsynth.models import medgan_run as r02
    from medsynth.models import retigan_run as r03
    from medsynth.models import structsynth_run as r04
    from medsynth.models.retigan import TreePhotoDataset
    from medsynth.models.structsynth.data import BrainStructDataset
    from medsynth.models.vessel_data import phantom_set

    rows = []
    full = setting == "full"
    with tempfile.TemporaryDirectory() as tmp:
        p1 = r01.PRESETS[setting]
        k = 2 if full else 4
        gen = _timed(lambda i: write_phantoms(Path(tmp) / f"r{i}", "retina", {"train": 1}, p1.image_hw, seed=i), k)
        rows.append(
            _row(
                "01", setting, f"phantom pair {p1.image_hw[0]}x{p1.image_hw[1]} to disk", "generate", gen, n_set=17 + 14
            )
        )
        ds = PairedDataset(
            Path(tmp) / "r0",
            "train",
            crop=p1.image_size,
            crops_per_image=p1.crops_per_pair,
            flip=p1.flips,
            fixed_crops=0 if p1.fixed_crops else None,
        )
        rows.append(
            _row(
                "01",
                setting,
                f"PairedDataset read + {p1.image_size} crop",
                "read",
                _timed(lambda i: ds[i % len(ds)], n_read),
            )
        )
        p5 = r05.PRESETS[setting]
        gen = _timed(
            lambda i: write_phantoms(Path(tmp) / f"v{i}", "retina_seq", {"train": 1}, p5.image_size, seed=i), 1
        )
        rows.append(
            _row(
                "05",
                setting,
                f"phantom eye + 12 frames {p5.image_size}px to disk",
                "generate",
                gen,
                n_set=p5.n_train + p5.n_test,
            )
        )
        vds = VideoDataset(Path(tmp) / "v0", "train", augment=p5.augment)
        rows.append(
            _row(
                "05",
                setting,
                f"VideoDataset read (photo, 12 frames, masks; augment {p5.augment})",
                "read",
                _timed(lambda i: vds[0], max(2, n_read // 2)),
            )
        )
    p2 = r02.PRESETS[setting]
    rows.append(
        _row(
            "02",
            setting,
            f"MedGAN slice + degradations {p2.image_size}px (in memory)",
            "generate",
            _timed(lambda i: make_medgan_data(1, p2.image_size, seed=i), 2 if full else 4),
            n_set=p2.n_train + p2.n_test,
        )
    )
    p3 = r03.PRESETS[setting]
    rows.append(
        _row(
            "03",
            setting,
            f"phantom eye + edge-smoothed photo {p3.image_size}px (in memory)",
            "generate",
            _timed(lambda i: TreePhotoDataset(phantom_set(1, p3.image_size, seed=i)), 1 if full else 3),
            n_set=sum(p3.n_phantom) + p3.n_synthetic,
        )
    )
    p4 = r04.PRESETS[setting]
    rows.append(
        _row(
            "04",
            setting,
            f"brain slice + Algorithms 1/2 {p4.image_size}px (in memory)",
            "generate",
            _timed(
                lambda i: BrainStructDataset(
                    [i], p4.image_size, r04.alg1_for(p4.image_size), r04.alg2_for(p4.image_size)
                ),
                2 if full else 4,
            ),
            n_set=p4.n_train + p4.n_test,
        )
    )
    return rows


def _row(ch: str, setting: str, what: str, kind: str, t: tuple[float, float], n_set: int | None = None) -> dict:
    return {
        "chapter": ch,
        "setting": setting,
        "what": what,
        "kind": kind,
        "wall_s_per_item": t[0],
        "cpu_s_per_item": t[1],
        "n_set": n_set,
    }


def against_steps(rows: list[dict[str, Any]], bench_rows: list[dict[str, Any]]) -> None:
    """Add the step rate of the chapter's main model (fp32 row of the same preset) and the headroom."""
    from medsynth.models import fundus2angio_run, fundus2video_run, medgan_run, retigan_run, structsynth_run

    presets = {
        "01": fundus2angio_run,
        "02": medgan_run,
        "03": retigan_run,
        "04": structsynth_run,
        "05": fundus2video_run,
    }
    for r in rows:
        step = next(
            (
                b
                for b in bench_rows
                if "error" not in b
                and b["chapter"] == r["chapter"]
                and b["setting"] == r["setting"]
                and b["model"] == MAIN[r["chapter"]]
                and b["config"] == "fp32"
            ),
            None,
        )
        if step is None:
            continue
        draws = 3 if r["chapter"] == "01" else 1
        r["step_s"], r["step_batch"] = step["train"]["median_s"], step["batch"]
        if r["kind"] == "read":
            need = step["batch"] * draws / step["train"]["median_s"]  # items consumed per second
            r["items_per_s_needed"], r["headroom"] = need, 1 / r["wall_s_per_item"] / need
        elif r["n_set"]:
            p = presets[r["chapter"]].PRESETS[r["setting"]]
            scale = p.batch_size / step["batch"]  # the preset's batch: step time taken as linear in the batch
            train_s = p.steps * step["train"]["median_s"] * scale
            r["set_s"], r["train_s_estimate"] = r["n_set"] * r["wall_s_per_item"], train_s
            r["share_of_training"] = r["set_s"] / train_s


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| ch | preset | data | kind | s / item (wall) | CPU s / item | items/s needed by the step | headroom "
        "| whole set s | share of the preset's training time |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        need = f"{r['items_per_s_needed']:.2f}" if "items_per_s_needed" in r else ""
        head_ = f"{r['headroom']:.1f}x" if "headroom" in r else ""
        set_s = f"{r['set_s']:.0f}" if "set_s" in r else ""
        share = f"{100 * r['share_of_training']:.2f} %" if "share_of_training" in r else ""
        lines.append(
            f"| {r['chapter']} | {r['setting']} | {r['what']} | {r['kind']} | {r['wall_s_per_item']:.3f} "
            f"| {r['cpu_s_per_item']:.3f} | {need} | {head_} | {set_s} | {share} |"
        )
    return "\n".join(lines) + (
        "\n\nread: headroom = loader items/s / items the main model's step consumes per second "
        "(one process, no workers); generate: once before training, as a share of the preset's "
        "training (steps x measured step time, scaled to the preset's batch)."
        if rows
        else ""
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=["quick", "full"], choices=["quick", "full"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "bench")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    slug, name = bench.device_label(torch.device("cpu"), a.threads)
    path = a.out / f"{slug}.json"
    report = json.loads(path.read_text()) if path.is_file() else {"device": name, "label": slug, "rows": []}
    rows = [r for s in a.settings for r in measure(s)]
    against_steps(rows, report.get("rows", []))
    keep = [r for r in report.get("loader", []) if r["setting"] not in a.settings]
    report["loader"] = keep + rows
    print(f"{name}; {a.threads} thread(s)\n" + table(report["loader"]))
    a.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    (a.out / f"{slug}.md").write_text(bench.markdown(report))
    return rows


if __name__ == "__main__":
    main()
