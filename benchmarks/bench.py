#!/usr/bin/env python
"""`make bench`: one table of train-step and inference speed for every chapter's main model and baselines.

For each chapter (01 pix2pix / pix2pixHD / Fundus2Angio, 02 MedGAN / pix2pix, 03 RetiGAN / vessel segmenter,
04 structure VAE-GAN / multi-modal G / translator, 05 Fundus2Video; see ``cases.py``) at the quick and the full
(paper) preset's resolution and widths: the train step (the task's own ``train_step`` through the shared loop's
``StepContext``, so AMP and channels_last are the Trainer's) and inference (the generator in eval mode under
``inference_mode``), each as median, min and spread over ``--repeats``; the peak memory; FLOPs per step
(``torch.utils.flop_counter``: convolutions and matrix products, forward + backward); the achieved GFLOP/s and
its share of this machine's 3x3 conv rate, measured in the same process just before the case.

Each case runs in its own subprocess (peak memory belongs to that case alone; on the CPU: the RSS high-water
above the RSS before the first step, sampled every 5 ms, so weights are excluded and shown as parameters). The
CPU run uses ONE thread (``--threads``) because the course machine is shared. On CUDA the configurations are
fp32, bf16 + channels_last, and bf16 + channels_last + torch.compile (``--configs`` to choose); on the CPU only
fp32 unless asked (``--configs fp32 bf16+cl`` exercises the GPU path's AMP and memory-format code here).

    python benchmarks/bench.py                                   # every chapter, quick + full, CPU
    python benchmarks/bench.py --chapters 01 --settings quick --repeats 3
    python benchmarks/bench.py --reference ~/src/pytorch-CycleGAN-and-pix2pix ~/src/pix2pixHD
    python benchmarks/bench.py --device cuda                      # fp32 / bf16+cl / bf16+cl+compile

Writes ``results/bench/<device label>.json`` and ``.md`` (``--out``). Nothing here is asserted: timings belong
to the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))  # run from a checkout without install
sys.path.insert(0, str(HERE))

import cases as cases_mod  # noqa: E402
import timing  # noqa: E402
import torch  # noqa: E402

CONFIGS_CPU = ("fp32",)
CONFIGS_CUDA = ("fp32", "bf16+cl", "bf16+cl+compile")


def parse_config(cfg: str) -> dict[str, Any]:
    """``fp32`` | ``bf16`` | ``fp16``, optionally ``+cl`` (channels_last) and ``+compile``."""
    parts = cfg.split("+")
    if parts[0] not in ("fp32", "bf16", "fp16") or not set(parts[1:]) <= {"cl", "compile"}:
        raise ValueError(f"--configs: {cfg!r} is not fp32|bf16|fp16[+cl][+compile]")
    return {
        "amp": "off" if parts[0] == "fp32" else parts[0],
        "channels_last": "cl" in parts[1:],
        "compile": "compile" in parts[1:],
    }


def device_label(device: torch.device, threads: int) -> tuple[str, str]:
    """(file-name label, description) of the device: the GPU's name, or the CPU model and thread count."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or "cpu"
        try:
            name = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
        except (OSError, StopIteration):
            pass
        name = f"CPU {name}, {os.cpu_count()} cores, {threads} thread(s)"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug, name


def _trainer(task: Any, device: str, conf: dict[str, Any]) -> Any:
    from medsynth.training import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        return Trainer(
            task,
            torch.utils.data.TensorDataset(torch.zeros(1)),
            TrainConfig(
                steps=1,
                out_dir=tmp,
                device=device,
                amp=conf["amp"],
                channels_last=conf["channels_last"],
                compile=conf["compile"],
                progress=False,
            ),
        )


