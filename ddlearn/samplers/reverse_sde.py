r"""Reverse-time SDE samplers (Song et al. 2021): Euler-Maruyama and predictor-corrector.

Same signature as every sampler (:mod:`ddlearn.samplers`)::

    sample_NAME(model, x_T, schedule, steps, *, sde=None, generator=None,
                callback=None, progress=True, u_min=1e-3, ...)

* ``model(x_in, t) -> eps`` as everywhere; ``schedule`` is the model's *time
  frame*: a :class:`~ddlearn.schedules.Schedule` (trained on discrete steps)
  or a :class:`~ddlearn.sde.SDE` (trained in continuous time). The model
  plugs into any SDE through :func:`ddlearn.sde.score_fn` (log-SNR matching;
  the choice is written down in :mod:`ddlearn.sde`).
* ``sde``: the SDE to integrate (instance or name "vp" / "subvp" / "ve");
  default: the frame itself if it is an SDE, else ``VPSDE(T=schedule.T)``.
* ``x_T`` is standard normal; the samplers start from
  ``x(1) = sde.prior_std * x_T`` (sigma_max for VE), so one x_T serves every
  sampler and SDE. They return x(u_min), where the noise left is s(u_min)
  (0.01 for VP at 1e-3).
* ``steps`` predictor steps on the uniform grid 1 = u_0 > ... > u_steps = u_min;
  the last step adds no noise (it returns the step's mean, as Song et al. do).
* ``callback(Step(i, t, x, x0))`` with t = u (T - 1) in the SDE's units and
  x0 the Tweedie estimate (x + s^2 score) / m.
"""
from __future__ import annotations

import math

import torch

from .. import _checks
from .. import sde as sde_lib
from ..config import randn_like
from .base import Step, declare, progress_bar


def setup(model, x_T, schedule, steps, sde, u_min):
    """Shared checks; returns (sde, no-grad score(x, u) that names its step, time grid, x(1))."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t) -> eps, got {type(model).__name__}")
    _checks.tensor("x_T", x_T, ndim=(2, 3, 4, 5))
    frame = sde_lib.check_frame(schedule)
    if sde is None:
        sde = frame if isinstance(frame, sde_lib.SDE) else sde_lib.VPSDE(T=frame.T)
    sde = sde_lib.get(sde)
    if steps is not None:
        _checks.positive_int("steps", steps)
    _checks.number("u_min", u_min, low=0, low_open=True, high=1)
    if u_min >= 1:
        raise ValueError(f"u_min must be below 1, got {u_min}")
    raw = sde_lib.score_fn(model, frame, sde)

    @torch.no_grad()
    def score(x, u, i):
        try:
            return raw(x, u)
        except ValueError as err:
            raise ValueError(f"step {i} (u={float(u):g}): {err}") from err

    grid = torch.linspace(1.0, u_min, steps + 1, dtype=torch.float64) if steps is not None else None
    return sde, score, grid, x_T * sde.prior_std


def tweedie_x0(sde, x, u, score):
    """E[x_0 | x_u] = (x + s^2 score) / m (Tweedie's formula; Efron 2011)."""
    uu = torch.tensor([float(u)], dtype=torch.float64)
    m, s = sde.mean_coef(uu).item(), sde.std(uu).item()
    return (x + s * s * score) / m


def _em_step(sde, x, u, du, score, generator, last):
    """One reverse Euler-Maruyama step u -> u - du: x - [f - g^2 score] du + g sqrt(du) z."""
    uu = torch.tensor([u], dtype=torch.float64)
    mean = x - sde.reverse_drift(x, u, score) * du
    if last:
        return mean
    return mean + math.sqrt(sde.g2(uu).item() * du) * randn_like(x, generator)


def langevin_corrector(x, score, snr, generator):
    r"""One Langevin step at fixed u with the step size set by a target signal-to-noise ratio.

    :math:`\epsilon = 2 (r \lVert z\rVert / \lVert s\rVert)^2` with norms averaged
    over the batch (Song et al. 2021, Algorithm 4), then
    :math:`x \leftarrow x + \epsilon s + \sqrt{2\epsilon} z`.
    """
    z = randn_like(x, generator)
    g_norm = score.reshape(x.shape[0], -1).norm(dim=1).mean()
    z_norm = z.reshape(x.shape[0], -1).norm(dim=1).mean()
    step = 2 * (snr * z_norm / g_norm.clamp_min(1e-12)) ** 2
    return x + step * score + (2 * step).sqrt() * z


@declare(evals_per_step=1)
def sample_euler_maruyama(model, x_T, schedule, steps, *, sde=None, generator=None, callback=None,
                          progress=True, u_min=1e-3):
    r"""Reverse-time SDE (Anderson 1982) by Euler-Maruyama: ``steps`` model evaluations.

    :math:`x_{u-\Delta} = x_u - [f(x_u,u) - g(u)^2 s_\theta(x_u,u)]\Delta + g(u)\sqrt{\Delta}\,z`.
    """
    return _reverse(model, x_T, schedule, steps, sde, u_min, generator, callback, progress,
                    n_corrector=0, snr=None, desc="reverse SDE")


@declare(evaluations=lambda steps, n_corrector=1, **_: steps * (1 + n_corrector))
def sample_pc(model, x_T, schedule, steps, *, sde=None, generator=None, callback=None, progress=True,
              u_min=1e-3, snr=0.16, n_corrector=1):
    r"""Predictor-corrector (Song et al. 2021, Algorithm 1): at each u, ``n_corrector`` Langevin
    steps (the corrector, :func:`langevin_corrector` with target ``snr``) then one Euler-Maruyama
    step (the predictor). ``steps * (1 + n_corrector)`` model evaluations.
    """
    _checks.number("snr", snr, low=0, low_open=True)
    _checks.positive_int("n_corrector", n_corrector, minimum=0)
    return _reverse(model, x_T, schedule, steps, sde, u_min, generator, callback, progress,
                    n_corrector=n_corrector, snr=snr, desc="predictor-corrector")


def _reverse(model, x_T, schedule, steps, sde, u_min, generator, callback, progress, *, n_corrector, snr, desc):
    """The loop both samplers share: n_corrector Langevin steps, then one Euler-Maruyama step, per u."""
    _checks.positive_int("steps", steps)
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)
    sde, score, grid, x = setup(model, x_T, schedule, steps, sde, u_min)
    for i in progress_bar(range(steps), progress=progress, desc=desc):
        u, du = grid[i].item(), (grid[i] - grid[i + 1]).item()
        for _ in range(n_corrector):
            x = langevin_corrector(x, score(x, u, i), snr, generator)
        s = score(x, u, i)
        x0 = tweedie_x0(sde, x, u, s) if callback is not None else None
        x = _em_step(sde, x, u, du, s, generator, last=i == steps - 1)
        if callback is not None:
            callback(Step(i, u * (sde.T - 1), x, x0))
    return x
