"""The forward process: the closed form q(x_t | x_0) against the step-by-step chain, and the posterior
q(x_{t-1} | x_t, x_0) against Bayes' rule and diffusers' DDPM step."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddlearn import forward, param, schedules


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_closed_form_matches_the_chain_in_mean_and_variance(name):
    """Run the chain on N copies of a few x_0 and compare moments with sqrt(abar) x_0 and 1 - abar.

    Tolerance: 5 standard errors. For N draws the sample mean has standard
    error sqrt(var / N), the sample variance var * sqrt(2 / (N - 1)) (Gaussian).
    Each coordinate is checked, so a wrong constant anywhere fails.
    """
    s = schedules.get(name, T=1000)
    n = 5_000
    x0_values = torch.tensor([[-1.0, 0.5], [1.0, 0.0], [0.3, -0.7]], dtype=torch.float64)
    x0 = x0_values.repeat_interleave(n, dim=0)  # (3n, 2)
    keep = [0, 10, 100, 300]
    chain = forward.noise_chain(x0, s, keep=keep, generator=torch.Generator().manual_seed(0))
    assert sorted(chain) == keep
    for t in keep:
        ab = float(s.alpha_bars[t])
        xt = chain[t].reshape(3, n, 2)
        mean, var = xt.mean(1), xt.var(1)
        want_mean, want_var = math.sqrt(ab) * x0_values, 1 - ab
        se_mean, se_var = math.sqrt(want_var / n), want_var * math.sqrt(2 / (n - 1))
        assert torch.all((mean - want_mean).abs() < 5 * se_mean), (t, mean, want_mean)
        assert torch.all((var - want_var).abs() < 5 * se_var), (t, var, want_var)
        # and q_mean_std says the same
        m, sd = forward.q_mean_std(x0_values, t, s)
        assert torch.allclose(m, want_mean) and torch.allclose(sd.squeeze(), torch.full((3,), math.sqrt(want_var),
                                                                                         dtype=torch.float64))


def test_closed_form_samples_have_the_right_moments():
    s = schedules.cosine()
    x0 = torch.full((40_000, 1), 0.8, dtype=torch.float64)
    xt = forward.q_sample(x0, 300, schedule=s, generator=torch.Generator().manual_seed(1))
    ab = float(s.alpha_bars[300])
    n = x0.shape[0]
    assert abs(xt.mean() - math.sqrt(ab) * 0.8) < 5 * math.sqrt((1 - ab) / n)
    assert abs(xt.var() - (1 - ab)) < 5 * (1 - ab) * math.sqrt(2 / (n - 1))


def test_q_sample_and_q_step_are_the_formulas():
    s = schedules.linear(T=100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 1, 3, 3, generator=g)
    eps = torch.randn(4, 1, 3, 3, generator=g)
    t = torch.tensor([0, 5, 50, 99])
    ab = s.alpha_bars[t].float().reshape(-1, 1, 1, 1)
    assert torch.allclose(forward.q_sample(x0, t, eps, s), ab.sqrt() * x0 + (1 - ab).sqrt() * eps, atol=1e-6)
    b = s.betas[t].float().reshape(-1, 1, 1, 1)
    assert torch.allclose(forward.q_step(x0, t, s, eps), (1 - b).sqrt() * x0 + b.sqrt() * eps, atol=1e-6)
    # a scalar t applies to every item; fractional t uses the interpolated alpha_bar
    assert torch.allclose(forward.q_sample(x0, 5, eps, s), forward.q_sample(x0, torch.full((4,), 5), eps, s))
    ab_frac = float(s.alpha_bar(5.5))
    assert torch.allclose(forward.q_sample(x0, 5.5, eps, s),
                          math.sqrt(ab_frac) * x0 + math.sqrt(1 - ab_frac) * eps, atol=1e-6)


def test_randomness_is_explicit_and_reproducible():
    s = schedules.linear()
    x0 = torch.zeros(8, 2)
    a = forward.q_sample(x0, 500, schedule=s, generator=torch.Generator().manual_seed(3))
    b = forward.q_sample(x0, 500, schedule=s, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    c1 = forward.noise_chain(x0, s, keep=[20], generator=torch.Generator().manual_seed(3))
    c2 = forward.noise_chain(x0, s, keep=[20], generator=torch.Generator().manual_seed(3))
    assert torch.equal(c1[20], c2[20])


def test_two_steps_merge_into_one():
    # sqrt(1-b2)(sqrt(1-b1) x + sqrt(b1) e1) + sqrt(b2) e2 has variance 1 - (1-b1)(1-b2): alpha_bar composes
    s = schedules.linear(T=3, beta_start=0.1, beta_end=0.3)
    assert math.isclose(float(s.alpha_bars[1]), (1 - 0.1) * (1 - 0.2), rel_tol=1e-12)


# ---- the posterior q(x_{t-1} | x_t, x_0) ----------------------------------------

SCHEDULES = {"linear": schedules.linear(1000), "cosine": schedules.cosine(1000), "short": schedules.linear(50, 1e-3, 0.3)}


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(SCHEDULES)), frac=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_posterior_is_bayes_rule_product_of_gaussians(name, frac, seed):
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): multiply the two Gaussians by hand."""
    s = SCHEDULES[name]
    t = max(1, int(round(frac * (s.T - 1))))
    g = torch.Generator().manual_seed(seed)
    x0, xt = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    a_t, b_t, ab_prev = s.alphas[t], s.betas[t], s.alpha_bars[t - 1]
    # likelihood of x_{t-1} from x_t: N(x_t; sqrt(a) x_{t-1}, b) -> precision a/b, natural mean sqrt(a) x_t / b
    prec = a_t / b_t + 1 / (1 - ab_prev)
    var = 1 / prec
    mean = var * (a_t.sqrt() * xt / b_t + ab_prev.sqrt() * x0 / (1 - ab_prev))
    m, v, logv = forward.q_posterior(x0, xt, t, s)
    torch.testing.assert_close(m, mean, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(v.expand_as(m), var.expand_as(m), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(logv.expand_as(m), torch.log(var).expand_as(m), rtol=1e-9, atol=1e-9)


def test_posterior_at_t0_returns_x0_and_a_finite_clipped_log_variance():
    s = schedules.linear(100)
    x0, xt = torch.randn(2, 3), torch.randn(2, 3)
    m, v, logv = forward.q_posterior(x0, xt, 0, s)
    torch.testing.assert_close(m, x0)
    assert (v == 0).all() and torch.isfinite(logv).all()
    _, v1, _ = forward.q_posterior(x0, xt, 1, s)
    torch.testing.assert_close(logv, torch.log(v1))


def test_posterior_matches_diffusers_ddpm_step():
    """diffusers' DDPMScheduler.step: mean (eq. 7) and 'fixed_small' variance, same noise draw."""
    diffusers = pytest.importorskip("diffusers")
    from diffusers.utils.torch_utils import randn_tensor

    s = schedules.linear(1000)
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
                                    variance_type="fixed_small")
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 1, 4, 4, generator=g), torch.randn(4, 1, 4, 4, generator=g)
    for t in (1, 10, 500, 999):
        xt = forward.q_sample(x0, t, eps, s)
        out = sched.step(eps, t, xt, generator=torch.Generator().manual_seed(t)).prev_sample
        noise = randn_tensor(eps.shape, generator=torch.Generator().manual_seed(t), dtype=eps.dtype)
        x0_hat = param.eps_to_x0(xt, eps, s.alpha_bars[t])
        m, v, _ = forward.q_posterior(x0_hat, xt, t, s)
        torch.testing.assert_close(m + v.sqrt() * noise, out, rtol=1e-4, atol=1e-4)


