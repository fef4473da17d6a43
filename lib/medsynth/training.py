"""The one training loop every chapter uses.

A paper module subclasses :class:`GANTask`: it owns its networks (``nets``), optimisers
(``opts``) and its ``train_step`` — the paper's own order of discriminator and generator
updates. The :class:`Trainer` owns everything around that: the seeded, resumable batch order,
device placement, mixed precision, ``channels_last``, ``torch.compile``, DDP under ``torchrun``,
a tqdm progress bar, JSONL loss logging, sample grids, evaluation hooks and atomic checkpoints.

Resume is exact: a run stopped after a checkpoint and resumed reaches bit-identical weights
to an uninterrupted run (tested), because the checkpoint holds every network, optimiser,
grad scaler and RNG state, and the batch order is a pure function of ``(seed, step)``.
That holds with ``num_workers=0`` (the CPU default). With worker processes the batch order is
still exact, but random augmentations drawn inside workers restart their streams on resume.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import inspect
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medsynth.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state
from medsynth.device import pick_device, seed_everything


def set_requires_grad(nets: nn.Module | Iterable[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks (e.g. the discriminator during a generator update)."""
    for net in [nets] if isinstance(nets, nn.Module) else nets:
        for p in net.parameters():
            p.requires_grad_(flag)


@contextlib.contextmanager
def eval_mode(nets: nn.Module | Iterable[nn.Module]) -> Iterator[None]:
    """Put networks in eval mode for the block (sampling, evaluation), then restore each one's mode."""
    nets = [nets] if isinstance(nets, nn.Module) else list(nets)
    modes = [n.training for n in nets]
    try:
        for n in nets:
            n.eval()
        yield
    finally:
        for n, m in zip(nets, modes, strict=True):
            n.train(m)


