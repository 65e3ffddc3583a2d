"""scikit-image's ``lfw_subset`` faces as ``(N, 1, S, S)`` images in [-1, 1] (Chapter 07's face prior).

``skimage.data.lfw_subset()`` holds 200 gray 25x25 images: the first 100 are
aligned faces from Labeled Faces in the Wild, the other 100 are non-faces.
Only the faces are used here.

The split rule, written once: a fixed permutation with seed ``SPLIT_SEED``
of the 100 faces puts :data:`N_TEST` in "test" (held out: no shipped
checkpoint saw them, no default was tuned on them), the next :data:`N_VAL`
in "val" (for choosing defaults) and the rest in "train". With so few faces a
prior can memorise them: :func:`ddlearn.metrics.nearest_neighbour` against
the "train" split measures it. ``flips=True`` adds each face's mirror image
(a face mirrored is still a face; it doubles the training set).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks

SPLIT_SEED = 0
N_TEST = 20
N_VAL = 10
SPLITS = ("train", "val", "test", "all")


@lru_cache(maxsize=None)
def _faces_raw() -> torch.Tensor:
    import skimage.data

    arr = np.asarray(skimage.data.lfw_subset(), dtype=np.float32)[:100]  # the faces; [100:] are non-faces
    perm = np.random.default_rng(SPLIT_SEED).permutation(100)
    return torch.from_numpy(arr[perm]).unsqueeze(1)  # (100, 1, 25, 25) in [0, 1]


def faces(split: str = "train", size: int = 32, *, flips: bool = False) -> torch.Tensor:
    """Aligned 25x25 faces of ``lfw_subset`` as ``(N, 1, size, size)`` in [-1, 1].

    ``split``: "train" (70 faces), "val" (10), "test" (20 held-out) or "all" (100).
    ``size``: 25 keeps the original pixels; another side is reached by bilinear
    resizing (32 fits a UNet with three levels). ``flips`` appends the mirror images.
    """
    _checks.choice("split", split, SPLITS)
    _checks.positive_int("size", size, minimum=8)
    _checks.boolean("flips", flips)
    x = _faces_raw()
    sl = {"test": slice(0, N_TEST), "val": slice(N_TEST, N_TEST + N_VAL),
          "train": slice(N_TEST + N_VAL, None), "all": slice(None)}[split]
    x = x[sl]
    if size != 25:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if flips:
        x = torch.cat([x, x.flip(-1)])
    return (x.clamp(0, 1) * 2 - 1).contiguous()
