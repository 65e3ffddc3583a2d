"""Exercise checkers of Chapter 04 (score SDEs), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable


@exercise("04.1", "the sub-VP standard deviation",
          hint="solve the linear ODE for v(u) with v(0) = 0 (an integrating factor, or guess a "
               "function of B(u) and check it); the standard deviation is the square root of v")
def _(answer):
    from ..sde import SubVPSDE

    problem = not_callable(answer, "subvp_std")
    if problem:
        return problem
    sde = SubVPSDE()
    u = torch.tensor([0.01, 0.1, 0.5, 1.0], dtype=torch.float64)
    got = torch.stack([torch.as_tensor(answer(float(v)), dtype=torch.float64).reshape(()) for v in u])
    return close(got, sde.std(u), rtol=1e-5, what="subvp_std(u) at u = 0.01, 0.1, 0.5, 1")


@exercise("04.2", "the probability-flow drift of VE",
          hint="the probability-flow ODE of section 4 needs the SDE's drift f and diffusion g; "
               "for VE, g^2 is the rate at which sigma^2 grows in u")
def _(answer):
    from ..sde import VESDE

    problem = not_callable(answer, "ve_pf_drift")
    if problem:
        return problem
    sde = VESDE(0.01, 50.0)
    g = torch.Generator().manual_seed(0)
    x, s = torch.randn(8, 2, generator=g, dtype=torch.float64), torch.randn(8, 2, generator=g, dtype=torch.float64)
    return close(answer(x, 0.4, s), sde.pf_ode_drift(x, 0.4, s), rtol=1e-6,
                 what="ve_pf_drift(x, 0.4, score) for sigma_min=0.01, sigma_max=50")


@exercise("04.3", "bits per dimension of the uniform model",
          hint="a uniform density on [-1, 1] gives every dequantisation bin the same "
               "probability; bits per dimension is the negative log2-likelihood of one value")
def _(answer):
    return close(answer, math.log2(17), rtol=1e-4, what="the bits per dimension")


@exercise("04.4", "the probability-flow velocity of Gaussian data under VE",
          hint="VE has no drift term, so only the score part of the probability-flow velocity is left; "
               "VE adds independent Gaussian noise, so Gaussian data stay Gaussian with their variances added "
               "(section 1's table)")
def _(answer):
    from ..sde import VESDE, GaussianData

    problem = not_callable(answer, "gauss_ve_velocity")
    if problem:
        return problem
    truth = GaussianData(VESDE(0.01, 50.0), mean=0.5, std=0.3)
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    for u in (0.05, 0.5, 0.9):
        problem = close(torch.as_tensor(answer(x, u), dtype=torch.float64).reshape(x.shape),
                        truth.pf_velocity(x, u), rtol=1e-6,
                        what=f"gauss_ve_velocity(x, {u}) for data N(0.5, 0.3^2) under VE(0.01, 50)")
        if problem:
            return problem
    return None
