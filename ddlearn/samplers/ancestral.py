r"""Ancestral sampling (Ho et al. 2020, Algorithm 2): walk the learned reverse chain.

At every integer step t = T-1, ..., 0 the network's eps gives a clean-sample
guess :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`,
and the next state is drawn from the forward posterior with that guess
plugged in,

.. math:: x_{t-1} \sim \mathcal N\big(\tilde\mu_t(\hat x_0, x_t),\ \sigma_t^2 I\big),

which is the same mean as the paper's
:math:`(x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon)/\sqrt{\alpha_t}`.
``variance="beta"`` takes :math:`\sigma_t^2=\beta_t` (right when x_0 ~ N(0, I)),
``"beta_tilde"`` the posterior's :math:`\tilde\beta_t` (right when x_0 is a
single point); Ho et al. found both give similar samples. No noise is added
at the last step. ``clip_x0=(lo, hi)`` clamps the clean guess before it is
used (the "clipped" sampler of the DDPM code, for data known to lie in [-1, 1]).
"""
from __future__ import annotations

import torch

from .. import _checks, param
from ..forward import q_posterior
from ..config import randn_like
from .base import Step, check_inputs, declare, eval_eps, progress_bar
from .ddim import check_clip


@declare(evals_per_step=1)
@torch.no_grad()
def sample_ancestral(model, x_T: torch.Tensor, schedule, *, variance: str = "beta", clip_x0=None,
                     generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    """DDPM ancestral sampling from ``x_T`` over all T steps of ``schedule``; returns x_0.

    ``callback(Step(i, t, x, x0))`` is called after each step with the new
    state and the step's x0 guess.
    """
    check_inputs(model, x_T, schedule, generator=generator, callback=callback)
    _checks.choice("variance", variance, ("beta", "beta_tilde"))
    if clip_x0 is not None:
        lo, hi = check_clip(clip_x0, "clip_x0")
    T, x = schedule.T, x_T
    sigma2 = schedule.betas if variance == "beta" else None
    for i, t in enumerate(progress_bar(range(T - 1, -1, -1), progress=progress, desc="ancestral", total=T)):
        eps = eval_eps(model, x, t, step=i)
        x0 = param.eps_to_x0(x, eps, schedule.alpha_bars[t])
        if clip_x0 is not None:
            x0 = x0.clamp(lo, hi)
        mean, post_var, _ = q_posterior(x0, x, t, schedule)
        if t > 0:
            var = sigma2[t] if sigma2 is not None else post_var.reshape(-1)[0]
            noise = randn_like(x, generator)
            x = mean + var.sqrt().to(x.dtype) * noise
        else:
            x = mean  # = x0 at t = 0
        if callback is not None:
            callback(Step(i, float(t), x, x0))
    return x
