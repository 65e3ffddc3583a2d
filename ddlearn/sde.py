r"""Score SDEs (Song et al. 2021): VP, sub-VP and VE, in continuous time u in [0, 1].

The forward SDE :math:`dx = f(x, u)\,du + g(u)\,dW` noises data; its marginal
given the clean x_0 is Gaussian, :math:`x_u = m(u)\,x_0 + s(u)\,\epsilon`.

====== ================================ ======================= =====================================
SDE    drift f(x, u)                    diffusion g(u)^2        m(u), s(u)
====== ================================ ======================= =====================================
VP     :math:`-\tfrac12\beta(u)x`       :math:`\beta(u)`        :math:`e^{-B/2}`, :math:`\sqrt{1-e^{-B}}`
sub-VP :math:`-\tfrac12\beta(u)x`       :math:`\beta(u)(1-e^{-2B})` :math:`e^{-B/2}`, :math:`1-e^{-B}`
VE     0                                :math:`d\sigma^2/du`    1, :math:`\sigma(u)=\sigma_{min}(\sigma_{max}/\sigma_{min})^u`
====== ================================ ======================= =====================================

with :math:`\beta(u) = \beta_{min} + u(\beta_{max}-\beta_{min})` and
:math:`B(u) = \int_0^u \beta`. (VE's marginal std is sigma(u) itself: the
SDE is taken to start at u = 0 from N(x_0, sigma_min^2), NCSN's smallest
noise level, as in Song et al.'s code.)

Time: the book's one convention (:mod:`ddlearn.schedules`)
------------------------------------------------------------
SDE time u in [0, 1] maps to the timestep ``t = u * (T - 1)``; every SDE
carries that ``T`` (1000 by default) so a network built for a T-step schedule
takes continuous time unchanged. **DDPM is a discretisation of VP**: with
``beta_min = (T-1) * beta_start`` and ``beta_max = (T-1) * beta_end`` (0.1 and
20 for Ho et al.'s linear schedule), ``VPSDE().alpha_bar(u)`` and
``linear().alpha_bar(u * (T-1))`` agree to about 1e-3 (see
:func:`compare_with_schedule`), and one DDPM step
``x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z`` is an Euler-Maruyama step
of VP to first order in beta (:meth:`SDE.discretize`). **NCSN is a
discretisation of VE**: its geometric noise levels (:func:`ddlearn.schedules.ve_sigmas`)
are VE's sigma(u) on a grid, and its step ``x_i = x_{i-1} + sqrt(sigma_i^2 -
sigma_{i-1}^2) z`` is VE's exact transition.

How a model plugs in (the choice, written down once)
----------------------------------------------------
Every network in the book predicts eps, called as ``model(x_in, t)``. The
*time frame* the model was trained in is either a discrete
:class:`~ddlearn.schedules.Schedule` (a DDPM model) or an :class:`SDE` (a
continuous-time model). :func:`score_fn` turns ``(model, frame)`` into a
score for *any* SDE, by matching the signal-to-noise ratio:

1. the SDE's state at u, ``x = m x_0 + s eps``, is rescaled to the
   variance-preserving state ``x_in = x / sqrt(m^2 + s^2)`` (identity for VP),
   whose alpha-bar is ``m^2 / (m^2 + s^2) = sigmoid(log_snr)``;
2. the frame's timestep with the same log-SNR, ``t = frame.t_from_log_snr(log_snr(u))``,
   is passed as t (for the model's own SDE that is just ``u * (T - 1)``);
3. ``score = -eps / s``  (:mod:`ddlearn.param`).

So a DDPM eps-model runs unchanged under the VP, sub-VP or VE samplers, and a
continuous-time model is trained with the same two lines
(:meth:`SDE.model_input`). The exact oracles plug in the same way
(:meth:`SDE.oracle_model`).

All SDE quantities are computed in float64 and cast to the state's dtype.

:class:`GaussianData` is the example solvable by hand: Gaussian data under any
of the three SDEs, with its marginal, score, reverse-SDE drift and
probability-flow velocity (and the ODE's exact solution) in closed form.
"""
from __future__ import annotations

import math

import torch

