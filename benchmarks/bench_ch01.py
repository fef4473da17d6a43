"""Chapter 01 benchmark: time per training step and peak memory of pix2pix, pix2pixHD, Fundus2Angio.

Each model is built at the paper's widths (``--widths quick`` for the notebook's quick-mode widths)
and stepped through the shared loop's :class:`~medsynth.training.StepContext` (so AMP and
channels_last are the Trainer's own) on a synthetic batch of 4 pairs at 256 and 512 px. A
Fundus2Angio step consumes 3 batches of 4 (two discriminator iterations + the generators, as in
the official ``train.py``); the others one. On CUDA every model/size runs with AMP (bf16) and
channels_last on and off; on CPU only fp32, and each configuration runs in a subprocess so its
peak resident memory can be read. pix2pixHD's VGG term uses random VGG19 features here: the
time is the same as with the pretrained file, which a benchmark does not need.

    python benchmarks/bench_ch01.py                       # CPU: 256 and 512, paper widths
    python benchmarks/bench_ch01.py --sizes 256 --steps 3 --models fundus2angio
    python benchmarks/bench_ch01.py --device cuda --json runs/bench_ch01.json

Numbers are printed as a table; nothing is asserted (timings depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))  # run from a checkout without install

from medsynth.blocks import count_params  # noqa: E402
from medsynth.training import TrainConfig, Trainer  # noqa: E402

MODELS = ("pix2pix", "pix2pixhd", "fundus2angio")
BATCH = 4


def build(model: str, size: int, widths: str):
    """The task at paper widths (or the notebook's quick widths) and its batch size per step."""
    from medsynth.models.fundus2angio import Fundus2AngioTask
    from medsynth.models.pix2pix import Pix2PixTask
    from medsynth.models.pix2pixhd import Pix2PixHDTask

    quick = widths == "quick"
    if model == "pix2pix":
        downs = 8 if size >= 256 else 7
        return Pix2PixTask(num_downs=downs, ngf=16 if quick else 64, ndf=16 if quick else 64), BATCH
    if model == "pix2pixhd":
        kw = dict(ngf_local=8, n_down_global=3, ndf=16) if quick else {}
        return Pix2PixHDTask(vgg_features="random", **kw), BATCH
    if model == "fundus2angio":
        kw = dict(ncf=16, nff=8, ndf=8, width=16) if quick else {}
        return Fundus2AngioTask(**kw), 3 * BATCH
    raise ValueError(model)


class _Empty(Dataset):
    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict:
        raise RuntimeError("the benchmark feeds batches itself")


def run_one(
    model: str, size: int, device: str, amp: str, channels_last: bool, steps: int, warmup: int, widths: str
) -> dict:
    torch.manual_seed(0)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    task, bs = build(model, size, widths)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(
            task,
            _Empty(),
            TrainConfig(steps=1, out_dir=tmp, device=device, amp=amp, channels_last=channels_last, progress=False),
        )
    ctx, dev = tr.ctx, tr.device
    batch = ctx.to_device({"src": torch.rand(bs, 3, size, size) * 2 - 1, "dst": torch.rand(bs, 1, size, size) * 2 - 1})
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for i in range(warmup):
        ctx.step = i + 1
        task.train_step(batch, ctx)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        task.train_step(batch, ctx)
        sync()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    params = sum(count_params(n) for n in task.nets.values())
    times.sort()
    return {
        "model": model,
        "size": size,
        "device": str(dev),
        "amp": str(tr.amp_dtype).replace("torch.", "") if tr.amp_dtype else "fp32",
        "channels_last": tr.channels_last,
        "batch": bs,
        "params_M": round(params / 1e6, 2),
        "step_s": round(times[len(times) // 2], 4),
        "min_step_s": round(times[0], 4),
        "img_per_s": round(bs / times[len(times) // 2], 2),
        "peak_mb": round(peak, 1),
        "peak_kind": "cuda max_allocated" if dev.type == "cuda" else "RSS growth",
        "widths": widths,
    }


def configs(device: torch.device) -> list[tuple[str, bool]]:
    if device.type == "cuda":
        return [("off", False), ("off", True), ("bf16", False), ("bf16", True)]
    return [("off", False)]


def table(rows: list[dict]) -> str:
    head = (
        f"{'model':<13}{'size':>5}{'amp':>6}{'ch_last':>8}{'batch':>6}"
        f"{'params M':>10}{'s/step':>9}{'img/s':>8}{'peak MB':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:<13}{r['size']:>5}{r['amp']:>6}{str(r['channels_last']):>8}  ERROR {r['error']}")
            continue
        lines.append(
            f"{r['model']:<13}{r['size']:>5}{r['amp']:>6}{str(r['channels_last']):>8}{r['batch']:>6}"
            f"{r['params_M']:>10.2f}{r['step_s']:>9.3f}{r['img_per_s']:>8.2f}{r['peak_mb']:>10.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 10 on CUDA, 2 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3 on CUDA, 1 on CPU)")
    p.add_argument("--widths", choices=["paper", "quick"], default="paper")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    p.add_argument("--one", type=str, default=None, help=argparse.SUPPRESS)  # internal: one config, JSON out
    a = p.parse_args(argv)
    from medsynth import pick_device

    device = pick_device(a.device)
    cuda = device.type == "cuda"
    steps = a.steps or (10 if cuda else 2)
    warmup = a.warmup if a.warmup is not None else (3 if cuda else 1)
    if a.one:
        model, size, amp, cl = a.one.split(",")
        print(json.dumps(run_one(model, int(size), a.device, amp, cl == "1", steps, warmup, a.widths)))
        return []
    print(
        f"device: {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if cuda else f" ({torch.get_num_threads()} threads)")
        + f", torch {torch.__version__}, "
        f"{steps} timed steps after {warmup} warm-up, median shown",
        flush=True,
    )
    rows = []
    for size in a.sizes:
        for model in a.models:
            for amp, cl in configs(device):
                if cuda:  # in-process: CUDA peak memory is per-config already
                    try:
                        row = run_one(model, size, a.device, amp, cl, steps, warmup, a.widths)
                    except torch.OutOfMemoryError as exc:
                        row = {
                            "model": model,
                            "size": size,
                            "amp": amp,
                            "channels_last": cl,
                            "error": f"OOM {exc}"[:80],
                        }
                    torch.cuda.empty_cache()
                else:  # a subprocess per config, so peak RSS belongs to that config alone
                    cmd = [
                        sys.executable,
                        __file__,
                        "--device",
                        a.device,
                        "--steps",
                        str(steps),
                        "--warmup",
                        str(warmup),
                        "--widths",
                        a.widths,
                        "--one",
                        f"{model},{size},{amp},{int(cl)}",
                    ]
                    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
                    if out.returncode:
                        row = {
                            "model": model,
                            "size": size,
                            "amp": amp,
                            "channels_last": cl,
                            "error": out.stderr.strip().splitlines()[-1][:80],
                        }
                    else:
                        row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(table([row]).splitlines()[-1] if len(rows) > 1 else table([row]), flush=True)
    print()
    print(table(rows))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
