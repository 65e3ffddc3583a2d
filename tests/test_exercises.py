"""The exercise registry (ddlearn/exercises/__init__.py): evaluate, check, hint, the shared helpers, one module a chapter."""
from __future__ import annotations

import pytest
import torch

from ddlearn import exercises


def test_a_crashing_answer_is_reported_not_raised():
    def broken(*args):
        raise ZeroDivisionError("oops")

    v = exercises.evaluate("01.2", broken)
    assert not v.ok and "ZeroDivisionError: oops" in v.message
    assert not exercises.evaluate("01.1", "twelve").ok
    assert not exercises.evaluate("01.4", torch.tensor([1.0, 2.0])).ok


def test_registry():
    assert {"01.1", "01.2", "01.3", "01.4", "01.5"} <= set(exercises.REGISTRY)
    with pytest.raises(ValueError, match="unknown exercise id '99.9'"):
        exercises.evaluate("99.9", 1)
    with pytest.raises(ValueError, match="exercise id must look like"):
        exercises.exercise("7", "bad id")
    assert exercises.hint("01.4")
    assert exercises.close(1.0, 1.0) is None and "too large" in exercises.close(2.0, 1.0)


def test_each_chapter_module_registers_its_own_exercises():
    """ddlearn/exercises/chNN.py holds exactly the checkers of exercises "NN.*"."""
    for ex in exercises.REGISTRY.values():
        chapter = ex.id.split(".")[0]
        assert ex.checker.__module__ == f"ddlearn.exercises.ch{chapter}", (ex.id, ex.checker.__module__)
    assert {ex.id.split(".")[0] for ex in exercises.REGISTRY.values()} >= {"01", "02", "03", "04", "05", "06"}
    with pytest.raises(ValueError, match="already registered by ddlearn.exercises.ch01"):
        exercises.exercise("01.1", "a second 01.1")(lambda answer: None)


def test_shared_helpers():
    assert exercises.whole(37.0) == 37 and isinstance(exercises.whole(37.0), int)
    assert exercises.whole(torch.tensor(37)) == 37 and exercises.whole(torch.tensor([2.5])) == 2.5
    assert exercises.whole("37") == "37" and exercises.whole(2.5) == 2.5
    assert exercises.not_callable(len, "f") is None
    assert exercises.not_callable(3, "merged_beta") == "merged_beta should be a function, got int"
    assert exercises.close(torch.tensor([1.0, 2.0]), [1.0, 2.0]) is None
    assert "shape" in exercises.close(torch.ones(3), torch.ones(2))
    assert "NaN" in exercises.close(float("nan"), 1.0)
    assert "bool" in exercises.close(True, 1.0)
    assert "largest gap" in exercises.close(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 2.0]))
