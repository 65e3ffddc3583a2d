r"""What the restoration samplers share, written once: :func:`check_measurement`, the check that a
measurement ``y`` fits the operator and the sampler's start ``x_T``, used by :mod:`.posterior` (DPS, x0
guidance, DDNM), :mod:`.consistency` (Song et al.'s projection, score-MRI) and :mod:`.gdp`.

(The range-null-space projection :math:`A^+ y + (I - A^+ A)\,x` has its one home in
:meth:`ddlearn.operators.Operator.project`.)
"""
from __future__ import annotations

import torch

from ..operators import Operator


def check_measurement(operator, y, x_T: torch.Tensor, name: str = "y", *, linear_for: str | None = None) -> None:
    """Check that ``y`` is a measurement by ``operator`` of images shaped like ``x_T``.

    ``operator`` must be an :class:`~ddlearn.operators.Operator` (a linear one
    when ``linear_for`` names what needs it, e.g. ``"sample_ddnm"``); ``y`` a
    finite real or complex tensor with the shape of ``operator(x)`` for x of
    ``x_T``'s shape. A ``TypeError`` / ``ValueError`` names ``name``, the shape
    expected, ``x_T``'s shape and what came (and, when no image at all gives
    such a y, the operator's own explanation).
    """
    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(operator).__name__}")
    if linear_for is not None and not operator.linear:
        raise TypeError(f"{linear_for} needs a linear operator with a pseudo-inverse; {type(operator).__name__} "
                        "is non-linear (use sample_dps)")
    Operator._tensor(name, y)
    operator.check_y_kind(y, name)  # real "k-space" (an image passed as data), or complex pixels
    with torch.no_grad():
        want = operator(torch.zeros_like(x_T)).shape
    if y.shape == want:
        return
    why = ""
    try:  # can y be a measurement of some other image? the operator says why not
        operator.check_y(y, name)
    except ValueError as e:
        why = f" ({e})"
    except NotImplementedError:  # an operator with forward only (allowed for non-linear ones) cannot say more
        pass
    raise ValueError(f"{name} must have the shape of operator(x) {tuple(want)} for x_T of shape "
                     f"{tuple(x_T.shape)}, got {tuple(y.shape)}{why}")


__all__ = ["check_measurement"]
