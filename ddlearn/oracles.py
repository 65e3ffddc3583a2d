r"""Exact scores and eps of Gaussians and Gaussian mixtures, under any noise level.

If :math:`x_0 \sim \sum_k w_k \mathcal N(\mu_k, \Sigma_k)` then the noised
marginal at alpha-bar :math:`\bar\alpha` is again a mixture,

.. math:: p_{\bar\alpha}(x) = \sum_k w_k\,\mathcal N\big(x;\ \sqrt{\bar\alpha}\,\mu_k,\ \bar\alpha\Sigma_k + (1-\bar\alpha) I\big),

so its score :math:`\nabla_x \log p` and the ideal eps-prediction
:math:`\epsilon^*(x, t) = -\sqrt{1-\bar\alpha_t}\,\nabla_x \log p_t(x)` are known
in closed form. :meth:`GaussianMixture.eps_model` wraps that as a "network"
with the book's model contract ``model(x_t, t) -> eps``, so every sampler can
run on an exact oracle, separating sampling error from learning error.

Works in any dimension D; inputs of shape (B, D) or (B, C, H, W) (flattened
to D = C*H*W). Computation is in float64.
"""
from __future__ import annotations

import math

import torch

from . import _checks
from .config import randn
from .schedules import Schedule


class GaussianMixture:
    """A mixture of K Gaussians in D dimensions with full covariances.

    ``means`` (K, D); ``covs`` (K, D, D), (K, D) diagonal, or (K,) isotropic
    variances; ``weights`` (K,) summing to 1 (default uniform).
    """

    def __init__(self, means, covs, weights=None):
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}")
        K, D = means.shape
        covs = torch.as_tensor(covs, dtype=torch.float64)
        if covs.shape == (K,):
            covs = covs[:, None, None] * torch.eye(D, dtype=torch.float64)
        elif covs.shape == (K, D):
            covs = torch.diag_embed(covs)
        elif covs.shape != (K, D, D):
            raise ValueError(f"covs must have shape (K,), (K, D) or (K, D, D) = ({K}, {D}, {D}), got {tuple(covs.shape)}")
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape ({K},), got {tuple(weights.shape)}")
        if (weights < 0).any() or abs(weights.sum().item() - 1) > 1e-6:
            raise ValueError(f"weights must be non-negative and sum to 1, got sum {weights.sum().item():g}")
        try:
            torch.linalg.cholesky(covs)
        except RuntimeError as err:
            raise ValueError("covs must be symmetric positive definite") from err
        self.means, self.covs, self.weights = means, covs, weights

    @property
    def K(self) -> int:
        return self.means.shape[0]

    @property
    def D(self) -> int:
        return self.means.shape[1]

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.K}, D={self.D})"

    # ---- sampling and density ---------------------------------------------
    def sample(self, n: int, *, generator: torch.Generator | None = None, return_labels: bool = False):
        """n samples as a float32 tensor (n, D) (and component labels with ``return_labels``)."""
        _checks.positive_int("n", n)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = randn((n, self.D), generator=generator, dtype=torch.float64)
        L = torch.linalg.cholesky(self.covs)
        x = self.means[k] + (L[k] @ z.unsqueeze(-1)).squeeze(-1)
        return (x.float(), k) if return_labels else x.float()

    def _flat(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        _checks.tensor(name, x)
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        if flat.shape[1] != self.D:
            raise ValueError(f"{name} must have {self.D} values per item (D of the mixture), got shape {tuple(x.shape)}")
        return flat

    def _component_terms(self, flat: torch.Tensor, alpha_bar: torch.Tensor):
        """Per-component log-densities (B, K) and precision-times-residuals (B, K, D)."""
        ab = alpha_bar.reshape(-1, 1, 1, 1)  # (B,1,1,1)
        eye = torch.eye(self.D, dtype=torch.float64)
        cov = ab * self.covs.unsqueeze(0) + (1 - ab) * eye  # (B,K,D,D)
        mean = ab.reshape(-1, 1, 1).sqrt() * self.means.unsqueeze(0)  # (B,K,D)
        resid = flat.unsqueeze(1) - mean  # (B,K,D)
        L = torch.linalg.cholesky(cov)
        sol = torch.cholesky_solve(resid.unsqueeze(-1), L).squeeze(-1)  # cov^{-1} resid
        logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        maha = (resid * sol).sum(-1)
        logp = -0.5 * (maha + logdet + self.D * math.log(2 * math.pi)) + torch.log(self.weights)
        return logp, sol

    def _alpha_bar(self, alpha_bar, batch: int) -> torch.Tensor:
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1)
        if ab.numel() == 1:
            ab = ab.expand(batch)
        if ab.numel() != batch:
            raise ValueError(f"alpha_bar must be a scalar or have one value per item ({batch}), got {ab.numel()}")
        if (ab <= 0).any() or (ab > 1).any():
            raise ValueError("alpha_bar must lie in (0, 1]")
        return ab

    def log_prob(self, x: torch.Tensor, alpha_bar=1.0) -> torch.Tensor:
        """log p(x) of the mixture noised to ``alpha_bar`` (1 = the clean mixture), shape (B,)."""
        flat = self._flat(x)
        logp, _ = self._component_terms(flat, self._alpha_bar(alpha_bar, flat.shape[0]))
        return torch.logsumexp(logp, dim=1)

    def responsibilities(self, x: torch.Tensor, alpha_bar=1.0) -> torch.Tensor:
        """Posterior component probabilities p(k | x) at noise level alpha_bar, shape (B, K)."""
        flat = self._flat(x)
        logp, _ = self._component_terms(flat, self._alpha_bar(alpha_bar, flat.shape[0]))
        return torch.softmax(logp, dim=1)

    def score(self, x: torch.Tensor, alpha_bar=1.0) -> torch.Tensor:
        """grad_x log p(x) at noise level ``alpha_bar``; same shape and dtype as x."""
        flat = self._flat(x)
        logp, sol = self._component_terms(flat, self._alpha_bar(alpha_bar, flat.shape[0]))
        r = torch.softmax(logp, dim=1)
        return (-(r.unsqueeze(-1) * sol).sum(1)).reshape(x.shape).to(x.dtype)

    def eps(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        """The ideal eps-prediction -sqrt(1 - alpha_bar) * score at alpha_bar < 1."""
        ab = self._alpha_bar(alpha_bar, x.shape[0])
        s = self.score(x, ab).to(torch.float64)
        return (-(1 - ab).sqrt().reshape(-1, *([1] * (x.ndim - 1))) * s).to(x.dtype)

    def eps_model(self, schedule: Schedule) -> "MixtureEps":
        """This mixture's exact eps under ``schedule``, as a model ``model(x_t, t)``."""
        return MixtureEps(self, schedule)

    def denoise(self, x: torch.Tensor, alpha_bar) -> torch.Tensor:
        r"""The posterior mean :math:`E[x_0 \mid x]` of the variance-preserving state x at ``alpha_bar`` in [0, 1]
        (:meth:`score_and_denoise`), exact at both ends (at alpha-bar 0 it is the mixture's mean)."""
        return self.score_and_denoise(x, alpha_bar)[1]

    def score_and_denoise(self, x: torch.Tensor, alpha_bar) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The score :math:`\nabla_x \log p(x)` and the posterior mean :math:`E[x_0 \mid x]` of the
        variance-preserving state x at ``alpha_bar`` in [0, 1] (both ends allowed), from one set of per-component
        terms: :math:`E[x_0 \mid x] = \sum_k p(k \mid x)\,\big(\mu_k + \sqrt{\bar\alpha}\,\Sigma_k
        (\bar\alpha\Sigma_k + (1-\bar\alpha) I)^{-1} (x - \sqrt{\bar\alpha}\mu_k)\big)`. Shapes and dtype of x."""
        flat = self._flat(x)
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1).expand(flat.shape[0])
        if (ab < 0).any() or (ab > 1).any():
            raise ValueError("alpha_bar must lie in [0, 1]")
        logp, sol = self._component_terms(flat, ab)
        r = torch.softmax(logp, dim=1).unsqueeze(-1)                             # (B, K, 1)
        cs = torch.einsum("kde,bke->bkd", self.covs, sol)                        # Sigma_k cov^{-1} resid
        post = self.means.unsqueeze(0) + ab.sqrt().reshape(-1, 1, 1) * cs       # (B, K, D)
        return ((-(r * sol).sum(1)).reshape(x.shape).to(x.dtype),
                (r * post).sum(1).reshape(x.shape).to(x.dtype))

    def velocity_model(self, path) -> "MixtureVelocity":
        """This mixture's exact marginal velocity on a flow path (:class:`ddlearn.flow.FlowPath`), as a model
        ``model(x_u, t) -> v``."""
        return MixtureVelocity(self, path)


class MixtureEps(torch.nn.Module):
    """The exact eps-predictor of a Gaussian mixture: ``model(x_t, t) -> eps`` (the book's model contract)."""

    def __init__(self, mixture: GaussianMixture, schedule: Schedule):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        self.mixture, self.schedule = mixture, schedule

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        _checks.tensor("x_t", x_t)
        tt = _checks.timesteps("t", t, self.schedule.T, batch=x_t.shape[0])
        return self.mixture.eps(x_t, self.schedule.alpha_bar(tt))


class MixtureVelocity(torch.nn.Module):
    r"""The exact marginal velocity of a Gaussian mixture on a flow path: ``model(x_u, t) -> v``.

    Regressing on the conditional velocity :math:`\alpha' x_0 + \sigma'\epsilon` learns its conditional mean
    given :math:`x_u` (Lipman et al. 2023), :math:`v(x, u) = \alpha'\,E[x_0 \mid x] + \sigma'\,E[\epsilon \mid x]`;
    for a mixture both means are exact: :math:`E[x_0 \mid x]` from :meth:`GaussianMixture.denoise` of the
    variance-preserving state :math:`x / \sqrt{\alpha^2+\sigma^2}`, and
    :math:`E[\epsilon \mid x] = -\sigma\,\nabla_x\log p_u(x)`, defined at both ends of the path.
    """

    def __init__(self, mixture: GaussianMixture, path):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        if not callable(getattr(path, "coef_derivs", None)):
            raise TypeError(f"path must be a flow path with coef_derivs (ddlearn.flow.FlowPath), got "
                            f"{type(path).__name__}")
        self.mixture, self.path, self.T = mixture, path, path.T

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _checks.tensor("x", x)
        tt = _checks.timesteps("t", t, self.path.T, batch=x.shape[0])
        a, s = self.path.coefs(tt)
        da, ds = self.path.coef_derivs(tt)
        n = (a ** 2 + s ** 2).sqrt()
        ab = (a / n) ** 2
        shape = (-1,) + (1,) * (x.ndim - 1)
        x_vp = x.to(torch.float64) / n.reshape(shape)
        score_vp, x0 = self.mixture.score_and_denoise(x_vp, ab)
        eps = -(1 - ab).sqrt().reshape(shape) * score_vp            # E[eps | x]: -s grad log p, in VP units
        return (da.reshape(shape) * x0 + ds.reshape(shape) * eps).to(x.dtype)


def gaussian(mean, cov) -> GaussianMixture:
    """A single Gaussian as a one-component mixture (mean (D,), cov (D, D), (D,) or scalar)."""
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(1, -1)
    cov = torch.as_tensor(cov, dtype=torch.float64)
    # a scalar is one isotropic variance: shape (K,) = (1,); (D,) and (D, D) gain the K axis
    return GaussianMixture(mean, cov.reshape(1) if cov.ndim == 0 else cov.unsqueeze(0))


def named_mixture(name: str = "ring8") -> GaussianMixture:
    """Mixtures used across the book.

    * ``"ring8"``: 8 equal, isotropic components (std 0.08) on a circle of radius 1;
    * ``"two"``: two components at (-1, 0) and (1, 0) with weights 0.2 / 0.8
      (the mixture that shows where plain Langevin dynamics gets weights wrong);
    * ``"grid9"``: a 3x3 grid with spacing 0.8, unequal weights.

    Four more span the widths and separations a sampler meets (Chapter 05's
    panel, ``benchmarks/samplers.py``):

    * ``"tight"``: 5 tight, well-separated components (std 0.01 to 0.02, centres
      0.82 to 2.1 apart), weights 0.1 to 0.3;
    * ``"broad"``: 3 broad, overlapping components (std 0.35 to 0.5, centres 0.64
      to 0.82 apart), weights 0.5 / 0.3 / 0.2;
    * ``"multiscale"``: one broad component (std 0.6, weight 0.55) and three
      narrower ones (std 0.02, 0.05, 0.1) around it;
    * ``"cross"``: two thin, elongated components (std 0.6 along, 0.03 across)
      crossing at the origin at +-30 degrees, equal weights.
    """
    _checks.choice("mixture name", name, ("ring8", "two", "grid9", "tight", "broad", "multiscale", "cross"))
    if name == "ring8":
        ang = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return GaussianMixture(torch.stack([ang.cos(), ang.sin()], 1), torch.full((8,), 0.08 ** 2))
    if name == "two":
        return GaussianMixture([[-1.0, 0.0], [1.0, 0.0]], [0.1 ** 2, 0.1 ** 2], [0.2, 0.8])
    if name == "tight":
        std = torch.tensor([0.01, 0.015, 0.02, 0.01, 0.02], dtype=torch.float64)
        return GaussianMixture([[-0.9, -0.6], [0.7, -0.7], [0.0, 0.8], [0.8, 0.6], [-0.8, 0.5]], std ** 2,
                               [0.1, 0.15, 0.2, 0.25, 0.3])
    if name == "broad":
        std = torch.tensor([0.5, 0.35, 0.4], dtype=torch.float64)
        return GaussianMixture([[-0.4, 0.0], [0.4, 0.2], [0.0, -0.5]], std ** 2, [0.5, 0.3, 0.2])
    if name == "multiscale":
        std = torch.tensor([0.6, 0.02, 0.05, 0.1], dtype=torch.float64)
        return GaussianMixture([[0.0, 0.0], [1.0, 1.0], [-1.0, 1.0], [0.8, -0.9]], std ** 2,
                               [0.55, 0.15, 0.15, 0.15])
    if name == "cross":
        covs = []
        for a in (math.pi / 6, -math.pi / 6):
            rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
            covs.append(rot @ torch.diag(torch.tensor([0.6 ** 2, 0.03 ** 2], dtype=torch.float64)) @ rot.T)
        return GaussianMixture(torch.zeros(2, 2, dtype=torch.float64), torch.stack(covs))
    g = torch.tensor([-0.8, 0.0, 0.8], dtype=torch.float64)
    means = torch.cartesian_prod(g, g)
    w = torch.arange(1, 10, dtype=torch.float64)
    return GaussianMixture(means, torch.full((9,), 0.07 ** 2), w / w.sum())
