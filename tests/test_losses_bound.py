"""The variational bound term by term (ddlearn/losses.py: vlb_breakdown, the discretised decoder) against
closed forms we derive here for Gaussian data, and against scipy's normal distribution."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from ddlearn import losses, metrics, oracles, schedules


def closed_form_terms(x0, m, v, s, variance):
    """E_q of every term L_0..L_{T-1} (array (len(x0), T)) and L_T, for data N(m, v) in one dimension and
    the exact eps-model, derived by hand (independently of the library):

    x_i | x0 ~ N(a x0, 1 - abar_i) with a = sqrt(abar_i); the exact x0-prediction is E[x0 | x_i] =
    m + k (x_i - a m), k = a v / (abar_i v + 1 - abar_i), so x0 - x0_hat has mean-square
    (1 - k a)^2 (x0 - m)^2 + k^2 (1 - abar_i). The model mean differs from the posterior mean by
    c0 (x0 - x0_hat), c0 = sqrt(abar_{i-1}) beta_i / (1 - abar_i); the KL of two Gaussians with variances
    tilde-beta (posterior) and sigma^2 (model) adds (log(sigma^2/tilde-beta) + tilde-beta/sigma^2 - 1)/2.
    Index 0 is the Gaussian decoder -log N(x0; x0_hat, sigma_0^2).
    """
    b = s.betas.numpy()
    ab = s.alpha_bars.numpy()
    abp = np.concatenate([[1.0], ab[:-1]])
    x0 = np.asarray(x0, dtype=np.float64)[:, None]
    a = np.sqrt(ab)
    k = a * v / (ab * v + 1 - ab)
    err2 = (1 - k * a) ** 2 * (x0 - m) ** 2 + k ** 2 * (1 - ab)
    tilde = b * (1 - abp) / (1 - ab)
    sig2 = b.copy() if variance == "beta" else np.concatenate([[tilde[1]], tilde[1:]])
    c0 = np.sqrt(abp) * b / (1 - ab)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = 0.5 * (np.log(sig2 / tilde) + tilde / sig2 - 1 + c0 ** 2 * err2 / sig2)
    dec = 0.5 * (np.log(2 * np.pi * sig2[0]) + err2[:, 0] / sig2[0])
    terms = np.concatenate([dec[:, None], kl[:, 1:]], 1)
    prior = 0.5 * (ab[-1] * x0[:, 0] ** 2 + (1 - ab[-1]) - 1 - np.log(1 - ab[-1]))
    return terms, prior


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_every_term_of_the_bound_matches_the_closed_form_for_gaussian_data(variance):
    s = schedules.linear(40, 1e-3, 0.3)
    m, v = 0.3, 0.25
    model = oracles.gaussian([m], [v]).eps_model(s)
    values, reps = [-0.5, 0.3, 1.0], 4000
    x0 = torch.tensor(values, dtype=torch.float64).repeat_interleave(reps)[:, None]
    out = losses.vlb_breakdown(model, x0, s, variance=variance, generator=torch.Generator().manual_seed(0))
    want, want_prior = closed_form_terms(values, m, v, s, variance)
    per_t = out["per_t"].reshape(len(values), reps, s.T)
    got, se = per_t.mean(1).numpy(), (per_t.std(1) / math.sqrt(reps)).numpy()
    assert np.all(np.abs(got - want) < 5 * se + 1e-9), np.max(np.abs(got - want) / (se + 1e-12))
    np.testing.assert_allclose(out["prior"].reshape(len(values), reps)[:, 0].numpy(), want_prior, rtol=1e-6)  # prior_kl is float32
    # the parts add up, and the middle sum is L_1 .. L_{T-1}
    torch.testing.assert_close(out["total"], out["prior"] + out["diffusion"] + out["decoder"])
    torch.testing.assert_close(out["diffusion"], out["per_t"][:, 1:].sum(1))
    torch.testing.assert_close(out["decoder"], out["per_t"][:, 0])


def test_the_bound_is_tight_only_with_beta_for_standard_gaussian_data():
    """x0 ~ N(0, 1): the true reverse step has variance beta_t, so the bound equals -log N(x0; 0, 1) with
    sigma_t^2 = beta_t, and exceeds it by the closed-form variance mismatch with tilde-beta."""
    s = schedules.linear(40, 1e-3, 0.3)
    x0 = torch.linspace(-2, 2, 5, dtype=torch.float64)[:, None]
    nll = 0.5 * (x0[:, 0] ** 2 + math.log(2 * math.pi))
    tight, _ = closed_form_terms(x0[:, 0].numpy(), 0.0, 1.0, s, "beta")
    loose, _ = closed_form_terms(x0[:, 0].numpy(), 0.0, 1.0, s, "beta_tilde")
    _, prior = closed_form_terms(x0[:, 0].numpy(), 0.0, 1.0, s, "beta")
    np.testing.assert_allclose(tight.sum(1) + prior, nll.numpy(), rtol=1e-9)  # our closed form is right...
    assert np.all(loose.sum(1) + prior > nll.numpy() + 1e-3)
    model = oracles.gaussian([0.0], [1.0]).eps_model(s)
    reps = 3000
    x = x0.repeat_interleave(reps, 0)
    bound = losses.nll_bound(model, x, s, generator=torch.Generator().manual_seed(1)).double().reshape(5, reps)
    gap = bound.mean(1) - nll
    assert torch.all(gap.abs() < 5 * bound.std(1) / math.sqrt(reps) + 1e-6)  # ...and so is the library


def test_sampled_timesteps_are_unbiased_and_batching_does_not_change_the_draws():
    s = schedules.linear(60, 1e-3, 0.3)
    gm = oracles.gaussian([0.0, 0.5], [0.2, 0.3])
    model = gm.eps_model(s)
    x = gm.sample(3000, generator=torch.Generator().manual_seed(0)).double()
    full = losses.vlb_breakdown(model, x, s, generator=torch.Generator().manual_seed(1))
    again = losses.vlb_breakdown(model, x, s, generator=torch.Generator().manual_seed(1), max_batch=7)
    torch.testing.assert_close(again["total"], full["total"])  # same noise draws in another grouping
    sub = losses.vlb_breakdown(model, x, s, n_t=6, generator=torch.Generator().manual_seed(2))
    assert sub["per_t"] is None
    diff = sub["diffusion"] - full["diffusion"]
    assert abs(diff.mean().item()) < 5 * diff.std().item() / math.sqrt(len(x))
    torch.testing.assert_close(sub["prior"], full["prior"])


def test_discretised_decoder_against_scipy():
    levels = 256
    d = 1 / (levels - 1)
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, levels, (400,), generator=g)
    k[:3], k[3:6] = 0, levels - 1  # the two end bins, which reach to -inf and +inf
    x = (k.double() * 2 * d - 1)
    mean = x + torch.randn(400, generator=g, dtype=torch.float64) * 0.05
    mean[-20:] = x[-20:] + torch.linspace(-0.5, 0.5, 20, dtype=torch.float64)  # far tails: z up to ~50
    log_var = torch.log(torch.full((400,), 0.01 ** 2, dtype=torch.float64))
    got = losses.discretised_gaussian_log_likelihood(x, mean, log_var, levels=levels).numpy()
    xs, mu, sd = x.numpy(), mean.numpy(), 0.01
    lo = np.where(k.numpy() == 0, -np.inf, xs - d)
    hi = np.where(k.numpy() == levels - 1, np.inf, xs + d)
    # the mass of the bin, from whichever tail keeps it accurate
    left = stats.norm.cdf(hi, mu, sd) - stats.norm.cdf(lo, mu, sd)
    right = stats.norm.sf(lo, mu, sd) - stats.norm.sf(hi, mu, sd)
    with np.errstate(divide="ignore"):  # a mass below 1e-308 (a far tail) has no float64 logarithm
        want = np.log(np.where(mu > xs, left, right))
    finite = np.isfinite(want)
    assert finite.sum() > 380
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=1e-9)
    assert np.all(np.isfinite(got)) and np.all(got <= 0)
    # a distribution over the levels: the masses of all bins add up to one
    grid = torch.linspace(-1, 1, levels, dtype=torch.float64)
    for m_, lv in ((0.37, -6.0), (-0.99, -12.0), (1.3, -2.0)):
        p = losses.discretised_gaussian_log_likelihood(grid, torch.full_like(grid, m_),
                                                       torch.full_like(grid, lv), levels=levels).exp()
        assert p.sum().item() == pytest.approx(1.0, abs=1e-9)


def test_discretised_bound_is_above_the_entropy_of_the_quantised_data():
    """Cross-entropy >= entropy: the bound on the discrete NLL, averaged over data, cannot go below the
    entropy of the quantised data, which we know in closed form (the masses of the bins under N(0, 0.3^2))."""
    s = schedules.linear(100, 1e-4, 0.2)
    sd = 0.3
    gm = oracles.gaussian([0.0, 0.0], [sd ** 2, sd ** 2])
    x = gm.sample(3000, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    out = metrics.elbo_bpd(gm.eps_model(s), x, s, generator=torch.Generator().manual_seed(4))
    delta = 2 / 255
    xq = (torch.round((x + 1) / delta) * delta - 1).double().numpy()
    p = stats.norm.cdf(xq + delta / 2, 0, sd) - stats.norm.cdf(xq - delta / 2, 0, sd)
    entropy_bits = float(-np.log2(p).mean())
    assert out["bpd"] >= entropy_bits - 3 * out["bpd_std_err"]
    assert out["bpd"] < entropy_bits + 0.1  # and near it: the exact model loses little
    assert out["bpd"] == pytest.approx(out["prior_bpd"] + out["diffusion_bpd"] + out["decoder_bpd"], rel=1e-9)
    assert out["per_t_bpd"].shape == (s.T,)
    assert out["per_t_bpd"].sum().item() == pytest.approx(out["diffusion_bpd"] + out["decoder_bpd"], rel=1e-6)


def test_bad_decoder():
    s = schedules.linear(10)
    with pytest.raises(ValueError, match="decoder"):
        losses.vlb_breakdown(lambda x, t: torch.zeros_like(x), torch.zeros(2, 2), s, decoder="laplace")
    with pytest.raises(ValueError, match="levels"):
        losses.discretised_gaussian_log_likelihood(torch.zeros(2), torch.zeros(2), torch.zeros(2), levels=1)
