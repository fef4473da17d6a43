#!/usr/bin/env python
"""Compare the phantoms with real images and print the tables (issue 3 retina, issue 19 brain).

Retina: DRIVE training photographs (with their manual vessel annotations) and the Isfahan normal
angiograms from ``../shared/data`` or ``--data-root``; statistics as in :mod:`medsynth.data.realism`
(per-channel histograms in the field of view and their EMD, vessel pixel fraction in the field of
view, radially averaged power spectra).

Brain: the MNI152 phantom and the old ellipse phantom side by side against real MNI152 (ICBM 2009a)
T1 slices from nilearn's wheel (offline); statistics as in :mod:`medsynth.data.realism_brain`
(in-brain histograms, GM/WM contrast ratio, radially averaged power spectra), for the phantoms as
generated against the template as it is (with the acquisition floor), against the template acquired
like the phantom (the done criterion of issue 19), and with the template's acquisition simulated;
at the same and at held-out slice levels.

    python data_scripts/realism_report.py --phantoms 8 --json realism.json
    python data_scripts/realism_report.py --only brain --brain-phantoms 16
"""

from __future__ import annotations

import argparse
import json
import sys

import _common  # noqa: F401  (puts lib/ on sys.path for a checkout without install)

from medsynth.data.realism import compare_retina, summary_rows


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def retina_table(a: argparse.Namespace) -> list[dict]:
    res = compare_retina(n_phantoms=a.phantoms, seed=a.seed, data_root=a.data_root)
    rows = summary_rows(res)
    if res["fundus"]["real"] is None and res["angio"]["real"] is None:
        print("no real data found (../shared/data or --data-root): phantom side only", file=sys.stderr)
    print(f"{'retina statistic':<32} {'phantom':>8} {'real':>8} {'distance':>9}")
    for r in rows:
        print(f"{r['stat']:<32} {_fmt(r['phantom']):>8} {_fmt(r['real']):>8} {_fmt(r['distance']):>9}")
    return rows


def brain_table(a: argparse.Namespace) -> list[dict]:
    from medsynth.data.realism_brain import brain_summary_rows, compare_brain

    res = compare_brain(n_phantoms=a.brain_phantoms, seed=a.seed, n_real=a.brain_real)
    rows = brain_summary_rows(res)
    print(
        f"brain T1 vs {res['real']['n']} real MNI152 T1 slices ({a.brain_phantoms} tumour-free phantoms each, 240x240)"
    )
    print(f"{'protocol':<20} {'brain statistic':<36} {'real':>7} {'MNI':>7} {'ellipse':>7}")
    for r in rows:
        print(f"{r['protocol']:<20} {r['stat']:<36} {_fmt(r['real']):>7} {_fmt(r['mni']):>7} {_fmt(r['ellipse']):>7}")
    print(
        "as generated: the 'real' column of a distance row is the floor - the template acquired like the phantom,"
        " scored against the template as it is"
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("retina", "brain"), default=None, help="print one table (default: both)")
    ap.add_argument("--phantoms", type=int, default=8, help="normal-eye phantoms to generate")
    ap.add_argument("--brain-phantoms", type=int, default=16, help="tumour-free brain phantoms per anatomy")
    ap.add_argument("--brain-real", type=int, default=15, help="real MNI152 T1 slices, evenly spaced in the slab")
    ap.add_argument("--data-root", default=None, help="folder holding DRIVE/ and isfahan_fa_normal/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = ap.parse_args(argv)
    out = {}
    if a.only in (None, "retina"):
        out["retina"] = retina_table(a)
    if a.only in (None, "brain"):
        out["brain"] = brain_table(a)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out if a.only is None else out[a.only], fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
