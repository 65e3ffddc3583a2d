r"""Restoring an image larger than the prior's patch: overlapping patches sampled together (GDP, Sec. 3.4).

A prior trained on ``p x p`` patches cannot look at a whole ``H x W``
photograph. :class:`PatchModel` wraps it so that it can: the image is covered
by overlapping ``p x p`` patches on a grid with ``stride`` (the last row and
column flush with the border), every patch goes through the model in one
batch, and the eps predictions are averaged where patches overlap. Since
:math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}`
is affine in :math:`\hat\epsilon` at a fixed :math:`x_t`, averaging eps *is*
averaging the patches' clean estimates :math:`\hat x_0` (what the paper's code
averages, with the means). The wrapper keeps ``model(x_t, t) -> eps``, so every
sampler of the book runs on a whole photograph unchanged, and a restoration
method sees the whole image: its measurement, its degradation parameters
(shared by all patches: one exposure f, one blur width) and its guidance are
those of the photograph, not of each patch.

Hierarchical guidance (:func:`sample_hierarchical`): patches far from any
measured pixel (the middle of a large hole) see nothing that ties them
together. The paper's remedy: first restore a coarse version of the whole
image with the prior at its own size, then restore the full image patch-wise
guided by both the measurement and the coarse result (its low frequencies).
The coarse pass needs no coarse measurement: it restores :math:`c` through
:math:`y = \mathcal A(\mathrm{up}(c))`, the measurement operator composed with
upsampling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _checks
from ..config import randn
from ..operators import Compose, Downsample, Operator


def grid(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets of patches covering ``size`` pixels: 0, stride, 2 stride, ..., and size - patch."""
    _checks.positive_int("size", size)
    _checks.positive_int("patch", patch)
    _checks.positive_int("stride", stride)
    if size < patch:
        raise ValueError(f"the image side {size} is smaller than the patch {patch}")
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


