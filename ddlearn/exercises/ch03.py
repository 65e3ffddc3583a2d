"""Exercise checkers of Chapter 03 (score matching and Langevin dynamics), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import torch

from . import close, exercise, not_callable


@exercise("03.1", "score of a Gaussian",
          hint="log N(x; mu, s^2) = -(x - mu)^2 / (2 s^2) + const; differentiate in x")
def _(answer):
    # the score of N(mu = 1.5, s = 0.5) at x = 0.7
    return close(answer, -(0.7 - 1.5) / 0.5 ** 2, what="the score at x = 0.7")


@exercise("03.2", "the denoising score matching target",
          hint="q(x_tilde | x0) = N(x0, sigma^2 I): its score in x_tilde is -(x_tilde - x0) / sigma^2")
def _(answer):
    problem = not_callable(answer, "dsm_target")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    x0, xt = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)
    return close(answer(xt, x0, 0.3), -(xt - x0) / 0.3 ** 2, what="dsm_target(x_tilde, x0, 0.3)")


@exercise("03.3", "Langevin's stationary variance",
          hint="for N(0, s2) the chain is x' = (1 - eps/s2) x + sqrt(2 eps) z; a stationary v solves v = (1 - eps/s2)^2 v + 2 eps")
def _(answer):
    problem = not_callable(answer, "stationary_variance")
    if problem:
        return problem
    for s2, eps in ((1.0, 0.1), (0.25, 0.01), (4.0, 0.5)):
        expected = 2 * eps / (1 - (1 - eps / s2) ** 2)  # = s2 / (1 - eps / (2 s2))
        bad = close(answer(s2, eps), expected, rtol=1e-6, what=f"stationary_variance({s2}, {eps})")
        if bad:
            return bad
    return None
