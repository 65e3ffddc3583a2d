"""Student and solution notebooks from one source (``ddlearn student``).

A chapter is its own solution notebook: every exercise's solution sits in the
chapter's jupytext source (``chapters/NN_name.py``) in cells tagged
``solution``::

    # %% [markdown]
    # **01.3** (implement) Write `recover_noise(x0, x_t, t, schedule)` ...

    # %% tags=["solution"]
    def recover_noise(x0, x_t, t, schedule):
        ...
    check("01.3", recover_noise)

The tag is cell metadata, which jupytext keeps in the ``.py`` header line and in
the ``.ipynb`` alike (``tests/test_student.py`` round-trips it). Nothing is written
twice: :func:`student_notebook` derives the student copy, replacing each solution
cell by a *prompt* (tagged ``exercise-prompt``):

* a code cell that calls ``check("NN.M", name)`` becomes
  ``name = None  # def name(args): ...`` followed by the same checker call, so
  the student fills in the answer and runs the checker;
* any other code cell becomes ``# NN.M: your code here``;
* a markdown cell (a derivation, a discussion) becomes
  ``**Your answer (NN.M).** ...``.

Outputs and execution counts are cleared, widget state is dropped, and the
jupytext pairing is removed (a student's copy stands alone). The exercise id of
a cell without a checker call is the last ``**NN.M**`` of the markdown above it.

Conventions a solution cell keeps (tested): it is self-contained after the
chapter's first code cell (its imports), it prints nothing that a student would
need (the checker prints ``Correct``), and the chapter's text outside solution
cells states no answer.

The HTML book and the slides show the student view of the exercises
(:func:`student_view`): solutions are for the notebook, not for the page.
"""
from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

from . import _checks

#: What a reader should know before each chapter (the front page of the HTML book and
#: chapters/00_course.md show it).
PREREQUISITES = {
    "01": "Python and NumPy/PyTorch tensors; Gaussians (mean, variance, sums of independent ones).",
    "02": "Chapter 01; maximum likelihood and KL divergence; a PyTorch training loop.",
    "03": "Chapters 01-02 (the noise-prediction loss); gradients of log-densities.",
    "04": "Chapters 01-03; ODEs and Euler's method (stochastic calculus is introduced as needed).",
    "05": "Chapters 02 and 04 (the probability-flow ODE); orders of accuracy of ODE solvers.",
    "06": "Chapters 02-03 (Tweedie's formula) and 05 (DDIM); Bayes' rule; linear least squares.",
    "07": "Chapter 06 (posterior sampling, DDNM); the image operators of Chapter 06.",
    "08": "Chapters 02 (the UNet), 05 (DDIM) and 06 (classifier-free guidance).",
    "09": "Chapter 06 (posterior sampling, data consistency); Chapter 07 helps; Fourier transforms.",
    "10": "Chapters 02 (the simple loss as a regression), 04 (the probability-flow ODE) and 05 (DDIM as Euler, orders of solvers); conditional expectations.",
}

SOLUTION = "solution"          #: the cell tag of a solution
PROMPT = "exercise-prompt"     #: the tag of a cell that replaces a solution in the student copy

_CHECK = re.compile(r"""^\s*check\(\s*["'](?P<id>\d\d\.\d+)["']\s*,\s*(?P<name>[A-Za-z_]\w*)\s*\)\s*$""", re.M)
_EXERCISE = re.compile(r"\*\*(\d\d\.\d+)\*\*")


def _check_notebook(nb, name="nb"):
    """A notebook (nbformat.NotebookNode or a dict with a list of cells), or a TypeError naming ``name``."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"{name} must be a notebook (nbformat.NotebookNode, e.g. from nbformat.read or "
                        f"ddlearn.teaching.read_chapter), got {type(nb).__name__}")
    return nb


def _check_cell(cell):
    if not isinstance(cell, dict) or "cell_type" not in cell:
        raise TypeError(f"cell must be a notebook cell (an element of nb.cells), got {type(cell).__name__}")
    return cell


def tags(cell) -> list[str]:
    _check_cell(cell)
    return list(cell.get("metadata", {}).get("tags", []))


def is_solution(cell) -> bool:
    return SOLUTION in tags(cell)


def is_prompt(cell) -> bool:
    return PROMPT in tags(cell)


def check_calls(source: str) -> list[tuple[str, str]]:
    """The ``(exercise id, answer name)`` of every ``check("NN.M", name)`` line in ``source``."""
    return [(m.group("id"), m.group("name")) for m in _CHECK.finditer(source)]


def _signature(source: str, name: str) -> str | None:
    """``name(a, b, c)`` if ``source`` defines ``name`` as a function, else None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = [a.arg for a in node.args.posonlyargs + node.args.args]
            if node.args.vararg:
                args.append("*" + node.args.vararg.arg)
            args += [a.arg for a in node.args.kwonlyargs]
            return f"{name}({', '.join(args)})"
    return None


