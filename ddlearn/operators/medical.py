r"""Medical measurement operators (Chapter 09): the parallel-beam Radon transform (CT) and
undersampled Cartesian Fourier sampling (MRI).

**CT.** :class:`Radon` is scikit-image's ``radon(image, theta, circle=True)``
written as one sparse matrix: for each angle the image is rotated by
bilinear interpolation (zero outside) and summed along columns, exactly as
``skimage.transform.radon`` does, so the values agree with it to float
precision and the adjoint is the transposed matrix (an exact pair:
:math:`\langle A x, y\rangle = \langle x, A^\top y\rangle`). It is
differentiable (autograd runs the transpose). Sinograms are
``(B, C, S, n_views)`` (detector bin, angle), scikit-image's layout, so a
sinogram goes straight to ``iradon`` / ``iradon_sart``. Only the field of view
counts: pixels outside the reconstruction circle
(:func:`ddlearn.data.medical.circle_mask`) are not seen (they are in the
null space), as for a real scanner.

Because :math:`A` has fewer rows than pixels for sparse views, its
pseudo-inverse is :math:`A^\top (A A^\top)^{+}`; :class:`Radon` builds the
small Gram matrix :math:`A A^\top` once and eigendecomposes it, so
:meth:`Radon.pinv` is exact (eigenvalues below ``rcond`` times the largest
dropped), and :meth:`Radon.solve` gives the damped (Tikhonov) version
:math:`A^\top (A A^\top + \lambda I)^{-1} y` through one Cholesky factorisation
(several times cheaper than the eigendecomposition; both are cached per
geometry).

**MRI.** :class:`KSpace` samples the orthonormal 2-D Fourier transform of an
image (centred: the zero frequency in the middle) on a 0/1 ``mask``:
:math:`y = M \odot \mathcal F x`, complex ``(B, C, H, W)`` with zeros where
nothing was sampled. :math:`\mathcal F` is unitary and M a projection, so
:math:`A A^H = M` and the adjoint *is* the pseudo-inverse, the zero-filled
reconstruction :math:`\mathcal F^{-1}(M \odot y)`. The operator takes real or
complex images; the adjoint is complex (an MR image is complex; the book's
phantoms are real: :meth:`KSpace.solve_real` is the pseudo-inverse over real
images, which uses the Hermitian symmetry of a real image's spectrum).
:func:`kspace_mask` makes Cartesian masks: whole phase-encoding lines (rows), a
fully sampled centre, the rest equispaced, uniformly random or with a
variable density that falls off away from the centre.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import _checks
from ..config import randn_like
from .base import Operator


# --------------------------------------------------------------------------- CT
def _circle(size: int) -> np.ndarray:
    c = np.arange(size) - size // 2
    return (c[:, None] ** 2 + c[None, :] ** 2) <= (size // 2) ** 2


def radon_matrix(size: int, theta_deg) -> "scipy.sparse.csr_matrix":  # noqa: F821
    """The Radon transform of scikit-image (``circle=True``) as a sparse ``(size * n_views, size * size)``
    matrix in float64; row ``d * n_views + k`` is detector bin d at angle k, columns are pixels row-major,
    pixels outside the reconstruction circle have no weight."""
    from scipy import sparse

    theta = np.asarray(theta_deg, dtype=np.float64).reshape(-1)
    n, m = size, theta.size
    center = n // 2
    rr, cc = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    inside = _circle(n).reshape(-1)
    rows, cols, vals = [], [], []
    for k, ang in enumerate(np.deg2rad(theta)):
        cos_a, sin_a = math.cos(ang), math.sin(ang)
        # skimage.transform.warp with this matrix: output pixel (col c, row r) reads the input at (x, y)
        x = cos_a * cc + sin_a * rr - center * (cos_a + sin_a - 1)
        y = -sin_a * cc + cos_a * rr - center * (cos_a - sin_a - 1)
        r0, c0 = np.floor(y), np.floor(x)
        dr, dc = y - r0, x - c0
        for (ro, co, w) in ((0, 0, (1 - dr) * (1 - dc)), (0, 1, (1 - dr) * dc), (1, 0, dr * (1 - dc)), (1, 1, dr * dc)):
            ri, ci = (r0 + ro).astype(np.int64), (c0 + co).astype(np.int64)
            ok = (ri >= 0) & (ri < n) & (ci >= 0) & (ci < n) & (w > 0)
            pix = ri[ok] * n + ci[ok]
            keep = inside[pix]
            rows.append((cc[ok][keep].astype(np.int64) * m + k))  # the output column is the detector bin
            cols.append(pix[keep])
            vals.append(w[ok][keep])
    A = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * m, n * n))
    return A.tocsr()  # duplicates summed


def _to_torch_sparse(A, dtype) -> torch.Tensor:
    A = A.tocoo()
    idx = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(A.data).to(dtype), A.shape,
                                   check_invariants=False).coalesce()  # scipy's CSR -> COO is valid by construction


_GRAM_EIG: dict = {}  # (size, angles) -> eigendecomposition of A A^T, shared by every Radon of that geometry


def _gram_eig(A, key):
    if key not in _GRAM_EIG:
        s, U = np.linalg.eigh((A @ A.T).toarray())
        _GRAM_EIG[key] = (torch.from_numpy(s), torch.from_numpy(U))
    return _GRAM_EIG[key]


_GRAM_CHOL: dict = {}  # (size, angles, damping) -> Cholesky factor of A A^T + damping I (cheaper than eigh)


def _gram_chol(A, key, damping):
    k = (*key, float(damping))
    if k not in _GRAM_CHOL:
        G = torch.from_numpy((A @ A.T).toarray())
        G.diagonal().add_(damping)
        _GRAM_CHOL[k] = torch.linalg.cholesky(G)
    return _GRAM_CHOL[k]


class _SparseApply(torch.autograd.Function):
    """y = A x for x (N, K) with A sparse; backward is A^T (the exact transpose)."""

    @staticmethod
    def forward(ctx, x, A, At):
        ctx.At, ctx.A = At, A
        return A @ x

    @staticmethod
    def backward(ctx, g):
        return ctx.At @ g, None, None


class Radon(Operator):
    """Parallel-beam CT: ``y = radon(x, theta=angles, circle=True)`` per image, (B, C, S, S) -> (B, C, S, n_views).

    ``views``: the number of projection angles, evenly spread over [0, 180)
    degrees (``np.linspace(0, 180, views, endpoint=False)``), or ``angles``: the
    angles in degrees. ``size``: the image side S. ``rcond``: relative
    eigenvalue cut-off of the exact pseudo-inverse.
    """

    complex_y = False  # real measurements: a complex y would lose its imaginary part

    def __init__(self, size: int, views: int | None = None, *, angles=None, noise: float = 0.0,
                 rcond: float = 1e-6):
        super().__init__(noise)
        self.size = _checks.positive_int("size", size, minimum=4)
        if angles is None:
            if views is None:
                raise ValueError("give views (a number of evenly spread angles) or angles (degrees)")
            _checks.positive_int("views", views)
            angles = np.linspace(0.0, 180.0, views, endpoint=False)
        elif views is not None:
            raise ValueError("give views or angles, not both")
        try:
            theta = np.array(angles, dtype=np.float64).reshape(-1)  # a copy: the caller's array stays theirs
        except (TypeError, ValueError) as err:
            raise TypeError(f"angles must be numbers (degrees), got {type(angles).__name__}: {err}") from None
        if theta.size == 0:
            raise ValueError("the Radon transform needs at least one view; got zero angles")
        if not np.all(np.isfinite(theta)):
            raise ValueError("angles must be finite numbers (degrees)")
        self.theta = theta
        self.views = int(theta.size)
        self.rcond = _checks.number("rcond", rcond, low=0)
        self._A = radon_matrix(self.size, theta)
        self._mats: dict = {}

    # ---- the matrices -----------------------------------------------------
    def matrix(self):
        """The scipy CSR matrix (float64) of the transform."""
        return self._A

    def _torch(self, dtype, device):
        key = (dtype, str(device))
        if key not in self._mats:
            self._mats[key] = (_to_torch_sparse(self._A, dtype).to(device),
                               _to_torch_sparse(self._A.T, dtype).to(device))
        return self._mats[key]

    def _shape_ok(self, shape, name, what):
        if len(shape) != 4 or tuple(shape[-2:]) != what:
            raise ValueError(f"Radon: {name} must have shape (B, C, {what[0]}, {what[1]}), got {tuple(shape)}")

    # ---- the contract -----------------------------------------------------
    def forward(self, x):
        self._shape_ok(x.shape, "x", (self.size, self.size))
        if x.is_complex():
            raise TypeError("Radon: x must be a real image, got a complex tensor")
        B, C = x.shape[:2]
        A, At = self._torch(x.dtype, x.device)
        flat = x.reshape(B * C, -1).T  # (S*S, BC)
        y = _SparseApply.apply(flat.contiguous(), A, At)
        return y.T.reshape(B, C, self.size, self.views)

    def input_shape(self, y_shape):
        self._shape_ok(y_shape, "y", (self.size, self.views))
        return (y_shape[0], y_shape[1], self.size, self.size)

    def adjoint(self, y):
        """Back-projection A^T y (unfiltered): the exact transpose of :meth:`forward`."""
        self.check_y(y)
        B, C = y.shape[:2]
        _, At = self._torch(y.dtype, y.device)
        return (At @ y.reshape(B * C, -1).T.contiguous()).T.reshape(B, C, self.size, self.size)

    def _key(self):
        return (self.size, tuple(np.round(self.theta, 9)))

    def _gram_eig(self):
        """Eigendecomposition of the Gram matrix A A^T (computed once per geometry, then cached)."""
        return _gram_eig(self._A, self._key())

    def _inverse_gram(self, y, damping: float, rcond: float):
        """(A A^T + damping I)^+ y, per item, through the eigendecomposition of A A^T (float64)."""
        s, U = self._gram_eig()
        B, C = y.shape[:2]
        v = y.reshape(B * C, -1).to(torch.float64).cpu()
        keep = s > rcond * s.max()
        inv = torch.where(keep, 1.0 / (s + damping).clamp_min(1e-300), torch.zeros_like(s))
        w = ((v @ U) * inv) @ U.T
        return w.reshape(y.shape).to(y.dtype).to(y.device)

    def pinv(self, y, *, rcond: float | None = None, **_):
        r"""The exact pseudo-inverse :math:`A^\top (A A^\top)^+ y` (minimum-norm least squares)."""
        self.check_y(y)
        rc = self.rcond if rcond is None else _checks.number("rcond", rcond, low=0)
        return self.adjoint(self._inverse_gram(y, 0.0, rc))

    def solve(self, y, damping: float = 0.0):
        r""":math:`A^\top (A A^\top + \lambda I)^{-1} y`: the pseudo-inverse damped by ``damping`` = :math:`\lambda`
        (Tikhonov; 0 is :meth:`pinv`). It minimises :math:`\lVert A x - y\rVert^2 + \lambda \lVert x\rVert^2`."""
        self.check_y(y)
        _checks.number("damping", damping, low=0)
        if damping == 0:
            return self.pinv(y)
        # A A^T + damping I is positive definite: one Cholesky factorisation per geometry and damping
        L = _gram_chol(self._A, self._key(), damping)
        B, C = y.shape[:2]
        v = y.reshape(B * C, -1).to(torch.float64).cpu().T
        w = torch.cholesky_solve(v, L).T.reshape(y.shape).to(y.dtype).to(y.device)
        return self.adjoint(w)

    def attenuation(self, y: torch.Tensor) -> torch.Tensor:
        r"""The sinogram of the attenuation :math:`\mu = (x + 1)/2` given the sinogram ``y`` of the image x:
        :math:`(y + A\mathbf 1)/2` (A is linear). A scanner measures this one; it is >= 0."""
        self.check_y(y)
        ones = torch.ones(1, 1, self.size, self.size, dtype=y.dtype, device=y.device)
        return (y + self(ones)) / 2

    def measure_relative(self, x: torch.Tensor, level: float, *, generator: torch.Generator | None = None):
        """``A x`` plus Gaussian noise of standard deviation ``level`` times each image's largest line integral
        of the attenuation (so 0.01 is "1% noise"); in x's units that is twice as much (x = 2 mu - 1)."""
        _checks.number("level", level, low=0)
        y = self(x)
        peak = self.attenuation(y).reshape(y.shape[0], -1).amax(1).reshape(-1, 1, 1, 1)
        if level == 0:
            return y
        return y + 2 * level * peak * randn_like(y, generator)

    def extra_repr(self):
        return f"size={self.size}, views={self.views}, noise={self.noise:g}"


