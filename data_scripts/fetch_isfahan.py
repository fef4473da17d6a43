#!/usr/bin/env python
"""Fetch and convert the Isfahan MISP fundus / fluorescein-angiography pairs (Fundus2Angio's data).

Source: Medical Image and Signal Processing Research Center, Isfahan University of Medical
Sciences (Hajeb Mohammad Alipour, Rabbani, Akhlaghi), "Diabetic retinopathy grading by digital
curvelet transform", Comput. Math. Methods Med. 2012. 60 patients: 30 normal + 30 abnormal pairs,
720x576 (WxH); photographs RGB, angiograms grey (01_fundus2angio Sec. 4).

**File names differ between the two groups** (as the official ``random_crop.py`` of
SharifAmit/Fundus2Angio reads them, and as the grey angiograms ``<n>.jpg`` of the normal set show):

* ``ABNORMAL/<n>.jpg`` is the photograph, ``ABNORMAL/<n>-<n>.jpg`` the angiogram;
* ``NORMAL/<n>-<n>.jpg`` is the photograph, ``NORMAL/<n>.jpg`` the angiogram.

Every image is checked for its modality: a "photograph" that is grey or an "angiogram" that is in
colour is refused with a :class:`DataError` naming the file (a swapped pair is the likely cause).

Default selection (``--pairs paper``): the 17 pairs Fundus2Angio trained on (Sec. 4: "aligned or
almost aligned"; ``random_crop.py``: abnormal 4, 5, 6, 8, 18, 21, 28; normal 1, 4, 7, 8, 11, 15, 16,
21, 24, 28) form the ``train`` split. The paper tests on 14 images (x 4 quadrant crops = 56) but
names neither the images nor a rule; ``--n-test 14`` (the default) draws 14 of the other pairs with a
fixed seed, ``--n-test all`` keeps every other pair. The meta file records the choice.

Caveats (and why the course's default is the phantom):
* the pairs are NOT registered: photo and angiogram were taken minutes apart, the eye moved;
* check the dataset page for its published errata before relying on a particular pair; none is applied;
* the site has moved before: the URLs below could not be verified from this project's build machine,
  and their checksums are not yet recorded (``None``: the script prints the sha256 it got;
  ``--strict`` refuses unverified files).

Usage::

    python data_scripts/fetch_isfahan.py data/isfahan            # download (online) + convert
    python data_scripts/fetch_isfahan.py data/isfahan --local DIR_OR_ZIP   # offline: your copy
    python data_scripts/fetch_isfahan.py data/isfahan --local DIR --pairs all   # all 60 pairs
    python data_scripts/fetch_isfahan.py data/isfahan --local DIR --pairs "abnormal:4,5;normal:1"

``--pairs`` also takes a CSV with lines ``fundus_path,angio_path[,split]`` (paths relative to it).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DataError, add_output_args, cli, download, open_source, read_checked, safe_extract

from medsynth.data.layout import atomic_dir, write_image, write_meta

ISFAHAN_SIZE = (576, 720)  # H, W
# name, URL, sha256 (None: not yet recorded - see the module docstring)
FILES = [
    ("normal.zip", "https://misp.mui.ac.ir/sites/misp.mui.ac.ir/files/data/FFA_normal.zip", None),
    ("abnormal.zip", "https://misp.mui.ac.ir/sites/misp.mui.ac.ir/files/data/FFA_abnormal.zip", None),
]
#: Fundus2Angio's 17 training pairs (official random_crop.py: ``ab`` and ``n``).
PAPER_PAIRS = {"abnormal": (4, 5, 6, 8, 18, 21, 28), "normal": (1, 4, 7, 8, 11, 15, 16, 21, 24, 28)}
PAPER_N_TEST = 14
#: Which of ``<n>.jpg`` / ``<n>-<n>.jpg`` is the photograph, per group (see the module docstring).
PHOTO_IS_PLAIN = {"abnormal": True, "normal": False}
#: Mean |channel - channel mean| (0..255) above which an image counts as colour. Grey images stored
#: as RGB JPEGs stay below 1-2 (chroma noise); fundus photographs are far above (red-dominant).
COLOUR_SPREAD = 6.0
_EXT = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def colour_spread(arr: np.ndarray) -> float:
    """Mean absolute deviation of the channels from their per-pixel mean (0 for grey images)."""
    if arr.ndim == 2 or arr.shape[-1] == 1:
        return 0.0
    rgb = arr[..., :3].astype(np.float32)
    return float(np.abs(rgb - rgb.mean(-1, keepdims=True)).mean())


def read_modality(path: Path, kind: str, size: tuple[int, int] = ISFAHAN_SIZE) -> np.ndarray:
    """A checked ``"photo"`` (uint8 H,W,3, must be in colour) or ``"angio"`` (uint8 H,W, must be grey)."""
    arr = read_checked(path, size)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    spread = colour_spread(arr)
    if kind == "photo":
        if spread < COLOUR_SPREAD:
            raise DataError(
                f"expected a colour fundus photograph, but {path} is grey (colour spread {spread:.1f} "
                f"< {COLOUR_SPREAD}); photograph and angiogram swapped? In NORMAL/ the photograph is "
                "<n>-<n>.jpg, in ABNORMAL/ it is <n>.jpg"
            )
        return np.ascontiguousarray(arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, -1))
    if spread >= COLOUR_SPREAD:
        raise DataError(
            f"expected a grey angiogram, but {path} is in colour (colour spread {spread:.1f} >= "
            f"{COLOUR_SPREAD}); photograph and angiogram swapped? In NORMAL/ the angiogram is <n>.jpg, "
            "in ABNORMAL/ it is <n>-<n>.jpg"
        )
    return arr if arr.ndim == 2 else np.round(arr[..., :3].astype(np.float32).mean(-1)).astype(np.uint8)


def find_pairs(root: Path) -> dict[str, dict[int, tuple[Path, Path]]]:
    """group -> n -> (photograph, angiogram) by each group's naming; unpaired or odd names are errors."""
    found: dict[str, dict[int, tuple[Path, Path]]] = {}
    for group in ("normal", "abnormal"):
        # the folder named like the group that holds the images (an archive may nest NORMAL/ in normal/)
        d = next(
            (
                p
                for p in sorted(root.rglob("*"))
                if p.is_dir() and p.name.lower() == group and any(f.suffix.lower() in _EXT for f in p.iterdir())
            ),
            None,
        )
        if d is None:
            continue
        plain, dashed = {}, {}
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in _EXT:
                continue
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", p.stem)
            if m is None:
                raise DataError(f"unrecognised file name in {group}/ (neither <n> nor <n>-<n>): {p}")
            n = int(m.group(1))
            table = plain if m.group(2) is None else dashed
            if n in table:
                raise DataError(f"two files for pair {n} in {group}/: {table[n]} and {p}")
            table[n] = p
        for n in sorted(set(plain) | set(dashed)):
            if n not in plain or n not in dashed:
                have, need = (plain, f"{n}-{n}.jpg") if n in plain else (dashed, f"{n}.jpg")
                raise DataError(f"unpaired file (no {need} beside it): {have[n]}")
            pair = (plain[n], dashed[n]) if PHOTO_IS_PLAIN[group] else (dashed[n], plain[n])
            found.setdefault(group, {})[n] = pair
    if not found:
        raise DataError(f"no NORMAL/ or ABNORMAL/ folder with pairs under {root}")
    return found


