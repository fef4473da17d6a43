"""``make mutants``: mutation testing of the library's core modules against the fast unit tests (mutmut).

mutmut puts plausible one-line bugs into the code (``+`` for ``-``, ``<`` for ``<=``, a constant off by one, a
dropped argument...) one at a time and runs the tests that reach the mutated function; a mutant that no test
kills marks a behaviour the suite does not check. It is slow (minutes per module on 2 cores), so it is not part
of ``make test``.

mutmut 3 expects the package at the repository root or under ``src/``; ours lives under ``lib/``. So this stages
a copy: ``<work>/src/medsynth`` (the library), ``<work>/tests`` (the unit tests) and a ``pyproject.toml`` whose
``[tool.mutmut]`` section says which modules to mutate and which tests to run (``MODULES`` and ``TESTS`` below),
then runs ``mutmut run`` there and prints ``mutmut results``. The editable install's ``lib/`` stays on
``sys.path`` behind mutmut's ``mutants/src``, so the tests import the mutated copy.

    python tests/mutants.py                          # every module below
    python tests/mutants.py --modules blocks losses  # some of them
    python tests/mutants.py --work /tmp/mut --keep   # keep the staging folder to browse survivors
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# module (under lib/medsynth) -> the fast unit tests that exercise it
MODULES: dict[str, list[str]] = {
    "blocks": [
        "tests/test_blocks.py",
        "tests/test_wiring.py",
        "tests/test_ch01_models.py",
        "tests/test_ch01_resize.py",
    ],
    "losses": ["tests/test_losses.py", "tests/test_ch02_losses_data.py"],
    "metrics": [
        "tests/test_metrics.py",
        "tests/test_ch05_metrics.py",
        "tests/test_ch05_video_eval.py",
        "tests/test_ch03_segmenter.py",
        "tests/test_ch02_losses_data.py",
        "tests/test_lpips.py",
        "tests/test_video_metrics.py",
    ],
    "structure": ["tests/test_structure.py", "tests/test_structure_values.py"],
    "knowledge": ["tests/test_knowledge.py"],
    "data/datasets": ["tests/test_data_layout.py", "tests/test_data_channels.py", "tests/test_data_datasets_values.py"],
    # single metric files, to re-measure one at a time (the "metrics" entry mutates them all)
    "metrics/lpips": ["tests/test_ch05_metrics.py", "tests/test_lpips.py"],
    "metrics/video": ["tests/test_ch05_metrics.py", "tests/test_ch05_video_eval.py", "tests/test_video_metrics.py"],
    "metrics/video_eval": ["tests/test_ch05_video_eval.py", "tests/test_video_metrics.py"],
}


def stage(work: Path, modules: list[str]) -> None:
    """Copy the library and tests into ``work`` in the ``src/`` layout, with the mutmut configuration."""
    shutil.copytree(REPO / "lib" / "medsynth", work / "src" / "medsynth", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"))
    shutil.copytree(REPO / "data_scripts", work / "data_scripts", ignore=shutil.ignore_patterns("__pycache__"))
    tests = sorted({t for m in modules for t in MODULES[m]})
    only = [
        f"src/medsynth/{m}.py" if (REPO / "lib" / "medsynth" / f"{m}.py").is_file() else f"src/medsynth/{m}/*"
        for m in modules
    ]
    (work / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        'also_copy = ["data_scripts"]\n'
        f"only_mutate = {json.dumps(only)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-q", "-x", "-p", "no:cacheprovider", "-p", "no:nbval", "-m", "not slow"]\n'
        "\n[tool.pytest.ini_options]\n"
        'markers = ["slow: long", "realdata: real data", "browser: browser"]\n'
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", nargs="*", default=list(MODULES), choices=list(MODULES))
    ap.add_argument("--work", type=Path, default=None, help="staging folder (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the staging folder")
    ap.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="medsynth-mutants-"))
    if work.exists() and any(work.iterdir()):
        ap.error(f"--work {work} exists and is not empty")
    work.mkdir(parents=True, exist_ok=True)
    try:
        stage(work, a.modules)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        mutmut = [sys.executable, "-m", "mutmut"]
        subprocess.run([*mutmut, "run", "--max-children", str(a.max_children)], cwd=work, env=env, check=False)
        res = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True)
        lines = [ln.strip() for ln in res.stdout.splitlines() if ":" in ln]
        status: dict[str, int] = {}
        for ln in lines:
            s = ln.rsplit(":", 1)[1].strip()
            status[s] = status.get(s, 0) + 1
        print("\n".join(ln for ln in lines if ln.endswith("survived")))
        killed, total = status.get("killed", 0), sum(status.values())
        print(
            f"\nmutants: {total}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(status.items()))
            + (f"; score (killed / all) {killed / total:.1%}" if total else "")
        )
        return 0
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"staging folder kept: {work}")


if __name__ == "__main__":
    sys.exit(main())
