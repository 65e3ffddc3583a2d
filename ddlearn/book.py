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
   listing every chapter with its status and run time;
4. keeps going when a chapter fails: the failure is reported with its cell
   number and error, the chapter's page shows how far it got, and
   :attr:`BookResult.ok` is False (the command then exits non-zero).

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

import copy
import html
import json
import os
import re
import shutil
import sys
import tempfile
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
    status: str                    # "ok" or "failed"
    seconds: float
    cells_run: int
    cells_total: int
    mode: str                      # "fast" or "full"
    error: CellError | None = None

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

    @property
    def ok(self) -> bool:
        return all(c.status == "ok" for c in self.chapters)

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
    """The kernel's environment: ours, plus the mode and this checkout on the path."""
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


def run_chapter(path: Path, workdir: Path, *, fast: bool, timeout: int, kernel_name: str,
                progress: bool, position: int = 1):
    """Execute one notebook (already copied into ``workdir``); return (nb, result)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    title = chapter_title(nb, path.stem)
    runnable = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    bar = tqdm(total=len(runnable), desc=f"  {path.stem}", unit="cell", leave=False,
               position=position, disable=not progress, dynamic_ncols=True)
    state = {"index": -1, "done": 0}

    def on_start(cell, cell_index):
        state["index"] = cell_index

    def on_executed(cell, cell_index, execute_reply):
        state["done"] += 1
        bar.update(1)

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_start=on_start,
        on_cell_executed=on_executed,
    )
    error = None
    start = time.perf_counter()
    # The kernel's own log (startup warnings) would tear through the progress bars;
    # keep it in a file and show its tail only if the kernel itself failed.
    kernel_log = workdir.parent / f"{path.stem}.kernel.log"
    try:
        with open(kernel_log, "w") as log_file:
            client.execute(env=kernel_env(fast), stderr=log_file)
    except Exception as exc:  # one chapter's failure must not stop the book
        error = _cell_error(nb, state["index"], exc, timeout)
        if isinstance(exc, DeadKernelError):  # its last words are in the kernel's log
            tail = kernel_log.read_text(errors="replace").strip().splitlines()[-10:]
            error.traceback = "kernel log:\n" + "\n".join(tail)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    result = ChapterResult(
        name=path.stem, title=title, status="failed" if error else "ok", seconds=seconds,
        cells_run=state["done"], cells_total=len(runnable), mode="fast" if fast else "full",
        error=error,
    )
    return nb, result


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

    exporter = HTMLExporter(template_name="lab", template_file="ddlearn_offline.html.j2",
                            extra_loaders=[jinja2.DictLoader({"ddlearn_offline.html.j2": OFFLINE_TEMPLATE})])
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(static_widget_outputs(nb), resources={"metadata": {"name": result.title}})
    body = strip_external(body)
    banner = ""
    if result.error is not None:
        banner = ('<div class="ddlearn-failed"><b>This chapter failed in the last build.</b>\n'
                  + html.escape(result.error.block(result.name)) + "\nThe cells after it did not run.</div>")
    nav = f"{_NAV_START}{_NAV_END}"
    body = math_to_mathml(body).replace("</head>", _PAGE_CSS + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav + banner, body, count=1)
    return body.replace("</body>", nav + "</body>", 1)


def _relink(out_dir: Path, chapters: list[ChapterResult]) -> None:
    """Rewrite every page's nav bars so prev/next link exactly the pages that exist."""
    pattern = re.compile(re.escape(_NAV_START) + ".*?" + re.escape(_NAV_END), re.S)
    for i, c in enumerate(chapters):
        page = out_dir / c.page
        text = page.read_text(encoding="utf-8")
        nav = _nav_html(chapters[i - 1] if i > 0 else None, chapters[i + 1] if i + 1 < len(chapters) else None)
        page.write_text(pattern.sub(lambda m: nav, text), encoding="utf-8")


