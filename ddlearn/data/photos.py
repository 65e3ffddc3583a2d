"""scikit-image's bundled photographs as ``(1, C, H, W)`` images in [-1, 1].

Only images that ship inside the scikit-image wheel are allowed (``IMAGES``);
``brain``, ``cells3d``, ``kidney``, ``skin``, ``eagle`` and ``lily`` download
at run time and are never used.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks

#: scikit-image images that ship with the package (no run-time download).
IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "cat", "coins", "moon",
          "page", "horse", "text", "checkerboard", "grass", "gravel", "brick", "immunohistochemistry")


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
