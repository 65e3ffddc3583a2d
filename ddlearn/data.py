"""Offline data sets. Nothing here downloads anything.

* 2-D point clouds ``(N, 2)``: :func:`swiss_roll`, :func:`moons`, and
  Gaussian mixtures (:func:`gaussian_mixture`, exact scores in
  :mod:`ddlearn.oracles`). Train and held-out draws use different seeds.
* Digits ``(N, 1, S, S)`` in [-1, 1]: scikit-learn's 1,797 real handwritten
  8x8 digits, upsampled bilinearly to ``size`` (16 by default), with a fixed
  80/20 train / held-out split (:func:`digits`). No shipped checkpoint saw
  the held-out split.
* Natural images ``(1, C, H, W)`` in [-1, 1]: scikit-image's bundled photographs
  (:func:`image`); only images that ship inside the package are allowed.

The split rule: a fixed permutation with seed ``SPLIT_SEED`` puts the first
80% of digits in "train", the rest in "test". For 2-D sets the train split is
drawn with the caller's seed, the held-out split with ``seed + HELDOUT_OFFSET``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from . import _checks

SPLIT_SEED = 0
HELDOUT_OFFSET = 10_000
SPLITS = ("train", "test", "all")

#: scikit-image images that ship with the package (no run-time download).
IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "cat", "coins", "moon",
          "page", "horse", "text", "checkerboard", "grass", "gravel", "brick", "immunohistochemistry")


def _split_seed(seed: int, split: str) -> int:
    _checks.choice("split", split, ("train", "test"))
    return seed if split == "train" else seed + HELDOUT_OFFSET


def swiss_roll(n: int = 2000, *, seed: int = 0, split: str = "train", noise: float = 0.3) -> torch.Tensor:
    """A 2-D swiss roll (scikit-learn's ``make_swiss_roll``, x and z axes) scaled to about [-1, 1]."""
    from sklearn.datasets import make_swiss_roll

    _checks.positive_int("n", n)
    pts, _ = make_swiss_roll(n, noise=noise, random_state=_split_seed(seed, split))
    return torch.from_numpy(pts[:, [0, 2]] / 10.0).float()


def moons(n: int = 2000, *, seed: int = 0, split: str = "train", noise: float = 0.05) -> torch.Tensor:
    """Two interleaving half-moons (scikit-learn's ``make_moons``), centred, about [-1, 1]."""
    from sklearn.datasets import make_moons

    _checks.positive_int("n", n)
    pts, _ = make_moons(n, noise=noise, random_state=_split_seed(seed, split))
    pts = (pts - np.array([0.5, 0.25])) / np.array([1.0, 0.5]) * 0.8
    return torch.from_numpy(pts).float()


def gaussian_mixture(n: int = 2000, *, seed: int = 0, split: str = "train", name: str = "ring8"):
    """Points from a named 2-D Gaussian mixture (see :func:`ddlearn.oracles.named_mixture`)."""
    from .oracles import named_mixture

    _checks.positive_int("n", n)
    gen = torch.Generator().manual_seed(_split_seed(seed, split))
    return named_mixture(name).sample(n, generator=gen)


TOY = {"swiss_roll": swiss_roll, "moons": moons, "mixture": gaussian_mixture}


def toy(name: str, n: int = 2000, *, seed: int = 0, split: str = "train") -> torch.Tensor:
    """A 2-D data set by name: ``"swiss_roll"``, ``"moons"`` or ``"mixture"``."""
    _checks.choice("toy data set", name, tuple(TOY))
    return TOY[name](n, seed=seed, split=split)


@lru_cache(maxsize=None)
def _digits_raw():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images.astype(np.float32) / 16.0)  # [0, 1], (N, 8, 8)
    labels = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.from_numpy(np.random.default_rng(SPLIT_SEED).permutation(len(labels)))
    return images[perm], labels[perm]


def digits(split: str = "train", size: int = 16, *, return_labels: bool = False):
    """scikit-learn's handwritten digits as ``(N, 1, size, size)`` in [-1, 1].

    ``split``: "train" (1,438 digits), "test" (359 held-out digits) or "all".
    ``size`` is 8 (the original) or a larger side, reached by bilinear upsampling.
    With ``return_labels`` the labels (N,) come too.
    """
    _checks.choice("split", split, SPLITS)
    _checks.positive_int("size", size, minimum=8)
    images, labels = _digits_raw()
    n_train = int(round(0.8 * len(labels)))
    sl = {"train": slice(0, n_train), "test": slice(n_train, None), "all": slice(None)}[split]
    x = images[sl].unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 2 - 1).contiguous()
    return (x, labels[sl].clone()) if return_labels else x


def image(name: str = "camera", size: int | None = 128, *, gray: bool | None = None) -> torch.Tensor:
    """A scikit-image bundled photograph as ``(1, C, H, W)`` in [-1, 1].

    ``size`` resizes the shorter side (area-averaging, then a centre crop to a
    square); ``None`` keeps the original. ``gray=True`` converts colour images
    to one channel; ``False`` keeps gray images as one channel anyway.
    """
    import skimage.data

    _checks.choice("image name", name, IMAGES)
    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    else:
        arr = arr.astype(np.float32)
        arr = (arr - arr.min()) / max(arr.max() - arr.min(), 1e-8)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    x = torch.from_numpy(arr)
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
    if gray and x.shape[0] == 3:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
    x = x.unsqueeze(0)
    if size is not None:
        _checks.positive_int("size", size, minimum=4)
        h, w = x.shape[-2:]
        scale = size / min(h, w)
        x = F.interpolate(x, size=(max(size, round(h * scale)), max(size, round(w * scale))),
                          mode="area" if scale < 1 else "bilinear")
        h, w = x.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        x = x[..., top:top + size, left:left + size]
    return (x.clamp(0, 1) * 2 - 1).contiguous()
