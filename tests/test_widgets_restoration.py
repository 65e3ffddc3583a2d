"""Chapter 07 explorer: changing the task, the scale or the steps redraws the picture."""
import pytest
import torch

from ddlearn import schedules
from ddlearn.widgets import restoration_explorer


def test_restoration_explorer_redraws_on_task_scale_and_steps():
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = lambda x_t, t: 0.2 * x_t  # noqa: E731 - a stand-in eps-model
    ex = restoration_explorer(model, schedules.linear(100), x, tasks=("sr4", "inpaint_box"), scales=(0.0, 0.5),
                              steps=(3, 5))
    first = bytes(ex.image.value)
    ex.controls["scale"].value = 0.0
    second = bytes(ex.image.value)
    assert second != first
    ex.controls["steps"].value = 3
    third = bytes(ex.image.value)
    assert third != second
    ex.controls["task"].value = "inpaint_box"
    assert bytes(ex.image.value) != third
    assert len(ex.cache) == 4
    assert ex.static_png()[:4] == b"\x89PNG"


def test_restoration_explorer_bad_input():
    with pytest.raises(ValueError, match="task"):
        restoration_explorer(lambda x, t: x, schedules.linear(100), torch.zeros(1, 1, 16, 16), tasks=("sr3",))
