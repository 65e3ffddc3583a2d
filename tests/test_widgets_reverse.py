"""The reverse-process explorer: moving the slider changes the picture; both data kinds; bad input."""
import pytest
import torch

from ddlearn import oracles, schedules
from ddlearn.nets import UNet
from ddlearn.samplers import sample_ancestral
from ddlearn.widgets import Recorder, reverse_explorer

SCHED = schedules.linear(60, 1e-3, 0.3)


def test_2d_explorer_redraws_when_the_slider_moves():
    mix = oracles.named_mixture("ring8")
    ex = reverse_explorer(mix.eps_model(SCHED), SCHED, torch.randn(200, 2), every=5, progress=False)
    assert len(ex.steps) == 12 + 1  # steps 0, 5, ..., 55 and the last
    before = ex.image.value
    ex.controls["k"].value = 2
    assert ex.image.value != before
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle


def test_image_explorer_from_a_recorded_run():
    net = UNet(image_size=8, base=8, channel_mults=(1, 2), attn_res=(), T=SCHED.T)
    rec = Recorder(every=10, limit=4)
    out = sample_ancestral(net, torch.randn(6, 1, 8, 8), SCHED, callback=rec, progress=False,
                           generator=torch.Generator().manual_seed(0))
    ex = reverse_explorer(steps=rec, schedule=SCHED)
    assert ex.images and ex.steps[-1].x.shape == (4, 1, 8, 8)
    torch.testing.assert_close(ex.steps[-1].x, out[:4])
    before = ex.image.value
    ex.controls["k"].value = 0
    assert ex.image.value != before


def test_bad_input():
    with pytest.raises(ValueError, match="give either steps"):
        reverse_explorer()
    with pytest.raises(ValueError, match="at least one"):
        reverse_explorer(steps=[])
