"""Our fast samplers against diffusers' schedulers: same schedule, timesteps, model; same numbers.

Each test runs diffusers' own sampling loop (``set_timesteps``, ``scale_model_input``,
``step``) and ours with the exact mixture oracle as the model, and compares the
state after every step to 1e-5.

Conventions that differ, and how the tests line them up:

* diffusers stores ``alphas_cumprod`` and the sigmas in float32; we keep the
  schedule in float64. We hand diffusers our float64 alpha-bars before
  ``set_timesteps`` and our float64 sigmas after it, so both sides use the same
  noise levels (the DPM-Solver and Euler ``step`` still compute in float32
  internally, which is why the tolerance is 1e-5 and not 1e-12).
* Euler / Heun in diffusers carry the variance-exploding state y = x / sqrt(alpha_bar)
  (initial noise scaled by ``init_noise_sigma``, the model input divided by
  sqrt(1 + sigma^2) in ``scale_model_input``); our samplers take and report the
  VP state x. We compare in x = y / sqrt(1 + sigma^2) (y is ~sigma_max = 157
  times larger at the start, where diffusers' float32 arithmetic alone moves it by 1e-5).
* Churn (S_churn > 0) is not compared: diffusers' Euler raises the noise to
  sigma_hat but still scales the input and asks the model at the old sigma's
  timestep; we evaluate at t(sigma_hat), as EDM's Algorithm 2 does.
* diffusers' DPM-Solver "leading" spacing is not DDIM's (it splits T into
  steps + 1 parts); "trailing" is the same everywhere, so the tests use it.
"""
import math

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from ddlearn.oracles import named_mixture  # noqa: E402
from ddlearn.samplers import (sample_ddim, sample_dpm_solver_pp, sample_euler, sample_heun,  # noqa: E402
                              time_grid)
from ddlearn.schedules import linear  # noqa: E402

TOL = 1e-5
SCHEDULE = linear(1000)
MIX = named_mixture("grid9")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def model(x, t):
    return MIX.eps_model(SCHEDULE)(x, t)


def diffusers_model(x, t):
    t = torch.as_tensor(t, dtype=torch.float64).reshape(1).expand(x.shape[0])
    return model(x, t)


def x_T(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def with_our_schedule(sched):
    """Give a diffusers scheduler our float64 alpha-bars (see module docstring)."""
    sched.alphas_cumprod = SCHEDULE.alpha_bars.clone()
    return sched


def our_sigmas(ts):
    return torch.cat([SCHEDULE.sigma(torch.as_tensor(ts, dtype=torch.float64)), torch.zeros(1, dtype=torch.float64)])


def trajectory(sampler, x, steps, **kw):
    states = []
    out = sampler(model, x, SCHEDULE, steps, progress=False, callback=lambda s: states.append(s.x.clone()), **kw)
    return states, out


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("steps", [1, 10, 25])
def test_spacing_matches_diffusers_ddim(spacing, steps):
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    sched.set_timesteps(steps)
    assert time_grid(SCHEDULE, steps, spacing).tolist() == sched.timesteps.double().tolist()


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(spacing, eta):
    steps, x = 10, x_T()
    sched = with_our_schedule(diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing,
                                                      set_alpha_to_one=True, clip_sample=False))
    sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    sched.set_timesteps(steps)
    ours, _ = trajectory(sample_ddim, x, steps, eta=eta, spacing=spacing,
                         generator=torch.Generator().manual_seed(1))
    # fresh noise: hand diffusers the very draws our sampler made, in the same order
    g = torch.Generator().manual_seed(1)
    y = x
    for i, t in enumerate(sched.timesteps):
        noise = torch.randn(x.shape, generator=g, dtype=x.dtype) if eta > 0 and i < steps - 1 else None
        y = sched.step(diffusers_model(y, t), t, y, eta=eta, variance_noise=noise).prev_sample
        assert torch.allclose(ours[i], y, atol=TOL, rtol=0), f"step {i}"


def test_dpm_solver_pp_2m_matches_diffusers():
    steps, x = 10, x_T()
    sched = with_our_schedule(diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
        lower_order_final=True, final_sigmas_type="zero", timestep_spacing="trailing"))
    sched.set_timesteps(steps)
    sched.sigmas = our_sigmas(sched.timesteps)
    ours, _ = trajectory(sample_dpm_solver_pp, x, steps, spacing=sched.timesteps.double())
    y = x
    for i, t in enumerate(sched.timesteps):
        y = sched.step(diffusers_model(y, t), t, y).prev_sample
        assert torch.allclose(ours[i], y, atol=TOL, rtol=0), f"step {i}"


def test_euler_matches_diffusers():
    steps, x = 10, x_T()
    sched = with_our_schedule(diffusers.EulerDiscreteScheduler(num_train_timesteps=1000,
                                                               timestep_spacing="trailing"))
    sched.set_timesteps(steps)
    sched.sigmas = our_sigmas(sched.timesteps)
    ours, _ = trajectory(sample_euler, x, steps, spacing="trailing")
    y = x * math.sqrt(1 + sched.sigmas[0].item() ** 2)  # diffusers' init_noise_sigma scaling
    for i, t in enumerate(sched.timesteps):
        eps = diffusers_model(sched.scale_model_input(y, t), t)
        y = sched.step(eps, t, y).prev_sample
        s_next = sched.sigmas[i + 1].item()
        assert torch.allclose(ours[i], y / math.sqrt(1 + s_next ** 2), atol=TOL, rtol=0), f"step {i}"


def test_heun_matches_diffusers():
    steps, x = 8, x_T()
    sched = with_our_schedule(diffusers.HeunDiscreteScheduler(num_train_timesteps=1000,
                                                              timestep_spacing="trailing"))
    sched.set_timesteps(steps)
    ts = sched.timesteps[::2].double()  # diffusers repeats every timestep after the first
    s = our_sigmas(ts)
    sched.sigmas = torch.cat([s[:1], s[1:-1].repeat_interleave(2), s[-1:]])
    ours, out = trajectory(sample_heun, x, steps, spacing="trailing")
    y = x * math.sqrt(1 + s[0].item() ** 2)
    done = []
    for t in sched.timesteps:
        y = sched.step(diffusers_model(sched.scale_model_input(y, t), t), t, y).prev_sample
        if sched.state_in_first_order:  # a full Heun step has finished
            done.append(y)
    done.append(y)  # the last step is Euler and leaves the state half-way
    assert len(done) == steps
    for i in range(steps):
        s_next = s[i + 1].item()
        assert torch.allclose(ours[i], done[i] / math.sqrt(1 + s_next ** 2), atol=TOL, rtol=0), f"step {i}"
    assert torch.allclose(out, done[-1], atol=TOL, rtol=0)


def test_karras_spacing_matches_diffusers_sigmas():
    """Our "karras" spacing gives the same noise levels as diffusers' use_karras_sigmas (rho = 7)."""
    steps = 12
    sched = with_our_schedule(diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, use_karras_sigmas=True))
    sched.set_timesteps(steps)
    ours = SCHEDULE.sigma(time_grid(SCHEDULE, steps, "karras"))
    np.testing.assert_allclose(ours.numpy(), sched.sigmas[:-1].double().numpy(), rtol=1e-5)
