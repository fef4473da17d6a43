"""``python -m medsynth.course``: run every chapter headless with papermill (``make course``).

Each executed notebook and its ``metrics.json`` land in ``runs/<timestamp>/<chapter>/``; at the end a
table (chapter | primary metric | model | best baseline | paper | claims supported | wall time) is printed
and ``runs/<timestamp>/index.html`` is written (``medsynth.course_report``). Parameters given with ``-p name value`` are
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


def run_notebook(src: Path, out_dir: Path, parameters: dict[str, Any] | None = None, timeout: int = 3600) -> Path:
    """Execute one notebook with papermill into ``out_dir``; the one place the runner is named.

    ``out_dir`` is injected as a parameter, so the chapter writes its metrics.json beside the
    executed copy. Tests call this too, so swapping papermill for another runner is one edit.
    The kernel talks over IPC sockets, not loopback TCP: ipykernel warns about unencrypted TCP, and a
    local batch run has no reason to open ports. We own that kernel, so we shut it down.
    """
    import jupyter_client
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"out_dir": str(out_dir), **(parameters or {})}
    dest = out_dir / src.name
    km = jupyter_client.KernelManager(kernel_name="python3", transport="ipc")
    try:
        papermill.execute_notebook(
            str(src),
            str(dest),
            parameters=params,
            cwd=str(src.parent),
            km=km,
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
        )
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
    return dest


def notebook_parameters(nb: Path) -> set[str]:
    """Names in a notebook's ``parameters`` cell, as papermill reads them."""
    import papermill

    return set(papermill.inspect_notebook(str(nb)))


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


def flat_dump(results: dict[str, dict[str, Any]]) -> str:
    """Every chapter's metrics.json as ``key  value`` lines (for a close look; ``make course`` prints the table)."""
    lines = []
    for chapter, metrics in results.items():
        lines.append(f"== {chapter}")
        flat = _flatten(metrics)
        width = max((len(k) for k in flat), default=0)
        lines += [f"   {k:<{width}}  {_fmt(v)}" for k, v in flat.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from medsynth.course_report import summary_row, summary_table, write_index

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--only", nargs="*", help="chapter prefixes to run, e.g. 00 01")
    ap.add_argument("--runs-dir", type=Path, default=REPO_ROOT / "runs")
    ap.add_argument("--dump", action="store_true", help="also print every metrics.json entry")
    args = ap.parse_args(argv)
    params = {k: _literal(v) for k, v in args.parameter}
    selected = [nb for nb in chapters() if not args.only or any(nb.name.startswith(p) for p in args.only)]
    if args.only and not selected:
        ap.error(
            f"--only {' '.join(args.only)}: no chapter matches (chapters: {', '.join(nb.stem for nb in chapters())})"
        )
    known = set().union(*(notebook_parameters(nb) for nb in selected))
    if unknown := sorted(set(params) - known):
        ap.error(f"unknown parameter(s) {', '.join(unknown)}: the chapters run take {', '.join(sorted(known))}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.runs_dir / stamp
    results: dict[str, dict[str, Any]] = {}
    rows, failed = [], []
    for nb in selected:
        out = run_dir / nb.stem
        t0 = time.perf_counter()
        print(f"-> {nb.name} ...", flush=True)
        try:
            run_notebook(nb, out, params)
        except Exception as exc:  # keep going: one broken chapter should not hide the others
            failed.append(nb.name)
            print(f"   FAILED: {type(exc).__name__}: {str(exc)[:2000]}", flush=True)
            rows.append(summary_row(nb.stem, {}, time.perf_counter() - t0, failed=True))
            continue
        metrics_file = out / "metrics.json"
        results[nb.stem] = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        wall = time.perf_counter() - t0
        rows.append(summary_row(nb.stem, results[nb.stem], wall))
        print(f"   done in {wall:.0f} s -> {out}", flush=True)
    if args.dump:
        print(flat_dump(results))
    print(f"\nCourse run {run_dir} (every number: <chapter>/metrics.json):\n")
    print(summary_table(rows))
    print(f"\nOne page with each chapter's claims and figures: {write_index(run_dir, rows, results)}")
    if failed:
        print(f"\nFailed chapters: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
