"""Chapter 10's exercise checkers (ddlearn/exercises/ch10.py) accept right answers and refuse wrong ones."""
import torch

from ddlearn import param
from ddlearn.exercises import evaluate


def test_10_1_score_from_velocity():
    right = lambda x, v, u: -(x + (1 - u) * v) / u                    # noqa: E731  eps = x + (1-u) v; score = -eps/u
    through_param = lambda x, v, u: -param.velocity_to_eps(x, v, 1 - u, u, -1.0, 1.0) / u  # noqa: E731
    assert evaluate("10.1", right).ok and evaluate("10.1", through_param).ok
    assert not evaluate("10.1", lambda x, v, u: -(x + (1 - u) * v) / u ** 2).ok   # the VP sigma mixed up
    assert not evaluate("10.1", lambda x, v, u: -(x + u * v) / u).ok                # the wrong coefficient
    assert not evaluate("10.1", lambda x, v, u: v).ok


def test_10_2_euler_step():
    def right(model, x, u, u_next):
        return x + (u_next - u) * model(x, torch.full((x.shape[0],), u * 999))

    def time_as_u(model, x, u, u_next):            # forgets that the model's clock is t = u (T - 1)
        return x + (u_next - u) * model(x, torch.full((x.shape[0],), u))

    def wrong_sign(model, x, u, u_next):
        return x + (u - u_next) * model(x, torch.full((x.shape[0],), u * 999))

    assert evaluate("10.2", right).ok
    assert not evaluate("10.2", time_as_u).ok and not evaluate("10.2", wrong_sign).ok


def test_10_3_gaussian_velocity():
    def right(x, u, mu, c):
        a, s = 1 - u, u
        var = a * a * c + s * s
        return s / var * (x - a * mu) - (mu + a * c / var * (x - a * mu))

    def conditional(x, u, mu, c):                   # eps - x0 with the means of the prior, not the posterior
        return x * 0 - mu

    assert evaluate("10.3", right).ok
    assert not evaluate("10.3", conditional).ok
    assert not evaluate("10.3", lambda x, u, mu, c: (x - mu) / max(u, 1e-3)).ok   # a point mass's velocity


def test_10_4_and_10_5():
    assert evaluate("10.4", 1).ok and evaluate("10.4", 1.0).ok and evaluate("10.4", torch.tensor(1)).ok
    assert not evaluate("10.4", 2).ok and not evaluate("10.4", "1").ok and not evaluate("10.4", 0).ok
    assert evaluate("10.5", lambda u: 1 / (1 - u) ** 2).ok
    assert not evaluate("10.5", lambda u: (1 - u) ** 2).ok and not evaluate("10.5", lambda u: 1 / u ** 2).ok
    assert not evaluate("10.5", lambda u: 1.0).ok
