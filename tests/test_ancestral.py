"""Ancestral sampling with an exact oracle recovers the data distribution; bad input fails clearly."""
import pytest
import torch

from ddlearn import oracles, schedules
from ddlearn.samplers import Step, sample_ancestral

# T = 100 with betas 10x the paper's keeps the same total noise and makes the test fast
SCHED = schedules.linear(100, 1e-3, 0.2)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_exact_oracle_recovers_mixture_weights_and_means(variance):
    """Mixture 'two' (weights 0.2 / 0.8 at x = -1 / +1, std 0.1), 4000 samples.

    Tolerances: weight within 0.035 (binomial std 0.0063, so ~5.5 sigma, leaving room
    for the T=100 discretisation), means within 0.03, stds within 20%.
    """
    mix = oracles.named_mixture("two")
    g = torch.Generator().manual_seed(0)
    x = sample_ancestral(mix.eps_model(SCHED), torch.randn(4000, 2, generator=g), SCHED,
                         variance=variance, generator=g, progress=False)
    left = x[:, 0] < 0
    assert abs(left.float().mean().item() - 0.2) < 0.035
    torch.testing.assert_close(x[left].mean(0), torch.tensor([-1.0, 0.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(x[~left].mean(0), torch.tensor([1.0, 0.0]), atol=0.03, rtol=0)
    # with only T=100 steps the smaller beta-tilde variance gives visibly narrower
    # components (about 0.08 instead of 0.1); beta is within a few percent
    std = x[~left].std(0)
    assert ((std - 0.1).abs() < (0.01 if variance == "beta" else 0.03)).all(), std


def test_callback_sees_every_step_and_generator_repeats():
    mix = oracles.named_mixture("ring8")
    model = mix.eps_model(SCHED)
    seen = []
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    a = sample_ancestral(model, x_T, SCHED, generator=torch.Generator().manual_seed(2), callback=seen.append,
                         progress=False)
    b = sample_ancestral(model, x_T, SCHED, generator=torch.Generator().manual_seed(2), progress=False)
    torch.testing.assert_close(a, b)
    assert len(seen) == SCHED.T and all(isinstance(s, Step) for s in seen)
    assert [s.t for s in seen] == [float(t) for t in range(SCHED.T - 1, -1, -1)]
    torch.testing.assert_close(seen[-1].x, a)
    assert seen[-1].x0.shape == a.shape


def test_clip_x0_keeps_the_guess_in_range():
    model = lambda x, t: -torch.ones_like(x) * 3  # noqa: E731  - pushes x0 far out
    seen = []
    sample_ancestral(model, torch.randn(4, 1, 2, 2), SCHED, clip_x0=(-1, 1), callback=seen.append, progress=False,
                     generator=torch.Generator().manual_seed(0))
    assert all(s.x0.abs().max() <= 1 for s in seen)


def test_bad_input_is_named():
    model = oracles.named_mixture("ring8").eps_model(SCHED)
    x = torch.randn(4, 2)
    with pytest.raises(TypeError, match="model must be callable"):
        sample_ancestral("model", x, SCHED, progress=False)
    with pytest.raises(ValueError, match="x_T must have"):
        sample_ancestral(model, torch.randn(4), SCHED, progress=False)
    with pytest.raises(ValueError, match="unknown variance"):
        sample_ancestral(model, x, SCHED, variance="learned", progress=False)
    with pytest.raises(ValueError, match="clip_x0 must have low < high"):
        sample_ancestral(model, x, SCHED, clip_x0=(1, -1), progress=False)
    with pytest.raises(TypeError, match="schedule"):
        sample_ancestral(model, x, "linear", progress=False)
    with pytest.raises(ValueError, match="model returned shape"):
        sample_ancestral(lambda x, t: x[:, :1], x, SCHED, progress=False)
    with pytest.raises(ValueError, match="non-finite"):
        sample_ancestral(lambda x, t: x * float("nan"), x, SCHED, progress=False)