def run_case(
    chapter: str,
    setting: str,
    index: int,
    config: str,
    device: str,
    batch: int | None,
    reps: int,
    warmup: int,
    f2v_windows: int | None,
) -> dict[str, Any]:
    """Everything the table shows for one case (runs in its own process)."""
    from medsynth.blocks import count_params
    from medsynth.training import eval_mode, unwrap

    conf = parse_config(config)
    torch.manual_seed(0)
    from medsynth.device import pick_device

    if f2v_windows is None and setting == "full" and pick_device(device).type != "cuda":
        f2v_windows = 1  # a full 512-px Fundus2Video step walks 12 windows: one is timed on the CPU (see the note)
    all_cases = cases_mod.build(chapter, setting, batch, f2v_windows)
    case = all_cases[index]
    del all_cases
    tr = _trainer(case.task, device, conf)
    ctx, dev = tr.ctx, tr.device
    sync = timing.sync_for(dev)
    data = ctx.to_device(case.data)
    task = case.task
    params = sum(count_params(unwrap(n)) for k, n in task.nets.items() if k in task_trained(task))
    rate = timing.conv_rate(
        dev,
        dtype=torch.float32
        if conf["amp"] == "off"
        else getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[conf["amp"]]),
    )

    def step() -> None:
        ctx.step += 1
        task.train_step(data, ctx)

    def infer() -> None:
        with torch.inference_mode(), eval_mode(list(task.nets.values())), ctx.autocast():
            case.infer(task, data)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    with timing.peak_rss() as mem:
        train = timing.interleaved({"train": step}, reps, warmup, sync)["train"]
    wall_train = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else mem["peak"] - mem["start"]) / 2**20
    inf = timing.interleaved({"infer": infer}, max(reps, 3), 1, sync)["infer"]
    flops = flops_inf = None
    if not conf["compile"]:  # the counter is a dispatch mode; compiled graphs bypass it (the fp32 row's count holds)
        flops = timing.count_flops(step)
        flops_inf = timing.count_flops(infer)
    s_tr, s_inf = timing.summary(train), timing.summary(inf)
    row = {
        "chapter": chapter,
        "model": case.model,
        "role": case.role,
        "setting": setting,
        "size": case.size,
        "batch": case.batch,
        "config": config,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "params": params,
        "train": s_tr,
        "infer": s_inf,
        "flops_step": flops,
        "flops_infer": flops_inf,
        "conv_rate_gflops": rate,
        "peak_mb": peak,
        "peak_kind": "cuda max_memory_allocated" if dev.type == "cuda" else "RSS high-water above pre-step RSS",
        "wall_train_s": wall_train,
        "note": case.note,
    }
    fill_rates(row)
    return row


def task_trained(task: Any) -> list[str]:
    """Networks a task trains (not the frozen ones chapter 04's multi-modal task carries along)."""
    frozen = set(getattr(task, "frozen", {}) or {})
    return [k for k in task.nets if k not in frozen]


def fill_rates(row: dict[str, Any]) -> None:
    if row.get("flops_step"):
        row["gflops_per_s"] = row["flops_step"] / row["train"]["median_s"] / 1e9
        row["conv_share"] = row["gflops_per_s"] / row["conv_rate_gflops"]


def subprocess_row(args: argparse.Namespace, chapter: str, setting: str, index: int, config: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        f"{chapter},{setting},{index},{config}",
        "--device",
        args.device,
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads),
    ]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if args.f2v_windows:
        cmd += ["--f2v-windows", str(args.f2v_windows)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1][:160]
        return {"chapter": chapter, "setting": setting, "index": index, "config": config, "error": tail}
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_row(r: dict[str, Any]) -> str:
    if "error" in r:
        return (
            f"| {r['chapter']} | #{r.get('index')} | | {r['setting']} | | | {r['config']} | ERROR: {r['error']} |"
            + " |" * 11
        )
    g, fl = r.get("gflops_per_s"), r.get("flops_step")
    gfl = "" if fl is None else f"{fl / 1e9:.1f}"
    rate = "" if g is None else f"{g:.1f}"
    share = "" if g is None else f"{100 * r['conv_share']:.0f}"
    tr, inf = r["train"], r["infer"]
    return (
        f"| {r['chapter']} | {r['model']} | {r['role']} | {r['setting']} | {r['size']} | {r['batch']} "
        f"| {r['config']} | {r['params'] / 1e6:.2f} | {tr['median_s']:.3f} | {tr['min_s']:.3f} "
        f"| {tr['spread_pct']:.0f} | {1000 * inf['median_s']:.1f} | {1000 * inf['min_s']:.1f} "
        f"| {gfl} | {rate} | {r['conv_rate_gflops']:.0f} | {share} | {r['peak_mb']:.0f} | {r['note']} |"
    )


