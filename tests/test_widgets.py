"""The Explorer base (ddlearn/widgets/_base.py): the documented subclass pattern, the static fallback and the
MIME bundle a notebook or the book shows."""
from __future__ import annotations

import base64

import ipywidgets
import pytest
import torch
from matplotlib.figure import Figure

from ddlearn import data, viz, widgets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    return data.digits("test")[:8]


def test_the_documented_subclass_pattern_works():
    """The pattern in ddlearn.widgets._base's docstring, with the default (stacked) static()."""
    frames = [torch.full((2, 1, 4, 4), v) for v in (-1.0, 0.0, 1.0)]

    class Stepper(widgets.Explorer):
        def __init__(self):
            super().__init__({"step": ipywidgets.IntSlider(0, 0, 2)}, figsize=(2, 2))

        def build(self, fig):
            self.im = viz.image_grid(frames[0], fig.add_subplot())

        def update(self, step):
            self.im.set_data(viz.grid_array(frames[step]))

        def static_states(self):
            return [{"step": s} for s in range(3)]

    e = Stepper()
    first = bytes(e.image.value)
    e.controls["step"].value = 2
    assert bytes(e.image.value) != first
    fig = e.static()
    w, h = fig.get_size_inches()
    assert isinstance(fig, Figure) and h == pytest.approx(3 * w, rel=0.05)  # three states stacked


def test_static_fallback_and_mimebundle(digits):
    e = widgets.noising_explorer(digits, "linear", static_t=[0, 300, 999])
    fig = e.static()
    assert isinstance(fig, Figure)
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(PNG_MAGIC)
    assert "Jupyter kernel" in bundle["text/plain"]
    # building the fallback leaves the live picture as the slider says
    e.controls["t"].value = 400
    live = bytes(e.image.value)
    e.static()
    assert e.render() == live
