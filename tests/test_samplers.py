"""Fast samplers on the exact mixture oracle: order of convergence, the right distribution, errors."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from ddlearn.oracles import named_mixture
from ddlearn.samplers import (SPACINGS, CountedModel, sample_ddim, sample_dpm_solver, sample_dpm_solver_pp,
                              sample_euler, sample_heun, time_grid)
from ddlearn.samplers.spacing import t_from_sigma
from ddlearn.schedules import cosine, linear

SCHEDULE = linear(1000)
MIX = named_mixture("ring8")
MODEL = MIX.eps_model(SCHEDULE)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def noise(n, seed=0, dtype=torch.float64):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---- spacings -----------------------------------------------------------------
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("steps", [1, 2, 7, 50, 1000])
def test_spacing_decreasing_in_range(spacing, steps):
    t = time_grid(SCHEDULE, steps, spacing)
    assert t.shape == (steps,) and t.dtype == torch.float64
    assert (t >= 0).all() and (t <= 999).all()
    assert (t[1:] < t[:-1]).all()


def test_spacing_definitions():
    s = SCHEDULE
    assert time_grid(s, 4, "leading").tolist() == [750, 500, 250, 0]
    assert time_grid(s, 4, "trailing").tolist() == [999, 749, 499, 249]
    assert time_grid(s, 3, "quadratic").tolist() == [999, 999 / 4, 0]
    assert time_grid(s, 4, "linspace").tolist() == [999, 666, 333, 0]
    lam = s.log_snr_at(time_grid(s, 6, "logsnr"))
    assert torch.allclose(lam.diff(), lam.diff()[0].expand(5), rtol=1e-6)  # uniform in log-SNR
    sig = s.sigma(time_grid(s, 6, "karras"))
    root = sig ** (1 / 7)
    assert torch.allclose(root.diff(), root.diff()[0].expand(5), rtol=1e-6)  # uniform in sigma^(1/rho)
    assert torch.allclose(s.sigma(t_from_sigma(s, torch.tensor([0.5, 3.0]))), torch.tensor([0.5, 3.0],
                                                                                            dtype=torch.float64))


# ---- convergence against an independent ODE solver ------------------------------
def reference(x_T, schedule):
    """The exact PF-ODE solution for ring8, computed without the library.

    In y = x / sqrt(alpha_bar) the ODE is dy/dsigma = (y - D(y; sigma)) / sigma
    = sigma * sum_k r_k(y) (y - mu_k) / (s_k^2 + sigma^2) for an isotropic mixture
    (r_k the responsibilities of p_sigma = sum_k w_k N(mu_k, (s_k^2 + sigma^2) I)).
    scipy's DOP853 solves it in log sigma from sigma(T-1) to sigma(0); then the
    final x0-prediction D(y; sigma(0)), the last step every sampler takes.
    """
    mu = MIX.means.numpy()  # (K, 2)
    var = MIX.covs[:, 0, 0].numpy()  # (K,) isotropic variances
    logw = np.log(MIX.weights.numpy())
    shape = x_T.shape

    def pull(y, sigma):  # sigma^2 * sum_k r_k (y - mu_k) / (s_k^2 + sigma^2) = y - D(y)
        y = y.reshape(-1, 1, 2)
        v = var + sigma ** 2
        logp = logw - ((y - mu) ** 2).sum(-1) / (2 * v) - np.log(2 * np.pi * v)
        r = np.exp(logp - logp.max(1, keepdims=True))
        r /= r.sum(1, keepdims=True)
        return sigma ** 2 * (r[..., None] * (y - mu) / v[:, None]).sum(1)

    sig_max, sig_min = schedule.sigmas[-1].item(), schedule.sigmas[0].item()
    y0 = (x_T.numpy() * math.sqrt(1 + sig_max ** 2)).reshape(-1)
    sol = solve_ivp(lambda ls, y: pull(y, math.exp(ls)).reshape(-1), (math.log(sig_max), math.log(sig_min)), y0,
                    method="DOP853", rtol=1e-12, atol=1e-12)
    y = sol.y[:, -1].reshape(-1, 2)
    return torch.from_numpy(y - pull(y, sig_min)).reshape(shape)


METHODS = {  # name: (sampler, options, expected order, evaluations per step)
    "ddim": (sample_ddim, {}, 1),
    "euler": (sample_euler, {}, 1),
    "heun": (sample_heun, {}, 2),
    "dpm_solver_1": (sample_dpm_solver, {"order": 1}, 1),
    "dpm_solver_2": (sample_dpm_solver, {"order": 2}, 2),
    "dpm_solver_3": (sample_dpm_solver, {"order": 3}, 3),
    "dpm_solver_pp_2m": (sample_dpm_solver_pp, {"final": "denoise"}, 2),  # the reference's ending: the solver's order
}


@pytest.fixture(scope="module")
def ref_problem():
    x_T = noise(16, seed=3)
    return x_T, reference(x_T, SCHEDULE)


@pytest.mark.parametrize("name", list(METHODS))
def test_order_of_convergence(name, ref_problem):
    sampler, opts, order = METHODS[name]
    x_T, ref = ref_problem
    steps = [20, 40, 80]
    errs = [(sampler(MODEL, x_T, SCHEDULE, n, spacing="logsnr", progress=False, **opts) - ref).norm(dim=1).mean().item()
            for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert order - 0.35 < slope < order + 0.6, f"{name}: errors {errs}, observed order {slope:.2f}"


def test_ddim_euler_and_dpm_solver_1_are_one_method():
    """DDIM (eta=0) is Euler in sigma and DPM-Solver-1 (see the ddim module docstring)."""
    x_T = noise(32)
    a = sample_ddim(MODEL, x_T, SCHEDULE, 15, spacing="karras", progress=False)
    b = sample_euler(MODEL, x_T, SCHEDULE, 15, spacing="karras", progress=False)
    c = sample_dpm_solver(MODEL, x_T, SCHEDULE, 15, order=1, spacing="karras", progress=False)
    assert torch.allclose(a, b, atol=1e-10) and torch.allclose(a, c, atol=1e-10)


@pytest.mark.parametrize("name,steps,nfe", [("ddim", 10, 10), ("euler", 10, 10), ("heun", 10, 19),
                                            ("dpm_solver_2", 10, 19), ("dpm_solver_3", 4, 10),
                                            ("dpm_solver_pp_2m", 10, 10)])
def test_evaluation_counts_and_callbacks(name, steps, nfe):
    sampler, opts, _ = METHODS[name]
    model, seen = CountedModel(MODEL), []
    sampler(model, noise(8), SCHEDULE, steps, callback=seen.append, progress=False, **opts)
    assert model.nfe == nfe
    assert [s.i for s in seen] == list(range(steps))
    assert all(s.x.shape == (8, 2) and s.x0.shape == (8, 2) for s in seen)
    default = __import__("inspect").signature(sampler).parameters["spacing"].default  # tests/test_samplers_defaults.py
    assert [s.t for s in seen] == time_grid(SCHEDULE, steps, opts.get("spacing", default)).tolist()


def test_every_sampler_declares_its_cost_and_keeps_to_it():
    """Each sampler's declared evaluations (samplers.base.declare) equal what CountedModel counts."""
    from ddlearn import samplers

    cases = [(samplers.sample_ddim, 7, {}), (samplers.sample_euler, 7, {}), (samplers.sample_heun, 7, {}),
             (samplers.sample_dpm_solver, 7, {"order": 1}), (samplers.sample_dpm_solver, 7, {"order": 2}),
             (samplers.sample_dpm_solver, 7, {"order": 3}), (samplers.sample_dpm_solver_pp, 7, {}),
             (samplers.sample_euler_maruyama, 6, {}), (samplers.sample_pc, 6, {"n_corrector": 2}),
             (samplers.sample_pf_ode, 6, {"solver": "euler"}), (samplers.sample_pf_ode, 6, {"solver": "heun"})]
    for sampler, steps, opts in cases:
        model = CountedModel(MODEL)
        sampler(model, noise(4), SCHEDULE, steps, progress=False, generator=torch.Generator().manual_seed(0), **opts)
        assert model.nfe == samplers.evaluations(sampler, steps, **opts), (sampler.__name__, opts)
    model = CountedModel(MODEL)
    samplers.sample_ancestral(model, noise(4), SCHEDULE, progress=False)
    assert model.nfe == samplers.evaluations(samplers.sample_ancestral, SCHEDULE.T)
    assert samplers.evaluations(samplers.sample_pf_ode, 6, solver="rk45") is None  # adaptive: counted, not declared
    assert samplers.steps_for(samplers.sample_heun, 10) == 5 and samplers.steps_for(samplers.sample_ddim, 10) == 10
    with pytest.raises(TypeError, match="declares no evaluations"):
        samplers.evaluations(lambda *a, **k: None, 3)


