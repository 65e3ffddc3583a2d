r"""Noise schedules, and the book's one time convention.

The time convention
-------------------
A discrete schedule has ``T`` steps. **Timestep ``t`` is an index in
``0 .. T-1``; 0 is the least noisy step, ``T-1`` the noisiest.** Index ``t``
holds

* ``betas[t]``     the variance added by the step x_{t-1} -> x_t,
* ``alphas[t]``    = 1 - betas[t],
* ``alpha_bars[t]`` = prod_{s <= t} alphas[s], so that
  :math:`q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)`.

The clean data x_0 sits "before" index 0 (alpha-bar = 1). This is the
convention of Ho et al. (2020) shifted by one so that array index = timestep,
the same as diffusers' ``alphas_cumprod[t]``.

Models take ``t`` as a **float** tensor of shape ``(B,)`` in ``[0, T-1]``.
Fractional t is allowed: :meth:`Schedule.alpha_bar` interpolates
``log alpha_bar`` linearly between grid points (exact on the grid, monotone
between), so continuous-time samplers (Chapters 04-05) use the same schedule
and the same networks. Continuous SDE time ``u`` in [0, 1]
(:mod:`ddlearn.sde`) maps to ``t = u * (T - 1)``.

Equivalent noise level: ``sigmas[t] = sqrt((1 - alpha_bar) / alpha_bar)`` is
the noise level of the variance-exploding view ``x_t / sqrt(alpha_bar) = x_0 +
sigma * eps`` (Karras et al. 2022); the signal-to-noise ratio is
``snr = alpha_bar / (1 - alpha_bar) = 1 / sigma**2``.

All arrays are float64 tensors of length T, so that 1 - alpha_bar stays
accurate near t = 0; cast with ``.float()`` where a network needs float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from . import _checks

NAMES = ("linear", "cosine", "sigmoid")


@dataclass(frozen=True)
class Schedule:
    """A discrete noise schedule: everything a sampler needs, derived from ``betas``.

    Build one with :func:`linear`, :func:`cosine`, :func:`sigmoid` or :func:`get`.
    """

    betas: torch.Tensor
    name: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        b = _checks.tensor("betas", self.betas, ndim=1)
        if b.numel() < 1:
            raise ValueError("betas must hold at least one step (T >= 1), got an empty tensor")
        if (b <= 0).any() or (b >= 1).any():
            raise ValueError(f"betas must lie in (0, 1), got values from {b.min().item():g} to {b.max().item():g}")
        object.__setattr__(self, "betas", b.detach().to(torch.float64).clone())

    # ---- the grid -------------------------------------------------------
    @property
    def T(self) -> int:
        return self.betas.numel()

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    @property
    def alpha_bars_prev(self) -> torch.Tensor:
        """alpha_bar at t-1 (1 for t = 0, the clean data)."""
        return torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])

    @property
    def sigmas(self) -> torch.Tensor:
        """Variance-exploding noise level sqrt((1 - alpha_bar) / alpha_bar)."""
        ab = self.alpha_bars
        return torch.sqrt((1.0 - ab) / ab)

    @property
    def snr(self) -> torch.Tensor:
        ab = self.alpha_bars
        return ab / (1.0 - ab)

    @property
    def log_snr(self) -> torch.Tensor:
        ab = self.alpha_bars
        return torch.log(ab) - torch.log1p(-ab)

    # ---- continuous t ---------------------------------------------------
    def alpha_bar(self, t) -> torch.Tensor:
        """alpha_bar at (possibly fractional) timesteps ``t`` in [0, T-1], float64.

        Linear interpolation of ``log alpha_bar`` between grid points.
        """
        tt = _checks.timesteps("t", t, self.T)
        log_ab = torch.log(self.alpha_bars)
        lo = tt.floor().long().clamp(max=self.T - 1)
        hi = (lo + 1).clamp(max=self.T - 1)
        w = tt - lo.to(torch.float64)
        # exact on the grid (exp(log a) can miss a by an ulp), interpolated between grid points
        out = torch.where(w == 0, self.alpha_bars[lo], torch.exp((1 - w) * log_ab[lo] + w * log_ab[hi]))
        if isinstance(t, torch.Tensor) and t.ndim == 0:
            return out.reshape(())
        return out

    def sigma(self, t) -> torch.Tensor:
        """Variance-exploding noise level at (fractional) t."""
        ab = self.alpha_bar(t)
        return torch.sqrt((1.0 - ab) / ab)

    def log_snr_at(self, t) -> torch.Tensor:
        ab = self.alpha_bar(t)
        return torch.log(ab) - torch.log1p(-ab)

    # ---- the time-frame protocol (:mod:`ddlearn.frames`) -------------------
    def coefs(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t = alpha x_0 + sigma eps at (fractional) t: (sqrt(alpha_bar), sqrt(1 - alpha_bar)), float64."""
        ab = self.alpha_bar(t)
        return ab.sqrt(), (1.0 - ab).sqrt()

    def log_snr_range(self) -> tuple[float, float]:
        """(log-SNR at t = T-1, log-SNR at t = 0): the noise levels this schedule covers."""
        lam = self.log_snr
        return lam[-1].item(), lam[0].item()

    def input_scale(self, t) -> torch.Tensor:
        """1: a DDPM model is fed x_t itself, already the variance-preserving state."""
        return torch.ones_like(self.alpha_bar(t))

    def t_from_log_snr(self, lam) -> torch.Tensor:
        """The (fractional) timestep whose log-SNR is ``lam`` (inverse of :meth:`log_snr_at`).

        Clamped to [0, T-1]; log-SNR decreases with t, and between grid points
        the inverse follows the same interpolation as :meth:`alpha_bar`.
        """
        if isinstance(lam, (bool, str)):
            raise TypeError(f"lam must be a number or a tensor of log-SNR values, got {type(lam).__name__}")
        try:
            lam = torch.as_tensor(lam, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"lam must be a number or a tensor of log-SNR values, got {type(lam).__name__}") from err
        if torch.isnan(lam).any():
            raise ValueError("lam contains NaN; log-SNR values must be numbers (+-inf clamp to t = 0 / T-1)")
        # log alpha_bar as a function of lambda: log ab = -softplus(-lambda)
        target = -torch.nn.functional.softplus(-lam)
        log_ab = torch.log(self.alpha_bars)  # decreasing in t
        # searchsorted needs increasing values
        neg = -log_ab
        idx = torch.searchsorted(neg, -target.reshape(-1)).clamp(1, self.T - 1)
        lo, hi = idx - 1, idx
        w = (target.reshape(-1) - log_ab[lo]) / (log_ab[hi] - log_ab[lo])
        t = (lo.to(torch.float64) + w).clamp(0, self.T - 1)
        return t.reshape(lam.shape)

    def __repr__(self) -> str:
        # T is shown once, from the grid, even when params repeats it
        args = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "T")
        return f"Schedule({self.name}: T={self.T}{', ' + args if args else ''})"