# --------------------------------------------------------------------------- MRI
MASK_KINDS = ("equispaced", "random", "variable_density")
#: fully sampled centre fraction by acceleration (fastMRI's convention: 8% at x4, 4% at x8)
CENTER_FRACTION = {4: 0.08, 8: 0.04}


def kspace_mask(size: int, acceleration: float, *, kind: str = "equispaced", center_fraction: float | None = None,
                generator: torch.Generator | None = None, decay: float = 2.0) -> torch.Tensor:
    """A Cartesian k-space mask ``(size, size)`` of 0/1 (float): whole rows (phase-encoding lines) sampled.

    ``round(size / acceleration)`` lines in all: the ``round(size * center_fraction)`` (at least 1)
    lines around the zero frequency (the centre row, ``size // 2``), then the rest

    * ``"equispaced"``: evenly spaced over k-space (fastMRI's equispaced mask);
    * ``"random"``: drawn uniformly from ``generator``;
    * ``"variable_density"``: drawn without replacement with probability
      proportional to ``(1 - |k| / k_max) ** decay``: dense near the centre,
      sparse at high frequencies (Lustig et al. 2007).

    ``center_fraction`` defaults to :data:`CENTER_FRACTION` (0.08 at x4, 0.04 at x8, else 0.32 / acceleration).
    """
    _checks.positive_int("size", size, minimum=2)
    _checks.number("acceleration", acceleration, low=1)
    _checks.choice("mask kind", kind, MASK_KINDS)
    if center_fraction is None:
        center_fraction = CENTER_FRACTION.get(acceleration, 0.32 / acceleration)
    _checks.number("center_fraction", center_fraction, low=0, high=1)
    _checks.number("decay", decay, low=0)
    _checks.generator("generator", generator)
    total = max(1, int(round(size / acceleration)))
    n_center = min(total, max(1, int(round(size * center_fraction))))
    c = size // 2
    start = c - n_center // 2
    lines = set(range(start, start + n_center))
    rest = total - len(lines)
    others = np.array([k for k in range(size) if k not in lines])
    if rest > 0:
        if kind == "equispaced":
            pos = np.linspace(0, len(others), rest, endpoint=False) + len(others) / rest / 2
            chosen = others[np.clip(pos.astype(int), 0, len(others) - 1)]
        else:
            if kind == "random":
                w = torch.ones(len(others), dtype=torch.float64)
            else:
                dist = torch.from_numpy(np.abs(others - c).astype(np.float64))
                w = (1 - dist / (c + 1)).clamp_min(1e-6) ** decay
            idx = torch.multinomial(w, rest, replacement=False, generator=generator).numpy()
            chosen = others[idx]
        lines.update(int(k) for k in chosen)
    m = torch.zeros(size, size)
    m[sorted(lines), :] = 1.0
    return m


