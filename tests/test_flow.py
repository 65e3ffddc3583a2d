"""Flow matching: the loss, the velocity ODE sampler, and DDIM as Euler on the straight path."""
import math

import pytest
import torch

from ddlearn import flow, oracles, param, schedules
from ddlearn.losses import LOSSES, flow_matching_loss
from ddlearn.samplers import flow_grid, sample_ddim, sample_flow, time_grid
from ddlearn.samplers.spacing import alpha_bars


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("steps", [1, 4, 13])
def test_ddim_is_euler_on_the_straight_path_to_float_precision(steps):
    """Chapter 10's claim: on the same noise levels, DDIM (eta 0) and Euler on dx/du = v are one method.

    DDIM's levels sigma_bar = sqrt((1 - ab) / ab) are u = sigma_bar / (1 + sigma_bar) on the straight path,
    and its state x_vp is x_u sqrt(ab) / (1 - u) there."""
    mix = oracles.named_mixture("grid9")
    sch, path = schedules.linear(1000), flow.FlowPath()
    ts = time_grid(sch, steps, "quadratic")
    ab = torch.tensor(alpha_bars(sch, ts), dtype=torch.float64)
    sig = ((1 - ab) / ab).sqrt()
    us = sig / (1 + sig)
    x_T = torch.randn(200, 2, generator=gen(1), dtype=torch.float64)
    ddim = sample_ddim(mix.eps_model(sch), x_T, sch, steps, spacing="quadratic", progress=False)
    x_start = x_T * (1 - us[0]) / ab[0].sqrt()
    euler = sample_flow(mix.velocity_model(path), x_start, path, steps, grid=us, progress=False)
    assert torch.allclose(euler, ddim, atol=1e-9, rtol=0)


def test_euler_and_heun_converge_to_the_exact_flow_at_their_orders():
    """On one Gaussian the flow's map is known: x_0 = mu + sqrt(c) x_1. Euler's error halves with the
    step, Heun's quarters."""
    mu, c = torch.tensor([0.5, -1.0], dtype=torch.float64), 0.09
    path = flow.FlowPath()
    v = oracles.gaussian(mu, c).velocity_model(path)
    x1 = torch.randn(50, 2, generator=gen(2), dtype=torch.float64)
    exact = mu + math.sqrt(c) * x1

    def err(solver, n):
        return (sample_flow(v, x1, path, n, solver=solver, progress=False) - exact).abs().max().item()

    e = {s: [err(s, n) for n in (8, 16, 32)] for s in ("euler", "heun")}
    for a, b in zip(e["euler"], e["euler"][1:]):
        assert 1.7 < a / b < 2.3
    for a, b in zip(e["heun"], e["heun"][1:]):
        assert 3.0 < a / b < 5.0
    assert e["heun"][-1] < e["euler"][-1] / 10


def test_the_loss_is_smallest_at_the_exact_marginal_velocity():
    mix = oracles.named_mixture("two")
    path = flow.FlowPath()
    x0 = mix.sample(20000, generator=gen(3)).double()
    exact = mix.velocity_model(path)
    at_exact = flow_matching_loss(exact, x0, path, generator=gen(4)).item()

    def shifted(x, t):
        return exact(x, t) + 0.1

    assert at_exact < flow_matching_loss(shifted, x0, path, generator=gen(4)).item() - 0.005
    # the floor is the conditional velocity's variance, not zero: E||eps - x0 - v(x_u)||^2 > 0
    assert at_exact > 0.1
    assert LOSSES["flow"] is flow_matching_loss
    for time in ("uniform", "logit_normal"):
        assert math.isfinite(flow_matching_loss(exact, x0[:64], path, generator=gen(5), time=time).item())


