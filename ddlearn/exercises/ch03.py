"""Exercise checkers of Chapter 03 (score matching and Langevin dynamics), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable


@exercise("03.1", "score of a Gaussian",
          hint="the score is the derivative of the log-density in x; the normalising constant drops out. "
               "Mind the sign: which way does the score point from x = 0.7?")
def _(answer):
    # the score of N(mu = 1.5, s = 0.5) at x = 0.7
    return close(answer, -(0.7 - 1.5) / 0.5 ** 2, what="the score at x = 0.7")


@exercise("03.2", "the denoising score matching target of the variance-preserving kernel",
          hint="q(x_t | x_0) is a Gaussian in x_t: write its log-density up to a constant and differentiate in x_t; "
               "its mean is not x_0")
def _(answer):
    problem = not_callable(answer, "dsm_target_vp")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    x0, xt = torch.randn(16, 2, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
    for ab in (0.9, 0.3, 0.01):
        expected = -(xt - math.sqrt(ab) * x0) / (1 - ab)
        bad = close(answer(xt, x0, ab), expected, what=f"dsm_target_vp(x_t, x0, {ab})")
        if bad:
            return bad
    return None


@exercise("03.3", "Langevin's stationary variance",
          hint="if x has variance v and is independent of z, what is the variance of x'? "
               "A stationary variance is a fixed point of that map")
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


@exercise("03.4", "Tweedie's formula (posterior mean from the score)",
          hint="differentiate p_t(x_t) = integral of q(x_t | x_0) p(x_0) under the integral; after dividing by p_t, "
               "Bayes' rule turns the integral into a posterior expectation. Check alpha_bar -> 1")
def _(answer):
    from ..param import eps_to_x0, score_to_eps

    problem = not_callable(answer, "posterior_mean")
    if problem:
        return problem
    g = torch.Generator().manual_seed(3)
    xt, score = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g, dtype=torch.float64)
    for ab in (0.95, 0.5, 0.02):
        expected = eps_to_x0(xt, score_to_eps(score, ab), ab)  # the library's conversion
        bad = close(answer(xt, score, ab), expected, what=f"posterior_mean(x_t, score, {ab})")
        if bad:
            return bad
    return None


@exercise("03.5", "Langevin with a step as large as the variance",
          hint="exercise 03.3 gives the stationary variance for any step; what is eps / s^2 here?")
def _(answer):
    s2, eps = 0.01, 0.01
    return close(answer, s2 / (1 - eps / (2 * s2)), rtol=1e-3, what="the predicted variance")


@exercise("03.6", "the score of an isotropic Gaussian mixture",
          hint="each component pulls x towards its mean, weighted by its responsibility for x; "
               "compute the responsibilities with a softmax over log-weights plus log-densities")
def _(answer):
    from ..oracles import GaussianMixture

    problem = not_callable(answer, "mixture_score")
    if problem:
        return problem
    g = torch.Generator().manual_seed(4)
    means = torch.randn(5, 3, generator=g, dtype=torch.float64) * 2
    weights = torch.softmax(torch.randn(5, generator=g, dtype=torch.float64), 0)
    mix = GaussianMixture(means, torch.full((5,), 0.3, dtype=torch.float64), weights)
    x = torch.cat([torch.randn(20, 3, generator=g, dtype=torch.float64) * 2,
                   torch.full((2, 3), 30.0, dtype=torch.float64)])  # two points far from every mean
    return close(answer(x, means, weights, 0.3), mix.score(x), rtol=1e-5, atol=1e-8,
                 what="mixture_score(x, means, weights, 0.3)")
