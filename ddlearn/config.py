"""Run-time configuration: fast mode, device choice, explicit random generators.

Fast mode (``DDLEARN_FAST=1``) shrinks training steps, data and sample counts
so that every notebook still runs every cell in seconds; CI runs the book
this way. Full mode (the default) is what a reader gets.

The library never sets a global seed: every random function takes a
``torch.Generator``; :func:`generator` makes one from a seed, and
:func:`randn` / :func:`randn_like` are the one way the library draws Gaussian
noise: on the generator's device, then moved to where the data lives, so a CPU
generator gives the same numbers whether the model runs on the CPU or a GPU.
"""
from __future__ import annotations

import os

import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_fast() -> bool:
    """True when ``DDLEARN_FAST`` is set to 1/true/yes/on (read on every call)."""
    value = os.environ.get("DDLEARN_FAST", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"DDLEARN_FAST must be one of 1/0/true/false/yes/no/on/off, got {value!r}")


def pick(full, fast):
    """``fast`` in fast mode, ``full`` otherwise: ``n_steps = pick(2000, 50)``."""
    return fast if is_fast() else full


def device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the ``DDLEARN_DEVICE`` environment variable) forces one,
    e.g. ``"cpu"`` for bit-for-bit reproducible runs.
    """
    prefer = prefer or os.environ.get("DDLEARN_DEVICE")
    if prefer:
        if not isinstance(prefer, str):
            raise TypeError(f"prefer must be a device name such as 'cpu', got {type(prefer).__name__}")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def generator(seed: int | torch.Generator | None = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (a generator passes through).

    ``None`` gives a generator seeded from system entropy. Same seed, same CPU
    result, whatever else the process has drawn.
    """
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    elif isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {type(seed).__name__}")
    else:
        g.manual_seed(seed)
    return g


def randn(shape, *, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
          device: str | torch.device = "cpu") -> torch.Tensor:
    """N(0, I) noise of ``shape``, drawn on ``generator``'s device and returned on ``device``.

    Same generator state, same numbers, wherever the result goes. With no
    generator, torch's global generator of ``device`` draws it.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    draw_on = generator.device if generator is not None else torch.device(device)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=draw_on).to(device)


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, I) noise shaped like ``x`` (its dtype, on its device), drawn from ``generator`` (see :func:`randn`)."""
    return randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
