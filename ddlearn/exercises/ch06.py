"""Exercise checkers of Chapter 06 (guidance and inverse problems), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import torch

from . import close, exercise, not_callable


@exercise("06.1", "the paper's w in ddlearn's scale",
          hint="write both guided predictions as combinations of eps_c and eps_u and match the "
               "coefficients")
def _(answer):
    return close(answer, 3.0, rtol=1e-9, what="the ddlearn scale for the paper's w = 2")


@exercise("06.2", "posterior mean of a Gaussian",
          hint="the prior and the measurement are both Gaussian in x: multiply them (or "
               "condition the joint Gaussian of (x, y)) and read off the mean")
def _(answer):
    from ..operators import Matrix
    from ..oracles import gaussian
    from ..restoration import exact_posterior

    post = exact_posterior(gaussian([0.0], 1.0), Matrix([[1.0]], noise=0.5), torch.tensor([1.0]))
    return close(answer, post.means[0, 0], rtol=1e-6, what="the posterior mean of x given y = 1")


@exercise("06.3", "the null-space projection for a mask",
          hint="for a mask, what are the adjoint and the pseudo-inverse of A? Then A^+ y + (I - "
               "A^+ A) x0 needs no matrix at all")
def _(answer):
    from ..operators import Mask

    problem = not_callable(answer, "project(x0, y, mask)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    op = Mask.random_pixels(8, 0.5, generator=g)
    x0 = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
    y = op(torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64))
    return close(answer(x0, y, op.mask.double()), op.project(x0, y), rtol=1e-9,
                 what="project(x0, y, mask) on random 8x8 masks")