def test_posterior_rejects_bad_input():
    s = schedules.linear(10)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="whole timesteps"):
        forward.q_posterior(x, x, 1.5, s)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 9\]"):
        forward.q_posterior(x, x, 10, s)
    with pytest.raises(ValueError, match="x_t must have the same shape"):
        forward.q_posterior(x, torch.zeros(2, 4), 1, s)
    with pytest.raises(TypeError, match="schedule"):
        forward.q_posterior(x, x, 1, "linear")


# ---- bad input -----------------------------------------------------------------

@pytest.fixture
def sch():
    return schedules.linear()


def test_t_out_of_range(sch):
    x0 = torch.zeros(2, 2)
    for t in (-1, 1000, torch.tensor([0, 1000])):
        with pytest.raises(ValueError, match=r"t must lie in \[0, 999\]"):
            forward.q_sample(x0, t, schedule=sch)
    with pytest.raises(ValueError, match="whole timesteps"):
        forward.q_step(x0, 2.5, sch)
    with pytest.raises(ValueError, match="keep"):
        forward.noise_chain(x0, sch, keep=[1000])
    with pytest.raises(ValueError, match="keep"):
        forward.noise_chain(x0, sch, keep=[2.5])


def test_non_finite_x0(sch):
    x0 = torch.zeros(2, 2)
    x0[0, 1] = float("nan")
    with pytest.raises(ValueError, match="x0 contains 1 non-finite"):
        forward.q_sample(x0, 3, schedule=sch)
    x0[0, 1] = float("inf")
    with pytest.raises(ValueError, match="x0"):
        forward.q_mean_std(x0, 3, sch)


def test_mismatched_batch_of_t(sch):
    with pytest.raises(ValueError, match="t has 3 entries but the batch has 4"):
        forward.q_sample(torch.zeros(4, 2), torch.tensor([1, 2, 3]), schedule=sch)


def test_wrong_noise_shape(sch):
    with pytest.raises(ValueError, match=r"noise must have the same shape as x0 \(4, 2\), got \(4, 3\)"):
        forward.q_sample(torch.zeros(4, 2), 1, torch.zeros(4, 3), sch)
    with pytest.raises(ValueError, match="noise"):
        forward.q_step(torch.zeros(4, 2), 1, sch, torch.zeros(2, 2))


def test_wrong_types(sch):
    with pytest.raises(TypeError, match="schedule"):
        forward.q_sample(torch.zeros(2, 2), 1, schedule="linear")
    with pytest.raises(TypeError, match="needs a schedule"):
        forward.q_sample(torch.zeros(2, 2), 1)
    with pytest.raises(TypeError, match="x0"):
        forward.q_sample([[0.0, 0.0]], 1, schedule=sch)
    with pytest.raises(ValueError, match="x0 must have"):
        forward.q_sample(torch.zeros(5), 1, schedule=sch)
