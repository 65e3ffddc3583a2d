"""Restoration with a diffusion prior, one topic a module.

* :mod:`.posterior`  posterior sampling for y = A(x) + n as hooks on the one DDIM loop
  (:mod:`ddlearn.samplers.ddim`): :func:`sample_dps`, :func:`sample_guided` (guidance on x_t
  or on the predicted x0), :func:`sample_ddnm` (range-null-space projection);
* :mod:`.classical`  prior-free baselines (biharmonic inpainting, bicubic, Wiener);
* :mod:`.exact`      the exact posterior of a Gaussian-mixture prior under a linear Gaussian
  measurement, and the bias of samples against it;
* :mod:`.gdp`        GDP-x0 / GDP-xt (Fei et al. 2023), unknown degradation parameters learnt while
  sampling, the paper's quality losses (Chapter 07);
* :mod:`.patches`    a large image restored as overlapping patches (:class:`PatchModel` keeps
  ``model(x_t, t)``), hierarchical guidance (Chapter 07);
* :mod:`.tasks`      Chapter 07's degradations with their baselines (:func:`make_task`).

A new posterior method is a hook in :mod:`.posterior` (or a module of its own
when it is a topic: GDP, patch-wise restoration of large images, anomaly
detection); a new baseline goes in :mod:`.classical`.
"""
from ..metrics import consistency_psnr
from .classical import classical
from .exact import exact_posterior, mixture_mean_cov, posterior_bias
from .posterior import sample_ddnm, sample_dps, sample_guided
from .gdp import sample_gdp, sample_gdp_x0, sample_gdp_xt  # noqa: E402  (Chapter 07)
from .patches import PatchModel, sample_hierarchical  # noqa: E402
from .tasks import TASKS, make_task  # noqa: E402

__all__ = ["sample_dps", "sample_guided", "sample_ddnm", "classical", "consistency_psnr", "exact_posterior",
           "posterior_bias", "mixture_mean_cov", "sample_gdp", "sample_gdp_x0", "sample_gdp_xt", "PatchModel",
           "sample_hierarchical", "TASKS", "make_task"]
