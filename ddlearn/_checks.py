"""Input checks shared by every public function.

Each raises ``TypeError`` / ``ValueError`` naming the argument, what was
expected and what came, so a reader never meets a bare shape mismatch deep
inside torch.
"""
from __future__ import annotations

import torch


def tensor(name: str, x, *, ndim: int | tuple[int, ...] | None = None, finite: bool = True,
           floating: bool = True) -> torch.Tensor:
    """Check that ``x`` is a (floating, finite) tensor with ``ndim`` dimensions."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    if finite and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return x


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def number(name: str, value, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """Check a real number, optionally inside [low, high] (or (low, high] with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def timesteps(name: str, t, T: int, batch: int | None = None, *, integer: bool = False) -> torch.Tensor:
    """Turn ``t`` (int, float or tensor) into a float64 tensor of shape (batch,) in [0, T-1].

    A scalar is broadcast to the batch. ``integer=True`` also requires whole numbers.
    """
    if isinstance(t, bool):
        raise TypeError(f"{name} must be a number or a tensor of timesteps, got bool")
    if isinstance(t, (int, float)):
        t = torch.tensor([float(t)], dtype=torch.float64)
    elif isinstance(t, torch.Tensor):
        t = t.detach().to(dtype=torch.float64)
        if t.ndim == 0:
            t = t.reshape(1)
        if t.ndim != 1:
            raise ValueError(f"{name} must be a scalar or a 1-D tensor of shape (B,), got shape {tuple(t.shape)}")
    else:
        raise TypeError(f"{name} must be a number or a torch.Tensor, got {type(t).__name__}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains non-finite values")
    if t.numel() and (t.min() < 0 or t.max() > T - 1):
        raise ValueError(
            f"{name} must lie in [0, {T - 1}] (the schedule's T={T} timesteps, 0 the least noisy), "
            f"got values from {t.min().item():g} to {t.max().item():g}")
    if integer and not torch.equal(t, t.round()):
        raise ValueError(f"{name} must hold whole timesteps for this function, got fractional values")
    if batch is not None:
        if t.numel() == 1:
            t = t.expand(batch)
        elif t.numel() != batch:
            raise ValueError(f"{name} has {t.numel()} entries but the batch has {batch} items")
    return t


def model_output(out, x: torch.Tensor, *, where: str, what: str = "model") -> torch.Tensor:
    """Check what a model (or score function) returned for input ``x``: a tensor of x's shape, all finite.

    ``where`` says when it was called (``"step 3 (t=999)"``, ``"u=0.5"``), so
    the error points at the step that failed. Returns ``out`` in x's dtype.
    """
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{what} returned {type(out).__name__} at {where}; expected a tensor")
    if out.shape != x.shape:
        raise ValueError(f"{what} returned shape {tuple(out.shape)} at {where}; "
                         f"expected the input's shape {tuple(x.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError(f"{what} returned non-finite values at {where}")
    return out.to(x.dtype)


def same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the same shape as {name_a} {tuple(a.shape)}, got {tuple(b.shape)}")


def choice(name: str, value, options) -> str:
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(repr(o) for o in options)}")
    return value
