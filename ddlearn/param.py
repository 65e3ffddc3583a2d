r"""The one place that converts between eps, x0, v and score predictions.

With :math:`x_t = a\,x_0 + s\,\epsilon`, :math:`a = \sqrt{\bar\alpha_t}`,
:math:`s = \sqrt{1-\bar\alpha_t}`:

* x0 from eps:     :math:`\hat x_0 = (x_t - s\,\hat\epsilon) / a`
* eps from x0:     :math:`\hat\epsilon = (x_t - a\,\hat x_0) / s`
* score from eps:  :math:`\nabla \log p_t(x_t) = -\hat\epsilon / s`
* v (Salimans & Ho 2022): :math:`v = a\,\epsilon - s\,x_0`, so
  :math:`\hat x_0 = a\,x_t - s\,\hat v` and :math:`\hat\epsilon = s\,x_t + a\,\hat v`.

Every function takes ``alpha_bar`` as a tensor of shape (B,) (one value per
item, e.g. ``schedule.alpha_bar(t)``) or a scalar, and broadcasts it over the
remaining dimensions of x. Nothing else in the library re-derives these lines.
"""
from __future__ import annotations

import torch

from . import _checks, frames

KINDS = ("eps", "x0", "v", "score")   # the kinds convert() turns into each other (given alpha-bar)


