"""The noising and schedule explorers (ddlearn/widgets/noising.py): a control changed in Python changes the picture."""
from __future__ import annotations

import math

import ipywidgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ddlearn import data, schedules, viz, widgets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    return data.digits("test")[:8]


@pytest.fixture(scope="module")
def points():
    return data.swiss_roll(300)


def _slide(explorer, value):
    before = bytes(explorer.image.value)  # the widget stores a memoryview
    explorer.controls["t"].value = value
    after = bytes(explorer.image.value)
    assert after.startswith(PNG_MAGIC)
    return before, after


@pytest.mark.parametrize("kind", ["images", "points"])
def test_noising_slider_changes_the_picture(kind, digits, points):
    x0 = digits if kind == "images" else points
    e = widgets.noising_explorer(x0, "cosine", seed=0)
    assert isinstance(e, ipywidgets.VBox) and bytes(e.image.value).startswith(PNG_MAGIC)
    before, after = _slide(e, 600)
    assert before != after
    # back to the same t, the same picture (fixed noise, deterministic render)
    _slide(e, 100)
    _, again = _slide(e, 600)
    assert again == after
    assert len(e.redraw_times) == 4  # the first draw and three slider moves


def test_noising_uses_the_same_noise_at_every_t(digits):
    s = schedules.linear()
    e = widgets.noising_explorer(digits, s, seed=3)
    for t in (10, 500, 999):
        ab = float(s.alpha_bars[t])
        eps = (e.x_t(t) - math.sqrt(ab) * e.x0) / math.sqrt(1 - ab)
        assert torch.allclose(eps, e.noise, atol=1e-4)
    # the seed fixes the noise: two explorers with one seed show the same picture
    assert torch.equal(widgets.noising_explorer(digits, s, seed=3).noise, e.noise)


def test_noising_histogram_reaches_the_normal(points):
    e = widgets.noising_explorer(points, "linear")
    e.controls["t"].value = 999
    heights = e.hist.get_data().values
    centres = (e.edges[1:] + e.edges[:-1]) / 2
    # at t = T-1 the shown histogram is close to the N(0, 1) density it is drawn against
    assert np.abs(heights - viz.normal_pdf(centres)).max() < 0.12


def test_schedule_explorer(digits):
    e = widgets.schedule_explorer(digits[0], ("linear", "cosine", "sigmoid"), t=100)
    before, after = _slide(e, 700)
    assert before != after
    assert isinstance(e.static(), Figure)
    assert "image/png" in e._repr_mimebundle_()
    # on the same noise, at the same t, the cosine image keeps more signal than the linear one
    lin, cos = (e.x_t(s, 300) for s in e.schedules[:2])
    x0 = e.x0
    assert torch.corrcoef(torch.stack([cos.flatten(), x0.flatten()]))[0, 1] > \
        torch.corrcoef(torch.stack([lin.flatten(), x0.flatten()]))[0, 1]


def test_bad_input(digits):
    with pytest.raises(ValueError, match="x0"):
        widgets.noising_explorer(torch.zeros(10, 3), "linear")
    with pytest.raises(ValueError, match="t must lie"):
        widgets.noising_explorer(digits, "linear", t=1000)
    with pytest.raises(ValueError, match="unknown schedule name"):
        widgets.noising_explorer(digits, "cosinus")
    with pytest.raises(ValueError, match="same T"):
        widgets.schedule_explorer(digits[0], [schedules.linear(T=100), schedules.cosine(T=200)])
    with pytest.raises(ValueError, match="static_t"):
        widgets.noising_explorer(digits, "linear", static_t=[0, 5000])
