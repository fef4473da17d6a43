#!/usr/bin/env python
"""Convert FIRE (Fundus Image REgistration; Hernandez-Matas et al., JMID 2017) into the layout.

Input (folder or zip from the FIRE site): ``Images/<P><nn>_1.jpg`` and ``<P><nn>_2.jpg`` (two
photographs of one eye, 2912x2912, categories A/P/S) and ``Ground Truth/control_points_<P><nn>_1_2.txt``
(10 corresponding points per pair, one "x1 y1 x2 y2" line each). Output: ``fundus`` (image 1) and
``fundus2`` (image 2) per id, optionally resized (``--size``; points are scaled alike) and the
points as ``<split>/points/<id>.txt``. A missing partner image or ground-truth file is an error
naming it. These pairs are photo/photo: useful for studying the misregistration that real CF/FA
pairs have (Fundus2Video Sec. 2.3).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DataError, add_output_args, cli, open_source, read_checked
from PIL import Image

from medsynth.data.layout import atomic_dir, write_image, write_meta

FIRE_SIZE = (2912, 2912)


def convert_fire(
    src: str | Path,
    out: str | Path,
    size: int | None = 1024,
    expect: tuple[int, int] = FIRE_SIZE,
    overwrite: bool = False,
) -> Path:
    with tempfile.TemporaryDirectory() as work:
        root = open_source(src, Path(work))
        img_dir = next((p for p in [root, *root.rglob("*")] if p.is_dir() and p.name == "Images"), None)
        if img_dir is None:
            raise DataError(f"no Images/ folder under {root}")
        gt_dir = img_dir.parent / "Ground Truth"
        firsts = sorted(img_dir.glob("*_1.jpg"))
        for p in sorted(img_dir.glob("*_2.jpg")):
            if not (img_dir / p.name.replace("_2.jpg", "_1.jpg")).is_file():
                raise DataError(f"unpaired image (no *_1.jpg partner): {p}")
        if not firsts:
            raise DataError(f"no *_1.jpg images in {img_dir}")
        with atomic_dir(Path(out), "replace" if overwrite else "refuse") as tmp:
            ids = []
            for p1 in firsts:
                iid = re.sub(r"_1$", "", p1.stem)
                p2 = img_dir / f"{iid}_2.jpg"
                gt = gt_dir / f"control_points_{iid}_1_2.txt"
                a, b = read_checked(p1, expect, "RGB"), read_checked(p2, expect, "RGB")
                if not gt.is_file():
                    raise DataError(f"missing ground truth: {gt}")
                try:
                    pts = np.loadtxt(gt, ndmin=2)[:, :4]
                except Exception as e:
                    raise DataError(f"unreadable ground truth: {gt} ({e})") from e
                if size is not None:
                    a = np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR))
                    b = np.asarray(Image.fromarray(b).resize((size, size), Image.BILINEAR))
                    pts = pts * (size / expect[0])
                write_image(tmp / "test" / "fundus" / f"{iid}.png", a)
                write_image(tmp / "test" / "fundus2" / f"{iid}.png", b)
                (tmp / "test" / "points").mkdir(parents=True, exist_ok=True)
                np.savetxt(tmp / "test" / "points" / f"{iid}.txt", pts, fmt="%.2f", header="x1 y1 x2 y2")
                ids.append(iid)
            write_meta(
                tmp,
                {
                    "kind": "fire",
                    "source": str(src),
                    "splits": {"test": ids},
                    "size": [size, size] if size else list(expect),
                },
            )
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="FIRE -> MedSynth layout")
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=1024, help="resize to this square size (0: keep 2912)")
    add_output_args(ap)
    a = ap.parse_args(argv)
    print(convert_fire(a.src, a.out, a.size or None, overwrite=a.overwrite))


if __name__ == "__main__":
    sys.exit(cli(main))
