r"""Exact answers for Gaussian-mixture priors: the posterior of a linear Gaussian measurement, and the bias of samples.

For a Gaussian-mixture prior and :math:`y = A x + \sigma_y n` the posterior is
again a Gaussian mixture, so each posterior sampler's bias can be measured
exactly (Chapter 06).
"""
from __future__ import annotations

import math

import torch

from .. import _checks
from ..operators import Matrix
from ..oracles import GaussianMixture


def exact_posterior(prior: GaussianMixture, operator: Matrix, y: torch.Tensor) -> GaussianMixture:
    r"""The exact posterior p(x | y) of a Gaussian-mixture prior under y = A x + noise * n.

    Each component is conditioned like a Kalman update,
    :math:`C_k = A\Sigma_kA^\top + \sigma_y^2 I`, :math:`K_k = \Sigma_kA^\top C_k^{-1}`,
    :math:`\mu_k' = \mu_k + K_k(y - A\mu_k)`, :math:`\Sigma_k' = \Sigma_k - K_kA\Sigma_k`,
    and re-weighted by how well it explains y:
    :math:`w_k' \propto w_k\,\mathcal N(y;\,A\mu_k,\,C_k)`.
    ``y`` is one measurement, shape (M,) or (1, M). With noise 0 the posterior
    covariance is singular along A's rows; a 1e-10 jitter keeps it a valid Gaussian.
    """
    if not isinstance(prior, GaussianMixture):
        raise TypeError(f"prior must be a GaussianMixture, got {type(prior).__name__}")
    if not isinstance(operator, Matrix):
        raise TypeError(f"operator must be a ddlearn.operators.Matrix (a linear map on vectors), got "
                        f"{type(operator).__name__}")
    A = operator.A
    M, D = A.shape
    if D != prior.D:
        raise ValueError(f"operator acts on {D}-vectors but the prior lives in {prior.D} dimensions")
    _checks.tensor("y", y, ndim=(1, 2))
    y = y.reshape(-1).to(torch.float64)
    if y.numel() != M:
        raise ValueError(f"y must hold one measurement of {M} values (shape ({M},) or (1, {M})), got {y.numel()}")
    S, mu = prior.covs, prior.means  # (K, D, D), (K, D)
    C = A @ S @ A.T + operator.noise ** 2 * torch.eye(M, dtype=torch.float64)  # (K, M, M)
    gain = torch.linalg.solve(C, A @ S).transpose(-1, -2)  # S A^T C^{-1}  (K, D, M), C symmetric
    resid = y - mu @ A.T  # (K, M)
    mean = mu + (gain @ resid.unsqueeze(-1)).squeeze(-1)
    cov = S - gain @ A @ S
    cov = 0.5 * (cov + cov.transpose(-1, -2)) + 1e-10 * torch.eye(D, dtype=torch.float64)
    L = torch.linalg.cholesky(C)
    sol = torch.cholesky_solve(resid.unsqueeze(-1), L).squeeze(-1)
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    loglik = -0.5 * ((resid * sol).sum(-1) + logdet + M * math.log(2 * math.pi))
    weights = torch.softmax(torch.log(prior.weights) + loglik, dim=0)
    return GaussianMixture(mean, cov, weights)


def mixture_mean_cov(mix: GaussianMixture) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of a Gaussian mixture."""
    w = mix.weights
    mean = (w[:, None] * mix.means).sum(0)
    d = mix.means - mean
    cov = (w[:, None, None] * (mix.covs + d[:, :, None] * d[:, None, :])).sum(0)
    return mean, cov


def posterior_bias(samples: torch.Tensor, posterior: GaussianMixture) -> dict[str, float]:
    """How far ``samples`` (N, D) land from the exact ``posterior``.

    * ``mean_error``: distance between the sample mean and the posterior mean;
    * ``cov_error``: Frobenius norm of the covariance difference, relative to the posterior's;
    * ``weight_tv``: total variation between the fraction of samples per component
      (each sample assigned to its most responsible component) and the posterior weights;
    * ``avg_log_prob``: mean log posterior density of the samples (compare with the
      posterior's own, -entropy, from its samples).
    """
    _checks.tensor("samples", samples, ndim=2)
    x = samples.to(torch.float64)
    mean, cov = mixture_mean_cov(posterior)
    s_cov = torch.cov(x.T).reshape(posterior.D, posterior.D)
    k = posterior.responsibilities(x).argmax(1)
    frac = torch.bincount(k, minlength=posterior.K).to(torch.float64) / x.shape[0]
    return {
        "mean_error": float((x.mean(0) - mean).norm()),
        "cov_error": float((s_cov - cov).norm() / cov.norm()),
        "weight_tv": float(0.5 * (frac - posterior.weights).abs().sum()),
        "avg_log_prob": float(posterior.log_prob(x).mean()),
    }
