r"""The measurement operator's contract, and the operators that are not about images, for inverse problems :math:`y = \mathcal A(x) + \sigma_y n`.

Every operator is a :class:`torch.nn.Module` with

* ``forward(x)``   the noiseless measurement :math:`\mathcal A(x)` (also ``op(x)``);
* ``adjoint(y)``   :math:`A^\top y` for linear operators, so that
  :math:`\langle A x, y\rangle = \langle x, A^\top y\rangle`;
* ``pinv(y)``      the Moore-Penrose pseudo-inverse :math:`A^+ y` (the
  minimum-norm least-squares solution), closed form where one exists;
* ``measure(x, generator=...)`` a noisy measurement
  :math:`\mathcal A(x) + \sigma_y n`, :math:`n \sim \mathcal N(0, I)`;
* ``noise``        the measurement noise level :math:`\sigma_y \ge 0`.

The base class gives every *linear* operator an adjoint and a pseudo-inverse
for free: the adjoint by automatic differentiation (for a linear map the
vector-Jacobian product at any point is :math:`A^\top v`), the
pseudo-inverse by conjugate gradients on the normal equations (CGLS started
at zero converges to :math:`A^+ y`). Subclasses override them with closed
forms when they know one, which is faster and exact. So a new operator
(Radon, undersampled Fourier for MRI in Chapter 09) needs only ``forward``
and ``input_shape``; a non-linear, parametrised one (Chapter 07's colour and
brightness transforms, whose parameters are ``nn.Parameter`` s learnt by
gradient) sets ``linear = False`` and needs only ``forward``: posterior
samplers that guide by gradient (:func:`ddlearn.restoration.sample_dps`)
use autograd through it and never ask for an adjoint.

Images are ``(B, C, H, W)``; :class:`Matrix` acts on vectors ``(B, D)``
(the 2-D mixtures of Chapter 06). Shapes are checked up front and a
mismatch raises a ``ValueError`` that names the operator and both shapes.

The image operators live in :mod:`.image`; Chapter 07's parametrised,
non-linear ones in ``parametric``; Chapter 09's Radon and undersampled
Fourier transforms in ``medical``.
"""
from __future__ import annotations


import torch

from .. import _checks
from ..config import randn_like