from . import _checks, frames
from .config import randn, randn_like
from .param import per_item
from .schedules import Schedule

NAMES = ("vp", "subvp", "ve")


def check_u(name: str, u, batch: int | None = None) -> torch.Tensor:
    """``u`` (number or tensor) as a float64 tensor (B,) inside [0, 1]; a clear error otherwise."""
    if isinstance(u, bool):
        raise TypeError(f"{name} must be a number or a tensor of SDE times in [0, 1], got bool")
    if isinstance(u, (int, float)):
        u = torch.tensor([float(u)], dtype=torch.float64)
    elif isinstance(u, torch.Tensor):
        u = u.detach().to(torch.float64).reshape(-1) if u.ndim <= 1 else None
        if u is None:
            raise ValueError(f"{name} must be a scalar or a 1-D tensor of SDE times")
    else:
        raise TypeError(f"{name} must be a number or a torch.Tensor, got {type(u).__name__}")
    if not torch.isfinite(u).all():
        raise ValueError(f"{name} contains non-finite values")
    if u.numel() and (u.min() < 0 or u.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1] (SDE time; the timestep is t = u * (T - 1)), "
                         f"got values from {u.min().item():g} to {u.max().item():g}")
    if batch is not None:
        if u.numel() == 1:
            u = u.expand(batch)
        elif u.numel() != batch:
            raise ValueError(f"{name} has {u.numel()} entries but the batch has {batch} items")
    return u


