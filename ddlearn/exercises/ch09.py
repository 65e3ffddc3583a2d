"""Exercise checkers of Chapter 09 (diffusion models in medical imaging), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable


@exercise("09.1", "the measurement at the state's noise level",
          hint="A is linear, so apply it to both terms of x_t; with orthonormal rows, what is "
               "the covariance of A eps?")
def _(answer):
    # Song et al. (2022) noise y to the level of x_t: y_t = sqrt(ab) y + sqrt(1 - ab) A z. At alpha-bar 0.64, with
    # A having orthonormal rows (A A^T = I), each entry of A z is N(0, 1): the pair (factor on y, noise sd).
    try:
        a = [float(v) for v in answer]
    except (TypeError, ValueError):
        return f"give a pair (factor on y, noise standard deviation), got {answer!r}"
    if len(a) != 2:
        return f"give two numbers (factor on y, noise standard deviation), got {len(a)}"
    return close(torch.tensor(a), torch.tensor([math.sqrt(0.64), math.sqrt(1 - 0.64)]), rtol=1e-6,
                 what="(factor on y, noise sd) at alpha-bar 0.64")


@exercise("09.2", "how much signal survives to t0",
          hint="take the log of the product, sum the arithmetic series of the betas, then undo "
               "the log; compare with the schedule's alpha_bars")
def _(answer):
    from ..schedules import get

    ab = get("linear", T=1000).alpha_bars[250].item()
    return close(answer, math.sqrt(ab), rtol=1e-3, what="sqrt(alpha-bar) at t0 = 250")


@exercise("09.3", "predict, then run: the consistency of the projection sampler",
          hint="what does weight 1 do to the measured part of the state, and a smaller weight? "
               "Then ask what the final projection does")
def _(answer):
    # predict-then-run: which weight leaves the output consistent with y (to float precision)? (1.0)
    return close(answer, 1.0, rtol=1e-9, what="the weight whose output explains the measurement exactly")


@exercise("09.4", "score-MRI's hard data consistency by hand",
          hint="use the centred, orthonormal 2-D FFT of the operator; keep the measured k-space "
               "values from y and the rest from x, and transform back")
def _(answer):
    from ..operators.medical import KSpace, kspace_mask
    from ..restoration.consistency import data_consistency

    problem = not_callable(answer, "dc(x, y, mask)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    rows = kspace_mask(16, 4, kind="equispaced")[:, 0]
    rows = ((rows + rows[(16 - torch.arange(16)) % 16]) > 0).float()  # a mirror-symmetric mask (see 09.6)
    mask = rows[:, None].expand(16, 16).clone()
    op = KSpace(mask)
    x = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64)
    y = op(torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64))
    out = answer(x, y, mask.double())
    if not isinstance(out, torch.Tensor):
        return f"dc should return a tensor, got {type(out).__name__}"
    if out.is_complex():
        return "dc should return a real image (take the real part)"
    return close(out, data_consistency(op, x, y), rtol=1e-6, atol=1e-9, what="dc(x, y, mask)")
