"""Chapter 05's exercise checkers (ddlearn/exercises/ch05.py) accept right answers and refuse wrong ones."""
import math

from ddlearn.exercises import evaluate
from ddlearn.samplers.spacing import t_from_sigma


def test_chapter05_checkers_accept_right_and_reject_wrong():
    right_ddim = lambda x, e, a, b: math.sqrt(b) * (x - math.sqrt(1 - a) * e) / math.sqrt(a) + math.sqrt(1 - b) * e
    assert evaluate("05.1", right_ddim).ok and not evaluate("05.1", lambda x, e, a, b: x).ok
    assert evaluate("05.2", 16).ok and not evaluate("05.2", 18).ok and not evaluate("05.2", "16").ok
    assert evaluate("05.3", lambda s, sig: float(t_from_sigma(s, sig))).ok
    assert not evaluate("05.3", lambda s, sig: 500.0).ok
    assert evaluate("05.4", 3.0).ok and not evaluate("05.4", 2.0).ok
