r"""Langevin dynamics and annealed Langevin dynamics: sampling with a score alone.

If :math:`s(x) = \nabla_x \log p(x)`, the chain

.. math:: x_{k+1} = x_k + \epsilon\, s(x_k) + \sqrt{2\epsilon}\, z_k,\qquad z_k \sim \mathcal N(0, I)

has p as its stationary distribution as the step :math:`\epsilon \to 0` and
the number of steps grows (the unadjusted Langevin algorithm; Roberts &
Tweedie 1996). It fails in practice where the score is poorly known (low
density regions, where no data taught the network) and at mixing between
well-separated modes: the chain almost never crosses, so the *weights* of a
mixture come out as the weights of the starting points, not of p
(``named_mixture("two")`` shows it).

Song & Ermon (2019) fix both with **annealed** Langevin dynamics: run
Langevin on the data noised at levels :math:`\sigma_1 > \dots > \sigma_L`,
each level started from the previous one, with step
:math:`\epsilon_i = \epsilon\,\sigma_i^2/\sigma_L^2` (their
:math:`\alpha_i/2`). Large noise fills the low-density regions and connects
the modes; the small levels sharpen.

Scores here are callables: ``score(x)`` for plain Langevin,
``score(x, sigma)`` (sigma a float64 tensor (B,)) for annealed Langevin, in
the variance-exploding view ``x = x_0 + sigma * eps``. :func:`noise_conditional_score`
makes one from an exact mixture or from any eps-model with its frame
(:class:`~ddlearn.schedules.Schedule` or :class:`~ddlearn.sde.SDE`), and
:func:`sample_annealed_langevin` is the same thing with the book's sampler
signature.
"""
from __future__ import annotations

import math

import torch

from . import _checks
from .config import randn_like
from .samplers.base import Step, progress_bar
from .schedules import Schedule


@torch.no_grad()
def langevin(score, x: torch.Tensor, step_size: float, n_steps: int, *, generator=None, callback=None,
             progress=True) -> torch.Tensor:
    r"""Unadjusted Langevin dynamics :math:`x \leftarrow x + \epsilon s(x) + \sqrt{2\epsilon} z` from ``x``.

    ``callback(Step(i, 0.0, x, None))`` after every step.
    """
    if not callable(score):
        raise TypeError(f"score must be callable as score(x), got {type(score).__name__}")
    _checks.tensor("x", x)
    _checks.number("step_size", step_size, low=0, low_open=True)
    _checks.positive_int("n_steps", n_steps)
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)
    for i in progress_bar(range(n_steps), progress=progress, desc="Langevin"):
        s = _checks.model_output(score(x), x, where=f"step {i}", what="score")
        x = x + step_size * s + math.sqrt(2 * step_size) * randn_like(x, generator)
        if callback is not None:
            callback(Step(i, 0.0, x, None))
    return x


def check_sigmas(sigmas) -> torch.Tensor:
    s = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if s.numel() < 1:
        raise ValueError("sigmas must hold at least one noise level")
    if not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"sigmas must be positive and finite, got values from {s.min().item():g} to {s.max().item():g}")
    if (s[1:] > s[:-1]).any():
        raise ValueError("sigmas must be decreasing (largest noise first)")
    return s


@torch.no_grad()
def annealed_langevin(score, x: torch.Tensor, sigmas, n_steps_each: int, step_size: float, *,
                      generator=None, callback=None, progress=True, denoise: bool = True) -> torch.Tensor:
    r"""Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each sigma_i (decreasing): ``n_steps_each`` Langevin steps with step
    :math:`\epsilon_i = \text{step\_size}\cdot\sigma_i^2/\sigma_L^2` on ``score(x, sigma_i)``.
    ``x`` starts in the VE view (e.g. ``sigmas[0] * randn``). With ``denoise`` a final
    Tweedie step :math:`x + \sigma_L^2 s(x, \sigma_L)` removes the last noise
    (Jolicoeur-Martineau et al. 2021; one extra score evaluation).
    ``callback(Step(i, sigma_i, x, None))`` after each noise level (t holds sigma).
    """
    if not callable(score):
        raise TypeError(f"score must be callable as score(x, sigma), got {type(score).__name__}")
    _checks.tensor("x", x)
    s = check_sigmas(sigmas)
    _checks.positive_int("n_steps_each", n_steps_each)
    _checks.number("step_size", step_size, low=0, low_open=True)
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)
    B = x.shape[0]
    for i in progress_bar(range(len(s)), progress=progress, desc="annealed Langevin"):
        sig = s[i].expand(B)
        eps_i = step_size * (s[i] / s[-1]).item() ** 2
        for k in range(n_steps_each):
            g = _checks.model_output(score(x, sig), x, where=f"noise level {i} (sigma={s[i].item():g}), step {k}", what="score")
            x = x + eps_i * g + math.sqrt(2 * eps_i) * randn_like(x, generator)
        if callback is not None:
            callback(Step(i, s[i].item(), x, None))
    if denoise:
        g = _checks.model_output(score(x, s[-1].expand(B)), x, where="the final denoising step", what="score")
        x = x + s[-1].item() ** 2 * g
    return x


