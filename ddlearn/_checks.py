"""Input checks shared by every public function.

Each raises ``TypeError`` / ``ValueError`` naming the argument, what was
expected and what came, so a reader never meets a bare shape mismatch deep
inside torch.
"""
from __future__ import annotations

import torch


def tensor(name: str, x, *, ndim: int | tuple[int, ...] | None = None, finite: bool = True,
           floating: bool = True, empty: bool = False) -> torch.Tensor:
    """Check that ``x`` is a (floating, finite, non-empty) tensor with ``ndim`` dimensions.

    ``empty=False`` refuses a tensor with no values (an empty batch, B = 0), which
    would otherwise fail deep inside torch or scikit-learn, or give NaN means.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    if not empty and x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); it needs at least one item")
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


def boolean(name: str, value) -> bool:
    """``value`` must be True or False (a string such as "no" is truthy, so it is refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def generator(name: str, g) -> torch.Generator | None:
    """``g`` must be None or a ``torch.Generator`` (make one with ``ddlearn.config.generator(seed)``)."""
    if g is not None and not isinstance(g, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None (make one with ddlearn.config.generator(seed)), "
                        f"got {type(g).__name__}")
    return g


def callback(name: str, f):
    """``f`` must be None or callable (checked before the first step, not after it)."""
    if f is not None and not callable(f):
        raise TypeError(f"{name} must be None or callable as {name}(step), got {type(f).__name__}")
    return f


def seed(name: str, value) -> int:
    """A seed for numpy / scikit-learn: an int in [0, 2**32 - 1] (None, floats and negatives are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 2 ** 32:
        raise ValueError(f"{name} must be in [0, 2**32 - 1], got {value}")
    return value


def model_T(model) -> int | None:
    """The number of timesteps a model was trained for, if it says: its ``T``, else its ``schedule.T``,
    else the same of the model it wraps (``.model``: CountedModel, guidance wrappers, PatchModel);
    None for a model that does not say (a plain function, an exact SDE oracle)."""
    for _ in range(16):  # wrappers of wrappers; a cycle would loop forever
        T = getattr(model, "T", None)
        if isinstance(T, int) and not isinstance(T, bool):
            return T
        T = getattr(getattr(model, "schedule", None), "T", None)
        if isinstance(T, int) and not isinstance(T, bool):
            return T
        model = getattr(model, "model", None)
        if model is None:
            return None
    return None


def same_T(model, T: int, frame: str = "schedule") -> None:
    """A model trained for ``model_T(model)`` timesteps must run on a ``frame`` with that many:
    t = 500 means a different noise level under another T, and nothing else would notice."""
    mT = model_T(model)
    if mT is not None and mT != T:
        raise ValueError(f"the model was trained for T={mT} timesteps but the {frame} has T={T}; "
                         f"sample it with a {frame} of T={mT} (e.g. the one pretrained.load returns)")


def as_tensor(name: str, value, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.as_tensor(value)`` that names ``name`` when ``value`` cannot be one (a string, a dict, ...)
    instead of torch's "new(): invalid data type 'str'"."""
    if isinstance(value, (str, bytes, dict, set)) or value is None:
        raise TypeError(f"{name} must be a tensor, an array or a number, got {type(value).__name__} {value!r:.40}")
    try:
        return torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a tensor, an array or a number, got {type(value).__name__}: {exc}") from None


def in_range(name: str, x: torch.Tensor, low: float = -1.0, high: float = 1.0, *, slack: float = 1e-3,
             hint: str = "rescale [0, 255] data with x / 127.5 - 1, [0, 1] data with 2 x - 1") -> torch.Tensor:
    """Values of ``x`` must lie in [low - slack, high + slack]: the book's images are in [-1, 1], and data in
    [0, 255] would otherwise run, and give numbers that mean nothing (the default slack forgives float rounding)."""
    lo, hi = x.min().item(), x.max().item()
    if lo < low - slack or hi > high + slack:
        raise ValueError(f"{name} must hold values in [{low:g}, {high:g}], got values from {lo:g} to {hi:g} ({hint})")
    return x


def real(name: str, x: torch.Tensor) -> torch.Tensor:
    """``x`` must be real: a complex tensor's imaginary part would otherwise be dropped without a word."""
    if x.is_complex():
        raise TypeError(f"{name} must be a real tensor, got the complex dtype {x.dtype} (its imaginary part would be "
                        f"dropped; pass x.real or x.abs() if that is what you mean)")
    return x


def options(where: str, given: dict, allowed) -> dict:
    """Keyword options ``given`` must all be ``allowed``: a misspelt one (``sigm=3``) is refused by name instead
    of being ignored while the default is used."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        have = ", ".join(sorted(allowed)) or "none"
        raise TypeError(f"{where} got unknown keyword argument(s) {', '.join(unknown)}; it takes: {have}")
    return given


def not_empty(name: str, values, *, what: str = "values"):
    """A list given to pick some of many must hold at least one: ``[]`` is not "all" (None is)."""
    if values is not None and hasattr(values, "__len__") and len(values) == 0:
        raise ValueError(f"{name} is an empty list; give at least one of the {what}, or None for all of them")
    return values

