"""Classical, prior-free restorations: the baselines every diffusion restoration is measured against.

scikit-image and scipy do the work wherever they have the method (never
hand-written where a library has it): biharmonic inpainting for masks,
bicubic upsampling for block-average downsampling, Wiener deconvolution for
blur, and the operator's pseudo-inverse otherwise.
"""
from __future__ import annotations

import torch

from ..operators import Convolution, Downsample, Mask, Operator


def classical(operator: Operator, y: torch.Tensor) -> torch.Tensor:
    """A classical, prior-free reconstruction: biharmonic inpainting (scikit-image) for masks,
    bicubic upsampling for downsampling, Wiener deconvolution for blur, the pseudo-inverse otherwise."""
    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(operator).__name__}")
    operator.check_y(y)
    if isinstance(operator, Mask):
        from skimage.restoration import inpaint_biharmonic

        m = operator.mask.expand(y.shape[0], y.shape[1], *y.shape[-2:])
        out = y.detach().double().cpu().numpy().copy()
        missing = (m == 0).cpu().numpy()
        for b in range(out.shape[0]):
            for c in range(out.shape[1]):
                if missing[b, c].any() and not missing[b, c].all():
                    out[b, c] = inpaint_biharmonic(out[b, c], missing[b, c])
        return torch.from_numpy(out).to(y.dtype)
    if isinstance(operator, Downsample):
        return torch.nn.functional.interpolate(y, scale_factor=operator.factor, mode="bicubic", align_corners=False)
    if isinstance(operator, Convolution):
        return operator.wiener(y)
    return operator.pinv(y)