class PatchModel(torch.nn.Module):
    """``model`` (trained on ``patch x patch`` images) applied to larger images patch by patch.

    ``stride`` (default patch // 2) sets the overlap; ``batch`` caps how many
    patches go through the model at once. Conditioning keyword arguments are
    passed through unchanged (per patch they would need cropping: not supported).
    """

    def __init__(self, model, patch: int, stride: int | None = None, batch: int = 256):
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
        self.model = model
        self.patch = _checks.positive_int("patch", patch)
        self.stride = patch // 2 if stride is None else _checks.positive_int("stride", stride)
        if self.stride > self.patch:
            raise ValueError(f"stride must be at most the patch size {patch} (patches must cover the image), "
                             f"got {stride}")
        self.batch = _checks.positive_int("batch", batch)

    def corners(self, h: int, w: int) -> list[tuple[int, int]]:
        """Top-left corners of the patches covering an h x w image."""
        return [(i, j) for i in grid(h, self.patch, self.stride) for j in grid(w, self.patch, self.stride)]

    def coverage(self, h: int, w: int) -> torch.Tensor:
        """How many patches cover each pixel (h, w)."""
        c = torch.zeros(h, w)
        for i, j in self.corners(h, w):
            c[i:i + self.patch, j:j + self.patch] += 1
        return c

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _checks.tensor("x", x, ndim=4)
        B, C, H, W = x.shape
        p = self.patch
        if H < p or W < p:
            raise ValueError(f"PatchModel: x must be at least {p}x{p} (the patch), got shape {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.reshape(-1).expand(B) if t.numel() in (1, B) else t
        if t.shape != (B,):
            raise ValueError(f"t must be a number or hold one timestep per item ({B}), got shape {tuple(t.shape)}")
        corners = self.corners(H, W)
        crops = torch.stack([x[:, :, i:i + p, j:j + p] for i, j in corners], 1).reshape(-1, C, p, p)
        tt = t.repeat_interleave(len(corners))
        eps = torch.cat([self.model(crops[k:k + self.batch], tt[k:k + self.batch])
                         for k in range(0, crops.shape[0], self.batch)])
        eps = eps.reshape(B, len(corners), C, p, p)
        total = torch.zeros_like(x)
        count = torch.zeros(1, 1, H, W, dtype=x.dtype, device=x.device)
        for k, (i, j) in enumerate(corners):
            total[:, :, i:i + p, j:j + p] += eps[:, k]
            count[:, :, i:i + p, j:j + p] += 1
        return total / count

    def extra_repr(self):
        return f"patch={self.patch}, stride={self.stride}"


class ChannelModel(torch.nn.Module):
    """A one-channel prior applied to every channel of a C-channel image: ``model(x_t, t)`` on (B, C, H, W).

    Each channel goes through ``model`` as a separate gray image (one batch of
    B C items) and the eps predictions are stacked back, so the prior is the
    product of C independent gray priors: it knows the texture of every
    channel and nothing about how the channels go together (colour). With
    C = 1 it is ``model`` itself. Chapter 07 restores colour photographs this
    way with the gray patch prior.
    """

    def __init__(self, model):
        super().__init__()
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
        self.model = model

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _checks.tensor("x", x, ndim=4)
        B, C, H, W = x.shape
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.reshape(-1).expand(B) if t.numel() in (1, B) else t
        if t.shape != (B,):
            raise ValueError(f"t must be a number or hold one timestep per item ({B}), got shape {tuple(t.shape)}")
        eps = self.model(x.reshape(B * C, 1, H, W), t.repeat_interleave(C))
        return eps.reshape(B, C, H, W)


class Upsample(Operator):
    """Nearest-neighbour upsampling by ``factor``: (B, C, h, w) -> (B, C, f h, f w); the coarse pass's link
    between a coarse image and the full-size measurement (``operator @ Upsample(f)``). Linear, A^T = f^2 Downsample."""

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    def __init__(self, factor: int):
        super().__init__(0.0)
        self.factor = _checks.positive_int("factor", factor)

    def forward(self, x):
        return x.repeat_interleave(self.factor, -2).repeat_interleave(self.factor, -1)

    def input_shape(self, y_shape):
        if len(y_shape) != 4 or y_shape[-1] % self.factor or y_shape[-2] % self.factor:
            raise ValueError(f"Upsample: y must be (B, C, H, W) with H, W multiples of {self.factor}, got "
                             f"{tuple(y_shape)}")
        return (*y_shape[:2], y_shape[2] // self.factor, y_shape[3] // self.factor)

    def adjoint(self, y):
        self.check_y(y)
        return F.avg_pool2d(y, self.factor) * self.factor ** 2

    def pinv(self, y, **_):
        self.check_y(y)
        return F.avg_pool2d(y, self.factor)


def sample_hierarchical(model, x_T: torch.Tensor, schedule, steps: int, *, operator: Operator, y: torch.Tensor,
                        patch: int, stride: int | None = None, coarse_weight: float = 1.0, coarse_steps=None,
                        sampler=None, generator: torch.Generator | None = None, progress: bool = True,
                        **options) -> torch.Tensor:
    r"""Hierarchical, patch-based restoration of an image larger than ``patch`` (GDP's Sec. 3.4).

    1. coarse: restore :math:`c` at ``patch x patch`` (the image downsampled by
       ``H // patch``) with the plain prior, guided by :math:`y = \mathcal A(\mathrm{up}(c))`;
    2. fine: restore the full image with :class:`PatchModel`, guided by y and by
       ``Downsample(H // patch)(x) = c``, weighted 1 : ``coarse_weight`` and scaled to sum to 1 (the
       two guides share one step, so that together they pull no harder than one).

    ``sampler`` (default :func:`ddlearn.restoration.gdp.sample_gdp`) must take
    lists of operators and measurements (``operator=[...]``, ``y=[...]``,
    ``weights=[...]``); ``options`` go to it in both passes (``scale``, ``on``,
    ``quality``, ...). The operator's unknown parameters are shared by both
    passes (the coarse pass gives the fine one a head start). Square images
    whose side is a multiple of ``patch`` only.
    """
    from .gdp import sample_gdp

    sampler = sample_gdp if sampler is None else sampler
    _checks.tensor("x_T", x_T, ndim=4)
    B, C, H, W = x_T.shape
    _checks.positive_int("patch", patch)
    if H != W or H % patch:
        raise ValueError(f"sample_hierarchical needs square images whose side is a multiple of patch={patch}, "
                         f"got x_T of shape {tuple(x_T.shape)}")
    _checks.number("coarse_weight", coarse_weight, low=0)
    if coarse_steps is not None:  # 0 must not quietly mean "as many as steps"
        _checks.positive_int("coarse_steps", coarse_steps)
    f = H // patch
    if f == 1:
        return sampler(model, x_T, schedule, steps, operator=operator, y=y, generator=generator,
                       progress=progress, **options)
    c_T = randn((B, C, patch, patch), generator=generator, dtype=x_T.dtype, device=x_T.device)
    coarse_steps = steps if coarse_steps is None else coarse_steps
    coarse = sampler(model, c_T, schedule, coarse_steps, operator=[Compose(operator, Upsample(f))], y=[y],
                     compare="measurement", generator=generator, progress=progress, **options)
    # the two guides share one step: weights summing to 1 keep the combined pull no larger than one guide's
    # (each normalised step is at most the misfit; two full ones where both apply would overshoot it)
    w = [1.0 / (1.0 + coarse_weight), coarse_weight / (1.0 + coarse_weight)]
    return sampler(PatchModel(model, patch, stride), x_T, schedule, steps, operator=[operator, Downsample(f)],
                   y=[y, coarse], weights=w, generator=generator, progress=progress, **options)


__all__ = ["PatchModel", "ChannelModel", "Upsample", "grid", "sample_hierarchical"]
