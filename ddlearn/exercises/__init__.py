"""Exercise checkers for every chapter, in one registry keyed by exercise id.

In a chapter::

    answer = None          # your answer here
    check("01.2", answer)  # prints "Correct: ..." or "Not yet: <hint>"

Each exercise is registered once, with its solution living only inside its
checker (so a solution is never written twice, and a student copy of the
chapter needs no editing). Each chapter's checkers live in their own module,
``ddlearn/exercises/chNN.py``, imported at the bottom of this one. To add one
for your chapter (a new chapter: a new ``chNN.py``, added to that import)::

    from . import close, exercise

    @exercise("03.1", "Score of a Gaussian", hint="d/dx log N(x; m, s^2) = ...")
    def _(answer):
        expected = ...
        return close(answer, expected, what="the score")   # None means correct

A checker receives the reader's answer and returns ``None`` when it is right
or a short string saying what is wrong. It may raise; the error is reported as
"Not yet" with the message, never as a traceback. :func:`evaluate` returns a
:class:`Verdict` for tests; :func:`check` prints it for readers. The helpers
:func:`close`, :func:`whole` and :func:`not_callable` are shared by the checkers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

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


def whole(answer):
    """A one-element tensor or a whole float as an int (so 37, 37.0 and tensor(37) all count); else as given."""
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    return answer


def not_callable(answer, what: str) -> str | None:
    """``None`` if ``answer`` is a function, else a message naming ``what`` was expected."""
    return None if callable(answer) else f"{what} should be a function, got {type(answer).__name__}"


# ---- each chapter's checkers register themselves on import -------------------
from . import ch01, ch02, ch03, ch04, ch05, ch06, ch07  # noqa: F401
from . import ch09  # noqa: F401,E402  (Chapter 09)
from . import ch08  # noqa: F401,E402  (Chapter 08)
from . import ch10  # noqa: F401,E402  (Chapter 10)
