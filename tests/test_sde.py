"""VP / sub-VP / VE SDEs and the reverse-SDE, predictor-corrector and PF-ODE samplers.

Checked against Monte-Carlo simulation of the forward SDE, the exact mixture
oracle (weights and means of the samples), and the closed-form schedules.
"""
import math

import pytest
import torch

from ddlearn import oracles, schedules
from ddlearn import sde as S
from ddlearn.samplers import CountedModel, sample_euler_maruyama, sample_pc, sample_pf_ode

SDES = [S.VPSDE(), S.SubVPSDE(), S.VESDE(sigma_max=10.0)]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_marginals_match_monte_carlo_of_forward_sde(sde):
    # Start from the exact marginal at u0 and run Euler-Maruyama with small steps to u1:
    # the empirical mean / std must match m(u1) x0, s(u1).
    g = torch.Generator().manual_seed(0)
    n, u0, u1, k = 10000, 0.1, 0.6, 200
    x0 = torch.tensor([[0.7, -1.3]], dtype=torch.float64).expand(n, 2)
    x, _ = sde.marginal_sample(x0, u0, generator=g)
    du = (u1 - u0) / k
    for i in range(k):
        f, G = sde.discretize(x, u0 + i * du, du)
        x = x + f + G * torch.randn(x.shape, generator=g, dtype=x.dtype)
    mean, std = sde.marginal_mean_std(x0[:1], u1)
    se = std.item() / math.sqrt(n)
    assert torch.allclose(x.mean(0), mean[0], atol=5 * se + 2e-3 * abs(mean).max().item())
    assert torch.allclose(x.std(0), std.reshape(1).expand(2), rtol=0.03)


def test_ddpm_discretises_vp_and_ncsn_discretises_ve():
    lin = schedules.linear()
    vp = S.VPSDE.from_schedule(lin)
    assert vp.beta_min == pytest.approx(0.0999) and vp.beta_max == pytest.approx(19.98)
    assert S.compare_with_schedule(lin, vp)["max_abs_diff"] < 5e-3
    ve = S.VESDE(0.01, 50.0)
    u = torch.linspace(1, 0, 10, dtype=torch.float64)
    assert torch.allclose(ve.sigma(u), schedules.ve_sigmas(10, 0.01, 50.0), rtol=1e-10)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_log_snr_inverts(sde):
    u = torch.tensor([1e-3, 0.2, 0.5, 0.9, 1.0], dtype=torch.float64)
    assert torch.allclose(sde.u_from_log_snr(sde.log_snr(u)), u, atol=1e-9)


@pytest.mark.parametrize("frame", ["linear", "cosine"])
@pytest.mark.parametrize("sde", [S.VPSDE(), S.SubVPSDE(), S.VESDE()], ids=lambda s: s.name)
def test_discrete_eps_model_plugs_into_any_sde(sde, frame):
    # The DDPM oracle (frame = a discrete schedule) through log-SNR matching = the SDE's exact score.
    mix, lin = oracles.named_mixture("ring8"), schedules.get(frame)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    via_schedule = S.score_fn(mix.eps_model(lin), lin, sde)
    exact = S.exact_score(mix, sde)
    for u in (0.05, 0.3, 0.8):
        assert torch.allclose(via_schedule(x * sde.std(torch.tensor([u])).item(), u),
                              exact(x * sde.std(torch.tensor([u])).item(), u), rtol=1e-6, atol=1e-8)


def _weights_and_means(mix, x):
    right = x[:, 0] > 0
    return right.double().mean().item(), x[right].mean(0), x[~right].mean(0)


@pytest.mark.parametrize("sde", [S.VPSDE(), S.VESDE(sigma_max=10.0)], ids=lambda s: s.name)
@pytest.mark.parametrize("name", ["em", "pc", "ode"])
def test_samplers_with_exact_score_recover_mixture(sde, name):
    mix = oracles.named_mixture("two")  # weights 0.2 / 0.8 at (-1, 0) and (1, 0)
    g = torch.Generator().manual_seed(2)
    x_T = torch.randn(2000, 2, generator=g)
    model = CountedModel(sde.oracle_model(mix))
    if name == "em":
        x = sample_euler_maruyama(model, x_T, sde, 150, generator=g, progress=False)
    elif name == "pc":
        x = sample_pc(model, x_T, sde, 75, generator=g, progress=False, snr=0.1)
    else:
        x = sample_pf_ode(model, x_T, sde, 75, progress=False, solver="heun")
    assert model.nfe == 150
    w, m_right, m_left = _weights_and_means(mix, x)
    assert w == pytest.approx(0.8, abs=0.04)  # 4.5 standard errors + discretisation
    assert torch.allclose(m_right, torch.tensor([1.0, 0.0]), atol=0.03)
    assert torch.allclose(m_left, torch.tensor([-1.0, 0.0]), atol=0.05)
    assert x[x[:, 0] > 0].std(0).max().item() == pytest.approx(0.1, abs=0.02)


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