def parse_selection(text: str) -> dict[str, tuple[int, ...]]:
    """``"abnormal:4,5;normal:1,4"`` -> {"abnormal": (4, 5), "normal": (1, 4)}."""
    out: dict[str, tuple[int, ...]] = {}
    for part in filter(None, (s.strip() for s in text.split(";"))):
        group, _, nums = part.partition(":")
        if group.strip().lower() not in PHOTO_IS_PLAIN or not nums:
            raise ValueError(f"--pairs {text!r}: expected 'abnormal:4,5;normal:1,4', 'paper', 'all' or a CSV file")
        out[group.strip().lower()] = tuple(int(n) for n in nums.split(","))
    return out


def select(
    found: dict[str, dict[int, tuple[Path, Path]]],
    selection: dict[str, tuple[int, ...]] | None,
    n_test: int | None,
    seed: int = 0,
    test_every: int = 4,
) -> list[tuple[Path, Path, str, str]]:
    """(photo, angio, id, split). ``selection``: the training pairs (None: all pairs, every
    ``test_every``-th to test); ``n_test``: how many of the other pairs go to test (None: all)."""
    items = [(g, n) for g in ("abnormal", "normal") for n in sorted(found.get(g, {}))]
    if selection is None:
        split = {k: "test" if i % test_every == test_every - 1 else "train" for i, k in enumerate(items)}
    else:
        for g, nums in selection.items():
            for n in nums:
                if n not in found.get(g, {}):
                    raise DataError(
                        f"pair {g} {n} of the selection is missing from the dataset "
                        f"({g.upper()}/{n}.jpg and {n}-{n}.jpg)"
                    )
        train = [(g, n) for g, nums in selection.items() for n in nums]
        rest = [k for k in items if k not in train]
        if n_test is not None and n_test > len(rest):
            raise DataError(f"--n-test {n_test}: only {len(rest)} pairs are left outside the selection")
        pick = (
            rest
            if n_test is None
            else [rest[i] for i in sorted(np.random.default_rng(seed).choice(len(rest), n_test, replace=False))]
        )
        split = {**{k: "train" for k in train}, **{k: "test" for k in pick}}
    return [(*found[g][n], f"{g}_{n}", split[(g, n)]) for g, n in items if (g, n) in split]