def test_flow_sampler_contract_grid_callback_and_bad_inputs():
    path = flow.FlowPath(T=100)
    v = oracles.named_mixture("two").velocity_model(path)
    assert flow_grid(4).tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert sample_flow.evaluations(5, solver="heun") == 9 and sample_flow.evaluations(5) == 5
    seen = []
    x_T = torch.randn(8, 2, generator=gen(6), dtype=torch.float64)
    keep = x_T.clone()
    sample_flow(v, x_T, path, 4, callback=seen.append, progress=False)
    assert torch.equal(x_T, keep)
    assert [s.t for s in seen] == [99.0, 74.25, 49.5, 24.75] and seen[-1].x0 is not None
    # the x0 a step points to is where its velocity would carry x in one step to u = 0
    assert torch.allclose(seen[-1].x0, seen[-1].x, atol=1e-12)
    with pytest.raises(TypeError, match="path must be a flow path"):
        sample_flow(v, x_T, schedules.linear(100), 4, progress=False)
    with pytest.raises(ValueError, match="solver"):
        sample_flow(v, x_T, path, 4, solver="rk4", progress=False)
    with pytest.raises(ValueError, match="grid must hold steps"):
        sample_flow(v, x_T, path, 4, grid=torch.linspace(1, 0, 4), progress=False)
    with pytest.raises(ValueError, match="grid must decrease"):
        sample_flow(v, x_T, path, 2, grid=torch.tensor([0.0, 0.5, 1.0]), progress=False)
    with pytest.raises(ValueError, match="T=100 timesteps but the path has T=1000"):
        sample_flow(v, x_T, flow.FlowPath(), 4, progress=False)
    with pytest.raises(TypeError, match="flow path"):
        flow_matching_loss(v, x_T, schedules.linear(100))
    with pytest.raises(ValueError, match="time"):
        flow_matching_loss(v, x_T, path, time="beta")


def test_a_trained_flow_model_through_adapt_samples_like_its_own_ode():
    """A small MLP trained 150 steps: its Euler samples and DDIM through adapt agree (one method)."""
    from ddlearn.nets import MLP

    torch.manual_seed(0)
    net = MLP(dim=2, hidden=32, depth=2, emb_dim=16, T=1000)
    path = flow.FlowPath()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    data = oracles.named_mixture("two").sample(2000, generator=gen(7))
    g = gen(8)
    for _ in range(150):
        loss = flow_matching_loss(net, data[torch.randint(0, 2000, (256,), generator=g)], path, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    sch = schedules.linear(1000)
    steps = 10
    ts = time_grid(sch, steps, "quadratic")
    ab = torch.tensor(alpha_bars(sch, ts), dtype=torch.float64)
    sig = ((1 - ab) / ab).sqrt()
    us = sig / (1 + sig)
    x_T = torch.randn(64, 2, generator=gen(9))
    start = (x_T * (1 - us[0]) / ab[0].sqrt()).float()
    with torch.no_grad():
        ddim = sample_ddim(param.adapt(net, path, prediction="velocity", to=sch), x_T, sch, steps,
                           spacing="quadratic", progress=False)
        euler = sample_flow(net, start, path, steps, grid=us, progress=False)
    assert torch.allclose(euler, ddim, atol=1e-4, rtol=0)   # float32 through two routes
    assert (ddim - x_T).abs().mean() > 0.1                  # and it went somewhere


def test_the_flow_recipes_train_and_evaluate_in_fast_mode(tmp_path):
    from ddlearn import pretrained, recipes
    from ddlearn.train import run_recipe

    assert recipes.get("flow_mixture").net_kwargs == recipes.get("mixture").net_kwargs
    for kind in ("flow", "ddpm"):   # the panel's twins differ only in frame and loss
        r = recipes.get(f"{kind}_panel_ring8")
        assert (r.steps, r.batch_size, r.lr, r.seed) == (10000, 512, 2e-3, 0)
    run_recipe("flow_mixture", fast=True, out_dir=tmp_path, progress=False)
    model, path = pretrained.load("flow_mixture", directory=tmp_path)
    assert isinstance(path, flow.FlowPath)
    meta = pretrained.info("flow_mixture", tmp_path)
    assert meta["metrics"]["sw_flow_samples_vs_heldout"] > 0 and meta["metrics"]["heldout_loss"] > 0