HEAD = (
    "| ch | model | role | preset | px | batch | config | params M | train s (median) | min | spread % "
    "| infer ms (median) | min | GFLOP/step | GFLOP/s | conv rate GFLOP/s | % of conv rate | peak MB | note |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def table(rows: list[dict[str, Any]]) -> str:
    return HEAD + "\n" + "\n".join(fmt_row(r) for r in rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--chapters", nargs="+", default=list(cases_mod.CHAPTERS), choices=cases_mod.CHAPTERS)
    ap.add_argument("--settings", nargs="+", default=list(cases_mod.SETTINGS), choices=cases_mod.SETTINGS)
    ap.add_argument("--models", nargs="+", default=None, help="only models whose name contains one of these")
    ap.add_argument("--repeats", type=int, default=3, help="timed train steps per case (inference: max(3, this))")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--batch", type=int, default=None, help="images per batch (default: 1 on the CPU, the preset's on CUDA)"
    )
    ap.add_argument(
        "--f2v-windows",
        type=int,
        default=None,
        help="Fundus2Video windows per step (default: the preset's, except 1 for the full preset on the CPU)",
    )
    ap.add_argument("--configs", nargs="+", default=None, help="fp32|bf16|fp16[+cl][+compile] (see the docstring)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1: the course machine is shared)")
    ap.add_argument(
        "--reference",
        nargs="+",
        type=Path,
        default=None,
        help="checkouts of junyanz/pytorch-CycleGAN-and-pix2pix and/or NVIDIA/pix2pixHD to time against",
    )
    ap.add_argument("--ref-sizes", nargs="+", type=int, default=[256, 512], help="image sides for --reference")
    ap.add_argument("--ab", action="store_true", help="before/after ratios of the measured wins (see ab.py)")
    ap.add_argument("--no-cases", action="store_true", help="skip the per-chapter table (only --reference / --ab)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "results" / "bench")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one case, JSON on stdout
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from medsynth.device import pick_device

    dev = pick_device(a.device)
    if a.batch is None and dev.type == "cpu":
        a.batch = 1
    if a.one:
        ch, setting, idx, config = a.one.split(",")
        print(
            json.dumps(run_case(ch, setting, int(idx), config, a.device, a.batch, a.repeats, a.warmup, a.f2v_windows))
        )
        return {}
    configs = a.configs or (CONFIGS_CUDA if dev.type == "cuda" else CONFIGS_CPU)
    for c in configs:
        parse_config(c)
    slug, name = device_label(dev, a.threads)
    head = (
        f"device: {name}; torch {torch.__version__}; {a.threads} thread(s) (the course machine is shared: "
        f"measured with {a.threads}); batch {a.batch or 'preset'}; {a.repeats} timed steps after {a.warmup} "
        f"warm-up; configs {', '.join(configs)}"
    )
    if dev.type != "cuda":
        head += (
            "\nNo GPU in this run: every number below is the CPU's; "
            "no GPU number exists until `make bench` runs on one."
        )
    print(head, flush=True)
    report: dict[str, Any] = {
        "device": name,
        "label": slug,
        "torch": torch.__version__,
        "threads": a.threads,
        "batch": a.batch,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "configs": list(configs),
        "f2v_windows": a.f2v_windows,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": [],
    }
    t_start = time.perf_counter()
    if not a.no_cases:
        print(HEAD, flush=True)
        for setting in a.settings:
            for ch in a.chapters:
                for i, model in enumerate(cases_mod.CASE_NAMES[ch]):
                    if a.models and not any(m.lower() in model.lower() for m in a.models):
                        continue
                    for config in configs:
                        row = subprocess_row(a, ch, setting, i, config)
                        report["rows"].append(row)
                        print(fmt_row(row), flush=True)
        share_flops(report["rows"])
    if a.reference:
        import reference

        report["reference"] = reference.compare(a.reference, dev, a.repeats, a.warmup, tuple(a.ref_sizes))
        print(reference.table(report["reference"]), flush=True)
    if a.ab:
        import ab

        report["ab"] = ab.run(dev, a.repeats, a.warmup)
        print(ab.table(report["ab"]), flush=True)
    report["wall_s"] = time.perf_counter() - t_start
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{slug}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    for k in ("reference", "ab", "loader"):  # a partial run keeps the other sections of the file
        if not report.get(k) and old.get(k):
            report[k] = old[k]
    report["rows"] = merge_rows(old.get("rows", []), report["rows"])
    best_rate(report)
    path.write_text(json.dumps(report, indent=1) + "\n")
    (a.out / f"{slug}.md").write_text(markdown(report))
    print(f"\nwrote {path} and {path.with_suffix('.md')} ({report['wall_s']:.0f} s)")
    return report


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The file's rows with this run's replacing those of the same case and config (runs can be split up)."""
    key = lambda r: (r["chapter"], r.get("model", r.get("index")), r["setting"], r["config"])  # noqa: E731
    fresh = {key(r) for r in new}
    order = {s: i for i, s in enumerate(cases_mod.SETTINGS)}
    rows = [r for r in old if key(r) not in fresh] + new
    return sorted(rows, key=lambda r: (order.get(r["setting"], 9), r["chapter"]))


def best_rate(report: dict[str, Any]) -> None:
    """The machine's conv rate as the best one measured over the file's rows (each row's own measurement is taken
    next to it, under whatever load the shared machine had then, and can be lower: shares over 100 %)."""
    rates = [r["conv_rate_gflops"] for r in report.get("rows", []) if "conv_rate_gflops" in r]
    if not rates:
        return
    report["conv_rate_best_gflops"] = best = max(rates)
    for r in report["rows"]:
        if r.get("gflops_per_s"):
            r["conv_share_best"] = r["gflops_per_s"] / best


def share_flops(rows: list[dict[str, Any]]) -> None:
    """Compiled rows have no FLOP count of their own: the same model's eager count holds (FLOPs are the model's)."""
    known = {(r["chapter"], r["model"], r["setting"]): r["flops_step"] for r in rows if r.get("flops_step")}
    for r in rows:
        if "error" not in r and not r.get("flops_step"):
            r["flops_step"] = known.get((r["chapter"], r["model"], r["setting"]))
            fill_rates(r)


def markdown(report: dict[str, Any]) -> str:
    """The JSON as the Markdown tables committed beside it."""
    out = [
        f"# Benchmarks on {report['device']}",
        "",
        f"torch {report['torch']}, {report['threads']} thread(s), batch {report['batch'] or 'preset'}, "
        f"{report['repeats']} timed steps after {report['warmup']} warm-up, started {report['started']}.",
        "",
    ]
    if "CPU" in report["device"]:
        out += ["No GPU was available: these are CPU numbers only; no GPU number exists yet.", ""]
    if report.get("rows"):
        out += [table(report["rows"]), ""]
    if report.get("reference"):
        import reference

        out += ["## Side by side with the reference implementations", "", reference.table(report["reference"]), ""]
    if report.get("ab"):
        import ab

        out += ["## Measured changes (before / after)", "", ab.table(report["ab"]), ""]
    if report.get("loader"):
        import bench_loader

        out += ["## Data loading vs the step rate", "", bench_loader.table(report["loader"]), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
