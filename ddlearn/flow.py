r"""Flow matching's probability paths, as a time frame (:mod:`ddlearn.frames`).

A flow-matching model (Lipman et al. 2023; Liu et al. 2023, "rectified flow";
Albergo & Vanden-Eijnden 2023) is trained on a path between data and noise,

.. math::  x_u = \alpha(u)\,x_0 + \sigma(u)\,\epsilon,\qquad u \in [0, 1],

and predicts the path's velocity :math:`v = dx_u/du = \alpha'(u)\,x_0 + \sigma'(u)\,\epsilon`.
The book's convention keeps u = 0 for the data and u = 1 for the noise (as its
SDEs do; Lipman et al. run time the other way), and the model's time input is
the timestep ``t = u (T - 1)`` like every other model in the book.

:class:`FlowPath` is the conditional optimal-transport / rectified-flow path
:math:`\alpha = 1 - u`, :math:`\sigma = u` (``sigma_min = 0``), or Lipman et
al.'s :math:`\sigma = \sigma_{min} + (1 - \sigma_{min})\,u`. Its velocity is
:math:`v = \epsilon - x_0` (for ``sigma_min = 0``): a straight line from each
data point to its noise. Its log-SNR :math:`2\log((1-u)/\sigma(u))` runs from
:math:`+\infty` to :math:`-\infty`, so any schedule's noise levels have a time
on it, and a velocity model answers any sampler through
:func:`ddlearn.param.adapt`.
"""
from __future__ import annotations

import math

import torch

from . import _checks


class FlowPath:
    r"""The straight path :math:`x_u = (1-u)\,x_0 + (\sigma_{min} + (1-\sigma_{min})u)\,\epsilon` as a time frame."""

    name = "flow"

    def __init__(self, T: int = 1000, sigma_min: float = 0.0):
        _checks.positive_int("T", T, minimum=2)
        self.T = T
        self.sigma_min = _checks.number("sigma_min", sigma_min, low=0, high=1)
        if self.sigma_min >= 1:
            raise ValueError(f"sigma_min must be < 1 (the noise end has sigma = 1), got {sigma_min}")

    def _u(self, t) -> torch.Tensor:
        return _checks.timesteps("t", t, self.T).reshape(-1) / (self.T - 1)

    # ---- the time-frame protocol ----------------------------------------------
    def coefs(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, sigma) = (1 - u, sigma_min + (1 - sigma_min) u) at timesteps ``t`` (u = t / (T - 1)), float64."""
        u = self._u(t)
        return 1.0 - u, self.sigma_min + (1.0 - self.sigma_min) * u

    def coef_derivs(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(d alpha / du, d sigma / du) = (-1, 1 - sigma_min)."""
        u = self._u(t)
        return -torch.ones_like(u), torch.full_like(u, 1.0 - self.sigma_min)

    def log_snr_at(self, t) -> torch.Tensor:
        """2 log((1 - u) / sigma(u)): +inf at u = 0 when sigma_min = 0, -inf at u = 1."""
        a, s = self.coefs(t)
        return 2 * (torch.log(a) - torch.log(s))

    def t_from_log_snr(self, lam) -> torch.Tensor:
        r"""The inverse of :meth:`log_snr_at`: with :math:`r = e^{-\lambda/2} = \sigma/\alpha`,
        :math:`u = (r - \sigma_{min}) / (r + 1 - \sigma_{min})`, clamped to [0, 1]; times T - 1."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        if torch.isnan(lam).any():
            raise ValueError("lam contains NaN; log-SNR values must be numbers")
        r = torch.exp(-0.5 * lam)
        u = torch.where(torch.isinf(r), torch.ones_like(r), (r - self.sigma_min) / (r + 1.0 - self.sigma_min))
        return u.clamp(0, 1) * (self.T - 1)

    def log_snr_range(self) -> tuple[float, float]:
        """(-inf, log-SNR at u = 0): +inf for sigma_min = 0, else -2 log(sigma_min)."""
        return -math.inf, (math.inf if self.sigma_min == 0 else -2 * math.log(self.sigma_min))

    def input_scale(self, t) -> torch.Tensor:
        """sqrt(alpha^2 + sigma^2): the model sees x_u itself, not the variance-preserving state."""
        a, s = self.coefs(t)
        return (a ** 2 + s ** 2).sqrt()

    # ---- the path -----------------------------------------------------------------
    def sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_u, target velocity alpha' x_0 + sigma' eps) for clean ``x0``, timesteps ``t`` (B,), ``noise``."""
        _checks.tensor("x0", x0)
        _checks.same_shape("x0", x0, "noise", noise)
        a, s = self.coefs(t)
        da, ds = self.coef_derivs(t)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        cast = dict(dtype=x0.dtype, device=x0.device)
        a, s, da, ds = (c.to(**cast).reshape(shape) for c in (a, s, da, ds))
        return a * x0 + s * noise, da * x0 + ds * noise

    def __repr__(self) -> str:
        return f"FlowPath(T={self.T}, sigma_min={self.sigma_min:g})"


__all__ = ["FlowPath"]
