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


@pytest.mark.parametrize("lower_order_final", [False, True])
@pytest.mark.parametrize("order", [2, 3])
def test_matches_diffusers_step_by_step(order, lower_order_final):
    """Every step but the last (diffusers' ends at sigma_min, ours at 0), with and without lowering the order of
    the step before the last (at 10 steps both libraries lower it to at most 2)."""
    steps = 10
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sched = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver",
                                                  solver_order=order, timestep_spacing="trailing",
                                                  final_sigmas_type="sigma_min", lower_order_final=lower_order_final)
    sched.alphas_cumprod = SCHEDULE.alpha_bars.clone()
    sched.set_timesteps(steps)
    ts = sched.timesteps.double()
    sched.sigmas = torch.cat([SCHEDULE.sigma(ts), SCHEDULE.sigma(torch.zeros(1, dtype=torch.float64))])
    ours = []
    sample_dpm_solver_multistep(model, x, SCHEDULE, steps, order=order, spacing=ts, progress=False,
                                lower_order_final=lower_order_final, callback=lambda s: ours.append(s.x))
    y = x
    for i, t in enumerate(sched.timesteps[:-1]):  # diffusers' last step ends at sigma_min, ours at 0
        y = sched.step(model(y, t), t, y).prev_sample
        assert torch.allclose(ours[i], y, atol=1e-5, rtol=0), f"step {i}"


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
    """Without diffusers: on an exact oracle, doubling the steps (log-SNR grid, 40 -> 80) divides the error by
    about 2^1.7 for 2M and 2^2.2 for 3M (measured; the first steps and the last, to clean data, are first
    order, so the asymptotic 2 and 3 are not reached at these step counts), and 3M is the more accurate."""
    import math

    from ddlearn.samplers import sample_dpm_solver
    ring = named_mixture("ring8").eps_model(SCHEDULE)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = sample_dpm_solver(ring, x, SCHEDULE, 300, order=3, spacing="logsnr", progress=False)
    err = {o: [(sample_dpm_solver_multistep(ring, x, SCHEDULE, n, order=o, spacing="logsnr", progress=False) - ref)
               .norm(dim=1).mean().item() for n in (40, 80)] for o in (2, 3)}
    assert 1.4 < math.log2(err[2][0] / err[2][1]) < 2.5, err
    assert 1.9 < math.log2(err[3][0] / err[3][1]) < 3.5, err
    assert err[3][1] < err[2][1], err
