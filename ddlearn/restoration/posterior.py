r"""Posterior sampling for inverse problems :math:`y = \mathcal A(x) + \sigma_y n` with a diffusion prior.

Bayes: :math:`\nabla_{x_t}\log p(x_t \mid y) = \nabla_{x_t}\log p(x_t) + \nabla_{x_t}\log p(y \mid x_t)`.
The first term is the prior's score (the trained eps-model). The second is
intractable, and each method here approximates it differently, through the
model's prediction of the clean sample
:math:`\hat x_0(x_t) = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}` (Tweedie):

* :func:`sample_dps` (Chung et al. 2023, "DPS"): guidance **on x_t**:
  :math:`x_{t-1} \leftarrow x_{t-1} - \zeta\,\nabla_{x_t}\lVert y - \mathcal A(\hat x_0(x_t))\rVert`,
  back-propagating through the network. Works for non-linear A and noisy y.
* :func:`sample_guided` with ``on="x0"``: guidance **on the predicted x0**
  (the variant GDP builds on, Fei et al. 2023): move :math:`\hat x_0` down the
  gradient of :math:`\tfrac12\lVert y - \mathcal A(\hat x_0)\rVert^2` and take the
  ordinary step from the moved :math:`\hat x_0`; no gradient through the
  network, so it costs one network call per step.
* :func:`sample_ddnm` (Wang et al. 2023, "DDNM"): the range-null-space
  projection :math:`\hat x_0 \leftarrow A^+ y + (I - A^+A)\hat x_0`, exact data
  consistency for linear A, no gradients, no step size. Noiseless y
  assumed: with noise, the projection copies the noise into the result.

All share the book's sampler signature (:mod:`ddlearn.samplers`) plus the
measurement: ``sample_X(model, x_T, schedule, steps, *, operator, y,
generator=None, callback=None, progress=True, ...)``. Steps use the
generalised DDIM update (Song et al. 2021) on ``steps`` evenly spaced
timesteps; ``eta=1`` is ancestral (DDPM-like) sampling, ``eta=0`` deterministic.

The exact posterior of a Gaussian-mixture prior (:mod:`.exact`) measures each method's bias.
"""
from __future__ import annotations

import math

import torch

from .. import _checks, param
from ..operators import Operator
from ..samplers._common import Step, check_inputs, check_steps, progress_bar
from ..schedules import Schedule


# ---- the shared loop ----------------------------------------------------------------
def timesteps(schedule: Schedule, steps: int) -> list[int]:
    """``steps`` evenly spaced integer timesteps from T-1 down to 0 (duplicates removed)."""
    grid = torch.linspace(schedule.T - 1, 0, steps, dtype=torch.float64).round().long().tolist()
    return list(dict.fromkeys(grid))


def _eps(model, x, t: int, step: int) -> torch.Tensor:
    out = model(x, torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device))
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise ValueError(f"model returned {getattr(out, 'shape', type(out).__name__)} at step {step} (t={t}); "
                         f"expected the input's shape {tuple(x.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError(f"model returned non-finite values at step {step} (t={t})")
    return out


def ddim_step(x, eps, x0, ab_t: float, ab_prev: float, eta: float, generator) -> torch.Tensor:
    r"""x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - s^2) eps + s z, s = eta sqrt((1-ab_prev)/(1-ab_t) (1 - ab_t/ab_prev))."""
    s = eta * math.sqrt(max((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev), 0.0))
    out = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - s * s, 0.0)) * eps
    if s > 0:
        out = out + s * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return out


def _check_measurement(operator, y, x_T) -> None:
    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(operator).__name__}")
    _checks.tensor("y", y)
    with torch.no_grad():
        want = operator(torch.zeros_like(x_T)).shape
    if y.shape != want:
        raise ValueError(f"y must have the shape of operator(x) {tuple(want)} for x_T of shape {tuple(x_T.shape)}, "
                         f"got {tuple(y.shape)}")


