"""Chapter 04 explorer views through the trained multi-modal generator (pure functions; wrapped by
:func:`medsynth.widgets.fusion_explorer`): what Eq. 12 and Algorithm 2's knobs do to the synthesis."""

from __future__ import annotations

import numpy as np
import torch

from medsynth.models.structsynth.data import MODALITIES
from medsynth.models.structsynth.tasks import MultiModalTask
from medsynth.structure import ALG1_DEFAULTS, ALG2_DEFAULTS, fuse_noise, organ_mask, structure_map, to_gray
from medsynth.training import eval_mode

__all__ = ["synthesis_view"]


@torch.no_grad()
def synthesis_view(
    task: MultiModalTask,
    x: np.ndarray,
    alpha1: float = 0.5,
    alpha2: float = 0.6,
    seeds: tuple[int, ...] = (0, 1),
    alg1: dict | None = None,
    alg2: dict | None = None,
    lesion: np.ndarray | None = None,
    real: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Eq. 12 fed through G (Sec. 4.3): top row ``x | s | m`` (+ the real modalities ``real`` (4,H,W) in [0,1]
    when given), then per seed ``s' | T1 | T2 | T1c | FLAIR`` synthesized from that seed's noise. All panels
    share one [0, 1] scale. ``alg1`` / ``alg2``: Algorithm 1 / 2 settings (the notebook's); ``lesion``: the
    label channel (zeros when None)."""
    a1, a2 = min(alpha1, alpha2), max(alpha1, alpha2)
    g = to_gray(x).astype(np.float32)
    s = structure_map(g, **{**ALG1_DEFAULTS, **(alg1 or {})})
    m = organ_mask(g, **{**ALG2_DEFAULTS, **(alg2 or {})})
    s = s * (1 - m)
    lab = np.zeros_like(s) if lesion is None else np.asarray(lesion, np.float32)
    dev = next(task.nets["G"].parameters()).device
    rows, outs = [], []
    with eval_mode(task.nets["G"]):
        for sd in seeds:
            f = fuse_noise(s, m, a1, a2, sd)["s_fused"]
            inp = torch.from_numpy(np.stack([f, lab]))[None].to(dev)
            y = ((task.generate(inp)[0].float().cpu().numpy() + 1) / 2).clip(0, 1)
            outs.append(y)
            rows.append([f] + list(y))
    top = [g, s, m] + (list(np.asarray(real, np.float32)) if real is not None else [np.ones_like(s)] * 2)
    top = (top + [np.ones_like(s)] * 5)[:5]
    h, w = s.shape
    pad_c, pad_r = np.ones((h, 2), np.float32), np.ones((2, 5 * w + 8), np.float32)
    lines = [np.concatenate(sum([[p, pad_c] for p in r], [])[:-1], 1) for r in [top] + rows]
    img = np.concatenate(sum([[ln, pad_r] for ln in lines], [])[:-1], 0).clip(0, 1)
    diff = float(np.abs(outs[0] - outs[-1]).mean()) if len(outs) > 1 else 0.0
    spread = float(np.mean([o.reshape(len(MODALITIES), -1).mean(1).std() for o in outs]))
    cap = (
        f"rows: x | s | m{' | real T1 T2' if real is not None else ''}; then per seed {list(seeds)}: s' | "
        f"{' | '.join(MODALITIES)}. z'~U({a1:.2f}, {a2:.2f}): contours (s = 1) stay {1 - a2:.2f} above the "
        f"brightest noise{' - at alpha2 = 1 they vanish into it' if a2 >= 1 else ''}; "
        f"mean |seed {seeds[0]} - seed {seeds[-1]}| = {diff:.3f}, spread of the modalities' means {spread:.3f}"
    )
    return img, cap
