"""q(x_{t-1} | x_t, x_0), the VLB terms and the eps/x0/v/score conversions against closed forms."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddlearn import forward, losses, oracles, param, schedules

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


@settings(max_examples=40, deadline=None)
@given(ab=st.floats(1e-4, 0.9999), seed=st.integers(0, 1000))
def test_param_conversions_agree_with_their_definitions(ab, seed):
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    xt = a * x0 + s * eps
    v = a * eps - s * x0  # Salimans & Ho 2022, definition
    for src, pred in (("eps", eps), ("x0", x0), ("v", v), ("score", -eps / s)):
        for dst, want in (("eps", eps), ("x0", x0), ("v", v), ("score", -eps / s)):
            torch.testing.assert_close(param.convert(pred, xt, ab, src=src, dst=dst), want, rtol=1e-6, atol=1e-6)


def test_vlb_weighted_eps_error_equals_the_closed_form_kl():
    """T * w_t ||eps - eps_hat||^2 (the eps form, Ho et al. eq. 12) = the Gaussian KL computed from the means."""
    s = schedules.linear(200, 1e-3, 0.05)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    bias = torch.randn(6, 3, generator=g) * 0.3

    def model(x, t):  # a deliberately wrong eps-model: the true noise plus a fixed error
        return noise + bias

    t = torch.tensor([1., 5., 50., 100., 150., 199.], dtype=torch.float64)
    tilde = s.betas * (1 - s.alpha_bars_prev) / (1 - s.alpha_bars)
    for variance in ("beta", "beta_tilde"):
        kl = losses.vlb_terms(model, x0, s, t, noise=noise, variance=variance)
        w = losses.vlb_weights(s, variance)[t.long()]
        # the variance mismatch adds D/2 (log r + 1/r - 1), r = sigma^2 / tilde-beta (zero for beta_tilde)
        r = losses.reverse_variance(s, variance)[t.long()] / tilde[t.long()]
        const = 0.5 * 3 * (torch.log(r) + 1 / r - 1)
        torch.testing.assert_close(kl.double(), w * (bias.double() ** 2).sum(1) + const, rtol=1e-4, atol=1e-5)


def test_nll_bound_is_tight_for_the_exact_model_of_a_standard_gaussian():
    """x0 ~ N(0, I): the exact reverse chain is Gaussian with variance beta_t, so the bound equals -log p(x0)."""
    s = schedules.linear(100, 1e-3, 0.2)
    gm = oracles.gaussian([0.0, 0.0], [1.0, 1.0])
    x = gm.sample(1000, generator=torch.Generator().manual_seed(1))
    bound = losses.nll_bound(gm.eps_model(s), x, s, generator=torch.Generator().manual_seed(0)).double()
    gap = bound + gm.log_prob(x)
    assert abs(gap.mean().item()) < 4 * gap.std().item() / math.sqrt(len(gap)) + 1e-3
    # a stratified subsample of timesteps is unbiased: same mean within its standard error
    sub = losses.nll_bound(gm.eps_model(s), x, s, n_t=10, generator=torch.Generator().manual_seed(2)).double()
    assert abs((sub - bound).mean().item()) < 4 * (sub - bound).std().item() / math.sqrt(len(x))


def test_simple_loss_of_the_exact_model_is_smaller_than_of_a_wrong_one():
    s = schedules.linear(100, 1e-3, 0.2)
    gm = oracles.named_mixture("ring8")
    x = gm.sample(2000, generator=torch.Generator().manual_seed(0))
    exact = losses.simple_loss(gm.eps_model(s), x, s, generator=torch.Generator().manual_seed(1))
    zero = losses.simple_loss(lambda x, t: torch.zeros_like(x), x, s, generator=torch.Generator().manual_seed(1))
    assert exact < 0.5 * zero
    # continuous t draws fractional timesteps and still works with the oracle
    cont = losses.simple_loss(gm.eps_model(s), x, s, generator=torch.Generator().manual_seed(1), continuous=True)
    assert abs(cont.item() - exact.item()) < 0.1


def test_label_dropout_uses_the_null_class():
    y = torch.arange(10)
    out = losses.drop_labels({"y": y}, 1.0, 10, generator=torch.Generator().manual_seed(0))
    assert (out["y"] == 10).all()
    assert losses.drop_labels({"y": y}, 0.0, 10) == {"y": y}


def test_chapter_02_exercise_checkers_accept_right_and_refuse_wrong_answers():
    from ddlearn import exercises as ex

    s = schedules.linear()

    def mu(x_t, eps, t, s):
        return (x_t - s.betas[t] / (1 - s.alpha_bars[t]).sqrt() * eps) / s.alphas[t].sqrt()

    def step(model, x, t, s, z):
        return mu(x, model(x, t), t, s) + (s.betas[t].sqrt() * z if t > 0 else 0)

    w = losses.vlb_weights(s)
    assert ex.evaluate("02.1", (s.betas[1] * (1 - s.alpha_bars[0]) / (1 - s.alpha_bars[1])).item()).ok
    assert not ex.evaluate("02.1", s.betas[1].item()).ok
    assert ex.evaluate("02.2", mu).ok and not ex.evaluate("02.2", lambda x, e, t, s: x).ok
    assert ex.evaluate("02.3", (w[1] / w[999]).item()).ok and not ex.evaluate("02.3", 1.0).ok
    assert ex.evaluate("02.4", step).ok and not ex.evaluate("02.4", lambda m, x, t, s, z: mu(x, m(x, t), t, s)).ok
