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
    # 05.8: s / sigma > 1 / sqrt(8); 1 - 1 / sqrt(2) is what the small-u approximation of the factors gives
    assert evaluate("05.8", 0.3536).ok and not evaluate("05.8", 1 - 1 / math.sqrt(2)).ok


def test_chapter05_euler_in_sigma_is_ddim_and_euler_in_t_is_not():
    def euler_in_sigma(x, e, a, b):
        sa, sb = math.sqrt((1 - a) / a), math.sqrt((1 - b) / b)
        return math.sqrt(b) * (x / math.sqrt(a) + (sb - sa) * e)

    def euler_in_alpha_bar(x, e, a, b):  # an Euler step of the VP probability-flow ODE in alpha-bar: first order
        # dx/d(ab) = x / (2 ab) - eps / (2 ab sqrt(1 - ab)), from x = sqrt(ab) x0 + sqrt(1 - ab) eps
        return x + (b - a) * (x / (2 * a) - e / (2 * a * math.sqrt(1 - a)))

    assert evaluate("05.5", euler_in_sigma).ok
    assert not evaluate("05.5", euler_in_alpha_bar).ok
