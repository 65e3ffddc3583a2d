"""Posterior sampling: the exact mixture posterior against Monte Carlo, DDNM's consistency, bad inputs."""
import pytest
import torch

from ddlearn import operators as ops
from ddlearn import oracles, schedules
from ddlearn.restoration import (classical, exact_posterior, mixture_mean_cov, posterior_bias, sample_ddnm,
                                 sample_dps, sample_guided)


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


def tiny_image_prior(side=4):
    """A 3-component Gaussian mixture over side x side images: an exact 'trained' diffusion prior."""
    g = gen(2)
    D = side * side
    means = torch.rand(3, D, generator=g, dtype=torch.float64) * 2 - 1
    return oracles.GaussianMixture(means, torch.full((3,), 0.05))


@pytest.mark.parametrize("op", [ops.Mask.box(4, 1, 1, 2, 2), ops.Downsample(2), ops.Blur(0.6, size=3)])
def test_ddnm_is_consistent_with_the_measurement(op):
    prior = tiny_image_prior()
    sch = schedules.cosine(200)
    x_true = prior.sample(3, generator=gen(3)).double().reshape(3, 1, 4, 4)
    y = op(x_true)
    x_T = torch.randn(3, 1, 4, 4, generator=gen(4), dtype=torch.float64)
    x = sample_ddnm(prior.eps_model(sch), x_T, sch, 20, operator=op, y=y, generator=gen(5), progress=False)
    assert (op(x) - y).abs().max() < 1e-6


def test_ddnm_on_a_mask_keeps_the_observed_pixels_and_fills_the_rest_from_the_prior():
    prior = tiny_image_prior()
    sch = schedules.cosine(200)
    op = ops.Mask.box(4, 0, 0, 2, 4)  # hide the top half
    x_true = prior.sample(4, generator=gen(6)).double().reshape(4, 1, 4, 4)
    x_T = torch.randn(4, 1, 4, 4, generator=gen(7), dtype=torch.float64)
    x = sample_ddnm(prior.eps_model(sch), x_T, sch, 50, operator=op, y=op(x_true), generator=gen(8), progress=False)
    assert torch.allclose(x[..., 2:, :], x_true[..., 2:, :])
    # the hidden half comes from the right component: components are far apart, the bottom half tells which
    assert (x - x_true).abs().max() < 1.0


def test_guidance_pulls_samples_towards_the_measurement():
    prior = oracles.named_mixture("ring8")
    sch = schedules.cosine(100)
    op = ops.Matrix([[1.0, 0.0]], noise=0.1)
    y = torch.full((150, 1), 0.7, dtype=torch.float64)
    x_T = torch.randn(150, 2, generator=gen(9), dtype=torch.float64)
    model = prior.eps_model(sch)
    free = sample_dps(model, x_T, sch, 25, operator=op, y=y, scale=0.0, generator=gen(10), progress=False)
    for on in ("xt", "x0"):
        x = sample_guided(model, x_T, sch, 25, operator=op, y=y, scale=0.5, on=on, generator=gen(10), progress=False)
        assert (op(x) - y).abs().mean() < 0.5 * (op(free) - y).abs().mean()
    post = exact_posterior(prior, op, y[0])
    x = sample_ddnm(model, x_T, sch, 25, operator=op, y=y, generator=gen(11), progress=False)
    # DDNM lands on the line x = 0.7 and in the two likely components (up to its mode-weight bias)
    assert posterior_bias(x, post)["weight_tv"] < 0.3


def test_classical_baselines_run_and_fit_the_measurement():
    x = torch.rand(2, 1, 8, 8, generator=gen(12), dtype=torch.float64) * 2 - 1
    for op in (ops.Mask.box(8, 2, 2, 3, 3), ops.Downsample(2), ops.Blur(1.0)):
        out = classical(op, op(x))
        assert out.shape == x.shape
    m = ops.Mask.box(8, 2, 2, 3, 3)
    assert torch.allclose(m(classical(m, m(x))), m(x))


def test_bad_inputs():
    prior = tiny_image_prior()
    sch = schedules.cosine(100)
    model = prior.eps_model(sch)
    x_T = torch.randn(2, 1, 4, 4, generator=gen(13), dtype=torch.float64)
    op = ops.Downsample(2)
    with pytest.raises(ValueError, match=r"y must have the shape of operator\(x\) \(2, 1, 2, 2\)"):
        sample_ddnm(model, x_T, sch, 5, operator=op, y=torch.zeros(2, 1, 4, 4), progress=False)
    with pytest.raises(ValueError, match="match the mask"):
        sample_dps(model, x_T, sch, 5, operator=ops.Mask.box(8, 0, 0, 2, 2), y=torch.zeros(2, 1, 8, 8),
                   progress=False)
    with pytest.raises(ValueError, match="scale"):
        sample_dps(model, x_T, sch, 5, operator=op, y=op(x_T), scale=-1.0, progress=False)
    with pytest.raises(ValueError, match="unknown on"):
        sample_guided(model, x_T, sch, 5, operator=op, y=op(x_T), on="x1", progress=False)
    with pytest.raises(ValueError, match="noise"):
        ops.Mask.box(4, 0, 0, 2, 2, noise=-0.01)
    with pytest.raises(TypeError, match="Operator"):
        sample_ddnm(model, x_T, sch, 5, operator=lambda x: x, y=x_T, progress=False)
    with pytest.raises(ValueError, match="steps"):
        sample_ddnm(model, x_T, sch, 500, operator=op, y=op(x_T), progress=False)
    with pytest.raises(ValueError, match="one measurement of 1 values"):
        exact_posterior(oracles.named_mixture("two"), ops.Matrix([[1.0, 0.0]], noise=0.1), torch.zeros(3))
    with pytest.raises(ValueError, match="2-vectors"):
        exact_posterior(prior, ops.Matrix([[1.0, 0.0]], noise=0.1), torch.zeros(1))


def test_guidance_works_through_a_nonlinear_parametrised_operator():
    class Gain(ops.Operator):
        """y = tanh(g x) with a learnable gain: non-linear, no adjoint."""

        linear = False
        x_ndim = 2

        def __init__(self):
            super().__init__(noise=0.05)
            self.g = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))

        def forward(self, x):
            return torch.tanh(self.g * x[:, :1])

        def input_shape(self, y_shape):
            return (y_shape[0], 2)

    prior = oracles.named_mixture("ring8")
    sch = schedules.cosine(100)
    op = Gain()
    y = torch.full((100, 1), 0.6, dtype=torch.float64)
    x_T = torch.randn(100, 2, generator=gen(14), dtype=torch.float64)
    free = sample_dps(prior.eps_model(sch), x_T, sch, 20, operator=op, y=y, scale=0.0, generator=gen(15), progress=False)
    for on in ("xt", "x0"):
        x = sample_guided(prior.eps_model(sch), x_T, sch, 20, operator=op, y=y, scale=0.5, on=on, generator=gen(15),
                          progress=False)
        assert (op(x) - y).abs().mean() < 0.5 * (op(free) - y).abs().mean()
    with pytest.raises(TypeError, match="non-linear"):
        sample_ddnm(prior.eps_model(sch), x_T, sch, 5, operator=op, y=y, progress=False)
