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

from . import _checks

KINDS = ("eps", "x0", "v", "score")


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