class SDE:
    """Base class: subclasses give ``mean_coef``, ``std``, ``drift_coef`` (f = drift_coef * x) and ``g2``."""

    name = "sde"

    def __init__(self, T: int = 1000):
        _checks.positive_int("T", T, minimum=2)
        self.T = T

    # ---- the four functions that define an SDE (float64, u a tensor) -----
    def mean_coef(self, u) -> torch.Tensor:  # m(u)
        raise NotImplementedError

    def std(self, u) -> torch.Tensor:  # s(u)
        raise NotImplementedError

    def drift_coef(self, u) -> torch.Tensor:  # f(x, u) = drift_coef(u) * x (all three SDEs are linear)
        raise NotImplementedError

    def g2(self, u) -> torch.Tensor:  # g(u)^2
        raise NotImplementedError

    # ---- derived quantities ---------------------------------------------
    def drift(self, x: torch.Tensor, u) -> torch.Tensor:
        """f(x, u)."""
        uu = check_u("u", u, x.shape[0])
        return per_item(self.drift_coef(uu), x) * x

    def diffusion(self, u) -> torch.Tensor:
        """g(u) (float64, shape of u)."""
        return self.g2(check_u("u", u)).sqrt()

    def marginal_mean_std(self, x0: torch.Tensor, u) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean m(u) x_0 and std s(u) (broadcastable) of p(x_u | x_0)."""
        _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
        uu = check_u("u", u, x0.shape[0])
        return per_item(self.mean_coef(uu), x0) * x0, per_item(self.std(uu), x0)

    def marginal_sample(self, x0: torch.Tensor, u, *, generator=None, noise=None):
        """x_u = m(u) x_0 + s(u) eps; returns (x_u, eps)."""
        mean, std = self.marginal_mean_std(x0, u)
        if noise is None:
            noise = randn_like(x0, generator)
        return mean + std * noise, noise

    def log_snr(self, u) -> torch.Tensor:
        """lambda(u) = log(m^2 / s^2), decreasing in u."""
        uu = check_u("u", u)
        return 2 * (torch.log(self.mean_coef(uu)) - torch.log(self.std(uu)))

    def alpha_bar(self, u) -> torch.Tensor:
        """The equivalent VP alpha-bar m^2 / (m^2 + s^2) = sigmoid(log_snr) (exactly VP's m^2 for VP)."""
        return torch.sigmoid(self.log_snr(u))

    def u_from_log_snr(self, lam) -> torch.Tensor:
        """The u whose log-SNR is ``lam`` (clamped to [0, 1]); bisection, exact to float64."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        lo, hi = torch.zeros_like(lam), torch.ones_like(lam)
        for _ in range(60):
            mid = (lo + hi) / 2
            above = self.log_snr(mid.reshape(-1)).reshape(lam.shape) > lam  # still too little noise
            lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
        return (lo + hi) / 2

    def t_from_log_snr(self, lam) -> torch.Tensor:
        """Timestep (units of this SDE's T) with log-SNR ``lam``: u * (T - 1)."""
        return self.u_from_log_snr(lam) * (self.T - 1)

    def t_of_u(self, u) -> torch.Tensor:
        """The book's time convention: t = u * (T - 1)."""
        return check_u("u", u) * (self.T - 1)

    # ---- the time-frame protocol (:mod:`ddlearn.frames`), in model timesteps t = u (T - 1) ----
    def _u_of_t(self, t) -> torch.Tensor:
        tt = _checks.timesteps("t", t, self.T)
        return tt.reshape(-1) / (self.T - 1)

    def coefs(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """x = m(u) x_0 + s(u) eps at timesteps ``t`` (u = t / (T - 1)): (m, s), float64 (flat)."""
        u = self._u_of_t(t)
        return self.mean_coef(u), self.std(u)

    def log_snr_at(self, t) -> torch.Tensor:
        """log-SNR at timesteps ``t`` (:meth:`log_snr` at u = t / (T - 1))."""
        return self.log_snr(self._u_of_t(t))

    def log_snr_range(self) -> tuple[float, float]:
        """(log-SNR at u = 1, log-SNR at u = 0)."""
        ends = self.log_snr(torch.tensor([1.0, 0.0], dtype=torch.float64))
        return ends[0].item(), ends[1].item()

    def input_scale(self, t) -> torch.Tensor:
        """1: a continuous-time model of any SDE is fed the VP state x / sqrt(m^2 + s^2) (:meth:`model_input`)."""
        return torch.ones_like(self._u_of_t(t))

    # ---- prior --------------------------------------------------------------
    @property
    def prior_std(self) -> float:
        """Std of the prior p_1 = N(0, prior_std^2 I): 1 for VP and sub-VP, sigma_max for VE (Song et al.)."""
        return 1.0

    def prior_sample(self, shape, *, generator=None, dtype=torch.float32) -> torch.Tensor:
        return self.prior_std * randn(shape, generator=generator, dtype=dtype)

    def prior_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; 0, prior_std^2 I), summed per item, float64 (B,)."""
        _checks.tensor("x", x)
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        D, s = flat.shape[1], self.prior_std
        return -0.5 * (flat ** 2).sum(1) / s ** 2 - D * math.log(s) - 0.5 * D * math.log(2 * math.pi)

    # ---- discretisation -----------------------------------------------------
    def discretize(self, x: torch.Tensor, u, du: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Euler-Maruyama forward step from u to u + du: x' = x + f + G z; returns (f, G).

        ``f = f(x, u) du`` and ``G = g(u) sqrt(du)`` (broadcastable).
        """
        uu = check_u("u", u, x.shape[0])
        _checks.number("du", du, low=0, low_open=True)
        return self.drift(x, uu) * du, per_item(self.g2(uu).sqrt() * math.sqrt(du), x)

    # ---- reverse time ---------------------------------------------------------
    def reverse_drift(self, x: torch.Tensor, u, score: torch.Tensor, *, probability_flow: bool = False):
        r"""Drift of the reverse-time SDE (Anderson 1982) or of the probability-flow ODE, in forward time.

        Reverse SDE: :math:`dx = [f - g^2 \nabla\log p_u]\,du + g\,d\bar W` run from u = 1 to 0;
        PF-ODE: :math:`dx/du = f - \tfrac12 g^2 \nabla\log p_u` (same marginals, deterministic).
        """
        uu = check_u("u", u, x.shape[0])
        _checks.same_shape("x", x, "score", score)
        coef = 0.5 if probability_flow else 1.0
        return self.drift(x, uu) - coef * per_item(self.g2(uu), x) * score

    def pf_ode_drift(self, x: torch.Tensor, u, score: torch.Tensor) -> torch.Tensor:
        """dx/du of the probability-flow ODE."""
        return self.reverse_drift(x, u, score, probability_flow=True)

    # ---- models ---------------------------------------------------------------
    def model_input(self, x: torch.Tensor, u) -> tuple[torch.Tensor, torch.Tensor]:
        """What a continuous-time eps-model of this SDE is fed: (x / sqrt(m^2 + s^2), t = u (T-1)).

        Training (:func:`ddlearn.losses.sde_loss`) and sampling (:func:`score_fn`) both use this.
        """
        uu = check_u("u", u, x.shape[0])
        scale = (self.mean_coef(uu) ** 2 + self.std(uu) ** 2).rsqrt()
        return x * per_item(scale, x), (uu * (self.T - 1)).to(dtype=x.dtype, device=x.device)

    def oracle_model(self, mixture):
        """A Gaussian mixture's exact eps-model in this SDE's own frame: ``model(x_in, t)``."""
        from .oracles import GaussianMixture

        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        sde = self

        def model(x_in, t):
            u = _checks.timesteps("t", t, sde.T, batch=x_in.shape[0]) / (sde.T - 1)
            if (u == u[0]).all():  # a sampler's batch shares one time: compute alpha-bar once
                return mixture.eps(x_in, sde.alpha_bar(u[:1]))
            return mixture.eps(x_in, sde.alpha_bar(u))

        return model

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params().items())
        return f"{type(self).__name__}({args}, T={self.T})"

    def params(self) -> dict:
        return {}


class VPSDE(SDE):
    """Variance preserving: dx = -1/2 beta(u) x du + sqrt(beta(u)) dW (the continuous DDPM)."""

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: int = 1000):
        super().__init__(T)
        _checks.number("beta_min", beta_min, low=0, low_open=True)
        _checks.number("beta_max", beta_max, low=0, low_open=True)
        if beta_max < beta_min:
            raise ValueError(f"beta_max must be >= beta_min, got {beta_max} < {beta_min}")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    @classmethod
    def from_schedule(cls, schedule: Schedule) -> "VPSDE":
        """The VP SDE a *linear* DDPM schedule discretises: beta_min/max = (T-1) beta_start/end."""
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
        if schedule.name != "linear":
            raise ValueError(f"from_schedule needs a linear schedule (VP has linear beta(u)), got {schedule.name!r}; "
                             "other schedules still work with every SDE sampler through score_fn's log-SNR matching")
        T = schedule.T
        return cls((T - 1) * schedule.params["beta_start"], (T - 1) * schedule.params["beta_end"], T=T)

    def params(self):
        return {"beta_min": self.beta_min, "beta_max": self.beta_max}

    def beta(self, u):
        return self.beta_min + u * (self.beta_max - self.beta_min)

    def B(self, u):  # integral of beta from 0 to u
        return self.beta_min * u + 0.5 * (self.beta_max - self.beta_min) * u ** 2

    def mean_coef(self, u):
        return torch.exp(-0.5 * self.B(u))

    def std(self, u):
        return (-torch.expm1(-self.B(u))).clamp_min(0).sqrt()

    def drift_coef(self, u):
        return -0.5 * self.beta(u)

    def g2(self, u):
        return self.beta(u)


