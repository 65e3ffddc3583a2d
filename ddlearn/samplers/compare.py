"""Run the fast samplers at an equal budget of model evaluations (Chapter 05, its benchmark and widget).

Each sampler declares its cost next to its definition (:func:`ddlearn.samplers.base.declare`);
:func:`ddlearn.samplers.steps_for` picks the most steps that fit a budget, so
methods are compared at (nearly) the same cost rather than the same number of steps.
Every entry runs with the sampler's default grid (chosen by ``benchmarks/samplers.py``, see
:mod:`ddlearn.samplers.spacing`): what a reader gets by calling it with defaults. Euler is not
listed: on the same grid it is DDIM (:mod:`ddlearn.samplers.edm`).
"""
from __future__ import annotations

from .. import _checks
from .base import CountedModel, steps_for
from .ddim import sample_ddim
from .dpm_solver import sample_dpm_solver, sample_dpm_solver_multistep, sample_dpm_solver_pp
from .edm import sample_heun

# name -> (sampler, options); no grid given: each runs on its default
FAST_SAMPLERS = {
    "DDIM": (sample_ddim, {}),
    "Heun (EDM)": (sample_heun, {}),
    "DPM-Solver-2": (sample_dpm_solver, {"order": 2}),
    "DPM-Solver-3": (sample_dpm_solver, {"order": 3}),
    "DPM-Solver++(2M)": (sample_dpm_solver_pp, {}),
    "DPM-Solver-2M": (sample_dpm_solver_multistep, {"order": 2}),
}


def run_at_budget(name: str, model, x_T, schedule, budget: int, *, callback=None, progress=False, **options):
    """Sample with the named fast sampler within ``budget`` evaluations; returns (x, evaluations used)."""
    _checks.choice("sampler", name, tuple(FAST_SAMPLERS))
    fn, defaults = FAST_SAMPLERS[name]
    opts = {**defaults, **options}
    counted = CountedModel(model)
    steps = min(steps_for(fn, budget, **opts), schedule.T)
    x = fn(counted, x_T, schedule, steps, callback=callback, progress=progress, **opts)
    return x, counted.nfe