# ---- the right distribution -----------------------------------------------------
@pytest.mark.parametrize("name", ["ddim", "heun", "dpm_solver_3", "dpm_solver_pp_2m"])
def test_sampling_recovers_mixture_weights_and_means(name):
    """grid9 has weights 1/45 .. 9/45; with enough steps on the exact oracle each sampler reproduces them
    (at very few steps DDIM is visibly biased towards the middle component: Chapter 05 shows it)."""
    mix = named_mixture("grid9")
    sched = cosine(1000)
    sampler, opts, _ = METHODS[name]
    steps = {"ddim": 200, "heun": 50, "dpm_solver_3": 20, "dpm_solver_pp_2m": 50}[name]
    n = 4000
    x = sampler(mix.eps_model(sched), noise(n, seed=7), sched, steps, spacing="logsnr", progress=False, **opts)
    r = mix.responsibilities(x)
    k = r.argmax(1)
    freq = torch.bincount(k, minlength=9).double() / n
    w = mix.weights
    assert (freq - w).abs().max() < 4 * (w * (1 - w) / n).sqrt().max() + 0.005, (freq, w)
    for j in range(9):
        mean = x[k == j].double().mean(0)
        assert (mean - mix.means[j]).norm() < 0.03, (j, mean, mix.means[j])
    assert (r.max(1).values > 0.99).float().mean() > 0.98  # samples sit on components, not between


