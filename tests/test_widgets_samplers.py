"""The fast-sampler explorer: moving the evaluations slider redraws every panel; the fallback exists."""
import pytest
import torch

from ddlearn.oracles import named_mixture
from ddlearn.samplers import sample_ddim, sample_dpm_solver, sample_heun, steps_for
from ddlearn.samplers.compare import FAST_SAMPLERS, run_at_budget
from ddlearn.schedules import linear
from ddlearn.widgets import sampler_explorer

SCHEDULE = linear(1000)
MODEL = named_mixture("ring8").eps_model(SCHEDULE)


class TinyImageModel(torch.nn.Module):
    """An exact oracle on (B, 1, 2, 2) 'images': a mixture in D = 4."""

    def __init__(self):
        super().__init__()
        from ddlearn.oracles import GaussianMixture

        self.m = GaussianMixture(torch.tensor([[0.5, -0.5, 0.5, -0.5], [-0.5, 0.5, -0.5, 0.5]]),
                                 torch.full((2,), 0.01)).eps_model(SCHEDULE)

    def forward(self, x, t):
        return self.m(x, t)


def test_steps_for_budget():
    assert [steps_for(sample_ddim, b) for b in (1, 5, 10)] == [1, 5, 10]
    assert [steps_for(sample_heun, b) for b in (1, 2, 3, 10)] == [1, 1, 2, 5]
    assert steps_for(sample_dpm_solver, 10, order=3) == 4  # 3 * 3 + 1 = 10
    for name in FAST_SAMPLERS:
        _, nfe = run_at_budget(name, MODEL, torch.randn(4, 2), SCHEDULE, 10)
        assert nfe <= 10 and nfe >= 8, (name, nfe)


def test_slider_redraws_and_fallback():
    w = sampler_explorer(MODEL, SCHEDULE, TinyImageModel(), SCHEDULE, budgets=(4, 10), n_points=100,
                         n_paths=3, n_images=4, image_shape=(1, 2, 2), samplers=["DDIM", "DPM-Solver++(2M)"],
                         progress=False)
    before = w.image.value
    w.controls["nfe"].value = 4
    assert w.image.value != before
    assert "image/png" in w._repr_mimebundle_()


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown sampler"):
        sampler_explorer(MODEL, SCHEDULE, samplers=["RK4"], progress=False)
    with pytest.raises(ValueError, match="together"):
        sampler_explorer(MODEL, SCHEDULE, image_model=MODEL, progress=False)
