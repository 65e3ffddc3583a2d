"""Each chapter is a jupytext pair: `NN_name.py` (reviewed source) and `NN_name.ipynb`
(the same cells, with the outputs of a run). The two must never drift."""
from __future__ import annotations

import difflib
from pathlib import Path

import jupytext
import pytest

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
SOURCES = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path):
    nb = jupytext.read(path)
    return [(c.cell_type, c.source) for c in nb.cells]


def _ids(paths):
    return [p.name for p in paths]


@pytest.mark.parametrize("source", SOURCES or [None], ids=_ids(SOURCES) or ["no-chapters-yet"])
def test_py_has_ipynb_with_identical_cells(source):
    if source is None:
        pytest.skip("no chapters/*.py yet")
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{source.name} has no {notebook.name}: run `jupytext --to ipynb {source}`"
    py_cells, nb_cells = _cells(source), _cells(notebook)
    for i, (a, b) in enumerate(zip(py_cells, nb_cells), start=1):
        if a != b:
            diff = "\n".join(list(difflib.unified_diff(b[1].splitlines(), a[1].splitlines(), ".ipynb", ".py",
                                                       lineterm="", n=1))[:20])
            pytest.fail(f"cell {i} differs between {source.name} and {notebook.name} "
                        f"({b[0]} vs {a[0]}); re-sync with `jupytext --sync {source}`:\n{diff}", pytrace=False)
    assert len(py_cells) == len(nb_cells), (
        f"{source.name} has {len(py_cells)} cells, {notebook.name} has {len(nb_cells)}; re-sync with jupytext")


@pytest.mark.parametrize("notebook", NOTEBOOKS or [None], ids=_ids(NOTEBOOKS) or ["no-chapters-yet"])
def test_ipynb_has_py_and_was_executed_top_to_bottom(notebook):
    if notebook is None:
        pytest.skip("no chapters/*.ipynb yet")
    assert notebook.with_suffix(".py").exists(), f"{notebook.name} has no paired .py source"
    nb = jupytext.read(notebook)
    numbered = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and c.source.strip()]
    code = [c for _, c in numbered]
    not_run = [i for i, c in numbered if c.get("execution_count") is None]
    assert not not_run, f"{notebook.name}: cells {not_run} were never executed; execute the notebook"
    assert any(c.get("outputs") for c in code), f"{notebook.name} has no outputs; execute it"
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), (
        f"{notebook.name}: execution counts {counts} are out of order: stale outputs from an "
        "interactive session; re-execute it top to bottom")
    errors = [i for i, c in numbered
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))
              and "raises-exception" not in c.get("metadata", {}).get("tags", [])]
    assert not errors, f"{notebook.name}: cells {errors} stored an error output"
