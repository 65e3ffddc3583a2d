"""scikit-image's bundled photographs as ``(1, C, H, W)`` images in [-1, 1], and patches of them.

Only images that ship inside the scikit-image wheel are allowed (``IMAGES``);
``brain``, ``cells3d``, ``kidney``, ``skin``, ``eagle`` and ``lily`` download
at run time and are never used.

Patches (Chapter 07's natural-image prior): :func:`patches` cuts ``size x size``
squares on a grid from the photographs in :data:`TRAIN_COLOUR` /
:data:`TRAIN_GRAY`, each resized to several scales (:data:`SCALES`, the
shorter side in pixels). The split rule, written once:

* ``"train"``: patches lying wholly in the left ``1 - VAL_FRACTION`` of each
  training photograph (at every scale);
* ``"val"``: patches lying wholly in its right ``VAL_FRACTION`` strip, for
  choosing defaults (guidance scale, steps) on photographs' content the prior
  did not train on;
* ``"test"``: random patches of the held-out photographs :data:`HELDOUT`
  (camera, astronaut, coffee) at shorter sides 128 and 256; no shipped
  checkpoint saw them and no default was tuned on them.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks

#: scikit-image images that ship with the package (no run-time download).
IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "cat", "coins", "moon",
          "page", "horse", "text", "checkerboard", "grass", "gravel", "brick", "immunohistochemistry",
          "hubble_deep_field", "retina", "clock", "motorcycle")

#: Held out: never trained on, never tuned on; restorations are measured on them.
HELDOUT = ("camera", "astronaut", "coffee")
#: Photographs the colour patch prior trains on (``motorcycle`` is the left view of ``stereo_motorcycle``).
TRAIN_COLOUR = ("chelsea", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry", "retina")
#: Gray photographs the grayscale prior trains on, besides the luminance of :data:`TRAIN_COLOUR`.
TRAIN_GRAY = ("brick", "coins", "grass", "gravel", "moon", "page", "text", "clock")
#: Shorter sides (pixels) each training photograph is resized to before cutting patches (never upsampled).
SCALES = (128, 192, 256, 384, 512)
#: The right-hand fraction of every training photograph kept for the "val" split.
VAL_FRACTION = 0.2
#: Shorter sides of the held-out photographs the "test" patches are cut from.
TEST_SCALES = (128, 256)
PATCH_SPLITS = ("train", "val", "test")


def image(name: str = "camera", size: int | None = 128, *, gray: bool | None = None) -> torch.Tensor:
    """A scikit-image bundled photograph as ``(1, C, H, W)`` in [-1, 1].

    ``size`` resizes the shorter side (area-averaging, then a centre crop to a
    square); ``None`` keeps the original. ``gray=True`` converts colour images
    to one channel; ``False`` keeps gray images as one channel anyway.
    """
    import skimage.data

    _checks.choice("image name", name, IMAGES)
    if gray is not None:
        _checks.boolean("gray", gray)
    arr = np.asarray(skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)())
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


def _luminance(x: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 1, H, W) with ITU-R 601 weights (what :func:`image` uses for ``gray=True``)."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1) if x.shape[1] == 3 else x


def _sources(split: str, channels: int) -> tuple:
    if split == "test":
        return HELDOUT
    return TRAIN_COLOUR + (TRAIN_GRAY if channels == 1 else ())


def _as_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if channels == 1:
        return _luminance(x)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _grid(x: torch.Tensor, size: int, stride: int, col_lo: int, col_hi: int) -> torch.Tensor:
    """All size x size patches of x (1, C, H, W) on a stride grid whose columns lie in [col_lo, col_hi)."""
    H = x.shape[-2]
    tops = range(0, H - size + 1, stride)
    lefts = range(col_lo, col_hi - size + 1, stride)
    out = [x[0, :, t:t + size, l:l + size] for t in tops for l in lefts]
    return torch.stack(out) if out else x.new_zeros(0, x.shape[1], size, size)


def patches(split: str = "train", size: int = 32, *, channels: int = 1, stride: int | None = None,
            n: int | None = None, min_std: float = 0.04, seed: int = 0) -> torch.Tensor:
    """Patches ``(N, channels, size, size)`` in [-1, 1] of scikit-image's photographs (the split rule above).

    ``stride`` of the grid (default ``size // 4``) for "train"/"val"; nearly flat patches
    (standard deviation below ``min_std``: black sky, page margins) are dropped, they teach a
    prior nothing. ``n`` keeps a random subset of that many (seeded by ``seed``; all of the
    "train"/"val" grid when None; 200 random positions when None for "test").
    ``channels`` 1 gives luminance (gray photographs included), 3 colour
    (colour photographs only; gray held-out ``camera`` is repeated in 3 channels).
    """
    _checks.choice("split", split, PATCH_SPLITS)
    _checks.positive_int("size", size, minimum=4)
    _checks.choice("channels", channels, (1, 3))
    stride = size // 4 if stride is None else _checks.positive_int("stride", stride)
    _checks.number("min_std", min_std, low=0)
    if n is not None:
        _checks.positive_int("n", n)
    _checks.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    if split == "test":
        n_test = 200 if n is None else n
        pool = []
        for name in HELDOUT:
            for side in TEST_SCALES:
                x = _as_channels(image(name, side), channels)
                H, W = x.shape[-2:]
                for _ in range(4 * n_test // (len(HELDOUT) * len(TEST_SCALES)) + 4):
                    t = int(torch.randint(0, H - size + 1, (1,), generator=g))
                    l = int(torch.randint(0, W - size + 1, (1,), generator=g))
                    pool.append(x[0, :, t:t + size, l:l + size])
        out = torch.stack(pool)
        out = out[out.reshape(len(out), -1).std(1) >= min_std]
        return out[torch.randperm(len(out), generator=g)[:n_test]].contiguous()
    pieces = []
    for name in _sources(split, channels):
        for side in SCALES:
            x = _scaled(name, side)
            if x is None:
                continue
            x = _as_channels(x, channels)
            W = x.shape[-1]
            cut = int(round(W * (1 - VAL_FRACTION)))
            lo, hi = (0, cut) if split == "train" else (cut, W)
            pieces.append(_grid(x, size, stride, lo, hi))
    out = torch.cat(pieces)
    out = out[out.reshape(len(out), -1).std(1) >= min_std]
    if n is not None:
        out = out[torch.randperm(len(out), generator=g)[:n]]
    return out.contiguous()


def gray_source(x: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: True where an image ``(B, 3, H, W)`` has equal channels, i.e. comes from a gray photograph
    repeated in three channels (the held-out ``camera``): there is no colour to restore."""
    _checks.tensor("x", x, ndim=4)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 channels (B, 3, H, W), got shape {tuple(x.shape)}")
    return (x - x.mean(1, keepdim=True)).abs().flatten(1).amax(1) < 1e-6


def val_photos(size: int = 96, *, channels: int = 3) -> torch.Tensor:
    """Whole-image validation photographs ``(N, channels, size, size)``: from each training photograph, the
    smallest scale of :data:`SCALES` whose validation strip (the right-hand :data:`VAL_FRACTION` of the columns,
    which no prior trains on) is at least ``size`` wide, cropped to a square at the strip's vertical centre.
    Where a method meant for whole photographs is tuned, never on :data:`HELDOUT`."""
    _checks.positive_int("size", size, minimum=4)
    _checks.choice("channels", channels, (1, 3))
    out = []
    for name in TRAIN_COLOUR:
        for side in SCALES:
            x = _scaled(name, side)
            if x is None:
                continue
            H, W = x.shape[-2:]
            cut = int(round(W * (1 - VAL_FRACTION)))
            if W - cut >= size and H >= size:
                top = (H - size) // 2
                out.append(_as_channels(x, channels)[:, :, top:top + size, cut:cut + size])
                break
    return torch.cat(out).contiguous()


@lru_cache(maxsize=None)
def _full(name: str) -> torch.Tensor:
    return image(name, None)


@lru_cache(maxsize=None)
def _scaled(name: str, side: int) -> torch.Tensor | None:
    """Photograph ``name`` resized to shorter side ``side`` (whole frame), or None if that would upsample it."""
    full = _full(name)
    return None if side > min(full.shape[-2:]) else _resize_short(full, side)


def _resize_short(x: torch.Tensor, side: int) -> torch.Tensor:
    """Resize (1, C, H, W) in [-1, 1] so the shorter side is ``side``, keeping the whole frame."""
    h, w = x.shape[-2:]
    scale = side / min(h, w)
    y = F.interpolate((x + 1) / 2, size=(max(side, round(h * scale)), max(side, round(w * scale))),
                      mode="area" if scale < 1 else "bilinear")
    return (y.clamp(0, 1) * 2 - 1).contiguous()
