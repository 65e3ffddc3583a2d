"""Schedules and the closed-form forward process against diffusers' DDPMScheduler (skipped without diffusers)."""
from __future__ import annotations

import pytest
import torch

from ddlearn import forward, schedules

diffusers = pytest.importorskip("diffusers")

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("T", [1000, 50])
def test_betas_and_alphas_cumprod_match_diffusers(name, T):
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=DIFFUSERS_NAME[name])
    s = schedules.get(name, T=T)
    assert torch.allclose(s.betas, ref.betas.double(), atol=1e-6, rtol=0)
    assert torch.allclose(s.alphas, ref.alphas.double(), atol=1e-6, rtol=0)
    assert torch.allclose(s.alpha_bars, ref.alphas_cumprod.double(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_q_sample_matches_diffusers_add_noise(name):
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=DIFFUSERS_NAME[name])
    s = schedules.get(name)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(64, 3, 8, 8, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (64,), generator=g)
    t[:2] = torch.tensor([0, 999])
    # diffusers in float32, as it ships: limited by its float32 cumprod (a few 1e-6)
    ours = forward.q_sample(x0.float(), t, eps.float(), s)
    theirs = ref.add_noise(x0.float(), eps.float(), t)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    # the same formula and indexing with diffusers' alphas_cumprod recomputed in float64: 1e-6
    ref.alphas_cumprod = torch.cumprod(1 - ref.betas.double(), 0)
    assert torch.allclose(forward.q_sample(x0, t, eps, s), ref.add_noise(x0, eps, t), atol=1e-6, rtol=0)
