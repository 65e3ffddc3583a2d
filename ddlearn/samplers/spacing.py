r"""Which timesteps a fast sampler visits: one choice every sampler takes as ``spacing=``.

A sampler with ``steps`` steps evaluates the model at ``steps`` timesteps
:math:`t_0 > t_1 > \dots > t_{N-1}` (float, in the schedule's units, see
:mod:`ddlearn.schedules`) and then steps to the clean data (alpha-bar = 1,
sigma = 0). The last step, from :math:`t_{N-1}` to clean, returns the model's
prediction of x_0, a first-order step (diffusers does the same with
``final_sigmas_type="zero"``), except in the multistep DPM-Solvers, whose
``final=`` (:func:`final_grid`) takes by default the trapezoidal step to sigma = 0
where the grid ends at t = 0 (:func:`final_step`). So ``x_T`` is taken to be the
noisy sample at :math:`t_0`, and the output is a clean sample.

Spacings (T the schedule's number of steps, N = ``steps``):

* ``"leading"``  (diffusers' DDIM/Euler default): ``t_i = (N-1-i) * (T // N)``,
  ends at t = 0 but starts below T-1 (900 for N = 10, T = 1000), so x_T is
  treated as slightly less noisy than it is.
* ``"trailing"`` (Lin et al. 2024, "Common diffusion noise schedules and sample
  steps are flawed"): ``round(T - i T/N) - 1``, starts at T-1, ends at T/N - 1.
* ``"quadratic"`` (Song et al. 2021, DDIM's "quad"): ``t = (T-1) u^2`` with u
  uniform from 1 to 0, denser near the data.
* ``"karras"`` (Karras et al. 2022): sigma_i spaced with rho = 7 between the
  schedule's largest and smallest sigma, mapped back to (fractional) timesteps.
* ``"logsnr"`` (Lu et al. 2022): uniform in log-SNR, mapped back to timesteps.
* ``"linspace"``: ``round(T-1 - i (T-1)/(N-1))``, evenly spaced whole timesteps
  from T-1 down to 0 (diffusers' "linspace" rounded; the grid of the posterior
  samplers of Chapter 06, :mod:`ddlearn.restoration.posterior`).

The last four go from T-1 down to 0 inclusive. ``spacing`` may also be a
1-D tensor of ``steps`` decreasing timesteps, to reproduce another library's grid.

Default grids. Each sampler's default was chosen by measurement (``benchmarks/samplers.py``, Chapter
05): at 10 evaluations every grid was scored on each problem by log2((measure + c) / (this sampler's
best grid's + c)) on the main measure (MMD; FDD on digits; c = twice the median seed-to-seed sd there),
and the grid with the smallest worst score was taken (a function with an ``order`` takes one grid for
all its orders: the worst over both). The problems are the panel's on the linear schedule, the schedule
of every shipped discrete-time model: the exact mixtures ring8, two, grid9, tight, broad, multiscale,
cross, hd16 and issue 26's skewed, unequal, very_unequal and skewed16, the swiss-roll network ``toy2d``
and the digit UNet ``digits`` (3 draws each; re-run 2026-12-07 on the widened panel, which chose the
same grids as before, and for DPM-Solver-3M on 2026-12-08 after its third-order term was fixed: the same grids).

On the cosine schedule pass ``spacing="quadratic"``. Its log-SNR reaches -19.8 at t = T-1 (the linear
schedule's, -10.1), so a grid uniform in log-SNR spends about a third of its steps below the linear
schedule's lowest log-SNR, where the sample is all but noise: on ring8, tight and broad on the cosine
schedule "logsnr" scores up to 3.7 (DPM-Solver++(2M)) and 4.4 (DPM-Solver-3) in the score above,
"quadratic" 0 to 0.7 for the multistep solvers. Taking the worst case over both schedules would make
"quadratic" every DPM-Solver's default and "leading" Heun's; Chapter 05 run in full with those defaults
(2026-12-07, not kept) showed what that costs the shipped models at 10 evaluations (digits, FDD: Heun
3.87 -> 11.65, DPM-Solver-2 4.89 -> 41.2, DPM-Solver++(2M) 3.90 -> 4.35; swiss roll, SW: DPM-Solver-2
0.31 -> 3.98), so the defaults stay those of the linear schedule and the cosine schedule gets this
sentence. No grid wins everywhere; Chapter 05's table says which grid to pass when.

=================================  ===============  ===========================
sampler                            default grid     last step
=================================  ===============  ===========================
``sample_ddim``                    ``"quadratic"``  denoise
``sample_euler``                   ``"quadratic"``  denoise
``sample_heun``                    ``"trailing"``   denoise
``sample_dpm_solver``              ``"logsnr"``     denoise
``sample_dpm_solver_pp``           ``"logsnr"``     ``final="auto"``: trapezoid
``sample_dpm_solver_multistep``    ``"logsnr"``     ``final="auto"``: trapezoid
=================================  ===============  ===========================

The multistep solvers' ending was chosen with their grid on 2026-12-08 (``benchmarks/samplers.py``, the
same score and rule over grid and ending together): for both, the log-SNR grid with the trapezoidal
end (worst score over the linear-schedule panel 1.03 for DPM-Solver++(2M), 1.80 for DPM-Solver-2M/3M,
against 2.74 and 3.00 with the denoising end, whose worst problem is skewed16: its sd-0.01 mode is
shrunk by the Euler step from sigma = 0.01, and even the converged ODE with that end scores MMD 83 there).
Ending at t = 0 instead (``final="sigma_min"``) is the best on most problems whose modes are much wider
than sigma(0) and the worst where they are not (very_unequal, skewed16), so it is an option, not the default.

(:func:`ddlearn.samplers.ddim.ddim_loop`, the loop the posterior samplers hook
into, keeps ``"leading"``; those samplers pass their own grid.)
"""
from __future__ import annotations

