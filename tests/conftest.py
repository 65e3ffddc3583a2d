"""Fixtures shared by the unit tests: one intra-op thread, and one headless Chromium.

The browser tests (test_browser.py, test_book_offline.py, test_slides.py) drive Debian's
Chromium (``apt-get install chromium``; ``DDLEARN_CHROMIUM`` points elsewhere) through the
playwright package; ``playwright install`` (a browser download) is never needed. Without a
Chromium they skip, except in CI (``CI`` set), where they fail.
"""
from __future__ import annotations

import os
import shutil

import pytest
import torch

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread hand-off cost (50x on a busy 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def chromium_path() -> str | None:
    """The Chromium the browser tests use, or None."""
    for candidate in [os.environ.get("DDLEARN_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")]:
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _cannot_run(reason: str):
    pytest.fail(f"browser test cannot run: {reason}", pytrace=False)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (playwright Browser), one per test module."""
    path = chromium_path()
    if path is None:
        if IN_CI:
            _cannot_run("no Chromium found (install it: apt-get install -y chromium)")
        pytest.skip("no Chromium installed (apt-get install chromium) and CI is not set")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _cannot_run(f"the playwright package is missing ({exc}); pip install -e '.[dev]'")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=60_000)
    except Exception as exc:
        pw.stop()
        _cannot_run(f"Chromium at {path} did not start: {str(exc).splitlines()[0]}")
    yield browser
    browser.close()
    pw.stop()
