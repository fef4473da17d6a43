"""Timing primitives shared by the benchmarks: interleaved clocks, FLOP counts, the machine's conv rate, memory.

Interleaving matters on a shared machine: when two variants (ours / the reference, before / after a change)
are timed in alternation, a burst of load from another process hits both, so their *ratio* is stable even
when the absolute times are not.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync_for(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def interleaved(
    fns: dict[str, Callable[[], Any]], reps: int, warmup: int, sync: Callable[[], None] = lambda: None
) -> dict[str, list[float]]:
    """Seconds per call of each function, called in rotating order ``reps`` times after ``warmup`` rounds."""
    names = list(fns)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + reps):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            sync()
            t0 = time.perf_counter()
            fns[n]()
            sync()
            if r >= warmup:
                out[n].append(time.perf_counter() - t0)
    return out


def summary(secs: list[float]) -> dict[str, float]:
    """median, min and spread ((max - min) / median, in %) of a list of times."""
    med = statistics.median(secs)
    return {"median_s": med, "min_s": min(secs), "spread_pct": 100 * (max(secs) - min(secs)) / med, "n": len(secs)}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call as ``torch.utils.flop_counter`` counts them (convolutions and matrix products, forward
    and backward; element-wise ops and the optimiser are not counted)."""
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def conv_rate(
    device: torch.device, reps: int = 10, dtype: torch.dtype = torch.float32, channels: int = 64, size: int = 256
) -> float:
    """The machine's 3x3 convolution rate (GFLOP/s, the best of ``reps``): a ``channels`` -> ``channels`` 3x3
    conv on one ``size``^2 image, forward only, the shape that dominates the course's generators. The best
    call, not the median: other processes' load only ever slows a call down, so the fastest is the machine's."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype)
    x = torch.randn(1, channels, size, size, device=device, dtype=dtype)
    flops = 2 * channels * channels * 9 * size * size
    with torch.inference_mode():
        secs = interleaved({"conv": lambda: conv(x)}, reps, 2, sync_for(device))["conv"]
    return flops / min(secs) / 1e9


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096
    except OSError:
        return 0


@contextmanager
def peak_rss(every_s: float = 0.005) -> Iterator[dict[str, int]]:
    """Sample the RSS in a thread while the block runs; yields a dict that gets ``start`` and ``peak`` bytes.
    (Torch kernels release the GIL, so the sampler sees memory while they run; a spike shorter than the
    sampling period can be missed.)"""
    box = {"start": rss_bytes(), "peak": rss_bytes()}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            box["peak"] = max(box["peak"], rss_bytes())
            stop.wait(every_s)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        yield box
    finally:
        stop.set()
        th.join()
        box["peak"] = max(box["peak"], rss_bytes())
