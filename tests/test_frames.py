"""The time-frame protocol (ddlearn.frames), the flow path, and param.adapt: any model in any frame for any sampler."""
import math

import pytest
import torch

from ddlearn import flow, frames, oracles, param, schedules, sde
from ddlearn import operators as ops
from ddlearn import recipes
from ddlearn.recipe import FRAMES, build_schedule, register_frame
from ddlearn.restoration import sample_dps
from ddlearn.samplers import sample_ddim, sample_dpm_solver_pp


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


ALL_FRAMES = [schedules.linear(200), schedules.cosine(100), sde.VPSDE(), sde.SubVPSDE(), sde.VESDE(),
              flow.FlowPath(), flow.FlowPath(T=500, sigma_min=0.01)]


@pytest.mark.parametrize("frame", ALL_FRAMES, ids=repr)
def test_every_frame_keeps_the_protocol_and_inverts_its_log_snr(frame):
    assert frames.is_frame(frame)
    t = torch.linspace(0, frame.T - 1, 37, dtype=torch.float64)
    a, s = frame.coefs(t)
    assert a.dtype == s.dtype == torch.float64 and a.shape == s.shape == (37,)
    lam = frame.log_snr_at(t)
    assert torch.allclose(lam, 2 * (a.log() - s.log()), atol=1e-9, rtol=0, equal_nan=False) or not lam.isfinite().all()
    assert (lam[1:] < lam[:-1]).all()                          # decreasing: t = 0 least noisy
    inner = lam.isfinite()
    assert torch.allclose(frame.t_from_log_snr(lam[inner]), t[inner], atol=1e-6 * frame.T)
    lo, hi = frame.log_snr_range()
    assert lo <= lam.min().item() + 1e-9 and hi >= lam.max().item() - 1e-9
    assert frame.input_scale(t).shape == (37,)


def test_the_flow_path_is_the_straight_line_and_its_target_is_eps_minus_x0():
    path = flow.FlowPath(T=101)
    x0, eps = torch.randn(4, 3, generator=gen(1)), torch.randn(4, 3, generator=gen(2))
    t = torch.tensor([0.0, 25.0, 50.0, 100.0])
    x, v = path.sample(x0, t, eps)
    u = (t / 100).reshape(-1, 1)
    assert torch.allclose(x, (1 - u) * x0 + u * eps) and torch.allclose(v, eps - x0)
    assert path.log_snr_range() == (-math.inf, math.inf)
    assert path.t_from_log_snr(torch.tensor([math.inf, 0.0, -math.inf])).tolist() == [0.0, 50.0, 100.0]
    # the model sees x itself: its scale from the VP state is the norm sqrt(alpha^2 + sigma^2)
    assert torch.allclose(path.input_scale(torch.tensor([50.0])), torch.tensor([math.sqrt(0.5)], dtype=torch.float64))


def test_mixture_velocity_is_the_closed_form_of_one_gaussian_at_every_u_ends_included():
    mu, c = torch.tensor([0.7, -0.3], dtype=torch.float64), 0.2
    path = flow.FlowPath(T=11)
    model = oracles.gaussian(mu, c).velocity_model(path)
    x = torch.randn(5, 2, generator=gen(3), dtype=torch.float64)
    for tt in range(11):
        u = tt / 10
        a, s = 1 - u, u
        var = a * a * c + s * s
        x0 = mu + a * c / var * (x - a * mu)
        eps = s / var * (x - a * mu)
        assert torch.allclose(model(x, torch.full((5,), float(tt))), -x0 + eps, atol=1e-12), u


def test_mixture_velocity_is_the_mean_of_the_conditional_velocity():
    """Flow matching's claim, checked by Monte Carlo: E[eps - x0 | x_u] is the oracle (one x_u bin, 2-D)."""
    mix = oracles.named_mixture("two")
    path = flow.FlowPath(T=11)
    x0 = mix.sample(400_000, generator=gen(4)).double()
    eps = torch.randn(x0.shape, generator=gen(5), dtype=torch.float64)
    t = torch.full((x0.shape[0],), 5.0)
    x, v = path.sample(x0, t, eps)
    near = ((x - torch.tensor([0.3, 0.1], dtype=torch.float64)).norm(dim=1) < 0.05)
    assert near.sum() > 1000
    mc = v[near].mean(0)
    exact = mix.velocity_model(path)(x[near], t[near]).mean(0)
    se = v[near].std(0) / near.sum().sqrt()
    assert ((mc - exact).abs() < 4 * se + 0.01).all(), (mc, exact, se)


@pytest.mark.parametrize("to", [schedules.linear(200), schedules.cosine(100)], ids=repr)
def test_an_adapted_velocity_model_is_the_exact_eps_model_of_any_schedule(to):
    mix = oracles.named_mixture("ring8")
    path = flow.FlowPath()
    adapted = param.adapt(mix.velocity_model(path), path, prediction="velocity", to=to)
    assert adapted.T == to.T
    x = torch.randn(6, 2, generator=gen(6), dtype=torch.float64)
    for t in (0.0, 3.5, to.T / 2, to.T - 1.0):
        tt = torch.full((6,), t, dtype=torch.float64)
        assert torch.allclose(adapted(x, tt), mix.eps_model(to)(x, tt), atol=1e-9, rtol=0), t


