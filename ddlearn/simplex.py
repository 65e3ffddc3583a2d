r"""Simplex noise (Perlin 2002; Gustavson's formulation): the smooth random fields AnoDDPM trains and samples with.

A sum of a few *octaves* of 2-D simplex noise, each half the feature size
and ``persistence`` times the weight of the last, standardised to zero mean
and unit variance per image. Used as the noise of the forward process
(:func:`ddlearn.losses.simple_loss` with ``noise="simplex"``) and of every
reverse step (:func:`ddlearn.restoration.anomaly.anomaly_map`) by Wyatt et
al.'s AnoDDPM (CVPR-W 2022): low-frequency noise hides large structures
that white noise of the same variance leaves visible.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import _checks
from .config import randn_like

_F2 = 0.5 * (math.sqrt(3.0) - 1.0)  # skew of the square grid onto the simplex (triangle) grid
_G2 = (3.0 - math.sqrt(3.0)) / 6.0  # and back
_GRADS = torch.tensor([[math.cos(a), math.sin(a)] for a in np.arange(12) * 2 * math.pi / 12], dtype=torch.float64)


def _simplex2d(X: torch.Tensor, Y: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """2-D simplex noise (Perlin 2002; Gustavson's formulation) at points (X, Y) of shape (N, H, W);
    gradients hashed by ``perm`` (N, 512), one permutation per field."""
    N = X.shape[0]
    s = (X + Y) * _F2
    i, j = torch.floor(X + s), torch.floor(Y + s)
    t = (i + j) * _G2
    x0, y0 = X - (i - t), Y - (j - t)  # offsets from the cell's first corner
    i1 = (x0 > y0).to(X.dtype)  # which triangle: the middle corner is (1, 0) or (0, 1)
    j1 = 1.0 - i1
    ii, jj = i.long() & 255, j.long() & 255
    i1l, j1l = i1.long(), j1.long()
    corners = ((x0, y0, 0, 0), (x0 - i1 + _G2, y0 - j1 + _G2, i1l, j1l), (x0 - 1 + 2 * _G2, y0 - 1 + 2 * _G2, 1, 1))

    def lookup(idx):  # perm[idx] per field
        return torch.gather(perm, 1, idx.reshape(N, -1)).reshape(idx.shape)

    out = torch.zeros_like(X)
    for dx, dy, oi, oj in corners:
        h = lookup((ii + oi + lookup((jj + oj) & 255)) & 511) % 12
        fall = (0.5 - dx * dx - dy * dy).clamp_min(0)
        out = out + fall ** 4 * (_GRADS[h, 0] * dx + _GRADS[h, 1] * dy)
    return 70.0 * out  # roughly [-1, 1]


def simplex_noise(shape, *, generator: torch.Generator | None = None, scale: float | None = None,
                  octaves: int = 4, persistence: float = 0.8, dtype=torch.float32) -> torch.Tensor:
    """Multi-octave simplex noise of ``shape`` (B, C, H, W), zero mean and unit variance per image.

    ``scale``: the feature size of the first octave in pixels (default H / 4);
    each further octave halves it and weighs ``persistence`` times the last
    (AnoDDPM: 6 octaves, persistence 0.8, at 256 px). Each image gets its own
    gradient permutation and offset from ``generator``.
    """
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, (tuple, list)) or len(shape) != 4:
        raise ValueError(f"shape must be (B, C, H, W), got {shape!r:.60}")
    for s in shape:
        _checks.positive_int("shape", s)
    B, C, H, W = shape
    if H * W < 2:  # one pixel has no variance to normalise by: it would be 0/0
        raise ValueError(f"shape must have at least 2 pixels per image (H * W >= 2), got {H}x{W}")
    _checks.generator("generator", generator)
    _checks.positive_int("octaves", octaves)
    _checks.number("persistence", persistence, low=0, low_open=True)
    scale = H / 4 if scale is None else _checks.number("scale", scale, low=0, low_open=True)
    N = B * C
    perm = torch.stack([torch.randperm(256, generator=generator) for _ in range(N)])
    perm = torch.cat([perm, perm], dim=1)
    off = torch.rand(N, 2, 1, 1, generator=generator, dtype=torch.float64) * 256
    rows = torch.arange(H, dtype=torch.float64)[None, :, None].expand(N, H, W)
    cols = torch.arange(W, dtype=torch.float64)[None, None, :].expand(N, H, W)
    field, amp, s = torch.zeros(N, H, W, dtype=torch.float64), 1.0, scale
    for _ in range(octaves):
        field = field + amp * _simplex2d(cols / s + off[:, 0], rows / s + off[:, 1], perm)
        amp, s = amp * persistence, s / 2
    flat = field.reshape(N, -1)
    flat = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-12)
    return flat.reshape(B, C, H, W).to(dtype)


#: the noises a diffusion can use: :func:`ddlearn.losses.simple_loss` trains with either, the DDIM loop adds either
NOISES = ("gaussian", "simplex")


def draw_noise(like: torch.Tensor, noise: str = "gaussian", generator=None, **options) -> torch.Tensor:
    """Unit-variance noise of ``like``'s shape, dtype and device: ``"gaussian"`` or ``"simplex"``
    (:func:`simplex_noise`, ``options`` such as ``octaves`` go to it; 4-D tensors (B, C, H, W) only)."""
    _checks.choice("noise", noise, NOISES)
    if options and noise != "simplex":
        raise ValueError(f"noise options {sorted(options)} apply to simplex noise only, got noise={noise!r}")
    if noise == "gaussian":
        return randn_like(like, generator)
    if like.ndim != 4:
        raise ValueError(f"simplex noise needs images (B, C, H, W), got a tensor of shape {tuple(like.shape)}")
    return simplex_noise(like.shape, generator=generator, dtype=like.dtype, **options).to(like.device)


__all__ = ["simplex_noise", "draw_noise", "NOISES"]
