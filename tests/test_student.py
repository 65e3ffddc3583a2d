"""Student and solution notebooks from one source (ddlearn/teaching.py, `ddlearn student`), issue 16.

* jupytext keeps a cell's tags and slide metadata, in the .py and in the .ipynb, both ways;
* each student notebook is its solution notebook minus the solution cells, plus one prompt per
  solution (and the prompt keeps the checker call), with every output cleared;
* no line of a solution reaches the student notebook;
* every solution runs after its chapter's import cell, and every checker it calls accepts it;
  every checker rejects wrong answers; the stored notebooks print no "Not yet" and no hint;
* the chapters ready for teaching have at least four exercises of the four kinds.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import torch

from ddlearn import exercises, teaching

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
SOURCES = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))
#: chapters whose exercises are ready to teach from: four kinds, solutions in tagged cells that run on their own
#: after the chapter's import cell (other chapters' solutions may use the chapter's state: they run with it)
TEACHING_READY = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]
WITH_SOLUTIONS = [p for p in SOURCES if p.name[:2] in TEACHING_READY]
#: the four kinds of exercise issue 16 asks of every chapter, as the chapters label them
KINDS = (r"\((derive|derivation)\b", r"\(predict\b", r"\((implement|implementation)\b", r"\(open\)")


def _ids(paths):
    return [p.stem for p in paths]


def test_jupytext_round_trips_tags_and_slide_metadata(tmp_path):
    src = ('# %% [markdown] slideshow={"slide_type": "slide"}\n# # Title\n\n'
           '# %% tags=["solution"]\nx = 1\ncheck("01.1", x)\n\n'
           '# %% [markdown] slideshow={"slide_type": "subslide"} tags=["solution"]\n# a derivation\n')
    (tmp_path / "c.py").write_text(src)
    nb = jupytext.read(tmp_path / "c.py")
    assert nb.cells[0].metadata == {"slideshow": {"slide_type": "slide"}}
    assert nb.cells[1].metadata == {"tags": ["solution"]}
    assert nb.cells[2].metadata == {"slideshow": {"slide_type": "subslide"}, "tags": ["solution"]}
    jupytext.write(nb, tmp_path / "c.ipynb")
    back = jupytext.read(tmp_path / "c.ipynb")
    assert [c.metadata for c in back.cells] == [c.metadata for c in nb.cells]
    jupytext.write(back, tmp_path / "d.py", fmt="py:percent")
    again = jupytext.read(tmp_path / "d.py")
    assert [(c.cell_type, c.source, c.metadata) for c in again.cells] == \
        [(c.cell_type, c.source, c.metadata) for c in nb.cells]


def _tiny():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("**01.2** Write `merged(a, b)`."),
        nbformat.v4.new_code_cell("def merged(a, b):\n    return a + b - a * b  # secret\ncheck(\"01.2\", merged)",
                                  metadata={"tags": ["solution"]}, outputs=[nbformat.v4.new_output(
                                      "stream", text="Correct (01.2).\n")], execution_count=3),
        nbformat.v4.new_markdown_cell("*Solution.* the powers multiply", metadata={"tags": ["solution"]}),
        nbformat.v4.new_markdown_cell("**01.3** (open) Explore."),
        nbformat.v4.new_code_cell("print('exploring')", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("print('after')", outputs=[nbformat.v4.new_output("stream", text="after\n")],
                                  execution_count=4),
    ]
    return nb


def test_student_notebook_of_a_tiny_chapter():
    student = teaching.student_notebook(_tiny())
    src = [c.source for c in student.cells]
    assert src[1] == 'merged = None  # 01.2: def merged(a, b): ...\ncheck("01.2", merged)'
    assert src[2].startswith("**Your answer (01.2).**")
    assert src[4] == "# 01.3: your code here\n"
    assert src[5] == "print('after')"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells
               if c.cell_type == "code")
    assert [teaching.is_prompt(c) for c in student.cells] == [False, True, True, False, True, False]
    assert "secret" not in str(student) and "powers multiply" not in str(student)
    # the prompt runs: the checker says "Not yet" instead of failing
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(src[1], {"check": exercises.check})
    assert out.getvalue().startswith("Not yet (01.2")


def test_check_calls_and_signatures():
    assert teaching.check_calls('x = 1\ncheck("03.2", dsm)\n  check(\'03.4\', f)') == [("03.2", "dsm"), ("03.4", "f")]
    cell = nbformat.v4.new_code_cell("def f(a, b=1, *rest, key):\n    pass\ncheck('07.1', f)")
    assert teaching.prompt_source(cell, "07.1").splitlines()[0] == "f = None  # 07.1: def f(a, b, *rest, key): ..."


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_student_is_solution_minus_solution_cells(source):
    nb = teaching.read_chapter(source)
    student = teaching.student_notebook(nb)
    keep = teaching.without(nb, teaching.is_solution)
    rest = teaching.without(student, teaching.is_prompt)
    assert [(c.cell_type, c.source) for c in rest.cells] == [(c.cell_type, c.source) for c in keep.cells]
    assert len(student.cells) == len(nb.cells)
    for sol, stu in zip(nb.cells, student.cells):
        assert teaching.is_solution(sol) == teaching.is_prompt(stu)
        if teaching.is_solution(sol):
            assert stu.cell_type == sol.cell_type
            assert teaching.check_calls(stu.source) == teaching.check_calls(sol.source), stu.source
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert "widgets" not in student.metadata and "jupytext" not in student.metadata
    nbformat.validate(student)


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_no_solution_text_leaks_into_the_student_notebook(source):
    nb = teaching.read_chapter(source)
    student_text = "\n".join(c.source for c in teaching.student_notebook(nb).cells)
    chapter_text = "\n".join(c.source for c in nb.cells if not teaching.is_solution(c))  # what the student may see
    for cell in teaching.solution_cells(nb):
        for line in cell.source.splitlines():
            line = line.strip()
            if len(line) < 12 or teaching.check_calls(line) or re.match(r"def \w+\(.*\):$", line):
                continue  # short lines, the checker call and the signature are what the prompt keeps
            if line in chapter_text:
                continue  # a line the chapter itself shows outside its solutions (a plotting call, say)
            assert line not in student_text, f"{source.name}: solution line in the student notebook: {line!r}"


@pytest.mark.parametrize("source", WITH_SOLUTIONS, ids=_ids(WITH_SOLUTIONS))
def test_checker_calls_sit_only_in_solution_cells(source):
    """An untagged copy of a solution (its checker call outside a solution cell) would reach the student."""
    nb = teaching.read_chapter(source)
    stray = [(i, ex) for i, c in enumerate(nb.cells) if c.cell_type == "code" and not teaching.is_solution(c)
             for ex, _ in teaching.check_calls(c.source)]
    assert not stray, f"{source.name}: checker calls outside solution cells (cell, exercise): {stray}"


def _import_cell(nb) -> str:
    return next(c.source for c in nb.cells if c.cell_type == "code" and "import" in c.source)


@pytest.mark.parametrize("source", WITH_SOLUTIONS, ids=_ids(WITH_SOLUTIONS))
def test_every_stored_solution_is_accepted_by_its_checker(source, monkeypatch):
    """Run the chapter's import cell, then its solution cells in order; record every checker call."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("DDLEARN_FAST", "1")
    nb = teaching.read_chapter(source)
    verdicts = []

    def record(ex_id, answer):
        verdicts.append((ex_id, exercises.evaluate(ex_id, answer)))

    threads = torch.get_num_threads()
    ns: dict = {}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(_import_cell(nb), f"{source.name}:imports", "exec"), ns)
            ns["check"] = record
            for cell in teaching.solution_cells(nb):
                if cell.cell_type == "code":
                    exec(compile(cell.source, f"{source.name}:solution", "exec"), ns)
    finally:
        torch.set_num_threads(threads)
    called = {i for i, _ in verdicts}
    posed = {i for c in teaching.solution_cells(nb) for i, _ in teaching.check_calls(c.source)}
    assert called == posed and called, (called, posed)
    bad = [(i, v.message) for i, v in verdicts if not v.ok]
    assert not bad, bad


