"""The chapters' widgets work in a real browser: JupyterLab + Chromium, end to end.

For each row of ``CASES`` this starts from a fresh JupyterLab workspace, opens
the notebook, runs all cells (fast mode), moves one slider with the keyboard
and checks that the picture the widget shows changed. Screenshots of the
picture before and after go to ``_build/browser/``.

Chromium is Debian's (``apt-get install chromium``), driven by the
``playwright`` Python package: ``playwright install`` is never needed. When
``CI`` is set, a browser that cannot start fails the test with the reason;
elsewhere the test is skipped only when no Chromium is installed.

Add a row to ``CASES`` for each chapter with an explorer.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "_build" / "browser"


@dataclass(frozen=True)
class Case:
    notebook: str        # file name in chapters/ (or the self-check notebook written here)
    slider: str          # the slider's description label, exactly, e.g. "t"
    nth: int = 0         # which output holding such a slider, in notebook order
    run_timeout_s: int = 150  # limit for running all cells in fast mode

    @property
    def id(self) -> str:
        return f"{Path(self.notebook).stem}-{self.slider}"


SELF_CHECK = "00_browser_selfcheck.ipynb"
CASES = [
    # our own tiny IntSlider + Image notebook: checks the harness even with no chapters
    Case(SELF_CHECK, "level"),
    Case(SELF_CHECK, "pick"),  # a SelectionSlider that starts at its last value
    # Chapters 01-06, the student copies `ddlearn student` writes (every chapter's cells but its solutions;
    # each checker must say "Not yet"; tests/test_student.py runs the other chapters' copies):
    # Chapter 01: the noising explorer's t slider
    Case("student/01_forward_process.ipynb", "t"),
    # Chapter 02: scrubbing the reverse process (starts at the last step)
    Case("student/02_ddpm.ipynb", "step"),
    # Chapter 03: the score-field explorer's noise level
    Case("student/03_score_matching.ipynb", "sigma"),
    # Chapter 04: the reverse-SDE trajectory explorer's step (starts at the last step)
    Case("student/04_score_sde.ipynb", "step"),
    # Chapter 05: the sampler explorer's budget of model evaluations
    Case("student/05_fast_samplers.ipynb", "evaluations"),
    # Chapter 06: the guidance explorer's guidance scale
    Case("student/06_guidance.ipynb", "scale"),
]

SELF_CHECK_SOURCE = textwrap.dedent('''
    import io
    import ipywidgets as widgets
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.display import display

    def png(level):
        fig, ax = plt.subplots(figsize=(2, 2), dpi=60)
        ax.imshow(np.full((8, 8), level), vmin=0, vmax=10, cmap="gray")
        ax.set_title(f"level {level}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    def explorer(slider, level):
        image = widgets.Image(value=png(level(slider.value)), format="png", width=200)
        slider.observe(lambda change: setattr(image, "value", png(level(change["new"]))), names="value")
        return widgets.VBox([slider, image])

    display(explorer(widgets.IntSlider(0, min=0, max=10, description="level"), lambda v: v))
    display(explorer(widgets.SelectionSlider(options=["low", "mid", "high"], value="high", description="pick"),
                     ["low", "mid", "high"].index))
''')


# --------------------------------------------------------------------------- fixtures
# the browser fixture (one headless Chromium) is in conftest.py


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    """Lab settings for a quiet, fully rendered notebook: no news pop-ups, no virtual scrolling."""
    def put(plugin: str, values: dict):
        path = settings / (plugin.split(":")[0]) / (plugin.split(":")[1] + ".jupyterlab-settings")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    put("@jupyterlab/apputils-extension:notification", {"fetchNews": "false", "checkForUpdates": False})
    # every cell in the DOM, so the widget cell can be found wherever it is
    put("@jupyterlab/notebook-extension:tracker", {"windowingMode": "none"})


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on localhost serving a temp copy of chapters/, the student copies (student/) and the self-check
    notebook."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "chapters"
    source = ROOT / "chapters"
    if source.is_dir():
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build"))
        from ddlearn import teaching

        teaching.write_student_notebooks(source, root / "student")
    else:
        root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SELF_CHECK_SOURCE.strip())])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / SELF_CHECK)
    _write_settings(tmp / "settings")

    port, token = _free_port(), secrets.token_hex(16)
    # One torch thread in the kernel: Chromium and JupyterLab share the 2 cores with
    # it, and torch's 2-thread kernels slow down many-fold when a core is taken
    # (Chapter 02's 1000-step sampling went from ~20 s to over 150 s that way).
    env = dict(os.environ, DDLEARN_FAST="1", PYDEVD_DISABLE_FILE_VALIDATION="1", OMP_NUM_THREADS="1",
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p))
    log = open(tmp / "lab.log", "w")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
           "--allow-root"]  # CI runs as root
    # own process group, so teardown ends the server and the kernels it started, and nothing else
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp / 'lab.log').read_text()[-3000:]}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in 90 s:\n{(tmp / 'lab.log').read_text()[-3000:]}",
                            pytrace=False)
            time.sleep(0.5)
        yield dict(base=base, token=token, root=root, log=tmp / "lab.log")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


# --------------------------------------------------------------------------- JS helpers
# The notebook panel Lab is showing; with expose_app_in_browser, window.jupyterapp is the app.
_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"

_WAIT_KERNEL = f"""() => {{
  const p = {_PANEL};
  const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;
  return !!(k && k.connectionStatus === 'connected' && k.status === 'idle' && p.content && p.content.widgets.length);
}}"""

_RUN_ALL = """async (limitMs) => {
  const app = window.jupyterapp;
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('run-all timed out')), limitMs));
  await Promise.race([app.commands.execute('notebook:run-all-cells'), timeout]);
}"""

_CELL_REPORT = f"""() => {{
  const cells = [];
  {_PANEL}.content.widgets.forEach((cell, i) => {{
    if (cell.model.type !== 'code') return;
    const outputs = cell.model.outputs.toJSON();
    const full = cell.model.sharedModel.getSource();
    const str = v => Array.isArray(v) ? v.join('') : (v || '');
    cells.push({{index: i + 1, count: cell.model.executionCount,
      source: full.trim().split('\\n')[0].slice(0, 80),
      checks: /^check\\("\\d\\d\\.\\d+"/m.test(full),
      text: outputs.map(o => str(o.text) + str(o.data && o.data['text/plain'])).join(''),
      errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)}});
  }});
  return cells;
}}"""


def _wait_kernel(page, timeout_s: float) -> None:
    """Wait until the notebook's kernel is idle, accepting a kernel dialog if one pops up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(_WAIT_KERNEL):
            return
        accept = page.locator(".jp-Dialog .jp-mod-accept")
        if accept.count():
            accept.first.click()
        page.wait_for_timeout(300)
    raise AssertionError(f"the kernel was not ready within {timeout_s:.0f} s")


