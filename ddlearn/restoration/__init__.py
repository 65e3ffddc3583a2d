"""Restoration with a diffusion prior: posterior sampling for y = A(x) + n (Chapter 06), GDP (Chapter 07).

* :func:`sample_dps`, :func:`sample_guided` (guidance on x_t or on the predicted x0),
  :func:`sample_ddnm` (range-null-space projection): posterior samplers with the book's
  sampler signature plus ``operator=`` and ``y=``;
* :func:`classical`: prior-free baselines (biharmonic inpainting, bicubic, Wiener);
* :func:`exact_posterior`, :func:`posterior_bias`: the exact posterior of a
  Gaussian-mixture prior under a linear Gaussian measurement, and the bias of samples.
"""
from .posterior import (classical, consistency_psnr, ddim_step, exact_posterior, mixture_mean_cov, posterior_bias,
                        sample_ddnm, sample_dps, sample_guided, timesteps)

__all__ = ["sample_dps", "sample_guided", "sample_ddnm", "classical", "consistency_psnr", "exact_posterior",
           "posterior_bias", "mixture_mean_cov", "ddim_step", "timesteps"]
