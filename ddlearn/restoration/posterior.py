r"""Posterior sampling for inverse problems :math:`y = \mathcal A(x) + \sigma_y n` with a diffusion prior.

Bayes: :math:`\nabla_{x_t}\log p(x_t \mid y) = \nabla_{x_t}\log p(x_t) + \nabla_{x_t}\log p(y \mid x_t)`.
The first term is the prior's score (the trained eps-model). The second is
intractable, and each method here approximates it differently, through the
model's prediction of the clean sample
:math:`\hat x_0(x_t) = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}` (Tweedie):

* :func:`sample_dps` (Chung et al. 2023, "DPS"): guidance **on x_t**:
  :math:`x_{t-1} \leftarrow x_{t-1} - \zeta\,\nabla_{x_t}\lVert y - \mathcal A(\hat x_0(x_t))\rVert`,
  back-propagating through the network. Works for non-linear A and noisy y.
* :func:`sample_guided` with ``on="x0"``: guidance **on the predicted x0**
  (the variant GDP builds on, Fei et al. 2023): move :math:`\hat x_0` down the
  gradient of :math:`\tfrac12\lVert y - \mathcal A(\hat x_0)\rVert^2` and take the
  ordinary step from the moved :math:`\hat x_0`; no gradient through the
  network, so it costs one network call per step.
* :func:`sample_ddnm` (Wang et al. 2023, "DDNM"): the range-null-space
  projection :math:`\hat x_0 \leftarrow A^+ y + (I - A^+A)\hat x_0`, exact data
  consistency for linear A, no gradients, no step size. Noiseless y
  assumed: with noise, the projection copies the noise into the result.

All share the book's sampler signature (:mod:`ddlearn.samplers`) plus the
measurement: ``sample_X(model, x_T, schedule, steps, *, operator, y,
generator=None, callback=None, progress=True, ...)``. Each method is a
``predict`` hook on the one DDIM-family loop (:func:`ddlearn.samplers.ddim.ddim_loop`):
the generalised DDIM update (Song et al. 2021) on ``steps`` timesteps of
``spacing`` (default ``"linspace"``: evenly spaced whole timesteps from T-1 to 0);
``eta=1`` is ancestral (DDPM-like) sampling, ``eta=0`` deterministic. With
guidance scale 0 a method is exactly :func:`ddlearn.samplers.sample_ddim` on the
same grid, eta and generator.

The exact posterior of a Gaussian-mixture prior (:mod:`.exact`) measures each method's bias.
"""
from __future__ import annotations

import torch

from .. import _checks, param
from ..operators import Operator
from ..samplers.base import check_inputs, eval_eps
from ..samplers.ddim import ddim_loop, model_predict
from ..schedules import Schedule
from ._common import check_measurement


# ---- the methods: each a predict hook on samplers.ddim.ddim_loop -------------------------
def _per_item_norm(v: torch.Tensor) -> torch.Tensor:
    """Sum over items of per-item norms: each item then gets its own gradient."""
    return v.reshape(v.shape[0], -1).norm(dim=1).sum()


def dps_predict(model, operator: Operator, y: torch.Tensor, scale: float):
    r"""DPS's hook: the model's prediction, plus the shift :math:`\text{scale}\cdot\nabla_{x_t}\lVert y - \mathcal A(\hat x_0(x_t))\rVert`."""
    plain = model_predict(model)
    if scale == 0:
        return plain

    def predict(x, t, alpha_bar, i):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            eps = eval_eps(model, xg, t, step=i)
            x0 = param.eps_to_x0(xg, eps, alpha_bar)
            (g,) = torch.autograd.grad(_per_item_norm(y - operator(x0)), xg)
        return x0.detach(), eps.detach(), scale * g
    return predict


def x0_guidance_predict(model, operator: Operator, y: torch.Tensor, scale: float):
    r"""Guidance on the predicted x0: move :math:`\hat x_0` by ``scale`` times one exact line-search step of
    :math:`\tfrac12\lVert y - \mathcal A(\hat x_0)\rVert^2` along its negative gradient; eps follows x0."""
    plain = model_predict(model)
    if scale == 0:
        return plain

    def predict(x, t, alpha_bar, i):
        x0, _, _ = plain(x, t, alpha_bar, i)
        with torch.enable_grad():
            z = x0.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(0.5 * (y - operator(z)).pow(2).sum(), z)
        # step length: exact line search of the quadratic along -g, per item: |g|^2 / |J g|^2
        Jg = operator(g) if operator.linear else torch.autograd.functional.jvp(operator, x0, g)[1]
        num = g.reshape(g.shape[0], -1).pow(2).sum(1)
        den = Jg.reshape(Jg.shape[0], -1).pow(2).sum(1).clamp_min(1e-12)
        x0 = x0 - scale * param.per_item(num / den, x0) * g
        return x0, param.x0_to_eps(x, x0, alpha_bar), None
    return predict


