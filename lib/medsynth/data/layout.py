"""The one on-disk layout shared by phantoms and converted real datasets.

::

    <root>/meta.json                          {"layout": 1, "kind": ..., "splits": {split: [ids]}, ...}
    <root>/<split>/<modality>/<id>.png        one image per modality, registered within an id
    <root>/<split>/mask_<name>/<id>.png       binary masks, 0/255 (vessels, fov, disc, lesions, brain, ...)
    <root>/<split>/labels/<id>.png            BraTS label map, raw values 0/1/2/4
    <root>/<split>/frames/<id>/<k>.png        FA sequence, k = 00, 01, ... in time order
    <root>/<split>/frames_leakage/<id>/<k>.png  per-frame leakage masks (phantoms only)

Modalities: ``fundus`` (RGB), ``angio`` (grey FA), ``t1``, ``t2``, ``t1c``, ``flair`` and MedGAN's
``t1_motion``, ``pet``, ``pet_low``, ``ct`` (grey). Images are 8-bit PNG; readers return float32
in [0,1]. ``meta.json`` records what made the folder (generator parameters or source archive),
the ids per split and, for sequences, ``frame_times``/``phases``. A notebook switches between
phantoms and real data by ``data_root`` alone because both are written here.

:func:`ensure_phantoms` generates a phantom dataset once and caches it under
``$MEDSYNTH_CACHE`` (default ``~/.cache/medsynth``), in a folder named by a hash of the parameters;
it writes into a temporary folder and renames it into place, so an interrupted run never leaves
a half-written dataset that a later run would mistake for a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "LAYOUT_VERSION",
    "cache_dir",
    "sample_seed",
    "write_image",
    "read_image",
    "read_meta",
    "list_ids",
    "write_meta",
    "write_phantoms",
    "ensure_phantoms",
    "load_pair",
    "atomic_dir",
    "PHANTOM_KINDS",
]

LAYOUT_VERSION = 1
PHANTOM_KINDS = ("retina", "retina_seq", "brain")


def cache_dir() -> Path:
    """``$MEDSYNTH_CACHE`` or ``~/.cache/medsynth``."""
    return Path(os.environ.get("MEDSYNTH_CACHE") or Path.home() / ".cache" / "medsynth")


def sample_seed(seed: int, split: str, index: int) -> int:
    """Seed of item ``index`` of ``split``: stable across runs/platforms, distinct across splits."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{split}/{index}".encode()).digest()[:4], "little")


def write_image(path: Path, img: np.ndarray) -> None:
    """Write float [0,1] (H,W) / (H,W,3), bool masks (0/255) or uint8 as 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.dtype == bool:
        arr = img.astype(np.uint8) * 255
    elif img.dtype == np.uint8:
        arr = img
    else:
        arr = np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(arr).save(path, compress_level=3)


def read_image(path: str | Path, raw: bool = False) -> np.ndarray:
    """Read an image: float32 [0,1] (H,W) or (H,W,3); ``raw=True`` keeps uint8 (labels, masks).

    Raises ``FileNotFoundError``/``ValueError`` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing image file: {path}")
    try:
        with Image.open(path) as im:
            arr = np.array(im.convert("RGB") if im.mode in ("P", "RGBA", "CMYK") else im)
    except Exception as e:  # PIL raises several types for corrupt files
        raise ValueError(f"unreadable image file: {path} ({e})") from e
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if raw:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32) / 255.0


def write_meta(root: Path, meta: Mapping[str, Any]) -> None:
    (Path(root) / "meta.json").write_text(json.dumps({"layout": LAYOUT_VERSION, **meta}, indent=1))


def read_meta(root: str | Path) -> dict:
    """``<root>/meta.json``; a folder without it is not a dataset in this layout (clear error)."""
    p = Path(root) / "meta.json"
    if not p.is_file():
        raise FileNotFoundError(f"not a MedSynth dataset folder (no meta.json): {p}")
    return json.loads(p.read_text())


def list_ids(root: str | Path, split: str, modality: str | None = None) -> list[str]:
    """Ids of ``split``: from meta.json, else the file names of ``modality`` (sorted)."""
    meta = read_meta(root)
    ids = meta.get("splits", {}).get(split)
    if ids is None and modality is not None:
        ids = sorted(p.stem for p in (Path(root) / split / modality).glob("*.png"))
    if ids is None:
        raise KeyError(f"split {split!r} not in {Path(root) / 'meta.json'} (has {list(meta.get('splits', {}))})")
    return list(ids)


class atomic_dir:
    """Context manager: yields a temp folder next to ``final``; renames it to ``final`` on success.

    On an exception the temp folder is removed, so ``final`` is either complete or absent.
    ``exist`` says what happens when ``final`` already exists and is not empty: ``"keep"`` (the phantom
    cache: someone else finished first, keep theirs), ``"refuse"`` (converters: an error before any work,
    naming the folder and ``--overwrite``) or ``"replace"`` (``--overwrite``: the old folder is removed only
    after the new one is complete, so a failed conversion loses nothing).
    """

    def __init__(self, final: Path, exist: str = "keep") -> None:
        if exist not in ("keep", "refuse", "replace"):
            raise ValueError(f"atomic_dir: exist must be 'keep', 'refuse' or 'replace', not {exist!r}")
        self.final, self.exist = Path(final), exist

    def __enter__(self) -> Path:
        if self.exist == "refuse" and self.final.exists() and any(self.final.iterdir()):
            raise FileExistsError(
                f"output folder exists and is not empty: {self.final} "
                f"(choose another folder, or pass --overwrite to replace it)"
            )
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.final.name}-", dir=self.final.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.exist == "replace" and self.final.exists():
            old = self.final.with_name(f".old-{self.final.name}-{os.getpid()}")
            os.rename(self.final, old)
        try:
            os.rename(self.tmp, self.final)
        except OSError:  # someone else finished first (or final exists): keep theirs
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not (self.final / "meta.json").is_file():
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _writer(kind: str) -> Callable[[Path, str, str, int, tuple[int, int], dict], dict]:
    from medsynth.data import writers  # local import: keeps layout importable without the generators

    return {
        "retina": writers.write_retina_item,
        "retina_seq": writers.write_retina_item,
        "brain": writers.write_brain_item,
    }[kind]


