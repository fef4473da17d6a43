"""Chapter 02 benchmark: MedGAN inference time per image (the paper: 115 ms per 256x256 image on a Titan X).

Times CasNet (6 U-blocks), one U-block and pix2pix's U-Net in evaluation mode on synthetic grey images, at the
paper's size and widths (256x256, 8 encoder stages, ngf 64) by default, or at the notebook's quick widths
(``--widths quick``: 64x64, 6 stages, ngf 8). Batch 1 (one image at a time, as the paper's per-image figure);
``--batch`` for throughput. The first ``--warmup`` calls are not timed. On CPU the thread count is
``torch.get_num_threads()`` (set ``OMP_NUM_THREADS``); on CUDA (``--device cuda``) the clock is synchronised.

    OMP_NUM_THREADS=2 python benchmarks/bench_ch02.py                  # CPU, paper size
    python benchmarks/bench_ch02.py --widths quick --reps 20
    python benchmarks/bench_ch02.py --device cuda --json runs/bench_ch02.json

Numbers are printed as a table; nothing is asserted (timings depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))  # run from a checkout without install

from medsynth.blocks import count_params  # noqa: E402
from medsynth.models.medgan import PAPER, CasNet, ublock  # noqa: E402
from medsynth.models.pix2pix import UNetGenerator  # noqa: E402

WIDTHS = {"paper": dict(size=256, num_downs=8, ngf=64), "quick": dict(size=64, num_downs=6, ngf=8)}


def time_net(net: torch.nn.Module, x: torch.Tensor, reps: int, warmup: int) -> list[float]:
    """Seconds per call of ``net(x)`` under ``inference_mode``, ``reps`` times after ``warmup`` calls."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    out = []
    with torch.inference_mode():
        for i in range(warmup + reps):
            sync()
            t0 = time.perf_counter()
            net(x)
            sync()
            if i >= warmup:
                out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", choices=sorted(WIDTHS), default="paper")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    w = WIDTHS[args.widths]
    dev = torch.device(args.device)
    torch.manual_seed(0)
    nets = {
        "CasNet (6 U-blocks)": CasNet(1, 1, 6, w["num_downs"], w["ngf"]),
        "one U-block": ublock(1, 1, w["num_downs"], w["ngf"]),
        "pix2pix U-Net": UNetGenerator(1, 1, w["num_downs"], w["ngf"]),
    }
    x = torch.rand(args.batch, 1, w["size"], w["size"], device=dev) * 2 - 1
    rows = []
    print(
        f"device {dev}, threads {torch.get_num_threads()}, {args.widths} widths: {w['size']}x{w['size']}, "
        f"batch {args.batch}, {args.reps} timed calls after {args.warmup} warm-up"
    )
    print(f"{'network':<22}{'parameters':>14}{'ms / image (median)':>22}{'min':>9}")
    for name, net in nets.items():
        net = net.to(dev).eval()
        secs = time_net(net, x, args.reps, args.warmup)
        per = [1000 * s / args.batch for s in secs]
        rows.append(
            {
                "network": name,
                "params": count_params(net),
                "ms_per_image_median": statistics.median(per),
                "ms_per_image_min": min(per),
                "reps": args.reps,
            }
        )
        print(f"{name:<22}{rows[-1]['params']:>14,}{rows[-1]['ms_per_image_median']:>22.1f}{min(per):>9.1f}")
        del net
    print(f"paper: {PAPER['inference_ms_titan_x']} ms per 256x256 image for MedGAN on a Titan X GPU")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "device": str(dev),
                    "threads": torch.get_num_threads(),
                    "widths": args.widths,
                    "batch": args.batch,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
