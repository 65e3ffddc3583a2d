"""Run the fast samplers at an equal budget of model evaluations (Chapter 05, its benchmark and widget).

A sampler that spends k evaluations per step, with a first-order last step
(see :mod:`ddlearn.samplers.spacing`), costs k (N - 1) + 1 evaluations for N
steps; :func:`steps_for` picks the most steps that fit a budget, so methods
are compared at (nearly) the same cost rather than the same number of steps.
"""
from __future__ import annotations

from .. import _checks
from ._common import CountedModel
from .ddim import sample_ddim
from .dpm_solver import sample_dpm_solver, sample_dpm_solver_pp
from .edm import sample_euler, sample_heun

# name -> (sampler, options, evaluations per step)
FAST_SAMPLERS = {
    "DDIM": (sample_ddim, {"spacing": "trailing"}, 1),
    "Euler (EDM)": (sample_euler, {"spacing": "karras"}, 1),
    "Heun (EDM)": (sample_heun, {"spacing": "karras"}, 2),
    "DPM-Solver-2": (sample_dpm_solver, {"order": 2, "spacing": "logsnr"}, 2),
    "DPM-Solver-3": (sample_dpm_solver, {"order": 3, "spacing": "logsnr"}, 3),
    "DPM-Solver++(2M)": (sample_dpm_solver_pp, {"spacing": "logsnr"}, 1),
}


def steps_for(budget: int, per_step: int) -> int:
    """The most steps N with per_step (N - 1) + 1 <= budget (at least 1)."""
    _checks.positive_int("budget", budget)
    _checks.positive_int("per_step", per_step)
    return 1 + (budget - 1) // per_step


def run_at_budget(name: str, model, x_T, schedule, budget: int, *, callback=None, progress=False, **options):
    """Sample with the named fast sampler within ``budget`` evaluations; returns (x, evaluations used)."""
    _checks.choice("sampler", name, tuple(FAST_SAMPLERS))
    fn, defaults, per = FAST_SAMPLERS[name]
    counted = CountedModel(model)
    steps = min(steps_for(budget, per), schedule.T)
    x = fn(counted, x_T, schedule, steps, callback=callback, progress=progress, **{**defaults, **options})
    return x, counted.nfe
