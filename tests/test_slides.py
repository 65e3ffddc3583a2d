"""Chapters as reveal.js slides (`ddlearn book --slides`, ddlearn.book.render_slides), issue 16.

* the slide structure: a chapter's own slide metadata is kept, cells without it get the default
  (headings start slides, code with output gets a sub-slide);
* offline: reveal.js is inlined from the vendored copy, no page asks for anything outside itself
  (the same checks as tests/test_book_offline.py, and Chromium with the network refused);
* solutions do not reach the slides (they show the student's prompt);
* `ddlearn book --slides` writes them next to the HTML book and the front page links them.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from test_book_offline import (
    open_offline,  # the same harness; the browser fixture is in conftest.py
)

from ddlearn import book

ROOT = Path(__file__).resolve().parents[1]
#: chapters whose jupytext source carries slide metadata (the others get the default)
WITH_SLIDE_METADATA = sorted(p for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")
                             if p.name[:2] in ("01", "03"))


def _tiny():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny\n\nMaths $x_t = \\sqrt{\\bar\\alpha}\\,x_0$."),
        nbformat.v4.new_markdown_cell("Plain text continues the slide."),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        nbformat.v4.new_markdown_cell("## Section two\n\ntext", metadata={"slideshow": {"slide_type": "fragment"}}),
        nbformat.v4.new_markdown_cell("Explicitly a new slide", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell("**01.2** an exercise"),
        nbformat.v4.new_code_cell("def merged(a, b):\n    return a + b - a * b  # the secret\ncheck('01.2', merged)",
                                  metadata={"tags": ["solution"]},
                                  outputs=[nbformat.v4.new_output("stream", text="Correct (01.2)\n")]),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_default_slide_types_keep_what_a_chapter_says():
    nb = book.default_slide_types(_tiny())
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert kinds == ["slide", "-", "subslide", "fragment", "slide", "-", "subslide"]


def test_tiny_slides_are_offline_and_carry_no_solution():
    result = book.ChapterResult("01_tiny", "Tiny", "ok", 0.0, 0, 0, "fast")
    page = book.render_slides(_tiny(), result)
    assert book.external_resources(page) == []
    assert not re.search(r"""<(script|link)\b[^>]*(src|href)\s*=""", page, re.I)  # everything inline
    assert "Reveal.initialize" in page and "reveal.js 5" in page  # the vendored reveal.js, inlined
    assert "ddlearn-reveal" not in page  # every placeholder link was replaced
    assert "the secret" not in page and "# 01.2: def merged(a, b): ..." in page  # the prompt instead
    assert "<math" in page and "mathjax" not in page.lower()
    # one horizontal slide per "slide", its sub-slides nested inside
    assert page.count('<section') >= 5


@pytest.mark.skipif(not WITH_SLIDE_METADATA, reason="no chapter notebooks")
@pytest.mark.parametrize("path", WITH_SLIDE_METADATA, ids=[p.stem for p in WITH_SLIDE_METADATA])
def test_chapter_slides_follow_their_headings(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    headings = sum(1 for c in nb.cells if c.cell_type == "markdown"
                   and c.metadata.get("slideshow", {}).get("slide_type") == "slide")
    assert headings >= 6, f"{path.name}: only {headings} cells start a slide"
    result = book.ChapterResult(path.stem, book.chapter_title(nb, path.stem), "ok", 0.0, 0, 0, "full")
    page = book.render_slides(nb, result)
    assert book.external_resources(page) == []
    solutions = [c.source for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    for src in solutions:
        for line in src.splitlines():
            if len(line.strip()) > 30 and not line.lstrip().startswith(("check(", "def ")):
                assert line.strip() not in page, f"{path.name}: a solution line is on a slide: {line!r}"
    (tmp_path / "s.html").write_text(page, encoding="utf-8")


@pytest.fixture(scope="module")
def slides_book(tmp_path_factory):
    """``ddlearn book --slides`` on one tiny chapter (fast mode)."""
    root = tmp_path_factory.mktemp("slides")
    chapters = root / "chapters"
    chapters.mkdir()
    nb = _tiny()
    nb.cells[-1].source = "def merged(a, b):\n    return a + b - a * b  # the secret\nprint('ok')"
    nbformat.write(nb, chapters / "01_tiny.ipynb")
    result = book.build_book(chapters, root / "_build", fast=True, progress=False, timeout=120, slides=True,
                             log=lambda _: None)
    assert result.ok, result.table()
    return root / "_build"


def test_book_slides_are_written_next_to_the_book_and_linked(slides_book):
    slides = slides_book / "slides" / "01_tiny.slides.html"
    assert slides.is_file()
    assert (slides_book / "student" / "01_tiny.ipynb").is_file()
    index = (slides_book / "index.html").read_text(encoding="utf-8")
    assert 'href="slides/01_tiny.slides.html"' in index and 'href="student/01_tiny.ipynb"' in index
    assert book.external_resources(slides.read_text(encoding="utf-8")) == []


def test_cli_book_has_slides_flag():
    from ddlearn.cli import build_parser

    args = build_parser().parse_args(["book", "--slides", "--chapters", "01"])
    assert args.slides is True and build_parser().parse_args(["book"]).slides is False


# --------------------------------------------------------------------------- a browser, network off
@pytest.mark.browser
def test_slides_run_in_a_browser_with_the_network_off(browser, slides_book):
    page_path = slides_book / "slides" / "01_tiny.slides.html"
    seen = open_offline(browser, page_path)
    assert seen["outside"] == [] and seen["failed"] == [] and seen["errors"] == [], seen
    assert seen["math"] >= 1 and seen["broken"] == []
    context = browser.new_context(offline=True)
    page = context.new_page()
    page.goto(page_path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=20_000)
    total = page.evaluate("() => Reveal.getTotalSlides()")
    first = page.evaluate("() => Reveal.getIndices()")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(100)
    after = page.evaluate("() => Reveal.getIndices()")
    context.close()
    assert total == 3, total  # [title, its code as a sub-slide], [the explicit slide with the exercise]
    assert (first["h"], after["h"]) == (0, 1), (first, after)  # the arrow key moved to the next section
