"""Small helpers every chapter notebook uses: where a run writes, its metrics.json, the committed
reference run, and library source shown highlighted.

Batch reruns (``make course``, papermill) collect ``<out_dir>/metrics.json`` from each chapter,
so every notebook ends by calling :func:`write_metrics`.
"""

from __future__ import annotations

import dataclasses
import inspect
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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # presets
        return _jsonable(dataclasses.asdict(value))
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


def read_reference(chapter: str, results_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The committed reference run of ``chapter`` (``results/<chapter>/metrics.json``), or None if absent."""
    path = Path(results_dir or REPO_ROOT / "results") / chapter / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def show_source(*objects: Any) -> Any:
    """Library source of functions/classes/methods, syntax-highlighted in JupyterLab (plain text elsewhere).

    Uses IPython's own ``Code`` display (pygments underneath), so the stored notebook carries both an
    HTML rendering and the plain source, which nbval and headless runs read.
    """
    from IPython.display import Code

    return Code("\n".join(inspect.getsource(o).rstrip() + "\n" for o in objects), language="python")


def save_figure(fig: Any, out_dir: str | Path, name: str, dpi: int = 90) -> Path:
    """Save a matplotlib figure as ``<out_dir>/fig_<name>.png`` (``make reference`` commits these)."""
    path = Path(out_dir) / f"fig_{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def write_claims(out_dir: str | Path, markdown: str) -> Path:
    """Write the computed claims table as ``<out_dir>/claims.md``."""
    path = Path(out_dir) / "claims.md"
    path.write_text(markdown + "\n")
    return path
