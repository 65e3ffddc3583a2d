"""Exercise checkers of Chapter 01 (the forward process), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable, whole


@exercise("01.1", "signal scale below 0.1",
          hint="sqrt(alpha_bar_t) is the factor in front of x_0; look at schedules.linear().alpha_bars "
               "(index i holds step t = i + 1)")
def _(answer):
    from ..schedules import linear

    answer = whole(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return f"the answer is an index, a whole number; got {answer!r}"
    expected = int((linear().alpha_bars.sqrt() < 0.1).nonzero()[0])
    if answer == expected:
        return None
    return (f"{answer} is {'too late' if answer > expected else 'too early'}: the first index i with "
            f"sqrt(alpha_bars[i]) < 0.1")


@exercise("01.2", "two steps as one",
          hint="x_2 = sqrt(1-b2) (sqrt(1-b1) x_0 + sqrt(b1) e1) + sqrt(b2) e2; add the noise variances")
def _(answer):
    if (problem := not_callable(answer, "merged_beta")) is not None:
        return problem
    for b1, b2 in [(0.1, 0.2), (1e-4, 0.02), (0.5, 0.5), (0.9, 0.01)]:
        got = answer(b1, b2)
        if (problem := close(got, 1 - (1 - b1) * (1 - b2), rtol=1e-6, what=f"merged_beta({b1}, {b2})")):
            return problem
    return None


@exercise("01.3", "recover the noise",
          hint="solve x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps for eps; schedule.alpha_bar(t) gives abar")
def _(answer):
    from ..forward import q_sample
    from ..schedules import cosine

    if (problem := not_callable(answer, "recover_noise")) is not None:
        return problem
    sch = cosine()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    t = torch.tensor([0, 1, 10, 100, 400, 700, 900, 990])
    x_t = q_sample(x0, t, eps, sch)
    return close(answer(x0, x_t, t, sch), eps, rtol=1e-4, atol=1e-6, what="recover_noise(x0, x_t, t, schedule)")


@exercise("01.4", "where the cosine schedule's SNR is 1",
          hint="SNR = 1 means log-SNR = 0; schedules.cosine().log_snr or .t_from_log_snr")
def _(answer):
    from ..schedules import cosine

    expected = float(cosine().t_from_log_snr(0.0))
    return close(answer, expected, rtol=0, atol=1.0, what="t (within one step)")


@exercise("01.5", "how far x_T is from N(0, 1)",
          hint="KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - log s^2) / 2 with m = sqrt(abar_T) x_0, s^2 = 1 - abar_T")
def _(answer):
    from ..schedules import linear

    ab = float(linear().alpha_bars[-1])
    x0 = 2.0  # a value at the edge of the data's range; x_0 = 1 makes the mean term cancel the variance term
    expected = 0.5 * ((1 - ab) + ab * x0 ** 2 - 1 - math.log(1 - ab))
    return close(answer, expected, rtol=1e-3, atol=1e-12, what="the KL in nats")