def adam(
    params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.5, 0.999), **kwargs: Any
) -> torch.optim.Adam:
    """Adam as every chapter builds it (the GAN papers' beta1 = 0.5 by default), with torch's fused kernel.

    Fused Adam updates each tensor in one pass instead of allocating ``sqrt``/``div`` temporaries per step:
    measured on the 2-core CPU it cut a pix2pixHD step's CPU time by about a third (issue 17). It is the same
    algorithm; results differ from the unfused loop only by float rounding order.
    """
    return torch.optim.Adam(list(params), lr=lr, betas=betas, fused=True, **kwargs)


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under DDP and/or ``torch.compile`` wrappers (what checkpoints store)."""
    net = getattr(net, "_orig_mod", net)
    net = getattr(net, "module", net) if isinstance(net, nn.parallel.DistributedDataParallel) else net
    return getattr(net, "_orig_mod", net)


class StepContext:
    """What :meth:`GANTask.train_step` gets from the loop: device, AMP region and the update rule."""

    def __init__(
        self,
        task: GANTask,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        scaler: torch.amp.GradScaler,
        channels_last: bool,
    ) -> None:
        self.task, self.device, self.amp_dtype = task, device, amp_dtype
        self.scaler, self.channels_last, self.step = scaler, channels_last, 0

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision region for forward passes (a no-op when AMP is off)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def update(self, loss: torch.Tensor, opt_name: str, retain_graph: bool = False) -> None:
        """One optimiser step on ``loss``: zero grads, (scaled) backward, step, scaler update.

        Zeroing first means gradients that an earlier backward left on this optimiser's
        parameters (a generator loss flowing through the discriminator) never leak into it.
        """
        opt = self.task.opts[opt_name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward(retain_graph=retain_graph)
        self.scaler.step(opt)
        self.scaler.update()

    def to_device(self, batch: Any) -> Any:
        """Move a (nested) batch to the device; 4-D float tensors go channels_last when enabled."""
        if isinstance(batch, torch.Tensor):
            t = batch.to(self.device, non_blocking=True)
            if self.channels_last and t.ndim == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch


class GANTask(abc.ABC):
    """A paper's networks, optimisers and training step.

    Subclasses set ``self.nets`` (name -> module) and ``self.opts`` (name -> optimiser) and
    always call networks through ``self.nets[name]``: the loop may replace an entry with its
    DDP- or compile-wrapped version. For DDP, run a network with gradients enabled only where a
    backward through it follows in the same step (make fakes once, ``detach()`` them for D).
    """

    nets: dict[str, nn.Module]
    opts: dict[str, torch.optim.Optimizer]

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """One iteration; returns the losses to log (tensors are fine: the loop syncs only when it logs)."""

    def sample(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """Columns of a sample grid, each (N, C, H, W) in [-1, 1] (e.g. input | generated | target)."""
        return []


@dataclass
class TrainConfig:
    """Options of :class:`Trainer`. ``"auto"`` AMP / channels_last mean: on for CUDA, off elsewhere."""

    steps: int
    out_dir: str | Path
    batch_size: int = 4
    log_every: int = 10
    sample_every: int = 0
    ckpt_every: int = 100
    eval_every: int = 0
    amp: str = "auto"  # "auto" | "off" | "bf16" | "fp16"
    channels_last: bool | str = "auto"
    compile: bool = False  # torch.compile; measured 66-75 s to compile on CPU for no gain, so off by default
    device: str = "auto"
    seed: int = 0
    num_workers: int = 0
    resume: bool = True
    progress: bool = True
    find_unused_parameters: bool = True  # DDP: GAN steps freeze D during G updates
    # Linear learning-rate decay to 0 from this step on (None: constant), as pix2pix/pix2pixHD's
    # ``niter``/``niter_decay`` and Fundus2Video's official ``niter=10, niter_decay=40`` epochs.
    lr_decay_start: int | None = None
    # DDP: ``batch_size`` is the global batch, split evenly over the processes (``python -m medsynth.train``);
    # False: every process draws ``batch_size`` (global batch = batch_size x processes).
    batch_is_global: bool = False
    expect_checkpoint: bool = False  # warn (naming the file) when there is no finished checkpoint to load

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.amp must be 'auto', 'off', 'bf16' or 'fp16', got {self.amp!r}")
        if self.lr_decay_start is not None and not 0 <= self.lr_decay_start < self.steps:
            raise ValueError(
                f"TrainConfig.lr_decay_start must be in [0, steps={self.steps}), got {self.lr_decay_start}"
            )

    def lr_factor(self, step: int) -> float:
        """Multiplier of every optimiser's initial learning rate at iteration ``step`` (1-based).

        1 up to ``lr_decay_start``; then ``(steps - step + 1) / (steps - lr_decay_start)``, falling linearly to
        ``1 / (steps - lr_decay_start)`` at the last iteration (pix2pixHD lowers the rate by ``lr / niter_decay``
        after each epoch past ``niter``). A pure function of the step, so a resumed run continues the schedule.
        """
        if self.lr_decay_start is None or step <= self.lr_decay_start:
            return 1.0
        return (self.steps - step + 1) / (self.steps - self.lr_decay_start)


class StepBatchSampler:
    """Endless batches whose order is a pure function of ``(seed, step)``, sharded over DDP ranks.

    Epoch ``e`` is a permutation drawn from a generator seeded with ``seed + e``; each rank takes
    every ``world``-th index, and incomplete batches are dropped. Starting at ``start_step``
    jumps straight to the right batch, which is what makes resume exact without replaying data.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world
        self.steps_per_epoch = (n // world) // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"the dataset has {n} items: fewer than batch_size={batch_size} x {world} process(es)")

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            epoch, k = divmod(step, self.steps_per_epoch)
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
            shard = perm[self.rank :: self.world][: self.steps_per_epoch * self.batch_size]
            for b in range(k, self.steps_per_epoch):
                yield shard[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            step = (epoch + 1) * self.steps_per_epoch


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL training log (``<out_dir>/log.jsonl``)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Per-rank BatchNorm statistics, as in pix2pixHD's multi-GPU runs: no buffer sync on each forward.
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


_OVERRIDES: dict[str, Any] = {}


def set_config_overrides(**fields: Any) -> dict[str, Any]:
    """Apply ``fields`` to the :class:`TrainConfig` of every :class:`Trainer` built from now on in this process
    (e.g. ``resume=True`` for ``python -m medsynth.train --resume``, or to load a finished run into a notebook without
    retraining it, :func:`medsynth.train.load_run`); no arguments: clear them. Returns the previous overrides."""
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"TrainConfig has no field(s) {unknown}")
    previous = dict(_OVERRIDES)
    _OVERRIDES.clear()
    _OVERRIDES.update(fields)
    return previous


@contextlib.contextmanager
def config_overrides(**fields: Any) -> Iterator[None]:
    """:func:`set_config_overrides` for the block only."""
    previous = set_config_overrides(**fields)
    try:
        yield
    finally:
        set_config_overrides(**previous)


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that runs a frozen network (no parameter requires grad: D inside G's update) as the plain module.

    There is nothing to synchronise then, and a DDP pass with grad enabled prepares the reducer as if every (frozen)
    parameter were unused, i.e. already reduced: the network's own backward later in the step (RetiGAN's and
    pix2pixHD's order, D updated from a graph built before G's D pass) would then fail ("marked ready twice").
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


def _resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


@contextlib.contextmanager
def _rng_preserved() -> Iterator[None]:
    """Run sample/eval code without moving the training RNG streams (keeps resume exact)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


class Trainer:
    """Runs a :class:`GANTask` for ``cfg.steps`` iterations over ``dataset``; see the module docstring."""

    def __init__(
        self,
        task: GANTask,
        dataset: Dataset,
        cfg: TrainConfig,
        evaluate: Callable[[GANTask, int], dict[str, float]] | None = None,
    ) -> None:
        if not getattr(task, "nets", None) or not getattr(task, "opts", None):
            raise ValueError(f"{type(task).__name__} must set .nets and .opts (dicts of modules and optimisers)")
        cfg = dataclasses.replace(cfg, **_OVERRIDES) if _OVERRIDES else cfg
        self.task, self.dataset, self.cfg, self.evaluate = task, dataset, cfg, evaluate
        self.out_dir = Path(cfg.out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            self.device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        else:
            self.device = pick_device(cfg.device)
        self.batch_size = cfg.batch_size
        if cfg.batch_is_global and self.world > 1:
            if cfg.batch_size % self.world:
                raise ValueError(
                    f"the global batch_size={cfg.batch_size} does not split over {self.world} processes; "
                    f"choose a multiple of {self.world} (e.g. --set batch_size={self.world})"
                )
            self.batch_size = cfg.batch_size // self.world
        self.amp_dtype = _resolve_amp(cfg.amp, self.device)
        cl = cfg.channels_last
        self.channels_last = (self.device.type == "cuda") if cl == "auto" else bool(cl)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ckpt_path = self.out_dir / "checkpoint.pt"
        self.log_path = self.out_dir / "log.jsonl"
        self._place_networks()
        self.ctx = StepContext(task, self.device, self.amp_dtype, self.scaler, self.channels_last)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _place_networks(self) -> None:
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        for name, net in list(self.task.nets.items()):
            net = unwrap(net).to(self.device, memory_format=fmt)
            if self.world > 1 and any(p.requires_grad for p in net.parameters()):
                net = _DDP(
                    net,
                    device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    find_unused_parameters=self.cfg.find_unused_parameters,
                    **_NO_BUFFER_SYNC,
                )
            if self.cfg.compile:
                net = torch.compile(net)
            self.task.nets[name] = net
        for opt in self.task.opts.values():  # optimiser state created before .to(device) must follow
            for state in opt.state.values():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor):
                        state[k] = v.to(self.device)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, step: int) -> None:
        """Write the checkpoint atomically (rank 0; other ranks store only their RNG streams)."""
        if self.is_main:
            save_atomic(
                {
                    "step": step,
                    "nets": {k: unwrap(v).state_dict() for k, v in self.task.nets.items()},
                    "opts": {k: v.state_dict() for k, v in self.task.opts.items()},
                    "scaler": self.scaler.state_dict(),
                    "rng": rng_state(),
                    "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.cfg).items()},
                },
                self.ckpt_path,
            )
        elif self.world > 1:
            save_atomic({"step": step, "rng": rng_state()}, self.out_dir / f"rng_rank{self.rank}.pt")

    def restore(self) -> int:
        """Load the checkpoint if there is one; returns the step to continue from (0 for a fresh run)."""
        if not (self.cfg.resume and self.ckpt_path.is_file()):
            if self.cfg.expect_checkpoint:
                warnings.warn(
                    f"{self.ckpt_path}: no checkpoint to load, so {type(self.task).__name__} is trained here "
                    f"({self.cfg.steps} steps)",
                    stacklevel=2,
                )
            return 0
        # Loaded to the CPU: load_state_dict copies weights and optimiser state onto the networks'
        # devices, and RNG states must stay CPU byte tensors (CUDA generators refuse device tensors).
        ckpt = load_checkpoint(self.ckpt_path, map_location="cpu")
        missing = set(self.task.nets) ^ set(ckpt["nets"])
        if missing:
            raise ValueError(
                f"{self.ckpt_path} holds networks {sorted(ckpt['nets'])}, the task has {sorted(self.task.nets)}"
            )
        for k, net in self.task.nets.items():
            unwrap(net).load_state_dict(ckpt["nets"][k])
        for k, opt in self.task.opts.items():
            opt.load_state_dict(ckpt["opts"][k])
        self.scaler.load_state_dict(ckpt["scaler"])
        rng = ckpt["rng"]
        if self.rank > 0:
            rng = load_checkpoint(self.out_dir / f"rng_rank{self.rank}.pt")["rng"]
        set_rng_state(rng)
        if self.cfg.expect_checkpoint and int(ckpt["step"]) < self.cfg.steps:
            warnings.warn(
                f"{self.ckpt_path} stops at step {ckpt['step']}: {type(self.task).__name__} is trained here "
                f"to step {self.cfg.steps}",
                stacklevel=2,
            )
        return int(ckpt["step"])

    # -- logging -------------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        if self.is_main:
            with self.log_path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")

    def _trim_log(self, step: int) -> list[dict[str, Any]]:
        """Drop log rows written after the checkpoint we resume from (they will be redone)."""
        old = read_log(self.log_path)
        rows = [r for r in old if r["step"] <= step]
        if self.is_main and len(rows) != len(old):  # loading a finished run writes nothing
            self.log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return rows

    def _save_samples(self, step: int, batch: dict[str, Any]) -> None:
        from torchvision.utils import save_image

        with torch.no_grad(), _rng_preserved():
            cols = self.task.sample(batch)
        if not cols or not self.is_main:
            return
        cols = [c.float().cpu().expand(-1, 3, -1, -1) if c.shape[1] == 1 else c.float().cpu() for c in cols]
        grid = torch.stack(cols, dim=1).flatten(0, 1)  # rows = examples, columns = cols
        (self.out_dir / "samples").mkdir(parents=True, exist_ok=True)
        save_image(grid * 0.5 + 0.5, self.out_dir / "samples" / f"step_{step:06d}.png", nrow=len(cols))

    def _train_mode(self) -> None:
        for net in self.task.nets.values():
            net.train()

    def _loader(self, start_step: int) -> DataLoader:
        sampler = StepBatchSampler(len(self.dataset), self.batch_size, self.cfg.seed, start_step, self.rank, self.world)
        # A private generator: DataLoader draws a base seed per iterator, which must not come
        # from the global RNG, or a resumed run would draw it at a different point.
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )

    def fit(self) -> list[dict[str, Any]]:
        """Train to ``cfg.steps``; returns the loss log (including rows from before a resume)."""
        from medsynth.progress import progress

        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start = self.restore()
        history = self._trim_log(start) if start else []
        if not start:
            seed_everything(cfg.seed + self.rank)
            if self.is_main:
                self.log_path.write_text("")
        sample_batch = None
        if cfg.sample_every:
            with _rng_preserved():
                items = [self.dataset[i] for i in range(min(4, len(self.dataset)))]
                sample_batch = self.ctx.to_device(torch.utils.data.default_collate(items))
        self._train_mode()
        bar = progress(
            total=cfg.steps,
            initial=start,
            disable=not (cfg.progress and self.is_main),
            desc=type(self.task).__name__,
            dynamic_ncols=True,
        )
        sums: dict[str, torch.Tensor | float] = {}
        count, t0 = 0, time.perf_counter()
        batches = iter(self._loader(start))
        base_lr = [[g.setdefault("initial_lr", g["lr"]) for g in opt.param_groups] for opt in self.task.opts.values()]
        for step in range(start + 1, cfg.steps + 1):
            self.ctx.step = step
            if cfg.lr_decay_start is not None:
                f = cfg.lr_factor(step)
                for opt, lrs in zip(self.task.opts.values(), base_lr, strict=True):
                    for g, lr0 in zip(opt.param_groups, lrs, strict=True):
                        g["lr"] = lr0 * f
            losses = self.task.train_step(self.ctx.to_device(next(batches)), self.ctx)
            for k, v in losses.items():  # accumulate on device; sync only at log time
                v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            bar.update(1)
            last = step == cfg.steps
            if step % cfg.log_every == 0 or last:
                row = {
                    "step": step,
                    **{k: float(v) / count for k, v in sums.items()},
                    "sec_per_step": (time.perf_counter() - t0) / count,
                }
                if not all(math.isfinite(v) for v in row.values()):
                    raise FloatingPointError(f"non-finite loss at step {step}: {row}")
                history.append(row)
                self._log(row)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k not in ("step", "sec_per_step")})
                sums, count, t0 = {}, 0, time.perf_counter()
            if sample_batch is not None and (step % cfg.sample_every == 0 or last):
                self._save_samples(step, sample_batch)
                self._train_mode()
            if self.evaluate is not None and cfg.eval_every and (step % cfg.eval_every == 0 or last):
                with _rng_preserved():
                    scores = self.evaluate(self.task, step)
                self._log({"step": step, **{f"eval/{k}": v for k, v in scores.items()}})
                self._train_mode()
            if (cfg.ckpt_every and step % cfg.ckpt_every == 0) or last:
                self.save(step)
        bar.close()
        return history


def loss_columns(history: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Turn log rows into ``{loss name: values}`` for plotting (``step`` included)."""
    keys = [k for k in history[0] if k != "sec_per_step"] if history else []
    return {k: [r[k] for r in history if k in r] for k in keys}
