"""The exact mixture oracles against scipy's densities and autograd."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from ddlearn import oracles, schedules


def test_log_prob_matches_scipy_at_every_noise_level():
    gm = oracles.named_mixture("grid9")
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for ab in (1.0, 0.6, 0.05):
        want = np.log(sum(
            w * multivariate_normal(np.sqrt(ab) * m, ab * c + (1 - ab) * np.eye(2)).pdf(x.numpy())
            for w, m, c in zip(gm.weights.numpy(), gm.means.numpy(), gm.covs.numpy())))
        np.testing.assert_allclose(gm.log_prob(x, ab).numpy(), want, rtol=1e-10, atol=1e-10)


def test_score_is_the_gradient_of_log_prob():
    gm = oracles.named_mixture("two")
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    (grad,) = torch.autograd.grad(gm.log_prob(x, 0.3).sum(), x)
    torch.testing.assert_close(gm.score(x.detach(), 0.3), grad, rtol=1e-9, atol=1e-12)


def test_eps_model_follows_the_model_contract():
    sched = schedules.linear()
    model = oracles.named_mixture("ring8").eps_model(sched)
    x = torch.randn(4, 2)
    t = torch.tensor([0.0, 10.5, 500.0, 999.0])
    eps = model(x, t)
    ab = sched.alpha_bar(t)
    want = -(1 - ab).sqrt()[:, None] * oracles.named_mixture("ring8").score(x, ab).double()
    torch.testing.assert_close(eps.double(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="t must lie in"):
        model(x, torch.full((4,), 1000.0))


@pytest.mark.parametrize("cov, want", [
    (0.5, torch.diag(torch.tensor([0.5, 0.5], dtype=torch.float64))),
    ([0.5, 2.0], torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64))),
    ([[1.0, 0.3], [0.3, 2.0]], torch.tensor([[1.0, 0.3], [0.3, 2.0]], dtype=torch.float64)),
])
def test_gaussian_accepts_scalar_diagonal_and_full_covariances(cov, want):
    g = oracles.gaussian([0.0, 1.0], cov)
    assert g.K == 1 and g.D == 2
    torch.testing.assert_close(g.covs[0], want)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="weights"):
        oracles.GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [1.0, 1.0], [0.5, 0.6])
    with pytest.raises(ValueError, match="covs"):
        oracles.GaussianMixture([[0.0, 0.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="x must have 2 values"):
        oracles.named_mixture("ring8").score(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="unknown mixture name"):
        oracles.named_mixture("ring7")


def test_panel_mixtures_are_as_documented():
    """The mixtures added for the sampler panel (Chapter 05, benchmarks/samplers.py) have the widths,
    separations and weights their docstring gives."""
    std = lambda m: m.covs.diagonal(dim1=1, dim2=2).sqrt()  # noqa: E731
    tight, broad = oracles.named_mixture("tight"), oracles.named_mixture("broad")
    d = torch.cdist(tight.means, tight.means)
    assert d[d > 0].min() > 0.8 and d[d > 0].min() > 40 * std(tight).max()  # far apart for their width
    assert torch.allclose(tight.weights, torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3], dtype=torch.float64))
    for i in range(3):  # overlapping: no dip in the density between any two centres
        for j in range(i + 1, 3):
            u = torch.linspace(0, 1, 21, dtype=torch.float64)[:, None]
            logp = broad.log_prob(broad.means[i] + u * (broad.means[j] - broad.means[i]))
            assert logp.min() >= min(logp[0], logp[-1]) - 1e-12
    multi = oracles.named_mixture("multiscale")
    assert std(multi)[:, 0].tolist() == pytest.approx([0.6, 0.02, 0.05, 0.1])
    cross = oracles.named_mixture("cross")
    for cov, angle in zip(cross.covs, (math.pi / 6, -math.pi / 6)):
        vals, vecs = torch.linalg.eigh(cov)
        assert vals.tolist() == pytest.approx([0.03 ** 2, 0.6 ** 2])
        assert abs(torch.dot(vecs[:, 1], torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64))) \
            == pytest.approx(1.0)
