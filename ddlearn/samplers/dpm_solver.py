r"""DPM-Solver and DPM-Solver++ (Lu et al. 2022, NeurIPS; Lu et al. 2022, arXiv:2211.01095).

Setting. With :math:`\alpha_t = \sqrt{\bar\alpha_t}`, :math:`\sigma_t = \sqrt{1-\bar\alpha_t}`
(the VP pair, not the VE sigma of :mod:`ddlearn.samplers.edm`) and half the
log-SNR :math:`\lambda_t = \log(\alpha_t/\sigma_t)`, the probability-flow ODE
of the diffusion is :math:`dx/dt = f(t)\,x + \tfrac{g(t)^2}{2\sigma_t}\hat\epsilon(x, t)`.
Its linear part is solved exactly (variation of constants); changing the
integration variable from t to :math:`\lambda` gives, from s to t,

.. math:: x_t = \frac{\alpha_t}{\alpha_s}x_s - \alpha_t\int_{\lambda_s}^{\lambda_t} e^{-\lambda}\,\hat\epsilon(x_\lambda, \lambda)\,d\lambda .

Only the model term needs approximating. Taylor-expanding
:math:`\hat\epsilon` in :math:`\lambda` to order k-1 and integrating the
exponential weights exactly gives DPM-Solver-k (h = lambda_t - lambda_s):

* k = 1:  :math:`x_t = \frac{\alpha_t}{\alpha_s}x_s - \sigma_t(e^h-1)\hat\epsilon_s`, which is DDIM;
* k = 2, 3: the derivative terms are finite differences of :math:`\hat\epsilon` at
  intermediate points :math:`\lambda_s + r h` (r = 1/2; r = 1/3, 2/3), each one
  more model evaluation per step (single-step solvers).

DPM-Solver++ writes the same integral with the data prediction
:math:`\hat x_0 = (x - \sigma\hat\epsilon)/\alpha`,

.. math:: x_t = \frac{\sigma_t}{\sigma_s}x_s + \sigma_t\int_{\lambda_s}^{\lambda_t} e^{\lambda}\,\hat x_0(x_\lambda, \lambda)\,d\lambda ,

whose first-order step :math:`x_t = \frac{\sigma_t}{\sigma_s}x_s - \alpha_t(e^{-h}-1)\hat x_0` is again
DDIM. The "2M" multistep variant estimates the slope of :math:`\hat x_0` from
the previous step's prediction instead of a new evaluation, so it is second
order at one evaluation per step. :math:`\hat x_0` stays bounded as
:math:`\sigma \to 0`, which makes it steadier than the noise form at few steps.

As every sampler here, the final step to the clean data costs one evaluation, at the
last timestep: single-step DPM-Solver-k with N steps therefore costs k (N - 1) + 1
evaluations. It returns :math:`\hat x_0` (a first-order step, see
:mod:`ddlearn.samplers.spacing`), except in the multistep solvers, whose ``final=``
(default "auto") takes the trapezoidal step where the grid ends at t = 0
(:func:`~ddlearn.samplers.spacing.final_step`).
"""
from __future__ import annotations

import math

import torch

from .. import _checks, param
from .base import Step, check_inputs, declare, eval_eps, progress_bar
from .spacing import alpha_bars, final_grid, final_step, time_grid

ORDERS = (1, 2, 3)


def _lam(ab: float) -> float:
    """lambda = log(alpha / sigma) = log-SNR / 2 (+inf for clean data)."""
    return math.inf if ab >= 1.0 else 0.5 * (math.log(ab) - math.log1p(-ab))


