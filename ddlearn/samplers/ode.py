r"""The probability-flow ODE (Song et al. 2021): sampling, encoding and exact likelihood.

.. math:: \frac{dx}{du} = f(x, u) - \tfrac12 g(u)^2 \nabla_x \log p_u(x)

has the same marginals p_u as the forward SDE, but is deterministic, so it
maps noise to data and back (an invertible "encoder"), and the instantaneous
change of variables (Chen et al. 2018) gives exact log-likelihoods:

.. math:: \log p_{u_{min}}(x(u_{min})) = \log p_1(x(1)) + \int_{u_{min}}^1 \nabla\cdot v(x(u), u)\,du .

Samplers follow the signature of :mod:`ddlearn.samplers.reverse_sde` (the same
``schedule`` = model frame, ``sde``, ``x_T`` standard normal, ``u_min``):

* :func:`sample_pf_ode`: fixed steps, ``solver="euler"`` (``steps`` evaluations)
  or ``"heun"`` (``2 * steps``); ``solver="rk45"`` hands the ODE to
  :func:`scipy.integrate.solve_ivp` (adaptive Dormand-Prince; ``steps`` is then
  only the number of states reported to ``callback``; wrap the model in
  :class:`~ddlearn.samplers.CountedModel` to read the evaluations, which equal
  scipy's ``nfev``).
* :func:`pf_ode_encode`: data -> latent (the ODE run forwards), the inverse of
  :func:`sample_pf_ode` with rk45.
* :func:`log_likelihood`: the divergence exact (autograd, one backward pass per
  dimension: fine in 2-D) or Hutchinson's estimate
  :math:`\nabla\cdot v \approx \epsilon^\top (\partial v/\partial x)\,\epsilon`
  with fixed Rademacher probes for the whole solve (FFJORD; Grathwohl et al. 2019).
* :func:`bits_per_dim`: nats to bits per dimension for dequantised discrete data.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import _checks
from .. import sde as sde_lib
from .base import Step, declare, progress_bar
from .reverse_sde import setup, tweedie_x0

SOLVERS = ("euler", "heun", "rk45")


def _solve_ivp(fun, u_span, y0, rtol, atol, t_eval=None):
    from scipy.integrate import solve_ivp

    sol = solve_ivp(fun, u_span, y0, method="RK45", rtol=rtol, atol=atol, t_eval=t_eval)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return sol


@declare(evaluations=lambda steps, solver="heun", **_: {"euler": steps, "heun": 2 * steps}.get(solver))
def sample_pf_ode(model, x_T, schedule, steps, *, sde=None, generator=None, callback=None, progress=True,
                  u_min=1e-3, solver="heun", rtol=1e-5, atol=1e-5):
    """Integrate the probability-flow ODE from u = 1 to ``u_min``; deterministic (``generator`` unused).

    ``solver``: "euler", "heun" (fixed uniform grid of ``steps`` steps) or "rk45" (adaptive, tolerances
    ``rtol``/``atol``; the callback gets the dense solution at ``steps`` evenly spaced times).
    """
    _checks.choice("solver", solver, SOLVERS)
    _checks.positive_int("steps", steps)
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)
    sde, score, grid, x = setup(model, x_T, schedule, steps, sde, u_min)

    def v(x, u, i):
        s = score(x, u, i)
        return sde.pf_ode_drift(x, u, s), s

    if solver == "rk45":
        shape, dtype = x.shape, x.dtype
        calls = [0]

        def fun(u, y):
            calls[0] += 1
            xx = torch.from_numpy(y).reshape(shape).to(dtype)
            return v(xx, u, calls[0])[0].reshape(-1).double().numpy()

        sol = _solve_ivp(fun, (1.0, u_min), x.reshape(-1).double().numpy(), rtol, atol, t_eval=grid[1:].numpy())
        for i in range(sol.y.shape[1]):
            xi = torch.from_numpy(sol.y[:, i]).reshape(shape).to(dtype)
            if callback is not None:
                callback(Step(i, float(sol.t[i]) * (sde.T - 1), xi, None))
        return torch.from_numpy(sol.y[:, -1]).reshape(shape).to(dtype)

    for i in progress_bar(range(steps), progress=progress, desc=f"PF-ODE ({solver})"):
        u, u_next = grid[i].item(), grid[i + 1].item()
        d, s = v(x, u, i)
        x_new = x + (u_next - u) * d
        if solver == "heun":  # trapezoid with the slope at the Euler guess (Heun 1900; Karras et al. 2022)
            d2, _ = v(x_new, u_next, i)
            x_new = x + (u_next - u) * 0.5 * (d + d2)
        x0 = tweedie_x0(sde, x, u, s) if callback is not None else None
        x = x_new
        if callback is not None:
            callback(Step(i, u * (sde.T - 1), x, x0))
    return x


def pf_ode_encode(model, x0, schedule, *, sde=None, u_min=1e-3, rtol=1e-5, atol=1e-5):
    """Run the probability-flow ODE forwards, data x(u_min) = x0 -> latent z = x(1) / prior_std.

    :func:`sample_pf_ode` with ``solver="rk45"`` and the same ``u_min`` decodes z back to x0.
    """
    sde, score, _, _ = setup(model, x0, schedule, None, sde, u_min)
    shape, dtype = x0.shape, x0.dtype

    def fun(u, y):
        xx = torch.from_numpy(y).reshape(shape).to(dtype)
        return sde.pf_ode_drift(xx, u, score(xx, u, -1)).reshape(-1).double().numpy()

    sol = _solve_ivp(fun, (u_min, 1.0), x0.reshape(-1).double().numpy(), rtol, atol)
    return torch.from_numpy(sol.y[:, -1]).reshape(shape).to(dtype) / sde.prior_std


def _divergence(v_fn, x, u, method, probes):
    """(v, div v) at x: exact (one backward per dimension) or Hutchinson with the given probes."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = v_fn(x, u)
        flat = v.reshape(x.shape[0], -1)
        if method == "exact":
            div = torch.zeros(x.shape[0], dtype=torch.float64)
            xf = x.reshape(x.shape[0], -1)
            for d in range(flat.shape[1]):
                g = torch.autograd.grad(flat[:, d].sum(), x, retain_graph=d < flat.shape[1] - 1)[0]
                div += g.reshape(x.shape[0], -1)[:, d].double()
            del xf
        else:
            div = torch.zeros(x.shape[0], dtype=torch.float64)
            for k, eps in enumerate(probes):
                g = torch.autograd.grad((v * eps).sum(), x, retain_graph=k < len(probes) - 1)[0]
                div += (g * eps).reshape(x.shape[0], -1).sum(1).double() / len(probes)
    return v.detach(), div