def render_index(chapters: list[ChapterResult], all_names: list[str]) -> str:
    built = {c.name: c for c in chapters}
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
<html lang="en"><head><meta charset="utf-8"><title>ddlearn: contents</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.5}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.35em .7em;border-bottom:1px solid #ddd;text-align:left}}
td.num{{text-align:right}}td.ok{{color:#26a269}}td.failed{{color:#c01c28;font-weight:bold}}a{{color:#1a5fb4}}
</style></head><body>
<h1>ddlearn: diffusion models, from noise to restoration</h1>
<p>The chapters as last run by <code>ddlearn book</code>. Each page is the executed notebook;
the interactive widgets show a still image here: open the notebook in Jupyter to move them.</p>
<table><thead><tr><th>#</th><th>chapter</th><th>status</th><th>mode</th><th>time</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p>Total run time of the chapters listed: {total:.1f} s.</p>
</body></html>
"""


def format_table(chapters: list[ChapterResult]) -> str:
    """The per-chapter time table printed at the end of a build."""
    if not chapters:
        return "(no chapters run)"
    width = max(len(c.name) for c in chapters)
    lines = [f"{'chapter':<{width}}  {'status':<16} {'cells':>7} {'time':>9}", "-" * (width + 36)]
    for c in chapters:
        status = "ok" if c.status == "ok" else f"FAILED cell {c.error.cell}" if c.error else "FAILED"
        lines.append(f"{c.name:<{width}}  {status:<16} {c.cells_run:>3}/{c.cells_total:<3} {c.seconds:>8.1f}s")
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
def build_book(
    chapters_dir: str | os.PathLike = "chapters",
    out_dir: str | os.PathLike = "_build",
    *,
    fast: bool = False,
    only: list[str] | None = None,
    timeout: int = 1800,
    kernel_name: str = "python3",
    progress: bool = True,
    log=None,
) -> BookResult:
    """Execute the chapters and write the HTML book; see the module docstring.

    ``timeout`` is the limit for one cell in seconds. ``log`` receives the lines
    a build prints (default: ``tqdm.write`` to stderr, so bars stay intact).
    Returns a :class:`BookResult`; ``result.ok`` is False when a chapter failed.
    """
    import nbformat
    from tqdm.auto import tqdm

    if not isinstance(fast, bool):
        raise TypeError(f"fast must be True or False, got {type(fast).__name__}")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    log = log or (lambda line: tqdm.write(line, file=sys.stderr))
    chapters_dir = Path(chapters_dir)
    notebooks = find_chapters(chapters_dir, only)
    all_names = [p.stem for p in find_chapters(chapters_dir)]
    out_dir = Path(out_dir)
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    result = BookResult(out_dir=out_dir)

    with tempfile.TemporaryDirectory(prefix="ddlearn-book-") as tmp:
        workdir = Path(tmp) / "chapters"
        shutil.copytree(chapters_dir, workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_build", "__pycache__"))
        bar = tqdm(notebooks, desc=f"book ({'fast' if fast else 'full'})", unit="chapter",
                   position=0, disable=not progress, dynamic_ncols=True)
        for path in bar:
            bar.set_postfix_str(path.stem)
            nb, chapter = run_chapter(workdir / path.name, workdir, fast=fast, timeout=timeout,
                                      kernel_name=kernel_name, progress=progress)
            nbformat.write(nb, out_dir / "notebooks" / path.name)
            (out_dir / chapter.page).write_text(render_page(nb, chapter), encoding="utf-8")
            result.chapters.append(chapter)
            if chapter.error is not None:
                log(f"{chapter.name} failed at cell {chapter.error.cell}: {chapter.error.ename}: {chapter.error.evalue}")
        bar.close()

    # Merge with earlier builds, keep chapters that still exist and whose page is there.
    known = _load_manifest(out_dir)
    known.update({c.name: c for c in result.chapters})
    known = {n: known[n] for n in all_names if n in known and (out_dir / known[n].page).exists()}
    _save_manifest(out_dir, known)
    listed = [known[n] for n in all_names if n in known]
    _relink(out_dir, listed)
    (out_dir / "index.html").write_text(render_index(listed, all_names), encoding="utf-8")
    return result
