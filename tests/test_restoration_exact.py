"""restoration.exact: the exact posterior of a Gaussian-mixture prior against Monte Carlo and the textbook formula."""
import torch
import pytest

from ddlearn import operators as ops
from ddlearn import oracles
from ddlearn.restoration import exact_posterior, mixture_mean_cov


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("A,noise,y", [([[1.0, 0.0]], 0.3, [0.4]), ([[0.6, 0.8]], 0.2, [-0.5]),
                                       ([[1.0, 0.0], [0.3, -1.0]], 0.4, [0.2, 0.5])])
def test_exact_posterior_against_importance_sampling(A, noise, y):
    prior = oracles.named_mixture("grid9")
    op = ops.Matrix(A, noise=noise)
    y = torch.tensor(y, dtype=torch.float64)
    post = exact_posterior(prior, op, y)
    # self-normalised importance sampling with the prior as proposal: weights p(y | x)
    x, k = prior.sample(400_000, generator=gen(1), return_labels=True)
    x = x.double()
    logw = -0.5 * ((y - op(x)) ** 2).sum(1) / noise ** 2
    w = torch.softmax(logw, 0)
    mc_mean = (w[:, None] * x).sum(0)
    d = x - mc_mean
    mc_cov = (w[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0)
    mc_weights = torch.zeros(prior.K, dtype=torch.float64).index_add_(0, k, w)
    mean, cov = mixture_mean_cov(post)
    assert torch.allclose(mean, mc_mean, atol=0.01)
    assert torch.allclose(cov, mc_cov, atol=0.01)
    assert torch.allclose(post.weights, mc_weights, atol=0.01)


def test_exact_posterior_of_a_gaussian_is_the_textbook_formula():
    """One Gaussian, y = x + n: posterior mean = S (S + s^2 I)^-1 y (prior mean 0)."""
    S = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    prior = oracles.gaussian(torch.zeros(2), S)
    op = ops.Matrix(torch.eye(2), noise=0.5)
    y = torch.tensor([1.0, -2.0], dtype=torch.float64)
    post = exact_posterior(prior, op, y)
    K = S @ torch.linalg.inv(S + 0.25 * torch.eye(2, dtype=torch.float64))
    assert torch.allclose(post.means[0], K @ y)
    assert torch.allclose(post.covs[0], S - K @ S, atol=1e-9)
