"""Classical, prior-free restorations: the baselines every diffusion restoration is measured against.

scikit-image and scipy do the work wherever they have the method (never
hand-written where a library has it): biharmonic inpainting for masks,
bicubic upsampling for block-average downsampling, Wiener deconvolution for
blur, and the operator's pseudo-inverse otherwise.

Chapter 07 adds the baselines of its tasks, each a scikit-image call on
intensities :math:`u = (y + 1)/2`: Richardson-Lucy deconvolution,
gamma correction, CLAHE and a max-stretch for low light.
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


# ---- Chapter 07's baselines ------------------------------------------------------------------------
def _intensity(name: str, y: torch.Tensor):
    from .. import _checks

    _checks.tensor(name, y, ndim=4)
    _checks.real(name, y)
    # a noisy measurement may stray a little past [-1, 1]; [0, 255] data would be clamped to white
    _checks.in_range(name, y, slack=0.5)
    return ((y.detach().double().cpu() + 1) / 2).clamp(0, 1).numpy()


def _back(u, like: torch.Tensor) -> torch.Tensor:
    return (torch.from_numpy(u) * 2 - 1).to(like.dtype)


def richardson_lucy(operator: Convolution, y: torch.Tensor, num_iter: int = 30) -> torch.Tensor:
    """Richardson-Lucy deconvolution (scikit-image) of a blurred ``y`` with the operator's kernel.

    The image is padded periodically by the kernel's radius first, since the
    book's blur is circular and scikit-image's convolution is not.
    """
    import numpy as np
    from skimage.restoration import richardson_lucy as rl

    from .. import _checks

    kernel = getattr(operator, "kernel", None)
    if kernel is not None:
        kernels = [kernel]
    elif hasattr(operator, "sigma"):  # a BlindBlur at its current width(s): one kernel per copy
        from ..operators import gaussian_kernel
        kernels = [gaussian_kernel(float(s), 2 * operator.radius + 1) for s in operator.sigma.detach().reshape(-1)]
    else:
        raise TypeError(f"operator must be a blur with a kernel (Convolution, Blur, BlindBlur), got "
                        f"{type(operator).__name__}")
    _checks.positive_int("num_iter", num_iter)
    u = _intensity("y", y)
    if len(kernels) not in (1, u.shape[0]):
        raise ValueError(f"operator has {len(kernels)} blur widths (one per item) but y holds {u.shape[0]} items")
    out = np.empty_like(u)
    for b in range(u.shape[0]):
        k = kernels[b if len(kernels) > 1 else 0].detach().double().cpu().numpy()
        r = max(k.shape) // 2
        for c in range(u.shape[1]):
            padded = np.pad(u[b, c], r, mode="wrap")
            out[b, c] = rl(padded, k, num_iter=num_iter, clip=True)[r:r + u.shape[2], r:r + u.shape[3]]
    return _back(out, y)


def gamma_correction(y: torch.Tensor, gamma: float | None = None) -> torch.Tensor:
    """Gamma correction (scikit-image's ``adjust_gamma``) of each image; by default the gamma that takes
    its mean intensity to 0.5 (``gamma = log 0.5 / log mean(u)``)."""
    import numpy as np
    from skimage.exposure import adjust_gamma

    from .. import _checks

    if gamma is not None:
        _checks.number("gamma", gamma, low=0, low_open=True)
    u = _intensity("y", y)
    out = np.empty_like(u)
    for b in range(u.shape[0]):
        g = gamma if gamma is not None else float(np.log(0.5) / np.log(np.clip(u[b].mean(), 1e-4, 0.9999)))
        out[b] = adjust_gamma(u[b], g)
    return _back(out, y)


def clahe(y: torch.Tensor, clip_limit: float = 0.01) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalisation (scikit-image's ``equalize_adapthist``) of each image."""
    import numpy as np
    from skimage.exposure import equalize_adapthist

    from .. import _checks

    _checks.number("clip_limit", clip_limit, low=0, low_open=True)
    u = _intensity("y", y)
    out = np.empty_like(u)
    for b in range(u.shape[0]):
        img = u[b].transpose(1, 2, 0) if u.shape[1] == 3 else u[b, 0]
        eq = equalize_adapthist(img, clip_limit=clip_limit)
        out[b] = eq.transpose(2, 0, 1) if u.shape[1] == 3 else eq[None]
    return _back(out, y)


def max_stretch(y: torch.Tensor) -> torch.Tensor:
    """Stretch each image's intensities linearly so its brightest value becomes white (scikit-image's
    ``rescale_intensity`` with ``in_range=(0, max)``)."""
    import numpy as np
    from skimage.exposure import rescale_intensity

    u = _intensity("y", y)
    out = np.empty_like(u)
    for b in range(u.shape[0]):
        out[b] = rescale_intensity(u[b], in_range=(0.0, max(float(u[b].max()), 1e-6)), out_range=(0.0, 1.0))
    return _back(out, y)
