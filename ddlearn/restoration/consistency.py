r"""Reconstruction with a diffusion prior and *data consistency*: hooks on the one DDIM loop.

For a linear measurement :math:`y = A x` (CT's Radon transform, MRI's
undersampled Fourier transform) the measurement-consistent images form an
affine set :math:`\{x : A x = y\}`. The closest point of it to an image
:math:`x` is :math:`x + A^+(y - A x)`; a weight :math:`\lambda \in [0, 1]`
moves part of the way, and a damping :math:`\mu \ge 0` replaces :math:`A^+` by
:math:`A^\top (A A^\top + \mu I)^{-1}` (Tikhonov) for noisy data:

.. math:: \mathrm{DC}_{\lambda,\mu}(x; y) = x + \lambda\, A^\top (A A^\top + \mu I)^{-1} (y - A x).

The methods differ in *what* they make consistent, at each step of the
DDIM-family loop (:func:`ddlearn.samplers.ddim.ddim_loop`, hook
``predict(x, t, alpha_bar, i) -> (x0, eps, shift)``):

* :func:`sample_projection` (Song, Shen, Xing & Ermon, ICLR 2022, "Solving
  inverse problems in medical imaging with score-based generative models"):
  the **noisy state** :math:`x_t` is moved towards a measurement noised to the
  same level, :math:`\hat y_t = \sqrt{\bar\alpha_t}\,y + \sqrt{1-\bar\alpha_t}\,A z`
  (fresh :math:`z \sim \mathcal N(0, I)` each step), before the model sees it:
  :math:`x_t \leftarrow \mathrm{DC}_{\lambda,\mu}(x_t; \hat y_t)`. Their paper
  writes it in the transformed space :math:`T x` (Fourier for MRI, the full
  sinogram for CT) as a blend of the measured entries; with the exact
  pseudo-inverse it is the same projection for any linear :math:`A`.
* :func:`sample_score_mri` (Chung & Ye, Medical Image Analysis 2022,
  "Score-based diffusion models for accelerated MRI"): **hard** data
  consistency after each step, :math:`\lambda = 1`, against the clean
  measurement at the state's signal scale, :math:`\sqrt{\bar\alpha_t}\,y` (their
  VE-SDE state carries the signal at scale 1; a VP state at
  :math:`\sqrt{\bar\alpha_t}`). For MRI this replaces the sampled k-space
  lines of the state by the measured ones.
* ``sample_consistency(..., on="x0")``: the same projection on the model's
  **clean estimate** :math:`\hat x_0` (the range-null-space step of DDNM,
  Wang et al. 2023, with a weight and a damping), then the ordinary step
  from the corrected :math:`\hat x_0`.

All three end with one projection of the output onto the measurement
(``final=True``), so that with :math:`\lambda = 1, \mu = 0` the result explains
the data exactly (check it with :func:`ddlearn.metrics.consistency_psnr`).

An operator needs :meth:`pinv` (and, for damping, a ``solve(y, damping)``
method, as :class:`ddlearn.operators.medical.Radon` has). The k-space operator
maps real images to complex data; its ``solve_real`` is the pseudo-inverse over
*real* images (a real image's spectrum is Hermitian-symmetric, so a sampled
line also fixes its mirror), which keeps the state real and the data
consistency exact.

:func:`reconstruct` runs any of these for ``samples`` independent draws per
measurement and returns their mean (the posterior mean estimate, which
has a squared error no larger than the draws' average, image by image, by Jensen's inequality; one
particular draw can still score higher) and the draws.
"""
from __future__ import annotations

import math

import torch

from .. import _checks, param
from ..config import randn_like
from ..operators import Operator
from ..samplers.base import check_inputs, eval_eps
from ..samplers.ddim import ddim_loop
from ._common import check_measurement

ON = ("xt", "x0")