def noise_conditional_score(source, frame=None):
    r"""``score(x, sigma)`` in the VE view :math:`x = x_0 + \sigma\epsilon`.

    ``source`` is a :class:`~ddlearn.oracles.GaussianMixture` (exact), or an eps-model
    ``model(x_in, t)`` with ``frame`` the Schedule or SDE it was trained in. For a
    model: alpha-bar = 1/(1 + sigma^2), the model sees the VP state
    :math:`x\sqrt{\bar\alpha}` at the frame's timestep of the same log-SNR
    :math:`-2\log\sigma`, and :math:`s = -\hat\epsilon/\sigma`. Gradients flow through.
    """
    from .oracles import GaussianMixture
    from . import sde as sde_lib

    if isinstance(source, GaussianMixture):
        def score(x, sigma):
            sig = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1)
            ab = 1.0 / (1.0 + sig ** 2)
            shape = (-1,) + (1,) * (x.ndim - 1)
            xin = x * ab.sqrt().to(x.dtype).reshape(shape)
            return source.score(xin, ab) * ab.sqrt().to(x.dtype).reshape(shape)
        return score
    if not callable(source):
        raise TypeError(f"source must be a GaussianMixture or an eps-model, got {type(source).__name__}")
    sde_lib.check_frame(frame)
    _checks.same_T(source, frame.T, "time frame (schedule)")

    def score(x, sigma):
        sig = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1)
        lam = -2 * torch.log(sig)
        if isinstance(frame, Schedule):
            lo, hi = frame.log_snr[-1].item(), frame.log_snr[0].item()
        else:
            lo, hi = frame.log_snr(torch.ones(1)).item(), frame.log_snr(torch.zeros(1)).item()
        t = frame.t_from_log_snr(lam.clamp(lo, hi))
        ab = torch.sigmoid(lam)
        shape = (-1,) + (1,) * (x.ndim - 1)
        eps = source(x * ab.sqrt().to(x.dtype).reshape(shape), t.to(x.dtype))
        return -eps / sig.to(x.dtype).reshape(shape)

    return score


def sample_annealed_langevin(model, x_T, schedule, steps, *, generator=None, callback=None, progress=True,
                             n_steps_each: int = 5, step_size: float = 2e-5, sigma_min: float = 0.01,
                             sigma_max: float = 10.0, denoise: bool = True):
    """Annealed Langevin with the book's sampler signature (NCSN sampling with an eps-model).

    ``steps`` noise levels geometric from ``sigma_max`` to ``sigma_min`` (as NCSN,
    :func:`ddlearn.schedules.ve_sigmas`); ``schedule`` is the model's frame
    (Schedule or SDE); ``x_T`` standard normal, scaled by sigma_max.
    ``steps * n_steps_each (+1)`` model evaluations.
    """
    from .schedules import ve_sigmas

    _checks.tensor("x_T", x_T)
    _checks.positive_int("steps", steps)
    sigmas = ve_sigmas(steps, sigma_min, sigma_max) if steps > 1 else torch.tensor([sigma_min], dtype=torch.float64)
    return annealed_langevin(noise_conditional_score(model, schedule), x_T * sigmas[0].item(), sigmas,
                             n_steps_each, step_size, generator=generator, callback=callback,
                             progress=progress, denoise=denoise)
