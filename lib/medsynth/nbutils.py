"""Small helpers every chapter notebook uses: where a run writes, and its metrics.json.

Batch reruns (``make course``, papermill) collect ``<out_dir>/metrics.json`` from each chapter,
so every notebook ends by calling :func:`write_metrics`.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_out_dir(out_dir: str | Path | None, chapter: str) -> Path:
    """The folder a chapter run writes to: ``out_dir`` when given, else ``runs/latest/<chapter>``."""
    path = Path(out_dir) if out_dir else REPO_ROOT / "runs" / "latest" / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path | None:
    """``../shared/data`` beside the repository (small real datasets), or None in a fresh clone.

    ``MEDSYNTH_SHARED_DATA`` overrides the location.
    """
    env = os.environ.get("MEDSYNTH_SHARED_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "as_dict"):  # metric results carry their label along
        return _jsonable(value.as_dict())
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_metrics(out_dir: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write ``<out_dir>/metrics.json`` (atomically) and return its path."""
    path = Path(out_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(metrics), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
