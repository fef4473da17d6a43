#!/usr/bin/env python
"""Print the README's "Benchmarks" tables from a ``results/bench/<label>.json`` (the numbers are never typed in).

python benchmarks/readme_section.py results/bench/cpu-amd-epyc-2-cores-1-thread-s.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def section(report: dict[str, Any], path: str) -> str:
    out = [
        f"Measured with `make bench` on {report['device']} (torch {report['torch']}, batch {report['batch']}, "
        f"fp32, {report['repeats']} timed steps; full table: `{path.replace('.json', '.md')}`)."
    ]
    if "CPU" in report["device"]:
        out.append("No GPU was available: no GPU number exists yet.")
    out += [
        "",
        "GFLOP/s share: of the 3x3 conv rate measured next to the case / of the best measured in the run "
        f"({report.get('conv_rate_best_gflops', 0):.0f} GFLOP/s); a share over 100 % means the machine's load fell "
        "between the conv measurement and the step. Fundus2Video full: one of the step's 12 windows.",
        "",
        "| ch | model | preset, px | train s/step | infer ms | GFLOP/step | GFLOP/s (% of conv rate) | peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.get("rows", []):
        if "error" in r or r["config"] != "fp32":
            continue
        g = (
            f"{r['gflops_per_s']:.0f} ({100 * r['conv_share']:.0f} / {100 * r['conv_share_best']:.0f} %)"
            if r.get("gflops_per_s")
            else ""
        )
        out.append(
            f"| {r['chapter']} | {r['model']} | {r['setting']}, {r['size']} | {r['train']['median_s']:.2f} "
            f"| {1000 * r['infer']['median_s']:.0f} | {(r['flops_step'] or 0) / 1e9:.0f} | {g} | {r['peak_mb']:.0f} |"
        )
    if report.get("reference"):
        out += [
            "",
            "Against the official networks (interleaved, same tensors; ratio = reference / ours, > 1: ours "
            "faster; median of per-round ratios, in brackets ratio of medians):",
            "",
            "| model | px | ours s/step | official networks in our step | as its train.py runs it |",
            "|---|---|---|---|---|",
        ]
        for r in report["reference"]:
            o = r["ours"]["median_s"]
            out.append(
                f"| {r['model']} | {r['size']} | {o:.2f} | {r['ratio_networks']:.2f}x "
                f"({r['networks']['median_s'] / o:.2f}x) | {r['ratio_as shipped']:.2f}x "
                f"({r['as shipped']['median_s'] / o:.2f}x) |"
            )
    if report.get("ab"):
        out += [
            "",
            "Measured changes (before / after, interleaved):",
            "",
            "| change | case | wall ratio | CPU ratio | minor page faults before → after |",
            "|---|---|---|---|---|",
        ]
        for r in report["ab"]:
            b, a = r["before: set_to_none=True"], r["after: set_to_none=False"]
            out.append(
                f"| {r['change']} | {r['case']} | {r['ratio_wall']:.2f} | {r['ratio_cpu']:.2f} "
                f"| {b['minor_faults']:,.0f} → {a['minor_faults']:,.0f} |"
            )
    reads = [r for r in report.get("loader", []) if "headroom" in r]
    if reads:
        out += [
            "",
            "Data loading (one process, no workers) against the main model's step: "
            + "; ".join(f"{r['chapter']} {r['setting']} {r['headroom']:.0f}x headroom" for r in reads)
            + ".",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    p = sys.argv[1]
    print(section(json.loads(Path(p).read_text()), p))