import torch

from .. import _checks
from ..schedules import Schedule, karras_sigmas
from .base import check_steps

SPACINGS = ("leading", "trailing", "quadratic", "karras", "logsnr", "linspace")


def t_from_sigma(schedule: Schedule, sigma) -> torch.Tensor:
    """The (fractional) timestep whose noise level ``schedule.sigma(t)`` is ``sigma`` (clamped to [0, T-1])."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    return schedule.t_from_log_snr(-2.0 * torch.log(sigma))  # log-SNR = -2 log sigma


def time_grid(schedule: Schedule, steps: int, spacing="leading") -> torch.Tensor:
    """The ``steps`` decreasing float64 timesteps in [0, T-1] a sampler visits, for the named ``spacing``."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddlearn.schedules.Schedule, got {type(schedule).__name__}")
    T = schedule.T
    check_steps(steps, T)
    if isinstance(spacing, torch.Tensor):
        t = _checks.timesteps("spacing", spacing, T).clone()
        if t.numel() != steps:
            raise ValueError(f"spacing as a tensor must hold steps={steps} timesteps, got {t.numel()}")
    elif not isinstance(spacing, str):
        raise TypeError(f"spacing must be a name ({', '.join(SPACINGS)}) or a tensor of timesteps, "
                        f"got {type(spacing).__name__}")
    else:
        _checks.choice("spacing", spacing, SPACINGS)
        i = torch.arange(steps, dtype=torch.float64)
        u = torch.linspace(1, 0, steps, dtype=torch.float64) if steps > 1 else torch.ones(1, dtype=torch.float64)
        if spacing == "leading":
            t = (steps - 1 - i) * (T // steps)
        elif spacing == "trailing":
            t = torch.round(T - i * (T / steps)) - 1
        elif spacing == "linspace":
            t = torch.linspace(T - 1, 0, steps, dtype=torch.float64).round()
        elif spacing == "quadratic":
            t = (T - 1) * u ** 2
        elif spacing == "karras":
            sig = schedule.sigmas
            s = karras_sigmas(steps, sigma_min=sig[0].item(), sigma_max=sig[-1].item(), rho=7.0)
            t = t_from_sigma(schedule, s)
            t[0] = T - 1  # undo round-off at the ends: these are the grid's own levels
            if steps > 1:
                t[-1] = 0
        else:  # logsnr
            lam = schedule.log_snr
            t = schedule.t_from_log_snr(lam[-1] + (1 - u) * (lam[0] - lam[-1]))
            t[0] = T - 1
            if steps > 1:
                t[-1] = 0
        t = t.clamp(0, T - 1)
    if steps > 1 and not (t[1:] < t[:-1]).all():
        raise ValueError(f"spacing must give strictly decreasing timesteps, got {t.tolist()}")
    return t


#: How a multistep sampler ends (``final=``, :func:`final_grid`): ``"denoise"`` returns the model's x_0
#: prediction at its last timestep (an Euler step to sigma = 0); ``"trapezoid"`` the trapezoidal step to
#: sigma = 0 from the same evaluation; ``"sigma_min"`` spends that evaluation on one more ODE step, to t = 0;
#: ``"auto"``: "trapezoid" where the grid ends at t = 0, else "denoise".
FINALS = ("auto", "denoise", "trapezoid", "sigma_min")


def final_grid(schedule: Schedule, steps: int, spacing, final: str = "auto") -> tuple[torch.Tensor, list[float], str]:
    r"""The ``steps`` timesteps a one-evaluation-a-step sampler evaluates at, and the alpha-bars of its states.

    * ``final="denoise"`` (as every sampler here, and diffusers' ``final_sigmas_type="zero"``): the grid is
      :func:`time_grid` of ``steps`` points, the last usually t = 0; the last step returns the model's
      :math:`\hat x_0` there, a first-order step that uses the last evaluation only to denoise a state
      that is already at the schedule's smallest noise level when the grid ends at t = 0.
    * ``final="sigma_min"``: the grid is :func:`time_grid` of ``steps + 1`` points, which must end at
      t = 0; the sampler evaluates at the first ``steps`` and takes ``steps`` ODE steps, the last to t = 0,
      and returns the state there (noise level :math:`\sigma(0)`, 0.01 on the linear schedule). The same
      evaluations buy one more solver step and no step of zero length (diffusers' ``final_sigmas_type=
      "sigma_min"`` on a grid that already ends at sigma_min evaluates there and steps nowhere).
      A tensor ``spacing`` then holds ``steps + 1`` timesteps ending at 0.
    * ``final="trapezoid"``: the grid of "denoise", which must end at t = 0; the last step is the
      trapezoidal rule for the probability-flow ODE from there to sigma = 0 (:func:`final_step`).
    * ``final="auto"``: "trapezoid" where the grid of "denoise" ends at t = 0 (every named grid but
      "trailing", from 2 steps), "denoise" where it does not (one step, at t = T-1, returns the prediction).

    Returns (the float64 timesteps to evaluate at, the ``steps + 1`` alpha-bars of the states: those
    timesteps', then 1.0 or, for "sigma_min", alpha-bar(0); the ending used, "auto" resolved).
    """
    if not isinstance(final, str):
        raise TypeError(f"final must be one of {FINALS}, got {type(final).__name__}")
    _checks.choice("final", final, FINALS)
    if final != "sigma_min":
        ts = time_grid(schedule, steps, spacing)
        if final == "auto":
            final = "trapezoid" if ts[-1].item() == 0.0 else "denoise"
        if final == "trapezoid" and ts[-1].item() != 0.0:
            raise ValueError(f"final='trapezoid' needs a grid that ends at t = 0 (where the model's eps is small "
                             f"and shrinking to 0); spacing={_label(spacing)} with steps={steps} ends at "
                             f"t = {ts[-1].item():g} (use final='denoise', or another spacing)")
        return ts, alpha_bars(schedule, ts), final
    check_steps(steps, schedule.T)
    if steps >= schedule.T:
        raise ValueError(f"steps must be below the schedule's T={schedule.T} with final='sigma_min' "
                         f"(its grid has steps + 1 timesteps), got {steps}")
    if isinstance(spacing, torch.Tensor) and spacing.numel() != steps + 1:
        raise ValueError(f"spacing as a tensor must hold steps + 1 = {steps + 1} timesteps with final='sigma_min' "
                         f"(the last, 0, is where the sampler ends), got {spacing.numel()}")
    t = time_grid(schedule, steps + 1, spacing)
    if t[-1].item() != 0.0:
        raise ValueError(f"final='sigma_min' needs a grid that ends at t = 0; spacing={_label(spacing)} ends at "
                         f"t = {t[-1].item():g} (use final='denoise', or another spacing)")
    return t[:-1], schedule.alpha_bar(t).tolist(), final


def final_step(x: torch.Tensor, x0: torch.Tensor, alpha_bar: float, final: str) -> torch.Tensor:
    r"""The last step of a sampler, from x at its last timestep (alpha-bar ``alpha_bar``) to sigma = 0.

    In the variance-exploding variables :math:`\bar x = x/\alpha`, :math:`\bar\sigma = \sigma/\alpha` the
    probability-flow ODE is :math:`d\bar x/d\bar\sigma = \hat\epsilon(\bar x, \bar\sigma)`, so
    :math:`\bar x(0) = \bar x - \int_0^{\bar\sigma}\hat\epsilon\,d\bar\sigma'`.

    * ``"denoise"``: Euler, :math:`\bar x - \bar\sigma\hat\epsilon = \hat x_0` (Tweedie's posterior mean).
    * ``"trapezoid"``: the trapezoidal rule with :math:`\hat\epsilon = 0` at :math:`\bar\sigma = 0`
      (:math:`\hat\epsilon = -\bar\sigma\nabla\log p_{\bar\sigma}`, and the score of a density smooth at
      scale :math:`\bar\sigma` stays bounded), :math:`\bar x - \bar\sigma\hat\epsilon/2 = (\bar x + \hat x_0)/2`.
      For a Gaussian mode of sd s the exact map shrinks :math:`\bar x - m` by :math:`s/\sqrt{s^2+\bar\sigma^2}`,
      Euler by :math:`s^2/(s^2+\bar\sigma^2)`, the trapezoid by :math:`1 - \bar\sigma^2/(2(s^2+\bar\sigma^2))`:
      at s = sigma 0.71, 0.5 and 0.75. It is the closer of the two when s > sigma / sqrt(8) = 0.35 sigma (with
      u = s^2 / (s^2 + sigma^2): (1 - sqrt u)^2 / 2 < sqrt u (1 - sqrt u) exactly when u > 1/9), so it needs the last
      timestep at small noise (:func:`final_grid` asks for t = 0, sigma = 0.01 on the linear schedule).
    """
    if final == "denoise":
        return x0
    if final != "trapezoid":
        raise ValueError(f"final_step takes final='denoise' or 'trapezoid' (final_grid resolves 'auto'; "
                         f"'sigma_min' has no step to take), got {final!r}")
    return 0.5 * (x / alpha_bar ** 0.5 + x0)


def _label(spacing) -> str:
    return repr(spacing) if isinstance(spacing, str) else "(a tensor)"


def alpha_bars(schedule: Schedule, t: torch.Tensor) -> list[float]:
    """alpha-bar at each timestep of ``t``, then 1.0 for the clean end: N + 1 Python floats."""
    return schedule.alpha_bar(t).tolist() + [1.0]
