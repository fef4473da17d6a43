"""Write one phantom item into the layout of :mod:`medsynth.data.layout` (used by ``write_phantoms``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsynth.data.layout import write_image

__all__ = ["retina_severity", "write_retina_item", "write_brain_item"]


def retina_severity(seed: int, severity: float | None) -> float:
    """``None``: the Isfahan mix (Fundus2Angio Sec. 4: 30 normal + 30 abnormal pairs) -> half the
    eyes normal (0), half abnormal with severity uniform in [0.3, 1]; else the given value."""
    if severity is not None:
        return float(severity)
    rng = np.random.default_rng([int(seed), 11])
    return 0.0 if rng.random() < 0.5 else float(np.round(rng.uniform(0.3, 1.0), 3))


def write_retina_item(root: Path, split: str, iid: str, seed: int, size: tuple[int, int], params: dict) -> dict:
    from medsynth.data.retina import make_retina

    sev = retina_severity(seed, params.pop("severity", None))
    s = make_retina(
        seed,
        size,
        severity=sev,
        n_frames=int(params.pop("n_frames", 0)),
        misalign=float(params.pop("misalign", 0.0)),
        **params,
    )
    d = root / split
    write_image(d / "fundus" / f"{iid}.png", s.fundus)
    write_image(d / "angio" / f"{iid}.png", s.angio)
    for name, m in s.masks.items():
        write_image(d / f"mask_{name}" / f"{iid}.png", m)
    info: dict = {"seed": seed, "severity": sev, "eye": s.meta["eye"]}
    if s.frames is not None:
        for k, (f, lk) in enumerate(zip(s.frames, s.leakage_frames, strict=True)):
            write_image(d / "frames" / iid / f"{k:02d}.png", f)
            write_image(d / "frames_leakage" / iid / f"{k:02d}.png", lk)
        info["_shared"] = {"frame_times": [round(float(t), 4) for t in s.frame_times], "phases": s.phases}
    return info


def write_brain_item(root: Path, split: str, iid: str, seed: int, size: tuple[int, int], params: dict) -> dict:
    from medsynth.data.brain import make_brain
    from medsynth.data.degrade import medgan_set

    b = make_brain(seed, size, **{k: v for k, v in params.items() if k in ("tumour", "anatomy")})
    d = root / split
    for name, img in b.images.items():
        write_image(d / name / f"{iid}.png", img)
    for name, img in medgan_set(b, seed).items():
        write_image(d / name / f"{iid}.png", img)
    write_image(d / "labels" / f"{iid}.png", b.labels.astype(np.uint8))
    write_image(d / "mask_brain" / f"{iid}.png", b.brain_mask)
    return {"seed": seed, "tumour": bool(b.labels.any())}
