"""Run the book: execute every chapter notebook and write a browsable HTML book.

``ddlearn book`` (see :mod:`ddlearn.cli`) calls :func:`build_book`, which

1. copies ``chapters/`` to a temporary folder and executes each chapter
   notebook there with nbclient (the reader's ``chapters/`` is never touched,
   and files a chapter writes land in the copy);
2. sets ``DDLEARN_FAST`` for the kernel (``fast=True`` -> ``1``; the default is
   full mode, what a reader gets) and puts this checkout first on the kernel's
   ``PYTHONPATH``, so the kernel imports the same ``ddlearn`` as the command;
3. writes the executed notebooks to ``OUT/notebooks/`` and one HTML page per
   chapter to ``OUT/`` (figures embedded, so a page is one self-contained
   file), linked by previous / contents / next bars, plus ``OUT/index.html``
   as the book's front page: what the book is, the reading order, each chapter with
   what the reader will be able to do, its prerequisites and links to its page,
   slides (``--slides``) and student notebook, then every chapter's status and run time;
4. keeps going when a chapter fails: the failure is reported with its cell
   number and error, the chapter's page shows how far it got, and
   :attr:`BookResult.ok` is False (the command then exits non-zero);
5. stops when it is told to: SIGINT (Ctrl-C) or SIGTERM during a build shuts the
   kernel of every running chapter down (interrupt, shutdown request, and a kill after
   5 s if the cell ignores both; a second signal kills them at once: no kernel is left
   running), starts no further chapter and keeps what finished. An interrupted
   chapter is reported as ``"interrupted"`` with the cell it was running and the
   signal, the chapters never started as ``"not run"``; neither writes anything to OUT,
   so the pages an earlier build left there stay as they were.
   :attr:`BookResult.signum` names the signal (``ddlearn book`` exits with 128 + its
   number: 130 for Ctrl-C, 143 for SIGTERM). The handlers are installed for the
   build only, and only when it runs in the main thread (Python allows no other);
   the previous ones are restored afterwards;
6. runs up to ``jobs`` chapters at once (``ddlearn book --jobs N``), each in its own
   kernel. The library runs torch with one intra-op thread per process
   (:mod:`ddlearn.config`; two threads beside another busy process are many times
   slower, ``benchmarks/threads.py``), so one chapter keeps one core busy and the
   default is one chapter per CPU core this process may use
   (``os.sched_getaffinity``, else ``os.cpu_count()``), at most the number of
   chapters: :func:`default_jobs`. Each kernel inherits ``DDLEARN_THREADS`` and
   ``OMP_NUM_THREADS`` unchanged (:func:`kernel_env`). The chapters share nothing but
   the copied folder, and no chapter reads a file another one writes there (keep it so:
   the order in which they finish would then matter), so a chapter's notebook, page,
   student notebook and manifest entry are the same as in a run one after another; the
   result table is in chapter order.
   Each running chapter has its own cell bar below the book's bar (whose postfix names
   the chapters running). How: every chapter runs on its own event loop in a worker
   thread (:func:`run_chapter`, as it would alone), while the main thread hands out the
   chapters, writes each finished one to OUT and takes the signals (:class:`_Stop`
   cancels every running chapter's task on its own loop).

The HTML book is static and offline: a page loads nothing from the network.
nbconvert's lab template would fetch require.js and MathJax from a CDN and
import mermaid at run time; the book renders with :data:`OFFLINE_TEMPLATE`
instead, which leaves those out, the maths is MathML that browsers draw
natively (:func:`math_to_mathml`), figures are embedded, and
:func:`strip_external` removes any script or stylesheet an output itself
would load from elsewhere (:func:`external_resources` lists them; the tests
open a page in Chromium with the network blocked). A static page cannot run
the Python callback behind a slider, and the widget renderer would be fetched
from the web, so a widget output is shown by its static fallback: the
library's explorers put an ``image/png`` in the same output bundle as the
widget view, and that image is what the page shows (:func:`static_widget_outputs`).

``OUT/book.json`` records each chapter's last result, so building a few
chapters (``--chapters 02``) keeps the rest of an earlier build in the index.
"""
from __future__ import annotations

import asyncio
import atexit
import copy
import html
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NAV_START, _NAV_END = "<!-- ddlearn-nav -->", "<!-- /ddlearn-nav -->"


@dataclass
class CellError:
    """Where and how a chapter failed."""

    cell: int                      # 1-based position of the cell in the notebook
    execution_count: int | None    # the ``In [n]`` the reader sees, if it ran
    ename: str
    evalue: str
    traceback: str                 # plain text, ANSI colours removed
    source_line: str               # first non-empty line of the failing cell

    def block(self, chapter: str) -> str:
        """The one block printed for a failed chapter."""
        if self.cell < 1:
            where = "before the first cell ran"
        else:
            where = f"cell {self.cell}" + (f" (In [{self.execution_count}])" if self.execution_count else "")
        lines = [f"FAILED {chapter}: {where}: {self.ename}: {self.evalue}".rstrip(": ")]
        if self.source_line:
            lines.append(f"  cell starts: {self.source_line}")
        tail = [ln for ln in self.traceback.splitlines() if ln.strip()][-8:]
        lines += ["  | " + ln for ln in tail]
        return "\n".join(lines)


@dataclass
class ChapterResult:
    name: str                      # file stem, e.g. "01_forward_process"
    title: str
    status: str                    # "ok", "failed"; "interrupted" or "not run" when a signal stopped the build
    seconds: float
    cells_run: int
    cells_total: int
    mode: str                      # "fast" or "full"
    error: CellError | None = None
    reason: str = ""               # why an interrupted chapter stopped, e.g. "stopped by SIGTERM while running cell 3"

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def page(self) -> str:
        return f"{self.name}.html"


