r"""Parametrised measurement operators whose parameters are unknown and learnt by gradient (Chapter 07).

GDP (Fei et al. 2023) restores images whose degradation is only known up to
a few numbers: how much light reached the sensor, how wide the blur was, how
the colours were shifted. Each operator here holds those numbers as
``torch.nn.Parameter`` s, so a restoration can fit them by gradient steps
while it samples (:func:`ddlearn.restoration.gdp.sample_gdp`), and they can be
read back afterwards (``op.f``, ``op.sigma``, ...).

Units. Images are in [-1, 1] as everywhere in the book, but light is
physical in intensity units :math:`u = (x + 1)/2 \in [0, 1]`; so the
intensity-domain models below map ``x`` to ``u``, apply the degradation, and
map back: :math:`y = 2\,D(u) - 1`.

* :class:`LowLight`   :math:`u_y = f\,u + M`: an unknown exposure factor f and a
  smooth, unknown illumination offset M (the low-light model of the GDP paper,
  Sec. 3.3). M is a coarse ``mask_res x mask_res`` grid upsampled bilinearly,
  so it is smooth by construction. Non-linear (affine) in x.
* :class:`Gamma`      :math:`u_y = u^{\gamma}` with unknown :math:`\gamma`: a
  brightness curve (non-linear).
* :class:`ColourMatrix` :math:`y = W x` per pixel, W an unknown ``C x C``
  matrix (white balance, channel mixing); linear in x, so it has an adjoint
  :math:`W^\top`.
* :class:`BlindBlur`  circular Gaussian blur whose width :math:`\sigma` is
  unknown; for a fixed :math:`\sigma` it is linear and self-adjoint (the
  Gaussian kernel is symmetric), and its kernel is a differentiable function
  of :math:`\sigma`.

Parameters come with a leading "copies" dimension ``P``: ``P = 1`` shares one
degradation over the batch (one photograph cut into patches, K samples of
one measurement); ``P = B`` gives every item its own (a benchmark over many
images, each degraded differently). :meth:`ParametricOperator.estimates`
returns the current values as plain numbers or tensors. An operator copies
the values it is given: stepping its parameters never changes the caller's
tensors, and changing those tensors afterwards never changes the operator.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _checks
from .base import Operator


def _copies(name: str, copies) -> int:
    return _checks.positive_int(name, copies)


def _own(value) -> torch.Tensor:
    """A float32 copy of ``value`` (a number, a tensor, an array) that shares no memory with it and has no
    autograd history: an operator's parameters are its own, so an optimiser stepping them (or an in-place
    edit) never writes into a tensor its caller still holds, nor the caller's edits into them."""
    return torch.as_tensor(value, dtype=torch.float32).detach().clone()


class ParametricOperator(Operator):
    """Base of operators with unknown ``nn.Parameter`` s. ``channels`` fixes C (None: any)."""

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    linear = False

    def __init__(self, channels: int | None = None, noise: float = 0.0, copies: int = 1):
        super().__init__(noise)
        self.channels = None if channels is None else _checks.positive_int("channels", channels)
        self.copies = _copies("copies", copies)

    def check_x(self, x, name: str = "x"):
        super().check_x(x, name)
        if self.channels is not None and x.shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__}: {name} must have {self.channels} channels, got shape "
                             f"{tuple(x.shape)}")
        if self.copies not in (1, x.shape[0]):
            raise ValueError(f"{type(self).__name__}: its parameters have {self.copies} copies (one per item), so "
                             f"{name} must hold {self.copies} items, got shape {tuple(x.shape)}")
        return x

    def input_shape(self, y_shape):
        if len(y_shape) != 4:
            raise ValueError(f"{type(self).__name__}: y must have shape (B, C, H, W), got {tuple(y_shape)}")
        if self.channels is not None and y_shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__}: y must have {self.channels} channels, got shape "
                             f"{tuple(y_shape)}")
        return tuple(y_shape)

    def estimates(self) -> dict:
        """The current parameter values (detached): numbers when there is one copy of a scalar."""
        out = {}
        for name, p in self.named_parameters():
            v = p.detach().clone()
            out[name] = v.item() if v.numel() == 1 else v
        return out