@pytest.mark.parametrize("ex_id", sorted(exercises.REGISTRY))
def test_every_checker_rejects_wrong_answers(ex_id):
    """Answers of the wrong kind or value: a number far off, a function returning one, a string."""
    for wrong in (-12345.678, lambda *a, **k: -12345.678, "the answer", None):
        verdict = exercises.evaluate(ex_id, wrong)
        assert not verdict.ok, (ex_id, wrong, verdict.message)
        assert verdict.message.startswith("Not yet")


@pytest.mark.parametrize("number", TEACHING_READY)
def test_teaching_ready_chapters_have_four_kinds_of_exercise(number):
    source = next(p for p in SOURCES if p.name.startswith(number))
    nb = teaching.read_chapter(source)
    posed = teaching.exercise_list(nb)
    assert len(posed) >= 4, posed
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown" and not teaching.is_solution(c))
    for kind in KINDS:
        assert re.search(r"\*\*\d\d\.\d+\*\* " + kind, text), f"{source.name} has no exercise marked {kind}"
    # every checkable exercise posed has its solution in a tagged cell
    solved = {i for c in teaching.solution_cells(nb) for i, _ in teaching.check_calls(c.source)}
    checkable = {i for i in posed if i in exercises.REGISTRY}
    assert checkable <= solved, checkable - solved
    # the student copy poses every exercise and runs each checker
    student = "\n".join(c.source for c in teaching.student_notebook(nb).cells)
    for ex_id in checkable:
        assert f'check("{ex_id}"' in student


