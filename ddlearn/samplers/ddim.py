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
"""
from __future__ import annotations

import math

import torch

from .. import _checks, param
from ._common import Step, check_inputs, eval_eps, progress_bar, randn_like
from .spacing import alpha_bars, timesteps


@torch.no_grad()
def sample_ddim(model, x_T, schedule, steps, *, eta=0.0, spacing="leading", generator=None,
                callback=None, progress=True):
    """DDIM with ``steps`` model evaluations; ``eta`` = 0 deterministic, 1 DDPM-like.

    Follows the sampler contract of :mod:`ddlearn.samplers`; ``spacing`` picks the
    timesteps (:mod:`ddlearn.samplers.spacing`).
    """
    check_inputs(model, x_T, schedule)
    _checks.number("eta", eta, low=0)
    ts = timesteps(schedule, steps, spacing)
    ab = alpha_bars(schedule, ts)
    x = x_T
    for i in progress_bar(range(steps), progress=progress, desc="DDIM"):
        a, a_next = ab[i], ab[i + 1]
        eps = eval_eps(model, x, ts[i].item(), step=i)
        x0 = param.eps_to_x0(x, eps, a)
        noise_std = eta * math.sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))
        x = math.sqrt(a_next) * x0 + math.sqrt(max(1 - a_next - noise_std ** 2, 0.0)) * eps
        if noise_std > 0:
            x = x + noise_std * randn_like(x, generator)
        if callback is not None:
            callback(Step(i, ts[i].item(), x, x0))
    return x