class LowLight(ParametricOperator):
    r"""Low light: :math:`u_y = f\,u + M` in intensity units :math:`u = (x+1)/2`, so :math:`y = 2(f u + M) - 1`.

    ``f`` (the exposure factor, > 0) and ``mask`` (M's coarse grid,
    ``(copies, 1, mask_res, mask_res)``, bilinearly upsampled to the image: a
    smooth illumination offset) are ``nn.Parameter`` s. ``mask_res=0`` drops M
    (a pure exposure change). Give the true values to simulate a measurement;
    give a guess (e.g. ``f=1.0``) to estimate them while restoring.
    """

    def __init__(self, f: float | torch.Tensor = 1.0, mask: torch.Tensor | None = None, *, mask_res: int = 4,
                 channels: int | None = None, noise: float = 0.0, copies: int = 1):
        super().__init__(channels, noise, copies)
        self.mask_res = _checks.positive_int("mask_res", mask_res, minimum=0)
        f = _own(f)
        if f.numel() == 1:
            f = f.reshape(1).expand(self.copies).clone()
        if f.ndim != 1 or f.numel() != self.copies:
            raise ValueError(f"f must be a number or a tensor of {self.copies} values (one per copy), got shape "
                             f"{tuple(f.shape)}")
        if not torch.isfinite(f).all() or (f <= 0).any():
            raise ValueError(f"f must be positive and finite, got {f.tolist()}")
        self.f = torch.nn.Parameter(f.reshape(-1, 1, 1, 1))
        if self.mask_res:
            if mask is None:
                mask = torch.zeros(self.copies, 1, self.mask_res, self.mask_res)
            mask = _own(mask)
            while mask.ndim < 4:
                mask = mask.unsqueeze(0)
            want = (self.copies, 1, self.mask_res, self.mask_res)
            if tuple(mask.shape) != want:
                raise ValueError(f"mask must have shape {want} (copies, 1, mask_res, mask_res), got "
                                 f"{tuple(mask.shape)}")
            _checks.tensor("mask", mask)
            self.mask = torch.nn.Parameter(mask)
        elif mask is not None:
            raise ValueError("mask was given but mask_res=0 (no illumination offset)")

    def offset(self, h: int, w: int) -> torch.Tensor:
        """M at image size (copies, 1, h, w) (zeros when ``mask_res=0``)."""
        if not self.mask_res:
            return torch.zeros(self.copies, 1, h, w, device=self.f.device)
        return F.interpolate(self.mask, size=(h, w), mode="bilinear", align_corners=True)

    def forward(self, x):
        u = (x + 1) / 2
        out = self.f.to(x.dtype) * u + self.offset(*x.shape[-2:]).to(x.dtype)
        return 2 * out - 1

    def extra_repr(self):
        return f"mask_res={self.mask_res}, copies={self.copies}, noise={self.noise:g}"


class Gamma(ParametricOperator):
    r"""A brightness curve :math:`u_y = u^{\gamma}` (intensity units), :math:`\gamma > 0` unknown; ``u`` is
    clamped at 1e-4 so the gradient stays finite at black pixels."""

    def __init__(self, gamma: float = 1.0, *, channels: int | None = None, noise: float = 0.0, copies: int = 1):
        super().__init__(channels, noise, copies)
        g = _own(gamma)
        g = g.reshape(1).expand(self.copies).clone() if g.numel() == 1 else g.reshape(-1)
        if g.numel() != self.copies or not torch.isfinite(g).all() or (g <= 0).any():
            raise ValueError(f"gamma must be positive, one value or one per copy ({self.copies}), got {g.tolist()}")
        self.gamma = torch.nn.Parameter(g.reshape(-1, 1, 1, 1))

    def forward(self, x):
        u = ((x + 1) / 2).clamp(1e-4, 1.0)
        return 2 * u.pow(self.gamma.to(x.dtype)) - 1


class ColourMatrix(ParametricOperator):
    r"""Per-pixel colour mixing :math:`y_{c} = \sum_{c'} W_{cc'}\,x_{c'}` with an unknown ``C x C`` matrix W.

    Linear in x (W acts on [-1, 1] values, so mid-gray stays put): the adjoint
    is :math:`W^\top`. ``weights`` (C, C) or (copies, C, C) defaults to the identity.
    """

    linear = True

    def __init__(self, weights: torch.Tensor | None = None, *, channels: int = 3, noise: float = 0.0,
                 copies: int = 1):
        super().__init__(channels, noise, copies)
        C = self.channels
        w = torch.eye(C) if weights is None else _own(weights)
        if w.ndim == 2 and tuple(w.shape) == (C, C):
            w = w.unsqueeze(0).expand(self.copies, C, C).clone()
        if tuple(w.shape) != (self.copies, C, C):
            raise ValueError(f"weights must have shape ({C}, {C}) or ({self.copies}, {C}, {C}), got {tuple(w.shape)}")
        _checks.tensor("weights", w)
        self.weights = torch.nn.Parameter(w)

    def forward(self, x):
        return torch.einsum("pcd,bdhw->bchw", self.weights.to(x.dtype), x) if self.copies == 1 else \
            torch.einsum("bcd,bdhw->bchw", self.weights.to(x.dtype), x)

    def adjoint(self, y):
        self.check_y(y)
        wt = self.weights.transpose(1, 2).to(y.dtype)
        return torch.einsum("pcd,bdhw->bchw", wt, y) if self.copies == 1 else torch.einsum("bcd,bdhw->bchw", wt, y)


