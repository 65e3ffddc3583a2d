"""Score-field and SDE-trajectory explorers: a control change changes the picture."""
import pytest
import torch

from ddlearn import oracles, schedules
from ddlearn import sde as S
from ddlearn.widgets.score import score_field_explorer, sde_trajectory_explorer


def test_score_field_explorer_redraws_on_sigma_change():
    mix, lin = oracles.named_mixture("two"), schedules.linear()
    w = score_field_explorer(mix, mix.eps_model(lin), lin, sigmas=(1.0, 0.3, 0.1), n_grid=9, n_paths=3,
                             langevin_steps=10)
    before = w.image.value
    w.controls["level"].value = 2
    assert w.image.value != before
    # exact and learned (here: the exact eps-model through the schedule) fields agree
    assert abs(w.fields["exact"][2] - w.fields["learned"][2]).max() < 1e-4  # float32 grid
    assert w.static_png()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="at least one score"):
        score_field_explorer()


def test_sde_trajectory_explorer_scrubs():
    sde, mix = S.VPSDE(), oracles.named_mixture("ring8")
    x_T = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    w = sde_trajectory_explorer(sde.oracle_model(mix), sde, x_T, steps=12)
    before = w.image.value
    w.controls["step"].value = 3
    assert w.image.value != before
    ode, sdep = w.runs["probability-flow ODE"], w.runs["reverse SDE"]
    assert len(ode) == len(sdep) == 12
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        sde_trajectory_explorer(sde.oracle_model(mix), sde, torch.randn(4, 3))
