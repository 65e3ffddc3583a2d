"""VP / sub-VP / VE SDEs (ddlearn.sde): marginals against Monte-Carlo simulation of the forward SDE,
the closed-form schedules, plugging discrete eps-models into any SDE, bad input.

The samplers that integrate them are tested in test_reverse_sde.py and test_ode.py.
"""
import math

import pytest
import torch

from ddlearn import oracles, schedules
from ddlearn import sde as S
from ddlearn.samplers import sample_euler_maruyama, sample_pf_ode

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