def _loop(model, x_T, schedule, steps, *, correct, eta, generator, callback, progress, desc, clip):
    """Walk the timesteps; ``correct(x, t, ab, step) -> (x0, eps, shift)`` is each method's part."""
    check_inputs(model, x_T, schedule)
    check_steps(steps, schedule.T)
    _checks.number("eta", eta, low=0)
    ts = timesteps(schedule, steps)
    abars = schedule.alpha_bars
    x = x_T
    for i in progress_bar(range(len(ts)), progress=progress, desc=desc):
        t = ts[i]
        ab_t = float(abars[t])
        ab_prev = float(abars[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        x0, eps, shift = correct(x, t, ab_t, i)
        if clip is not None:
            x0 = x0.clamp(*clip)
            eps = param.x0_to_eps(x, x0, ab_t)
        x = ddim_step(x, eps, x0, ab_t, ab_prev, eta, generator)
        if shift is not None:
            x = x - shift
        x = x.detach()
        if callback is not None:
            callback(Step(i, float(t), x, x0.detach()))
    return x


# ---- the methods ---------------------------------------------------------------------
def sample_guided(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator: Operator,
                  y: torch.Tensor, scale: float = 1.0, on: str = "xt", eta: float = 1.0,
                  clip: tuple[float, float] | None = None, generator: torch.Generator | None = None,
                  callback=None, progress: bool = True) -> torch.Tensor:
    r"""Posterior sampling by likelihood guidance, on x_t (``on="xt"``, DPS) or on the predicted x0 (``on="x0"``).

    ``on="xt"`` (Chung et al. 2023, their Algorithm 1 and released code):
    after each step :math:`x_{t-1} \leftarrow x_{t-1} - \text{scale}\cdot\nabla_{x_t}\lVert y - \mathcal A(\hat x_0(x_t))\rVert_2`
    (the norm, not its square: the step length is then ``scale`` times a unit-free direction).

    ``on="x0"``: :math:`\hat x_0 \leftarrow \hat x_0 - \text{scale}\cdot\tau\, g`,
    :math:`g = \nabla_{\hat x_0}\tfrac12\lVert y - \mathcal A(\hat x_0)\rVert^2`, with
    :math:`\tau = \lVert g\rVert^2 / \lVert J g\rVert^2` (J the operator's Jacobian) the
    exact line search of that quadratic along -g, per item; then the ordinary
    step from the moved :math:`\hat x_0`. So ``scale=1`` is one full
    steepest-descent step whatever the operator's gain: for a mask it pastes y
    into the observed pixels, for average pooling it corrects every block mean
    to y; ``scale<1`` moves part of the way.

    Both differentiate through ``operator`` with autograd, so non-linear and
    parametrised operators work. ``clip`` clamps :math:`\hat x_0` (e.g. (-1, 1) for images).
    """
    _check_measurement(operator, y, x_T)
    _checks.number("scale", scale, low=0)
    _checks.choice("on", on, ("xt", "x0"))

    def per_item(v):  # sum over items of per-item norms: each item gets its own gradient
        return v.reshape(v.shape[0], -1).norm(dim=1).sum()

    def correct(x, t, ab, i):
        if on == "x0":
            with torch.no_grad():
                eps = _eps(model, x, t, i)
                x0 = param.eps_to_x0(x, eps, ab)
            with torch.enable_grad():
                z = x0.detach().requires_grad_(True)
                loss = 0.5 * (y - operator(z)).pow(2).sum()
                (g,) = torch.autograd.grad(loss, z)
            # step length: exact line search of the quadratic along -g, per item: |g|^2 / |J g|^2
            if operator.linear:
                Jg = operator(g)
            else:
                _, Jg = torch.autograd.functional.jvp(operator, x0, g)
            num = g.reshape(g.shape[0], -1).pow(2).sum(1)
            den = Jg.reshape(Jg.shape[0], -1).pow(2).sum(1).clamp_min(1e-12)
            step = (num / den).reshape(-1, *([1] * (x0.ndim - 1)))
            x0 = x0 - scale * step * g
            return x0, param.x0_to_eps(x, x0, ab), None
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            eps = _eps(model, xg, t, i)
            x0 = param.eps_to_x0(xg, eps, ab)
            (g,) = torch.autograd.grad(per_item(y - operator(x0)), xg)
        return x0.detach(), eps.detach(), scale * g

    return _loop(model, x_T, schedule, steps, correct=correct, eta=eta, generator=generator,
                 callback=callback, progress=progress, desc=f"guided ({on})", clip=clip)


def sample_dps(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator: Operator,
               y: torch.Tensor, scale: float = 1.0, eta: float = 1.0, clip: tuple[float, float] | None = None,
               generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    """Diffusion posterior sampling (Chung et al. 2023): :func:`sample_guided` with guidance on x_t."""
    return sample_guided(model, x_T, schedule, steps, operator=operator, y=y, scale=scale, on="xt", eta=eta,
                         clip=clip, generator=generator, callback=callback, progress=progress)


def sample_ddnm(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator: Operator,
                y: torch.Tensor, eta: float = 0.85, clip: tuple[float, float] | None = None,
                generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    r"""Denoising diffusion null-space model (Wang et al. 2023): project :math:`\hat x_0` onto :math:`A x = y` every step.

    :math:`\hat x_0 \leftarrow A^+ y + (I - A^+ A)\,\hat x_0` keeps what the
    prior says about the null space of A and takes the range from y; the
    step then continues from the projected :math:`\hat x_0` (eps recomputed
    from it). ``eta=0.85`` is the paper's default. Needs a linear operator
    with ``pinv``. The final sample is projected once more, so
    :math:`A\,x = A A^+ y` holds to machine precision (``clip`` permitting).
    """
    _check_measurement(operator, y, x_T)
    if not operator.linear:
        raise TypeError(f"sample_ddnm needs a linear operator with a pseudo-inverse; {type(operator).__name__} is "
                        "non-linear (use sample_dps)")
    Apy = operator.pinv(y)

    def correct(x, t, ab, i):
        with torch.no_grad():
            eps = _eps(model, x, t, i)
            x0 = param.eps_to_x0(x, eps, ab)
            x0 = Apy + x0 - operator.pinv(operator(x0))
        return x0, param.x0_to_eps(x, x0, ab), None

    x = _loop(model, x_T, schedule, steps, correct=correct, eta=eta, generator=generator,
              callback=callback, progress=progress, desc="DDNM", clip=clip)
    with torch.no_grad():
        return Apy + x - operator.pinv(operator(x))
