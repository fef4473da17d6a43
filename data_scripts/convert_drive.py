#!/usr/bin/env python
"""Convert DRIVE (Staal et al., IEEE TMI 2004) into the MedSynth layout.

Input: the official folder (``training/`` and/or ``test/``, each with ``images/NN_<split>.tif``,
``1st_manual/NN_manual1.gif``, ``mask/NN_<split>_mask.gif``) or the zip you downloaded after
registering at the DRIVE site. Output::

    <out>/<train|test>/fundus/<NN>.png, mask_vessels/<NN>.png, mask_fov/<NN>.png, meta.json

Every photograph must have its manual annotation and FOV mask, all 584x565 (HxW); anything else is
an error naming the file (a test-split archive without annotations is converted without
``mask_vessels``). Usage: ``python data_scripts/convert_drive.py DRIVE.zip data/drive``
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from _common import DataError, add_output_args, cli, open_source, read_checked

from medsynth.data.layout import atomic_dir, write_image, write_meta

DRIVE_SIZE = (584, 565)
SPLITS = {"training": "train", "test": "test"}


def find_root(folder: Path) -> Path:
    """The folder holding ``training/``/``test/`` (archives wrap it in ``DRIVE/``)."""
    for cand in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if any((cand / s / "images").is_dir() for s in SPLITS):
            return cand
    raise DataError(f"no DRIVE split (training/images or test/images) under {folder}")


def convert_drive(
    src: str | Path, out: str | Path, size: tuple[int, int] = DRIVE_SIZE, overwrite: bool = False
) -> Path:
    out = Path(out)
    with tempfile.TemporaryDirectory() as work:
        root = find_root(open_source(src, Path(work)))
        with atomic_dir(out, "replace" if overwrite else "refuse") as tmp:
            splits: dict[str, list[str]] = {}
            for folder, split in SPLITS.items():
                d = root / folder
                if not (d / "images").is_dir():
                    continue
                images = sorted((d / "images").glob("*.tif"))
                if not images:
                    raise DataError(f"no .tif photographs in {d / 'images'}")
                has_manual = (d / "1st_manual").is_dir()
                ids = []
                for p in images:
                    m = re.match(r"(\d+)_", p.name)
                    if not m:
                        raise DataError(f"unexpected DRIVE file name: {p}")
                    num = m.group(1)
                    img = read_checked(p, size, "RGB")
                    fov = read_checked(d / "mask" / f"{num}_{folder}_mask.gif", size, "L") > 127
                    write_image(tmp / split / "fundus" / f"{num}.png", img)
                    write_image(tmp / split / "mask_fov" / f"{num}.png", fov)
                    if has_manual:
                        ves = read_checked(d / "1st_manual" / f"{num}_manual1.gif", size, "L") > 127
                        write_image(tmp / split / "mask_vessels" / f"{num}.png", ves)
                    ids.append(num)
                if has_manual:  # annotations without a photograph are unpaired too
                    for q in sorted((d / "1st_manual").glob("*_manual1.gif")):
                        if q.name.split("_")[0] not in ids:
                            raise DataError(f"unpaired annotation (no photograph in {d / 'images'}): {q}")
                splits[split] = ids
            write_meta(
                tmp,
                {
                    "kind": "drive",
                    "source": str(src),
                    "size": list(size),
                    "splits": splits,
                    "citation": "Staal et al., Ridge-based vessel segmentation in color images of the "
                    "retina, IEEE TMI 23(4):501-509, 2004",
                },
            )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="DRIVE folder or zip")
    ap.add_argument("out", help="output folder (refused if it exists and is not empty, unless --overwrite)")
    add_output_args(ap)
    a = ap.parse_args(argv)
    print(convert_drive(a.src, a.out, overwrite=a.overwrite))


if __name__ == "__main__":
    sys.exit(cli(main))
