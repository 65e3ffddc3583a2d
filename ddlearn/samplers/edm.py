r"""Euler and Heun samplers in the style of EDM (Karras et al. 2022, "Elucidating the design space...").

EDM works in the variance-exploding view :math:`y = x_0 + \sigma\epsilon`,
here :math:`y = x/\sqrt{\bar\alpha_t}` and :math:`\sigma(t) = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}`
(``schedule.sigma(t)``). Its probability-flow ODE is

.. math:: \frac{dy}{d\sigma} = \frac{y - D(y;\sigma)}{\sigma} = \hat\epsilon\big(y/\sqrt{1+\sigma^2},\ t(\sigma)\big),

where :math:`D` is the denoiser (the x_0 prediction) and the network, trained
on the discrete schedule, is asked at the fractional timestep
:math:`t(\sigma)` whose noise level is sigma (:func:`spacing.t_from_sigma`),
on the input :math:`x = \sqrt{\bar\alpha}\,y = y/\sqrt{1+\sigma^2}`.

* Euler: :math:`y_{i+1} = y_i + (\sigma_{i+1}-\sigma_i)\,d_i`. On the same
  timesteps this *is* DDIM (see :mod:`ddlearn.samplers.ddim`).
* Heun (EDM Algorithm 1): an Euler predictor, then the trapezoid rule with the
  slope at the predicted point: second order at two evaluations per step. The
  last step, to sigma = 0, stays Euler (the slope there is undefined), so N
  steps cost 2N - 1 evaluations.
* Churn (EDM Algorithm 2): before a step at a level in [S_tmin, S_tmax], raise
  the noise from sigma_i to sigma_hat = sigma_i (1 + gamma),
  gamma = min(S_churn / N, sqrt(2) - 1), by adding fresh noise of std
  S_noise sqrt(sigma_hat^2 - sigma_i^2): a little Langevin-like exploration
  that corrects accumulated error. S_churn = 0 (default) is the plain ODE.

Default grids (measured, ``benchmarks/samplers.py``; table in
:mod:`ddlearn.samplers.spacing`): Heun ``"trailing"``, Euler ``"quadratic"``
(Euler is DDIM on the same grid, so it takes DDIM's). EDM's own rho = 7 grid is
``spacing="karras"`` (:func:`ddlearn.schedules.karras_sigmas`): at 10 evaluations
(5 Heun steps) on the four exact mixtures tight, broad, multiscale and cross its
samples were 3 to 10 times further from the truth in sliced Wasserstein than
with trailing (0.70-1.37 against 0.14-0.20).
"""
from __future__ import annotations

import math

import torch

from .. import _checks
from ..config import randn_like
from .base import Step, check_inputs, declare, eval_eps, progress_bar
from .spacing import t_from_sigma, time_grid


def _sigmas(schedule, ts):
    """Noise levels at the timesteps, then 0 for the clean end."""
    return schedule.sigma(ts).tolist() + [0.0]


def _slope(model, y, sigma, t, step):
    """dy/dsigma = eps at (VP input y / sqrt(1 + sigma^2), t); also returns the x0 prediction y - sigma eps."""
    eps = eval_eps(model, y / math.sqrt(1 + sigma ** 2), t, step=step)
    return eps, y - sigma * eps


@declare(evals_per_step=1)
@torch.no_grad()
def sample_euler(model, x_T, schedule, steps, *, spacing="quadratic", generator=None, callback=None,
                 progress=True):
    """Euler on the probability-flow ODE in sigma: ``steps`` evaluations (deterministic).

    It is DDIM on the same grid, so it takes DDIM's default grid. Default grid: ``spacing="quadratic"``
    (chosen by measurement: ``benchmarks/samplers.py``, 10 evaluations, the smallest worst-case loss against this sampler's best grid over the panel; see :mod:`ddlearn.samplers.spacing`).
    """
    return sample_heun(model, x_T, schedule, steps, spacing=spacing, generator=generator,
                       callback=callback, progress=progress, second_order=False)


@declare(evals_per_step=2)
@torch.no_grad()
def sample_heun(model, x_T, schedule, steps, *, spacing="trailing", S_churn=0.0, S_tmin=0.0,
                S_tmax=float("inf"), S_noise=1.0, generator=None, callback=None, progress=True,
                second_order=True):
    """EDM's Heun sampler (2 steps - 1 evaluations), with optional stochastic churn.

    ``S_churn`` etc. are EDM's Algorithm 2 knobs (sigma units); churn needs
    ``generator`` for its fresh noise. ``second_order=False`` is Euler.
    Default grid: ``spacing="trailing"``
    (chosen by measurement: ``benchmarks/samplers.py``, 10 evaluations, the smallest worst-case loss against this sampler's best grid over the panel; see :mod:`ddlearn.samplers.spacing`).
    """
    check_inputs(model, x_T, schedule, generator=generator, callback=callback)
    _checks.number("S_churn", S_churn, low=0)
    _checks.number("S_noise", S_noise, low=0)
    for name, v in (("S_tmin", S_tmin), ("S_tmax", S_tmax)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
            raise ValueError(f"{name} must be a non-negative number (sigma units), got {v!r}")
    ts = time_grid(schedule, steps, spacing)
    sig = _sigmas(schedule, ts)
    sigma_top = schedule.sigmas[-1].item()  # the model knows no noisier level
    y = x_T * math.sqrt(1 + sig[0] ** 2)  # x_T is the VP sample at t_0; y = x / sqrt(alpha_bar)
    desc = "Heun" if second_order else "Euler"
    for i in progress_bar(range(steps), progress=progress, desc=desc):
        s, s_next = sig[i], sig[i + 1]
        gamma = min(S_churn / steps, math.sqrt(2) - 1) if S_tmin <= s <= S_tmax else 0.0
        s_hat = min(s * (1 + gamma), sigma_top)
        if s_hat > s:
            z = randn_like(y, generator)
            y = y + S_noise * math.sqrt(s_hat ** 2 - s ** 2) * z
        t_hat = ts[i].item() if s_hat == s else t_from_sigma(schedule, torch.tensor(s_hat)).item()
        d, x0 = _slope(model, y, s_hat, t_hat, i)
        y_next = y + (s_next - s_hat) * d
        if second_order and s_next > 0:
            d_next, _ = _slope(model, y_next, s_next, ts[i + 1].item(), i)
            y_next = y + (s_next - s_hat) * (d + d_next) / 2
        y = y_next
        if callback is not None:  # report the VP state, as every other sampler does
            callback(Step(i, ts[i].item(), y / math.sqrt(1 + s_next ** 2), x0))
    return y