def _betas_from_alpha_bar(alpha_bar_fn, T: int, max_beta: float) -> torch.Tensor:
    """betas_t = 1 - abar(t+1)/abar(t) on the grid t/T, clipped at ``max_beta``."""
    t = torch.arange(T + 1, dtype=torch.float64) / T
    ab = alpha_bar_fn(t)
    betas = 1.0 - ab[1:] / ab[:-1]
    return betas.clamp(max=max_beta)


def check_schedule(schedule, name: str = "schedule") -> Schedule:
    """``schedule`` itself if it is a :class:`Schedule`, else a TypeError naming ``name``."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"{name} must be a ddlearn.schedules.Schedule, got {type(schedule).__name__}")
    return schedule


def linear(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """Betas linearly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020).

    The defaults are the paper's for T = 1000. For other T the same *total*
    noise is kept only if you rescale the betas by 1000 / T yourself.
    """
    _checks.positive_int("T", T)
    _checks.number("beta_start", beta_start, low=0, low_open=True, high=1)
    _checks.number("beta_end", beta_end, low=0, low_open=True, high=1)
    if beta_end >= 1:
        raise ValueError(f"beta_end must be < 1, got {beta_end}")
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return Schedule(betas, "linear", {"T": T, "beta_start": beta_start, "beta_end": beta_end})


def cosine(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2) (Nichol & Dhariwal 2021).

    Betas are clipped at ``max_beta`` = 0.999 as in the paper, which keeps the
    last step finite.
    """
    _checks.positive_int("T", T)
    _checks.number("s", s, low=0)
    _checks.number("max_beta", max_beta, low=0, low_open=True, high=1)

    def f(u):
        return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = _betas_from_alpha_bar(lambda u: f(u) / f(torch.zeros(())), T, max_beta)
    return Schedule(betas, "cosine", {"T": T, "s": s})


def sigmoid(T: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0,
            max_beta: float = 0.999) -> Schedule:
    """alpha_bar from a shifted, rescaled sigmoid (Chen 2023, "On the importance of noise scheduling").

    alpha_bar(u) = (sigmoid(end/tau) - sigmoid((u (end - start) + start)/tau))
                   / (sigmoid(end/tau) - sigmoid(start/tau)),  u = t/T.
    Smaller ``tau`` keeps the signal longer, then destroys it faster.
    """
    _checks.positive_int("T", T)
    _checks.number("start", start)
    _checks.number("end", end)
    _checks.number("tau", tau, low=0, low_open=True)
    if not end > start:
        raise ValueError(f"end must be greater than start, got start={start}, end={end}")

    def abar(u):
        v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
        v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
        return (v_end - torch.sigmoid((u * (end - start) + start) / tau)) / (v_end - v_start)

    betas = _betas_from_alpha_bar(abar, T, max_beta)
    return Schedule(betas, "sigmoid", {"T": T, "start": start, "end": end, "tau": tau})


def get(name: str, **kwargs) -> Schedule:
    """A schedule by name: ``get("cosine", T=500)``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a schedule name (str), got {type(name).__name__}")
    _checks.choice("schedule name", name, NAMES)
    return {"linear": linear, "cosine": cosine, "sigmoid": sigmoid}[name](**kwargs)


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """``n`` noise levels from sigma_max down to sigma_min, spaced as in Karras et al. 2022 (EDM).

    sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho.
    Returned as float64, decreasing (no trailing zero).
    """
    _checks.positive_int("n", n)
    _checks.number("sigma_min", sigma_min, low=0, low_open=True)
    _checks.number("sigma_max", sigma_max, low=0, low_open=True)
    _checks.number("rho", rho, low=0, low_open=True)
    if sigma_max <= sigma_min:
        raise ValueError(f"sigma_max must exceed sigma_min, got {sigma_max} <= {sigma_min}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def ve_sigmas(n: int, sigma_min: float = 0.01, sigma_max: float = 50.0) -> torch.Tensor:
    """``n`` geometric noise levels from sigma_max down to sigma_min (NCSN / VE SDE, Song & Ermon 2019)."""
    _checks.positive_int("n", n)
    _checks.number("sigma_min", sigma_min, low=0, low_open=True)
    _checks.number("sigma_max", sigma_max, low=0, low_open=True)
    if sigma_max <= sigma_min:
        raise ValueError(f"sigma_max must exceed sigma_min, got {sigma_max} <= {sigma_min}")
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64))
