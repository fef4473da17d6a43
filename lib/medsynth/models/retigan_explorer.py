"""Chapter 03's explorer: edit a phantom vessel tree, see RetiGAN's photograph and the segmenter's recovery.

:func:`edit_tree` (prune / thicken) and :func:`explorer_view` are pure functions the notebook calls once in a
plain cell; :func:`retigan_explorer` wraps them in sliders (a headless run only proves the widget builds).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage as ndi

from medsynth.models import translate
from medsynth.models import vessel_segmenter as vseg
from medsynth.models.retigan import tree_input
from medsynth.models.vessel_data import outside_black, phantom_set

__all__ = ["edit_tree", "explorer_view", "retigan_explorer"]


def edit_tree(vessels: np.ndarray, prune: float = 0.0, thicken: int = 0, seed: int = 0) -> np.ndarray:
    """A binary tree (H,W) edited: ``prune`` in [0,1] removes that fraction of its branches (connected pieces
    after cutting the tree at its junctions, chosen at random with ``seed``); ``thicken`` dilates by that many px."""
    v = vessels.astype(bool)
    if prune > 0:
        nb = ndi.convolve(v.astype(int), np.ones((3, 3), int), mode="constant") - 1
        junction = ndi.binary_dilation(v & (nb >= 3))  # cut at branch points
        pieces, n = ndi.label(v & ~junction)
        rng = np.random.default_rng(seed)
        drop = np.flatnonzero(rng.random(n) < prune) + 1
        v = v & ~np.isin(pieces, drop)
    if thicken > 0:
        v = ndi.binary_dilation(v, iterations=int(thicken))
    return v


@lru_cache(maxsize=32)
def _phantom(seed: int, size: int):
    return phantom_set(1, size, seed=seed)


def explorer_view(
    task, segmenter: torch.nn.Module, seed: int = 0, prune: float = 0.0, thicken: int = 0, size: int = 64
) -> tuple[np.ndarray, str]:
    """Tree | RetiGAN's photograph | the segmenter's map of it (green: recovered, red: missed, blue: extra).

    Returns an (H, 3W, 3) image in [0,1] and a caption with the Dice and sensitivity of the recovery.
    """
    ph = _phantom(int(seed), int(size))
    fov = ph.fov[0, 0].numpy()
    tree = edit_tree(ph.vessels[0, 0].numpy() > 0.5, prune, thicken, seed) & fov
    t = torch.from_numpy(tree)[None, None].float()
    photo = outside_black(translate(task, tree_input(t, ph.fov), batch_size=1), ph.fov)
    pred = vseg.predict(segmenter, photo)[0, 0].numpy() > 0.5
    pred &= fov
    tp, fn, fp = tree & pred, tree & ~pred, pred & ~tree
    rec = np.stack([fn, tp, fp], -1).astype(np.float32)
    img = np.concatenate(
        [np.repeat(tree[..., None], 3, -1).astype(np.float32), (photo[0].permute(1, 2, 0).numpy() + 1) / 2, rec], axis=1
    )
    dice = 2 * tp.sum() / max(1, 2 * tp.sum() + fn.sum() + fp.sum())
    sens = tp.sum() / max(1, tree.sum())
    cap = (
        f"phantom {seed}, prune {prune:.2f}, thicken {thicken}: tree {int(tree.sum())} px; "
        f"recovered Dice {dice:.3f}, sensitivity {sens:.3f}"
    )
    return np.clip(img, 0, 1), cap


def retigan_explorer(task, segmenter: torch.nn.Module, size: int = 64):
    """Sliders for phantom seed, pruning and thickening over :func:`explorer_view`; returns the widget box."""
    import ipywidgets as W

    from medsynth.widgets import _live

    seed = W.IntSlider(value=0, min=0, max=40, description="phantom")
    prune = W.FloatSlider(value=0.0, min=0.0, max=0.9, step=0.1, description="prune")
    thick = W.IntSlider(value=0, min=0, max=3, description="thicken")
    return _live(
        [[seed, prune, thick]],
        lambda: explorer_view(task, segmenter, seed.value, prune.value, thick.value, size),
        min_h=192,
    )
