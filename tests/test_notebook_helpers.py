"""show_source and the exercise checkers."""
from __future__ import annotations

import math

import pytest
import torch

from ddlearn import exercises, forward, schedules
from ddlearn.notebook import Source, show_source


def test_show_source_of_a_function():
    src = show_source(forward.q_sample)
    assert isinstance(src, Source)
    text = str(src)
    assert text.startswith("# ddlearn/forward.py:") and "def q_sample(" in text and "return mean + std * noise" in text
    html = src._repr_html_()
    assert "ddlearn/forward.py" in html and "<span" in html and "q_sample" in html
    assert "style=" in html  # inline colours: no stylesheet needed in the book or on a code host


def test_show_source_without_docstring_and_of_other_objects():
    full, bare = str(show_source(forward.q_sample)), str(show_source(forward.q_sample, docstring=False))
    assert "Draw x_t ~ q(x_t | x_0) in closed form" in full and "closed form" not in bare
    assert "return mean + std * noise" in bare
    compile(bare.split("\n", 1)[1], "<bare>", "exec")  # still valid Python
    assert "def alpha_bars" in str(show_source(schedules.Schedule.alpha_bars))  # a property
    assert "class Schedule" in str(show_source(schedules.Schedule))
    assert "def alpha_bar" in str(show_source(schedules.linear().alpha_bar))  # a bound method
    with pytest.raises(TypeError, match="function, method, property or class"):
        show_source(3)


def _answers_01():
    """Correct answers computed here, independently of the checkers."""
    ab = schedules.linear().alpha_bars
    first = next(t for t in range(1000) if math.sqrt(float(ab[t])) < 0.1)
    cos_ab = schedules.cosine().alpha_bars
    cross = next(t for t in range(1000) if float(cos_ab[t]) < 0.5)  # SNR = 1 <=> alpha_bar = 1/2
    a = float(ab[-1])

    def recover(x0, xt, t, s):
        abt = s.alpha_bar(t).reshape(-1, *[1] * (x0.ndim - 1)).to(x0.dtype)
        return (xt - abt.sqrt() * x0) / (1 - abt).sqrt()

    return {
        "01.1": first,
        "01.2": lambda b1, b2: b1 + b2 - b1 * b2,
        "01.3": recover,
        "01.4": cross - 0.5,
        "01.5": 0.5 * (4 * a - a - math.log(1 - a)),
    }


WRONG_01 = {
    "01.1": 3,
    "01.2": lambda b1, b2: b1 + b2,
    "01.3": lambda x0, xt, t, s: xt - x0,
    "01.4": 100.0,
    "01.5": 1.0,
}


@pytest.mark.parametrize("ex_id", sorted(_answers_01()))
def test_chapter01_checkers(ex_id, capsys):
    right = exercises.evaluate(ex_id, _answers_01()[ex_id])
    assert right.ok and right.message.startswith("Correct"), right.message
    wrong = exercises.evaluate(ex_id, WRONG_01[ex_id])
    assert not wrong.ok and wrong.message.startswith("Not yet") and "Hint:" in wrong.message
    empty = exercises.evaluate(ex_id, None)
    assert not empty.ok and "no answer" in empty.message
    exercises.check(ex_id, WRONG_01[ex_id])
    assert capsys.readouterr().out.startswith("Not yet")


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
