"""A small residual MLP for 2-D point clouds: eps_theta(x_t, t), shape (B, D) -> (B, D).

Each block adds the time embedding before a LayerNorm-SiLU-Linear update, so
every layer knows the noise level. About 70k parameters at the defaults: it
trains on the swiss roll in well under a minute on a laptop CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks
from .embed import TimeEmbedding, check_inputs


class _Block(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.lin1 = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, hidden)

    def forward(self, h, temb):
        z = self.lin1(nn.functional.silu(self.norm(h + temb)))
        return h + self.lin2(nn.functional.silu(z))


class MLP(nn.Module):
    """eps-predictor for points in R^dim. ``T``: the schedule length it accepts t for."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 64, T: int = 1000):
        super().__init__()
        for name, v in (("dim", dim), ("hidden", hidden), ("depth", depth), ("emb_dim", emb_dim), ("T", T)):
            _checks.positive_int(name, v)
        self.dim, self.T = dim, T
        self.embed = TimeEmbedding(emb_dim, hidden)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        tt = check_inputs(x_t, t, self.T, ndim=2, channels=self.dim, net=self)
        temb = self.embed(tt)
        h = self.inp(x_t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)
