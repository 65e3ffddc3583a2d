r"""DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models").

Derivation as an ODE solver. Write :math:`\bar\alpha_t` for the schedule's
alpha-bar and rescale the state to the variance-exploding variable

.. math:: y = x / \sqrt{\bar\alpha_t}, \qquad \sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t},

so that noising reads :math:`y = x_0 + \sigma\,\epsilon`. The probability-flow
ODE of the diffusion (Song et al. 2021, "Score-based generative modeling
through SDEs"), which moves samples of :math:`p_t` to samples of
:math:`p_{t'}` deterministically, becomes in these variables

.. math:: \frac{dy}{d\sigma} = \hat\epsilon\big(\sqrt{\bar\alpha}\,y,\ t(\sigma)\big)
          = \frac{y - \hat x_0(y)}{\sigma}.

One Euler step from :math:`\sigma_t` to :math:`\sigma_{s}` (s the next,
less noisy timestep) is :math:`y_s = y_t + (\sigma_s - \sigma_t)\hat\epsilon`.
Multiplying by :math:`\sqrt{\bar\alpha_s}` and using
:math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`:

.. math:: x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\hat\epsilon,

which is exactly the deterministic DDIM update (eta = 0): predict the clean
sample, then re-noise it to the next level with the *same* predicted noise.
DDIM is therefore first order: halving the step roughly halves the error.

With ``eta > 0`` part of the re-noising uses fresh noise,

.. math:: x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\varsigma^2}\,\hat\epsilon + \varsigma z,\quad
          \varsigma = \eta\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}\Big(1-\frac{\bar\alpha_t}{\bar\alpha_s}\Big)},

and eta = 1 with every timestep is DDPM's ancestral sampler.

One loop for the DDIM family
----------------------------
Posterior samplers (DPS, guidance on x0, DDNM: :mod:`ddlearn.restoration`),
GDP and the data-consistency samplers of later chapters are this loop with
a different *prediction*: at each timestep a hook

    ``predict(x, t, alpha_bar, i) -> (x0, eps, shift)``

returns the clean-sample estimate and the noise the step re-uses (both may be
corrected by a measurement), and optionally a ``shift`` subtracted from the
state after the step (DPS's gradient step on x_t). :func:`model_predict` is
the plain hook; :func:`ddim_loop` walks the grid, applies ``clip`` to x0 (and
re-derives eps from the clipped x0) and takes :func:`ddim_step`.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .. import _checks, param
from ..simplex import NOISES, draw_noise
from .base import Step, check_inputs, declare, eval_eps, progress_bar
from .spacing import alpha_bars, time_grid

#: predict(x, t, alpha_bar, i) -> (x0, eps, shift or None)
Predict = Callable[[torch.Tensor, float, float, int], tuple]


def model_predict(model) -> Predict:
    """The plain hook: the model's eps at (x, t) and the x0 it implies (Tweedie)."""
    def predict(x, t, alpha_bar, i):
        eps = eval_eps(model, x, t, step=i)
        return param.eps_to_x0(x, eps, alpha_bar), eps, None
    return predict


def ddim_step(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: float, alpha_bar_next: float, eta: float,
              generator: torch.Generator | None, noise: str = "gaussian", noise_options: dict | None = None
              ) -> torch.Tensor:
    r"""One generalised DDIM step from alpha-bar ``alpha_bar`` to ``alpha_bar_next`` (the formula above);
    the fresh noise (eta > 0) is ``noise``, "gaussian" or "simplex" (:func:`ddlearn.simplex.draw_noise`)."""
    a, a_next = alpha_bar, alpha_bar_next
    noise_std = eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
    x = math.sqrt(a_next) * x0 + math.sqrt(max(1 - a_next - noise_std ** 2, 0.0)) * eps
    if noise_std > 0:
        x = x + noise_std * draw_noise(x, noise, generator, **(noise_options or {}))
    return x


