"""``bench.py --ab``: before / after ratios of the candidate speed-ups, measured interleaved in one process.

Each candidate runs two copies of the same task (same seed, same batch), one per variant, in alternation, and
reports per step: wall seconds, CPU seconds (``time.process_time``) and minor page faults (``ru_minflt``), each
as the median over the timed steps, and the ratio before / after (> 1: the change is faster).

Candidates:

* ``keep grads``: ``zero_grad(set_to_none=False)`` in :meth:`StepContext.update` instead of ``True``: the
  gradient tensors are zeroed in place and reused, instead of freed and re-allocated by every backward (a
  fresh allocation of tens to hundreds of MB is fresh pages from the kernel: minor page faults, system time).
  Semantics: Adam skips a parameter whose ``.grad`` is None but steps one whose zeroed grad received nothing,
  so this is only the same algorithm where every parameter of an optimiser gets a gradient in each of its
  updates -- true of every course task (frozen networks are in no optimiser; a parameter that never gets a
  gradient keeps ``grad is None`` under both settings).
"""

from __future__ import annotations

import copy
import functools
import resource
import statistics
import time
from typing import Any

import torch


class _Ctx:
    """A StepContext whose update zeroes gradients in place (set_to_none=False) or frees them (True)."""

    def __init__(self, base: Any, set_to_none: bool) -> None:
        self.base, self.set_to_none = base, set_to_none

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def update(self, loss: torch.Tensor, opt_name: str, retain_graph: bool = False) -> None:
        opt = self.base.task.opts[opt_name]
        opt.zero_grad(set_to_none=self.set_to_none)
        self.base.scaler.scale(loss).backward(retain_graph=retain_graph)
        self.base.scaler.step(opt)
        self.base.scaler.update()


def _tasks() -> list[tuple[str, Any, dict[str, torch.Tensor]]]:
    """(label, task, batch): pix2pixHD and pix2pix at the paper's widths, Fundus2Angio's full networks, 256 px."""
    from medsynth.models.fundus2angio import Fundus2AngioTask
    from medsynth.models.pix2pix import Pix2PixTask
    from medsynth.models.pix2pixhd import Pix2PixHDTask

    g = torch.Generator().manual_seed(0)

    def pair(n: int, s: int) -> dict[str, torch.Tensor]:
        return {"src": torch.rand(n, 3, s, s, generator=g) * 2 - 1, "dst": torch.rand(n, 1, s, s, generator=g) * 2 - 1}

    return [
        ("pix2pixHD (paper widths, 183 M G params)", Pix2PixHDTask(vgg_features="random"), pair(1, 256)),
        ("pix2pix (paper widths)", Pix2PixTask(), pair(1, 256)),
        ("Fundus2Angio (paper widths)", Fundus2AngioTask(), pair(3, 256)),
    ]


def _measure(fn: Any) -> tuple[float, float, int]:
    w, c, f = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return (time.perf_counter() - w, time.process_time() - c, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)


def run(device: torch.device, reps: int, warmup: int) -> list[dict[str, Any]]:
    from medsynth.training import StepContext

    rows = []
    for label, task, batch in _tasks():
        variants = {}
        for name, stn in (("before: set_to_none=True", True), ("after: set_to_none=False", False)):
            t = copy.deepcopy(task)
            for net in t.nets.values():
                net.to(device).train()
            ctx = _Ctx(StepContext(t, device, None, torch.amp.GradScaler(device.type, enabled=False), False), stn)
            variants[name] = (t, ctx)
        data = {k: v.to(device) for k, v in batch.items()}
        del task
        res: dict[str, list[tuple[float, float, int]]] = {n: [] for n in variants}
        names = list(variants)
        for r in range(warmup + reps):
            for n in names if r % 2 == 0 else names[::-1]:
                t, ctx = variants[n]
                ctx.base.step += 1
                m = _measure(functools.partial(t.train_step, data, ctx))
                if r >= warmup:
                    res[n].append(m)
        b, a = names
        row = {"change": "zero_grad(set_to_none=False)", "case": label, "reps": reps}
        for n in names:
            row[n] = {
                "wall_s": statistics.median(x[0] for x in res[n]),
                "cpu_s": statistics.median(x[1] for x in res[n]),
                "minor_faults": statistics.median(x[2] for x in res[n]),
            }
        row["ratio_wall"] = statistics.median(x[0] / y[0] for x, y in zip(res[b], res[a], strict=True))
        row["ratio_cpu"] = statistics.median(x[1] / y[1] for x, y in zip(res[b], res[a], strict=True))
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
        del variants
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| change | case | before wall s | after wall s | wall ratio | before CPU s | after CPU s | CPU ratio "
        "| before minor faults | after minor faults |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        b, a = r["before: set_to_none=True"], r["after: set_to_none=False"]
        lines.append(
            f"| {r['change']} | {r['case']} | {b['wall_s']:.3f} | {a['wall_s']:.3f} | {r['ratio_wall']:.2f} "
            f"| {b['cpu_s']:.3f} | {a['cpu_s']:.3f} | {r['ratio_cpu']:.2f} | {b['minor_faults']:,.0f} "
            f"| {a['minor_faults']:,.0f} |"
        )
    return "\n".join(lines) + (
        "\n\nratio = before / after, median of the interleaved per-round ratios (> 1: the change is faster)."
        if rows
        else ""
    )
