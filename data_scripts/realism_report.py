#!/usr/bin/env python
"""Compare the retinal phantom with real images and print the table (issue 3: realism measured).

Real side: DRIVE training photographs (with their manual vessel annotations) and the Isfahan
normal angiograms from ``../shared/data`` or ``--data-root``; statistics as in
:mod:`medsynth.data.realism` (per-channel histograms in the field of view and their EMD, vessel
pixel fraction in the field of view, radially averaged power spectra).

    python data_scripts/realism_report.py --phantoms 8 --json realism.json
"""
from __future__ import annotations

import argparse
import json
import sys

import _common  # noqa: F401  (puts lib/ on sys.path for a checkout without install)

from medsynth.data.realism import compare_retina, summary_rows


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantoms", type=int, default=8, help="normal-eye phantoms to generate")
    ap.add_argument("--data-root", default=None, help="folder holding DRIVE/ and isfahan_fa_normal/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = ap.parse_args(argv)
    res = compare_retina(n_phantoms=a.phantoms, seed=a.seed, data_root=a.data_root)
    rows = summary_rows(res)
    if res["fundus"]["real"] is None and res["angio"]["real"] is None:
        print("no real data found (../shared/data or --data-root): phantom side only", file=sys.stderr)
    print(f"{'statistic':<32} {'phantom':>8} {'real':>8} {'distance':>9}")
    for r in rows:
        print(f"{r['stat']:<32} {_fmt(r['phantom']):>8} {_fmt(r['real']):>8} {_fmt(r['distance']):>9}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