#: Defaults for sparse-view CT (Song et al.'s projection sampler), the same with 1% measurement noise, MRI
#: (score-MRI) and DPS for CT; ``samples`` draws are averaged. Chosen on 8 validation phantoms (never the test
#: split) by ``python benchmarks/medical.py --tune``, which stores every row ("tune:ct", "tune:ct_noisy",
#: "tune:mri", "tune:dps" in ddlearn/pretrained/medical_results.json; tests/test_medical_settings.py ties these
#: values to the best row, averaged over the two geometries). PSNR of the mean of 4 draws, 8 / 23 views:
#: noiseless CT, DDIM eta 1 (fresh noise in every step) 34.92 / 44.10 dB against eta 0's 30.67 / 41.99 (the
#: deterministic sampler from pure noise commits early and cannot correct itself); MRI x4 / x8, eta 1
#: 39.49 / 23.33 against eta 0's 40.34 / 22.12 (a tie on average; eta 1 by 0.18 dB); DPS at 23 views, scale
#: 0.05: 31.25 dB noiseless and 30.98 with 1% noise (0.02: 26.2; 0.1: 30.5; 0.2: 27.4). CT with 1% noise:
#: the damped inverse with mu = 10 and eta 1, 32.73 / 35.22 dB; undamped, the projection copies the noise
#: (16.94 / 11.17); mu = 3 gives 33.06 / 33.75, mu = 30 29.96 / 36.30 (each geometry prefers its own mu:
#: the fewer the views, the less damping); weight 0.5 instead of damping: 18.69 / 12.97.
CT = {"steps": 50, "weight": 1.0, "damping": 0.0, "eta": 1.0, "samples": 4}
CT_NOISY = {"steps": 50, "weight": 1.0, "damping": 10.0, "eta": 1.0, "samples": 4}
MRI = {"steps": 50, "eta": 1.0, "samples": 4}
#: The damping for noisy CT by number of views, chosen on the same validation phantoms for each geometry alone
#: (CT_NOISY's single mu = 10 is the best compromise over 8 and 23 views): more views make the rows of A more
#: alike, A A^T worse conditioned, and its inverse amplifies more of the noise, so more views want more damping.
#: PSNR of the mean of 4 (eta 1) for mu = 1 / 3 / 10 / 30 / 100: 8 views 32.75 / 33.06 / 32.73 / 29.96 / -;
#: 16 views - / 34.46 / 35.36 / 35.53 / -; 23 views 31.28 / 33.75 / 35.22 / 36.30 / 33.37 dB.
CT_NOISY_DAMPING = {8: 3.0, 16: 30.0, 23: 30.0}
DPS_CT = {"steps": 100, "scale": 0.05, "eta": 1.0}


def ct_settings(views: int, noise: float = 0.0) -> dict:
    """The projection sampler's defaults for ``views`` views: :data:`CT` without noise; with noise
    (``noise`` > 0) :data:`CT_NOISY` with the damping of :data:`CT_NOISY_DAMPING` for the nearest view count.
    A fresh dict (``samples`` and ``steps`` included) that the caller may change."""
    _checks.positive_int("views", views)
    _checks.number("noise", noise, low=0)
    if noise == 0:
        return dict(CT)
    nearest = min(CT_NOISY_DAMPING, key=lambda v: (abs(v - views), v))
    return {**CT_NOISY, "damping": CT_NOISY_DAMPING[nearest]}


def damped_pinv(operator: Operator, r: torch.Tensor, damping: float = 0.0, *, real: bool = False) -> torch.Tensor:
    r""":math:`A^\top (A A^\top + \mu I)^{-1} r`; ``damping`` :math:`\mu = 0` is the pseudo-inverse :math:`A^+ r`.

    ``real=True`` asks for the inverse over real images where the operator knows it
    (:meth:`~ddlearn.operators.medical.KSpace.solve_real`: complex data of a real image).
    """
    _checks.number("damping", damping, low=0)
    if real and hasattr(operator, "solve_real"):
        return operator.solve_real(r, damping)
    if damping == 0:
        return operator.pinv(r)
    if hasattr(operator, "solve"):
        return operator.solve(r, damping)
    raise TypeError(f"{type(operator).__name__} has no damped solve; use damping=0")