class SubVPSDE(VPSDE):
    """sub-VP: VP's drift, diffusion beta(u)(1 - e^{-2B(u)}); variance always below VP's (Song et al. 2021, eq. 11)."""

    name = "subvp"

    def std(self, u):
        return -torch.expm1(-self.B(u))

    def g2(self, u):
        return self.beta(u) * (-torch.expm1(-2 * self.B(u)))


class VESDE(SDE):
    """Variance exploding: dx = sqrt(d sigma^2/du) dW, sigma(u) = sigma_min (sigma_max / sigma_min)^u (continuous NCSN)."""

    name = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: int = 1000):
        super().__init__(T)
        _checks.number("sigma_min", sigma_min, low=0, low_open=True)
        _checks.number("sigma_max", sigma_max, low=0, low_open=True)
        if sigma_max <= sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min, got {sigma_max} <= {sigma_min}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def params(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def sigma(self, u):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** u

    def mean_coef(self, u):
        return torch.ones_like(u)

    def std(self, u):
        return self.sigma(u)

    def drift_coef(self, u):
        return torch.zeros_like(u)

    def g2(self, u):
        return 2 * math.log(self.sigma_max / self.sigma_min) * self.sigma(u) ** 2

    def u_from_log_snr(self, lam):
        lam = torch.as_tensor(lam, dtype=torch.float64)
        u = (-0.5 * lam - math.log(self.sigma_min)) / math.log(self.sigma_max / self.sigma_min)
        return u.clamp(0, 1)


SDES = {"vp": VPSDE, "subvp": SubVPSDE, "ve": VESDE}


def get(name, **kwargs) -> SDE:
    """An SDE by name (``"vp"``, ``"subvp"``, ``"ve"``); an SDE instance passes through."""
    if isinstance(name, SDE):
        if kwargs:
            raise ValueError("keyword arguments cannot be applied to an SDE instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"sde must be an SDE or one of {NAMES}, got {type(name).__name__}")
    _checks.choice("SDE", name, NAMES)
    return SDES[name](**kwargs)


def check_frame(frame):
    """A model's time frame (:mod:`ddlearn.frames`): a Schedule, an SDE, a flow path, ..."""
    return frames.check_frame(frame, "the model's time frame")


def frame_time(frame, sde: SDE, u: torch.Tensor) -> torch.Tensor:
    """The timestep, in ``frame``'s units, where ``frame`` has the same noise level as ``sde`` at ``u``
    (:func:`ddlearn.frames.time_at_log_snr`)."""
    if frame is sde:
        return u * (sde.T - 1)
    return frames.time_at_log_snr(frame, sde.log_snr(u))


def score_fn(model, frame, sde: SDE, *, check: bool = True):
    """``score(x, u)`` of an eps-model trained in ``frame`` (Schedule or SDE), for the SDE ``sde``.

    See the module docstring: rescale to the VP state, match log-SNR for the
    time, ``score = -eps / s(u)``. ``u`` is a float or a tensor (B,).
    Gradients flow through (the likelihood needs them); wrap in no_grad to sample.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t) -> eps, got {type(model).__name__}")
    check_frame(frame)
    _checks.same_T(model, frame.T, "time frame (schedule)")
    if not isinstance(sde, SDE):
        raise TypeError(f"sde must be a ddlearn.sde.SDE, got {type(sde).__name__}")

    def score(x: torch.Tensor, u) -> torch.Tensor:
        uu = check_u("u", u, x.shape[0])
        m, s = sde.mean_coef(uu), sde.std(uu)
        t = frame_time(frame, sde, uu)
        # the same information as the frame's model input: the VP state at equal log-SNR, times the
        # frame's input scale (exactly 1 for schedules and SDEs, whose models see the VP state)
        x_in = x * per_item((m ** 2 + s ** 2).rsqrt() * frame.input_scale(t), x)
        eps = model(x_in, t.to(dtype=x.dtype, device=x.device))
        if check:
            eps = _checks.model_output(eps, x, where=f"u={uu[0].item():g}")
        return -eps.to(x.dtype) / per_item(s, x)

    return score


def exact_score(mixture, sde: SDE):
    """The exact score of a Gaussian mixture's marginal under ``sde``: ``score(x, u)``."""
    return score_fn(sde.oracle_model(mixture), sde, sde)


class GaussianData:
    r"""Data :math:`x_0 \sim \mathcal N(\mu, \sigma_0^2 I)` under a linear SDE: every quantity in closed form.

    The worked example of Chapter 04. With the SDE's :math:`x_u = m(u)\,x_0 + s(u)\,\epsilon`
    and drift :math:`f = a(u)\,x`:

    * marginal :math:`p_u = \mathcal N(m\mu,\ v)`, :math:`v(u) = m^2\sigma_0^2 + s^2`
      (it solves :math:`dv/du = 2a\,v + g^2`);
    * score :math:`\nabla\log p_u(x) = -(x - m\mu)/v`;
    * reverse-SDE drift :math:`a x - g^2\nabla\log p_u = a x + g^2 (x - m\mu)/v`;
    * probability-flow velocity :math:`a x + \tfrac12 g^2 (x - m\mu)/v`, whose solution keeps the
      standardised coordinate :math:`(x - m\mu)/\sqrt v` fixed: :meth:`pf_flow` moves a point from
      ``u`` to ``u_to`` exactly.

    ``mean`` and ``std`` are numbers (the same for every coordinate); ``x`` has any shape (B, ...),
    ``u`` a number or a tensor (B,). Results are float64.
    """

    def __init__(self, sde: SDE, mean: float = 0.0, std: float = 1.0):
        if not isinstance(sde, SDE):
            raise TypeError(f"sde must be a ddlearn.sde.SDE, got {type(sde).__name__}")
        self.sde = sde
        self.mean = _checks.number("mean", mean)
        self.std = _checks.number("std", std, low=0, low_open=True)

    def _coefs(self, x: torch.Tensor, u):
        _checks.tensor("x", x)
        uu = check_u("u", u, x.shape[0])
        m, s = self.sde.mean_coef(uu), self.sde.std(uu)
        var = m ** 2 * self.std ** 2 + s ** 2
        return uu, per_item(m * self.mean, x.double()), per_item(var, x.double())

    def marginal(self, u) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean m(u) mu and variance v(u) = m^2 std^2 + s^2 of p_u (float64, shape of u)."""
        uu = check_u("u", u)
        m, s = self.sde.mean_coef(uu), self.sde.std(uu)
        return m * self.mean, m ** 2 * self.std ** 2 + s ** 2

    def log_prob(self, x: torch.Tensor, u) -> torch.Tensor:
        """log p_u(x), summed over all but the first dimension (B,)."""
        _, mean, var = self._coefs(x, u)
        lp = -0.5 * (x.double() - mean) ** 2 / var - 0.5 * torch.log(2 * math.pi * var)
        return lp.reshape(x.shape[0], -1).sum(1)

    def score(self, x: torch.Tensor, u) -> torch.Tensor:
        r""":math:`\nabla_x\log p_u(x) = -(x - m\mu)/v`."""
        _, mean, var = self._coefs(x, u)
        return -(x.double() - mean) / var

    def reverse_drift(self, x: torch.Tensor, u) -> torch.Tensor:
        r"""Drift of the reverse-time SDE in forward time, :math:`f - g^2\nabla\log p_u` (Anderson 1982)."""
        uu, mean, var = self._coefs(x, u)
        xd = x.double()
        return per_item(self.sde.drift_coef(uu), xd) * xd + per_item(self.sde.g2(uu), xd) * (xd - mean) / var

    def pf_velocity(self, x: torch.Tensor, u) -> torch.Tensor:
        r"""The probability-flow ODE's :math:`dx/du = f - \tfrac12 g^2\nabla\log p_u`."""
        uu, mean, var = self._coefs(x, u)
        xd = x.double()
        return per_item(self.sde.drift_coef(uu), xd) * xd + 0.5 * per_item(self.sde.g2(uu), xd) * (xd - mean) / var

    def pf_flow(self, x: torch.Tensor, u, u_to) -> torch.Tensor:
        r"""The exact solution of the probability-flow ODE from ``u`` to ``u_to``:
        :math:`m(u')\mu + \sqrt{v(u')/v(u)}\,(x - m(u)\mu)`."""
        _, mean, var = self._coefs(x, u)
        _, mean_to, var_to = self._coefs(x, u_to)
        return mean_to + (var_to / var).sqrt() * (x.double() - mean)

    def __repr__(self) -> str:
        return f"GaussianData({self.sde!r}, mean={self.mean:g}, std={self.std:g})"


def compare_with_schedule(schedule: Schedule, sde: SDE | None = None, n: int = 201) -> dict:
    """How closely a VP SDE reproduces a discrete schedule on t = u (T - 1).

    Returns the grid ``u``, both alpha-bar curves and the largest absolute
    difference (``max_abs_diff``); the chapter prints it to show that DDPM
    discretises VP.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {type(schedule).__name__}")
    sde = sde if sde is not None else VPSDE.from_schedule(schedule)
    u = torch.linspace(0, 1, n, dtype=torch.float64)
    a_disc = schedule.alpha_bar(u * (schedule.T - 1))
    a_cont = sde.alpha_bar(u)
    return {"u": u, "discrete": a_disc, "continuous": a_cont, "max_abs_diff": (a_disc - a_cont).abs().max().item()}