def log_likelihood(model, x, schedule, *, sde=None, divergence="exact", n_probes=1, generator=None,
                   u_min=1e-5, rtol=1e-5, atol=1e-5):
    r"""log p(x) in nats per item, through the probability-flow ODE (instantaneous change of variables).

    ``x`` is treated as the state x(u_min). Returns a dict: ``logp`` (B,) float64,
    ``prior_logp`` (B,), ``delta`` (B,) the integrated divergence, ``z`` the latent
    x(1), ``nfe`` the number of ODE right-hand-side evaluations (each one model
    call plus its backward passes). ``divergence``: "exact" or "hutchinson"
    (``n_probes`` Rademacher probes drawn once from ``generator``; unbiased for
    log p's integrand, so logp is unbiased only up to Jensen: average several runs).
    """
    _checks.choice("divergence", divergence, ("exact", "hutchinson"))
    _checks.positive_int("n_probes", n_probes)
    sde_, _, _, _ = setup(model, x, schedule, None, sde, u_min)
    raw = sde_lib.score_fn(model, sde_lib.check_frame(schedule), sde_)
    shape, dtype, B = x.shape, x.dtype, x.shape[0]
    n = x.numel()
    probes = [(torch.randint(0, 2, shape, generator=generator) * 2 - 1).to(dtype) for _ in range(n_probes)]
    nfe = [0]

    def v_fn(xx, u):
        return sde_.pf_ode_drift(xx, u, raw(xx, u))

    def fun(u, y):
        nfe[0] += 1
        xx = torch.from_numpy(y[:n]).reshape(shape).to(dtype)
        if not torch.isfinite(xx).all():
            raise ValueError(f"the ODE state became non-finite at u={u:g}")
        v, div = _divergence(v_fn, xx, u, divergence, probes)
        return np.concatenate([v.reshape(-1).double().numpy(), div.numpy()])

    y0 = np.concatenate([x.detach().reshape(-1).double().numpy(), np.zeros(B)])
    sol = _solve_ivp(fun, (u_min, 1.0), y0, rtol, atol)
    z = torch.from_numpy(sol.y[:n, -1]).reshape(shape)
    delta = torch.from_numpy(sol.y[n:, -1].copy())
    prior = sde_.prior_log_prob(z)
    return {"logp": prior + delta, "prior_logp": prior, "delta": delta, "z": z.to(dtype), "nfe": nfe[0]}


def bits_per_dim(logp, dims: int, bin_width: float) -> torch.Tensor:
    r"""Bits per dimension of discrete data from a density on its uniform dequantisation.

    Data on a grid of bins of width ``bin_width`` (in the model's units), dequantised by
    adding uniform noise over each bin: :math:`\log P(k) \ge \mathbb E_U \log p(k + U) + D \log w`
    (Theis et al. 2016), so :math:`\text{bpd} = -(\log p + D \log w) / (D \ln 2)`, an upper bound.
    """
    _checks.positive_int("dims", dims)
    _checks.number("bin_width", bin_width, low=0, low_open=True)
    logp = torch.as_tensor(logp, dtype=torch.float64)
    return -(logp + dims * math.log(bin_width)) / (dims * math.log(2))