def prompt_source(cell, exercise_id: str | None) -> str:
    """The student's cell for solution ``cell``: a prompt and the checker call (see the module docstring)."""
    _check_cell(cell)
    if exercise_id is not None and not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id must be a string such as '01.3' or None, got {type(exercise_id).__name__}")
    label = exercise_id or "this exercise"
    if cell.cell_type == "markdown":
        return (f"**Your answer ({label}).** Write your derivation or answer here "
                "(double-click to edit; LaTeX maths between `$...$`).")
    calls = check_calls(cell.source)
    if not calls:
        return f"# {label}: your code here\n"
    lines = []
    seen = set()
    for ex_id, name in calls:
        if name in seen:
            continue
        seen.add(name)
        sig = _signature(cell.source, name)
        what = f"def {sig}: ..." if sig else "your answer"
        lines.append(f"{name} = None  # {ex_id}: {what}")
    lines += [f'check("{ex_id}", {name})' for ex_id, name in calls]
    return "\n".join(lines)


def exercise_ids(nb) -> list[str | None]:
    """For each cell, the exercise it belongs to: its checker call's id, else the last ``**NN.M**`` above it."""
    _check_notebook(nb)
    current, ids = None, []
    for cell in nb.cells:
        calls = check_calls(cell.source) if cell.cell_type == "code" else []
        if cell.cell_type == "markdown" and not is_solution(cell):
            found = _EXERCISE.findall(cell.source)
            if found:
                current = found[-1]
        ids.append(calls[0][0] if calls else current)
    return ids


def _prompt_cell(cell, exercise_id):
    import nbformat

    src = prompt_source(cell, exercise_id)
    new = (nbformat.v4.new_markdown_cell(src) if cell.cell_type == "markdown"
           else nbformat.v4.new_code_cell(src))
    meta = {k: v for k, v in cell.get("metadata", {}).items()
            if k not in ("tags", "jupyter", "collapsed", "lines_to_next_cell", "execution")}
    meta["tags"] = [PROMPT]
    new.metadata = meta
    if "id" in cell:
        new["id"] = cell["id"]  # the solution's place in the notebook; ids stay unique
    else:
        new.pop("id", None)
    return new


def student_view(nb):
    """A copy of ``nb`` with each solution cell replaced by its prompt; outputs of other cells kept."""
    nb = copy.deepcopy(_check_notebook(nb))
    ids = exercise_ids(nb)
    nb.cells = [_prompt_cell(c, i) if is_solution(c) else c for c, i in zip(nb.cells, ids)]
    return nb


def student_notebook(nb):
    """The student copy of solution notebook ``nb``: prompts for solutions, every output cleared."""
    nb = student_view(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    for key in ("widgets", "jupytext"):
        nb.metadata.pop(key, None)
    return nb


def without(nb, predicate):
    """A copy of ``nb`` without the cells for which ``predicate(cell)`` is true."""
    if not callable(predicate):
        raise TypeError(f"predicate must be a function of a cell, got {type(predicate).__name__}")
    nb = copy.deepcopy(_check_notebook(nb))
    nb.cells = [c for c in nb.cells if not predicate(c)]
    return nb


def solution_cells(nb) -> list:
    _check_notebook(nb)
    return [c for c in nb.cells if is_solution(c)]


def chapter_sources(chapters_dir, only: list[str] | None = None) -> list[Path]:
    """The chapters' jupytext sources ``NN_name.py`` in order; ``only`` picks by number (01 or 1)."""
    chapters_dir = Path(chapters_dir)
    if not chapters_dir.is_dir():
        raise FileNotFoundError(f"chapters directory not found: {chapters_dir}")
    sources = sorted(p for p in chapters_dir.glob("[0-9][0-9]_*.py"))
    if not sources:
        raise FileNotFoundError(f"no chapter sources (NN_name.py) in {chapters_dir}")
    if only is None:
        return sources
    _checks.not_empty("only", only, what="chapter numbers")
    if isinstance(only, (str, int)):
        raise TypeError(f"only must be a list of chapter numbers such as ['01', '7'], got {only!r} "
                        f"(wrap one chapter in a list)")
    picked = []
    for want in only:
        want = str(want).strip()
        if not want.isdigit():
            raise ValueError(f"--chapters takes chapter numbers such as 01 or 2, got {want!r}")
        match = [p for p in sources if int(p.name[:2]) == int(want)]
        if not match:
            have = ", ".join(p.name[:2] for p in sources)
            raise ValueError(f"no chapter numbered {want!r} in {chapters_dir} (have: {have})")
        picked += [p for p in match if p not in picked]
    return sorted(picked)


def read_chapter(path) -> "nbformat.NotebookNode":  # noqa: F821
    """A chapter as a notebook: its jupytext ``.py`` source (the reviewed one), or an ``.ipynb``."""
    import jupytext

    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a file path (str or Path), got {type(path).__name__}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"path {str(path)!r}: no such chapter file")
    try:
        return jupytext.read(Path(path))
    except (ValueError, KeyError, SyntaxError) as err:  # a truncated .ipynb is not JSON (nbformat's NotJSONError)
        raise ValueError(f"path {str(path)!r} could not be read as a chapter (truncated or damaged? "
                         f"{type(err).__name__}: {str(err)[:120]})") from err