@pytest.mark.parametrize("kind", ["x0", "v", "score"])
def test_adapt_turns_x0_v_and_score_models_into_the_eps_model(kind):
    mix = oracles.named_mixture("grid9")
    sch = schedules.linear(100)
    eps_model = mix.eps_model(sch)

    def model(x, t):   # the same oracle, predicting `kind`
        ab = sch.alpha_bar(t)
        e = eps_model(x, t)
        if kind == "score":
            return param.eps_to_score(e, ab)
        return param.convert(e, x, ab, src="eps", dst=kind)

    x = torch.randn(5, 2, generator=gen(7), dtype=torch.float64)
    t = torch.full((5,), 40.0, dtype=torch.float64)
    assert torch.allclose(param.adapt(model, sch, prediction=kind)(x, t), eps_model(x, t), atol=1e-10)
    assert param.adapt(eps_model, sch) is eps_model      # nothing to adapt


def test_ddim_dpm_solver_pp_and_dps_run_unchanged_on_a_velocity_model():
    """The three samplers on the flow oracle give what they give on the eps oracle of the same mixture."""
    mix = oracles.named_mixture("two")
    sch = schedules.linear(200)
    path = flow.FlowPath()
    v_model = param.adapt(mix.velocity_model(path), path, prediction="velocity", to=sch)
    e_model = mix.eps_model(sch)
    x_T = torch.randn(64, 2, generator=gen(8), dtype=torch.float64)
    for run in (lambda m: sample_ddim(m, x_T, sch, 20, progress=False),
                lambda m: sample_ddim(m, x_T, sch, 20, eta=1.0, generator=gen(9), progress=False),
                lambda m: sample_dpm_solver_pp(m, x_T, sch, 10, progress=False)):
        assert torch.allclose(run(v_model), run(e_model), atol=1e-7, rtol=0)
    op = ops.Matrix([[1.0, 0.0]], noise=0.1)
    y = torch.full((64, 1), 0.8, dtype=torch.float64)
    kw = dict(operator=op, y=y, scale=0.5, generator=gen(10), progress=False)
    x_v, x_e = sample_dps(v_model, x_T, sch, 25, **kw), sample_dps(e_model, x_T, sch, 25, **dict(kw, generator=gen(10)))
    assert torch.allclose(x_v, x_e, atol=1e-6, rtol=0)
    assert (x_v[:, 0] - 0.8).abs().mean() < (sample_ddim(e_model, x_T, sch, 25, progress=False)[:, 0] - 0.8).abs().mean()


def test_the_score_sdes_take_a_flow_model_as_their_frame():
    mix = oracles.named_mixture("ring8")
    path = flow.FlowPath()
    eps_in_path = param.adapt(mix.velocity_model(path), path, prediction="velocity")
    vp = sde.VPSDE()
    score = sde.score_fn(eps_in_path, path, vp)
    exact = sde.exact_score(mix, vp)
    x = torch.randn(8, 2, generator=gen(11), dtype=torch.float64)
    for u in (0.01, 0.3, 0.9):
        assert torch.allclose(score(x, u), exact(x, u), atol=1e-8, rtol=1e-8), u


def test_recipes_name_their_frame_from_one_registry():
    assert {"linear", "cosine", "sigmoid", "vp", "subvp", "ve", "flow"} <= set(FRAMES)
    assert isinstance(build_schedule(recipes.get("sde_vp_ring8")), sde.VPSDE)
    from dataclasses import replace
    r = replace(recipes.get("sde_vp_ring8"), schedule="flow", schedule_kwargs={"T": 300})
    assert isinstance(build_schedule(r), flow.FlowPath) and build_schedule(r).T == 300
    with pytest.raises(ValueError, match="unknown schedule 'flw'"):
        build_schedule(replace(r, schedule="flw"))
    with pytest.raises(ValueError, match="registered already"):
        register_frame("flow", flow.FlowPath)
    with pytest.raises(TypeError, match="factory must be callable"):
        register_frame("mine", 3)


def test_bad_inputs_name_the_argument():
    mix = oracles.named_mixture("two")
    path, sch = flow.FlowPath(), schedules.linear(100)
    with pytest.raises(ValueError, match="prediction='velocity' needs a frame with coef_derivs"):
        param.adapt(mix.eps_model(sch), sch, prediction="velocity")
    with pytest.raises(ValueError, match="prediction"):
        param.adapt(mix.eps_model(sch), sch, prediction="noise")
    with pytest.raises(TypeError, match="to must be a time frame"):
        param.adapt(mix.eps_model(sch), sch, prediction="x0", to="linear")
    with pytest.raises(TypeError, match="frame must be a time frame"):
        param.adapt(mix.eps_model(sch), object())
    with pytest.raises(TypeError, match="model must be callable"):
        param.adapt(3, sch)
    with pytest.raises(ValueError, match="T=100 timesteps but the frame has T=1000"):
        param.adapt(mix.eps_model(sch), path, prediction="eps")
    with pytest.raises(ValueError, match="sigma_min must be < 1"):
        flow.FlowPath(sigma_min=1.0)
    with pytest.raises(TypeError, match="flow path"):
        mix.velocity_model(sch)


def test_adapt_leaves_the_callers_tensors_alone():
    mix = oracles.named_mixture("two")
    path, sch = flow.FlowPath(), schedules.linear(100)
    m = param.adapt(mix.velocity_model(path), path, prediction="velocity", to=sch)
    x, t = torch.randn(3, 2, generator=gen(12)), torch.full((3,), 30.0)
    x_copy, t_copy = x.clone(), t.clone()
    m(x, t)
    assert torch.equal(x, x_copy) and torch.equal(t, t_copy)


def test_a_sampler_handed_another_frame_says_how_to_adapt_the_model():
    path = flow.FlowPath(T=100)
    v = oracles.named_mixture("two").velocity_model(path)
    with pytest.raises(TypeError, match=r"schedule must be a ddlearn.schedules.Schedule \(the sampler's grid\).*adapt"):
        sample_ddim(v, torch.zeros(2, 2), path, 5, progress=False)
