"""Chapter 07 exercise checkers accept the solution and reject wrong answers."""
import torch
import torch.nn.functional as F

from ddlearn.exercises import evaluate


def test_checkers_07():
    assert evaluate("07.1", 2000 / (2 * 196608)).ok and not evaluate("07.1", 2000 / 196608).ok
    assert evaluate("07.2", ("up", "down")).ok and not evaluate("07.2", ("down", "down")).ok
    assert not evaluate("07.2", "up").ok

    def shift(x0, y, scale):
        up = lambda v: v.repeat_interleave(4, -2).repeat_interleave(4, -1)  # noqa: E731
        return scale * (up(F.avg_pool2d(x0, 4)) - up(y))
    assert evaluate("07.3", shift).ok
    assert not evaluate("07.3", lambda x0, y, s: s * (F.avg_pool2d(x0, 4) - y)).ok
    assert evaluate("07.4", lambda u0, uy: (u0 * uy).sum() / (u0 * u0).sum()).ok
    assert not evaluate("07.4", lambda u0, uy: uy.mean() / u0.mean()).ok
    assert not evaluate("07.4", None).ok
    assert evaluate("07.5", ("darker", 0.5)).ok and evaluate("07.5", ("Darker", 0.35)).ok
    assert not evaluate("07.5", ("brighter", 2.0)).ok and not evaluate("07.5", ("darker", 1.0)).ok
    assert not evaluate("07.5", ("darker", True)).ok and not evaluate("07.5", "darker").ok
