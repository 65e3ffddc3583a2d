"""The closed forms of ddlearn.sde.GaussianData against what the library computes another way."""
import pytest
import torch

from ddlearn import oracles, sde as sde_lib
from ddlearn.samplers import sample_pf_ode

SDES = [sde_lib.VPSDE(), sde_lib.SubVPSDE(), sde_lib.VESDE(0.01, 10.0)]
MU, SD = 0.8, 0.3


def close(a, b, rel=1e-6):
    """Equal up to ``rel`` of the largest entry (the oracle route goes through a float64 bisection)."""
    return (a - b).abs().max() <= rel * b.abs().max()


def points(n=64, d=1, seed=0):
    return 2 * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_marginal_variance_solves_the_variance_equation(sde):
    ex = sde_lib.GaussianData(sde, MU, SD)
    u = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    mean, var = ex.marginal(u)
    assert torch.allclose(ex.marginal(torch.zeros(1, dtype=torch.float64))[1], torch.tensor([SD ** 2 + sde.std(
        torch.zeros(1, dtype=torch.float64)).item() ** 2], dtype=torch.float64))
    dv = (ex.marginal(u + h)[1] - ex.marginal(u - h)[1]) / (2 * h)
    dm = (ex.marginal(u + h)[0] - ex.marginal(u - h)[0]) / (2 * h)
    assert torch.allclose(dv, 2 * sde.drift_coef(u) * var + sde.g2(u), rtol=1e-5)  # dv/du = 2 a v + g^2
    assert torch.allclose(dm, sde.drift_coef(u) * mean, rtol=1e-5, atol=1e-9)  # dm/du = a m


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
@pytest.mark.parametrize("u", [0.01, 0.3, 0.9])
def test_score_and_drifts_match_the_oracle_route(sde, u):
    ex = sde_lib.GaussianData(sde, MU, SD)
    x = points(d=2)
    oracle = sde_lib.exact_score(oracles.gaussian(torch.full((2,), MU), SD ** 2), sde)  # eps-model + log-SNR matching
    s = oracle(x, u)
    assert close(ex.score(x, u), s)
    assert close(ex.reverse_drift(x, u), sde.reverse_drift(x, u, s))
    assert close(ex.pf_velocity(x, u), sde.pf_ode_drift(x, u, s))
    assert not torch.allclose(ex.reverse_drift(x, u), ex.pf_velocity(x, u))


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_density_solves_fokker_planck_and_continuity(sde):
    """d p/du = -d(f p)/dx + g^2/2 d^2p/dx^2 (forward SDE) = -d(v p)/dx (probability-flow ODE), in 1-D."""
    ex = sde_lib.GaussianData(sde, MU, SD)
    x = torch.linspace(-2, 3, 41, dtype=torch.float64)[:, None]
    u, h, k = 0.4, 1e-5, 1e-4

    def p(xx, uu):
        return ex.log_prob(xx, uu).exp()

    dp_du = (p(x, u + h) - p(x, u - h)) / (2 * h)
    a, g2 = sde.drift_coef(torch.tensor([u], dtype=torch.float64)).item(), sde.g2(torch.tensor([u], dtype=torch.float64)).item()

    def flux_sde(xx):
        return a * xx[:, 0] * p(xx, u)

    d2p = (p(x + k, u) - 2 * p(x, u) + p(x - k, u)) / k ** 2
    fp = -(flux_sde(x + k) - flux_sde(x - k)) / (2 * k) + 0.5 * g2 * d2p
    scale = dp_du.abs().max()
    assert (dp_du - fp).abs().max() < 1e-4 * scale

    def flux_ode(xx):
        return ex.pf_velocity(xx, u)[:, 0] * p(xx, u)

    cont = -(flux_ode(x + k) - flux_ode(x - k)) / (2 * k)
    assert (dp_du - cont).abs().max() < 1e-4 * scale


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_pf_flow_is_the_solution_of_the_ode(sde):
    ex = sde_lib.GaussianData(sde, MU, SD)
    x = points(d=1)
    u, u_to, h = 0.7, 0.2, 1e-6
    # its derivative in u_to is the velocity, and it is the identity at u_to = u
    assert torch.allclose(ex.pf_flow(x, u, u), x)
    d = (ex.pf_flow(x, u, u_to + h) - ex.pf_flow(x, u, u_to - h)) / (2 * h)
    assert torch.allclose(d, ex.pf_velocity(ex.pf_flow(x, u, u_to), u_to), rtol=1e-5, atol=1e-6)
    # and the library's adaptive PF-ODE sampler with the exact eps-model lands on it
    oracle = sde.oracle_model(oracles.gaussian(torch.full((1,), MU), SD ** 2))
    x_T = points(d=1, seed=1)
    got = sample_pf_ode(oracle, x_T, sde, 4, solver="rk45", rtol=1e-9, atol=1e-9, u_min=0.05, progress=False)
    want = ex.pf_flow(x_T * sde.prior_std, 1.0, 0.05)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pf_flow_carries_the_marginal():
    ex = sde_lib.GaussianData(sde_lib.VPSDE(), MU, SD)
    x0 = MU + SD * torch.randn(20000, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    xu = ex.pf_flow(x0, 0.0, 0.5)
    mean, var = ex.marginal(0.5)
    assert abs(xu.mean() - mean.item()) < 0.02 and abs(xu.var() / var.item() - 1) < 0.03


def test_bad_inputs():
    with pytest.raises(TypeError, match="sde"):
        sde_lib.GaussianData("vp", 0.0, 1.0)
    with pytest.raises(ValueError, match="std"):
        sde_lib.GaussianData(sde_lib.VPSDE(), 0.0, 0.0)
    ex = sde_lib.GaussianData(sde_lib.VPSDE(), 0.0, 1.0)
    with pytest.raises(ValueError, match="u"):
        ex.score(torch.zeros(3, 1), 1.5)
    with pytest.raises(TypeError, match="x"):
        ex.score([0.0], 0.5)
