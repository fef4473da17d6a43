#!/usr/bin/env python
"""Fetch and convert the Isfahan MISP fundus / fluorescein-angiography pairs (Fundus2Angio's data).

Source: Medical Image and Signal Processing Research Center, Isfahan University of Medical
Sciences (Hajeb Mohammad Alipour, Rabbani, Akhlaghi), "Diabetic retinopathy grading by digital
curvelet transform", Comput. Math. Methods Med. 2012. 60 patients: 30 normal + 30 abnormal pairs,
720x576 (WxH); photographs RGB, angiograms grey (01_fundus2angio Sec. 4).

Caveats to keep in mind (and why the course's default is the phantom):
* the pairs are NOT registered: photo and angiogram were taken minutes apart, the eye moved.
  Fundus2Angio kept 17 pairs that were aligned or almost aligned; use ``--pairs`` to choose yours;
* check the dataset page for its published errata (corrections to the file list/labels) before
  relying on a particular pair; this script applies none automatically;
* the site has moved before: the URLs below were the official ones when written and could not be
  verified from this project's build machine, and their checksums are not yet recorded (``None``:
  the script prints the sha256 it got so you can record it; ``--strict`` refuses unverified files).

Usage::

    python data_scripts/fetch_isfahan.py data/isfahan            # download (online) + convert
    python data_scripts/fetch_isfahan.py data/isfahan --local DIR_OR_ZIP   # offline: your copy

Input folder convention (the archives' layout): ``normal/`` and ``abnormal/`` subfolders, each
pair as ``<n>.jpg`` (photograph) and ``<n>-<m>.jpg`` or ``<n>_fa.jpg`` (angiogram); or an explicit
``--pairs pairs.csv`` with lines ``fundus_path,angio_path[,split]``.
"""
from __future__ import annotations

import argparse
import csv
import re
import tempfile
from pathlib import Path

from _common import DataError, download, open_source, read_checked

from medsynth.data.layout import atomic_dir, write_image, write_meta

ISFAHAN_SIZE = (576, 720)  # H, W
# name, URL, sha256 (None: not yet recorded - see the module docstring)
FILES = [
    ("normal.zip", "https://misp.mui.ac.ir/sites/misp.mui.ac.ir/files/data/FFA_normal.zip", None),
    ("abnormal.zip", "https://misp.mui.ac.ir/sites/misp.mui.ac.ir/files/data/FFA_abnormal.zip", None),
]


def find_pairs(root: Path) -> list[tuple[Path, Path, str]]:
    """(fundus, angio, group) by the file-name convention above; unpaired files are errors."""
    pairs = []
    for group in ("normal", "abnormal"):
        d = next((p for p in root.rglob("*") if p.is_dir() and p.name.lower() == group), None)
        if d is None:
            continue
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif"))
        photos = {p.stem: p for p in files if re.fullmatch(r"\d+", p.stem)}
        angios = {}
        for p in files:
            m = re.fullmatch(r"(\d+)(?:[-_](?:\d+|fa|angio))", p.stem, re.I)
            if m:
                angios.setdefault(m.group(1), p)
            elif p.stem not in photos:
                raise DataError(f"unrecognised file name (neither <n> nor <n>-<m>/<n>_fa): {p}")
        for k in sorted(set(photos) | set(angios), key=int):
            if k not in angios:
                raise DataError(f"unpaired photograph (no angiogram {k}-*.jpg / {k}_fa.jpg beside it): {photos[k]}")
            if k not in photos:
                raise DataError(f"unpaired angiogram (no photograph {k}.jpg beside it): {angios[k]}")
            pairs.append((photos[k], angios[k], group))
    if not pairs:
        raise DataError(f"no normal/ or abnormal/ folder with pairs under {root}")
    return pairs


def read_pairs_csv(path: Path) -> list[tuple[Path, Path, str]]:
    out = []
    with open(path) as f:
        for i, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DataError(f"{path}:{i}: expected fundus_path,angio_path[,split]")
            out.append((path.parent / row[0], path.parent / row[1], row[2] if len(row) > 2 else "train"))
    return out


def convert_isfahan(src: str | Path, out: str | Path, pairs_csv: str | Path | None = None,
                    test_every: int = 4) -> Path:
    """Write ``fundus``/``angio`` pairs (ids ``<group>_<n>``); every ``test_every``-th pair -> test."""
    with tempfile.TemporaryDirectory() as work:
        root = open_source(src, Path(work))
        pairs = read_pairs_csv(Path(pairs_csv)) if pairs_csv else find_pairs(root)
        with atomic_dir(Path(out)) as tmp:
            splits: dict[str, list[str]] = {}
            for i, (fp, ap, group) in enumerate(pairs):
                split = group if group in ("train", "test") else ("test" if i % test_every == test_every - 1 else "train")
                iid = f"{group}_{fp.stem}" if group not in ("train", "test") else fp.stem
                write_image(tmp / split / "fundus" / f"{iid}.png", read_checked(fp, ISFAHAN_SIZE, "RGB"))
                write_image(tmp / split / "angio" / f"{iid}.png", read_checked(ap, ISFAHAN_SIZE, "L"))
                splits.setdefault(split, []).append(iid)
            write_meta(tmp, {"kind": "isfahan", "source": str(src), "size": list(ISFAHAN_SIZE), "splits": splits,
                             "registered": False, "note": "pairs are not registered; see fetch_isfahan.py"})
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Isfahan MISP fundus/FA pairs -> MedSynth layout")
    ap.add_argument("out")
    ap.add_argument("--local", help="folder or archive you already have (offline)")
    ap.add_argument("--pairs", help="CSV fundus_path,angio_path[,split] (relative to the CSV)")
    ap.add_argument("--downloads", default=str(Path.home() / ".cache" / "medsynth" / "downloads" / "isfahan"))
    ap.add_argument("--strict", action="store_true", help="refuse files without a recorded sha256")
    a = ap.parse_args(argv)
    src = a.local
    if src is None:
        dl = Path(a.downloads)
        for name, url, sha in FILES:
            if sha is None and a.strict:
                raise DataError(f"no recorded sha256 for {url} ({name}); run without --strict or add it to FILES")
            download(url, dl / name, sha)
        src = dl
    print(convert_isfahan(src, a.out, a.pairs))


if __name__ == "__main__":
    main()
