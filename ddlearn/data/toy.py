"""2-D point clouds ``(N, 2)``: swiss roll, moons, named Gaussian mixtures (exact scores in :mod:`ddlearn.oracles`).

The train split is drawn with the caller's seed, the held-out split with
``seed + HELDOUT_OFFSET``, so no shipped checkpoint saw a held-out point.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import _checks

HELDOUT_OFFSET = 10_000


def _split_seed(seed: int, split: str) -> int:
    """The seed of a split (an int seed always: None would be unseeded for "train" and fail for "test")."""
    _checks.choice("split", split, ("train", "test"))
    _checks.seed("seed", seed)
    if seed + HELDOUT_OFFSET >= 2 ** 32:
        raise ValueError(f"seed must be below 2**32 - {HELDOUT_OFFSET} (the held-out split adds that), got {seed}")
    return seed if split == "train" else seed + HELDOUT_OFFSET


def swiss_roll(n: int = 2000, *, seed: int = 0, split: str = "train", noise: float = 0.3) -> torch.Tensor:
    """A 2-D swiss roll (scikit-learn's ``make_swiss_roll``, x and z axes) scaled to about [-1, 1]."""
    from sklearn.datasets import make_swiss_roll

    _checks.positive_int("n", n)
    _checks.number("noise", noise, low=0)
    pts, _ = make_swiss_roll(n, noise=noise, random_state=_split_seed(seed, split))
    return torch.from_numpy(pts[:, [0, 2]] / 10.0).float()


def moons(n: int = 2000, *, seed: int = 0, split: str = "train", noise: float = 0.05) -> torch.Tensor:
    """Two interleaving half-moons (scikit-learn's ``make_moons``), centred, about [-1, 1]."""
    from sklearn.datasets import make_moons

    _checks.positive_int("n", n)
    _checks.number("noise", noise, low=0)
    pts, _ = make_moons(n, noise=noise, random_state=_split_seed(seed, split))
    pts = (pts - np.array([0.5, 0.25])) / np.array([1.0, 0.5]) * 0.8
    return torch.from_numpy(pts).float()


def gaussian_mixture(n: int = 2000, *, seed: int = 0, split: str = "train", name: str = "ring8"):
    """Points from a named 2-D Gaussian mixture (see :func:`ddlearn.oracles.named_mixture`)."""
    from ..oracles import named_mixture

    _checks.positive_int("n", n)
    gen = torch.Generator().manual_seed(_split_seed(seed, split))
    return named_mixture(name).sample(n, generator=gen)


TOY = {"swiss_roll": swiss_roll, "moons": moons, "mixture": gaussian_mixture}


def toy(name: str, n: int = 2000, *, seed: int = 0, split: str = "train") -> torch.Tensor:
    """A 2-D data set by name: ``"swiss_roll"``, ``"moons"`` or ``"mixture"``."""
    _checks.choice("toy data set", name, tuple(TOY))
    return TOY[name](n, seed=seed, split=split)
