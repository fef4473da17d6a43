"""Shared helpers of the data scripts: errors that name the file, checksums, safe archive extraction.

Not part of the installed library on purpose: these scripts run once per machine, from a checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "lib") not in sys.path:  # let the scripts run from a checkout without an install
    sys.path.insert(0, str(REPO / "lib"))

__all__ = [
    "DataError",
    "sha256sum",
    "safe_extract",
    "read_checked",
    "download",
    "open_source",
    "cli",
    "add_output_args",
]


class DataError(RuntimeError):
    """A problem with an input file; the message always names the file."""


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _inside(base: Path, target: Path) -> bool:
    base, target = base.resolve(), target.resolve()
    return target == base or base in target.parents


def safe_extract(archive: str | Path, dest: str | Path) -> Path:
    """Extract a .zip / .tar(.gz|.bz2|.xz) into ``dest``, refusing any member that would land outside
    it (``../`` paths, absolute paths, links pointing out) - the "zip slip" attack. Checks every
    member before writing anything."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if Path(name).is_absolute() or not _inside(dest, dest / name):
                    raise DataError(f"{archive}: member {name!r} would extract outside {dest}; refusing")
            z.extractall(dest)
        return dest
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                if Path(m.name).is_absolute() or not _inside(dest, dest / m.name):
                    raise DataError(f"{archive}: member {m.name!r} would extract outside {dest}; refusing")
                if m.issym() or m.islnk():
                    link = (dest / m.name).parent / m.linkname if m.issym() else dest / m.linkname
                    if Path(m.linkname).is_absolute() or not _inside(dest, link):
                        raise DataError(f"{archive}: link {m.name!r} -> {m.linkname!r} points outside {dest}; refusing")
                if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                    raise DataError(f"{archive}: member {m.name!r} is a device/fifo; refusing")
            t.extractall(dest, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        return dest
    raise DataError(f"not a zip or tar archive: {archive}")


def read_checked(path: Path, size: tuple[int, int] | None = None, mode: str | None = None) -> np.ndarray:
    """Read an image, raising :class:`DataError` naming ``path`` if missing, unreadable or of the wrong
    (H, W) ``size``. ``mode``: PIL mode to convert to ("RGB", "L")."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"missing file: {path}")
    try:
        with Image.open(path) as im:
            arr = np.array(im.convert(mode) if mode else im)
    except Exception as e:
        raise DataError(f"unreadable image: {path} ({type(e).__name__}: {e})") from e
    if size is not None and tuple(arr.shape[:2]) != tuple(size):
        raise DataError(f"wrong size: {path} is {arr.shape[0]}x{arr.shape[1]} (HxW), expected {size[0]}x{size[1]}")
    return arr


def download(url: str, dest: Path, sha256: str | None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (resumes nothing; writes a .part then renames), checking sha256.

    Offline or unreachable -> :class:`DataError` saying which URL and what to do instead.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (sha256 is None or sha256sum(dest) == sha256):
        return dest
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
            shutil.copyfileobj(r, f)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        raise DataError(
            f"could not download {url} ({e}). If you are offline, download it on another machine "
            f"and put it at {dest}, or pass the local file/folder to the converter."
        ) from e
    got = sha256sum(part)
    if sha256 is not None and got != sha256:
        part.unlink(missing_ok=True)
        raise DataError(f"checksum mismatch for {url}: sha256 {got}, expected {sha256}; file removed")
    os.replace(part, dest)
    if sha256 is None:
        print(f"warning: no recorded checksum for {url}; got sha256 {got} (record it in the table)")
    return dest


def open_source(src: str | Path, workdir: Path) -> Path:
    """A dataset given as a folder is used in place; an archive is safely extracted into ``workdir``."""
    src = Path(src)
    if src.is_dir():
        return src
    if not src.exists():
        raise DataError(f"missing dataset folder or archive: {src}")
    return safe_extract(src, workdir)


def add_output_args(ap: argparse.ArgumentParser) -> None:
    """The converters' shared flags: ``--overwrite`` (replace an existing output folder, only once the new
    one is complete) and ``--debug`` (a full traceback instead of the one-line error)."""
    ap.add_argument(
        "--overwrite", action="store_true", help="replace the output folder if it exists (default: refuse, naming it)"
    )
    ap.add_argument("--debug", action="store_true", help="show the full traceback on an error")


def cli(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Run a script's ``main``: a bad or missing input is one line, ``error: ...``, and exit status 2 (the
    traceback only with ``--debug``); anything else is a bug and keeps its traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        main(args)
    except (DataError, FileExistsError, FileNotFoundError) as e:
        if "--debug" in args:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