def _shoot(locator, path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    return locator.screenshot(path=str(path), timeout=15_000)


# --------------------------------------------------------------------------- the test
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_slider_changes_the_picture(case: Case, lab, browser):
    if not (lab["root"] / case.notebook).exists():
        pytest.skip(f"chapters/{case.notebook} is not written yet")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    SHOTS.mkdir(parents=True, exist_ok=True)
    for old_shot in SHOTS.glob(f"{case.id}_*.png"):
        old_shot.unlink()
    try:
        # a workspace per case, reset: only this notebook is open
        page.goto(f"{lab['base']}/lab/workspaces/{case.id}/tree/{case.notebook}?reset&token={lab['token']}",
                  wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
        _wait_kernel(page, 60)

        try:
            page.evaluate(_RUN_ALL, case.run_timeout_s * 1000)
        except Exception as exc:
            if "run-all timed out" not in str(exc):
                raise
            raise AssertionError(f"{case.notebook}: running all cells in fast mode took longer than "
                                 f"{case.run_timeout_s} s (the Case's run_timeout_s); fast mode should "
                                 f"take well under a minute") from None
        _wait_kernel(page, case.run_timeout_s)
        cells = page.evaluate(_CELL_REPORT)
        not_run = [c for c in cells if c["source"] and c["count"] is None]
        errors = [f"cell {c['index']} ({c['source']}): {e}" for c in cells for e in c["errors"]]
        assert not errors, f"{case.notebook}: cells raised errors in the browser:\n" + "\n".join(errors)
        assert not not_run, f"{case.notebook}: cells {[c['index'] for c in not_run]} did not run"
        if case.notebook.startswith("student/"):  # the prompts are unanswered: each checker says so, none crashes
            checked = [c for c in cells if c["checks"]]
            assert checked, f"{case.notebook}: no cell calls a checker"
            answered = [f"cell {c['index']}: {c['text'][:200]!r}" for c in checked if not c["text"].startswith("Not yet")]
            assert not answered, f"{case.notebook}: checkers that did not say 'Not yet':\n" + "\n".join(answered)

        # the output holding the slider with this label, and the picture in that output
        label = page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(case.slider)}\s*$"))
        labelled = page.locator(".widget-slider").filter(has=label)
        outputs = page.locator(".jp-OutputArea-output").filter(has=labelled)
        output = outputs.nth(case.nth)
        output.wait_for(state="attached", timeout=30_000)
        slider = output.locator(".widget-slider").filter(has=label).first
        image = output.locator("img").first
        image.scroll_into_view_if_needed()
        image.wait_for(state="visible")
        src_before = image.get_attribute("src")
        before = _shoot(image, SHOTS / f"{case.id}_before.png")

        # move it with the keyboard, as a reader would: focus the handle, End = the last value
        # (Home = the first, for a slider that already sits at its last value)
        handle = slider.locator(".noUi-handle").first
        readout = slider.locator(".widget-readout").first
        value_before = readout.inner_text()
        handle.focus()
        handle.press("End")
        page.wait_for_timeout(200)
        if readout.inner_text() == value_before:
            handle.press("Home")
        try:  # the kernel redraws, the front end swaps the picture
            page.wait_for_function("([el, src]) => el.getAttribute('src') !== src",
                                   arg=[image.element_handle(), src_before], timeout=30_000)
        except PlaywrightTimeout:
            raise AssertionError(f"{case.notebook}: the picture was not redrawn within 30 s of moving the "
                                 f"{case.slider!r} slider (readout now {readout.inner_text()!r})") from None
        page.wait_for_timeout(300)  # let the new image decode before the screenshot
        after = _shoot(image, SHOTS / f"{case.id}_after.png")
        assert readout.inner_text().strip() != "", "the slider shows no value"
        assert after != before, f"{case.notebook}: the picture did not change when the {case.slider!r} slider moved"
        page.evaluate(f"() => {_PANEL}.sessionContext.shutdown()")  # free the CPU for the next case
    except Exception:
        page.screenshot(path=str(SHOTS / f"{case.id}_failure.png"), full_page=True)
        raise
    finally:
        context.close()
