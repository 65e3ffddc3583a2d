"""Exercise checkers of Chapter 01 (the forward process), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import math

import torch

from . import close, exercise, not_callable, whole


@exercise("01.1", "signal scale below 0.1",
          hint="the signal scale is the factor in front of x_0 in the closed form; the schedule object "
               "holds every step's alpha-bar (index i holds step t = i + 1)")
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
          hint="write x_2 in terms of x_0 and two independent noises, then ask which single step "
               "gives the same mean and variance; check your function at beta2 = 0")
def _(answer):
    if (problem := not_callable(answer, "merged_beta")) is not None:
        return problem
    for b1, b2 in [(0.1, 0.2), (1e-4, 0.02), (0.5, 0.5), (0.9, 0.01)]:
        got = answer(b1, b2)
        if (problem := close(got, 1 - (1 - b1) * (1 - b2), rtol=1e-6, what=f"merged_beta({b1}, {b2})")):
            return problem
    return None


@exercise("01.3", "recover the noise",
          hint="the closed form links x_0, x_t and the noise: solve it for the noise; "
               "schedule.alpha_bar(t) gives each item's alpha-bar, shape it to broadcast over (B, ...)")
def _(answer):
    from ..forward import q_sample
    from ..param import x0_to_eps
    from ..schedules import cosine

    if (problem := not_callable(answer, "recover_noise")) is not None:
        return problem
    sch = cosine()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    t = torch.tensor([0, 1, 10, 100, 400, 700, 900, 990])
    x_t = q_sample(x0, t, eps, sch)
    expected = x0_to_eps(x_t, x0, sch.alpha_bar(t))  # the library's version; equals eps
    return close(answer(x0, x_t, t, sch), expected, rtol=1e-4, atol=1e-6, what="recover_noise(x0, x_t, t, schedule)")


@exercise("01.4", "where the cosine schedule's SNR is 0.1",
          hint="express SNR = 0.1 as a condition on the log-SNR (natural log); the schedule object can invert "
               "its log-SNR")
def _(answer):
    from ..schedules import cosine

    expected = float(cosine().t_from_log_snr(math.log(0.1)))
    return close(answer, expected, rtol=0, atol=1.0, what="t (within one step)")


@exercise("01.5", "how far x_T is from N(0, 1)",
          hint="section 5 gives the KL per dimension; alpha-bar_T is the last entry of the schedule's "
               "alpha_bars, and the mean of q(x_T | x_0) depends on x_0")
def _(answer):
    from ..schedules import linear

    ab = float(linear().alpha_bars[-1])
    x0 = 2.0  # a value at the edge of the data's range; x_0 = 1 makes the mean term cancel the variance term
    expected = 0.5 * ((1 - ab) + ab * x0 ** 2 - 1 - math.log(1 - ab))
    return close(answer, expected, rtol=1e-3, atol=1e-12, what="the KL in nats")


@exercise("01.6", "the transition q(x_t | x_s)",
          hint="run the chain from x_s instead of x_0: the steps s+1..t merge as in 01.2; return a pair "
               "(scale, variance), and test it at s = t and at alpha_bar_s = 1")
def _(answer):
    if (problem := not_callable(answer, "transition")) is not None:
        return problem
    for ab_s, ab_t in [(0.9, 0.5), (1.0, 0.3), (0.5, 0.5), (0.99, 1e-3), (0.2, 0.05)]:
        got = answer(ab_s, ab_t)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return f"transition({ab_s}, {ab_t}) should return a pair (scale, variance), got {got!r}"
        ratio = ab_t / ab_s
        if (problem := close(got[0], math.sqrt(ratio), rtol=1e-6, what=f"the scale of transition({ab_s}, {ab_t})")):
            return problem
        if (problem := close(got[1], 1 - ratio, rtol=1e-6, atol=1e-9,
                             what=f"the variance of transition({ab_s}, {ab_t})")):
            return problem
    return None


@exercise("01.7", "noise without shrink on the cosine schedule",
          hint="the chain without shrink adds independent noises; what happens to their variances? "
               "Which of the cosine schedule's betas are largest?")
def _(answer):
    from ..schedules import cosine

    return close(whole(answer), float(cosine().betas.sum()), rtol=0.01, what="the added variance")
