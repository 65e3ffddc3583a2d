r"""Image operators on ``(B, C, H, W)``: masks (inpainting), block-average downsampling
(super-resolution), colour to gray (colorization), blur (circular convolution).

Conventions (written once):

* :class:`Mask` keeps the image shape: missing pixels are zero in ``y``.
* :class:`Downsample` averages ``factor x factor`` blocks (H and W must be
  multiples of the factor); its pseudo-inverse is nearest-neighbour
  upsampling, its adjoint that divided by ``factor**2``.
* :class:`Blur` is a *circular* convolution (periodic boundary), computed
  by FFT, so its adjoint is exact and it is diagonal in Fourier space: the
  pseudo-inverse and the Wiener filter are one division each.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _checks
from .base import Identity, Operator


class Mask(Operator):
    """Keep some pixels, zero the rest: y = m * x with a 0/1 mask m (H, W), (C, H, W) or (1, C, H, W).

    A mask is an orthogonal projection, so A^T = A^+ = A. Build one with
    :meth:`random_pixels` or :meth:`box`.
    """

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    def __init__(self, mask, noise: float = 0.0):
        super().__init__(noise)
        mask = _checks.as_tensor("mask", mask).detach().clone()  # the operator's own: the caller's stays theirs
        if mask.dtype == torch.bool:
            mask = mask.float()
        _checks.tensor("mask", mask, ndim=(2, 3, 4))
        if not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must hold only 0 and 1 (or be boolean)")
        while mask.ndim < 4:
            mask = mask.unsqueeze(0)
        if mask.shape[0] != 1:
            raise ValueError(f"mask must be shared by the batch: shape (1, C, H, W), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask)

    @classmethod
    def random_pixels(cls, size: int | tuple, keep: float, *, generator: torch.Generator | None = None,
                      noise: float = 0.0) -> "Mask":
        """Keep each pixel of a ``size`` (side or (H, W)) image with probability ``keep``."""
        h, w = _size("size", size)
        _checks.number("keep", keep, low=0, high=1)
        _checks.generator("generator", generator)
        return cls((torch.rand(h, w, generator=generator) < keep).float(), noise)

    @classmethod
    def box(cls, size: int | tuple, top: int, left: int, height: int, width: int, noise: float = 0.0) -> "Mask":
        """Hide the box [top:top+height, left:left+width] of a ``size`` image (inpaint it)."""
        h, w = _size("size", size)
        for arg, v, least in (("top", top, 0), ("left", left, 0), ("height", height, 1), ("width", width, 1)):
            _checks.positive_int(arg, v, minimum=least)
        if not (0 <= top < h and 0 <= left < w and height >= 1 and width >= 1):
            raise ValueError(f"box ({top}, {left}, {height}, {width}) does not fit a {h}x{w} image")
        m = torch.ones(h, w)
        m[top:top + height, left:left + width] = 0
        return cls(m, noise)

    def _fits(self, shape, name):
        ok = len(shape) == 4 and tuple(shape[-2:]) == tuple(self.mask.shape[-2:]) and \
            self.mask.shape[1] in (1, shape[1])
        if not ok:
            raise ValueError(f"Mask: {name} must have shape (B, {self.mask.shape[1] if self.mask.shape[1] > 1 else 'C'}, "
                             f"{self.mask.shape[-2]}, {self.mask.shape[-1]}) to match the mask, got {tuple(shape)}")

    def forward(self, x):
        self._fits(x.shape, "x")
        return x * self.mask.to(x.dtype)

    def input_shape(self, y_shape):
        self._fits(y_shape, "y")
        return tuple(y_shape)

    def adjoint(self, y):
        return self.forward(self.check_y(y))

    def pinv(self, y, **_):
        return self.forward(self.check_y(y))


class Downsample(Operator):
    """Average-pool by an integer ``factor``: (B, C, H, W) -> (B, C, H/f, W/f).

    Each output pixel is the mean of f*f inputs, so A A^T = I / f^2:
    A^T y = nearest-upsample(y) / f^2 and A^+ y = nearest-upsample(y).
    """

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    def __init__(self, factor: int, noise: float = 0.0):
        super().__init__(noise)
        self.factor = _checks.positive_int("factor", factor)

    def forward(self, x):
        f = self.factor
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"Downsample: x's height and width must be multiples of factor={f}, got {tuple(x.shape)}")
        return F.avg_pool2d(x, f)

    def input_shape(self, y_shape):
        if len(y_shape) != 4:
            raise ValueError(f"Downsample: y must have shape (B, C, h, w), got {tuple(y_shape)}")
        return (*y_shape[:2], y_shape[2] * self.factor, y_shape[3] * self.factor)

    def _up(self, y):
        return y.repeat_interleave(self.factor, -2).repeat_interleave(self.factor, -1)

    def adjoint(self, y):
        return self._up(self.check_y(y)) / self.factor ** 2

    def pinv(self, y, **_):
        return self._up(self.check_y(y))

    def extra_repr(self):
        return f"factor={self.factor}, noise={self.noise:g}"


class Grayscale(Operator):
    """Colour to gray: the channel mean, (B, C, H, W) -> (B, 1, H, W). A^+ copies the gray value to every channel."""

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    def __init__(self, channels: int = 3, noise: float = 0.0):
        super().__init__(noise)
        self.channels = _checks.positive_int("channels", channels)

    def forward(self, x):
        if x.shape[1] != self.channels:
            raise ValueError(f"Grayscale: x must have {self.channels} channels, got shape {tuple(x.shape)}")
        return x.mean(1, keepdim=True)

    def input_shape(self, y_shape):
        if len(y_shape) != 4 or y_shape[1] != 1:
            raise ValueError(f"Grayscale: y must have shape (B, 1, H, W), got {tuple(y_shape)}")
        return (y_shape[0], self.channels, *y_shape[2:])

    def adjoint(self, y):
        return self.check_y(y).expand(self.input_shape(tuple(y.shape))) / self.channels

    def pinv(self, y, **_):
        return self.check_y(y).expand(self.input_shape(tuple(y.shape))).clone()


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel (size, size); size defaults to 2*ceil(3 sigma)+1."""
    _checks.number("sigma", sigma, low=0, low_open=True)
    size = 2 * math.ceil(3 * sigma) + 1 if size is None else _checks.positive_int("size", size)
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


