r"""The forward (noising) process q.

* :func:`q_sample` - the closed form :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon`.
* :func:`q_step` - one step of the chain :math:`x_t = \sqrt{1-\beta_t} x_{t-1} + \sqrt{\beta_t}\,\epsilon`.
* :func:`noise_chain` - the chain run step by step from x_0, keeping chosen steps,
  to compare with the closed form (Chapter 01).

Time follows :mod:`ddlearn.schedules`: t in 0..T-1, 0 the least noisy.
"""
from __future__ import annotations

import math

import torch

from . import _checks
from .config import randn_like
from .param import per_item
from .schedules import Schedule, check_schedule


def q_mean_std(x0: torch.Tensor, t, schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean sqrt(abar_t) x0 and standard deviation sqrt(1 - abar_t) of q(x_t | x_0)."""
    check_schedule(schedule)
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    tt = _checks.timesteps("t", t, schedule.T, batch=x0.shape[0])
    ab = schedule.alpha_bar(tt)
    return per_item(ab.sqrt(), x0) * x0, per_item((1 - ab).sqrt(), x0)


def q_sample(x0: torch.Tensor, t, noise: torch.Tensor | None = None, schedule: Schedule | None = None,
             *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) in closed form.

    ``t`` is an int/float or a tensor of shape (B,) in [0, T-1]; ``noise`` is
    eps ~ N(0, I) with x0's shape (drawn from ``generator`` when omitted).
    """
    if schedule is None:
        raise TypeError("q_sample needs a schedule, e.g. q_sample(x0, t, noise, schedules.linear())")
    mean, std = q_mean_std(x0, t, schedule)
    if noise is None:
        noise = randn_like(x0, generator)
    else:
        _checks.tensor("noise", noise)
        _checks.same_shape("x0", x0, "noise", noise)
    return mean + std * noise


def q_step(x_prev: torch.Tensor, t, schedule: Schedule, noise: torch.Tensor | None = None,
           *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One step of the chain: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps (t integer)."""
    check_schedule(schedule)
    _checks.tensor("x_prev", x_prev, ndim=tuple(range(2, 6)))
    tt = _checks.timesteps("t", t, schedule.T, batch=x_prev.shape[0], integer=True).long()
    if noise is None:
        noise = randn_like(x_prev, generator)
    else:
        _checks.tensor("noise", noise)
        _checks.same_shape("x_prev", x_prev, "noise", noise)
    if bool((tt == tt[0]).all()):  # one t for the batch: scalar coefficients, fewer tensor ops
        return _step(x_prev, float(schedule.betas[tt[0]]), noise)
    beta = schedule.betas[tt]
    return per_item((1 - beta).sqrt(), x_prev) * x_prev + per_item(beta.sqrt(), x_prev) * noise


def _step(x: torch.Tensor, beta: float, noise: torch.Tensor) -> torch.Tensor:
    """The chain step with a scalar beta, no checks (callers check once)."""
    return math.sqrt(1.0 - beta) * x + math.sqrt(beta) * noise


def noise_chain(x0: torch.Tensor, schedule: Schedule, keep=None, *,
                generator: torch.Generator | None = None) -> dict[int, torch.Tensor]:
    """Run the chain x_0 -> x_0' -> ... step by step; return {t: x_t} for t in ``keep``.

    ``keep`` is an iterable of integer timesteps (default: every step). The
    chain stops at the largest kept step, so short prefixes are cheap.
    """
    check_schedule(schedule)
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    if keep is None:
        keep = list(range(schedule.T))
    else:
        if isinstance(keep, (int, float)):
            keep = [keep]
        keep = torch.as_tensor(list(keep), dtype=torch.float64)
        if keep.numel() == 0:
            raise ValueError("keep must name at least one timestep")
        # whole steps only: the chain has no state between grid points
        keep = sorted({int(k) for k in _checks.timesteps("keep", keep, schedule.T, integer=True)})
    wanted, out, x = set(keep), {}, x0
    betas = schedule.betas.tolist()
    for t in range(keep[-1] + 1):
        # the same draws as q_step(x, t, schedule, generator=generator), without re-checking x each step
        x = _step(x, betas[t], randn_like(x, generator))
        if t in wanted:
            out[t] = x
    return out


def q_posterior(x0: torch.Tensor, x_t: torch.Tensor, t, schedule: Schedule):
    r"""The forward posterior q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).

    For integer ``t`` >= 1 (x_{-1} is read as x_0 itself at t = 0, the decoder step)

    .. math::
        \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0
                    + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,
        \qquad
        \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .

    Returns ``(mean, variance, log_variance_clipped)``; variance and log-variance
    have shape (B, 1, ...) and broadcast over x. At t = 0, tilde-beta is 0 (x_0 is
    known), so the log-variance is clipped to that of t = 1, as in the paper's code.
    """
    check_schedule(schedule)
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    _checks.tensor("x_t", x_t, ndim=tuple(range(2, 6)))
    _checks.same_shape("x0", x0, "x_t", x_t)
    tt = _checks.timesteps("t", t, schedule.T, batch=x0.shape[0], integer=True).long()
    beta, alpha = schedule.betas[tt], schedule.alphas[tt]
    ab, ab_prev = schedule.alpha_bars[tt], schedule.alpha_bars_prev[tt]
    coef_x0 = ab_prev.sqrt() * beta / (1 - ab)
    coef_xt = alpha.sqrt() * (1 - ab_prev) / (1 - ab)
    var = beta * (1 - ab_prev) / (1 - ab)
    # log of tilde-beta with t = 0 replaced by tilde-beta at t = 1 (finite; T = 1 keeps beta_0)
    all_var = schedule.betas * (1 - schedule.alpha_bars_prev) / (1 - schedule.alpha_bars)
    floor = all_var[1] if schedule.T > 1 else schedule.betas[0]
    log_var = torch.log(torch.cat([floor.reshape(1), all_var[1:]]))[tt]
    mean = per_item(coef_x0, x0) * x0 + per_item(coef_xt, x0) * x_t
    return mean, per_item(var, x0), per_item(log_var, x0)
