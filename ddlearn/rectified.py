r"""Rectified flow's reflow and the straightness of a flow (Liu, Gong & Liu 2023).

A flow-matching model trained on independent pairs (x_0, eps) learns a velocity
field whose ODE paths are *curved*: where straight lines from different pairs
cross, the learnt velocity is their average. Liu et al.'s **reflow** rewires the
pairs: draw noise :math:`z`, carry it to :math:`x = \text{ODE}(z)` with the
model, and train again on the pairs (x, z) it made. Each pair's straight line
is now (nearly) a path the flow already takes, crossings are rarer, and the new
flow is straighter, so fewer ODE steps reach the same samples (one step when
perfectly straight).

The **straightness** of a flow :math:`dZ_u/du = v(Z_u, u)` from u = 1 to 0 is

.. math:: S = \int_0^1 \mathbb E\,\big\| (Z_1 - Z_0) - v(Z_u, u) \big\|^2\,du ,

zero exactly when every path is a straight line travelled at constant speed
(Liu et al. 2023, Definition 3.3); :func:`straightness` estimates it on a fine
Euler grid.
"""
from __future__ import annotations

import copy

import torch

from . import _checks
from .losses import flow_matching_loss
from .samplers.flow import sample_flow


@torch.no_grad()
def reflow_pairs(model, path, noise: torch.Tensor, *, steps: int = 100, solver: str = "heun") -> torch.Tensor:
    """The samples ``model``'s flow carries ``noise`` to (``steps`` ODE steps): reflow's x_0 for each eps."""
    _checks.tensor("noise", noise)
    return sample_flow(model, noise, path, steps, solver=solver, progress=False)


def reflow(model, path, x0: torch.Tensor, noise: torch.Tensor, *, steps: int, batch_size: int = 512,
           lr: float = 1e-3, ema_decay: float = 0.995, generator: torch.Generator | None = None,
           progress: bool = False) -> torch.nn.Module:
    """One reflow: a copy of ``model`` trained ``steps`` steps of flow matching on the fixed pairs (x0, noise).

    Adam with the given ``lr``, an EMA of the weights (``ema_decay``) returned in eval mode; the caller's model
    and tensors are left as they are.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (its copy is trained), got {type(model).__name__}")
    _checks.tensor("x0", x0)
    _checks.tensor("noise", noise)
    _checks.same_shape("x0", x0, "noise", noise)
    _checks.positive_int("steps", steps)
    _checks.positive_int("batch_size", batch_size)
    _checks.number("lr", lr, low=0, low_open=True)
    _checks.number("ema_decay", ema_decay, low=0, high=1)
    _checks.generator("generator", generator)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    net = copy.deepcopy(model).train()
    for p in net.parameters():
        p.requires_grad_(True)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = x0.shape[0]
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="reflow", leave=False)
    for _ in it:
        idx = torch.randint(0, n, (batch_size,), generator=g)
        loss = flow_matching_loss(net, x0[idx], path, generator=g, noise=noise[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters()):
                pe.lerp_(p, 1 - ema_decay)
    return ema


@torch.no_grad()
def straightness(model, path, noise: torch.Tensor, *, steps: int = 100) -> float:
    r"""Liu et al.'s straightness :math:`\int_0^1 E\|(Z_1 - Z_0) - v(Z_u, u)\|^2 du` of ``model``'s flow from
    ``noise``, on a uniform Euler grid of ``steps`` steps (mean over the points and the grid; per dimension
    summed)."""
    _checks.tensor("noise", noise)
    _checks.positive_int("steps", steps)
    states = [noise]
    end = sample_flow(model, noise, path, steps, progress=False, callback=lambda s: states.append(s.x))
    du = -1.0 / steps                                          # the uniform Euler grid from u = 1 to 0
    total = noise - end                                        # Z_1 - Z_0 (u = 1 is the noise end)
    dev = [((b - a) / du - total).pow(2).flatten(1).sum(1) for a, b in zip(states, states[1:])]
    return float(torch.stack(dev).mean())


__all__ = ["reflow_pairs", "reflow", "straightness"]