class Operator(torch.nn.Module):
    """Base class of a measurement operator ``y = A(x) + noise * n``.

    Subclasses implement :meth:`forward` and :meth:`input_shape` (the shape
    of x that gives a measurement of a given shape); linear ones may override
    :meth:`adjoint` and :meth:`pinv` with closed forms.
    """

    #: whether A is linear (then adjoint and pinv exist).
    linear: bool = True
    #: dimensions of x the operator accepts (4 for images).
    x_ndim: int = 4
    #: whether x may be complex (MRI's complex images) and whether y must be (k-space): a complex x where a real
    #: image is meant would lose its imaginary part, a real y where k-space is meant is an image passed as data.
    #: ``complex_y = None`` (an operator of your own that does not say) accepts either; the book's operators say.
    complex_x: bool = False
    complex_y: bool | None = None

    def __init__(self, noise: float = 0.0):
        super().__init__()
        self.noise = _checks.number("noise", noise, low=0)

    # ---- to implement -----------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def input_shape(self, y_shape: tuple) -> tuple:
        """The shape of x whose measurement has shape ``y_shape`` (for adjoint/pinv)."""
        raise NotImplementedError(f"{type(self).__name__} must implement input_shape(y_shape)")

    # ---- shape checks -----------------------------------------------------
    @staticmethod
    def _tensor(name, v):
        """A real or complex floating tensor, all finite (measurements such as MRI k-space are complex);
        a NaN passed through A(x) would reach a metric as if it were a measurement."""
        _checks.tensor(name, v, floating=False)
        if not (v.is_floating_point() or v.is_complex()):
            raise TypeError(f"{name} must be a floating-point or complex tensor, got dtype {v.dtype}")
        return v

    def check_x(self, x, name: str = "x") -> torch.Tensor:
        self._tensor(name, x)
        if x.is_complex() and not self.complex_x:
            raise TypeError(f"{type(self).__name__}: {name} must be a real image, got the complex dtype {x.dtype} "
                            f"(its imaginary part would be dropped)")
        if x.ndim != self.x_ndim:
            want = "(B, C, H, W)" if self.x_ndim == 4 else f"{self.x_ndim} dimensions"
            raise ValueError(f"{type(self).__name__}: {name} must have shape {want}, got {tuple(x.shape)}")
        return x

    def check_y_kind(self, y, name: str = "y") -> torch.Tensor:
        """``y`` must be complex where the operator's measurements are (k-space) and real where they are real."""
        if self.complex_y is not None and y.is_complex() != self.complex_y:
            want, got = ("complex (k-space)", "real") if self.complex_y else ("real", f"complex ({y.dtype})")
            raise TypeError(f"{type(self).__name__}: {name} must be a {want} measurement, got a {got} tensor"
                            + (" (an image? measure it with op(x))" if self.complex_y else ""))
        return y

    def check_y(self, y, name: str = "y") -> torch.Tensor:
        self._tensor(name, y)
        self.check_y_kind(y, name)
        self.input_shape(tuple(y.shape))  # raises a ValueError naming the shape when it cannot be a measurement
        return y

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.check_x(x)
        return super().__call__(x)

    # ---- derived ----------------------------------------------------------
    def measure(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A noisy measurement A(x) + noise * n, n ~ N(0, I) drawn from ``generator``."""
        y = self(x)
        if self.noise == 0:
            return y
        return y + self.noise * randn_like(y, generator)

    def _need_linear(self, what: str):
        if not self.linear:
            raise TypeError(f"{type(self).__name__} is non-linear and has no {what}; "
                            "guide by gradient instead (autograd through forward, e.g. sample_dps)")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        r"""A^T y. Default: the vector-Jacobian product of the linear map (autograd)."""
        self._need_linear("adjoint")
        self.check_y(y)
        x = torch.zeros(self.input_shape(tuple(y.shape)), dtype=y.real.dtype, device=y.device, requires_grad=True)
        with torch.enable_grad():
            out = self.forward(x)
            (g,) = torch.autograd.grad(out, x, grad_outputs=y)
        return g

    def pinv(self, y: torch.Tensor, *, iters: int = 200, tol: float = 1e-10) -> torch.Tensor:
        r"""A^+ y. Default: CGLS from zero, which converges to the minimum-norm least-squares solution.

        Per-item conjugate gradients on :math:`A^\top A x = A^\top y`;
        ``iters`` bounds the work, ``tol`` the relative residual.
        """
        self._need_linear("pseudo-inverse")
        self.check_y(y)
        B = y.shape[0]

        def dot(a, b):  # real inner product per item (complex measurements: Re <a, b>)
            return (a.conj() * b).real.reshape(B, -1).sum(1).reshape(-1, *([1] * (a.ndim - 1)))

        x = torch.zeros(self.input_shape(tuple(y.shape)), dtype=y.real.dtype, device=y.device)
        r = y.clone()
        s = self.adjoint(r)
        p, gamma = s.clone(), dot(s, s)
        gamma0 = gamma.clone()
        for _ in range(iters):
            if (gamma <= tol ** 2 * gamma0.clamp_min(1e-300)).all():
                break
            q = self.forward(p)
            alpha = gamma / dot(q, q).clamp_min(1e-300)
            x, r = x + alpha * p, r - alpha * q
            s = self.adjoint(r)
            gamma_new = dot(s, s)
            p, gamma = s + gamma_new / gamma.clamp_min(1e-300) * p, gamma_new
        return x

    def project(self, x: torch.Tensor, y: torch.Tensor, *, pinv_y: torch.Tensor | None = None) -> torch.Tensor:
        r"""The range-null-space split of Wang et al. (2023): :math:`A^+ y + (I - A^+ A) x`.

        Keeps the part of ``x`` that A cannot see and replaces the rest by what
        ``y`` says, so A(result) = A A^+ y (= y when y is in A's range).
        ``pinv_y``: :math:`A^+ y` computed once by a caller that projects onto
        the same y many times (DDNM, every step); None computes it. The one
        place this projection is written (``ddlearn.restoration.sample_ddnm`` uses it).
        """
        ax = self(x)
        self.check_measurement(x, y, ax=ax)
        if pinv_y is None:
            pinv_y = self.pinv(y)
        else:
            self._tensor("pinv_y", pinv_y)
            _checks.same_shape("x", x, "pinv_y", pinv_y)
        return pinv_y + x - self.pinv(ax)

    def check_measurement(self, x: torch.Tensor, y, name: str = "y", *, ax: torch.Tensor | None = None
                          ) -> torch.Tensor:
        """``y`` must be a measurement of images shaped like ``x``: the shape of ``A(x)`` (``ax``, when the
        caller has it), so that a y of another batch never broadcasts against x."""
        self.check_y(y, name)
        if ax is None:
            with torch.no_grad():
                ax = self.forward(torch.zeros_like(x))
        want = tuple(ax.shape)
        if tuple(y.shape) != want:
            raise ValueError(f"{type(self).__name__}: {name} must have the shape {want} of a measurement of x "
                             f"{tuple(x.shape)}, got {tuple(y.shape)}")
        return y

    def __matmul__(self, other: "Operator") -> "Compose":
        return Compose(self, other)

    def extra_repr(self) -> str:
        return f"noise={self.noise:g}"


class Identity(Operator):
    """y = x (+ noise): denoising."""

    complex_y = False

    # copies, not the caller's tensor itself: a sampler that updates its output in place must not write into x or y

    def forward(self, x):
        return x.clone()

    def input_shape(self, y_shape):
        if len(y_shape) != self.x_ndim:
            raise ValueError(f"Identity: y must have shape (B, C, H, W), got {y_shape}")
        return y_shape

    def adjoint(self, y):
        return self.check_y(y).clone()

    def pinv(self, y, **_):
        return self.check_y(y).clone()


class Matrix(Operator):
    """A dense matrix acting on vectors: y = x @ A^T, x (B, D), y (B, M). Small problems and 2-D toys."""

    complex_y = False

    x_ndim = 2

    def __init__(self, A, noise: float = 0.0):
        super().__init__(noise)
        A = _checks.as_tensor("A", A)
        if A.ndim == 1:
            A = A.reshape(1, -1)
        _checks.tensor("A", A if A.is_floating_point() else A.double(), ndim=2)
        self.register_buffer("A", A.detach().to(torch.float64).clone())  # its own copy, never the caller's

    def forward(self, x):
        if x.shape[1] != self.A.shape[1]:
            raise ValueError(f"Matrix: x must have shape (B, {self.A.shape[1]}), got {tuple(x.shape)}")
        return (x.to(torch.float64) @ self.A.T).to(x.dtype)

    def input_shape(self, y_shape):
        if len(y_shape) != 2 or y_shape[1] != self.A.shape[0]:
            raise ValueError(f"Matrix: y must have shape (B, {self.A.shape[0]}), got {tuple(y_shape)}")
        return (y_shape[0], self.A.shape[1])

    def adjoint(self, y):
        self.check_y(y)
        return (y.to(torch.float64) @ self.A).to(y.dtype)

    def pinv(self, y, **_):
        self.check_y(y)
        return (y.to(torch.float64) @ torch.linalg.pinv(self.A).T).to(y.dtype)


class Compose(Operator):
    """A(x) = outer(inner(x)); written ``outer @ inner``. Noise is the outer one's.

    The adjoint is inner^T(outer^T(y)); the pseudo-inverse is the generic
    CGLS one (inner^+ outer^+ is *not* the pseudo-inverse of a product in general).
    """

    def __init__(self, outer: Operator, inner: Operator):
        for name, op in (("outer", outer), ("inner", inner)):
            if not isinstance(op, Operator):
                raise TypeError(f"{name} must be an ddlearn.operators.Operator, got {type(op).__name__}")
        super().__init__(outer.noise)
        self.outer, self.inner = outer, inner
        self.linear = outer.linear and inner.linear
        self.x_ndim = inner.x_ndim
        self.complex_x, self.complex_y = inner.complex_x, outer.complex_y

    def forward(self, x):
        return self.outer(self.inner(x))

    def input_shape(self, y_shape):
        return self.inner.input_shape(self.outer.input_shape(y_shape))

    def adjoint(self, y):
        self._need_linear("adjoint")
        return self.inner.adjoint(self.outer.adjoint(self.check_y(y)))
