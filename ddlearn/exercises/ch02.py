"""Exercise checkers of Chapter 02 (DDPM), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import torch

from . import close, exercise, not_callable


@exercise("02.1", "the posterior variance at the first step",
          hint="tilde-beta_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t); use t = 1 of schedules.linear()")
def _(answer):
    from ..schedules import linear

    s = linear()
    return close(answer, s.betas[1] * (1 - s.alpha_bars[0]) / (1 - s.alpha_bars[1]), rtol=1e-6,
                 what="tilde-beta at t = 1")


@exercise("02.2", "the reverse mean from eps",
          hint="mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t)")
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
          hint="losses.vlb_weights(schedule) gives w_t; divide the weight at t = 1 by the weight at t = 999")
def _(answer):
    from ..losses import vlb_weights
    from ..schedules import linear

    w = vlb_weights(linear())
    return close(answer, w[1] / w[999], rtol=1e-3, what="w_1 / w_999")


@exercise("02.4", "one ancestral step",
          hint="x0_hat from eps (param.eps_to_x0), then the posterior mean (forward.q_posterior), "
               "plus sqrt(beta_t) * noise when t > 0")
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
