"""The HTML book needs no network (issue 12): no page loads a script, stylesheet or module from outside.

* plain text: a page built by ``ddlearn book`` (a tiny chapter, fast) and the page of every
  shipped chapter notebook (rendered from its stored outputs, not re-run) carry no
  http(s) script / stylesheet source and no import of a remote module
  (:func:`ddlearn.book.external_resources`);
* a browser: Chromium (Debian's, through Playwright, as in ``test_browser.py``) opens those
  pages with every request that is not the page's own file refused, and nothing may have
  been requested from outside, nothing may fail to load, no script may raise, every image
  must have decoded and the maths must be MathML.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from ddlearn import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))

TINY = [
    nbformat.v4.new_markdown_cell("# A tiny chapter\n\nInline maths $x_t = \\sqrt{\\bar\\alpha_t}\\,x_0$ and\n\n"
                                  "$$\\mathcal L = \\mathbb E\\,\\|\\epsilon - \\epsilon_\\theta\\|^2$$\n\n"
                                  "A link to a paper is fine: [DDPM](https://arxiv.org/abs/2006.11239)."),
    nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom IPython.display import display\n"
                              "fig, ax = plt.subplots(figsize=(2, 2), dpi=50)\nax.plot([0, 1], [1, 0])\n"
                              "display(fig)\nplt.close(fig)"),
    nbformat.v4.new_code_cell("from IPython.display import HTML\n"
                              "HTML('<script src=\"https://cdn.example.org/evil.js\"></script><b>shown</b>')"),
    nbformat.v4.new_code_cell("print('done')"),
]


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """``ddlearn book`` on one tiny chapter (fast mode): its index and chapter page."""
    root = tmp_path_factory.mktemp("offline")
    chapters = root / "chapters"
    chapters.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = TINY
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, chapters / "01_tiny.ipynb")
    result = book.build_book(chapters, root / "_build", fast=True, progress=False, timeout=120, log=lambda _: None)
    assert result.ok, result.table()
    return root / "_build"


@pytest.fixture(scope="module")
def chapter_pages(tmp_path_factory):
    """The page of every shipped chapter, rendered from the stored (full-mode) notebook."""
    out = tmp_path_factory.mktemp("chapters")
    pages = []
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        result = book.ChapterResult(path.stem, book.chapter_title(nb, path.stem), "ok", 0.0, 0, 0, "full")
        page = out / result.page
        page.write_text(book.render_page(nb, result), encoding="utf-8")
        pages.append(page)
    return pages


# --------------------------------------------------------------------------- plain text
def test_external_resources_finds_what_nbconverts_stock_template_loads():
    """The detector is not blind: the stock lab template's CDN scripts and mermaid import are found."""
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# x\n\n$y$")]
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    found = " ".join(book.external_resources(stock))
    assert "require" in found and "mathjax" in found and "mermaid" in found, found
    assert book.external_resources('<a href="https://arxiv.org/abs/1">paper</a>') == []
    assert book.external_resources('<link rel="stylesheet" href="//cdn.example/x.css">') != []


def test_built_pages_load_nothing_from_outside(tiny_book):
    pages = sorted(tiny_book.glob("*.html"))
    assert {p.name for p in pages} == {"index.html", "01_tiny.html"}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert book.external_resources(text) == [], page.name
        assert not re.search(r"""<(script|link)\b[^>]*(src|href)\s*=\s*["']?(https?:)?//""", text, re.I), page.name
    chapter = (tiny_book / "01_tiny.html").read_text(encoding="utf-8")
    assert "<math" in chapter and "$x_t" not in chapter  # the maths is MathML, no MathJax needed
    # an output's own CDN script is stripped (the cell's source still shows the text), what it shows stays
    assert '<script src="https://cdn.example.org/evil.js">' not in chapter and "<b>shown</b>" in chapter
    assert 'href="https://arxiv.org/abs/2006.11239"' in chapter  # links a reader clicks stay


@pytest.mark.skipif(not CHAPTERS, reason="no chapter notebooks")
def test_every_chapter_page_loads_nothing_from_outside(chapter_pages):
    for page in chapter_pages:
        text = page.read_text(encoding="utf-8")
        assert book.external_resources(text) == [], page.name
        assert "cdnjs" not in text and "mathjax" not in text.lower(), page.name


# --------------------------------------------------------------------------- a browser, network off
# the browser fixture (one headless Chromium) is in conftest.py


def open_offline(browser, page_path: Path) -> dict:
    """Open ``page_path`` with the network off; return what was requested, failed and raised."""
    own = page_path.resolve().as_uri()
    outside, failed, errors = [], [], []
    context = browser.new_context(offline=True)
    page = context.new_page()

    def route(r):
        url = r.request.url
        if url == own or url.startswith("data:"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: failed.append(f"{req.url[:120]}: {req.failure}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(own, wait_until="load", timeout=60_000)
    page.wait_for_timeout(300)  # late module imports and images
    info = page.evaluate("""() => ({
        images: document.images.length,
        broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 60)),
        math: document.querySelectorAll('math').length,
        scripts: Array.from(document.scripts).filter(s => s.src).map(s => s.src),
    })""")
    context.close()
    return {"outside": outside, "failed": failed, "errors": errors, **info}


@pytest.mark.browser
def test_the_harness_sees_a_page_that_loads_from_outside(browser, tmp_path):
    """nbconvert's stock lab page asks for require.js and MathJax from a CDN: the harness must see it."""
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# x\n\n$y$")]
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    (tmp_path / "stock.html").write_text(stock, encoding="utf-8")
    seen = open_offline(browser, tmp_path / "stock.html")
    assert any("require" in u for u in seen["outside"]) and seen["failed"], seen


@pytest.mark.browser
def test_built_book_opens_with_the_network_off(browser, tiny_book):
    for name in ("index.html", "01_tiny.html"):
        seen = open_offline(browser, tiny_book / name)
        assert seen["outside"] == [], f"{name} requested from outside: {seen['outside']}"
        assert seen["failed"] == [], f"{name}: failed to load: {seen['failed']}"
        assert seen["errors"] == [], f"{name}: script errors: {seen['errors']}"
        assert seen["broken"] == [] and seen["scripts"] == [], seen
    chapter = open_offline(browser, tiny_book / "01_tiny.html")
    assert chapter["images"] >= 1 and chapter["math"] >= 2, chapter


@pytest.mark.browser
@pytest.mark.skipif(not CHAPTERS, reason="no chapter notebooks")
def test_every_chapter_page_opens_with_the_network_off(browser, chapter_pages):
    for page in chapter_pages:
        seen = open_offline(browser, page)
        assert seen["outside"] == [], f"{page.name} requested from outside: {seen['outside'][:3]}"
        assert seen["failed"] == [] and seen["errors"] == [], f"{page.name}: {seen['failed'][:3]} {seen['errors'][:3]}"
        assert seen["broken"] == [], f"{page.name}: images that did not decode: {seen['broken'][:3]}"