def test_works_in_float32_and_on_images():
    mix = named_mixture("ring8")
    x = sample_dpm_solver_pp(mix.eps_model(SCHEDULE), noise(50, dtype=torch.float32), SCHEDULE, 10,
                             progress=False)
    assert x.dtype == torch.float32 and torch.isfinite(x).all()
    img_model = MIX.eps_model(SCHEDULE)  # D = 2 = C*H*W for a (B, 2, 1, 1) "image"
    out = sample_heun(img_model, noise(5).reshape(5, 2, 1, 1), SCHEDULE, 5, progress=False)
    assert out.shape == (5, 2, 1, 1)


# ---- randomness ------------------------------------------------------------------
@pytest.mark.parametrize("sampler,opts", [(sample_ddim, {"eta": 1.0}), (sample_heun, {"S_churn": 10.0})])
def test_stochastic_samplers_follow_the_generator(sampler, opts):
    run = lambda seed: sampler(MODEL, noise(16), SCHEDULE, 10, generator=torch.Generator().manual_seed(seed),
                               progress=False, **opts)
    assert torch.equal(run(1), run(1))
    assert not torch.allclose(run(1), run(2))


def test_churn_within_range_only():
    """S_tmin/S_tmax outside every level: churn does nothing, the result is the deterministic Heun."""
    a = sample_heun(MODEL, noise(16), SCHEDULE, 6, S_churn=20.0, S_tmin=1e6, S_tmax=1e7, progress=False,
                    generator=torch.Generator().manual_seed(0))
    b = sample_heun(MODEL, noise(16), SCHEDULE, 6, progress=False)
    assert torch.equal(a, b)


# ---- bad input ---------------------------------------------------------------------
ALL = [sample_ddim, sample_euler, sample_heun, sample_dpm_solver, sample_dpm_solver_pp]