class KSpace(Operator):
    r"""Undersampled Cartesian MRI: :math:`y = M \odot \mathcal F x` (orthonormal, centred 2-D FFT), complex.

    ``mask``: 0/1 (or boolean) ``(H, W)``; make one with :func:`kspace_mask` or
    :meth:`KSpace.cartesian`. ``noise``: standard deviation of complex Gaussian
    noise on the sampled entries (:math:`E|n|^2 = \sigma^2`).
    """

    complex_x = True   # an MRI image may be complex; the book's are real
    complex_y = True   # k-space data is complex: a real y is an image passed by mistake

    def __init__(self, mask, noise: float = 0.0):
        super().__init__(noise)
        mask = _checks.as_tensor("mask", mask).detach().clone()  # the operator's own: the caller's stays theirs
        if mask.dtype == torch.bool:
            mask = mask.float()
        _checks.tensor("mask", mask, ndim=2)
        if not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must hold only 0 and 1 (or be boolean)")
        if mask.sum() == 0:
            raise ValueError("mask samples nothing: at least one k-space entry must be 1")
        self.register_buffer("mask", mask)

    @classmethod
    def cartesian(cls, size: int, acceleration: float, *, kind: str = "equispaced", noise: float = 0.0,
                  generator: torch.Generator | None = None, **kwargs) -> "KSpace":
        """An operator with a :func:`kspace_mask` of ``size``, ``acceleration`` and ``kind``."""
        return cls(kspace_mask(size, acceleration, kind=kind, generator=generator, **kwargs), noise)

    @property
    def rate(self) -> float:
        """The fraction of k-space sampled (1 / acceleration)."""
        return float(self.mask.mean())

    def check_x(self, x, name: str = "x"):
        super().check_x(x, name)
        if x.dtype not in (torch.float32, torch.float64, torch.complex64, torch.complex128):
            raise TypeError(f"KSpace: {name} must be float32 or float64 (or complex64/128) for the FFT, got {x.dtype}; "
                            f"pass {name}.float()")
        return x

    def _fits(self, shape, name):
        if len(shape) != 4 or tuple(shape[-2:]) != tuple(self.mask.shape):
            raise ValueError(f"KSpace: {name} must have shape (B, C, {self.mask.shape[0]}, {self.mask.shape[1]}) "
                             f"to match the mask, got {tuple(shape)}")

    def _m(self, like):
        return self.mask.to(device=like.device, dtype=like.real.dtype)

    def forward(self, x):
        self._fits(x.shape, "x")
        k = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
        return k * self._m(k)

    def input_shape(self, y_shape):
        self._fits(y_shape, "y")
        return tuple(y_shape)

    def adjoint(self, y):
        r""":math:`\mathcal F^{-1}(M \odot y)`, complex (for real images take ``.real``)."""
        self.check_y(y)
        return torch.fft.ifft2(torch.fft.ifftshift(y * self._m(y), dim=(-2, -1)), norm="ortho")

    def pinv(self, y, **_):
        """The zero-filled reconstruction: A A^H = M is a projection, so A^+ = A^H."""
        return self.adjoint(y)

    def _mirror(self) -> torch.Tensor:
        """The mask at the mirrored frequencies -k (in the centred layout): where the conjugate line was sampled."""
        H, W = self.mask.shape
        ri = (2 * (H // 2) - torch.arange(H)) % H
        ci = (2 * (W // 2) - torch.arange(W)) % W
        return self.mask[ri][:, ci]

    def solve_real(self, y: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
        r"""The pseudo-inverse over *real* images, damped by ``damping`` :math:`\mu` (0: exact).

        A real image has a Hermitian-symmetric spectrum, :math:`\hat x(-k) = \overline{\hat x(k)}`, so a
        sampled line whose mirror was not sampled also tells us the mirror. As a map from real images,
        :math:`A A^\top` is 1/2 on such lines and 1 on pairs (both k and -k sampled), so
        :math:`A^+ r = \mathrm{Re}\,\mathcal F^{-1}(W \odot M \odot r)` with :math:`W = 1/(1/2 + \mu)` on
        unpaired lines and :math:`1/(1 + \mu)` on pairs. Then :math:`A(A^+ y) = y` exactly for data of a
        real image, which taking the real part of the zero-filled image does not give.
        """
        self.check_y(y)
        _checks.number("damping", damping, low=0)
        paired = self._mirror() * self.mask
        w = torch.where(paired > 0, 1.0 / (1.0 + damping), 1.0 / (0.5 + damping)).to(self.mask.dtype)
        return self.adjoint(y * w.to(y.real.dtype)).real

    def measure(self, x, *, generator=None):
        """A noisy measurement: complex noise only on the sampled entries."""
        y = self(x)
        if self.noise == 0:
            return y
        n = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)  # complex: E|n|^2 = 1
        return y + self.noise * n * self._m(y)

    def extra_repr(self):
        return f"size={tuple(self.mask.shape)}, rate={self.rate:.3f}, noise={self.noise:g}"


__all__ = ["Radon", "radon_matrix", "KSpace", "kspace_mask", "MASK_KINDS", "CENTER_FRACTION"]
