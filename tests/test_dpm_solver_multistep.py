"""Multistep DPM-Solver in the noise form against diffusers' DPMSolverMultistepScheduler(algorithm_type="dpmsolver")."""
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from ddlearn.oracles import named_mixture  # noqa: E402
from ddlearn.samplers import CountedModel, evaluations  # noqa: E402
from ddlearn.samplers.dpm_solver import sample_dpm_solver_multistep  # noqa: E402
from ddlearn.schedules import linear  # noqa: E402

SCHEDULE = linear(1000)
MIX = named_mixture("grid9")


def model(x, t):
    return MIX.eps_model(SCHEDULE)(x, torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x.shape[0]))


def _diffusers_run(sched, x, steps):
    """diffusers' loop on SCHEDULE's own trailing timesteps, every step but the last: the states, and the grid."""
    sched.alphas_cumprod = SCHEDULE.alpha_bars.clone()
    sched.set_timesteps(steps)
    ts = sched.timesteps.double()
    sched.sigmas = torch.cat([SCHEDULE.sigma(ts), SCHEDULE.sigma(torch.zeros(1, dtype=torch.float64))])
    y, states = x, []
    for t in sched.timesteps[:-1]:  # diffusers' last step ends at sigma_min, ours at 0
        y = sched.step(model(y, t), t, y).prev_sample
        states.append(y)
    return states, ts


@pytest.mark.parametrize("lower_order_final", [False, True])
def test_order_2_matches_diffusers_step_by_step(lower_order_final):
    """Every step but the last (diffusers' ends at sigma_min, ours at 0), with and without lowering the order of
    the step before the last (at 10 steps both libraries lower it to at most 2). Order 3: the next test."""
    order, steps = 2, 10
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sched = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver",
                                                  solver_order=order, timestep_spacing="trailing",
                                                  final_sigmas_type="sigma_min", lower_order_final=lower_order_final)
    theirs, ts = _diffusers_run(sched, x, steps)
    ours = []
    sample_dpm_solver_multistep(model, x, SCHEDULE, steps, order=order, spacing=ts, progress=False,
                                lower_order_final=lower_order_final, callback=lambda s: ours.append(s.x))
    for i, y in enumerate(theirs):
        assert torch.allclose(ours[i], y, atol=1e-5, rtol=0), f"step {i}"


def test_order_3_matches_deis_not_diffusers_dpm_solver():
    """Order 3 integrates the quadratic through the last three eps exactly, as DEIS-3 (log-rho) does: every step
    agrees with diffusers' DEISMultistepScheduler to 3e-5 (its second-order warm-up step integrates the line
    exactly, ours is the midpoint form, 2e-5 apart after that step). diffusers' DPMSolverMultistepScheduler
    (solver_order=3) halves the quadratic term and drifts away from both by about 1e-2 over the run."""
    steps = 10
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    deis, ts = _diffusers_run(diffusers.DEISMultistepScheduler(num_train_timesteps=1000, solver_order=3,
                                                               timestep_spacing="trailing", lower_order_final=False),
                              x, steps)
    dpm, _ = _diffusers_run(diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, algorithm_type="dpmsolver", solver_order=3, timestep_spacing="trailing",
        final_sigmas_type="sigma_min", lower_order_final=False), x, steps)
    ours = []
    sample_dpm_solver_multistep(model, x, SCHEDULE, steps, order=3, spacing=ts, progress=False,
                                lower_order_final=False, callback=lambda s: ours.append(s.x))
    gap_deis = max((a - b).abs().max().item() for a, b in zip(ours, deis))
    gap_dpm = max((a - b).abs().max().item() for a, b in zip(ours, dpm))
    assert gap_deis < 3e-5, gap_deis
    assert gap_dpm > 3e-3, gap_dpm


