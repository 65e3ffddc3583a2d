"""Exercise checkers of Chapter 02 (DDPM), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import torch

from . import close, exercise, not_callable


@exercise("02.1", "the posterior variance at the first step",
          hint="the posterior q(x_{t-1} | x_t, x_0) is a product of two Gaussians in x_{t-1}; "
               "section 1 derives its variance. Step t = 2 sits at index 1 of the schedule's "
               "arrays, and you need alpha-bar one step earlier too")
def _(answer):
    from ..schedules import linear

    s = linear()
    return close(answer, s.betas[1] * (1 - s.alpha_bars[0]) / (1 - s.alpha_bars[1]), rtol=1e-6,
                 what="tilde-beta_2 (index 1)")


@exercise("02.2", "the reverse mean from eps",
          hint="start from the posterior mean written with x_0 and x_t, then replace x_0 by what "
               "the closed form says about x_0 given x_t and the noise; check your function "
               "against forward.q_posterior")
def _(answer):
    from ..forward import q_posterior
    from ..param import eps_to_x0
    from ..schedules import linear

    problem = not_callable(answer, "mu(x_t, eps, t, schedule)")
    if problem:
        return problem
    s = linear()
    g = torch.Generator().manual_seed(0)
    for t in (1, 100, 999):
        x_t, eps = torch.randn(4, 2, generator=g, dtype=torch.float64), torch.randn(4, 2, generator=g, dtype=torch.float64)
        mean, _, _ = q_posterior(eps_to_x0(x_t, eps, s.alpha_bars[t]), x_t, t, s)
        problem = close(answer(x_t, eps, t, s), mean, rtol=1e-6, what=f"mu at t = {t}")
        if problem:
            return problem
    return None


@exercise("02.3", "how unequal the bound's weights are",
          hint="the library computes the bound's per-step weights (see the losses module); mind "
               "which index holds which step")
def _(answer):
    from ..losses import vlb_weights
    from ..schedules import linear

    w = vlb_weights(linear())
    return close(answer, w[1] / w[999], rtol=1e-3, what="w_1 / w_999")


@exercise("02.4", "one ancestral step",
          hint="an ancestral step estimates x_0 from the predicted noise, takes the posterior "
               "mean of Chapter 02's section 1 at that estimate, and adds noise with the chosen "
               "variance except at the last index")
def _(answer):
    from ..forward import q_posterior
    from ..param import eps_to_x0
    from ..schedules import linear

    problem = not_callable(answer, "step(model, x_t, t, schedule, noise)")
    if problem:
        return problem
    s = linear()
    g = torch.Generator().manual_seed(1)

    def model(x, t):
        return torch.tanh(x) * 0.5

    for t in (0, 1, 500, 999):
        x_t, z = torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, 2, generator=g, dtype=torch.float64)
        eps = model(x_t, t)
        mean, _, _ = q_posterior(eps_to_x0(x_t, eps, s.alpha_bars[t]), x_t, t, s)
        want = mean + (s.betas[t].sqrt() * z if t > 0 else 0)
        problem = close(answer(model, x_t, t, s, z), want, rtol=1e-6, what=f"x_(t-1) at t = {t}")
        if problem:
            return problem
    return None
