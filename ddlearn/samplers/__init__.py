"""Samplers: every one a small function with the same signature.

    sample_NAME(model, x_T, schedule, steps, *, generator=None, callback=None,
                progress=True, **method_options) -> x_0

* ``model(x_t, t)`` returns the eps prediction, with ``t`` a float tensor of
  shape (B,) in the schedule's timestep units (:mod:`ddlearn.schedules`). A
  trained network and an exact oracle (:mod:`ddlearn.oracles`) both qualify.
* ``x_T`` is the starting noise (B, ...); the sampler never draws it itself,
  so the same x_T can be handed to every sampler for a fair comparison.
* ``steps`` is the number of sampler steps (ancestral sampling uses every
  timestep and takes none).
* ``generator`` drives any fresh noise; ``callback`` receives a
  :class:`Step` (i, t, x, x0) after every step, which is what the widgets
  animate; ``progress`` shows a tqdm bar.
* Wrap the model in :class:`CountedModel` to read the number of network
  evaluations (``.nfe``) afterwards.
"""
from ._common import CountedModel, Step

__all__ = ["CountedModel", "Step"]

# Fast samplers (Chapter 05): every one takes ``spacing=`` (see .spacing).
from .spacing import SPACINGS, timesteps  # noqa: E402
from .ddim import sample_ddim  # noqa: E402
from .dpm_solver import sample_dpm_solver, sample_dpm_solver_pp  # noqa: E402
from .edm import sample_euler, sample_heun  # noqa: E402

__all__ += ["SPACINGS", "timesteps", "sample_ddim", "sample_dpm_solver", "sample_dpm_solver_pp",
            "sample_euler", "sample_heun"]

# Score-SDE samplers (Chapter 04): the model's frame is a Schedule or an SDE; see .sde.
from .sde import sample_euler_maruyama, sample_pc  # noqa: E402
from .ode import sample_pf_ode, pf_ode_encode, log_likelihood, bits_per_dim  # noqa: E402

__all__ += ["sample_euler_maruyama", "sample_pc", "sample_pf_ode", "pf_ode_encode", "log_likelihood",
            "bits_per_dim"]

# DDPM ancestral sampling (Chapter 02): every one of the T steps, no ``steps`` argument.
from .ancestral import sample_ancestral  # noqa: E402

__all__ += ["sample_ancestral"]