class Convolution(Operator):
    r"""Circular 2-D convolution with a kernel (kh, kw) whose centre is the kernel's middle pixel.

    Computed by FFT: :math:`\widehat{Ax} = H \cdot \hat x` with the transfer
    function H, so :math:`\widehat{A^\top y} = \bar H \hat y` and the
    pseudo-inverse divides by H where :math:`|H| >` ``rcond`` :math:`\cdot \max|H|`
    (frequencies below that are treated as lost: the truncated-SVD pinv).
    """

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    def __init__(self, kernel, noise: float = 0.0, rcond: float = 1e-3):
        super().__init__(noise)
        kernel = _checks.as_tensor("kernel", kernel, dtype=torch.float64).detach().clone()
        _checks.tensor("kernel", kernel, ndim=2)
        self.register_buffer("kernel", kernel)
        self.rcond = _checks.number("rcond", rcond, low=0)
        self._cache: dict = {}

    def transfer(self, h: int, w: int) -> torch.Tensor:
        """The transfer function H (h, w), complex128: FFT of the kernel centred at pixel (0, 0)."""
        if (h, w) not in self._cache:
            kh, kw = self.kernel.shape
            if kh > h or kw > w:
                raise ValueError(f"Convolution: kernel {kh}x{kw} is larger than the image {h}x{w}")
            pad = torch.zeros(h, w, dtype=torch.float64)
            pad[:kh, :kw] = self.kernel
            pad = torch.roll(pad, (-(kh // 2), -(kw // 2)), dims=(0, 1))
            self._cache[(h, w)] = torch.fft.fft2(pad)
        return self._cache[(h, w)]

    def _filter(self, x, filt):
        X = torch.fft.fft2(x.to(torch.float64))
        return torch.fft.ifft2(X * filt.to(X.device)).real.to(x.dtype)

    def forward(self, x):
        return self._filter(x, self.transfer(*x.shape[-2:]))

    def input_shape(self, y_shape):
        if len(y_shape) != 4:
            raise ValueError(f"{type(self).__name__}: y must have shape (B, C, H, W), got {tuple(y_shape)}")
        return tuple(y_shape)

    def adjoint(self, y):
        self.check_y(y)
        return self._filter(y, self.transfer(*y.shape[-2:]).conj())

    def pinv(self, y, *, rcond: float | None = None, **_):
        self.check_y(y)
        H = self.transfer(*y.shape[-2:])
        rc = self.rcond if rcond is None else _checks.number("rcond", rcond, low=0)
        keep = H.abs() > rc * H.abs().max()
        inv = torch.where(keep, 1.0 / torch.where(keep, H, torch.ones_like(H)), torch.zeros_like(H))
        return self._filter(y, inv)

    def wiener(self, y: torch.Tensor, nsr: float | None = None) -> torch.Tensor:
        r"""The Wiener deconvolution :math:`\bar H \hat y / (|H|^2 + \mathrm{nsr})` (a classical baseline).

        ``nsr`` is the noise-to-signal power ratio; default noise**2 / 0.25
        (pixels in [-1, 1] have variance about 0.25), or 1e-3 if noise is 0.
        """
        self.check_y(y)
        H = self.transfer(*y.shape[-2:])
        if nsr is None:
            nsr = self.noise ** 2 / 0.25 if self.noise > 0 else 1e-3
        # nsr = 0 is the plain inverse filter: 0/0 (NaN) wherever the blur's transfer function vanishes
        _checks.number("nsr", nsr, low=0, low_open=True)
        return self._filter(y, H.conj() / (H.abs() ** 2 + nsr))


class Blur(Convolution):
    """Gaussian blur of standard deviation ``sigma`` pixels, circular boundary (see :class:`Convolution`)."""

    def __init__(self, sigma: float = 1.0, noise: float = 0.0, size: int | None = None, rcond: float = 1e-3):
        super().__init__(gaussian_kernel(sigma, size), noise, rcond)
        self.sigma = float(sigma)

    def extra_repr(self):
        return f"sigma={self.sigma:g}, noise={self.noise:g}"


def get(name: str, size: int = 16, *, noise: float = 0.0, generator: torch.Generator | None = None,
        **kwargs) -> Operator:
    """An operator by name, for chapters and widgets: "inpaint_box", "inpaint_random", "sr2", "sr4", "blur", "denoise".

    ``size`` is the image side; ``kwargs`` go to the constructor (e.g. ``sigma`` for blur,
    ``keep`` for random pixels).
    """
    _checks.choice("operator name", name, NAMES)
    _checks.options(f"operators.get({name!r})", kwargs, OPTIONS[name])
    if name == "inpaint_box":
        h, w = kwargs.get("height", size // 2), kwargs.get("width", size // 2)
        return Mask.box(size, kwargs.get("top", (size - h) // 2), kwargs.get("left", (size - w) // 2), h, w, noise)
    if name == "inpaint_random":
        return Mask.random_pixels(size, kwargs.get("keep", 0.3), generator=generator, noise=noise)
    if name in ("sr2", "sr4"):
        return Downsample(int(name[2:]), noise)
    if name == "blur":
        return Blur(kwargs.get("sigma", 1.5), noise)
    return Identity(noise)


NAMES = ("inpaint_box", "inpaint_random", "sr2", "sr4", "blur", "denoise")
#: the keyword options :func:`get` passes on, by operator name (anything else is refused by name)
OPTIONS = {"inpaint_box": ("top", "left", "height", "width"), "inpaint_random": ("keep",), "sr2": (), "sr4": (),
           "blur": ("sigma",), "denoise": ()}


def _size(name: str, size) -> tuple[int, int]:
    """An image side ``size`` or ``(H, W)``, as two positive ints."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"{name} must be an image side (int) or (H, W), got {size!r:.40}")
    return tuple(_checks.positive_int(name, s) for s in size)
