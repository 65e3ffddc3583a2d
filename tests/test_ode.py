"""Exact log-likelihood through the probability-flow ODE, invertibility, bits per dimension.

The reference is the analytic Gaussian log-density (torch.distributions),
which we did not write.
"""
import math

import pytest
import torch

from ddlearn import oracles
from ddlearn import sde as S
from ddlearn.samplers import CountedModel, bits_per_dim, log_likelihood, pf_ode_encode, sample_pf_ode


def _gaussian():
    mean = torch.tensor([0.5, -0.3], dtype=torch.float64)
    cov = torch.tensor([[0.6, 0.2], [0.2, 0.3]], dtype=torch.float64)
    return mean, cov, oracles.GaussianMixture(mean[None], cov[None])


@pytest.mark.parametrize("sde", [S.VPSDE(), S.SubVPSDE(), S.VESDE(sigma_max=20.0)], ids=lambda s: s.name)
def test_pf_ode_log_likelihood_equals_gaussian_log_density(sde):
    mean, cov, gm = _gaussian()
    x = torch.tensor([[0.5, -0.3], [1.2, 0.4], [-0.8, -1.0]], dtype=torch.float64)
    u_min = 1e-3
    out = log_likelihood(sde.oracle_model(gm), x, sde, u_min=u_min, rtol=1e-7, atol=1e-7)
    # x is the state at u_min, whose law is N(m mean, m^2 cov + s^2 I) exactly
    def marginal(u):
        uu = torch.tensor([u], dtype=torch.float64)
        m, s = sde.mean_coef(uu).item(), sde.std(uu).item()
        return torch.distributions.MultivariateNormal(m * mean, m * m * cov + s * s * torch.eye(2))

    ref = marginal(u_min).log_prob(x)
    # The ODE part is exact to the solver's tolerance: with the true law at u = 1 in place of the prior...
    exact_prior = marginal(1.0).log_prob(out["z"].double())
    assert torch.allclose(exact_prior + out["delta"], ref, atol=1e-4), (exact_prior + out["delta"], ref)
    # ...and the prior N(0, prior_std^2 I) costs at most the log-density gap at the latent
    gap = (exact_prior - out["prior_logp"]).abs().max().item()
    assert gap < 0.05
    assert torch.allclose(out["logp"], ref, atol=gap + 1e-4)
    assert out["nfe"] > 10


def test_hutchinson_is_unbiased_for_the_exact_divergence():
    mean, cov, gm = _gaussian()
    sde = S.VPSDE()
    x = torch.tensor([[1.2, 0.4]], dtype=torch.float64).expand(400, 2).contiguous()
    exact = log_likelihood(sde.oracle_model(gm), x[:1], sde, rtol=1e-6, atol=1e-6)["logp"]
    est = log_likelihood(sde.oracle_model(gm), x, sde, divergence="hutchinson", rtol=1e-6, atol=1e-6,
                         generator=torch.Generator().manual_seed(0))["logp"]
    se = est.std().item() / math.sqrt(len(est))
    assert est.std().item() > 1e-3  # it is an estimate...
    assert abs(est.mean().item() - exact.item()) < 4 * se  # ...centred on the exact value


def test_encode_then_decode_returns_the_input():
    mix, sde = oracles.named_mixture("ring8"), S.VPSDE()
    x0 = mix.sample(50, generator=torch.Generator().manual_seed(1)).double()
    z = pf_ode_encode(sde.oracle_model(mix), x0, sde, rtol=1e-7, atol=1e-7)
    assert z.std().item() == pytest.approx(1.0, abs=0.3)  # the latent looks like the prior
    back = sample_pf_ode(sde.oracle_model(mix), z, sde, 5, solver="rk45", rtol=1e-7, atol=1e-7, progress=False)
    assert (back - x0).abs().max().item() < 1e-3


def test_bits_per_dim_of_the_uniform_density():
    # Uniform density on [-1, 1]^D with 17 bins of width 2/17: every level has probability 1/17,
    # which is log2(17) bits per dimension exactly.
    D = 64
    logp = torch.full((5,), -D * math.log(2.0))
    assert torch.allclose(bits_per_dim(logp, D, 2 / 17), torch.full((5,), math.log2(17), dtype=torch.float64))


def test_bad_input():
    mean, cov, gm = _gaussian()
    sde = S.VPSDE()
    with pytest.raises(ValueError, match="unknown divergence"):
        log_likelihood(sde.oracle_model(gm), torch.zeros(2, 2), sde, divergence="trace")
    with pytest.raises(ValueError, match="x_T contains"):
        log_likelihood(sde.oracle_model(gm), torch.full((2, 2), float("nan")), sde)
    with pytest.raises(ValueError, match="bin_width must be > 0"):
        bits_per_dim(torch.zeros(2), 4, 0.0)


def test_rk45_matches_fine_heun_and_reports_evaluations():
    mix, sde = oracles.named_mixture("ring8"), S.VPSDE()
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(3))
    m = CountedModel(sde.oracle_model(mix))
    seen = []
    x_rk = sample_pf_ode(m, x_T, sde, 10, solver="rk45", rtol=1e-6, atol=1e-6, progress=False,
                         callback=seen.append)
    x_heun = sample_pf_ode(sde.oracle_model(mix), x_T, sde, 200, solver="heun", progress=False)
    assert (x_rk - x_heun).abs().max() < 5e-3
    assert 20 < m.nfe < 2000 and len(seen) == 10
