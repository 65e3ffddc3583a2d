"""Reverse-time SDE samplers (samplers.reverse_sde: Euler-Maruyama, predictor-corrector) and the PF-ODE sampler
with the exact mixture score: the right weights and means, reproducibility, non-finite input and output, and the
Chapter 04 recipes plugging into them."""
import math

import pytest
import torch

from ddlearn import oracles
from ddlearn import sde as S
from ddlearn.samplers import CountedModel, sample_euler_maruyama, sample_pc, sample_pf_ode


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


def test_samplers_are_reproducible_and_use_only_the_generator():
    sde, mix = S.VPSDE(), oracles.named_mixture("ring8")
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    a = sample_pc(sde.oracle_model(mix), x_T, sde, 20, generator=torch.Generator().manual_seed(5), progress=False)
    torch.manual_seed(123)
    b = sample_pc(sde.oracle_model(mix), x_T, sde, 20, generator=torch.Generator().manual_seed(5), progress=False)
    assert torch.equal(a, b)


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
