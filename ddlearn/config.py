"""Run-time configuration: fast mode, device choice, explicit random generators.

Fast mode (``DDLEARN_FAST=1``) shrinks training steps, data and sample counts
so that every notebook still runs every cell in seconds; CI runs the book
this way. Full mode (the default) is what a reader gets.

The library never sets a global seed: every random function takes a
``torch.Generator``; :func:`generator` makes one from a seed, and
:func:`randn` / :func:`randn_like` are the one way the library draws Gaussian
noise: on the generator's device, then moved to where the data lives, so a CPU
generator gives the same numbers whether the model runs on the CPU or a GPU.

**Threads.** The library runs torch with one intra-op thread unless asked
otherwise (``DDLEARN_THREADS=N``, ``DDLEARN_THREADS=auto`` for torch's own
choice of one a core, or :func:`set_threads` at run time). The book's
operations are small: a second thread saves little on a quiet machine, and
beside another busy process (a browser, a second notebook) threads that wait
for a core make them many times slower (``benchmarks/threads.py``; the
README quotes its table). The policy is applied once, here, when the library
is first imported: :func:`set_threads`, plus ``OMP_NUM_THREADS`` for the
processes the library starts (the book's kernels, the benchmarks' workers)
when the environment does not set it already.
"""
from __future__ import annotations

import os

#: Intra-op threads when neither :func:`set_threads` nor ``DDLEARN_THREADS`` says otherwise
#: (chosen from ``benchmarks/threads.py``: see the README's "Threads").
DEFAULT_THREADS = 1


def threads_requested() -> int | None:
    """The thread count ``DDLEARN_THREADS`` asks for: an int >= 1, or None for "auto" (torch's default).

    Unset or empty: :data:`DEFAULT_THREADS`.
    """
    value = os.environ.get("DDLEARN_THREADS", "").strip().lower()
    if value == "":
        return DEFAULT_THREADS
    if value == "auto":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValueError(f"DDLEARN_THREADS must be a whole number >= 1 or 'auto', got {value!r}")


# Before torch starts: child processes and OpenMP/BLAS pools read OMP_NUM_THREADS (an explicit setting wins).
if threads_requested() is not None and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(threads_requested())

import torch  # noqa: E402  (after the thread setting above)

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


def set_threads(n: int | str | None = None) -> int:
    """Use ``n`` intra-op threads in this process (``"auto"``: torch's default, one a core); returns the count.

    ``None`` applies the policy: ``DDLEARN_THREADS``, else :data:`DEFAULT_THREADS`. The library calls
    this once when it is imported; call it again to change your mind (e.g. ``set_threads(2)`` for a
    long training on an otherwise idle machine).
    """
    if n is None:
        n = threads_requested()
    elif n == "auto":
        n = None
    elif isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int >= 1, 'auto' or None, got {n!r}")
    elif n < 1:
        raise ValueError(f"n must be an int >= 1, 'auto' or None, got {n}")
    torch.set_num_threads(n if n is not None else (os.cpu_count() or 1))
    return torch.get_num_threads()


set_threads()


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
