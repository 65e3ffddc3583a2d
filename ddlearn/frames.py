r"""The time-frame protocol: what a noising path gives every sampler, loss and restoration method.

A model is trained in one *time frame*: a rule that writes a noisy sample at
model time ``t`` as

.. math::  x_t = \alpha(t)\,x_0 + \sigma(t)\,\epsilon,

with ``t`` a float in ``[0, T-1]`` (the book's one convention, :mod:`ddlearn.schedules`;
0 is the least noisy). The book has three kinds:

* a discrete :class:`~ddlearn.schedules.Schedule` (DDPM): :math:`\alpha = \sqrt{\bar\alpha_t}`,
  :math:`\sigma = \sqrt{1-\bar\alpha_t}`;
* a score :class:`~ddlearn.sde.SDE` (VP, sub-VP, VE) read at ``u = t / (T-1)``: :math:`\alpha = m(u)`,
  :math:`\sigma = s(u)`;
* a flow-matching path (:class:`ddlearn.flow.FlowPath`): :math:`\alpha = 1-u`, :math:`\sigma = u`.

Everything a sampler needs from a frame follows from :math:`\alpha(t)` and
:math:`\sigma(t)`, so that is the whole protocol (:class:`TimeFrame`):

* ``T`` - the number of timesteps the model's time input is measured in;
* ``coefs(t)`` - :math:`(\alpha(t), \sigma(t))`, float64 tensors of t's shape;
* ``log_snr_at(t)`` - :math:`\lambda(t) = \log(\alpha^2/\sigma^2)`, decreasing in t;
* ``t_from_log_snr(lam)`` - its inverse (clamped to ``[0, T-1]``);
* ``log_snr_range()`` - :math:`(\lambda(T-1), \lambda(0))`, the noise levels the frame covers;
* ``input_scale(t)`` - what the frame's model is fed at time t: ``input_scale(t) * x_vp``, with
  ``x_vp = x / sqrt(alpha^2 + sigma^2)`` the variance-preserving state (1 for a schedule and for every
  SDE, whose continuous-time models see the VP state, :meth:`ddlearn.sde.SDE.model_input`;
  :math:`\sqrt{\alpha^2+\sigma^2}` for a flow path, whose model sees x itself). The model's time
  input is ``t`` in every frame.

Two frames at the same log-SNR hold the same information: ``x / alpha = x_0 +
(sigma / alpha) eps`` is the same variable in both. So a model trained in one
frame answers in any other by (1) finding its own time with the same log-SNR,
(2) feeding it the VP state times its ``input_scale``, (3) converting its prediction
(:func:`ddlearn.param.adapt` does the three). An eps prediction is the same in
every frame; a velocity is not (it is a derivative along one path).

A frame that also gives ``coef_derivs(t)`` - :math:`(d\alpha/du, d\sigma/du)`
with ``u = t / (T-1)`` - can host velocity models.

The protocol is structural: a frame is anything with these members, so the
modules that define frames import nothing from here. A recipe names its frame
(its ``schedule`` field) from the registry :data:`ddlearn.recipe.FRAMES`
(linear, cosine, sigmoid, vp, subvp, ve, flow; add one with
:func:`ddlearn.recipe.register_frame`).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch



@runtime_checkable
class TimeFrame(Protocol):
    """What every time frame gives (see the module docstring)."""

    T: int

    def coefs(self, t) -> tuple[torch.Tensor, torch.Tensor]: ...

    def log_snr_at(self, t) -> torch.Tensor: ...

    def t_from_log_snr(self, lam) -> torch.Tensor: ...

    def log_snr_range(self) -> tuple[float, float]: ...

    def input_scale(self, t) -> torch.Tensor: ...


def is_frame(obj) -> bool:
    """Does ``obj`` give everything :class:`TimeFrame` asks for?"""
    return isinstance(obj, TimeFrame)


def check_frame(frame, name: str = "frame"):
    """``frame`` itself if it is a time frame, else a TypeError naming ``name`` and what a frame is."""
    if not is_frame(frame):
        raise TypeError(f"{name} must be a time frame (a ddlearn.schedules.Schedule, a ddlearn.sde.SDE or a "
                        f"ddlearn.flow.FlowPath: anything with T, coefs, log_snr_at, t_from_log_snr, "
                        f"log_snr_range and input_scale), got {type(frame).__name__}")
    return frame


def has_velocity(frame) -> bool:
    """Can ``frame`` host a velocity model (does it give ``coef_derivs``)?"""
    return callable(getattr(frame, "coef_derivs", None))


def time_at_log_snr(frame, lam) -> torch.Tensor:
    """The time in ``frame`` whose log-SNR is ``lam`` (float64).

    A level a little outside the frame's range is clamped to it (the endpoints of VP(0.1, 20) and
    linear(1000) differ by about 0.05 nats); more than one nat outside is a ValueError: a model of
    this frame never saw that noise level.
    """
    lam = torch.as_tensor(lam, dtype=torch.float64)
    lo, hi = frame.log_snr_range()
    if lam.min() < lo - 1.0 or lam.max() > hi + 1.0:
        raise ValueError(f"the noise level asked for (log-SNR {lam.min().item():.2f}..{lam.max().item():.2f}) "
                         f"lies outside what the model was trained on (log-SNR {lo:.2f}..{hi:.2f})")
    return frame.t_from_log_snr(lam.clamp(lo, hi))


def matching_time(src, dst, t_dst) -> torch.Tensor:
    """The time in frame ``src`` with the log-SNR frame ``dst`` has at ``t_dst`` (:func:`time_at_log_snr`)."""
    if src is dst:
        return torch.as_tensor(t_dst, dtype=torch.float64)
    return time_at_log_snr(src, dst.log_snr_at(t_dst))


__all__ = ["TimeFrame", "is_frame", "check_frame", "has_velocity", "time_at_log_snr", "matching_time"]
