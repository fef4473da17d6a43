"""The data scripts as a user meets them: one-line errors with exit status 2, ``--debug`` for the traceback,
an existing output folder refused (naming ``--overwrite``) or replaced only once the new one is complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medsynth.data import read_meta
from medsynth.data.layout import atomic_dir

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "data_scripts"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize("script", ["convert_fire.py", "convert_brats.py", "convert_drive.py"])
def test_missing_input_is_one_line_and_status_2(tmp_path: Path, script: str) -> None:
    r = _run(script, str(tmp_path / "nowhere"), str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: missing dataset folder or archive: {tmp_path / 'nowhere'}"]
    assert "Traceback" not in r.stderr + r.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    r = _run("convert_fire.py", str(tmp_path / "nowhere"), str(tmp_path / "out"), "--debug")
    assert r.returncode == 1 and "Traceback" in r.stderr and "DataError: missing dataset folder" in r.stderr


def test_existing_output_is_refused_then_replaced_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ("brain", str(out), "--train", "1", "--test", "1", "--size", "32")
    r = _run("make_phantoms.py", *args)
    assert r.returncode == 2 and "--overwrite" in r.stderr and str(out) in r.stderr
    assert (out / "keep.txt").read_text() == "mine"  # nothing touched
    r = _run("make_phantoms.py", *args, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert not (out / "keep.txt").exists() and read_meta(out)["size"] == [32, 32]


def test_a_failed_overwrite_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "meta.json").write_text("{}")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_dir(out, "replace") as tmp:
            (tmp / "part.png").write_bytes(b"")
            raise RuntimeError("half way")
    assert sorted(p.name for p in out.iterdir()) == ["meta.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["o"]  # no temp or old folder left behind
    with pytest.raises(ValueError, match="exist must be"):
        atomic_dir(out, "merge")