def write_phantoms(
    out_root: str | Path,
    kind: str,
    n: Mapping[str, int],
    size: int | Iterable[int],
    seed: int = 0,
    progress: bool = False,
    overwrite: bool = False,
    **params: Any,
) -> Path:
    """Generate ``n[split]`` phantom items of ``kind`` into ``out_root`` (atomically; it must not exist or be
    empty, unless ``overwrite``: then the old folder is replaced once the new one is complete).

    ``params`` go to the generator (retina: ``severity`` None = Isfahan-like mix of normal and
    abnormal eyes, ``n_frames`` for ``retina_seq`` (default 12), ``misalign``; brain: ``tumour``, ``anatomy``).
    """
    if kind not in PHANTOM_KINDS:
        raise ValueError(f"unknown phantom kind {kind!r}; expected one of {PHANTOM_KINDS}")
    size_t = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(size_t) != 2:
        raise ValueError(f"size must be an int or (H, W), got {size!r}")
    out_root = Path(out_root)
    if out_root.exists() and not any(out_root.iterdir()):
        out_root.rmdir()
    if kind == "retina_seq":
        params.setdefault("n_frames", 12)
    write_item = _writer(kind)
    items: dict[str, dict] = {}
    extra: dict[str, Any] = {}
    with atomic_dir(out_root, "replace" if overwrite else "refuse") as tmp:
        it = [(split, i) for split, k in n.items() for i in range(int(k))]
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"phantoms:{kind}")
        for split, i in it:
            iid = f"{i:06d}"
            info = write_item(tmp, split, iid, sample_seed(seed, split, i), size_t, dict(params))
            extra.update(info.pop("_shared", {}))
            items[f"{split}/{iid}"] = info
        write_meta(
            tmp,
            {
                "kind": kind,
                "source": "phantom",
                "generator": f"medsynth.data ({kind})",
                "size": list(size_t),
                "seed": int(seed),
                "params": params,
                "splits": {s: [f"{i:06d}" for i in range(int(k))] for s, k in n.items()},
                "items": items,
                **extra,
            },
        )
    return out_root


def ensure_phantoms(
    kind: str,
    n: Mapping[str, int],
    size: int | Iterable[int] = (576, 720),
    seed: int = 0,
    root: str | Path | None = None,
    progress: bool = False,
    **params: Any,
) -> Path:
    """Return the root of a cached phantom dataset with these parameters, generating it if needed.

    The folder is ``<root or cache_dir()>/<kind>-<hash>``, the hash covering kind, counts, size,
    seed, generator params and the layout version: same arguments -> same folder, reused.
    """
    size_l = [int(size), int(size)] if isinstance(size, (int, np.integer)) else [int(s) for s in size]
    key = json.dumps(
        {
            "kind": kind,
            "n": dict(n),
            "size": size_l,
            "seed": int(seed),
            "params": params,
            "layout": LAYOUT_VERSION,
            "gen": _generator_version(),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    base = Path(root) if root is not None else cache_dir()
    final = base / f"{kind}-{digest}"
    if (final / "meta.json").is_file():
        return final
    if final.exists():  # a folder without meta.json cannot be ours complete; never trust it
        shutil.rmtree(final)
    return write_phantoms(final, kind, n, size_l, seed, progress=progress, **params)


def _generator_version() -> str:
    """Bumped by hand when a phantom's pixels change, so stale caches are not reused."""
    from medsynth.data import GENERATOR_VERSION

    return GENERATOR_VERSION


def load_pair(
    root: str | Path,
    split: str,
    id: str,
    src: str = "fundus",
    dst: str = "angio",
    as_tensor: bool = True,
    masks: Iterable[str] = (),
) -> dict:
    """One full-size pair for evaluation, in the :class:`PairedDataset` convention.

    ``as_tensor``: ``src`` (C,H,W) and ``dst`` (C,H,W) float tensors in [-1,1]; else float32 numpy
    in [0,1] (H,W[,3]). ``masks``: names of ``mask_<name>`` folders to add as bool arrays.
    """
    root = Path(root)
    a = read_image(root / split / src / f"{id}.png")
    b = read_image(root / split / dst / f"{id}.png")
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(
            f"pair {id}: {src} {a.shape[:2]} and {dst} {b.shape[:2]} differ in size "
            f"({root / split / src / (id + '.png')})"
        )
    out: dict[str, Any] = {"id": id}
    if as_tensor:
        import torch

        def chw(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1) if x.ndim == 3 else x[None]))

        out["src"], out["dst"] = chw(a) * 2 - 1, chw(b) * 2 - 1
    else:
        out["src"], out["dst"] = a, b
    for m in masks:
        out.setdefault("masks", {})[m] = read_image(root / split / f"mask_{m}" / f"{id}.png", raw=True) > 127
    return out
