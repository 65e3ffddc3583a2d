"""Samplers: every one a small function with the same signature (the contract:
:class:`ddlearn.samplers.base.Sampler`, written once there).

    sample_NAME(model, x_T, schedule, steps, *, generator=None, callback=None,
                progress=True, **method_options) -> x_0

One module a family:

* :mod:`.base`        the contract, :class:`Step`, :class:`CountedModel`, the cost each
  sampler declares (``evaluations``, ``steps_for``);
* :mod:`.spacing`     which timesteps a sampler visits (``spacing=``; :func:`time_grid`);
* :mod:`.ddim`        THE DDIM-family loop with its ``predict`` hook (posterior samplers,
  GDP and data consistency are hooks on it) and :func:`sample_ddim`;
* :mod:`.ancestral`   DDPM's ancestral sampler (Chapter 02);
* :mod:`.dpm_solver`, :mod:`.edm`   fast ODE solvers (Chapter 05);
* :mod:`.reverse_sde`, :mod:`.ode`  the score-SDE samplers and the probability-flow ODE (Chapter 04);
* :mod:`.flow`        flow matching's velocity ODE, Euler and Heun (Chapter 10);
* :mod:`.compare`     equal-budget runs of the fast samplers (Chapter 05).

Wrap the model in :class:`CountedModel` to read the number of evaluations (``.nfe``).
"""
from .base import CountedModel, Sampler, Step, evaluations, steps_for
from .spacing import SPACINGS, time_grid
from .ddim import ddim_loop, model_predict, sample_ddim
from .ancestral import sample_ancestral
from .dpm_solver import sample_dpm_solver, sample_dpm_solver_multistep, sample_dpm_solver_pp
from .edm import sample_euler, sample_heun
from .reverse_sde import sample_euler_maruyama, sample_pc
from .ode import sample_pf_ode, pf_ode_encode, log_likelihood, bits_per_dim
from .flow import flow_grid, sample_flow

__all__ = ["CountedModel", "Sampler", "Step", "evaluations", "steps_for", "SPACINGS", "time_grid",
           "ddim_loop", "model_predict", "sample_ddim", "sample_ancestral", "sample_dpm_solver",
           "sample_dpm_solver_multistep", "sample_dpm_solver_pp", "sample_euler", "sample_heun", "sample_euler_maruyama", "sample_pc",
           "sample_pf_ode", "pf_ode_encode", "log_likelihood", "bits_per_dim", "flow_grid", "sample_flow"]