@declare(evals_per_step=lambda order=2, **_: order)
@torch.no_grad()
def sample_dpm_solver(model, x_T, schedule, steps, *, order=2, spacing="logsnr", generator=None,
                      callback=None, progress=True):
    """Single-step DPM-Solver of ``order`` 1, 2 or 3 (noise-prediction form).

    Intermediate points lie at fractions r of each log-SNR step, mapped back to
    fractional timesteps by ``schedule.t_from_log_snr``. ``generator`` is unused
    (the solver is deterministic) and kept for the common signature.
    Default grid: ``spacing="logsnr"``
    (chosen by measurement: ``benchmarks/samplers.py``, 10 evaluations, the smallest worst-case loss against this sampler's best grid over the panel; see :mod:`ddlearn.samplers.spacing`).
    """
    check_inputs(model, x_T, schedule, generator=generator, callback=callback)
    if isinstance(order, bool) or order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS} (DPM-Solver-1/2/3), got {order!r}")
    ts = time_grid(schedule, steps, spacing)
    ab = alpha_bars(schedule, ts)

    def at(lam):  # (timestep, alpha, sigma) where lambda = lam
        t = schedule.t_from_log_snr(torch.tensor(2.0 * lam)).item()
        a = schedule.alpha_bar(t).item()
        return t, math.sqrt(a), math.sqrt(1 - a)

    x = x_T
    for i in progress_bar(range(steps), progress=progress, desc=f"DPM-Solver-{order}"):
        s = ts[i].item()
        a_s, sig_s, lam_s = math.sqrt(ab[i]), math.sqrt(1 - ab[i]), _lam(ab[i])
        a_t, sig_t, lam_t = math.sqrt(ab[i + 1]), math.sqrt(1 - ab[i + 1]), _lam(ab[i + 1])
        eps_s = eval_eps(model, x, s, step=i)
        x0 = param.eps_to_x0(x, eps_s, ab[i])
        k = 1 if i == steps - 1 else order  # last step to clean: first order, x = x0
        if k == 1:
            # sigma_t (e^h - 1) = alpha_t sigma_s / alpha_s - sigma_t, finite even when lambda_t = inf
            x_new = (a_t / a_s) * x - (a_t * sig_s / a_s - sig_t) * eps_s
        else:
            h = lam_t - lam_s
            if k == 2:
                r1 = 0.5
                s1, a1, sig1 = at(lam_s + r1 * h)
                u = (a1 / a_s) * x - sig1 * math.expm1(r1 * h) * eps_s
                eps_1 = eval_eps(model, u, s1, step=i)
                x_new = ((a_t / a_s) * x - sig_t * math.expm1(h) * eps_s
                         - sig_t / (2 * r1) * math.expm1(h) * (eps_1 - eps_s))
            else:
                r1, r2 = 1 / 3, 2 / 3
                s1, a1, sig1 = at(lam_s + r1 * h)
                s2, a2, sig2 = at(lam_s + r2 * h)
                u1 = (a1 / a_s) * x - sig1 * math.expm1(r1 * h) * eps_s
                d1 = eval_eps(model, u1, s1, step=i) - eps_s
                u2 = ((a2 / a_s) * x - sig2 * math.expm1(r2 * h) * eps_s
                      - sig2 * r2 / r1 * (math.expm1(r2 * h) / (r2 * h) - 1) * d1)
                d2 = eval_eps(model, u2, s2, step=i) - eps_s
                x_new = ((a_t / a_s) * x - sig_t * math.expm1(h) * eps_s
                         - sig_t / r2 * (math.expm1(h) / h - 1) * d2)
        x = x_new
        if callback is not None:
            callback(Step(i, s, x, x0))
    return x