def read_pairs_csv(path: Path) -> list[tuple[Path, Path, str, str]]:
    out = []
    with open(path) as f:
        for i, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DataError(f"{path}:{i}: expected fundus_path,angio_path[,split]")
            fp = path.parent / row[0]
            out.append((fp, path.parent / row[1], fp.stem, row[2] if len(row) > 2 else "train"))
    return out


def convert_isfahan(
    src: str | Path,
    out: str | Path,
    pairs: str | Path | None = "paper",
    n_test: int | None = 14,
    seed: int = 0,
    test_every: int = 4,
    size: tuple[int, int] = ISFAHAN_SIZE,
    overwrite: bool = False,
) -> Path:
    """Write checked ``fundus`` (RGB) / ``angio`` (grey) pairs, ids ``<group>_<n>``, to ``out``.

    ``pairs``: ``"paper"`` (Fundus2Angio's 17 training pairs + ``n_test`` drawn test pairs), ``"all"``
    (every pair; every ``test_every``-th to test), ``"abnormal:4,5;normal:1"`` (your training pairs), or
    a CSV path. ``size``: the expected (H, W) (576x720 for the real archive).
    """
    with tempfile.TemporaryDirectory() as work:
        root = open_source(src, Path(work))
        text = str(pairs) if pairs is not None else "all"
        if text not in ("paper", "all") and Path(text).suffix.lower() == ".csv":
            items = read_pairs_csv(Path(text))
            selection_note = f"CSV {text}"
        else:
            selection = PAPER_PAIRS if text == "paper" else None if text == "all" else parse_selection(text)
            items = select(find_pairs(root), selection, n_test, seed, test_every)
            selection_note = {
                "paper": "Fundus2Angio's 17 training pairs (official random_crop.py); the paper's 14 "
                "test images are not named: "
                + (f"{n_test} of the other pairs drawn with seed {seed}" if n_test is not None else "all other pairs"),
                "all": f"all pairs, every {test_every}-th to test",
            }.get(text, f"training pairs {text}")
        with atomic_dir(Path(out), "replace" if overwrite else "refuse") as tmp:
            splits: dict[str, list[str]] = {}
            for fp, ap, iid, split in items:
                write_image(tmp / split / "fundus" / f"{iid}.png", read_modality(fp, "photo", size))
                write_image(tmp / split / "angio" / f"{iid}.png", read_modality(ap, "angio", size))
                splits.setdefault(split, []).append(iid)
            write_meta(
                tmp,
                {
                    "kind": "isfahan",
                    "source": str(src),
                    "size": list(size),
                    "splits": splits,
                    "selection": selection_note,
                    "registered": False,
                    "note": "pairs are not registered; see fetch_isfahan.py",
                },
            )
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Isfahan MISP fundus/FA pairs -> MedSynth layout")
    ap.add_argument("out")
    ap.add_argument("--local", help="folder or archive you already have (offline)")
    ap.add_argument(
        "--pairs",
        default="paper",
        help="'paper' (default: Fundus2Angio's 17), 'all', 'abnormal:4,5;normal:1', or a CSV "
        "fundus_path,angio_path[,split] (relative to the CSV)",
    )
    ap.add_argument(
        "--n-test",
        default=str(PAPER_N_TEST),
        help="with a selection: test pairs drawn from the others (default 14, the paper's count), or 'all'",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the test-pair draw")
    ap.add_argument("--downloads", default=str(Path.home() / ".cache" / "medsynth" / "downloads" / "isfahan"))
    ap.add_argument("--strict", action="store_true", help="refuse files without a recorded sha256")
    add_output_args(ap)
    a = ap.parse_args(argv)
    src = a.local
    if src is None:
        dl = Path(a.downloads)
        for name, url, sha in FILES:
            if sha is None and a.strict:
                raise DataError(f"no recorded sha256 for {url} ({name}); run without --strict or add it to FILES")
            safe_extract(download(url, dl / name, sha), dl / "extracted" / Path(name).stem)
        src = dl / "extracted"
    print(
        convert_isfahan(
            src, a.out, a.pairs, None if a.n_test == "all" else int(a.n_test), a.seed, overwrite=a.overwrite
        )
    )


if __name__ == "__main__":
    sys.exit(cli(main))