def write_student_notebooks(chapters_dir, out_dir, only: list[str] | None = None, *,
                            force: bool = False) -> list[Path]:
    """Write ``OUT/NN_name.ipynb``, the student copy of each chapter; returns the paths written.

    Nothing a reader saved is lost: a notebook already in ``out_dir`` (a student's edited copy) is replaced only
    with ``force=True``, and the chapters folder itself is refused whatever ``force`` says (its notebooks are the
    solution chapters). Every check runs before the first file is written.
    """
    import nbformat

    out_dir = Path(out_dir)
    _checks.boolean("force", force)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is a file, not a folder: pick a folder for the student notebooks")
    sources = chapter_sources(chapters_dir, only)  # every check before anything is written
    if out_dir.resolve() == Path(chapters_dir).resolve():
        raise ValueError(f"out_dir {str(out_dir)!r} is the chapters folder: the student copies would replace the "
                         "chapters and their solutions; pick another folder (e.g. _build/student)")
    paths = [out_dir / f"{src.stem}.ipynb" for src in sources]
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not force:
        names = ", ".join(p.name for p in existing[:4]) + (" ..." if len(existing) > 4 else "")
        raise ValueError(f"out_dir {str(out_dir)!r} already holds {len(existing)} of these notebooks ({names}); "
                              "a student's edits in them would be lost. Pick an empty folder, or pass force=True "
                              "(--force) to replace them")
    chapter_files = {p.resolve() for p in Path(chapters_dir).iterdir() if p.is_file()}
    for path in paths:  # a symlink (or a hard-to-see alias) into the chapters folder is refused too
        if path.resolve() in chapter_files:
            raise ValueError(f"{path} is a chapter file ({path.resolve()}); student copies never replace a chapter")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src, path in zip(sources, paths):
        nb = student_notebook(read_chapter(src))
        nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
        tmp = path.with_name(f".{path.name}.tmp")
        nbformat.write(nb, tmp)
        if path.is_symlink():
            path.unlink()  # replace the link itself, never the file it points to
        tmp.replace(path)
        written.append(path)
    return written


# --------------------------------------------------------------------------- facts for the course plan
def run_seconds(nb) -> float | None:
    """Wall time of the stored run: first cell's start to last cell's reply, from the cells'
    ``execution`` metadata that nbclient records (None if the notebook carries none)."""
    from datetime import datetime

    _check_notebook(nb)
    starts, ends = [], []
    for cell in nb.cells:
        ex = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            starts.append(datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00")))
            ends.append(datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00")))
    return (max(ends) - min(starts)).total_seconds() if starts else None


def words(nb) -> int:
    """Words of prose (markdown cells outside solutions)."""
    _check_notebook(nb)
    return sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown" and not is_solution(c))


def exercise_list(nb) -> list[str]:
    """The exercise ids a chapter poses (``**NN.M**`` in its markdown)."""
    _check_notebook(nb)
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not is_solution(cell):
            found += [i for i in _EXERCISE.findall(cell.source) if i not in found]
    return found


def main(argv=None) -> int:
    """``python -m ddlearn.teaching [chapters_dir]``: per chapter, the stored run's wall time, prose
    words, exercises and solution cells (the figures chapters/00_course.md quotes)."""
    import sys

    import nbformat

    args = sys.argv[1:] if argv is None else argv
    chapters_dir = Path(args[0]) if args else Path("chapters")
    print(f"{'chapter':<22} {'stored run':>10} {'mode':>5} {'words':>6} {'exercises':>9} {'solutions':>9}")
    for src in chapter_sources(chapters_dir):
        ipynb = src.with_suffix(".ipynb")
        nb = nbformat.read(ipynb, as_version=4) if ipynb.exists() else read_chapter(src)
        secs = run_seconds(nb)
        text = "".join("".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", []))
        mode = "full" if "full mode" in text else "fast" if "fast mode" in text else "?"
        print(f"{src.stem:<22} {f'{secs:.0f} s' if secs is not None else 'not run':>10} {mode:>5} "
              f"{words(nb):>6} {len(exercise_list(nb)):>9} {len(solution_cells(nb)):>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
