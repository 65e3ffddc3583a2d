"""Chapter 01's exercise checkers (ddlearn/exercises/ch01.py) accept right answers computed here and refuse wrong ones."""
from __future__ import annotations

import math

import pytest

from ddlearn import exercises, schedules


def _answers_01():
    """Correct answers computed here, independently of the checkers."""
    ab = schedules.linear().alpha_bars
    first = next(t for t in range(1000) if math.sqrt(float(ab[t])) < 0.1)
    cos_ab = schedules.cosine().alpha_bars
    cross = next(t for t in range(1000) if float(cos_ab[t]) < 1 / 11)  # SNR = 0.1 <=> alpha_bar = 1/11
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
        "01.6": lambda ab_s, ab_t: (math.sqrt(ab_t / ab_s), 1 - ab_t / ab_s),
        "01.7": sum(float(b) for b in schedules.cosine().betas),
    }


WRONG_01 = {
    "01.1": 3,
    "01.2": lambda b1, b2: b1 + b2,
    "01.3": lambda x0, xt, t, s: xt - x0,
    "01.4": 100.0,
    "01.5": 1.0,
    "01.6": lambda ab_s, ab_t: (ab_t / ab_s, 1 - ab_t / ab_s),  # the variance ratio as the scale
    "01.7": sum(float(b) for b in schedules.linear().betas),    # the linear schedule's sum
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
