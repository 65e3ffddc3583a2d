"""`ddlearn book` and the `ddlearn` command, on tiny notebooks (seconds, not minutes)."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ddlearn.book import WIDGET_VIEW, ChapterResult, _save_manifest, build_book, find_chapters, static_widget_outputs

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, cells) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _png_bytes() -> bytes:
    # a real PNG made by matplotlib, so the test does not trust a hand-written one
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# A widget display that carries a static PNG in the same bundle, as the
# library's explorers do; run in the kernel so the bundle is real.
WIDGET_CELL = '''
import base64, io, ipywidgets as w
from IPython.display import display
png = base64.b64decode("{png}")
slider = w.IntSlider(3, description="t")
class Explorer:
    def _repr_mimebundle_(self, include=None, exclude=None):
        data = slider._repr_mimebundle_()
        data["image/png"] = base64.b64encode(png).decode()
        return data
display(Explorer())
'''


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """Build a three-chapter book once, two chapters at a time: good, failing, widget."""
    tmp = tmp_path_factory.mktemp("book")
    chapters = tmp / "chapters"
    chapters.mkdir()
    _write(chapters / "01_good.ipynb", [
        new_markdown_cell("# A good chapter\nIt prints the mode."),
        new_code_cell("import os\nprint('DDLEARN_FAST =', os.environ['DDLEARN_FAST'])"),
        new_code_cell("open('written_by_chapter.txt', 'w').write('x')"),
    ])
    _write(chapters / "02_bad.ipynb", [
        new_markdown_cell("# A failing chapter"),
        new_code_cell("x = 1"),
        new_code_cell("def check(steps):\n    raise ValueError(f'steps must be positive, got {steps}')\ncheck(-1)"),
        new_code_cell("print('never reached')"),
    ])
    png = base64.b64encode(_png_bytes()).decode()
    _write(chapters / "03_widget.ipynb", [
        new_markdown_cell("# A widget chapter"),
        new_code_cell(WIDGET_CELL.format(png=png)),
    ])
    before = {p.name: p.read_bytes() for p in chapters.iterdir()}
    out = tmp / "_build"
    lines: list[str] = []
    result = build_book(chapters, out, fast=True, progress=False, jobs=2, log=lines.append)
    return dict(chapters=chapters, out=out, result=result, before=before, lines=lines, png=png)


def test_failing_chapter_is_reported_with_cell_and_error(tiny_book):
    result = tiny_book["result"]
    assert not result.ok
    by_name = {c.name: c for c in result.chapters}
    bad = by_name["02_bad"]
    assert bad.status == "failed"
    assert bad.error.cell == 3 and bad.error.execution_count == 2
    assert (bad.error.ename, bad.error.evalue) == ("ValueError", "steps must be positive, got -1")
    block = bad.error.block("02_bad")
    assert block.startswith("FAILED 02_bad: cell 3 (In [2]): ValueError: steps must be positive, got -1")
    assert "\x1b[" not in block  # no terminal colour codes
    assert any("02_bad failed at cell 3" in ln for ln in tiny_book["lines"])
    # the table names the failing cell
    assert re.search(r"02_bad\s+FAILED cell 3", result.table())


def test_other_chapters_still_build(tiny_book):
    out, result = tiny_book["out"], tiny_book["result"]
    by_name = {c.name: c for c in result.chapters}
    assert [c.name for c in result.chapters] == ["01_good", "02_bad", "03_widget"]
    assert by_name["01_good"].status == "ok" and by_name["03_widget"].status == "ok"
    nb = nbformat.read(out / "notebooks" / "01_good.ipynb", as_version=4)
    assert nb.cells[1].outputs[0].text.strip() == "DDLEARN_FAST = 1"  # --fast reached the kernel
    for name in ["01_good", "02_bad", "03_widget"]:
        assert (out / f"{name}.html").exists()
        assert (out / "notebooks" / f"{name}.ipynb").exists()


def test_readers_chapters_are_not_modified(tiny_book):
    chapters = tiny_book["chapters"]
    assert {p.name: p.read_bytes() for p in chapters.iterdir()} == tiny_book["before"]


def test_index_links_every_chapter_and_pages_link_each_other(tiny_book):
    out = tiny_book["out"]
    index = (out / "index.html").read_text()
    for name in ["01_good", "02_bad", "03_widget"]:
        assert f'href="{name}.html"' in index
    assert "FAILED at cell 3" in index
    first, middle, last = ((out / f"{n}.html").read_text() for n in ["01_good", "02_bad", "03_widget"])
    assert 'href="02_bad.html" rel="next"' in first and 'rel="prev"' not in first
    assert 'href="01_good.html" rel="prev"' in middle and 'href="03_widget.html" rel="next"' in middle
    assert 'href="02_bad.html" rel="prev"' in last and 'rel="next"' not in last
    for page in (first, middle, last):
        assert 'href="index.html"' in page
    # every local link resolves to a file
    for page in out.glob("*.html"):
        for href in re.findall(r'href="([^":#]+\.html)"', page.read_text()):
            assert (out / href).exists(), f"{page.name} links to missing {href}"


def test_good_pages_have_no_error_outputs(tiny_book):
    out = tiny_book["out"]
    for name in ["01_good", "03_widget"]:
        nb = nbformat.read(out / "notebooks" / f"{name}.ipynb", as_version=4)
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        page = (out / f"{name}.html").read_text()
        assert "Traceback" not in page and "ddlearn-failed" not in page.split("</style>")[-1]
    bad_page = (out / "02_bad.html").read_text()
    assert 'class="ddlearn-failed"' in bad_page and "steps must be positive" in bad_page


def test_widget_output_shows_its_png_fallback(tiny_book):
    out = tiny_book["out"]
    nb = nbformat.read(out / "notebooks" / "03_widget.ipynb", as_version=4)
    data = nb.cells[1].outputs[0].data
    assert WIDGET_VIEW in data and "image/png" in data  # the executed notebook keeps the widget
    page = (out / "03_widget.html").read_text()
    assert f"data:image/png;base64,{tiny_book['png']}" in page
    assert WIDGET_VIEW not in page


def test_static_widget_outputs_rules():
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb = new_notebook(cells=[new_code_cell("x")])
    nb.cells[0].outputs = [
        nbformat.from_dict({"output_type": "display_data", "metadata": {},
                            "data": {WIDGET_VIEW: view, "image/png": "iVBO", "text/plain": "Box()"}}),
        nbformat.from_dict({"output_type": "display_data", "metadata": {},
                            "data": {WIDGET_VIEW: dict(view, model_id="nostate"), "text/plain": "Box()"}}),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}}
    static = static_widget_outputs(nb)
    assert [sorted(o.data) for o in static.cells[0].outputs] == [["image/png", "text/plain"], ["text/plain"]]
    assert "widgets" not in static.metadata
    assert WIDGET_VIEW in nb.cells[0].outputs[0].data  # the input is not modified


def test_partial_build_keeps_earlier_chapters_in_index(tiny_book, tmp_path):
    out = tmp_path / "out"
    build_book(tiny_book["chapters"], out, fast=True, only=["1"], progress=False)
    result = build_book(tiny_book["chapters"], out, fast=True, only=["03"], progress=False)
    assert result.ok and [c.name for c in result.chapters] == ["03_widget"]
    index = (out / "index.html").read_text()
    assert 'href="01_good.html"' in index and 'href="03_widget.html"' in index
    assert "02_bad.html" not in index and "not built" in index
    # prev/next skip the chapter that was never built
    assert 'href="03_widget.html" rel="next"' in (out / "01_good.html").read_text()
    assert json.loads((out / "book.json").read_text())["chapters"].keys() == {"01_good", "03_widget"}


def test_find_chapters_by_number(tiny_book):
    chapters = tiny_book["chapters"]
    assert [p.stem for p in find_chapters(chapters, ["3", "01"])] == ["01_good", "03_widget"]
    with pytest.raises(ValueError, match=r"no chapter numbered '07'.*have: 01, 02, 03"):
        find_chapters(chapters, ["07"])
    with pytest.raises(ValueError, match="chapter numbers"):
        find_chapters(chapters, ["intro"])


# --------------------------------------------------------------------------- the command
def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ddlearn.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


@pytest.mark.parametrize("sub", [[], ["book"], ["train"], ["list"]])
def test_help_says_what_and_gives_an_example(sub):
    run = _cli(*sub, "--help")
    assert run.returncode == 0, run.stderr
    assert "usage: ddlearn" in run.stdout
    assert "example" in run.stdout


def test_cli_book_exit_status_and_report(tiny_book, tmp_path):
    run = _cli("book", "--fast", "--no-progress", "--chapters", "1", "2",
               "--chapters-dir", str(tiny_book["chapters"]), "--out", str(tmp_path / "b"))
    assert run.returncode == 1
    assert re.search(r"01_good\s+ok", run.stdout) and re.search(r"02_bad\s+FAILED cell 3", run.stdout)
    assert "FAILED 02_bad: cell 3 (In [2]): ValueError: steps must be positive, got -1" in run.stderr
    assert run.stderr.strip().splitlines()[-1] == "ddlearn: error: 1 chapter(s) failed: 02_bad"
    assert "Traceback (most recent call last)" not in run.stderr.split("FAILED 02_bad")[0]


def test_cli_errors_are_one_line_and_debug_shows_traceback(tmp_path):
    run = _cli("book", "--chapters-dir", str(tmp_path / "nowhere"))
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddlearn: error: chapters directory not found")
    assert "Traceback" not in run.stderr
    run = _cli("--debug", "book", "--chapters-dir", str(tmp_path / "nowhere"))
    assert run.returncode != 0 and "Traceback (most recent call last)" in run.stderr


def test_cli_unknown_recipe_is_one_line():
    run = _cli("train", "no_such_recipe_xyz")
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddlearn: error:")
    # either the recipe list or the clear "train is missing" message
    assert "no_such_recipe_xyz" in lines[0] or "ddlearn.train is not available" in lines[0]


def test_cli_list(tiny_book):
    run = _cli("list", "--chapters-dir", str(tiny_book["chapters"]))
    assert run.returncode == 0, run.stderr
    assert "01_good" in run.stdout and "A failing chapter" in run.stdout
    assert "recipes" in run.stdout


def test_library_explorer_shows_its_fallback_in_the_page(tmp_path):
    """The real explorer bundle (widget view + PNG), as a chapter stores it, renders as the PNG."""
    torch = pytest.importorskip("torch")
    widgets = pytest.importorskip("ddlearn.widgets")
    from ddlearn.book import ChapterResult, render_page

    explorer = widgets.noising_explorer(torch.zeros(64, 2), "linear", static_t=[0, 999])
    bundle = explorer._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and "image/png" in bundle
    nb = new_notebook(cells=[new_markdown_cell("# Explorer"), new_code_cell("explorer")])
    nb.cells[1].outputs = [nbformat.from_dict({"output_type": "display_data", "metadata": {}, "data": bundle})]
    nb.cells[1].execution_count = 1
    # as nbclient stores it: widget state saved in the notebook's metadata
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0, "state": {bundle[WIDGET_VIEW]["model_id"]: {}}}}
    page = render_page(nb, ChapterResult("01_x", "Explorer", "ok", 0.0, 1, 1, "fast"))
    assert f"data:image/png;base64,{bundle['image/png']}" in page
    assert WIDGET_VIEW not in page and "widget-state" not in page


def test_markdown_maths_becomes_mathml_but_code_and_attributes_do_not():
    pytest.importorskip("latex2mathml")
    from ddlearn.book import math_to_mathml

    page = ('<h2 id="x-$a$">t</h2>'
            '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput">'
            '<h2 id="is-$x_T$-noise">Is $x_T$ noise? <a href="#is-$x_T$-noise">¶</a></h2>'
            '<p>Closed form $$\\bar\\alpha_t = \\prod_{s \\le t} (1-\\beta_s)$$ and $a &lt; b$, '
            'costs $5 and $6; <code>echo $HOME $PATH</code></p></div>'
            '<div class="jp-OutputArea-output"><pre>price: $3 and $4</pre></div>')
    out = math_to_mathml(page)
    assert out.count('display="inline"') == 2 and out.count('display="block"') == 1
    assert "<mo>&#x0003C;</mo>" in out or "<mo>&lt;</mo>" in out  # the escaped < reached LaTeX as <
    assert 'id="is-$x_T$-noise"' in out and 'href="#is-$x_T$-noise"' in out  # attributes untouched
    assert "<code>echo $HOME $PATH</code>" in out and "costs $5 and $6" in out
    assert "<pre>price: $3 and $4</pre>" in out  # outputs are not markdown


# --------------------------------------------------------------------------- stopping: SIGTERM, Ctrl-C
posix_signals = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A cell that runs until it is stopped. It first leaves its kernel's pid in a marker file (written whole,
# then renamed), so a test knows the chapter is running and can check the kernel is gone afterwards.
SLEEPING_CELL = """
import os, pathlib, time
marker = pathlib.Path({started!r})
marker.with_suffix(".part").write_text(str(os.getpid()))
os.replace(marker.with_suffix(".part"), marker)
try:
    time.sleep(600)