@pytest.mark.parametrize("number", TEACHING_READY)
def test_stored_outputs_print_no_hint_and_no_failed_check(number):
    """The stored (full-mode) notebook of a ready chapter: no "Not yet", no hint text, in any output."""
    ipynb = next(p for p in CHAPTERS.glob(f"{number}_*.ipynb"))
    nb = nbformat.read(ipynb, as_version=4)
    hints = [ex.hint for ex in exercises.REGISTRY.values() if ex.id.startswith(number) and ex.hint]
    for i, cell in enumerate(nb.cells, 1):
        text = "".join("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                       for out in cell.get("outputs", []))   # a cell may print after its checker
        assert "Not yet" not in text, f"{ipynb.name} cell {i}: {text[:200]}"
        assert not any(h in text for h in hints), f"{ipynb.name} cell {i} prints a hint"
        if teaching.check_calls(cell.source):
            assert "Correct (" in text, f"{ipynb.name} cell {i}: the stored solution was not accepted"


def test_ddlearn_student_command(tmp_path, capsys):
    from ddlearn.cli import main

    assert main(["student", "--out", str(tmp_path), "--chapters", "01"]) == 0
    written = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in written] == [next(p for p in SOURCES if p.name.startswith("01")).stem + ".ipynb"]
    nb = nbformat.read(written[0], as_version=4)
    nbformat.validate(nb)
    assert any(teaching.is_prompt(c) for c in nb.cells)
    assert not any(teaching.is_solution(c) for c in nb.cells)
    assert "1 student notebook(s)" in capsys.readouterr().out
    assert main(["student", "--out", str(tmp_path), "--chapters", "77"]) == 1
    assert "no chapter numbered '77'" in capsys.readouterr().err


def _prompt_verdicts(nb) -> list[tuple[int, str]]:
    """(cell number, printed text) of every code prompt cell that calls a checker, in a run student notebook."""
    out = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code" and teaching.is_prompt(cell) and teaching.check_calls(cell.source):
            out.append((i, "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                                   for o in cell.get("outputs", []))))
    return out


#: The student copies of Chapters 01-06 run in JupyterLab in tests/test_browser.py (its cases open
#: student/NN_*.ipynb and make the same checks); the others run here, so no chapter runs twice in CI.
RUN_HERE = [n for n in TEACHING_READY if n not in ("01", "02", "03", "04", "05", "06")]


@pytest.mark.parametrize("number", RUN_HERE)
def test_student_notebook_runs_in_fast_mode_and_every_checker_says_not_yet(number, tmp_path):
    """What a student gets: every cell runs with the prompts unanswered, and each checker says "Not yet"."""
    from ddlearn import book

    source = next(p for p in SOURCES if p.name.startswith(number))
    path = tmp_path / f"{source.stem}.ipynb"
    nbformat.write(teaching.student_notebook(teaching.read_chapter(source)), path)
    nb, result = book.run_chapter(path, tmp_path, fast=True, timeout=300, kernel_name="python3", progress=False)
    assert result.status == "ok", f"{path.name}: {result.error}"
    verdicts = _prompt_verdicts(nb)
    assert verdicts, f"{path.name} has no checked prompt"
    for i, text in verdicts:
        assert text.startswith("Not yet"), f"{path.name} cell {i}: {text[:300]!r}"
