#!/usr/bin/env python
"""Phantom generation throughput (issue 3: 100 retinal pairs at 720x576 in under a minute on a 2-core CPU;
issue 19: 200 MNI brain slices at 240x240 in seconds).

Prints a table: what, count, wall seconds, CPU seconds, per item. No asserts (timings belong here,
not in tests). ``--n 100`` is the acceptance run; ``--quick`` does 10.

    python benchmarks/bench_phantoms.py            # 100 pairs + the rest
    python benchmarks/bench_phantoms.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from medsynth.data import make_brain, make_retina, write_phantoms  # noqa: E402
from medsynth.data.degrade import medgan_set  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    n = 10 if a.quick else a.n
    make_retina(0, (96, 120))  # warm-up (imports, caches)
    rows = []
    rows.append(("retina pair 576x720 (fundus+FA+11 masks)", n, *timed(lambda i: make_retina(i, (576, 720), 0.5), n)))
    k = max(2, n // 10)
    rows.append(
        (
            "retina pair + 12-frame sequence 576x720",
            k,
            *timed(lambda i: make_retina(i, (576, 720), 0.5, n_frames=12), k),
        )
    )
    rows.append(("retina pair 256x256", n, *timed(lambda i: make_retina(i, (256, 256), 0.5), n)))
    w0, c0 = time.perf_counter(), time.process_time()
    make_brain(0, (64, 64))  # first MNI slice: reads the MNI152 template slab once (lru_cache)
    rows.append(("MNI152 template read (once per process)", 1, time.perf_counter() - w0, time.process_time() - c0))
    nb = 200 if not a.quick else 20  # issue 19: 200 slices at 240x240 in seconds
    rows.append(("brain slice 240x240 MNI anatomy (4 contrasts)", nb, *timed(lambda i: make_brain(i), nb)))
    rows.append(
        ("brain slice 240x240 ellipse (4 contrasts)", nb, *timed(lambda i: make_brain(i, anatomy="ellipse"), nb))
    )
    rows.append(("brain slice 64x64 MNI (ch04 quick size)", nb, *timed(lambda i: make_brain(i, (64, 64)), nb)))
    rows.append(("brain + MedGAN degradations", n, *timed(lambda i: medgan_set(make_brain(i), i), n)))
    with tempfile.TemporaryDirectory() as d:
        rows.append(
            (
                "write_phantoms retina 576x720 (PNG)",
                k,
                *timed(lambda i: write_phantoms(Path(d) / f"r{i}", "retina", {"train": 1}, (576, 720), i), k),
            )
        )
    print(f"cpu cores: {os.cpu_count()}, torch threads irrelevant (numpy/scipy only)")
    print(f"{'what':46s} {'n':>5s} {'wall s':>8s} {'cpu s':>8s} {'ms/item':>8s}")
    for what, cnt, wall, cpu in rows:
        print(f"{what:46s} {cnt:5d} {wall:8.2f} {cpu:8.2f} {1000 * wall / cnt:8.1f}")
    per = rows[0][2] / rows[0][1]
    print(f"-> 100 retinal pairs at 576x720: {100 * per:.1f} s wall (target < 60 s)")


if __name__ == "__main__":
    main()
