"""Exercise checkers for every chapter, in one registry keyed by exercise id.

In a chapter::

    answer = None          # your answer here
    check("01.2", answer)  # prints "Correct: ..." or "Not yet: <hint>"

Each exercise is registered once, with its solution living only inside its
checker (so a solution is never written twice, and a student copy of the
chapter needs no editing). To add one for your chapter::

    @exercise("03.1", "Score of a Gaussian", hint="d/dx log N(x; m, s^2) = ...")
    def _(answer):
        expected = ...
        return close(answer, expected, what="the score")   # None means correct

A checker receives the reader's answer and returns ``None`` when it is right
or a short string saying what is wrong. It may raise; the error is reported as
"Not yet" with the message, never as a traceback. :func:`evaluate` returns a
:class:`Verdict` for tests; :func:`check` prints it for readers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    checker: Callable[[Any], str | None]
    hint: str = ""


REGISTRY: dict[str, Exercise] = {}


class Verdict(NamedTuple):
    ok: bool
    message: str


def exercise(id: str, title: str, *, hint: str = ""):
    """Decorator registering ``checker(answer) -> None | problem`` under ``id`` ("CC.N")."""
    if not isinstance(id, str) or "." not in id:
        raise ValueError(f"exercise id must look like '01.2' (chapter.number), got {id!r}")

    def register(checker):
        if id in REGISTRY and REGISTRY[id].checker.__module__ != checker.__module__:
            raise ValueError(f"exercise id {id!r} is already registered by {REGISTRY[id].checker.__module__}")
        REGISTRY[id] = Exercise(id, title, checker, hint)
        return checker

    return register


def _get(id: str) -> Exercise:
    if id not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise ValueError(f"unknown exercise id {id!r}; known: {known}")
    return REGISTRY[id]


def evaluate(id: str, answer) -> Verdict:
    """Check ``answer`` for exercise ``id``; a :class:`Verdict` (ok, message), nothing printed."""
    ex = _get(id)
    hint = f" Hint: {ex.hint}" if ex.hint else ""
    if answer is None or answer is Ellipsis:
        return Verdict(False, f"Not yet ({id}, {ex.title}): no answer given yet.{hint}")
    try:
        problem = ex.checker(answer)
    except Exception as err:  # the reader's code failed: say so, do not crash the notebook
        problem = f"checking your answer raised {type(err).__name__}: {err}"
    if problem is None:
        return Verdict(True, f"Correct ({id}, {ex.title}).")
    return Verdict(False, f"Not yet ({id}, {ex.title}): {problem}.{hint}")


def check(id: str, answer) -> None:
    """Print whether ``answer`` solves exercise ``id`` ("Correct" or "Not yet: <hint>")."""
    print(evaluate(id, answer).message)


def hint(id: str) -> str:
    return _get(id).hint


# ---- helpers for writing checkers --------------------------------------------

def close(answer, expected, *, rtol: float = 1e-3, atol: float = 1e-6, what: str = "the value") -> str | None:
    """``None`` if ``answer`` matches ``expected`` (numbers or tensors) within tolerance, else a message."""
    if isinstance(answer, bool):
        return f"{what} should be a number, got a bool"
    try:
        a = torch.as_tensor(answer, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"{what} should be a number or a tensor, got {type(answer).__name__}"
    e = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != e.shape and a.numel() != e.numel():
        return f"{what} should have shape {tuple(e.shape)}, got {tuple(a.shape)}"
    a = a.reshape(e.shape)
    if not torch.isfinite(a).all():
        return f"{what} contains NaN or inf"
    if torch.allclose(a, e, rtol=rtol, atol=atol):
        return None
    if e.numel() == 1:
        direction = "too large" if a.item() > e.item() else "too small"
        return f"{what} is {direction} (got {a.item():.6g})"
    return f"{what} differs from the expected values (largest gap {float((a - e).abs().max()):.3g})"


def _whole(answer):
    """A one-element tensor or a whole float as an int (so 37, 37.0 and tensor(37) all count); else as given."""
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    return answer


def _callable(answer, what: str) -> str | None:
    return None if callable(answer) else f"{what} should be a function, got {type(answer).__name__}"


# ---- Chapter 01: the forward process ---------------------------------------

@exercise("01.1", "signal scale below 0.1",
          hint="sqrt(alpha_bar_t) is the factor in front of x_0; look at schedules.linear().alpha_bars")
def _(answer):
    from .schedules import linear

    answer = _whole(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return f"the answer is a timestep, a whole number; got {answer!r}"
    expected = int((linear().alpha_bars.sqrt() < 0.1).nonzero()[0])
    if answer == expected:
        return None
    return f"{answer} is {'too late' if answer > expected else 'too early'}: the first t with sqrt(alpha_bar_t) < 0.1"


@exercise("01.2", "two steps as one",
          hint="x_2 = sqrt(1-b2) (sqrt(1-b1) x_0 + sqrt(b1) e1) + sqrt(b2) e2; add the noise variances")
def _(answer):
    if (problem := _callable(answer, "merged_beta")) is not None:
        return problem
    for b1, b2 in [(0.1, 0.2), (1e-4, 0.02), (0.5, 0.5), (0.9, 0.01)]:
        got = answer(b1, b2)
        if (problem := close(got, 1 - (1 - b1) * (1 - b2), rtol=1e-6, what=f"merged_beta({b1}, {b2})")):
            return problem
    return None


@exercise("01.3", "recover the noise",
          hint="solve x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps for eps; schedule.alpha_bar(t) gives abar")
def _(answer):
    from .forward import q_sample
    from .schedules import cosine

    if (problem := _callable(answer, "recover_noise")) is not None:
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
    from .schedules import cosine

    expected = float(cosine().t_from_log_snr(0.0))
    return close(answer, expected, rtol=0, atol=1.0, what="t (within one step)")


@exercise("01.5", "how far x_T is from N(0, 1)",
          hint="KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - log s^2) / 2 with m = sqrt(abar_T) x_0, s^2 = 1 - abar_T")
def _(answer):
    from .schedules import linear

    ab = float(linear().alpha_bars[-1])
    x0 = 2.0  # a value at the edge of the data's range; x_0 = 1 makes the mean term cancel the variance term
    expected = 0.5 * ((1 - ab) + ab * x0 ** 2 - 1 - math.log(1 - ab))
    return close(answer, expected, rtol=1e-3, atol=1e-12, what="the KL in nats")


# ---- Chapter 05: fast samplers ----------------------------------------------

@exercise("05.1", "one DDIM step",
          hint="predict x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), then re-noise it to ab_s with the same eps")
def _(answer):
    if (problem := _callable(answer, "ddim_step")) is not None:
        return problem
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    for ab_t, ab_s in [(0.01, 0.2), (0.5, 0.9), (0.9, 1.0)]:
        x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        expected = math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps
        if (problem := close(answer(x, eps, ab_t, ab_s), expected, rtol=1e-6, atol=1e-9,
                             what=f"ddim_step(x, eps, {ab_t}, {ab_s})")):
            return problem
    return None


@exercise("05.2", "evaluations of DPM-Solver-3",
          hint="each of the first N - 1 steps evaluates the model 3 times; the last step, to the clean data, once")
def _(answer):
    answer = _whole(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return f"the answer is a whole number of model evaluations; got {answer!r}"
    return None if answer == 3 * (6 - 1) + 1 else f"{answer} is not it: count the evaluations of 6 steps"


@exercise("05.3", "the timestep of a noise level",
          hint="sigma = sqrt((1 - ab) / ab) gives ab = 1 / (1 + sigma^2); find t with schedule.alpha_bar(t) = ab, "
               "e.g. through the log-SNR -2 log(sigma) and schedule.t_from_log_snr")
def _(answer):
    from .samplers.spacing import t_from_sigma
    from .schedules import linear

    if (problem := _callable(answer, "t_of_sigma")) is not None:
        return problem
    sch = linear()
    for sigma in (0.02, 0.5, 1.0, 10.0, 100.0):
        got = answer(sch, sigma)
        if (problem := close(got, float(t_from_sigma(sch, sigma)), rtol=0, atol=0.5,
                             what=f"t_of_sigma(linear(), {sigma}) (within half a step)")):
            return problem
    return None


@exercise("05.4", "order from two errors",
          hint="error ~ C h^p: doubling the steps halves h, so the error falls by 2^p; p = log2(ratio)")
def _(answer):
    return close(answer, math.log2(4.0e-3 / 5.0e-4), rtol=0, atol=0.05, what="the order p")


# ---- Chapter 03: score matching and Langevin dynamics -------------------------

@exercise("03.1", "score of a Gaussian",
          hint="log N(x; mu, s^2) = -(x - mu)^2 / (2 s^2) + const; differentiate in x")
def _(answer):
    # the score of N(mu = 1.5, s = 0.5) at x = 0.7
    return close(answer, -(0.7 - 1.5) / 0.5 ** 2, what="the score at x = 0.7")


@exercise("03.2", "the denoising score matching target",
          hint="q(x_tilde | x0) = N(x0, sigma^2 I): its score in x_tilde is -(x_tilde - x0) / sigma^2")
def _(answer):
    problem = _callable(answer, "dsm_target")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    x0, xt = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)
    return close(answer(xt, x0, 0.3), -(xt - x0) / 0.3 ** 2, what="dsm_target(x_tilde, x0, 0.3)")


@exercise("03.3", "Langevin's stationary variance",
          hint="for N(0, s2) the chain is x' = (1 - eps/s2) x + sqrt(2 eps) z; a stationary v solves v = (1 - eps/s2)^2 v + 2 eps")
def _(answer):
    problem = _callable(answer, "stationary_variance")
    if problem:
        return problem
    for s2, eps in ((1.0, 0.1), (0.25, 0.01), (4.0, 0.5)):
        expected = 2 * eps / (1 - (1 - eps / s2) ** 2)  # = s2 / (1 - eps / (2 s2))
        bad = close(answer(s2, eps), expected, rtol=1e-6, what=f"stationary_variance({s2}, {eps})")
        if bad:
            return bad
    return None


# ---- Chapter 04: score SDEs ---------------------------------------------------

@exercise("04.1", "the sub-VP standard deviation",
          hint="sub-VP keeps VP's mean exp(-B/2) but its variance solves dv/du = -beta v + beta (1 - e^{-2B}); try v = (1 - e^{-B})^2")
def _(answer):
    from .sde import SubVPSDE

    problem = _callable(answer, "subvp_std")
    if problem:
        return problem
    sde = SubVPSDE()
    u = torch.tensor([0.01, 0.1, 0.5, 1.0], dtype=torch.float64)
    got = torch.stack([torch.as_tensor(answer(float(v)), dtype=torch.float64).reshape(()) for v in u])
    return close(got, sde.std(u), rtol=1e-5, what="subvp_std(u) at u = 0.01, 0.1, 0.5, 1")


@exercise("04.2", "the probability-flow drift of VE",
          hint="VE has f = 0 and g^2 = d sigma^2/du = 2 log(sigma_max/sigma_min) sigma(u)^2; the PF-ODE is dx/du = f - g^2/2 score")
def _(answer):
    from .sde import VESDE

    problem = _callable(answer, "ve_pf_drift")
    if problem:
        return problem
    sde = VESDE(0.01, 50.0)
    g = torch.Generator().manual_seed(0)
    x, s = torch.randn(8, 2, generator=g, dtype=torch.float64), torch.randn(8, 2, generator=g, dtype=torch.float64)
    return close(answer(x, 0.4, s), sde.pf_ode_drift(x, 0.4, s), rtol=1e-6,
                 what="ve_pf_drift(x, 0.4, score) for sigma_min=0.01, sigma_max=50")


@exercise("04.3", "bits per dimension of the uniform model",
          hint="a model that spreads its density evenly over [-1, 1] gives every one of the 17 grey levels probability 1/17")
def _(answer):
    return close(answer, math.log2(17), rtol=1e-4, what="the bits per dimension")


# ---- Chapter 06: guidance and inverse problems --------------------------------

@exercise("06.1", "the paper's w in ddlearn's scale",
          hint="Ho & Salimans write (1 + w) eps_c - w eps_u; ddlearn writes eps_u + scale (eps_c - eps_u). Expand both")
def _(answer):
    return close(answer, 3.0, rtol=1e-9, what="the ddlearn scale for the paper's w = 2")


@exercise("06.2", "posterior mean of a Gaussian",
          hint="condition a Gaussian: mean = prior mean + K (y - prior mean), K = prior variance / (prior variance + noise variance)")
def _(answer):
    from .operators import Matrix
    from .oracles import gaussian
    from .restoration import exact_posterior

    post = exact_posterior(gaussian([0.0], 1.0), Matrix([[1.0]], noise=0.5), torch.tensor([1.0]))
    return close(answer, post.means[0, 0], rtol=1e-6, what="the posterior mean of x given y = 1")


@exercise("06.3", "the null-space projection for a mask",
          hint="a mask is a projection: A, its adjoint and its pseudo-inverse are all multiplication by the mask")
def _(answer):
    from .operators import Mask

    problem = _callable(answer, "project(x0, y, mask)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    op = Mask.random_pixels(8, 0.5, generator=g)
    x0 = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
    y = op(torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64))
    return close(answer(x0, y, op.mask.double()), op.project(x0, y), rtol=1e-9,
                 what="project(x0, y, mask) on random 8x8 masks")


# ---- Chapter 02: DDPM ---------------------------------------------------------

@exercise("02.1", "the posterior variance at the first step",
          hint="tilde-beta_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t); use t = 1 of schedules.linear()")
def _(answer):
    from .schedules import linear

    s = linear()
    return close(answer, s.betas[1] * (1 - s.alpha_bars[0]) / (1 - s.alpha_bars[1]), rtol=1e-6,
                 what="tilde-beta at t = 1")


@exercise("02.2", "the reverse mean from eps",
          hint="mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t)")
def _(answer):
    from .forward import q_posterior
    from .param import eps_to_x0
    from .schedules import linear

    problem = _callable(answer, "mu(x_t, eps, t, schedule)")
    if problem:
        return problem
    s = linear()
    g = torch.Generator().manual_seed(0)
    for t in (1, 100, 999):
        x_t, eps = torch.randn(4, 2, generator=g, dtype=torch.float64), torch.randn(4, 2, generator=g, dtype=torch.float64)
        mean, _, _ = q_posterior(eps_to_x0(x_t, eps, s.alpha_bars[t]), x_t, t, s)
        problem = close(answer(x_t, eps, t, s), mean, rtol=1e-6, what=f"mu at t = {t}")
        if problem:
            return problem
    return None


@exercise("02.3", "how unequal the bound's weights are",
          hint="losses.vlb_weights(schedule) gives w_t; divide the weight at t = 1 by the weight at t = 999")
def _(answer):
    from .losses import vlb_weights
    from .schedules import linear

    w = vlb_weights(linear())
    return close(answer, w[1] / w[999], rtol=1e-3, what="w_1 / w_999")


@exercise("02.4", "one ancestral step",
          hint="x0_hat from eps (param.eps_to_x0), then the posterior mean (forward.q_posterior), "
               "plus sqrt(beta_t) * noise when t > 0")
def _(answer):
    from .forward import q_posterior
    from .param import eps_to_x0
    from .schedules import linear

    problem = _callable(answer, "step(model, x_t, t, schedule, noise)")
    if problem:
        return problem
    s = linear()
    g = torch.Generator().manual_seed(1)

    def model(x, t):
        return torch.tanh(x) * 0.5

    for t in (0, 1, 500, 999):
        x_t, z = torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, 2, generator=g, dtype=torch.float64)
        eps = model(x_t, t)
        mean, _, _ = q_posterior(eps_to_x0(x_t, eps, s.alpha_bars[t]), x_t, t, s)
        want = mean + (s.betas[t].sqrt() * z if t > 0 else 0)
        problem = close(answer(model, x_t, t, s, z), want, rtol=1e-6, what=f"x_(t-1) at t = {t}")
        if problem:
            return problem
    return None
