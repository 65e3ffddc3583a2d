r"""Classical CT and MRI reconstructions: the prior-free baselines of Chapter 09.

scikit-image does the work wherever it has the method:

* :func:`fbp`       filtered back-projection, ``skimage.transform.iradon`` (ramp filter);
* :func:`sart`      the simultaneous algebraic reconstruction technique,
  ``skimage.transform.iradon_sart``, ``sweeps`` passes (each refines the last);
* :func:`sart_tv`   SART with total-variation denoising between sweeps
  (``skimage.restoration.denoise_tv_chambolle``): a classical
  "iterate data fit, then regularise" scheme;
* :func:`zero_filled` the inverse FFT of the zero-filled k-space (the adjoint);
* :func:`tv_cs`     total-variation compressed sensing (Lustig, Donoho & Pauly
  2007): minimise :math:`\tfrac12\lVert M\mathcal F x - y\rVert^2 + w\,\mathrm{TV}(x)`
  by accelerated proximal gradient (FISTA), whose proximal step is
  scikit-image's TV denoiser. Because :math:`A A^H = M`, the gradient step
  with step size 1 re-inserts the measured k-space lines.

CT baselines run on the attenuation :math:`\mu = (x + 1) / 2`, which is zero
outside the body as ``iradon``/``iradon_sart`` assume: the sinogram of
:math:`\mu` is :math:`(y + A\mathbf 1) / 2` (A is linear), and the result is
mapped back to :math:`x = 2\mu - 1`, so every method sees the same data. The
pixels outside the field of view, which no ray sees, are set to air (-1).
Reconstructions are clipped to [-1, 1] (the range of every image in the book);
SART's own ``clip`` keeps :math:`\mu \ge 0`.

Defaults (sweeps, TV weights, iterations) were chosen on the validation
phantoms (``benchmarks/medical.py --tune``), never on the test set.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import _checks
from ..operators import Operator
from ..operators.medical import KSpace, Radon

#: Defaults chosen on 4 validation phantoms by ``python benchmarks/medical.py --tune --parts baselines --n 4``
#: (never the test split). SART+TV, PSNR at 8 / 23 views, noiseless: 20 sweeps with TV weight 0.005 gave
#: 26.93 / 36.71 dB against 23.46 / 31.32 for the first guess (10 sweeps, 0.02) and 24.86 / 32.93 for plain
#: SART; with 1% noise 26.64 / 34.70. It was the best of sweeps {10, 20} x weight {0.005, 0.01, 0.02, 0.04},
#: at the grid's edge, so more sweeps or a smaller weight may do better still. TV-CS at x4: weight 0.01
#: (26.49 dB) over 0.02 (26.21), 0.005 (23.27), 0.04 (23.24); at x8 every weight gave about 15 dB.
SART_SWEEPS = 10
SART_TV = {"sweeps": 20, "weight": 0.005}
TV_CS = {"weight": 0.01, "iters": 60}


def _radon(operator, y):
    if not isinstance(operator, Radon):
        raise TypeError(f"operator must be a ddlearn.operators.medical.Radon, got {type(operator).__name__}")
    operator.check_y(y)
    return operator


def _attenuation_sinograms(operator: Radon, y: torch.Tensor) -> np.ndarray:
    """(B*C, S, views) float64 sinograms of mu = (x + 1) / 2."""
    return operator.attenuation(y.detach().cpu().double()).numpy().reshape(-1, operator.size, operator.views)


def _back(mu: list, operator: Radon, like: torch.Tensor) -> torch.Tensor:
    from ..data.medical import circle_mask

    x = torch.from_numpy(np.stack(mu)).to(like.dtype) * 2 - 1
    x = torch.where(circle_mask(operator.size), x, torch.full_like(x, -1.0))
    return x.clamp(-1, 1).reshape(*like.shape[:2], operator.size, operator.size)


def fbp(operator: Radon, y: torch.Tensor, *, filter_name: str = "ramp") -> torch.Tensor:
    """Filtered back-projection (``skimage.transform.iradon``) of each sinogram in ``y``."""
    from skimage.transform import iradon

    op = _radon(operator, y)
    out = [iradon(s, theta=op.theta, output_size=op.size, filter_name=filter_name, circle=True)
           for s in _attenuation_sinograms(op, y)]
    return _back(out, op, y)


def _relaxation(value) -> float:
    """SART's step, in (0, 1]: at 0 nothing moves, a negative one climbs the misfit, past 1 it oscillates
    (scikit-image advises values well below 1)."""
    return _checks.number("relaxation", value, low=0, low_open=True, high=1)


def sart(operator: Radon, y: torch.Tensor, *, sweeps: int = SART_SWEEPS, relaxation: float = 0.15) -> torch.Tensor:
    """``sweeps`` passes of SART (``skimage.transform.iradon_sart``), each starting from the last, mu >= 0."""
    from skimage.transform import iradon_sart

    op = _radon(operator, y)
    _checks.positive_int("sweeps", sweeps)
    _relaxation(relaxation)
    out = []
    for s in _attenuation_sinograms(op, y):
        img = None
        for _ in range(sweeps):
            img = iradon_sart(s, theta=op.theta, image=img, relaxation=relaxation, clip=(0.0, 1.0))
        out.append(img)
    return _back(out, op, y)


def sart_tv(operator: Radon, y: torch.Tensor, *, sweeps: int = SART_TV["sweeps"],
            weight: float = SART_TV["weight"], relaxation: float = 0.15) -> torch.Tensor:
    """SART sweeps with a TV denoising step (``denoise_tv_chambolle``, ``weight`` on mu) after each."""
    from skimage.restoration import denoise_tv_chambolle
    from skimage.transform import iradon_sart

    op = _radon(operator, y)
    _checks.positive_int("sweeps", sweeps)
    _checks.number("weight", weight, low=0)
    _relaxation(relaxation)
    out = []
    for s in _attenuation_sinograms(op, y):
        img = None
        for _ in range(sweeps):
            img = iradon_sart(s, theta=op.theta, image=img, relaxation=relaxation, clip=(0.0, 1.0))
            if weight > 0:
                img = denoise_tv_chambolle(img, weight=weight)
        out.append(img)
    return _back(out, op, y)


def _kspace(operator, y):
    if not isinstance(operator, KSpace):
        raise TypeError(f"operator must be a ddlearn.operators.medical.KSpace, got {type(operator).__name__}")
    operator.check_y(y)
    return operator


def zero_filled(operator: KSpace, y: torch.Tensor) -> torch.Tensor:
    """The zero-filled inverse FFT :math:`\\mathcal F^{-1}(M y)` (the adjoint = pseudo-inverse), real part, clipped."""
    op = _kspace(operator, y)
    return op.adjoint(y).real.clamp(-1, 1).to(y.real.dtype)


def tv_cs(operator: KSpace, y: torch.Tensor, *, weight: float = TV_CS["weight"], iters: int = TV_CS["iters"]) -> torch.Tensor:
    r"""TV compressed sensing by FISTA: gradient step on :math:`\tfrac12\lVert M\mathcal F x - y\rVert^2`
    (step 1: re-insert the measured lines), then the TV proximal step (scikit-image), ``iters`` times."""
    from skimage.restoration import denoise_tv_chambolle

    op = _kspace(operator, y)
    _checks.number("weight", weight, low=0)
    _checks.positive_int("iters", iters)
    x = op.adjoint(y).real.double()
    z, t = x.clone(), 1.0
    for _ in range(iters):
        g = z + op.adjoint(y - op(z)).real  # z - grad
        arr = g.cpu().numpy()
        x_new = torch.from_numpy(np.stack([[denoise_tv_chambolle(c, weight=weight) for c in b] for b in arr])) \
            if weight > 0 else g
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        z = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x.clamp(-1, 1).to(y.real.dtype)


#: classical reconstructions by name, each ``fn(operator, y) -> x``
METHODS = {"FBP": fbp, "SART": sart, "SART+TV": sart_tv, "zero-filled": zero_filled, "TV-CS": tv_cs}


def baseline(name: str, operator: Operator, y: torch.Tensor, **options) -> torch.Tensor:
    """The classical reconstruction ``name`` of :data:`METHODS` (FBP, SART, SART+TV for CT; zero-filled, TV-CS for MRI)."""
    _checks.choice("baseline", name, tuple(METHODS))
    return METHODS[name](operator, y, **options)


__all__ = ["fbp", "sart", "sart_tv", "zero_filled", "tv_cs", "baseline", "METHODS", "SART_SWEEPS", "SART_TV",
           "TV_CS"]