def test_order_3_is_exact_for_eps_quadratic_in_lambda():
    """A model whose eps is a quadratic in lambda (and does not depend on x): once three evaluations are in the
    history, each third-order step equals the exact integral
    x_t / alpha_t - x_s / alpha_s = -int e^(-lambda) eps d lambda = [e^(-lambda) (a + b (lambda + 1) + c (lambda^2 + 2 lambda + 2))]."""
    import math
    a, b, c = 0.3, -0.2, 0.05

    def lam_of(t):  # from alpha-bar, as the sampler computes it
        ab = SCHEDULE.alpha_bar(t)
        return 0.5 * torch.log(ab / (1 - ab))

    def quad(x, t):
        lam = lam_of(torch.as_tensor(t, dtype=torch.float64).reshape(-1)[:1])
        return (a + b * lam + c * lam ** 2).expand_as(x).clone()

    def antiderivative(lam):  # of -e^(-lambda) (a + b lambda + c lambda^2)
        return math.exp(-lam) * (a + b * (lam + 1) + c * (lam ** 2 + 2 * lam + 2))

    steps = 10
    x = torch.zeros(3, 2, dtype=torch.float64)
    states = []
    sample_dpm_solver_multistep(quad, x, SCHEDULE, steps, order=3, spacing="logsnr", lower_order_final=False,
                                progress=False, callback=lambda s: states.append(s.x))
    from ddlearn.samplers.spacing import time_grid
    ts = time_grid(SCHEDULE, steps, "logsnr")
    alpha = SCHEDULE.alpha_bar(ts).sqrt().tolist()
    lam = [float(lam_of(t.reshape(1))) for t in ts]
    for i in range(2, steps - 1):  # third order from the third step; the last returns x0
        got = states[i] / alpha[i + 1] - states[i - 1] / alpha[i]
        want = antiderivative(lam[i + 1]) - antiderivative(lam[i])
        assert torch.allclose(got, torch.full_like(got, want), rtol=1e-9, atol=1e-12), (i, got[0, 0].item(), want)


def test_one_evaluation_per_step_and_bad_order():
    m = CountedModel(model)
    sample_dpm_solver_multistep(m, torch.zeros(4, 2, dtype=torch.float64), SCHEDULE, 7, progress=False)
    assert m.nfe == 7 == evaluations(sample_dpm_solver_multistep, 7)
    with pytest.raises(ValueError, match="order must be 2 or 3"):
        sample_dpm_solver_multistep(model, torch.zeros(4, 2), SCHEDULE, 5, order=1, progress=False)
    with pytest.raises(TypeError, match="lower_order_final"):
        sample_dpm_solver_multistep(model, torch.zeros(4, 2), SCHEDULE, 5, lower_order_final="yes", progress=False)


def test_lower_order_final_touches_only_the_step_before_the_last_below_15_steps():
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    runs = {}
    for steps in (10, 15):
        for low in (False, True):
            states = []
            sample_dpm_solver_multistep(model, x, SCHEDULE, steps, order=3, lower_order_final=low, progress=False,
                                        callback=lambda s: states.append(s.x))
            runs[steps, low] = states
    a, b = runs[10, False], runs[10, True]
    assert all(torch.equal(a[i], b[i]) for i in range(8))  # identical up to the step before the last
    assert not torch.allclose(a[8], b[8])
    assert all(torch.equal(p, q) for p, q in zip(runs[15, False], runs[15, True]))  # 15 steps: no change
    # order 2: the cap changes nothing
    for low in (False, True):
        runs[2, low] = sample_dpm_solver_multistep(model, x, SCHEDULE, 10, order=2, lower_order_final=low,
                                                   progress=False)
    assert torch.equal(runs[2, False], runs[2, True])



def test_observed_order():
    """Without diffusers: on an exact oracle, doubling the steps (log-SNR grid, 80 -> 160) divides the error by
    about 2^1.86 for 2M and 2^2.83 for 3M (measured; the first steps and the last, to clean data, are first
    order, so the asymptotic 2 and 3 are not quite reached at these step counts; with the quadratic term halved,
    as in Lu et al.'s code and diffusers, 3M measured 2^2.29), and 3M is the more accurate."""
    import math

    from ddlearn.samplers import sample_dpm_solver
    ring = named_mixture("ring8").eps_model(SCHEDULE)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = sample_dpm_solver(ring, x, SCHEDULE, 300, order=3, spacing="logsnr", progress=False)
    # both end with the Euler (denoising) step from t = 0, so the comparison measures the solver, not the ending
    err = {o: [(sample_dpm_solver_multistep(ring, x, SCHEDULE, n, order=o, spacing="logsnr", final="denoise",
                                            progress=False) - ref)
               .norm(dim=1).mean().item() for n in (80, 160)] for o in (2, 3)}
    assert 1.5 < math.log2(err[2][0] / err[2][1]) < 2.5, err
    assert 2.6 < math.log2(err[3][0] / err[3][1]) < 3.5, err
    assert err[3][1] < err[2][1], err


