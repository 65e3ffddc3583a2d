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
  ``model(x_t, t)``), a gray prior on every channel (:class:`ChannelModel`), hierarchical guidance
  (Chapter 07);
* :mod:`.tasks`      Chapter 07's degradations with their baselines (:func:`make_task`).
* :mod:`.consistency`  data consistency on the one DDIM loop: Song et al. 2022's projection,
  score-MRI's hard consistency, x0 consistency; :func:`reconstruct` averages draws (Chapter 09);
* :mod:`.reconstruction`  CT/MRI baselines: FBP, SART, SART+TV, zero-filled, TV-CS (Chapter 09);
* :mod:`.anomaly`    AnoDDPM (partial noising with Gaussian or simplex noise), thresholding and
  autoencoder scores, pixel AUROC and best Dice (Chapter 09).

A new posterior method is a hook in :mod:`.posterior` (or a module of its own
when it is a topic: GDP, patch-wise restoration of large images, anomaly
detection); a new baseline goes in :mod:`.classical`.
"""
from ..metrics import consistency_psnr
from .classical import classical
from .exact import exact_posterior, mixture_mean_cov, posterior_bias
from .posterior import sample_ddnm, sample_dps, sample_guided
from .gdp import sample_gdp, sample_gdp_x0, sample_gdp_xt  # noqa: E402  (Chapter 07)
from .patches import ChannelModel, PatchModel, sample_hierarchical  # noqa: E402
from .tasks import TASKS, make_task  # noqa: E402

__all__ = ["sample_dps", "sample_guided", "sample_ddnm", "classical", "consistency_psnr", "exact_posterior",
           "posterior_bias", "mixture_mean_cov", "sample_gdp", "sample_gdp_x0", "sample_gdp_xt",
           "ChannelModel", "PatchModel", "sample_hierarchical", "TASKS", "make_task"]

# Chapter 09: data consistency (Song et al. 2022, score-MRI), CT/MRI baselines, anomaly detection (AnoDDPM)
from .anomaly import anomaly_map, best_dice, pixel_auroc, simplex_noise  # noqa: E402
from .consistency import (data_consistency, reconstruct, sample_consistency, sample_projection,  # noqa: E402
                          sample_score_mri)
from .reconstruction import baseline, fbp, sart, sart_tv, tv_cs, zero_filled  # noqa: E402

__all__ += ["anomaly_map", "best_dice", "pixel_auroc", "simplex_noise", "data_consistency", "reconstruct",
            "sample_consistency", "sample_projection", "sample_score_mri", "baseline", "fbp", "sart", "sart_tv",
            "tv_cs", "zero_filled"]