def ddnm_predict(model, operator: Operator, y: torch.Tensor):
    r"""DDNM's hook: project :math:`\hat x_0` onto :math:`A x = y`, :math:`A^+ y + (I - A^+A)\hat x_0`; eps follows x0."""
    plain = model_predict(model)
    Apy = operator.pinv(y)  # once: the projection needs it at every step

    def predict(x, t, alpha_bar, i):
        x0, _, _ = plain(x, t, alpha_bar, i)
        x0 = operator.project(x0, y, pinv_y=Apy)
        return x0, param.x0_to_eps(x, x0, alpha_bar), None
    return predict


def sample_guided(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator: Operator,
                  y: torch.Tensor, scale: float = 1.0, on: str = "xt", eta: float = 1.0, spacing="linspace",
                  clip: tuple[float, float] | None = None, generator: torch.Generator | None = None,
                  callback=None, progress: bool = True) -> torch.Tensor:
    r"""Posterior sampling by likelihood guidance, on x_t (``on="xt"``, DPS) or on the predicted x0 (``on="x0"``).

    ``on="xt"`` (Chung et al. 2023, their Algorithm 1 and released code):
    after each step :math:`x_{t-1} \leftarrow x_{t-1} - \text{scale}\cdot\nabla_{x_t}\lVert y - \mathcal A(\hat x_0(x_t))\rVert_2`
    (the norm, not its square: the step length is then ``scale`` times a unit-free direction).

    ``on="x0"``: :math:`\hat x_0 \leftarrow \hat x_0 - \text{scale}\cdot\tau\, g`,
    :math:`g = \nabla_{\hat x_0}\tfrac12\lVert y - \mathcal A(\hat x_0)\rVert^2`, with
    :math:`\tau = \lVert g\rVert^2 / \lVert J g\rVert^2` (J the operator's Jacobian) the
    exact line search of that quadratic along -g, per item; then the ordinary
    step from the moved :math:`\hat x_0`. So ``scale=1`` is one full
    steepest-descent step whatever the operator's gain: for a mask it pastes y
    into the observed pixels, for average pooling it corrects every block mean
    to y; ``scale<1`` moves part of the way.

    Both differentiate through ``operator`` with autograd, so non-linear and
    parametrised operators work. ``clip`` clamps :math:`\hat x_0` (e.g. (-1, 1) for images).
    """
    check_inputs(model, x_T, schedule)
    check_measurement(operator, y, x_T)
    _checks.number("scale", scale, low=0)
    _checks.choice("on", on, ("xt", "x0"))
    hook = dps_predict if on == "xt" else x0_guidance_predict
    return ddim_loop(hook(model, operator, y, scale), x_T, schedule, steps, eta=eta, spacing=spacing, clip=clip,
                     generator=generator, callback=callback, progress=progress, desc=f"guided ({on})")


def sample_dps(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator: Operator,
               y: torch.Tensor, scale: float = 1.0, eta: float = 1.0, spacing="linspace",
               clip: tuple[float, float] | None = None, generator: torch.Generator | None = None, callback=None,
               progress: bool = True) -> torch.Tensor:
    """Diffusion posterior sampling (Chung et al. 2023): :func:`sample_guided` with guidance on x_t."""
    return sample_guided(model, x_T, schedule, steps, operator=operator, y=y, scale=scale, on="xt", eta=eta,
                         spacing=spacing, clip=clip, generator=generator, callback=callback, progress=progress)


def sample_ddnm(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator: Operator,
                y: torch.Tensor, eta: float = 0.85, spacing="linspace", clip: tuple[float, float] | None = None,
                generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    r"""Denoising diffusion null-space model (Wang et al. 2023): project :math:`\hat x_0` onto :math:`A x = y` every step.

    :math:`\hat x_0 \leftarrow A^+ y + (I - A^+ A)\,\hat x_0` keeps what the
    prior says about the null space of A and takes the range from y; the
    step then continues from the projected :math:`\hat x_0` (eps recomputed
    from it). ``eta=0.85`` is the paper's default. Needs a linear operator
    with ``pinv``. The final sample is projected once more, so
    :math:`A\,x = A A^+ y` holds to machine precision (``clip`` permitting).
    """
    check_inputs(model, x_T, schedule)
    check_measurement(operator, y, x_T, linear_for="sample_ddnm")
    x = ddim_loop(ddnm_predict(model, operator, y), x_T, schedule, steps, eta=eta, spacing=spacing, clip=clip,
                  generator=generator, callback=callback, progress=progress, desc="DDNM")
    with torch.no_grad():
        return operator.project(x, y)