@pytest.mark.parametrize("algo,steps,lower_order_final", [("dpmsolver++", 20, True), ("dpmsolver", 20, True),
                                                          ("dpmsolver++", 10, False), ("dpmsolver", 10, False)])
def test_final_sigma_min_matches_diffusers(algo, steps, lower_order_final):
    """final="sigma_min": ``steps`` evaluations and ``steps`` solver steps, the last to t = 0, whose state is
    returned; diffusers' DPMSolverMultistepScheduler(final_sigmas_type="sigma_min") on its "linspace" grid
    (steps + 1 timesteps from 999 to 0, the 0 dropped from the evaluations) takes the same steps. At 20 steps
    both libraries keep second order to the end; at 10 lower_order_final is off in both (with it diffusers
    makes the last step first order, ours caps it at second, which order 2 already is)."""
    from ddlearn.samplers.dpm_solver import sample_dpm_solver_pp
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sched = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type=algo, solver_order=2,
                                                  final_sigmas_type="sigma_min", timestep_spacing="linspace",
                                                  lower_order_final=lower_order_final)
    sched.alphas_cumprod = SCHEDULE.alpha_bars.clone()
    sched.set_timesteps(steps)
    y = x
    for t in sched.timesteps:
        y = sched.step(model(y, t), t, y).prev_sample
    grid = torch.cat([sched.timesteps.double(), torch.zeros(1, dtype=torch.float64)])
    m = CountedModel(model)
    if algo == "dpmsolver++":
        ours = sample_dpm_solver_pp(m, x, SCHEDULE, steps, spacing=grid, final="sigma_min", progress=False)
        n_declared = evaluations(sample_dpm_solver_pp, steps, final="sigma_min")
    else:
        ours = sample_dpm_solver_multistep(m, x, SCHEDULE, steps, order=2, spacing=grid, final="sigma_min",
                                           lower_order_final=lower_order_final, progress=False)
        n_declared = evaluations(sample_dpm_solver_multistep, steps, final="sigma_min")
    assert m.nfe == steps == n_declared
    assert (ours - y).abs().max().item() < 1e-4
    # and it is not the denoising end on the same evaluation timesteps
    den = sample_dpm_solver_multistep(model, x, SCHEDULE, steps, order=2, spacing=grid[:-1], progress=False)
    assert (den - y).abs().max().item() > 1e-3


def test_final_sigma_min_ends_at_t0_and_caps_only_its_last_step():
    """The grid has steps + 1 timesteps ending at 0 (the log-SNR grid of steps + 1 points); lower_order_final
    (below 15 steps) changes only the last step, the one to t = 0; the default ending on this grid is the
    trapezoid."""
    from ddlearn.samplers.spacing import final_grid, time_grid
    ts, ab, _ = final_grid(SCHEDULE, 10, "logsnr", "sigma_min")
    assert torch.equal(ts, time_grid(SCHEDULE, 11, "logsnr")[:-1]) and len(ab) == 11
    assert ab[-1] == pytest.approx(SCHEDULE.alpha_bar(torch.zeros(1, dtype=torch.float64)).item())
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    runs = {}
    for low in (False, True):
        states = []
        sample_dpm_solver_multistep(model, x, SCHEDULE, 10, order=3, lower_order_final=low, final="sigma_min",
                                    progress=False, callback=lambda s: states.append(s.x))
        runs[low] = states
    assert all(torch.equal(runs[False][i], runs[True][i]) for i in range(9))
    assert not torch.allclose(runs[False][9], runs[True][9])
    default = sample_dpm_solver_multistep(model, x, SCHEDULE, 10, order=3, progress=False)
    assert torch.equal(default, sample_dpm_solver_multistep(model, x, SCHEDULE, 10, order=3, final="trapezoid",
                                                            progress=False))


