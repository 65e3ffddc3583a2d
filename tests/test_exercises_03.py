"""Chapter 03's exercise checkers (ddlearn/exercises/ch03.py): right answers, from the formulas written here, pass;
wrong ones do not."""
from ddlearn.exercises import evaluate


def test_checkers_03():
    assert evaluate("03.1", 3.2).ok and not evaluate("03.1", -3.2).ok  # -(0.7 - 1.5) / 0.5^2
    assert evaluate("03.2", lambda xt, x0, s: -(xt - x0) / s ** 2).ok
    assert not evaluate("03.2", lambda xt, x0, s: (xt - x0) / s ** 2).ok
    assert evaluate("03.3", lambda s2, eps: s2 / (1 - eps / (2 * s2))).ok
    assert not evaluate("03.3", lambda s2, eps: s2).ok  # the target variance, not the chain's
    assert not evaluate("03.2", 1.0).ok and not evaluate("03.3", None).ok