def test_samplers_are_reproducible_and_use_only_the_generator():
    sde, mix = S.VPSDE(), oracles.named_mixture("ring8")
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    a = sample_pc(sde.oracle_model(mix), x_T, sde, 20, generator=torch.Generator().manual_seed(5), progress=False)
    torch.manual_seed(123)
    b = sample_pc(sde.oracle_model(mix), x_T, sde, 20, generator=torch.Generator().manual_seed(5), progress=False)
    assert torch.equal(a, b)


# ---- bad input ------------------------------------------------------------------------------------

def test_unknown_sde_and_bad_parameters():
    with pytest.raises(ValueError, match="unknown SDE 'vpp'"):
        S.get("vpp")
    with pytest.raises(ValueError, match="sigma_min must be > 0"):
        S.VESDE(sigma_min=-0.1)
    with pytest.raises(ValueError, match="sigma_max must exceed"):
        S.VESDE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="beta_max must be >= beta_min"):
        S.VPSDE(beta_min=2.0, beta_max=1.0)
    with pytest.raises(ValueError, match="needs a linear schedule"):
        S.VPSDE.from_schedule(schedules.cosine())
    mix = oracles.named_mixture("two")
    with pytest.raises(ValueError, match="unknown SDE"):
        sample_euler_maruyama(mix.eps_model(schedules.linear()), torch.randn(4, 2), schedules.linear(), 5,
                              sde="nope", progress=False)


def test_time_outside_range():
    sde = S.VPSDE()
    with pytest.raises(ValueError, match=r"u must lie in \[0, 1\]"):
        sde.marginal_mean_std(torch.zeros(3, 2), 1.5)
    with pytest.raises(ValueError, match=r"u must lie in \[0, 1\]"):
        sde.drift(torch.zeros(3, 2), -0.1)
    lin = schedules.linear()
    # sub-VP at tiny u is far less noisy than any step of the DDPM schedule the model saw
    with pytest.raises(ValueError, match="outside what the model was trained on"):
        S.score_fn(oracles.named_mixture("two").eps_model(lin), lin, S.SubVPSDE())(torch.zeros(3, 2), 1e-4)
    with pytest.raises(ValueError, match="u_min must be below 1"):
        sample_pf_ode(sde.oracle_model(oracles.named_mixture("two")), torch.zeros(3, 2), sde, 5, u_min=1.0)
    with pytest.raises(TypeError, match="time frame must be"):
        sample_pf_ode(sde.oracle_model(oracles.named_mixture("two")), torch.zeros(3, 2), "vp", 5)


def test_non_finite_states_and_outputs():
    sde, mix = S.VPSDE(), oracles.named_mixture("two")
    bad = torch.zeros(3, 2)
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="x_T contains 1 non-finite"):
        sample_euler_maruyama(sde.oracle_model(mix), bad, sde, 5, progress=False)

    def broken(x, t):
        return torch.full_like(x, float("inf"))

    with pytest.raises(ValueError, match=r"step 0 \(u=1\): model returned non-finite"):
        sample_pc(broken, torch.zeros(3, 2), sde, 5, progress=False)
    with pytest.raises(ValueError, match="expected the input's shape"):
        sample_pf_ode(lambda x, t: x[:, :1], torch.zeros(3, 2), sde, 5, progress=False)


def test_sde_recipes_train_and_plug_into_the_samplers():
    from ddlearn import recipes, train
    from ddlearn.recipe import build_schedule

    for name, kind in (("sde_vp_ring8", S.VPSDE), ("sde_ve_ring8", S.VESDE), ("sde_vp_digits8", S.VPSDE)):
        assert isinstance(build_schedule(recipes.get(name)), kind)
    result = train.train("sde_ve_ring8", fast=True, progress=False, stop_after=3)
    assert result.step == 3 and all(math.isfinite(v) for v in result.losses)
    x = sample_pf_ode(result.model, torch.randn(8, 2), result.schedule, 4, progress=False)
    assert x.shape == (8, 2) and torch.isfinite(x).all()