def test_final_bad_values():
    from ddlearn.samplers.dpm_solver import sample_dpm_solver_pp
    from ddlearn.samplers.spacing import final_step
    x = torch.zeros(4, 2, dtype=torch.float64)
    for f in ("auto", "sigma_min"):
        with pytest.raises(ValueError, match="final_step takes"):
            final_step(x, x, 0.9999, f)
    for fn in (sample_dpm_solver_pp, sample_dpm_solver_multistep):
        with pytest.raises(ValueError, match="final"):
            fn(model, x, SCHEDULE, 5, final="zero", progress=False)
        with pytest.raises(TypeError, match="final"):
            fn(model, x, SCHEDULE, 5, final=None, progress=False)
        with pytest.raises(ValueError, match="ends at t = 0"):  # trailing ends at T/N - 1
            fn(model, x, SCHEDULE, 5, spacing="trailing", final="sigma_min", progress=False)
        with pytest.raises(ValueError, match="steps \\+ 1"):
            fn(model, x, SCHEDULE, 5, spacing=torch.tensor([999.0, 700, 400, 200, 0]), final="sigma_min",
               progress=False)
        with pytest.raises(ValueError, match="below the schedule's T"):
            fn(model, x, SCHEDULE, 1000, final="sigma_min", progress=False)


def test_trapezoid_end_on_a_gaussian_mode():
    """From a point of the exact t = 0 marginal of one Gaussian mode (sd s), the three endings shrink x - m (in
    x / alpha) by: exact flow s / sqrt(s^2 + sigma^2), Euler ("denoise") s^2 / (s^2 + sigma^2), trapezoid
    1 - sigma^2 / (2 (s^2 + sigma^2)) (sigma = sigma-bar at t = 0); the trapezoid is the closer for
    s > sigma / sqrt(8) (Chapter 05, exercise 05.8)."""
    import math

    from ddlearn.oracles import GaussianMixture
    from ddlearn.samplers.spacing import final_step
    ab = SCHEDULE.alpha_bar(torch.zeros(1, dtype=torch.float64)).item()
    sig = math.sqrt((1 - ab) / ab)
    t0 = torch.zeros(1, dtype=torch.float64)
    for s in (0.2 * sig, 0.34 * sig, 0.37 * sig, 0.5 * sig, sig, 3 * sig):
        mix = GaussianMixture(torch.tensor([[0.3, -0.2]], dtype=torch.float64),
                              torch.tensor([s * s], dtype=torch.float64), [1.0])
        x = torch.tensor([[0.31, -0.21]], dtype=torch.float64)  # a point at t = 0 (VP scale)
        eps = mix.eps_model(SCHEDULE)(x, t0)
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        dev = x / math.sqrt(ab) - mix.means
        ratio = {f: ((final_step(x, x0, ab, f) - mix.means) / dev).mean().item() for f in ("denoise", "trapezoid")}
        assert ratio["denoise"] == pytest.approx(s * s / (s * s + sig * sig), rel=1e-9)
        assert ratio["trapezoid"] == pytest.approx(1 - sig * sig / (2 * (s * s + sig * sig)), rel=1e-9)
        exact = s / math.sqrt(s * s + sig * sig)
        closer = abs(ratio["trapezoid"] - exact) < abs(ratio["denoise"] - exact)
        assert closer == (s > sig / math.sqrt(8)), (s / sig, ratio, exact)


def test_auto_end_is_the_trapezoid_where_the_grid_ends_at_t0():
    from ddlearn.samplers.spacing import final_grid
    assert final_grid(SCHEDULE, 10, "logsnr", "auto")[2] == "trapezoid"
    assert final_grid(SCHEDULE, 10, "trailing", "auto")[2] == "denoise"  # ends at t = 99
    assert final_grid(SCHEDULE, 1, "logsnr", "auto")[2] == "denoise"  # one step, at t = T - 1
    with pytest.raises(ValueError, match="ends at t = 0"):
        final_grid(SCHEDULE, 10, "trailing", "trapezoid")
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for fn, opts in ((sample_dpm_solver_multistep, {"order": 3}), (sample_dpm_solver_multistep, {"order": 2})):
        a = fn(model, x, SCHEDULE, 8, final="auto", progress=False, **opts)
        assert torch.equal(a, fn(model, x, SCHEDULE, 8, final="trapezoid", progress=False, **opts))
        assert not torch.allclose(a, fn(model, x, SCHEDULE, 8, final="denoise", progress=False, **opts))
        one = fn(model, x, SCHEDULE, 1, final="auto", progress=False, **opts)
        assert torch.equal(one, fn(model, x, SCHEDULE, 1, final="denoise", progress=False, **opts))
