"""``python -m medsynth.course``: run every chapter headless with papermill (``make course``).

Each executed notebook and its ``metrics.json`` land in ``runs/<timestamp>/<chapter>/``; a summary
table of all chapters' metrics is printed at the end. Parameters given with ``-p name value`` are
passed to every chapter (e.g. ``-p device cuda -p quick False`` for the paper-scale runs on a GPU).
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path
from typing import Any

from medsynth.nbutils import REPO_ROOT


def chapters(notebook_dir: Path = REPO_ROOT / "notebooks") -> list[Path]:
    """The chapter notebooks, in order (``NN_name.ipynb``)."""
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(src: Path, out_dir: Path, parameters: dict[str, Any] | None = None,
                 timeout: int = 3600) -> Path:
    """Execute one notebook with papermill into ``out_dir``; the one place the runner is named.

    ``out_dir`` is injected as a parameter, so the chapter writes its metrics.json beside the
    executed copy. Tests call this too, so swapping papermill for another runner is one edit.
    """
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"out_dir": str(out_dir), **(parameters or {})}
    dest = out_dir / src.name
    papermill.execute_notebook(str(src), str(dest), parameters=params, cwd=str(src.parent),
                               kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    return dest


def _literal(text: str) -> Any:
    """A ``-p`` value as papermill's CLI reads it: a Python literal (``False``, ``3``, ``1e-3``) or else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts (and lists of dicts, e.g. table rows) to ``a.b[i].c`` keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                out.update(_flatten(x, f"{prefix}{k}[{i}]."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def summary_table(results: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: one block per chapter, one metric per line."""
    lines = []
    for chapter, metrics in results.items():
        lines.append(f"== {chapter}")
        flat = _flatten(metrics)
        width = max((len(k) for k in flat), default=0)
        lines += [f"   {k:<{width}}  {_fmt(v)}" for k, v in flat.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--only", nargs="*", help="chapter prefixes to run, e.g. 00 01")
    ap.add_argument("--runs-dir", type=Path, default=REPO_ROOT / "runs")
    args = ap.parse_args(argv)
    params = {k: _literal(v) for k, v in args.parameter}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, dict[str, Any]] = {}
    failed = []
    for nb in chapters():
        if args.only and not any(nb.name.startswith(p) for p in args.only):
            continue
        out = args.runs_dir / stamp / nb.stem
        t0 = time.perf_counter()
        print(f"-> {nb.name} ...", flush=True)
        try:
            run_notebook(nb, out, params)
        except Exception as exc:  # keep going: one broken chapter should not hide the others
            failed.append(nb.name)
            print(f"   FAILED: {type(exc).__name__}: {str(exc)[:2000]}", flush=True)
            continue
        metrics_file = out / "metrics.json"
        results[nb.stem] = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        print(f"   done in {time.perf_counter() - t0:.0f} s -> {out}", flush=True)
    print("\nSummary of metrics.json per chapter (runs/%s):" % stamp)
    print(summary_table(results))
    if failed:
        print(f"\nFailed chapters: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