def data_consistency(operator: Operator, x: torch.Tensor, y: torch.Tensor, *, weight: float = 1.0,
                     damping: float = 0.0) -> torch.Tensor:
    r""":math:`x + \lambda A^\top (A A^\top + \mu I)^{-1}(y - A x)` (``weight`` :math:`\lambda`, ``damping`` :math:`\mu`).

    ``weight=1, damping=0`` is the orthogonal projection onto :math:`\{A x = y\}`.
    A real ``x`` stays real (the real part of a complex correction). ``weight`` lies in [0, 1] (past 1 the
    step overshoots the consistent set and, repeated, diverges); ``y`` must be a measurement of x's batch.
    """
    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(operator).__name__}")
    _checks.number("weight", weight, low=0, high=1)
    with torch.no_grad():
        ax = operator(x)
        operator.check_measurement(x, y, ax=ax)
        corr = damped_pinv(operator, y - ax, damping, real=not x.is_complex())
    if corr.is_complex() and not x.is_complex():
        corr = corr.real
    return x + weight * corr.to(x.dtype)


def consistency_predict(model, operator: Operator, y: torch.Tensor, *, on: str = "xt", weight: float = 1.0,
                        damping: float = 0.0, noisy_y: bool = True, generator: torch.Generator | None = None):
    """The ``predict(x, t, alpha_bar, i) -> (x0, eps, None)`` hook of :func:`ddim_loop` with data consistency.

    ``on="xt"``: make the state consistent with :math:`\\sqrt{\\bar\\alpha}\\,y`
    (+ :math:`\\sqrt{1-\\bar\\alpha}\\,A z` if ``noisy_y``), then ask the model;
    ``on="x0"``: ask the model, then make its :math:`\\hat x_0` consistent with y.
    """
    _checks.choice("on", on, ON)

    def predict(x, t, alpha_bar, i):
        if on == "xt":
            target = math.sqrt(alpha_bar) * y
            if noisy_y and alpha_bar < 1:
                target = target + math.sqrt(1 - alpha_bar) * operator(randn_like(x, generator))
            x = data_consistency(operator, x, target, weight=weight, damping=damping)
            eps = eval_eps(model, x, t, step=i)
            return param.eps_to_x0(x, eps, alpha_bar), eps, None
        eps = eval_eps(model, x, t, step=i)
        x0 = data_consistency(operator, param.eps_to_x0(x, eps, alpha_bar), y, weight=weight, damping=damping)
        return x0, param.x0_to_eps(x, x0, alpha_bar), None

    return predict