def gaussian_kernel_1d(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussians (P, 2 radius + 1) for widths ``sigma`` (P,), differentiable in sigma."""
    r = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    k = torch.exp(-r ** 2 / (2 * sigma.reshape(-1, 1) ** 2))
    return k / k.sum(1, keepdim=True)


class BlindBlur(ParametricOperator):
    r"""Circular Gaussian blur of unknown width :math:`\sigma` (pixels), ``log_sigma`` the ``nn.Parameter``.

    The kernel is separable, :math:`k = g_\sigma \otimes g_\sigma`, truncated at
    ``radius`` (default ``ceil(3 sigma_max)``), renormalised, and applied by FFT
    with a periodic boundary (a kernel wider than the image wraps around it),
    exactly like :class:`ddlearn.operators.Blur` (which it equals for the same
    sigma and kernel size). Linear and
    self-adjoint for a fixed sigma. Learning :math:`\log\sigma` keeps
    :math:`\sigma > 0`.
    """

    linear = True

    def __init__(self, sigma: float | torch.Tensor = 1.0, *, sigma_max: float = 4.0, radius: int | None = None,
                 channels: int | None = None, noise: float = 0.0, copies: int = 1):
        super().__init__(channels, noise, copies)
        self.sigma_max = _checks.number("sigma_max", sigma_max, low=0, low_open=True)
        s = _own(sigma)
        s = s.reshape(1).expand(self.copies).clone() if s.numel() == 1 else s.reshape(-1)
        if s.numel() != self.copies or not torch.isfinite(s).all() or (s <= 0).any():
            raise ValueError(f"sigma must be positive, one value or one per copy ({self.copies}), got {s.tolist()}")
        if (s > self.sigma_max).any():
            raise ValueError(f"sigma must be at most sigma_max={self.sigma_max:g}, got {s.tolist()}")
        self.radius = math.ceil(3 * self.sigma_max) if radius is None else _checks.positive_int("radius", radius)
        self.log_sigma = torch.nn.Parameter(s.log())

    @property
    def sigma(self) -> torch.Tensor:
        """The current width(s), (copies,)."""
        return self.log_sigma.exp()

    def estimates(self) -> dict:
        s = self.sigma.detach().clone()
        return {"sigma": s.item() if s.numel() == 1 else s}

    def transfer(self, h: int, w: int) -> torch.Tensor:
        """Transfer function (copies, 1, h, w), complex: the FFT of the kernel centred at pixel (0, 0)."""
        k1 = gaussian_kernel_1d(self.sigma.double(), self.radius)  # (P, 2r+1)
        offsets = torch.arange(-self.radius, self.radius + 1, device=k1.device)
        # centre at pixel 0, wrapped around the periodic image (a kernel wider than the image folds onto it)
        kh = torch.zeros(k1.shape[0], h, dtype=torch.float64, device=k1.device).index_add(1, offsets % h, k1)
        kw = torch.zeros(k1.shape[0], w, dtype=torch.float64, device=k1.device).index_add(1, offsets % w, k1)
        Hh, Hw = torch.fft.fft(kh), torch.fft.fft(kw)  # separable: H(u, v) = Hh(u) Hw(v)
        return (Hh[:, :, None] * Hw[:, None, :]).unsqueeze(1)

    def _filter(self, x, H):
        X = torch.fft.fft2(x.to(torch.float64))
        return torch.fft.ifft2(X * H).real.to(x.dtype)

    def forward(self, x):
        return self._filter(x, self.transfer(*x.shape[-2:]))

    def adjoint(self, y):
        self.check_y(y)
        return self._filter(y, self.transfer(*y.shape[-2:]).conj())

    def pinv(self, y, *, rcond: float = 1e-3, **_):
        """Truncated-SVD pseudo-inverse at the current width: divide by H where |H| > rcond max|H|
        (as :meth:`ddlearn.operators.Convolution.pinv`)."""
        self.check_y(y)
        _checks.number("rcond", rcond, low=0)
        H = self.transfer(*y.shape[-2:]).detach()
        keep = H.abs() > rcond * H.abs().amax((-2, -1), keepdim=True)
        inv = torch.where(keep, 1.0 / torch.where(keep, H, torch.ones_like(H)), torch.zeros_like(H))
        return self._filter(y, inv)

    def extra_repr(self):
        return f"radius={self.radius}, copies={self.copies}, noise={self.noise:g}"


__all__ = ["ParametricOperator", "LowLight", "Gamma", "ColourMatrix", "BlindBlur", "gaussian_kernel_1d"]
