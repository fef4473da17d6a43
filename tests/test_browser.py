"""The explorers in a real browser: JupyterLab + Debian's Chromium driven by Playwright.

A headless nbval run only proves that a widget *builds*; the top complaint in ipywidgets' trackers is a widget that
does not *render* in JupyterLab (front-end extension missing or mismatched, the text ``VBox(children=...)`` shown
instead). This test starts JupyterLab on a free loopback port, opens a small notebook that builds every explorer on
phantom data (``browser_explorers.py``), runs it, and for each explorer checks that it renders as a widget, that
moving one control changes both the picture and the caption, and that the browser console logged no error.
It skips with the reason when Chromium or Playwright is absent (``.ci/run`` installs Chromium where it can).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from browser_explorers import EXPLORERS, notebook_json

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """A JupyterLab server on a free loopback port, serving a temp folder with the explorer notebook;
    stopped by its process group at the end, so no server or kernel is left behind."""
    if CHROMIUM is None:
        pytest.skip("Chromium is absent (Debian: apt-get install chromium); the browser test needs it")
    pytest.importorskip("playwright.sync_api", reason="the Python package playwright is not installed")
    root = tmp_path_factory.mktemp("lab")
    (root / "explorers.ipynb").write_text(json.dumps(notebook_json()))
    port, token = _free_port(), "medsynth-test"
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
        JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
        OMP_NUM_THREADS="1",
    )
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.open_browser=False",
            "--allow-root",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(root / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _state(cell) -> tuple[str, str]:
    """(picture source, caption text) of an explorer's output: the last image and the last label in it."""
    img = cell.locator(".jp-OutputArea .widget-image").last
    cap = cell.locator(".jp-OutputArea .medsynth-caption").last
    return img.get_attribute("src") or "", cap.inner_text()


def _move_first_control(page, cell) -> str:
    """Move the explorer's first slider one keyboard step up (or pick another dropdown option); returns what moved."""
    handle = cell.locator(".jp-OutputArea .widget-slider .noUi-handle").first
    if handle.count():
        handle.focus()
        page.keyboard.press("ArrowRight")
        return "slider"
    select = cell.locator(".jp-OutputArea select").first
    options = select.locator("option").all_inner_texts()
    select.select_option(label=options[1])
    return "dropdown"


def test_explorers_render_and_respond_in_jupyterlab(lab) -> None:
    from playwright.sync_api import sync_playwright

    base, token = lab
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/lab/tree/explorers.ipynb?token={token}")
            page.wait_for_function(
                "window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                timeout=90_000,
            )
            page.wait_for_function(
                "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'", timeout=90_000
            )
            # A notebook whose stored metadata matches what JupyterLab writes opens clean (issue 16, item 3).
            assert not page.evaluate("window.jupyterapp.shell.currentWidget.context.model.dirty"), (
                "the notebook opened with unsaved changes"
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            for i, (name, _) in enumerate(EXPLORERS, start=1):
                cell = cells.nth(i)
                cell.scroll_into_view_if_needed()
                cell.locator(".jp-OutputArea .widget-image").last.wait_for(state="visible", timeout=180_000)
                text = cell.locator(".jp-OutputArea").inner_text()
                assert "VBox(children" not in text and "Error" not in text, f"{name}: {text[:300]}"
                cap = cell.locator(".jp-OutputArea .medsynth-caption").last
                assert cap.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), f"{name}: caption cut off"
                assert "run the cells above" in cell.locator(".jp-OutputArea .medsynth-note").last.inner_text()
                before = _state(cell)
                assert before[0].startswith("blob:") or before[0].startswith("data:"), f"{name}: no picture"
                moved = _move_first_control(page, cell)
                after = before
                for _ in range(120):  # the kernel redraws in 0.1-0.3 s; allow a busy machine 60 s
                    page.wait_for_timeout(500)
                    after = _state(cell)
                    if after[0] != before[0] and after[1] != before[1]:
                        break
                assert after[0] != before[0], f"{name}: the picture did not change when a {moved} moved"
                assert after[1] != before[1], f"{name}: the caption did not change when a {moved} moved"
        finally:
            browser.close()
    assert not errors, f"browser console errors: {errors[:5]}"


def test_every_explorer_is_in_the_browser_test() -> None:
    """An explorer (a ``*_explorer`` function in ``medsynth.widgets`` or a ``medsynth.models.*_explorer`` module)
    without a cell in ``browser_explorers.py`` fails here."""
    import importlib
    import pkgutil

    import medsynth.models
    import medsynth.widgets as w

    names = {n for n in w.__all__ if n.endswith("_explorer")}
    for mod in pkgutil.iter_modules(medsynth.models.__path__):
        if mod.name.endswith("_explorer"):
            m = importlib.import_module(f"medsynth.models.{mod.name}")
            names |= {
                n
                for n in dir(m)
                if n.endswith("_explorer")
                and callable(getattr(m, n))
                and getattr(getattr(m, n), "__module__", "") == m.__name__
            }
    assert names == {name for name, _ in EXPLORERS}