@torch.no_grad()
def sample_consistency(model, x_T: torch.Tensor, schedule, steps: int, *, operator: Operator, y: torch.Tensor,
                       on: str = "xt", weight: float = 1.0, damping: float = 0.0, noisy_y: bool = True,
                       final: bool = True, eta: float = 0.0, spacing="linspace", clip=None,
                       generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    """DDIM-family sampling with data consistency at every step (see the module docstring for ``on``).

    The book's sampler signature plus the measurement (``operator``, ``y``) and
    the consistency's ``weight``, ``damping``, ``noisy_y`` (noise the measurement
    to the state's level, ``on="xt"`` only) and ``final`` (project the output
    once more onto the data). ``clip`` clamps each x0 estimate (e.g. (-1, 1)).
    """
    check_inputs(model, x_T, schedule)
    check_measurement(operator, y, x_T, linear_for="data consistency")
    _checks.number("weight", weight, low=0, high=1)
    _checks.number("damping", damping, low=0)
    predict = consistency_predict(model, operator, y, on=on, weight=weight, damping=damping, noisy_y=noisy_y,
                                  generator=generator)
    x = ddim_loop(predict, x_T, schedule, steps, eta=eta, spacing=spacing, clip=clip, generator=generator,
                  callback=callback, progress=progress, desc=f"consistency ({on})")
    if final:
        x = data_consistency(operator, x, y, weight=weight, damping=damping)
    return x


def sample_projection(model, x_T: torch.Tensor, schedule, steps: int, *, operator: Operator, y: torch.Tensor,
                      weight: float = 1.0, damping: float = 0.0, eta: float = 0.0, spacing="linspace", clip=None,
                      generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    r"""Song et al. (ICLR 2022): project :math:`x_t` towards the noised measurement :math:`\hat y_t` before every step.

    ``weight`` is their :math:`\lambda` (1: replace the measured components; less
    trusts the prior more, for noisy data), ``damping`` a Tikhonov term of the
    projection.
    """
    return sample_consistency(model, x_T, schedule, steps, operator=operator, y=y, on="xt", weight=weight,
                              damping=damping, noisy_y=True, eta=eta, spacing=spacing, clip=clip,
                              generator=generator, callback=callback, progress=progress)


def sample_score_mri(model, x_T: torch.Tensor, schedule, steps: int, *, operator: Operator, y: torch.Tensor,
                     eta: float = 0.0, spacing="linspace", clip=None, generator: torch.Generator | None = None,
                     callback=None, progress: bool = True) -> torch.Tensor:
    r"""Chung & Ye (2022), score-MRI: hard data consistency of the state after every step,
    :math:`x \leftarrow x + A^+(\sqrt{\bar\alpha}\,y - A x)` (for MRI: the sampled k-space lines replaced)."""
    return sample_consistency(model, x_T, schedule, steps, operator=operator, y=y, on="xt", weight=1.0,
                              damping=0.0, noisy_y=False, eta=eta, spacing=spacing, clip=clip,
                              generator=generator, callback=callback, progress=progress)


SAMPLERS = {"projection": sample_projection, "score_mri": sample_score_mri, "consistency": sample_consistency}


def reconstruct(model, schedule, operator: Operator, y: torch.Tensor, *, method="projection", steps: int = 50,
                samples: int = 1, generator: torch.Generator | None = None, progress: bool = False,
                callback=None, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruct each measurement in ``y`` (B, ...) from ``samples`` draws; returns ``(mean, draws)``.

    ``method``: a name of :data:`SAMPLERS` ("projection", "score_mri",
    "consistency"), or any function with the sampler-with-measurement
    signature (e.g. :func:`ddlearn.restoration.sample_dps`). ``draws`` is
    ``(samples, B, C, H, W)``; the mean over draws estimates the posterior mean.
    ``options`` go to the sampler.
    """
    if isinstance(method, str):
        _checks.choice("method", method, tuple(SAMPLERS))
        method = SAMPLERS[method]
    elif not callable(method):
        raise TypeError(f"method must be a name ({', '.join(SAMPLERS)}) or a sampler function, "
                        f"got {type(method).__name__}")
    _checks.positive_int("samples", samples)
    operator.check_y(y)
    B = y.shape[0]
    shape = operator.input_shape(tuple(y.shape))
    from ..config import randn

    x_T = randn((samples * B, *shape[1:]), generator=generator, dtype=torch.float32, device=y.device)
    yy = y.repeat(samples, *([1] * (y.ndim - 1)))
    out = method(model, x_T, schedule, steps, operator=operator, y=yy, generator=generator, progress=progress,
                 callback=callback, **options)
    draws = out.reshape(samples, B, *shape[1:])
    return draws.mean(0), draws


__all__ = ["data_consistency", "damped_pinv", "consistency_predict", "sample_consistency", "sample_projection",
           "sample_score_mri", "reconstruct", "SAMPLERS", "ON", "CT", "CT_NOISY", "CT_NOISY_DAMPING", "MRI", "DPS_CT",
           "ct_settings"]
