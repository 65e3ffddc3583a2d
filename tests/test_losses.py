"""Training losses (ddlearn/losses.py): the VLB terms against the closed-form KL, the NLL bound, the simple
loss, label dropout, denoising score matching and the SDE loss against closed forms."""
import math

import pytest
import torch

from ddlearn import losses, oracles, schedules
from ddlearn import sde as S


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


def test_pixel_weight_is_a_weighted_mean_of_the_squared_errors():
    s = schedules.linear(100, 1e-3, 0.2)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    model = lambda x, t: 0.5 * x  # noqa: E731
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    plain = losses.simple_loss(model, x, s, generator=g())
    assert torch.allclose(losses.simple_loss(model, x, s, generator=g(), pixel_weight=torch.full((1, 2), 3.0)), plain)
    # all the weight on one coordinate: that coordinate's mean squared error alone (same t and noise)
    only0 = losses.simple_loss(model, x, s, generator=g(), pixel_weight=torch.tensor([1.0, 0.0]))
    only1 = losses.simple_loss(model, x, s, generator=g(), pixel_weight=torch.tensor([0.0, 1.0]))
    assert torch.allclose((only0 + only1) / 2, plain) and not torch.allclose(only0, only1)
    for bad, match in ((torch.tensor([-1.0, 1.0]), "non-negative"), (torch.zeros(2), "positive sum"),
                       (torch.ones(3), "broadcast")):
        with pytest.raises(ValueError, match=match):
            losses.simple_loss(model, x, s, pixel_weight=bad)
    with pytest.raises(ValueError, match="simple"):
        losses.simple_loss(model, x, s, pixel_weight=torch.ones(2), weighting="vlb")


def test_label_dropout_uses_the_null_class():
    y = torch.arange(10)
    out = losses.drop_labels({"y": y}, 1.0, 10, generator=torch.Generator().manual_seed(0))
    assert (out["y"] == 10).all()
    assert losses.drop_labels({"y": y}, 0.0, 10) == {"y": y}


def test_dsm_loss_optimum_is_the_noised_score():
    # Data N(0, I): the score of the noised data at sigma is -x/(1+sigma^2) and its sigma^2-weighted
    # DSM loss is 1/(1+sigma^2) per dimension (E||(z - sigma x0)||^2/(1+sigma^2)^2).
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(200000, 2, generator=g)
    for sigma in (0.1, 1.0, 3.0):
        best = losses.dsm_loss(lambda x, s: -x / (1 + sigma ** 2), x0, sigma, generator=g).item()
        assert best == pytest.approx(1 / (1 + sigma ** 2), rel=0.02)
        worse = losses.dsm_loss(lambda x, s: -1.3 * x / (1 + sigma ** 2), x0, sigma, generator=g).item()
        assert worse > best


def test_sde_loss_of_exact_model_matches_closed_form():
    # Data N(0, I) under VP: the optimal eps is s(u) x_u, and the remaining error is m(u)^2 per dimension,
    # so the loss is the average of m(u)^2 over u ~ U(u_min, 1).
    sde, g = S.VPSDE(), torch.Generator().manual_seed(5)
    x0 = torch.randn(100000, 2, generator=g)
    model = sde.oracle_model(oracles.gaussian([0.0, 0.0], [1.0, 1.0]))
    got = losses.sde_loss(model, x0, sde, generator=g).item()
    u = torch.linspace(0, 1, 10001, dtype=torch.float64)
    assert got == pytest.approx(sde.mean_coef(u).pow(2).mean().item(), rel=0.03)
    with pytest.raises(TypeError, match="needs a ddlearn.sde.SDE"):
        losses.sde_loss(model, x0, schedules.linear())


def test_bad_input():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="sigma must be positive"):
        losses.dsm_loss(lambda x, s: x, x, -1.0)