def per_item(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-item values ``v`` (B,) shaped (B, 1, ..., 1) to broadcast over ``like`` (B, ...), in its dtype and device."""
    return v.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def _coefs(alpha_bar, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ab = torch.as_tensor(alpha_bar, dtype=torch.float64)
    if ab.ndim == 0:
        ab = ab.reshape(1)
    if ab.ndim != 1 or ab.numel() not in (1, x.shape[0]):
        raise ValueError(f"alpha_bar must be a scalar or of shape ({x.shape[0]},), got shape {tuple(ab.shape)}")
    if (ab <= 0).any() or (ab > 1).any():
        raise ValueError("alpha_bar must lie in (0, 1]")
    return per_item(ab.sqrt(), x), per_item((1 - ab).sqrt(), x)


def eps_to_x0(x_t, eps, alpha_bar):
    a, s = _coefs(alpha_bar, x_t)
    return (x_t - s * eps) / a


def x0_to_eps(x_t, x0, alpha_bar):
    a, s = _coefs(alpha_bar, x_t)
    return (x_t - a * x0) / s


def eps_to_score(eps, alpha_bar):
    _, s = _coefs(alpha_bar, eps)
    return -eps / s


def score_to_eps(score, alpha_bar):
    _, s = _coefs(alpha_bar, score)
    return -s * score


def eps_to_v(x_t, eps, alpha_bar):
    a, s = _coefs(alpha_bar, x_t)
    x0 = (x_t - s * eps) / a
    return a * eps - s * x0


def v_to_eps(x_t, v, alpha_bar):
    a, s = _coefs(alpha_bar, x_t)
    return s * x_t + a * v


def v_to_x0(x_t, v, alpha_bar):
    a, s = _coefs(alpha_bar, x_t)
    return a * x_t - s * v


def convert(pred: torch.Tensor, x_t: torch.Tensor, alpha_bar, *, src: str, dst: str) -> torch.Tensor:
    """Convert a prediction of kind ``src`` into kind ``dst`` (each one of eps, x0, v, score)."""
    _checks.choice("src", src, KINDS)
    _checks.choice("dst", dst, KINDS)
    _checks.tensor("x_t", x_t, finite=False)
    _checks.tensor("pred", pred, finite=False)
    _checks.same_shape("x_t", x_t, "pred", pred)
    if src == dst:
        return pred
    to_eps = {"eps": lambda p: p, "x0": lambda p: x0_to_eps(x_t, p, alpha_bar),
              "v": lambda p: v_to_eps(x_t, p, alpha_bar), "score": lambda p: score_to_eps(p, alpha_bar)}
    eps = to_eps[src](pred)
    from_eps = {"eps": lambda e: e, "x0": lambda e: eps_to_x0(x_t, e, alpha_bar),
                "v": lambda e: eps_to_v(x_t, e, alpha_bar), "score": lambda e: eps_to_score(e, alpha_bar)}
    return from_eps[dst](eps)


# ---- velocities, and any model in any time frame (:mod:`ddlearn.frames`) ----------------------------------
def velocity_to_eps(x, velocity, alpha, sigma, d_alpha, d_sigma):
    r"""eps from a path velocity :math:`v = \alpha' x_0 + \sigma' \epsilon` at :math:`x = \alpha x_0 + \sigma\epsilon`:
    eliminating :math:`x_0`, :math:`\epsilon = (\alpha v - \alpha' x) / (\alpha\sigma' - \alpha'\sigma)`.
    The coefficients are per item (B,) or scalars; x is the path's own state."""
    a, s, da, ds = (per_item(torch.as_tensor(c, dtype=torch.float64).reshape(-1), x) for c in
                    (alpha, sigma, d_alpha, d_sigma))
    return (a * velocity - da * x) / (a * ds - da * s)


def eps_to_velocity(x, eps, alpha, sigma, d_alpha, d_sigma):
    r"""The path velocity from eps: :math:`v = \alpha' x_0 + \sigma'\epsilon` with
    :math:`x_0 = (x - \sigma\epsilon)/\alpha` (so alpha must be > 0: not at the path's noise end)."""
    a, s, da, ds = (per_item(torch.as_tensor(c, dtype=torch.float64).reshape(-1), x) for c in
                    (alpha, sigma, d_alpha, d_sigma))
    return da * (x - s * eps) / a + ds * eps


PREDICTIONS = KINDS + ("velocity",)


class Adapted(torch.nn.Module):
    """An eps-model in frame ``to`` made from ``model``, trained in ``frame`` to predict ``prediction``
    (see :func:`adapt`)."""

    def __init__(self, model, frame, prediction: str, to):
        super().__init__()
        self.model, self.frame, self.prediction, self.to_frame = model, frame, prediction, to
        self.T = to.T

    def forward(self, x_in: torch.Tensor, t) -> torch.Tensor:
        _checks.tensor("x_in", x_in, finite=False)
        tt = _checks.timesteps("t", t, self.to_frame.T, batch=x_in.shape[0])
        x_vp = x_in / per_item(self.to_frame.input_scale(tt), x_in)          # the variance-preserving state
        ts = frames.matching_time(self.frame, self.to_frame, tt)             # the model's time, same log-SNR
        a, s = self.frame.coefs(ts)
        pred = self.model(x_vp * per_item(self.frame.input_scale(ts), x_in), ts.to(dtype=x_in.dtype,
                                                                                     device=x_in.device))
        pred = _checks.model_output(pred, x_in, where=f"t={tt[0].item():g}")
        kind = self.prediction
        if kind == "velocity":
            da, ds = self.frame.coef_derivs(ts)
            return velocity_to_eps(x_vp * per_item((a ** 2 + s ** 2).sqrt(), x_in), pred, a, s, da, ds)
        if kind == "score":   # the gradient in the frame's own state x = norm * x_vp
            return -per_item(s, x_in) * pred
        return convert(pred, x_vp, a ** 2 / (a ** 2 + s ** 2), src=kind, dst="eps")


def adapt(model, frame, *, prediction: str = "eps", to=None):
    r"""An eps-model for any sampler: ``adapt(model, frame, prediction=..., to=schedule)(x_t, t) -> eps``.

    ``model(x, t)`` was trained in time frame ``frame`` (a Schedule, an SDE, a
    :class:`~ddlearn.flow.FlowPath`, ...; :mod:`ddlearn.frames`) to predict
    ``prediction``: ``"eps"``, ``"x0"``, ``"v"`` (Salimans & Ho), ``"score"``
    (the gradient in the frame's own state) or ``"velocity"`` (:math:`dx/du`
    along the path, u = t / (T-1); the frame must give ``coef_derivs``). The
    result answers in frame ``to`` (default ``frame``): called as a model of
    ``to`` with ``to``'s input at ``to``'s time t, it finds the model's time
    with the same log-SNR, feeds it the same information in its own input,
    and converts what it predicts to eps (which is the same in every frame).
    So DDIM, DPM-Solver++, DPS, GDP, ... run unchanged on a flow-matching
    model: ``sample_ddim(adapt(v_model, FlowPath(), prediction="velocity",
    to=schedules.linear()), x_T, schedules.linear(), 50)``.

    An eps-model asked for in its own frame is returned as it is.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    frames.check_frame(frame, "frame")
    to = frame if to is None else frames.check_frame(to, "to")
    _checks.choice("prediction", prediction, PREDICTIONS)
    _checks.same_T(model, frame.T, "frame")
    if prediction == "velocity" and not frames.has_velocity(frame):
        raise ValueError(f"prediction='velocity' needs a frame with coef_derivs (a path's d alpha/du, d sigma/du), "
                         f"such as ddlearn.flow.FlowPath; {type(frame).__name__} has none")
    if prediction == "eps" and to is frame:
        return model
    return Adapted(model, frame, prediction, to)