def step_weights(schedule, steps: int, *, eta: float = 0.0, spacing="quadratic") -> dict:
    r"""How a DDIM-family step treats an error, step by step on the grid of ``steps`` (Chapter 08's sampler section).

    Writing the step as :math:`x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + c\,(x_t - \sqrt{\bar\alpha_t}\,\hat x_0)
    + \varsigma z` with :math:`c = \sqrt{1-\bar\alpha_s-\varsigma^2}/\sqrt{1-\bar\alpha_t}` (the re-used noise
    is :math:`\hat\epsilon = (x_t - \sqrt{\bar\alpha_t}\hat x_0)/\sqrt{1-\bar\alpha_t}`), returns arrays over the
    steps: ``"t"``; ``"x0_gain"`` :math:`\sqrt{(1-\bar\alpha_t)/\bar\alpha_t}`, what an error :math:`\delta` in
    :math:`\hat\epsilon` becomes in :math:`\hat x_0`; ``"state_weight"`` :math:`c`, how much of the current
    state (and of any error it carries) the step keeps, :math:`\hat x_0` held fixed (eta = 0:
    :math:`\sqrt{(1-\bar\alpha_s)/(1-\bar\alpha_t)}`, near 1 while the noise is high; eta = 1: DDPM's
    posterior-mean weight :math:`\sqrt{\bar\alpha_t/\bar\alpha_s}\,(1-\bar\alpha_s)/(1-\bar\alpha_t)`);
    ``"memory"``: the running product of the weights, the share of the state after step 0 still in the
    state after each step; ``"fresh_noise"`` :math:`\varsigma`.
    """
    import numpy as np

    _checks.number("eta", eta, low=0)
    ts = time_grid(schedule, steps, spacing)
    ab = alpha_bars(schedule, ts)
    gain, weight, fresh = [], [], []
    for a, a_next in zip(ab[:-1], ab[1:]):
        noise_std = eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
        gain.append(math.sqrt((1 - a) / a))
        weight.append(math.sqrt(max(1 - a_next - noise_std ** 2, 0.0)) / math.sqrt(1 - a))
        fresh.append(noise_std)
    weight = np.asarray(weight)
    return {"t": ts[:steps].numpy(), "x0_gain": np.asarray(gain), "state_weight": weight,
            "memory": np.cumprod(weight), "fresh_noise": np.asarray(fresh)}


def check_clip(clip, name: str = "clip"):
    """``clip`` is None or a (low, high) pair of numbers with low < high."""
    if clip is None:
        return None
    if not (isinstance(clip, (tuple, list)) and len(clip) == 2):
        raise TypeError(f"{name} must be None or a (low, high) pair, got {clip!r}")
    lo, hi = _checks.number(f"{name}[0]", clip[0]), _checks.number(f"{name}[1]", clip[1])
    if lo >= hi:
        raise ValueError(f"{name} must have low < high, got {tuple(clip)}")
    return lo, hi


@torch.no_grad()
def ddim_loop(predict: Predict, x_T: torch.Tensor, schedule, steps: int, *, eta: float = 0.0, spacing="leading",
              clip=None, generator=None, callback=None, progress: bool = True, desc: str = "DDIM",
              noise: str = "gaussian", noise_options: dict | None = None) -> torch.Tensor:
    """Walk ``steps`` timesteps of ``spacing`` with the DDIM update, asking ``predict`` at each.

    ``noise``: the fresh noise of each step when ``eta`` > 0, "gaussian" or "simplex" (for a network trained
    on simplex noise, :func:`ddlearn.losses.simple_loss` with ``noise="simplex"``); ``noise_options`` go to
    :func:`ddlearn.simplex.simplex_noise` (e.g. ``{"octaves": 6}``).

    The loop runs without gradients; a hook that needs them (DPS) enables them
    for its own computation and returns detached tensors.
    """
    _checks.number("eta", eta, low=0)
    _checks.choice("noise", noise, NOISES)
    clip = check_clip(clip)
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)
    ts = time_grid(schedule, steps, spacing)
    ab = alpha_bars(schedule, ts)
    x = x_T
    for i in progress_bar(range(steps), progress=progress, desc=desc):
        t = ts[i].item()
        x0, eps, shift = predict(x, t, ab[i], i)
        if clip is not None:
            x0 = x0.clamp(*clip)
            eps = param.x0_to_eps(x, x0, ab[i])
        x = ddim_step(x0, eps, ab[i], ab[i + 1], eta, generator, noise, noise_options)
        if shift is not None:
            x = x - shift
        if callback is not None:
            callback(Step(i, t, x, x0))
    return x


@declare(evals_per_step=1)
def sample_ddim(model, x_T, schedule, steps, *, eta=0.0, spacing="quadratic", generator=None,
                callback=None, progress=True):
    """DDIM with ``steps`` model evaluations; ``eta`` = 0 deterministic, 1 DDPM-like.

    Follows the sampler contract of :mod:`ddlearn.samplers`; ``spacing`` picks the
    timesteps (:mod:`ddlearn.samplers.spacing`).
    Default grid: ``spacing="quadratic"``
    (chosen by measurement: ``benchmarks/samplers.py``, 10 evaluations, the smallest worst-case loss against this sampler's best grid over the panel; see :mod:`ddlearn.samplers.spacing`).
    """
    check_inputs(model, x_T, schedule)
    return ddim_loop(model_predict(model), x_T, schedule, steps, eta=eta, spacing=spacing, generator=generator,
                     callback=callback, progress=progress)
