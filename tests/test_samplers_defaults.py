"""The samplers' default grids are what their docstrings (and spacing.py's table) say, and the fast-sampler
list, the widget and Chapter 05 use those defaults (chosen by ``benchmarks/samplers.py``)."""
import inspect
import re

import pytest
import torch

from ddlearn.oracles import named_mixture
from ddlearn.samplers import (SPACINGS, sample_ddim, sample_dpm_solver, sample_dpm_solver_multistep,
                              sample_dpm_solver_pp, sample_euler, sample_heun, spacing, time_grid)
from ddlearn.samplers.compare import FAST_SAMPLERS
from ddlearn.schedules import linear

SAMPLERS = [sample_ddim, sample_euler, sample_heun, sample_dpm_solver, sample_dpm_solver_pp, sample_dpm_solver_multistep]
# what the docs (spacing.py's table, the docstrings, Chapter 05) say the defaults are
DOCUMENTED = {"sample_ddim": "quadratic", "sample_euler": "quadratic", "sample_heun": "trailing",
              "sample_dpm_solver": "logsnr", "sample_dpm_solver_pp": "logsnr", "sample_dpm_solver_multistep": "logsnr"}
SCHEDULE = linear(1000)


def default(fn, name="spacing"):
    return inspect.signature(fn).parameters[name].default


def documented(fn):
    found = re.findall(r'[Dd]efault grid: ``spacing="(\w+)"``', fn.__doc__ or "")
    assert len(found) == 1, f"{fn.__name__}'s docstring must state its default grid once, found {found}"
    return found[0]


@pytest.mark.parametrize("fn", SAMPLERS, ids=lambda f: f.__name__)
def test_default_grid_is_the_documented_one(fn):
    assert default(fn) in SPACINGS
    assert documented(fn) == default(fn) == DOCUMENTED[fn.__name__]
    assert "benchmarks/samplers.py" in fn.__doc__, f"{fn.__name__} must say which measurement chose its default"


def test_spacing_module_lists_every_default():
    """spacing.py's docstring has the table of defaults; it must agree with the signatures."""
    for fn in SAMPLERS:
        row = re.search(rf"``{fn.__name__}``\s+``\"(\w+)\"``", spacing.__doc__)
        assert row, f"spacing.py's table has no row for {fn.__name__}"
        assert row.group(1) == default(fn), (fn.__name__, row.group(1), default(fn))


@pytest.mark.parametrize("fn", SAMPLERS, ids=lambda f: f.__name__)
def test_calling_without_spacing_uses_the_default_grid(fn):
    """Omitting spacing= visits the default grid's timesteps and gives the same samples as naming it."""
    model = named_mixture("ring8").eps_model(SCHEDULE)
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    seen = []
    a = fn(model, x_T, SCHEDULE, 6, progress=False, callback=lambda s: seen.append(s.t))
    b = fn(model, x_T, SCHEDULE, 6, progress=False, spacing=default(fn))
    assert torch.equal(a, b)
    assert seen == time_grid(SCHEDULE, 6, default(fn)).tolist()


def test_fast_samplers_run_with_the_defaults():
    """compare.FAST_SAMPLERS (Chapter 05, its widget) sets no grid of its own: what readers get by default."""
    for name, (fn, opts) in FAST_SAMPLERS.items():
        assert "spacing" not in opts, f"{name} overrides the default grid"
        assert set(opts) <= {"order"}, (name, opts)


def test_euler_takes_ddims_grid_and_is_ddim_with_defaults():
    """Euler in sigma is DDIM on the same grid (Chapter 05), so the two share a default and agree with it."""
    assert default(sample_euler) == default(sample_ddim)
    model = named_mixture("tight").eps_model(SCHEDULE)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = sample_euler(model, x_T, SCHEDULE, 7, progress=False)
    b = sample_ddim(model, x_T, SCHEDULE, 7, progress=False)
    assert torch.allclose(a, b, atol=1e-9)


def test_fast_samplers_list_the_multistep_noise_form():
    """Chapter 05's list has DPM-Solver-2M (the winner on tight modes) next to DPM-Solver++(2M)."""
    assert FAST_SAMPLERS["DPM-Solver-2M"] == (sample_dpm_solver_multistep, {"order": 2})
    assert FAST_SAMPLERS["DPM-Solver++(2M)"] == (sample_dpm_solver_pp, {})
