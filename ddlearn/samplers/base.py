"""The sampler contract, written once, and what every sampler shares.

* :class:`Sampler` - the signature every ``sample_NAME`` has (a Protocol);
* :class:`Step` - what ``callback`` receives after each step;
* :func:`declare` - each sampler declares its cost in model evaluations next to
  its definition; :func:`evaluations` and :func:`steps_for` read it (the cost of
  N steps, the steps that fit a budget: Chapter 05, the benchmarks);
* :class:`CountedModel` - count evaluations; :func:`eval_eps` - call the model
  with t as a tensor and check what it returned; :func:`check_inputs`,
  :func:`check_steps`, :func:`progress_bar`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from .. import _checks, frames
from ..schedules import Schedule


class Sampler(Protocol):
    """What every sampler takes and returns::

        sample_NAME(model, x_T, schedule, steps, *, generator=None, callback=None,
                    progress=True, **method_options) -> x_0

    * ``model(x_t, t)`` returns the eps prediction, ``t`` a float tensor (B,) in the
      schedule's timestep units (:mod:`ddlearn.schedules`); a trained network, an
      exact oracle (:mod:`ddlearn.oracles`) and a guided model all qualify.
    * ``x_T`` (B, ...) is the starting noise; a sampler never draws it, so one x_T
      can be handed to every sampler for a fair comparison.
    * ``schedule``: a :class:`~ddlearn.schedules.Schedule` (the score-SDE samplers
      also take an :class:`~ddlearn.sde.SDE` as the model's time frame).
    * ``steps``: the number of sampler steps (ancestral sampling walks all T
      timesteps and takes none); the timesteps come from ``spacing=``
      (:mod:`.spacing`) where a sampler has a choice.
    * ``generator`` drives any fresh noise (:func:`ddlearn.config.randn_like`);
      ``callback(Step)`` is called after every step; ``progress`` shows a tqdm bar.
    * Returns the clean sample, x's shape, dtype and device.

    Each sampler also carries ``evaluations(steps, **options)``, its cost in model
    evaluations (see :func:`declare`).
    """

    evaluations: Callable[..., int | None]

    def __call__(self, model, x_T: torch.Tensor, schedule, steps: int, *, generator=None, callback=None,
                 progress: bool = True, **options) -> torch.Tensor: ...


def declare(evals_per_step: int | Callable[..., int] | None = None, *,
            evaluations: Callable[..., int | None] | None = None):
    """Decorator: a sampler declares its cost in model evaluations, next to its definition.

    ``evals_per_step=k`` (or a function of the sampler's options giving k): k evaluations a step, except the last step to the clean
    data, which is first order (one evaluation), so N steps cost ``k (N - 1) + 1``.
    ``evaluations=f``: ``f(steps, **options)`` gives the total for samplers that
    do not fit that rule (predictor-corrector; an adaptive ODE solver returns None).
    """
    if (evals_per_step is None) == (evaluations is None):
        raise TypeError("declare takes exactly one of evals_per_step= and evaluations=")
    if evaluations is None:
        per = evals_per_step if callable(evals_per_step) else _checks.positive_int("evals_per_step", evals_per_step)

        def evaluations(steps, **options):
            k = per(**options) if callable(per) else per
            return k * (steps - 1) + 1

    def wrap(fn):
        fn.evaluations = evaluations
        return fn
    return wrap


def evaluations(sampler, steps: int, **options) -> int | None:
    """Model evaluations of ``steps`` steps of ``sampler`` with ``options``, as the sampler declared them."""
    _checks.positive_int("steps", steps)
    f = getattr(sampler, "evaluations", None)
    if f is None:
        raise TypeError(f"{getattr(sampler, '__name__', sampler)!r} declares no evaluations "
                        "(decorate it with ddlearn.samplers.base.declare)")
    return f(steps, **options)


def steps_for(sampler, budget: int, **options) -> int:
    """The most steps whose evaluations fit ``budget`` (at least 1)."""
    _checks.positive_int("budget", budget)
    steps = 1
    while evaluations(sampler, steps + 1, **options) <= budget:
        steps += 1
    return steps


@dataclass
class Step:
    """One sampler step, as handed to ``callback``.

    ``i``: step number (0 first); ``t``: the timestep just left (float, schedule
    units); ``x``: the state after the step; ``x0``: the model's prediction of
    the clean sample at this step (None where a method has none).
    """

    i: int
    t: float
    x: torch.Tensor
    x0: torch.Tensor | None = None


class CountedModel:
    """Wrap a model to count its evaluations: ``m = CountedModel(model); ...; m.nfe``."""

    def __init__(self, model):
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
        self.model, self.nfe = model, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.model(x, t)


def check_inputs(model, x_T: torch.Tensor, schedule: Schedule, *, generator=None, callback=None) -> None:
    """What every sampler checks before its first step: a callable model, a finite non-empty x_T,
    a Schedule with the model's own T (:func:`ddlearn._checks.same_T`: a network trained
    for T = 1000 read at t in 0..49 would see the wrong noise levels, silently), and
    ``generator`` / ``callback`` (None or the right kind, refused now rather than at a later step)."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t) -> eps, got {type(model).__name__}")
    _checks.tensor("x_T", x_T, ndim=(2, 3, 4, 5))
    if not isinstance(schedule, Schedule):
        hint = (" (the sampler's grid); a model of another time frame runs on one through "
                "ddlearn.param.adapt(model, frame, prediction=..., to=schedule)" if frames.is_frame(schedule) else "")
        raise TypeError(f"schedule must be a ddlearn.schedules.Schedule{hint}, got {type(schedule).__name__}")
    _checks.same_T(model, schedule.T, "schedule")
    _checks.generator("generator", generator)
    _checks.callback("callback", callback)


def check_steps(steps, T: int) -> int:
    """Steps must be a whole number in [1, T]."""
    _checks.positive_int("steps", steps)
    if steps > T:
        raise ValueError(f"steps must be at most the schedule's T={T}, got {steps}")
    return steps


def eval_eps(model, x: torch.Tensor, t: float, *, step: int) -> torch.Tensor:
    """Call ``model(x, t)`` with t as a float tensor (B,); check what comes back.

    A wrong shape or non-finite output is a ValueError naming the step and t.
    Gradients flow where the caller enables them (posterior sampling needs them).
    """
    tt = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
    return _checks.model_output(model(x, tt), x, where=f"step {step} (t={t:g})")


def progress_bar(iterable, *, progress: bool, desc: str, total: int | None = None):
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)
