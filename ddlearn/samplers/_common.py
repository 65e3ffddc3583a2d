"""What every sampler shares: the model call with its checks, the callback record, NFE counting."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _checks
from ..schedules import Schedule


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


def check_inputs(model, x_T: torch.Tensor, schedule: Schedule) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t) -> eps, got {type(model).__name__}")
    _checks.tensor("x_T", x_T, ndim=(2, 3, 4, 5))
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddlearn.schedules.Schedule, got {type(schedule).__name__}")


def check_steps(steps, T: int) -> int:
    """Steps must be a whole number in [1, T]."""
    _checks.positive_int("steps", steps)
    if steps > T:
        raise ValueError(f"steps must be at most the schedule's T={T}, got {steps}")
    return steps


@torch.no_grad()
def eval_eps(model, x: torch.Tensor, t: float, *, step: int) -> torch.Tensor:
    """Call ``model(x, t)`` with t as a float tensor (B,); check what comes back.

    A wrong shape or non-finite output is a ValueError naming the step and t.
    """
    tt = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
    out = model(x, tt)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model returned {type(out).__name__} at step {step} (t={t:g}); expected a tensor")
    if out.shape != x.shape:
        raise ValueError(f"model returned shape {tuple(out.shape)} at step {step} (t={t:g}); "
                         f"expected the input's shape {tuple(x.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError(f"model returned non-finite values at step {step} (t={t:g})")
    return out.to(x.dtype)


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Fresh N(0, I) noise shaped like x, drawn on the generator's device, returned on x's.

    A CPU generator then drives sampling on a GPU too, with the same numbers as on the CPU.
    """
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def progress_bar(iterable, *, progress: bool, desc: str, total: int | None = None):
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)
