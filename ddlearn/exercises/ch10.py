"""Exercise checkers of Chapter 10 (flow matching and rectified flow), registered in :mod:`ddlearn.exercises`.

Every checker compares against something the chapter's answer is not written from: the mixture's exact score
(not its velocity) for 10.1, the library's flow sampler for 10.2, the mixture oracle's velocity for 10.3.
"""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable, whole


def _points(seed: int, n: int = 16) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@exercise("10.1", "the score from a velocity",
          hint="on the straight path x = (1-u) x0 + u eps and v = eps - x0: eliminate x0 to get eps from x and "
               "v, then the score is what Chapter 03 says it is for a noise of standard deviation u")
def _(answer):
    from ..flow import FlowPath
    from ..oracles import named_mixture

    if (problem := not_callable(answer, "velocity_to_score")) is not None:
        return problem
    mix, path = named_mixture("two"), FlowPath()
    x = _points(10)
    for u in (0.05, 0.3, 0.5, 0.8, 0.97):
        t = torch.full((x.shape[0],), u * (path.T - 1))
        v = mix.velocity_model(path)(x, t)
        # the exact score of p_u in the path's own state: x = n x_vp, so grad_x log p = grad_vp log p / n
        n = math.sqrt((1 - u) ** 2 + u ** 2)
        expected = mix.score(x / n, ((1 - u) / n) ** 2) / n
        if (problem := close(answer(x, v, u), expected, rtol=1e-6, atol=1e-8,
                             what=f"velocity_to_score(x, v, u={u})")):
            return problem
    return None


@exercise("10.2", "one Euler step of the flow ODE",
          hint="dx/du = v(x, u), and the model's time input is the timestep t = u (T - 1) for every item; "
               "the step goes from u to u_next (smaller: towards the data)")
def _(answer):
    from ..flow import FlowPath
    from ..oracles import named_mixture
    from ..samplers.flow import sample_flow

    if (problem := not_callable(answer, "euler_step")) is not None:
        return problem
    path = FlowPath()
    model = named_mixture("grid9").velocity_model(path)
    x = _points(11)
    for u, u_next in ((1.0, 0.75), (0.5, 0.3), (0.1, 0.0)):
        expected = sample_flow(model, x, path, 1, grid=torch.tensor([u, u_next]), progress=False)
        if (problem := close(answer(model, x, u, u_next), expected, rtol=1e-6, atol=1e-9,
                             what=f"euler_step(model, x, {u}, {u_next})")):
            return problem
    return None


@exercise("10.3", "the marginal velocity of one Gaussian",
          hint="x_u = (1-u) x0 + u eps is Gaussian jointly with x0 and with eps; the velocity is "
               "E[eps | x_u] - E[x0 | x_u], two Gaussian conditional means (covariance over variance)")
def _(answer):
    from ..flow import FlowPath
    from ..oracles import gaussian

    if (problem := not_callable(answer, "gaussian_velocity")) is not None:
        return problem
    path = FlowPath(T=11)
    for mu, c in (([0.5, -1.0], 0.09), ([-0.2, 0.3], 1.5)):
        exact = gaussian(torch.tensor(mu, dtype=torch.float64), c).velocity_model(path)
        x = _points(12)
        for k in (0, 2, 5, 8, 10):       # u = 0 and u = 1 included: the formula holds at both ends
            u = k / 10
            expected = exact(x, torch.full((x.shape[0],), float(k)))
            got = answer(x, u, torch.tensor(mu, dtype=torch.float64), c)
            if (problem := close(got, expected, rtol=1e-6, atol=1e-9,
                                 what=f"gaussian_velocity(x, u={u}, mu={mu}, c={c})")):
                return problem
    return None


@exercise("10.4", "Euler steps of a straight flow",
          hint="along one path of this flow, is the velocity the same at every u? What does one Euler step "
               "from u = 1 to u = 0 then compute, exactly?")
def _(answer):
    answer = whole(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return f"the answer is a whole number of Euler steps; got {answer!r}"
    return None if answer == 1 else f"{answer} is not it: run sample_flow with fewer steps and look at the error"


@exercise("10.5", "flow matching as a weighted eps-loss",
          hint="write eps from x and v on the straight path (it is linear in v at fixed x and u), do the same "
               "for the model's eps-hat and v-hat, and subtract")
def _(answer):
    if (problem := not_callable(answer, "loss_weight")) is not None:
        return problem
    for u in (0.0, 0.1, 0.5, 0.75, 0.9):
        if (problem := close(answer(u), 1.0 / (1.0 - u) ** 2, rtol=1e-6, atol=1e-9, what=f"loss_weight({u})")):
            return problem
    return None
