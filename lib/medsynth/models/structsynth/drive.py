"""Chapter 04's DRIVE arm (thesis Sec. 5.6.2, Table 6): the U-Net vessel-segmentation baseline on DRIVE, scored
inside the FOV (sensitivity, accuracy, AUC beside the thesis's 0.7781 / 0.9477 / 0.9705), and the thesis's idea
of retinal structure maps (Algorithm 1) as coarse vessel labels.

The segmenter is the course's one DRIVE segmenter, :mod:`medsynth.models.vessel_segmenter` (chapter 03 trains the
same network); the split is :func:`medsynth.models.vessel_data.drive_protocol`'s (DRIVE's official 20/20 split when
``data_root`` is a converted full DRIVE, else the 20 training images split 15 / 5, stated in ``protocol``).

Rows: ``U-Net (manual labels)`` -- the thesis's baseline; ``U-Net (Algorithm-1 maps as labels)`` -- the same
network trained on the structure maps of the training photographs instead of the manual labels; ``Algorithm 1
map itself`` -- the test photographs' maps scored as a (binary) prediction; and the input-free ``mean training
label``. The maps are computed at ``work`` px (Algorithm 1's retina settings were checked against DRIVE's labels at
512 px, ``structure.vessel_agreement``), cut to the FOV eroded by ``fov_erode`` px (the FOV ring is no vessel) and
reduced to the segmenter's size with the rule that makes its manual labels (``VESSEL_COVER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from medsynth.models import vessel_segmenter as vseg
from medsynth.models.vessel_data import VESSEL_COVER, VesselSet, drive_protocol
from medsynth.structure import ALG1_RETINA, structure_map

__all__ = ["THESIS_TABLE6", "structure_labels", "table6"]

#: Table 6's U-Net row (the thesis's DRIVE baseline), the numbers the arm stands beside.
THESIS_TABLE6 = dict(vseg.THESIS_DRIVE)


def structure_labels(data: VesselSet, work: int = 512, fov_erode: int = 8, **alg1: Any) -> torch.Tensor:
    """Algorithm 1 maps of ``data.images`` as vessel labels (N,1,S,S) in {0,1}: each photograph resized to
    ``work`` px, mapped with the retina settings (``structure.ALG1_RETINA``, overridable), cut to the eroded FOV
    and area-reduced to S with the manual labels' ``VESSEL_COVER`` rule."""
    params = {**ALG1_RETINA, **alg1}
    size = data.images.shape[-1]
    big = F.interpolate((data.images + 1) / 2, (work, work), mode="bilinear", align_corners=False).clamp(0, 1)
    fov = F.interpolate(data.fov.float(), (work, work), mode="nearest").numpy()[:, 0] > 0.5
    maps = []
    for k in range(len(data)):
        inside = ndi.binary_erosion(fov[k], iterations=fov_erode) if fov_erode else fov[k]
        maps.append(structure_map(big[k].permute(1, 2, 0).numpy(), **params) * inside)
    m = torch.from_numpy(np.stack(maps).astype(np.float32))[:, None]
    m = F.interpolate(m, (size, size), mode="area")
    return ((m >= VESSEL_COVER - 1e-6) & data.fov.bool()).float()


def table6(
    data_root: str | Path | None,
    shared: str | Path | None,
    out_dir: str | Path,
    size: int = 64,
    steps: int = 150,
    width: int = 8,
    batch_size: int = 4,
    seed: int = 0,
    device: str = "auto",
    work: int = 512,
) -> dict[str, Any] | None:
    """Table 6's rows on DRIVE (see the module docstring), or None when no DRIVE is reachable.

    Returns ``rows`` (name -> :func:`vessel_segmenter.evaluate_fov` scores: auc, accuracy, sensitivity,
    specificity, dice), ``thesis`` (Table 6's U-Net row), ``protocol`` (the split, in words), ``label_agreement``
    (the Algorithm-1 labels of the training images against their manual labels, inside the FOV) and ``steps``.
    """
    found = drive_protocol(data_root, shared, size)
    if found is None:
        return None
    train, test, protocol = found
    coarse = structure_labels(train, work)
    train_coarse = VesselSet(train.images, coarse, train.fov, train.ids, f"{train.source} (Algorithm-1 labels)")
    rows: dict[str, dict[str, float]] = {}
    for name, data in (("U-Net (manual labels)", train), ("U-Net (Algorithm-1 maps as labels)", train_coarse)):
        net = vseg.build(width, seed=seed)
        vseg.train(
            net,
            data,
            steps,
            Path(out_dir) / name.split("(")[1].split()[0].lower(),
            batch_size=batch_size,
            seed=seed,
            device=device,
            progress=False,
            log_every=max(1, steps // 5),
        )
        rows[name] = vseg.evaluate_fov(net.cpu(), test)
    rows["Algorithm 1 map itself"] = vseg.evaluate_fov(None, test, prob=structure_labels(test, work))
    mean_label = train.vessels.mean(0, keepdim=True).expand_as(test.vessels)
    rows["mean training label"] = vseg.evaluate_fov(None, test, prob=mean_label)
    agree = vseg.evaluate_fov(None, train, prob=coarse)
    return {
        "rows": rows,
        "thesis": THESIS_TABLE6,
        "protocol": protocol,
        "steps": steps,
        "size": size,
        "label_agreement": {k: agree[k] for k in ("dice", "sensitivity", "specificity")},
    }
