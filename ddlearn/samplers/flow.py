r"""Flow matching's own sampler: integrate the velocity ODE from the noise (u = 1) to the data (u = 0).

A flow-matching model predicts :math:`v(x, u) = dx/du` on its path
(:class:`ddlearn.flow.FlowPath`), so sampling is solving

.. math:: \frac{dx}{du} = v_\theta(x, u),\qquad x_1 \sim \mathcal N(0, I),\quad u: 1 \to 0 .

* Euler: :math:`x_{u_{i+1}} = x_{u_i} + (u_{i+1} - u_i)\,v_\theta(x_{u_i}, u_i)`, one evaluation a step.
  On the straight path this *is* DDIM (eta 0) on the same noise levels: with
  :math:`\bar x = x/(1-u)` and :math:`\bar\sigma = u/(1-u)`, the Euler step is
  :math:`\bar x' = \bar x + (\bar\sigma' - \bar\sigma)\,\hat\epsilon`, DDIM's update in its
  variance-exploding form (derived in Chapter 10; ``tests/test_flow.py`` checks it to float precision).
* Heun: Euler's prediction, then the trapezoid rule with the slope there; two evaluations a step, the
  last step (to u = 0) stays Euler, so N steps cost 2N - 1 evaluations, as EDM's Heun.

The grid is uniform in u (``grid="uniform"``) or any decreasing tensor of u values from 1 to 0 (``steps + 1``
of them). The model is called as ``model(x, t)`` with ``t = u (T - 1)``, the book's timesteps. Any other
model runs on a flow path's sampler only as a velocity model; the other direction, a velocity model on any
sampler of the book, is :func:`ddlearn.param.adapt`.
"""
from __future__ import annotations

import torch

from .. import _checks
from .base import Step, declare, progress_bar

SOLVERS = ("euler", "heun")


def flow_grid(steps: int, grid="uniform") -> torch.Tensor:
    """The ``steps + 1`` values of u a flow sampler visits, from 1 down to 0 (float64)."""
    _checks.positive_int("steps", steps)
    if isinstance(grid, str):
        _checks.choice("grid", grid, ("uniform",))
        return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    g = _checks.tensor("grid", _checks.as_tensor("grid", grid, dtype=torch.float64), ndim=1)
    if g.numel() != steps + 1:
        raise ValueError(f"grid must hold steps + 1 = {steps + 1} values of u, got {g.numel()}")
    if (g[1:] >= g[:-1]).any() or g[0] > 1 or g[-1] < 0:
        raise ValueError("grid must decrease strictly, from at most 1 to at least 0")
    return g.clone()


def _velocity(model, x, u: float, T: int, step: int) -> torch.Tensor:
    t = torch.full((x.shape[0],), u * (T - 1), dtype=x.dtype, device=x.device)
    return _checks.model_output(model(x, t), x, where=f"step {step} (u={u:g})")


def _x0(path, x, v, u: float):
    """The clean sample the velocity points to: x0 = (sigma' x - sigma v) / (alpha sigma' - alpha' sigma)."""
    t = torch.tensor([u * (path.T - 1)], dtype=torch.float64)
    (a,), (s,) = path.coefs(t)
    (da,), (ds,) = path.coef_derivs(t)
    return (float(ds) * x - float(s) * v) / float(a * ds - da * s)


@declare(evals_per_step=lambda solver="euler", **_: 1 if solver == "euler" else 2)
@torch.no_grad()
def sample_flow(model, x_T: torch.Tensor, path, steps: int, *, solver: str = "euler", grid="uniform",
                generator=None, callback=None, progress: bool = True) -> torch.Tensor:
    """Solve the flow ODE dx/du = v(x, u) from u = 1 to 0 in ``steps`` steps (see the module docstring).

    ``path``: the model's :class:`~ddlearn.flow.FlowPath`; ``solver``: ``"euler"`` or ``"heun"``;
    ``grid``: ``"uniform"`` or a tensor of ``steps + 1`` decreasing u values. ``generator`` is accepted for
    the sampler contract and unused (the ODE draws no noise). ``callback(Step)`` gets t = u (T - 1) and the
    x0 the velocity points to.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_u, t) -> velocity, got {type(model).__name__}")
    _checks.tensor("x_T", x_T, ndim=(2, 3, 4, 5))
    if not callable(getattr(path, "coef_derivs", None)):
        raise TypeError(f"path must be a flow path (ddlearn.flow.FlowPath), got {type(path).__name__}")
    _checks.same_T(model, path.T, "path")
    _checks.choice("solver", solver, SOLVERS)
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)
    us = flow_grid(steps, grid).tolist()
    x = x_T.clone()
    for i in progress_bar(range(steps), progress=progress, desc=f"flow {solver}"):
        u, u_next = us[i], us[i + 1]
        v = _velocity(model, x, u, path.T, i)
        x_pred = x + (u_next - u) * v
        if solver == "heun" and i < steps - 1:
            v_next = _velocity(model, x_pred, u_next, path.T, i)
            x_pred = x + (u_next - u) * 0.5 * (v + v_next)
        if callback is not None:
            callback(Step(i=i, t=u * (path.T - 1), x=x_pred, x0=_x0(path, x, v, u)))
        x = x_pred
    return x


__all__ = ["SOLVERS", "flow_grid", "sample_flow"]