@declare(evals_per_step=1)
@torch.no_grad()
def sample_dpm_solver_pp(model, x_T, schedule, steps, *, spacing="logsnr", final="auto", generator=None,
                         callback=None, progress=True):
    """DPM-Solver++(2M): second-order multistep in the data prediction, one evaluation per step.

    The first step (no history yet) is first order, as in Lu et al. and diffusers'
    ``DPMSolverMultistepScheduler``. The last, from the last timestep to clean data, is what ``final=``
    says (:func:`~ddlearn.samplers.spacing.final_grid`): by default ("auto") the trapezoidal step to
    sigma = 0 where the grid ends at t = 0, the prediction :math:`\hat x_0` ("denoise", Lu et al.'s and
    diffusers' ``final_sigmas_type="zero"``) where it does not; ``final="sigma_min"`` spends the last
    evaluation on a second-order step to t = 0 and returns the state there.
    ``generator`` is unused (deterministic) and kept for the common signature.
    Default grid: ``spacing="logsnr"``
    (chosen by measurement: ``benchmarks/samplers.py``, 10 evaluations, the smallest worst-case loss against this sampler's best grid over the panel; see :mod:`ddlearn.samplers.spacing`).
    Default ending: ``final="auto"`` (chosen with the grid, by the same measurement).
    """
    check_inputs(model, x_T, schedule, generator=generator, callback=callback)
    ts, ab, final = final_grid(schedule, steps, spacing, final)
    lam = [_lam(a) for a in ab]
    x, x0_prev = x_T, None
    for i in progress_bar(range(steps), progress=progress, desc="DPM-Solver++(2M)"):
        eps = eval_eps(model, x, ts[i].item(), step=i)
        x0 = param.eps_to_x0(x, eps, ab[i])
        if i == steps - 1 and final != "sigma_min":
            x = final_step(x, x0, ab[i], final)  # to sigma = 0: "denoise" lands on the prediction
        else:
            h = lam[i + 1] - lam[i]
            if x0_prev is None:
                d = x0
            else:  # slope of x0 in lambda from the last two predictions
                r = (lam[i] - lam[i - 1]) / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            sig_s, sig_t, a_t = math.sqrt(1 - ab[i]), math.sqrt(1 - ab[i + 1]), math.sqrt(ab[i + 1])
            x = (sig_t / sig_s) * x - a_t * math.expm1(-h) * d
        x0_prev = x0
        if callback is not None:
            callback(Step(i, ts[i].item(), x, x0))
    return x


#: ``sample_dpm_solver_multistep(lower_order_final=True)`` lowers the order of the step before the last below this
#: many steps (diffusers' threshold for its ``lower_order_final``).
LOWER_ORDER_FINAL_BELOW = 15