except KeyboardInterrupt:
    pathlib.Path({interrupted!r}).write_text("KeyboardInterrupt")
    raise
"""


def _stoppable_book(tmp_path: Path):
    """01 finishes at once, 02 sleeps until stopped, 03 leaves a marker if it ever runs.

    OUT already holds an earlier build of 02 (page, notebook, manifest entry), which a stopped
    build must leave as it was.
    """
    chapters, out = tmp_path / "chapters", tmp_path / "out"
    marks = {k: tmp_path / f"{k}.txt" for k in ("started", "interrupted", "ran03")}
    chapters.mkdir()
    _write(chapters / "01_a.ipynb", [new_markdown_cell("# A"), new_code_cell("print('chapter a ran')")])
    _write(chapters / "02_b.ipynb", [
        new_markdown_cell("# B"), new_code_cell("x = 1"),
        new_code_cell(SLEEPING_CELL.format(started=str(marks["started"]), interrupted=str(marks["interrupted"]))),
        new_code_cell("print('never reached')"),
    ])
    _write(chapters / "03_c.ipynb", [new_markdown_cell("# C"), new_code_cell(f"open({str(marks['ran03'])!r}, 'w')")])
    (out / "notebooks").mkdir(parents=True)
    (out / "02_b.html").write_text("an earlier build's page of 02")
    (out / "notebooks" / "02_b.ipynb").write_text("an earlier build's notebook of 02")
    _save_manifest(out, {"02_b": ChapterResult("02_b", "B", "ok", 1.5, 3, 3, "fast")})
    return chapters, out, marks


def _gone(pid: int) -> bool:
    """True when no process ``pid`` runs (an exited one that nobody has reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_for(path: Path, proc=None, limit=120.0):
    deadline = time.monotonic() + limit
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the book ended before {path.name} appeared: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{path.name} did not appear within {limit} s"
        time.sleep(0.05)


def _signal_cli_book(chapters, out, jobs, started, signum):
    """Run ``ddlearn book`` in a subprocess, wait until every ``started`` marker exists, send ``signum``;
    returns (process, stdout, stderr, seconds from the signal to the exit)."""
    proc = subprocess.Popen([sys.executable, "-m", "ddlearn.cli", "book", "--chapters-dir", str(chapters),
                             "--out", str(out), "--no-progress", "--fast", "--jobs", str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for mark in started:
            _wait_for(mark, proc)
        proc.send_signal(signum)
        start = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        return proc, stdout, stderr, time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@posix_signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_book_stops_on_a_signal_and_keeps_what_finished(tmp_path, signum):
    chapters, out, marks = _stoppable_book(tmp_path)
    before = {p.name: p.read_bytes() for p in chapters.iterdir()}
    proc, stdout, stderr, took = _signal_cli_book(chapters, out, 1, [marks["started"]], signum)
    kernel = int(marks["started"].read_text())
    name = signum.name
    assert proc.returncode == 128 + signum, stderr
    assert took < 20, f"took {took:.1f} s to stop"
    # the report names the signal, the chapter it cut short (and where), and what never ran
    assert re.search(r"01_a\s+ok", stdout) and re.search(r"02_b\s+interrupted", stdout), stdout
    assert re.search(r"03_c\s+not run", stdout), stdout
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"ddlearn: stopped by {name}; interrupted: 02_b "), stderr
    assert f"stopped by {name} while running cell 3 (In [2])" in last and last.count("not run: 03_c") == 1
    assert "FAILED" not in stdout + stderr and "AssertionError" not in stderr and "Traceback" not in stderr
    # the kernel was interrupted (the cell saw KeyboardInterrupt), then shut down: no process left
    assert marks["interrupted"].read_text() == "KeyboardInterrupt"
    assert _gone(kernel), f"kernel {kernel} still runs after the book stopped"
    assert not marks["ran03"].exists(), "chapter 03 ran after the signal"
    # what finished is in OUT; the earlier build of 02 is untouched; 03 has nothing
    nb = nbformat.read(out / "notebooks" / "01_a.ipynb", as_version=4)
    assert nb.cells[1].outputs[0].text.strip() == "chapter a ran"
    assert (out / "01_a.html").exists() and (out / "student" / "01_a.ipynb").exists()
    assert (out / "02_b.html").read_text() == "an earlier build's page of 02"
    assert (out / "notebooks" / "02_b.ipynb").read_text() == "an earlier build's notebook of 02"
    assert not list(out.glob("**/03_c*"))
    manifest = json.loads((out / "book.json").read_text())["chapters"]
    assert manifest.keys() == {"01_a", "02_b"} and manifest["02_b"]["seconds"] == 1.5
    index = (out / "index.html").read_text()
    assert 'href="01_a.html"' in index and 'href="02_b.html"' in index and 'href="03_c.html"' not in index
    assert {p.name: p.read_bytes() for p in chapters.iterdir()} == before  # the reader's chapters/


# a cell that stops the process running the book, as a reader's Ctrl-C or a job's SIGTERM would
SIGNAL_PARENT_CELL = """
import os, pathlib, signal, time
for s in {ignore}:
    signal.signal(s, signal.SIG_IGN)     # a cell that interrupts do not stop
pathlib.Path({started!r}).write_text(str(os.getpid()))
for _ in range({times}):
    time.sleep(0.2)
    pathlib.Path({sent!r}).write_text(repr(time.time()))  # when the last signal went
    os.kill(os.getppid(), signal.SIGTERM)
time.sleep(600)
"""


def _signalling_book(tmp_path: Path, *, ignore="()", times=1):
    chapters = tmp_path / "chapters"
    marks = {k: tmp_path / f"{k}.txt" for k in ("started", "sent", "ran02")}
    chapters.mkdir()
    cell = SIGNAL_PARENT_CELL.format(ignore=ignore, times=times, started=str(marks["started"]),
                                     sent=str(marks["sent"]))
    _write(chapters / "01_stop.ipynb", [new_markdown_cell("# Stop"), new_code_cell("x = 1"), new_code_cell(cell)])
    _write(chapters / "02_after.ipynb", [new_markdown_cell("# After"),
                                         new_code_cell(f"open({str(marks['ran02'])!r}, 'w')")])
    return chapters, marks


@posix_signals
def test_build_book_stops_on_a_signal_and_restores_the_handlers(tmp_path):
    """The library function, in this process: its handlers take the signal, then the previous ones come back."""
    chapters, marks = _signalling_book(tmp_path)
    caught = []

    def previous_handler(signum, frame):  # what the caller had: it must not see the build's signal
        caught.append(signum)

    old_term = signal.signal(signal.SIGTERM, previous_handler)
    old_int = signal.getsignal(signal.SIGINT)
    lines: list[str] = []
    try:
        result = build_book(chapters, tmp_path / "out", fast=True, progress=False, jobs=1, log=lines.append)
        assert signal.getsignal(signal.SIGTERM) is previous_handler
        assert signal.getsignal(signal.SIGINT) is old_int
    finally:
        signal.signal(signal.SIGTERM, old_term)
    assert caught == []
    assert (result.signum, result.signal_name, result.ok) == (signal.SIGTERM, "SIGTERM", False)
    assert [(c.name, c.status) for c in result.chapters] == [("01_stop", "interrupted"), ("02_after", "not run")]
    assert result.chapters[0].reason == "stopped by SIGTERM while running cell 3 (In [2])"
    assert result.chapters[0].error is None
    assert lines == ["01_stop stopped by SIGTERM while running cell 3 (In [2])",
                     "stopped by SIGTERM; not run: 02_after"]
    assert _gone(int(marks["started"].read_text()))
    assert not marks["ran02"].exists()
    assert not (tmp_path / "out" / "01_stop.html").exists()


@posix_signals
def test_a_second_signal_kills_a_kernel_that_ignores_the_first(tmp_path):
    """The first signal shuts the kernel down politely (it would be killed after 5 s); the second kills it now."""
    chapters, marks = _signalling_book(tmp_path, ignore="(signal.SIGINT, signal.SIGTERM)", times=2)
    result = build_book(chapters, tmp_path / "out", fast=True, progress=False, jobs=1, log=lambda line: None)
    after_second = time.time() - float(marks["sent"].read_text())
    assert [c.status for c in result.chapters] == ["interrupted", "not run"]
    assert after_second < 3.5, f"the build ended {after_second:.1f} s after the second signal"
    assert _gone(int(marks["started"].read_text()))


def test_build_book_outside_the_main_thread_installs_no_handlers(tmp_path):
    """Python allows signal handlers only in the main thread: a build in another thread runs without them."""
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    _write(chapters / "01_a.ipynb", [new_markdown_cell("# A"), new_code_cell("print('ok')")])
    before = signal.getsignal(signal.SIGTERM)
    done = {}
    worker = threading.Thread(target=lambda: done.setdefault("result", build_book(
        chapters, tmp_path / "out", fast=True, progress=False)))
    worker.start()
    worker.join(120)
    assert "result" in done, "the build raised or did not finish in its thread"
    assert done["result"].ok and done["result"].signum is None
    assert signal.getsignal(signal.SIGTERM) is before


# --------------------------------------------------------------------------- several chapters at once: --jobs
# Two chapters that wait for each other: each leaves a marker, waits until the other's is there, then works 2 s.
# They can only both see each other when they run at the same time, so the test checks overlap, not speed.
RENDEZVOUS_CELL = """
import json, os, pathlib, time
me, other = pathlib.Path({me!r}), pathlib.Path({other!r})
start = time.time()
me.write_text(repr(start))
while not other.exists() and time.time() < start + 300:
    time.sleep(0.05)
saw_other = other.exists()
time.sleep(2)
pathlib.Path({record!r}).write_text(json.dumps(dict(
    start=start, end=time.time(), saw_other=saw_other, pid=os.getpid(),
    threads=os.environ.get("DDLEARN_THREADS"), omp=os.environ.get("OMP_NUM_THREADS"))))
print("saw the other chapter running:", saw_other)
"""


@pytest.fixture(scope="module")
def parallel_book(tmp_path_factory):
    """Four chapters, two at a time: 01 and 02 meet while running, 03 fails at cell 3, 04 is fine."""
    tmp = tmp_path_factory.mktemp("parallel")
    chapters = tmp / "chapters"
    chapters.mkdir()
    records = {k: tmp / f"{k}.json" for k in "ab"}
    for number, me, other in (("01", "a", "b"), ("02", "b", "a")):
        cell = RENDEZVOUS_CELL.format(me=str(tmp / f"{me}.started"), other=str(tmp / f"{other}.started"),
                                      record=str(records[me]))
        _write(chapters / f"{number}_sleep_{me}.ipynb", [new_markdown_cell(f"# Sleeper {me}"), new_code_cell(cell)])
    _write(chapters / "03_fails.ipynb", [
        new_markdown_cell("# Fails"), new_code_cell("x = 1"),
        new_code_cell("import time\ntime.sleep(0.5)\nraise RuntimeError('chapter 03 breaks here')"),
        new_code_cell("print('never reached')"),
    ])
    _write(chapters / "04_after.ipynb", [new_markdown_cell("# After"),
                                         new_code_cell("import time\ntime.sleep(0.5)\nprint('chapter 04 ran')")])
    lines: list[str] = []
    result = build_book(chapters, tmp / "out", fast=True, progress=False, jobs=2, log=lines.append)
    return dict(result=result, records=records, lines=lines, out=tmp / "out")


def test_jobs_2_runs_two_chapters_at_once(parallel_book):
    result = parallel_book["result"]
    assert result.jobs == 2
    a, b = (json.loads(parallel_book["records"][k].read_text()) for k in "ab")
    assert a["saw_other"] and b["saw_other"], "the two chapters did not run at the same time"
    assert a["start"] < b["end"] and b["start"] < a["end"]  # their working times overlap
    assert a["pid"] != b["pid"]  # each in its own kernel


def test_jobs_2_reports_in_chapter_order_and_a_failure_stays_its_own(parallel_book):
    result, out = parallel_book["result"], parallel_book["out"]
    assert [(c.name, c.status) for c in result.chapters] == [
        ("01_sleep_a", "ok"), ("02_sleep_b", "ok"), ("03_fails", "failed"), ("04_after", "ok")]
    bad = result.chapters[2]
    assert (bad.error.cell, bad.error.execution_count) == (3, 2)
    assert (bad.error.ename, bad.error.evalue) == ("RuntimeError", "chapter 03 breaks here")
    assert "03_fails failed at cell 3: RuntimeError: chapter 03 breaks here" in parallel_book["lines"]
    rows = [ln.split()[0] for ln in result.table().splitlines()[2:6]]
    assert rows == ["01_sleep_a", "02_sleep_b", "03_fails", "04_after"]
    assert re.search(r"03_fails\s+FAILED cell 3", result.table())
    nb = nbformat.read(out / "notebooks" / "04_after.ipynb", as_version=4)
    assert nb.cells[1].outputs[0].text.strip() == "chapter 04 ran"
    for c in result.chapters:
        assert (out / c.page).exists() and (out / "student" / f"{c.name}.ipynb").exists()
    assert list(json.loads((out / "book.json").read_text())["chapters"]) == [c.name for c in result.chapters]


def test_each_kernel_keeps_the_thread_policy(parallel_book, monkeypatch):
    for k in "ab":
        record = json.loads(parallel_book["records"][k].read_text())
        assert (record["threads"], record["omp"]) == (os.environ.get("DDLEARN_THREADS"),
                                                     os.environ.get("OMP_NUM_THREADS"))
    from ddlearn.book import kernel_env

    monkeypatch.setenv("DDLEARN_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    env = kernel_env(fast=True)
    assert (env["DDLEARN_THREADS"], env["OMP_NUM_THREADS"]) == ("3", "3")


_VOLATILE = [(re.compile(r"ipykernel_\d+"), "ipykernel_PID"),            # the kernel's pid in a traceback's path
             (re.compile(r'"model_id": "[0-9a-f]+"'), '"model_id": "ID"')]  # a widget's id, new in every run


def _content(path: Path) -> str:
    """A notebook as text, without what differs between any two runs (timestamps, pids, widget ids)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    text = nbformat.writes(nb)
    for pattern, same in _VOLATILE:
        text = pattern.sub(same, text)
    return text


def test_parallel_build_matches_a_sequential_one(tiny_book, tmp_path):
    """tiny_book ran two chapters at a time; one after another gives the same notebooks, pages and manifest."""
    seq = tmp_path / "seq"
    result = build_book(tiny_book["chapters"], seq, fast=True, progress=False, jobs=1, log=lambda line: None)
    par = tiny_book["out"]
    assert result.jobs == 1 and tiny_book["result"].jobs == 2
    strip = lambda c: {k: v for k, v in c.__dict__.items() if k != "seconds"}  # noqa: E731
    assert [strip(c) for c in result.chapters] == [strip(c) for c in tiny_book["result"].chapters]
    for name in ["01_good", "02_bad", "03_widget"]:
        assert _content(seq / "notebooks" / f"{name}.ipynb") == _content(par / "notebooks" / f"{name}.ipynb")
        assert _content(seq / "student" / f"{name}.ipynb") == _content(par / "student" / f"{name}.ipynb")
        page = [(d / f"{name}.html").read_text() for d in (seq, par)]
        for pattern, same in _VOLATILE:
            page = [pattern.sub(same, p) for p in page]
        assert page[0] == page[1], name
    manifests = [json.loads((d / "book.json").read_text())["chapters"] for d in (seq, par)]
    for m in manifests:
        for entry in m.values():
            entry.pop("seconds")
    assert manifests[0] == manifests[1]


@pytest.mark.parametrize("jobs, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                                       (True, TypeError)])
def test_bad_jobs_are_refused_naming_jobs(tmp_path, jobs, exc):
    with pytest.raises(exc, match="jobs"):
        build_book(tmp_path / "no-chapters-here", tmp_path / "out", jobs=jobs)


def test_default_jobs_is_the_usable_cores_at_most_the_chapters(monkeypatch):
    from ddlearn import book

    monkeypatch.setattr(book.os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert [book.default_jobs(n) for n in (1, 2, 3, 9)] == [1, 2, 3, 3]
    monkeypatch.delattr(book.os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.setattr(book.os, "cpu_count", lambda: 4)
    assert book.usable_cores() == 4 and book.default_jobs(9) == 4 and book.default_jobs(0) == 1
    monkeypatch.setattr(book.os, "cpu_count", lambda: None)
    assert book.default_jobs(9) == 1


def test_cli_jobs_option(capsys, tmp_path):
    from ddlearn.book import usable_cores
    from ddlearn.cli import build_parser, main

    parser = build_parser()
    assert parser.parse_args(["book"]).jobs is None
    assert parser.parse_args(["book", "--jobs", "3"]).jobs == 3 == parser.parse_args(["book", "-j", "3"]).jobs
    with pytest.raises(SystemExit):
        parser.parse_args(["book", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--jobs N" in text and f"process may use, here {usable_cores()}" in text
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    _write(chapters / "01_a.ipynb", [new_markdown_cell("# A")])
    assert main(["book", "--jobs", "0", "--chapters-dir", str(chapters), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ddlearn: error: jobs must be at least 1"), err


def _two_sleepers_book(tmp_path: Path):
    """01 and 02 sleep until stopped (each leaves its kernel's pid, and a mark when interrupted); 03 marks if it runs."""
    chapters, out = tmp_path / "chapters", tmp_path / "out"
    chapters.mkdir()
    marks = {}
    for number, name in (("01", "a"), ("02", "b")):
        marks[name] = {k: tmp_path / f"{name}-{k}.txt" for k in ("started", "interrupted")}
        cell = SLEEPING_CELL.format(started=str(marks[name]["started"]), interrupted=str(marks[name]["interrupted"]))
        _write(chapters / f"{number}_{name}.ipynb", [new_markdown_cell(f"# {name}"), new_code_cell(cell)])
    ran03 = tmp_path / "ran03.txt"
    _write(chapters / "03_c.ipynb", [new_markdown_cell("# C"), new_code_cell(f"open({str(ran03)!r}, 'w')")])
    return chapters, out, marks, ran03


@posix_signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_book_jobs_2_stops_every_running_chapter_on_a_signal(tmp_path, signum):
    chapters, out, marks, ran03 = _two_sleepers_book(tmp_path)
    # both chapters are in their sleeping cell when the signal comes
    proc, stdout, stderr, took = _signal_cli_book(chapters, out, 2, [m["started"] for m in marks.values()], signum)
    kernels = [int(m["started"].read_text()) for m in marks.values()]
    name = signum.name
    assert proc.returncode == 128 + signum, stderr
    assert took < 20, f"took {took:.1f} s to stop"
    rows = [ln for ln in stdout.splitlines() if re.match(r"0\d_[abc]\s", ln)]
    assert [r.split()[:2] for r in rows] == [["01_a", "interrupted"], ["02_b", "interrupted"], ["03_c", "not"]]
    assert "mode: fast; 2 chapter(s) at a time" in stdout
    why = f"stopped by {name} while running cell 2 (In [1])"
    assert stderr.strip().splitlines()[-1] == (f"ddlearn: stopped by {name}; interrupted: 01_a ({why}), 02_b ({why}); "
                                               "not run: 03_c; the chapters that finished are in the book"), stderr
    assert "FAILED" not in stdout + stderr and "Traceback" not in stderr
    for m in marks.values():
        assert m["interrupted"].read_text() == "KeyboardInterrupt"
    assert all(_gone(k) for k in kernels), "a kernel still runs after the book stopped"
    assert not ran03.exists(), "chapter 03 started after the signal"
    assert not [p for p in out.glob("**/*") if p.name.startswith(("01_", "02_", "03_"))]
    assert json.loads((out / "book.json").read_text())["chapters"] == {}


# 01 and 02 ignore interrupts; once both run, 01 sends the book two SIGTERMs
STUBBORN_CELL = """
import os, pathlib, signal, time
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
pathlib.Path({started!r}).write_text(str(os.getpid()))
other = pathlib.Path({other!r})
while {times} and not other.exists():
    time.sleep(0.05)
for _ in range({times}):
    time.sleep(0.2)
    pathlib.Path({sent!r}).write_text(repr(time.time()))
    os.kill(os.getppid(), signal.SIGTERM)
time.sleep(600)
"""


@posix_signals
def test_a_second_signal_kills_every_running_kernel_at_once(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    started = {k: tmp_path / f"{k}.started" for k in "ab"}
    sent = tmp_path / "sent.txt"
    for number, me, other, times in (("01", "a", "b", 2), ("02", "b", "a", 0)):
        cell = STUBBORN_CELL.format(started=str(started[me]), other=str(started[other]), times=times, sent=str(sent))
        _write(chapters / f"{number}_{me}.ipynb", [new_markdown_cell(f"# {me}"), new_code_cell(cell)])
    _write(chapters / "03_c.ipynb", [new_markdown_cell("# C"), new_code_cell("x = 1")])
    result = build_book(chapters, tmp_path / "out", fast=True, progress=False, jobs=2, log=lambda line: None)
    after_second = time.time() - float(sent.read_text())
    assert [c.status for c in result.chapters] == ["interrupted", "interrupted", "not run"]
    assert result.signum == signal.SIGTERM
    assert after_second < 3.5, f"the build ended {after_second:.1f} s after the second signal"
    assert all(_gone(int(p.read_text())) for p in started.values())


def test_a_build_error_shuts_the_other_running_chapters_down(tmp_path, monkeypatch):
    """Should writing a finished chapter fail, the chapter still running beside it is stopped: no kernel is left."""
    from ddlearn import book

    chapters, out, marks = _stoppable_book(tmp_path)  # 01 finishes at once, 02 sleeps until stopped
    render = book.render_page

    def broken_render(nb, chapter):
        if chapter.name == "01_a":
            _wait_for(marks["started"])  # 02 is in its sleeping cell now
            raise RuntimeError("the page writer broke")
        return render(nb, chapter)

    monkeypatch.setattr(book, "render_page", broken_render)
    with pytest.raises(RuntimeError, match="the page writer broke"):
        build_book(chapters, out, fast=True, progress=False, jobs=2, log=lambda line: None)
    assert _gone(int(marks["started"].read_text())), "the other chapter's kernel still runs"
    assert not marks["ran03"].exists()
