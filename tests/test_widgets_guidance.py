"""Chapter 06 explorers: changing a control redraws the picture."""
import torch

from ddlearn import schedules
from ddlearn.widgets import guidance_explorer, posterior_explorer


class TinyCond(torch.nn.Module):
    """A stand-in conditional eps-model whose prediction depends on the label (fast, deterministic)."""

    num_classes, null_class = 3, 3

    def forward(self, x, t, *, y):
        return 0.3 * x + 0.1 * (y.to(x.dtype) - 1.5).reshape(-1, 1, 1, 1)


class TinyClassifier(torch.nn.Module):
    num_classes = 3

    def forward(self, x, t):
        m = x.mean((1, 2, 3))
        return torch.stack([m, -m, 0 * m], 1)


def test_guidance_explorer_redraws_on_scale_class_and_method():
    ex = guidance_explorer(TinyCond(), schedules.linear(100), classifier=TinyClassifier(), n=4, steps=3,
                           scales=(0.0, 1.0, 4.0), size=8)
    before = bytes(ex.image.value)
    ex.controls["scale"].value = 0.0
    after_scale = bytes(ex.image.value)
    assert after_scale != before
    ex.controls["label"].value = 2
    assert bytes(ex.image.value) != after_scale
    ex.controls["method"].value = "classifier"
    assert len(ex.cache) == 4  # initial, scale 0, class 2, classifier guidance
    assert ex.static_png()[:4] == b"\x89PNG"


def test_posterior_explorer_redraws_on_measurement_and_method():
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = lambda x_t, t: 0.2 * x_t  # noqa: E731 - a stand-in eps-model
    ex = posterior_explorer(model, schedules.linear(100), x, samples=2, steps=3)
    first = bytes(ex.image.value)
    ex.controls["measurement"].value = "sr4"
    second = bytes(ex.image.value)
    assert second != first
    ex.controls["method"].value = "classical"
    assert bytes(ex.image.value) != second
    ex.controls["method"].value = "DPS"
    assert bytes(ex.image.value) != second
