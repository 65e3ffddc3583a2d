r"""Sinusoidal time embedding (Vaswani et al. 2017, as used by Ho et al. 2020).

``t`` is a float in the schedule's timestep units (0..T-1, fractional allowed,
see :mod:`ddlearn.schedules`), so one network serves discrete samplers and
continuous-time ones alike. Frequency k of ``dim/2`` is
:math:`\omega_k = \text{max\_period}^{-k/(\text{dim}/2)}`; the embedding is
:math:`[\sin(\omega t), \cos(\omega t)]`. With max_period = 10000 and t up to
1000 the slowest frequency changes little over the whole range and the
fastest changes within one step, so nearby timesteps stay distinguishable.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _checks


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features (B, dim) of float timesteps ``t`` (B,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class TimeEmbedding(nn.Module):
    """Sinusoid of t, then a two-layer MLP: (B,) -> (B, out_dim)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.dim))


def check_inputs(x_t, t, T: int, *, ndim: int, channels: int | None = None, name: str = "x_t", net=None):
    """Validate a network's ``x_t`` and ``t``; return t as a float32 tensor (B,) on x_t's device.

    ``t`` may be a number (broadcast over the batch) or a tensor of shape (B,)
    with values in [0, T-1]; anything else is a ValueError naming ``t``. With
    ``net``, x_t must have the dtype of the net's weights (a TypeError saying
    which, instead of a dtype clash inside conv2d).
    """
    _checks.tensor(name, x_t, ndim=ndim)
    if net is not None:
        want = next((p.dtype for p in net.parameters() if p.is_floating_point()), None)
        if want is not None and x_t.dtype != want:
            raise TypeError(f"{name} has dtype {x_t.dtype} but {type(net).__name__}'s weights are {want}: "
                            f"pass {name}.to({want}) (or convert the network with .to({x_t.dtype}))")
    if channels is not None and x_t.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels (dim 1), got shape {tuple(x_t.shape)}")
    tt = _checks.timesteps("t", t, T, batch=x_t.shape[0])
    return tt.to(device=x_t.device, dtype=torch.float32)
