"""Langevin and annealed Langevin dynamics (ddlearn/langevin.py); the DSM and SDE losses are in test_losses.py.

Checked against closed forms (Gaussian stationary laws) and the exact
mixture oracle.
"""
import pytest
import torch

from ddlearn import langevin as L
from ddlearn import oracles, schedules


def test_langevin_reaches_a_gaussian():
    # N(mu, s^2 I): exact score -(x - mu)/s^2; the unadjusted chain's stationary variance is
    # s^2 / (1 - step / (2 s^2)) (a closed form for this linear chain).
    g = torch.Generator().manual_seed(0)
    mu, s, step = torch.tensor([1.0, -2.0]), 0.5, 0.01
    x = L.langevin(lambda x: -(x - mu) / s ** 2, torch.zeros(20000, 2), step, 400, generator=g, progress=False)
    var = s ** 2 / (1 - step / (2 * s ** 2))
    assert torch.allclose(x.mean(0), mu, atol=0.02)
    assert torch.allclose(x.var(0), torch.full((2,), var), rtol=0.04)


def test_plain_langevin_gets_mixture_weights_wrong_annealed_gets_them_right():
    mix = oracles.named_mixture("two")  # weights 0.2 (left) / 0.8 (right), far apart
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2000, 2, generator=g) * 6 - 3  # half the starts on each side
    xs = L.langevin(mix.score, x, 1e-3, 300, generator=g, progress=False)
    w_plain = (xs[:, 0] > 0).float().mean().item()
    assert w_plain == pytest.approx((x[:, 0] > 0).float().mean().item(), abs=0.03)  # stuck where it started
    sigmas = schedules.ve_sigmas(20, 0.01, 10.0)
    xa = L.annealed_langevin(L.noise_conditional_score(mix), 10 * torch.randn(2000, 2, generator=g), sigmas, 30,
                             3e-5, generator=g, progress=False)
    assert (xa[:, 0] > 0).float().mean().item() == pytest.approx(0.8, abs=0.04)
    assert xa[xa[:, 0] > 0].std(0).max().item() == pytest.approx(0.1, abs=0.02)


def test_noise_conditional_score_from_eps_model_equals_exact():
    mix, lin = oracles.named_mixture("ring8"), schedules.linear()
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = L.noise_conditional_score(mix)
    via_model = L.noise_conditional_score(mix.eps_model(lin), lin)
    for sigma in (0.05, 0.5, 5.0):
        sig = torch.full((32,), sigma, dtype=torch.float64)
        assert torch.allclose(exact(x * sigma, sig), via_model(x * sigma, sig), rtol=1e-6, atol=1e-9)
    # and in the VE view the score of a single Gaussian N(0, I) at sigma is -x / (1 + sigma^2)
    gauss = L.noise_conditional_score(oracles.gaussian([0.0, 0.0], [1.0, 1.0]))
    assert torch.allclose(gauss(x, torch.full((32,), 2.0)), -x / 5.0)


def test_sample_annealed_langevin_uses_the_sampler_signature():
    mix, lin = oracles.named_mixture("two"), schedules.linear()
    g = torch.Generator().manual_seed(3)
    seen = []
    x = L.sample_annealed_langevin(mix.eps_model(lin), torch.randn(1000, 2, generator=g), lin, 12, generator=g,
                                   n_steps_each=40, step_size=3e-5, progress=False, callback=seen.append)
    assert len(seen) == 12 and seen[0].t == pytest.approx(10.0) and seen[-1].t == pytest.approx(0.01)
    assert (x[:, 0] > 0).float().mean().item() == pytest.approx(0.8, abs=0.06)


def test_bad_input():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        L.langevin(lambda x: x, x, -0.1, 10)
    with pytest.raises(ValueError, match="sigmas must be positive"):
        L.annealed_langevin(lambda x, s: x, x, [1.0, -0.5], 2, 1e-3)
    with pytest.raises(ValueError, match="decreasing"):
        L.annealed_langevin(lambda x, s: x, x, [0.1, 1.0], 2, 1e-3)
    with pytest.raises(ValueError, match="non-finite"):
        L.langevin(lambda x: torch.full_like(x, float("nan")), x, 0.1, 3)
    with pytest.raises(ValueError, match="x contains"):
        L.langevin(lambda x: x, torch.full((2, 2), float("inf")), 0.1, 3)
