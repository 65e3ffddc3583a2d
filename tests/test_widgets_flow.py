"""The flow-matching explorer (Chapter 10): moving u redraws the picture, the paths are the sampler's, bad inputs
are named."""
import base64

import pytest
import torch

from ddlearn import flow, oracles, schedules
from ddlearn.samplers import sample_flow
from ddlearn.widgets import flow_explorer

PATH = flow.FlowPath()
EXACT = oracles.named_mixture("ring8").velocity_model(PATH)


def shifted(x, t):
    return EXACT(x, t) + 0.3


def test_moving_u_redraws_and_the_fallback_renders():
    w = flow_explorer({"exact": EXACT, "shifted": shifted}, PATH, steps=4, n_points=40, n_trails=3, n_grid=5,
                      data=oracles.named_mixture("ring8").sample(50, generator=torch.Generator().manual_seed(1)))
    before = bytes(w.image.value)
    w.controls["step"].value = 2
    assert bytes(w.image.value) != before
    after = bytes(w.image.value)
    w.controls["step"].value = 4
    assert bytes(w.image.value) != after
    assert [round(u, 2) for u in w.us] == [1.0, 0.75, 0.5, 0.25, 0.0]
    png = base64.b64decode(w._repr_mimebundle_()["image/png"])
    assert png.startswith(b"\x89PNG")
    # the two fields differ by the shift everywhere, at every u
    assert abs(w.fields["shifted"] - w.fields["exact"] - 0.3).max() < 1e-5


def test_the_paths_are_the_samplers_states_from_the_same_noise():
    w = flow_explorer(EXACT, PATH, steps=5, n_points=30, n_grid=3, seed=3)
    states = w.states["model"]
    assert states.shape == (6, 30, 2)
    x_T = torch.randn(30, 2, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(torch.from_numpy(states[0]).float(), x_T)
    end = sample_flow(EXACT, x_T, PATH, 5, progress=False)
    assert torch.allclose(torch.from_numpy(states[-1]), end.double(), atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="models is empty"):
        flow_explorer({}, PATH)
    with pytest.raises(TypeError, match=r"models\['a'\] must be callable"):
        flow_explorer({"a": 3}, PATH)
    with pytest.raises(TypeError, match="path must be a flow path"):
        flow_explorer(EXACT, schedules.linear())
    with pytest.raises(ValueError, match=r"data must be 2-D points"):
        flow_explorer(EXACT, PATH, steps=2, n_points=4, n_grid=2, data=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="steps"):
        flow_explorer(EXACT, PATH, steps=0)