@pytest.mark.parametrize("sampler", ALL)
def test_bad_steps_and_spacing(sampler):
    with pytest.raises(ValueError, match="steps must be >= 1"):
        sampler(MODEL, noise(4), SCHEDULE, 0, progress=False)
    with pytest.raises(ValueError, match="at most the schedule's T=1000"):
        sampler(MODEL, noise(4), SCHEDULE, 1001, progress=False)
    with pytest.raises(TypeError, match="steps must be an int"):
        sampler(MODEL, noise(4), SCHEDULE, 10.0, progress=False)
    with pytest.raises(ValueError, match="unknown spacing 'cubic'"):
        sampler(MODEL, noise(4), SCHEDULE, 10, spacing="cubic", progress=False)
    with pytest.raises(ValueError, match="must hold steps=3"):
        sampler(MODEL, noise(4), SCHEDULE, 3, spacing=torch.tensor([900.0, 0.0]), progress=False)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sampler(MODEL, noise(4), SCHEDULE, 2, spacing=torch.tensor([0.0, 900.0]), progress=False)
    with pytest.raises(TypeError, match="x_T must be a torch.Tensor"):
        sampler(MODEL, [[0.0, 0.0]], SCHEDULE, 3, progress=False)
    with pytest.raises(TypeError, match="model must be callable"):
        sampler("net", noise(4), SCHEDULE, 3, progress=False)


def test_bad_order():
    for order in (0, 4, "2", True):
        with pytest.raises(ValueError, match="order must be one of"):
            sample_dpm_solver(MODEL, noise(4), SCHEDULE, 5, order=order, progress=False)


@pytest.mark.parametrize("sampler", ALL)
def test_bad_model_output_names_the_step(sampler):
    def wrong_shape(x, t):
        return torch.zeros(x.shape[0], 3, dtype=x.dtype)

    with pytest.raises(ValueError, match=r"model returned shape \(4, 3\) at step 0 \(t=999\)"):
        sampler(wrong_shape, noise(4), SCHEDULE, 5, spacing="trailing", progress=False)

    calls = []

    def nan_later(x, t):
        calls.append(1)
        out = MODEL(x, t)
        return out * float("nan") if len(calls) > 3 else out

    with pytest.raises(ValueError, match=r"non-finite values at step \d \(t="):
        sampler(nan_later, noise(4), SCHEDULE, 8, progress=False)


def test_bad_options():
    with pytest.raises(ValueError, match="eta must be >= 0"):
        sample_ddim(MODEL, noise(4), SCHEDULE, 5, eta=-1.0, progress=False)
    with pytest.raises(ValueError, match="S_churn must be >= 0"):
        sample_heun(MODEL, noise(4), SCHEDULE, 5, S_churn=-1.0, progress=False)
    with pytest.raises(ValueError, match="S_tmax must be a non-negative number"):
        sample_heun(MODEL, noise(4), SCHEDULE, 5, S_tmax=float("nan"), progress=False)


# ---- Chapter 05 exercise checkers ---------------------------------------------------


def test_step_weights_eta1_is_ddpms_posterior_and_eta0_keeps_the_state():
    """samplers.ddim.step_weights: at eta = 1 on every timestep the weight on x_t is q(x_{t-1} | x_t, x_0)'s."""
    from ddlearn import forward
    from ddlearn.samplers.ddim import step_weights

    sched = linear(T=50)
    w1 = step_weights(sched, 50, eta=1.0, spacing="linspace")
    ts = torch.tensor(w1["t"]).round().long()
    assert ts.tolist() == list(range(49, -1, -1))
    for i, t in enumerate(ts[:-1].tolist()):      # the last step goes to x_0 itself: no posterior weight
        mean, _, _ = forward.q_posterior(torch.zeros(1, 1), torch.ones(1, 1), t, sched)
        assert w1["state_weight"][i] == pytest.approx(mean.item(), rel=1e-5)
    from ddlearn.samplers.spacing import alpha_bars, time_grid

    w0 = step_weights(sched, 10, eta=0.0)
    a = alpha_bars(sched, time_grid(sched, 10, "quadratic"))
    expected0 = math.sqrt((1 - a[1]) / (1 - a[0]))
    ab = sched.alpha_bars
    assert w0["state_weight"][0] == pytest.approx(expected0, rel=1e-5)
    assert (w0["fresh_noise"] == 0).all() and (w1["fresh_noise"][:-1] > 0).all()   # none on the step to x_0
    assert w0["memory"] == pytest.approx(torch.tensor(w0["state_weight"]).cumprod(0).numpy())
    assert w1["memory"][-1] < w0["memory"][5], "the stochastic sampler forgets its start"
    assert w0["x0_gain"][0] == pytest.approx(((1 - ab[-1]) / ab[-1]).sqrt().item(), rel=1e-5)
