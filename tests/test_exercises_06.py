"""Chapter 06's exercise checkers (ddlearn/exercises/ch06.py) accept the solution and reject a wrong answer."""
from ddlearn.exercises import evaluate


def test_checkers_06():
    assert evaluate("06.1", 3).ok and not evaluate("06.1", 2).ok
    assert evaluate("06.2", 0.8).ok and not evaluate("06.2", 1.0).ok
    assert evaluate("06.3", lambda x0, y, m: m * y + (1 - m) * x0).ok
    assert not evaluate("06.3", lambda x0, y, m: y).ok
    assert not evaluate("06.3", None).ok
