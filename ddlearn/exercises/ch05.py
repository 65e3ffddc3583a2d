"""Exercise checkers of Chapter 05 (fast samplers), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable, whole


@exercise("05.1", "one DDIM step",
          hint="a deterministic DDIM step estimates x_0 from eps, then rebuilds a state at the "
               "new alpha-bar from that estimate and the same eps")
def _(answer):
    return _same_as_ddim(answer, "ddim_step", 5, [(0.01, 0.2), (0.5, 0.9), (0.9, 1.0)])


def _same_as_ddim(answer, name: str, seed: int, pairs) -> str | None:
    """``answer(x, eps, ab_t, ab_s)`` against DDIM's deterministic step for each pair of alpha-bars."""
    if (problem := not_callable(answer, name)) is not None:
        return problem
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    for ab_t, ab_s in pairs:
        x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        expected = math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps
        if (problem := close(answer(x, eps, ab_t, ab_s), expected, rtol=1e-6, atol=1e-9,
                             what=f"{name}(x, eps, {ab_t}, {ab_s})")):
            return problem
    return None


@exercise("05.2", "evaluations of DPM-Solver-3",
          hint="count the model calls of each step of a third-order solver, and ask what the "
               "last step to the clean data does differently; CountedModel verifies your count")
def _(answer):
    answer = whole(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return f"the answer is a whole number of model evaluations; got {answer!r}"
    return None if answer == 3 * (6 - 1) + 1 else f"{answer} is not it: count the evaluations of 6 steps"


@exercise("05.3", "the timestep of a noise level",
          hint="relate sigma to alpha-bar through the signal-to-noise ratio; the schedule can "
               "turn a log-SNR into a fractional timestep")
def _(answer):
    from ..samplers.spacing import t_from_sigma
    from ..schedules import linear

    if (problem := not_callable(answer, "t_of_sigma")) is not None:
        return problem
    sch = linear()
    for sigma in (0.02, 0.5, 1.0, 10.0, 100.0):
        got = answer(sch, sigma)
        if (problem := close(got, float(t_from_sigma(sch, sigma)), rtol=0, atol=0.5,
                             what=f"t_of_sigma(linear(), {sigma}) (within half a step)")):
            return problem
    return None


@exercise("05.4", "order from two errors",
          hint="an order-p method's error scales like C h^p; what does doubling the number of "
               "steps do to h, and so to the error?")
def _(answer):
    return close(answer, math.log2(4.0e-3 / 5.0e-4), rtol=0, atol=0.05, what="the order p")


@exercise("05.5", "DDIM as Euler on the probability-flow ODE",
          hint="in the coordinates xbar = x / sqrt(alpha_bar) and sigma = sqrt((1 - alpha_bar) / alpha_bar) the "
               "probability-flow ODE is dxbar/dsigma = eps; take one Euler step in sigma, then map back")
def _(answer):
    # Euler in sigma from ab_t to ab_s is DDIM's step, exactly: the same map for every pair
    return _same_as_ddim(answer, "euler_in_sigma", 7, [(0.01, 0.2), (0.5, 0.9), (0.3, 0.31)])


@exercise("05.8", "where the trapezoid beats Euler in the last step",
          hint="write the three shrink factors with u = s^2 / (s^2 + sigma^2): sqrt(u), u and (1 + u) / 2; "
               "which side of sqrt(u) is each, and when is the trapezoid's gap the smaller?")
def _(answer):
    return close(answer, 1 / math.sqrt(8), rtol=0, atol=2e-3, what="the ratio s / sigma")