@dataclass
class BookResult:
    out_dir: Path
    chapters: list[ChapterResult] = field(default_factory=list)
    signum: int | None = None      # the signal (SIGINT or SIGTERM) that stopped the build, if one did
    jobs: int = 1                  # chapters run at once (build_book's jobs, after its default and cap)

    @property
    def ok(self) -> bool:
        return self.signum is None and all(c.status == "ok" for c in self.chapters)

    @property
    def signal_name(self) -> str | None:
        """``"SIGTERM"``, ``"SIGINT"``, ... or None when no signal stopped the build."""
        return None if self.signum is None else _signal_name(self.signum)

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"

    def table(self) -> str:
        return format_table(self.chapters)


# --------------------------------------------------------------------------- finding chapters
def find_chapters(chapters_dir: str | os.PathLike, only: list[str] | None = None) -> list[Path]:
    """The chapter notebooks ``NN_name.ipynb`` in order; ``only`` picks by number prefix.

    ``only=["1", "02"]`` keeps chapters 01 and 02. An unknown number is an error
    naming the chapters there are.
    """
    chapters_dir = Path(chapters_dir)
    if not chapters_dir.is_dir():
        raise FileNotFoundError(f"chapters directory not found: {chapters_dir}")
    notebooks = sorted(p for p in chapters_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not notebooks:
        raise FileNotFoundError(f"no chapter notebooks (*.ipynb) in {chapters_dir}")
    if not only:
        return notebooks
    picked = []
    for want in only:
        want = str(want).strip()
        if not want.isdigit():
            raise ValueError(f"--chapters takes chapter numbers such as 01 or 2, got {want!r}")
        match = [p for p in notebooks if p.name.split("_", 1)[0].isdigit() and int(p.name.split("_", 1)[0]) == int(want)]
        if not match:
            have = ", ".join(p.name.split("_", 1)[0] for p in notebooks)
            raise ValueError(f"no chapter numbered {want!r} in {chapters_dir} (have: {have})")
        picked += [p for p in match if p not in picked]
    return sorted(picked)


def chapter_title(nb, fallback: str) -> str:
    """The first markdown heading of the notebook, else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("#"):
                return line.lstrip().lstrip("#").strip() or fallback
    return fallback


# --------------------------------------------------------------------------- executing
def kernel_env(fast: bool) -> dict[str, str]:
    """The kernel's environment: ours, plus the mode and this checkout on the path.

    The thread policy travels unchanged: ``DDLEARN_THREADS`` and ``OMP_NUM_THREADS`` are whatever they are
    here (``import ddlearn`` sets the latter to one thread unless it was set), so each of the kernels that
    ``jobs`` runs at once keeps to one core.
    """
    env = dict(os.environ)
    env["DDLEARN_FAST"] = "1" if fast else "0"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugger warning on 3.11+
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").exists():  # a checkout, not site-packages
        env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH", "")] if p])
    return env


def _cell_error(nb, index: int, exc: BaseException, timeout: int) -> CellError:
    """What went wrong: the cell's own error output, or nbclient's reason (timeout, dead kernel)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    cell = nb.cells[index] if 0 <= index < len(nb.cells) else None
    ename, evalue, tb = type(exc).__name__, (str(exc).strip().splitlines() or [""])[0], ""
    if isinstance(exc, CellTimeoutError):
        evalue = f"the cell ran longer than the {timeout} s limit (ddlearn book --timeout)"
    elif isinstance(exc, CellExecutionError) and cell is not None:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                ename, evalue = out.get("ename", ename), out.get("evalue", evalue)
                tb = "\n".join(out.get("traceback", []))
                break
        tb = tb or getattr(exc, "traceback", "") or ""
    source = ""
    if cell is not None:
        source = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return CellError(
        cell=index + 1,
        execution_count=cell.get("execution_count") if cell is not None else None,
        ename=ename,
        evalue=_ANSI.sub("", str(evalue)),
        traceback=_ANSI.sub("", tb),
        source_line=source[:120],
    )


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _Stop:
    """SIGINT and SIGTERM during a build: remember the first signal and cancel every chapter now running.

    The handler only records and schedules; each cancellation runs on its chapter's own event loop
    (:func:`run_chapter`, in a worker thread), where nbclient's cleanup shuts the kernel down. A second
    signal cancels again, which cuts those graceful shutdowns short: the kernels are then killed at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._running: dict = {}           # task -> loop, of each chapter being executed
        self._aborted = False              # the build failed (not a signal): cancel every chapter, too
        # watch/unwatch run in worker threads, the handler in the main thread; reentrant, so that a handler
        # which interrupts run_chapter called in the main thread itself cannot deadlock on it
        self._lock = threading.RLock()

    def install(self) -> _Stop:
        """Install the handlers; a no-op outside the main thread, where Python does not allow it."""
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            # None: the previous handler was not installed from Python and cannot be put back
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def stopping(self) -> bool:
        return self.signum is not None or self._aborted

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        self._cancel_running()

    def abort(self) -> None:
        """Cancel every running chapter (and any about to start) because the build itself failed."""
        self._aborted = True
        self._cancel_running()

    def _cancel_running(self) -> None:
        with self._lock:
            running = list(self._running.items())
        for task, loop in running:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has just closed: the chapter is over
                pass

    def watch(self, loop, task) -> None:
        with self._lock:
            self._running[task] = loop
        if self.stopping:  # the signal came before the chapter started
            task.cancel()

    def unwatch(self, task) -> None:
        with self._lock:
            self._running.pop(task, None)


class _ChapterLoop(asyncio.SelectorEventLoop):
    """The event loop a chapter runs on, without nbclient's own SIGINT/SIGTERM handlers.

    nbclient adds handlers to the loop that shut the kernel down and swallow the signal: a SIGTERM
    then showed up as a failed cell (an AssertionError from its half-closed client) and the book went
    on with the next chapter. Refusing them with RuntimeError (what nbclient expects outside the main
    thread) leaves the signals to :class:`_Stop`.
    """

    def add_signal_handler(self, sig, callback, *args):
        raise RuntimeError("ddlearn.book handles SIGINT and SIGTERM itself")

    def remove_signal_handler(self, sig):
        return False


def _close_chapter_loop(loop, client, km) -> None:
    """Make sure the kernel is gone, then close ``loop``; after any ending, cancelled ones included.

    nbclient shuts its kernel down on the way out of ``execute``, but not when it is cancelled while
    the kernel is starting, nor when a second signal cuts that shutdown short (it has forgotten
    ``client.km`` by then, hence ``km``, the kernel manager it was given): kill the kernel here then.
    """
    from nbclient.util import ensure_async

    try:
        if km.has_kernel:
            loop.run_until_complete(ensure_async(km.shutdown_kernel(now=True)))
        if client.kc is not None:
            loop.run_until_complete(ensure_async(client.kc.stop_channels()))
            client.kc = None
        atexit.unregister(client._cleanup_kernel)  # registered by nbclient for a kernel that is gone now
    finally:
        pending = asyncio.all_tasks(loop)  # nbclient's pollers of a cell that never finished
        for task in pending:
            task.cancel()
        if pending:  # (gather() of nothing would pick the thread's default loop, not this one)
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


#: seconds a kernel may take to start: nbclient's 60 s default fails a chapter before its first cell on a
#: machine busy with other jobs (measured: load average 35 on the 2-core machine made both of two kernels miss it)
KERNEL_STARTUP_TIMEOUT = 600


def run_chapter(path: Path, workdir: Path, *, fast: bool, timeout: int, kernel_name: str,
                progress: bool, position: int = 1, stop: _Stop | None = None):
    """Execute one notebook (already copied into ``workdir``); return (nb, result).

    The chapter runs on an event loop of its own, so it may run in any thread, beside other chapters
    (:func:`build_book` with ``jobs`` > 1); ``position`` is the screen row of its cell bar. With
    ``stop`` (:func:`build_book`'s signal handlers), a signal cancels the execution: the kernel is
    shut down and the result's status is ``"interrupted"``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    title = chapter_title(nb, path.stem)
    runnable = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    bar = tqdm(total=len(runnable), desc=f"  {path.stem}", unit="cell", leave=False,
               position=position, disable=not progress, dynamic_ncols=True)
    state = {"index": -1, "done": 0, "count": None}

    def on_start(cell, cell_index):
        state["index"] = cell_index
        state["count"] = client.code_cells_executed + 1  # the In [n] it gets if it is code

    def on_executed(cell, cell_index, execute_reply):
        state["done"] += 1
        bar.update(1)

    client = NotebookClient(
        nb,
        timeout=timeout,
        startup_timeout=KERNEL_STARTUP_TIMEOUT,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_start=on_start,
        on_cell_executed=on_executed,
    )
    error, reason = None, ""
    start = time.perf_counter()
    # The kernel's own log (startup warnings) would tear through the progress bars;
    # keep it in a file and show its tail only if the kernel itself failed.
    kernel_log = workdir.parent / f"{path.stem}.kernel.log"
    km = client.create_kernel_manager()  # kept here: nbclient drops its reference while shutting down
    loop = _ChapterLoop()
    try:
        with open(kernel_log, "w") as log_file:
            task = loop.create_task(client.async_execute(env=kernel_env(fast), stderr=log_file))
            if stop is not None:
                stop.watch(loop, task)
            try:
                loop.run_until_complete(task)
            finally:
                if stop is not None:
                    stop.unwatch(task)
                _close_chapter_loop(loop, client, km)
    except (Exception, asyncio.CancelledError) as exc:
        if stop is not None and stop.signum is not None:
            # stopped by a signal: whatever nbclient raised on the way out (a cancelled or "dead"
            # kernel, the KeyboardInterrupt the shutdown put in the cell) is not the chapter's error
            reason = f"stopped by {_signal_name(stop.signum)} " + _where(nb, state)
        elif isinstance(exc, asyncio.CancelledError):
            raise
        else:  # one chapter's failure must not stop the book
            error = _cell_error(nb, state["index"], exc, timeout)
            if isinstance(exc, DeadKernelError):  # its last words are in the kernel's log
                tail = kernel_log.read_text(errors="replace").strip().splitlines()[-10:]
                error.traceback = "kernel log:\n" + "\n".join(tail)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    result = ChapterResult(
        name=path.stem, title=title, status="interrupted" if reason else "failed" if error else "ok",
        seconds=seconds, cells_run=state["done"], cells_total=len(runnable), mode="fast" if fast else "full",
        error=error, reason=reason,
    )
    return nb, result


def _where(nb, state) -> str:
    """Where a signal found the chapter: "while running cell 3 (In [2])", or before its first cell."""
    index = state["index"]
    if index < 0:
        return "before its first cell ran"
    cell = nb.cells[index]
    if cell.cell_type != "code" or not cell.source.strip():
        return f"at cell {index + 1}, between code cells"
    return f"while running cell {index + 1} (In [{state['count']}])"


# --------------------------------------------------------------------------- HTML
def static_widget_outputs(nb):
    """A copy of ``nb`` whose widget outputs show their static part.

    A widget view is replaced by what else its output bundle holds: the
    ``image/png`` the library's explorers add (so the page shows the picture),
    else the text form. The copy carries no widget state. A static page cannot
    run the Python callback behind a slider, so a rendered widget would be a
    control that moves nothing, and its renderer would have to come from the
    web, which an offline reader does not have.
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
    nb.metadata.pop("widgets", None)
    return nb


_MARKDOWN_BLOCK = re.compile(r'(<div[^>]*\bjp-RenderedMarkdown\b[^>]*>)(.*?)(</div>)', re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?=\S)([^$]+?)(?<=\S)\$(?!\d)")


def math_to_mathml(page: str) -> str:
    """Turn ``$...$`` / ``$$...$$`` in markdown cells into MathML, which browsers draw natively.

    nbconvert leaves the maths to MathJax, fetched from the web, which the
    offline book does not load. With ``latex2mathml`` installed (the dev extra)
    the page carries its maths itself; an expression it cannot convert stays
    as its LaTeX source. Only markdown cells are touched: a dollar sign in a
    printed output is not maths.
    """
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return page

    def to_mathml(match, display):
        tex = html.unescape(match.group(1)).strip()
        try:
            return convert(tex, display=display)
        except Exception:  # not LaTeX latex2mathml knows: leave the source as it is
            return match.group(0)

    def text(t):
        t = _DISPLAY_MATH.sub(lambda x: to_mathml(x, "block"), t)
        return _INLINE_MATH.sub(lambda x: to_mathml(x, "inline"), t)

    def block(m):
        # text between tags only: not attributes (heading anchors), not code
        parts, in_code = re.split(r"(<[^>]+>)", m.group(2)), 0
        for i, part in enumerate(parts):
            if part.startswith("<"):
                name = re.match(r"</?\s*(\w+)", part)
                if name and name.group(1).lower() in ("code", "pre"):
                    in_code += -1 if part.startswith("</") else 1
            elif part and not in_code:
                parts[i] = text(part)
        return m.group(1) + "".join(parts) + m.group(3)

    return _MARKDOWN_BLOCK.sub(block, page)


_PAGE_CSS = """
<style>
.ddlearn-nav{display:flex;justify-content:space-between;gap:1em;padding:.6em 1em;margin:0 0 1em 0;
 border-bottom:1px solid #ccc;font-family:system-ui,sans-serif;font-size:15px;background:#fafafa}
.ddlearn-nav a{text-decoration:none;color:#1a5fb4}.ddlearn-nav span.off{color:#aaa}
.ddlearn-failed{margin:1em;padding:.8em 1em;border:2px solid #c01c28;background:#fde8e8;
 font-family:system-ui,sans-serif;white-space:pre-wrap}
</style>
"""


def _nav_html(prev: ChapterResult | None, nxt: ChapterResult | None) -> str:
    def link(c, arrow_left):
        if c is None:
            return '<span class="off"></span>'
        label = html.escape(f"{c.number} {c.title}")
        text = f"&larr; {label}" if arrow_left else f"{label} &rarr;"
        return f'<a href="{html.escape(c.page)}" rel="{"prev" if arrow_left else "next"}">{text}</a>'

    return (f'{_NAV_START}<nav class="ddlearn-nav">{link(prev, True)}'
            f'<a href="index.html" rel="index">Contents</a>{link(nxt, False)}</nav>{_NAV_END}')


#: nbconvert's lab template without what it loads from the web: require.js and MathJax
#: (script tags pointing at a CDN), mermaid (a dynamic import from a CDN) and the widget
#: renderer. The page keeps the lab look (its CSS is inlined) and needs no network.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""

# A tag that makes the browser fetch something: scripts, stylesheets and other <link>s, frames,
# objects; and ES-module imports / CSS @import of an absolute URL (http, https or protocol-relative).
_REMOTE = r"""(?:https?:)?//[^"'\s>)]+"""
_EXTERNAL_TAG = re.compile(
    r"""<(script|link|iframe|embed|object|img|source|audio|video)\b[^>]*?\b(?:src|href|data)\s*=\s*["']?"""
    + _REMOTE + r"""[^>]*>(?:\s*</\1>)?""", re.I)
_EXTERNAL_IMPORT = re.compile(r"""(?:\bimport\s*\(\s*|\bimport\s+[^;]*?\bfrom\s+|@import\s+(?:url\()?)["']"""
                              + _REMOTE, re.I)


def external_resources(page: str) -> list[str]:
    """What ``page`` would load from outside itself: tags with an absolute ``src``/``href`` (scripts,
    stylesheets, frames, images ...) and ``import``/``@import`` of absolute URLs. Links a reader
    clicks (``<a href>``) load nothing and are not listed. The book's pages give ``[]``."""
    return [m.group(0)[:200] for m in _EXTERNAL_TAG.finditer(page)] + \
        [m.group(0)[:200] for m in _EXTERNAL_IMPORT.finditer(page)]


def strip_external(page: str) -> str:
    """``page`` without the tags of :func:`external_resources` (an output's own CDN script, say):
    the offline page shows what it carries and fetches nothing."""
    return _EXTERNAL_TAG.sub("", page)


def render_page(nb, result: ChapterResult) -> str:
    """The chapter's HTML page, offline (see the module docstring; nav bars are filled in by :func:`_relink`)."""
    import jinja2
    from nbconvert import HTMLExporter

    from .teaching import student_view

    exporter = HTMLExporter(template_name="lab", template_file="ddlearn_offline.html.j2",
                            extra_loaders=[jinja2.DictLoader({"ddlearn_offline.html.j2": OFFLINE_TEMPLATE})])
    exporter.embed_images = True
    # the exercises as a student sees them: a solution cell shows its prompt (see ddlearn.teaching)
    nb = static_widget_outputs(student_view(nb))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": result.title}})
    body = strip_external(body)
    banner = ""
    if result.error is not None:
        banner = ('<div class="ddlearn-failed"><b>This chapter failed in the last build.</b>\n'
                  + html.escape(result.error.block(result.name)) + "\nThe cells after it did not run.</div>")
    nav = f"{_NAV_START}{_NAV_END}"
    body = math_to_mathml(body).replace("</head>", _PAGE_CSS + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav + banner, body, count=1)
    return body.replace("</body>", nav + "</body>", 1)


# --------------------------------------------------------------------------- slides
REVEAL_DIR = Path(__file__).resolve().parent / "reveal"  #: reveal.js, vendored (see its README.md)
_REVEAL_PREFIX = "ddlearn-reveal"  # a placeholder the template links to; replaced by the inlined files

#: nbconvert's reveal template without what it loads from the web (jQuery, require.js, mermaid,
#: MathJax, the widget renderer); reveal.js itself is inlined by :func:`render_slides`.
SLIDES_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block footer_js -%}
<script>/*ddlearn-reveal-js*/</script>
<script>
Reveal.initialize({controls: true, progress: true, history: true, hash: true, center: false,
                   transition: "none", slideNumber: "c/t", width: 1280, height: 800, margin: 0.03});
</script>
{%- endblock footer_js -%}
"""

_SLIDES_CSS = """
<style>
/* a cell taller than the slide scrolls inside it instead of running off the screen */
.reveal .slides section { height: 100%; overflow-y: auto; overflow-x: hidden; }
.reveal .slides section section { padding: 0 .5em; }
.reveal .jp-RenderedImage img, .reveal .jp-OutputArea-output img { max-width: 100%; height: auto; }
.reveal { font-size: 26px; }
.reveal h1, .reveal h2, .reveal h3 { text-transform: none; }
.reveal pre { font-size: 0.65em; }
</style>
"""

_HEADING = re.compile(r"^\s*(#{1,3})\s")


def default_slide_types(nb):
    """A copy of ``nb`` where every cell without slide metadata gets a sensible ``slide_type``.

    A chapter may set ``slideshow.slide_type`` on any cell (in the jupytext source:
    ``# %% [markdown] slideshow={"slide_type": "slide"}``); cells that do not say get:
    a markdown cell opening with a ``#`` or ``##`` heading -> a new slide; with ``###`` -> a
    sub-slide; a code cell with output -> a sub-slide of its own (code and figure
    together); anything else -> the same slide as the cell before (``-``).
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        show = cell.setdefault("metadata", {}).setdefault("slideshow", {})
        if show.get("slide_type"):
            continue
        heading = _HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            show["slide_type"] = "slide" if len(heading.group(1)) <= 2 else "subslide"
        elif cell.cell_type == "code" and cell.get("outputs"):
            show["slide_type"] = "subslide"
        else:
            show["slide_type"] = "-"
    return nb


def _inline_reveal(page: str) -> str:
    css = (REVEAL_DIR / "reveal.css").read_text(encoding="utf-8")
    theme = (REVEAL_DIR / "white.css").read_text(encoding="utf-8")
    js = (REVEAL_DIR / "reveal.js").read_text(encoding="utf-8")
    page = re.sub(r'<link[^>]*href="' + _REVEAL_PREFIX + r'/dist/reveal\.css"[^>]*>',
                  lambda m: f"<style>\n{css}\n</style>", page, count=1)
    page = re.sub(r'<link[^>]*href="' + _REVEAL_PREFIX + r'/dist/theme/[\w-]+\.css"[^>]*>',
                  lambda m: f'<style id="theme">\n{theme}\n</style>', page, count=1)
    page = page.replace("<script>/*ddlearn-reveal-js*/</script>", f"<script>\n{js}\n</script>", 1)
    return page.replace("</head>", _SLIDES_CSS + "</head>", 1)


def render_slides(nb, result: ChapterResult) -> str:
    """The chapter as reveal.js slides, one offline HTML file (reveal.js, figures and maths inlined).

    Solutions show as their prompts (:func:`ddlearn.teaching.student_view`), widgets as
    their static picture, maths as MathML; the slide structure comes from the cells'
    slide metadata, completed by :func:`default_slide_types`. Arrow keys move between
    slides (right: next section, down: next cell of the section); ``Esc`` shows the overview.
    """
    import jinja2
    from nbconvert import SlidesExporter

    from .teaching import student_view

    if not (REVEAL_DIR / "reveal.js").is_file():
        raise FileNotFoundError(f"reveal.js is missing from {REVEAL_DIR}; reinstall ddlearn")
    exporter = SlidesExporter(template_file="ddlearn_slides.html.j2",
                              extra_loaders=[jinja2.DictLoader({"ddlearn_slides.html.j2": SLIDES_TEMPLATE})])
    exporter.reveal_url_prefix = _REVEAL_PREFIX
    exporter.reveal_theme = "white"
    exporter.embed_images = True
    nb = default_slide_types(static_widget_outputs(student_view(nb)))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": result.title}})
    body = strip_external(math_to_mathml(body))
    return _inline_reveal(body)


def slides_page(result: ChapterResult) -> str:
    return f"slides/{result.name}.slides.html"


def _relink(out_dir: Path, chapters: list[ChapterResult]) -> None:
    """Rewrite every page's nav bars so prev/next link exactly the pages that exist."""
    pattern = re.compile(re.escape(_NAV_START) + ".*?" + re.escape(_NAV_END), re.S)
    for i, c in enumerate(chapters):
        page = out_dir / c.page
        text = page.read_text(encoding="utf-8")
        nav = _nav_html(chapters[i - 1] if i > 0 else None, chapters[i + 1] if i + 1 < len(chapters) else None)
        page.write_text(pattern.sub(lambda m: nav, text), encoding="utf-8")


_GOALS_START = re.compile(r"able to\s*$", re.M)


def chapter_goals(nb) -> list[str]:
    """What the reader will be able to do: the bullets after "... you will be able to" in the opening cell."""
    for cell in nb.cells[:3]:
        if cell.cell_type != "markdown":
            continue
        m = _GOALS_START.search(cell.source)
        if not m:
            continue
        items, current = [], None
        for line in cell.source[m.end():].splitlines():
            if re.match(r"\s*[*-]\s+", line):
                current = re.sub(r"^\s*[*-]\s+", "", line).strip()
                items.append(current)
            elif line.strip() and items and line.startswith((" ", "\t")):
                items[-1] += " " + line.strip()
            elif line.strip() and items:
                break
        return items
    return []


def _inline_markdown(text: str) -> str:
    """A goal line as HTML: escaped, `code`, **bold**, *italic*, $maths$ as MathML where latex2mathml is there."""
    try:
        from latex2mathml.converter import convert
    except ImportError:
        convert = None
    parts = re.split(r"(\$[^$]+\$)", text)
    out = []
    for part in parts:
        if part.startswith("$") and part.endswith("$") and len(part) > 2 and convert is not None:
            try:
                out.append(convert(part[1:-1]))
                continue
            except Exception:
                pass
        t = html.escape(part)
        t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
        t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
        t = re.sub(r"\*([^*]+)\*", r"<i>\1</i>", t)
        out.append(t)
    return "".join(out)


def render_index(chapters: list[ChapterResult], all_names: list[str], *, goals: dict | None = None,
                 out_dir: Path | None = None) -> str:
    """The book's front page: what it is, the reading order, each chapter (what the reader will be able
    to do, prerequisites, links to the page, the slides and the student notebook), then the run table."""
    from .teaching import PREREQUISITES

    goals = goals or {}
    built = {c.name: c for c in chapters}
    cards = []
    for name in all_names:
        number = name.split("_", 1)[0]
        c = built.get(name)
        title = html.escape(c.title if c else name)
        links = []
        if c is not None:
            links.append(f'<a href="{html.escape(c.page)}">read</a>')
        if out_dir is not None and (out_dir / f"slides/{name}.slides.html").exists():
            links.append(f'<a href="slides/{html.escape(name)}.slides.html">slides</a>')
        if out_dir is not None and (out_dir / f"student/{name}.ipynb").exists():
            links.append(f'<a href="student/{html.escape(name)}.ipynb" download>student notebook</a>')
        pre = PREREQUISITES.get(number)
        pre_html = f"<p class=\"pre\"><b>Before:</b> {html.escape(pre)}</p>" if pre else ""
        items = "".join(f"<li>{_inline_markdown(g)}</li>" for g in goals.get(name, []))
        items = f"<p>You will be able to</p><ul>{items}</ul>" if items else ""
        cards.append(f'<section class="chapter"><h3>{html.escape(number)} &middot; {title}</h3>'
                     f'<p class="links">{" &middot; ".join(links) or "not built yet"}</p>{pre_html}{items}</section>')
    rows = []
    for name in all_names:
        c = built.get(name)
        if c is None:
            rows.append(f"<tr><td>{html.escape(name.split('_', 1)[0])}</td><td>{html.escape(name)}</td>"
                        "<td>not built</td><td></td><td></td></tr>")
            continue
        status = "ok" if c.status == "ok" else f"FAILED at cell {c.error.cell}" if c.error else "FAILED"
        cls = "ok" if c.status == "ok" else "failed"
        rows.append(
            f'<tr><td>{html.escape(c.number)}</td><td><a href="{html.escape(c.page)}">{html.escape(c.title)}</a></td>'
            f'<td class="{cls}">{html.escape(status)}</td><td>{c.mode}</td><td class="num">{c.seconds:.1f} s</td></tr>')
    total = sum(c.seconds for c in chapters)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ddlearn: diffusion models, from noise to restoration</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.5}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.35em .7em;border-bottom:1px solid #ddd;text-align:left}}
td.num{{text-align:right}}td.ok{{color:#26a269}}td.failed{{color:#c01c28;font-weight:bold}}a{{color:#1a5fb4}}
section.chapter{{border-top:1px solid #ddd;padding:.2em 0 .6em 0}}section.chapter h3{{margin:.5em 0 .1em 0}}
p.links{{margin:.1em 0}}p.pre{{margin:.2em 0;color:#444}}section.chapter ul{{margin:.2em 0}}
.start{{background:#f3f7fc;border:1px solid #c8d8ee;padding:.6em 1em;border-radius:6px}}
</style></head><body>
<h1>ddlearn: diffusion models, from noise to restoration</h1>
<p>A notebook-first textbook on diffusion models with a small, tested PyTorch library beside it.
It walks from adding noise to data, through DDPM, score matching and score SDEs, fast samplers and
guidance, to restoring images, animating them and reconstructing medical scans with a diffusion prior.
Every chapter runs offline on a laptop CPU.</p>
<div class="start"><b>Start here.</b> Read the chapters in order: 01 &rarr; 02 &rarr; 03 &rarr; 04 &rarr; 05 &rarr; 06;
then 07, 08 and 09 in any order (each builds on 06), and 10 at any point after 05 (it builds on 04 and 05).
Each page below is the executed notebook: the sliders
are still pictures here; open the notebook in Jupyter (<code>jupyter lab chapters/</code>) to move them.
The <i>slides</i> are the same chapter as a reveal.js presentation (arrow keys; offline); the
<i>student notebook</i> is the chapter with the exercises' solutions replaced by prompts and checkers
(<code>ddlearn student</code> writes them all). A course plan is in <code>chapters/00_course.md</code>.</div>
<h2>Chapters</h2>
{chr(10).join(cards)}
<h2>Last build</h2>
<p>The chapters as last run by <code>ddlearn book</code>.</p>
<table><thead><tr><th>#</th><th>chapter</th><th>status</th><th>mode</th><th>time</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p>Total run time of the chapters listed: {total:.1f} s.</p>
</body></html>
"""


def _table_status(c: ChapterResult) -> str:
    if c.status in ("ok", "interrupted", "not run"):
        return c.status
    return f"FAILED cell {c.error.cell}" if c.error else "FAILED"


def format_table(chapters: list[ChapterResult]) -> str:
    """The per-chapter time table printed at the end of a build."""
    if not chapters:
        return "(no chapters run)"
    width = max(len(c.name) for c in chapters)
    lines = [f"{'chapter':<{width}}  {'status':<16} {'cells':>7} {'time':>9}", "-" * (width + 36)]
    for c in chapters:
        status = _table_status(c)
        cells = f"{c.cells_run:>3}/{c.cells_total:<3}" if c.status != "not run" else f"{'-':>3} {'':<3}"
        lines.append(f"{c.name:<{width}}  {status:<16} {cells} {c.seconds:>8.1f}s")
    lines.append("-" * (width + 36))
    lines.append(f"{'total':<{width}}  {'':<16} {'':>7} {sum(c.seconds for c in chapters):>8.1f}s")
    return "\n".join(lines)


# --------------------------------------------------------------------------- manifest
def _load_manifest(out_dir: Path) -> dict[str, ChapterResult]:
    path = out_dir / "book.json"
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        found = {}
        for name, d in raw.get("chapters", {}).items():
            err = d.pop("error", None)
            found[name] = ChapterResult(**d, error=CellError(**err) if err else None)
        return found
    except (ValueError, TypeError, KeyError):
        return {}  # an unreadable manifest from an older build: start afresh


def _save_manifest(out_dir: Path, chapters: dict[str, ChapterResult]) -> None:
    data = {"chapters": {name: asdict(c) for name, c in chapters.items()}}
    (out_dir / "book.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------- the build
def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask where the OS has one, else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity mask
        return max(1, os.cpu_count() or 1)


def default_jobs(n_chapters: int) -> int:
    """How many chapters ``ddlearn book`` runs at once when not told: one per usable core, at most ``n_chapters``.

    One chapter per core because each kernel runs torch with one intra-op thread (:mod:`ddlearn.config`).
    """
    return max(1, min(usable_cores(), n_chapters))


def _check_jobs(jobs) -> None:
    if jobs is None:
        return
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"jobs must be a whole number of chapters to run at once (or None for one per CPU core), "
                        f"got {jobs!r} ({type(jobs).__name__})")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1 (chapters run at once, ddlearn book --jobs N), got {jobs}")


def build_book(
    chapters_dir: str | os.PathLike = "chapters",
    out_dir: str | os.PathLike = "_build",
    *,
    fast: bool = False,
    only: list[str] | None = None,
    timeout: int = 1800,
    kernel_name: str = "python3",
    progress: bool = True,
    slides: bool = False,
    jobs: int | None = None,
    log=None,
) -> BookResult:
    """Execute the chapters and write the HTML book; see the module docstring.

    ``timeout`` is the limit for one cell in seconds. ``slides=True`` also writes each chapter as
    reveal.js slides to ``OUT/slides/NAME.slides.html`` (offline: :func:`render_slides`). The student
    copy of each chapter (:func:`ddlearn.teaching.student_notebook`) goes to ``OUT/student/``, and the
    front page ``OUT/index.html`` links the three. ``jobs`` is how many chapters run at once, each in
    its own kernel: ``None`` (the default) means one per CPU core this process may use
    (:func:`usable_cores`: ``len(os.sched_getaffinity(0))``, else ``os.cpu_count()``), and any value is
    capped at the number of chapters; ``jobs=1`` runs them one after another. The results do not depend
    on it (module docstring, point 6). ``log`` receives the lines a build prints (default:
    ``tqdm.write`` to stderr, so bars stay intact).
    Returns a :class:`BookResult`, its chapters in chapter order; ``result.ok`` is False when a chapter
    failed or a signal stopped the build (``result.signum``; see the module docstring, point 5).
    """
    from tqdm.auto import tqdm

    if not isinstance(fast, bool):
        raise TypeError(f"fast must be True or False, got {type(fast).__name__}")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    _check_jobs(jobs)
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    chapters_dir = Path(chapters_dir)
    notebooks = find_chapters(chapters_dir, only)
    all_names = [p.stem for p in find_chapters(chapters_dir)]
    jobs = default_jobs(len(notebooks)) if jobs is None else min(jobs, len(notebooks))
    out_dir = Path(out_dir)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    result = BookResult(out_dir=out_dir, jobs=jobs)
    stop = _Stop().install()
    try:
        _run_chapters(notebooks, chapters_dir, out_dir, result, stop, fast=fast, timeout=timeout,
                      kernel_name=kernel_name, progress=progress, slides=slides, jobs=jobs, log=log)
        _write_index(chapters_dir, out_dir, all_names, result)
    finally:
        stop.restore()
    result.signum = stop.signum
    return result


def _run_chapters(notebooks, chapters_dir, out_dir, result, stop, *, fast, timeout, kernel_name, progress,
                  slides, jobs, log) -> None:
    """Run the chapters in a copy of ``chapters_dir``, up to ``jobs`` at once; stop at a signal.

    Each chapter runs in a worker thread (its own event loop and kernel, :func:`run_chapter`); this
    thread hands them out in chapter order, writes each finished one to OUT as it finishes and starts
    the next, unless a signal came: then the running ones are cancelled (by :class:`_Stop`), waited
    for, and the rest are "not run". Should anything here fail, the running chapters are cancelled
    and their kernels shut down before the error goes on.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from tqdm.auto import tqdm

    mode = "fast" if fast else "full"
    with tempfile.TemporaryDirectory(prefix="ddlearn-book-") as tmp:
        workdir = Path(tmp) / "chapters"
        shutil.copytree(chapters_dir, workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build", "__pycache__"))
        bar = tqdm(total=len(notebooks), desc=f"book ({mode})", unit="chapter",
                   position=0, disable=not progress, dynamic_ncols=True)
        done: dict[int, ChapterResult] = {}
        waiting = list(enumerate(notebooks))      # (position in the book, path), in chapter order
        free_rows = list(range(jobs, 0, -1))      # screen rows for the chapters' cell bars, 1 first
        running: dict = {}                        # future -> (position, path, row)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ddlearn-chapter") as pool:
            try:
                while waiting or running:
                    while waiting and free_rows and not stop.stopping:  # a stopped book starts no chapter
                        i, path = waiting.pop(0)
                        row = free_rows.pop()
                        running[pool.submit(run_chapter, workdir / path.name, workdir, fast=fast, timeout=timeout,
                                            kernel_name=kernel_name, progress=progress, position=row,
                                            stop=stop)] = (i, path, row)
                    if not running:
                        break
                    bar.set_postfix_str(", ".join(p.stem for _, p, _ in sorted(running.values())))
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in sorted(finished, key=lambda f: running[f][0]):
                        i, path, row = running.pop(future)
                        free_rows.append(row)
                        nb, chapter = future.result()
                        done[i] = chapter
                        bar.update(1)
                        _write_chapter(nb, chapter, path, out_dir, slides=slides, log=log)
            except BaseException:
                stop.abort()
                wait(running)  # every kernel shut down before the error goes on
                raise
        bar.close()
        for i, path in waiting:
            done[i] = ChapterResult(name=path.stem, title=path.stem, status="not run", seconds=0.0, cells_run=0,
                                    cells_total=0, mode=mode)
        if waiting:
            log(f"stopped by {_signal_name(stop.signum)}; not run: {', '.join(p.stem for _, p in waiting)}")
        result.chapters = [done[i] for i in sorted(done)]


def _write_chapter(nb, chapter: ChapterResult, path: Path, out_dir: Path, *, slides: bool, log) -> None:
    """Write a finished chapter to OUT: executed notebook, page, student notebook (and slides)."""
    import nbformat

    from .teaching import student_notebook

    if chapter.status == "interrupted":  # half run: nothing of it replaces an earlier build's files
        log(f"{chapter.name} {chapter.reason}")
        return
    nbformat.write(nb, out_dir / "notebooks" / path.name)
    (out_dir / chapter.page).write_text(render_page(nb, chapter), encoding="utf-8")
    (out_dir / "student").mkdir(exist_ok=True)
    nbformat.write(student_notebook(nb), out_dir / "student" / path.name)
    if slides:
        (out_dir / "slides").mkdir(exist_ok=True)
        (out_dir / slides_page(chapter)).write_text(render_slides(nb, chapter), encoding="utf-8")
    if chapter.error is not None:
        log(f"{chapter.name} failed at cell {chapter.error.cell}: {chapter.error.ename}: {chapter.error.evalue}")


def _write_index(chapters_dir, out_dir, all_names, result) -> None:
    """Merge with earlier builds (``book.json``), relink the pages and write ``index.html``."""
    import nbformat

    # Merge with earlier builds, keep chapters that still exist and whose page is there;
    # an interrupted or unrun chapter keeps what an earlier build recorded.
    known = _load_manifest(out_dir)
    known.update({c.name: c for c in result.chapters if c.status in ("ok", "failed")})
    known = {n: known[n] for n in all_names if n in known and (out_dir / known[n].page).exists()}
    _save_manifest(out_dir, known)
    listed = [known[n] for n in all_names if n in known]
    _relink(out_dir, listed)
    goals = {}
    for path in find_chapters(chapters_dir):
        try:
            goals[path.stem] = chapter_goals(nbformat.read(path, as_version=4))
        except Exception:  # an unreadable notebook has no goals to show; its build reports the error
            goals[path.stem] = []
    (out_dir / "index.html").write_text(render_index(listed, all_names, goals=goals, out_dir=out_dir),
                                        encoding="utf-8")