@declare(evals_per_step=1)
@torch.no_grad()
def sample_dpm_solver_multistep(model, x_T, schedule, steps, *, order=2, spacing="logsnr", lower_order_final=True,
                                final="auto", generator=None, callback=None, progress=True):
    r"""Multistep DPM-Solver of ``order`` 2 or 3 in the noise-prediction form: one evaluation per step.

    The derivative terms of DPM-Solver-k come from the previous steps' :math:`\hat\epsilon`
    (backward differences in lambda, Lu et al. 2022b, Section 4.2; diffusers'
    ``DPMSolverMultistepScheduler(algorithm_type="dpmsolver")``), so each step costs one
    evaluation. The first steps (no history yet) use the orders the history allows; the last
    step, to clean data, is what ``final=`` says (:func:`~ddlearn.samplers.spacing.final_grid`): by default
    ("auto") the trapezoidal step to sigma = 0 where the grid ends at t = 0, else the prediction
    :math:`\hat x_0` ("denoise"); ``final="sigma_min"`` spends the last evaluation on one more solver
    step, to t = 0, and returns the state there.

    Order 3 takes the quadratic through the last three :math:`\hat\epsilon` in lambda, with
    :math:`D_1 = h\hat\epsilon'` and :math:`D_2 = h^2\hat\epsilon''` at lambda_s, and integrates it exactly
    against the exponential weight: the quadratic term is
    :math:`\sigma_t h^3\varphi_3(h)\hat\epsilon'' = \sigma_t\,((e^h - 1 - h)/h^2 - 1/2)\,D_2` with
    :math:`\varphi_3(h) = (e^h - 1 - h - h^2/2)/h^3`. Lu et al.'s code and diffusers'
    ``DPMSolverMultistepScheduler`` (``solver_order=3``, 0.42) use the same coefficient with half this
    :math:`D_2` (their ``(D1_0 - D1_1) / (r0 + r1)`` is :math:`h^2\hat\epsilon''/2`), which leaves the method
    second order: on the exact ring8 oracle (80 -> 160 log-SNR steps) their error falls 4.9x per halving of
    the step, this one's 7.1x (``tests/test_dpm_solver_multistep.py``). With the whole term, each step equals DEIS-3's
    (Zhang & Chen 2023, log-rho: the same quadratic, integrated exactly), which the tests check against
    diffusers' ``DEISMultistepScheduler``.

    ``lower_order_final`` (with fewer than :data:`LOWER_ORDER_FINAL_BELOW` steps): the last solver step
    (the step before the denoising one; with ``final="sigma_min"`` the step to t = 0) uses at most second
    order, as Lu et al.'s code and diffusers' option of the same name do for the step before the last.
    Its backward differences reach over the whole low-noise end of the grid, where
    :math:`\hat\epsilon` changes fastest for narrow modes, and at few steps the third-order
    extrapolation overshoots. Measured on ``benchmarks/samplers.py``'s problems and draws (10 evaluations,
    3 draws of 3000 points, 2026-12-08, the third-order term as above), DPM-Solver-3M's MMD on the log-SNR
    grid without -> with the cap: tight 51.1 -> 15.0, unequal 32.3 -> 9.3, ring8 1.19 -> 0.81, skewed
    3.53 -> 2.47, two 2.18 -> 1.73; hd16 0.44 -> 0.56, grid9 5.38 -> 5.28 and very_unequal 29.7 -> 30.6
    (within the draws' spread). With order 2 it changes nothing.
    ``generator`` is unused (deterministic) and kept for the common signature.
    Default grid: ``spacing="logsnr"``, one for both orders
    (chosen by measurement: ``benchmarks/samplers.py``, 10 evaluations, the smallest worst-case loss against this sampler's best grid over the panel; see :mod:`ddlearn.samplers.spacing`).
    Default ending: ``final="auto"`` (chosen with the grid, by the same measurement).
    """
    check_inputs(model, x_T, schedule, generator=generator, callback=callback)
    if isinstance(order, bool) or order not in (2, 3):
        raise ValueError(f"order must be 2 or 3 (multistep DPM-Solver), got {order!r}")
    cap_last = _checks.boolean("lower_order_final", lower_order_final) and steps < LOWER_ORDER_FINAL_BELOW
    ts, ab, final = final_grid(schedule, steps, spacing, final)
    last_solver_step = steps - 1 if final == "sigma_min" else steps - 2
    lam = [_lam(a) for a in ab]
    x, history = x_T, []  # the previous steps' eps, newest last
    for i in progress_bar(range(steps), progress=progress, desc=f"DPM-Solver-{order}M"):
        eps = eval_eps(model, x, ts[i].item(), step=i)
        x0 = param.eps_to_x0(x, eps, ab[i])
        if i == steps - 1 and final != "sigma_min":
            x = final_step(x, x0, ab[i], final)  # to sigma = 0: "denoise" lands on the prediction
        else:
            a_s, a_t, sig_t = math.sqrt(ab[i]), math.sqrt(ab[i + 1]), math.sqrt(1 - ab[i + 1])
            h = lam[i + 1] - lam[i]
            k = min(order, len(history) + 1)
            if cap_last and i == last_solver_step:
                k = min(k, 2)
            x_new = (a_t / a_s) * x - sig_t * math.expm1(h) * eps  # DPM-Solver-1
            if k >= 2:
                r0 = (lam[i] - lam[i - 1]) / h
                d1_0 = (eps - history[-1]) / r0
                if k == 2:
                    x_new = x_new - 0.5 * sig_t * math.expm1(h) * d1_0
                else:
                    r1 = (lam[i - 1] - lam[i - 2]) / h
                    d1_1 = (history[-1] - history[-2]) / r1
                    # the quadratic through the last three eps, at lambda_s: d1 = h eps', d2 = h^2 eps''
                    d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
                    d2 = 2 * (d1_0 - d1_1) / (r0 + r1)
                    x_new = (x_new - sig_t * (math.expm1(h) / h - 1) * d1
                             - sig_t * ((math.expm1(h) - h) / h ** 2 - 0.5) * d2)
            x = x_new
        history.append(eps)
        if callback is not None:
            callback(Step(i, ts[i].item(), x, x0))
    return x
