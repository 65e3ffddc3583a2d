"""Exercise checkers of Chapter 07 (GDP: restoration with a generative diffusion prior), registered in
:mod:`ddlearn.exercises`."""
from __future__ import annotations

import torch

from . import close, exercise, not_callable


@exercise("07.1", "the released code's guidance scale in ddlearn's units",
          hint="differentiate the code's loss in a, count the 1/2 factors and the mean over N "
               "values, and match it to scale * (a - b)")
def _(answer):
    return close(answer, 2000 / (2 * 3 * 256 * 256), rtol=1e-3, what="ddlearn's scale for the code's 2000")


@exercise("07.2", "predict, then run: what averaging K samples does",
          hint="think of what the mean of many posterior samples estimates, and what happens to "
               "details that differ from sample to sample")
def _(answer):
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        return "answer with a pair of words: (what PSNR does, what sharpness does), each 'up' or 'down'"
    a = tuple(str(v).strip().lower() for v in answer)
    if a[0] != "up":
        return "look at the PSNR column again: averaging lowers the mean squared error"
    if a[1] != "down":
        return "look at the sharpness column again: averaged samples lose gradient energy"
    return None


@exercise("07.3", "the GDP-x0 step for 4x super-resolution",
          hint="compare in image space: what does A^+ y look like for a 4x downsampling, and "
               "what does A^+ A do to x0? The checker compares yours with gdp_predict")
def _(answer):
    from .. import schedules
    from ..operators import Downsample
    from ..restoration.gdp import Guide, gdp_predict

    problem = not_callable(answer, "gdp_shift(x0, y, scale)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(7)
    x0 = torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    op = Downsample(4)
    y = op(torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64) * 2 - 1)
    ab = float(schedules.linear(1000).alpha_bars[400])
    # a model whose clean estimate is exactly x0 at this alpha-bar: eps = (x - sqrt(ab) x0) / sqrt(1 - ab)
    x = ab ** 0.5 * x0 + (1 - ab) ** 0.5 * torch.randn(x0.shape, generator=g, dtype=torch.float64)

    def model(xt, t):
        return (xt - ab ** 0.5 * x0) / (1 - ab) ** 0.5

    _, _, want = gdp_predict(model, [Guide(op, y)], scale=0.3, on="x0", clip=None)(x, 400.0, ab, 0)
    return close(answer(x0, y, 0.3), want, rtol=1e-6, atol=1e-9, what="gdp_shift(x0, y, 0.3) on random 16x16 images")


@exercise("07.4", "the exposure that best explains a dark image",
          hint="the loss is a quadratic in f: set its derivative to zero")
def _(answer):
    problem = not_callable(answer, "best_f(u0, uy)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(3)
    u0 = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)
    uy = 0.27 * u0 + 0.02 * torch.randn(u0.shape, generator=g, dtype=torch.float64)
    return close(answer(u0, uy), (u0 * uy).sum() / (u0 * u0).sum(), rtol=1e-6,
                 what="best_f(u0, uy) on a random image darkened to 0.27 with noise")


@exercise("07.5", "predict, then run: low light with the exposure frozen at the guess",
          hint="the restoration has to explain the measurement through the frozen operator: write the "
               "low-light model for the truth and for the restoration, and set the two measurements equal")
def _(answer):
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        return "answer with a pair: ('brighter' or 'darker', the factor of the restored to the true intensity)"
    word, factor = answer
    if str(word).strip().lower() != "darker":
        return ("compare the frozen guess with the range the task draws the true exposure from: to explain the "
                "same y, must the restored intensity be above or below the truth's?")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)):
        return f"the factor should be a number, got {type(factor).__name__}"
    if not 0.3 <= float(factor) <= 0.7:
        return ("write y once for the truth (its exposure) and once for the restoration (the frozen exposure), "
                "set them equal and solve for the ratio of the intensities, at the middle of the task's range")
    return None
