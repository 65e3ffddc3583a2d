r"""Measurement operators :math:`y = \mathcal A(x) + \sigma_y n`, one module a family.

* :mod:`.base`   the contract (:class:`Operator`: forward, adjoint, pinv, measure,
  project), :class:`Identity`, :class:`Matrix` (vectors), :class:`Compose` (``A @ B``);
* :mod:`.image`  :class:`Mask`, :class:`Downsample`, :class:`Grayscale`,
  :class:`Convolution` / :class:`Blur`, and :func:`get` (an operator by name);
* :mod:`.parametric`  Chapter 07's operators with unknown ``nn.Parameter`` s learnt while
  restoring: :class:`LowLight` (exposure f, illumination M), :class:`Gamma`,
  :class:`ColourMatrix`, :class:`BlindBlur` (unknown width).
* :mod:`.medical`  Chapter 09's :class:`Radon` (parallel-beam CT, scikit-image's radon as a
  sparse matrix with its exact transpose) and :class:`KSpace` (undersampled Cartesian MRI, complex).

A new measurement is a subclass of :class:`Operator` in the module of its
family (a new module for a new family); linear ones get an adjoint and a
pseudo-inverse for free.
"""
from .base import Compose, Identity, Matrix, Operator
from .image import NAMES, Blur, Convolution, Downsample, Grayscale, Mask, gaussian_kernel, get
from .parametric import BlindBlur, ColourMatrix, Gamma, LowLight, ParametricOperator  # noqa: E402  (Chapter 07)

__all__ = ["Operator", "Identity", "Matrix", "Compose", "Mask", "Downsample", "Grayscale", "Convolution", "Blur",
           "gaussian_kernel", "get", "NAMES", "ParametricOperator", "LowLight", "Gamma", "ColourMatrix", "BlindBlur"]
from .medical import KSpace, Radon, kspace_mask  # noqa: E402  (Chapter 09)

__all__ += ["Radon", "KSpace", "kspace_mask"]
