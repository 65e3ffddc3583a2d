"""scikit-learn's 1,797 real handwritten 8x8 digits as ``(N, 1, S, S)`` images in [-1, 1].

The split rule: a fixed permutation with seed ``SPLIT_SEED`` puts the first
80% of digits in "train", the rest in "test" (held out: no shipped checkpoint saw it).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks

SPLIT_SEED = 0
SPLITS = ("train", "test", "all")


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
    _checks.boolean("return_labels", return_labels)
    images, labels = _digits_raw()
    n_train = int(round(0.8 * len(labels)))
    sl = {"train": slice(0, n_train), "test": slice(n_train, None), "all": slice(None)}[split]
    x = images[sl].unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 2 - 1).contiguous()
    return (x, labels[sl].clone()) if return_labels else x
