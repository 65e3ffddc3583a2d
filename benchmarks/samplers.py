"""Fast samplers against diffusers' schedulers on a panel of problems, at equal model evaluations.

    flock /tmp/ddlearn-heavy.lock python benchmarks/samplers.py                     # the panel at 10 evaluations
    flock /tmp/ddlearn-heavy.lock python benchmarks/samplers.py --budgets 5,10,20,50 --csv /tmp/runs.csv
    flock /tmp/ddlearn-heavy.lock python benchmarks/samplers.py --problems ring8,tight --budgets 10
    python benchmarks/samplers.py --list                                              # problems and configurations
    python benchmarks/samplers.py --overhead-only                                     # per-step cost of each loop
    python benchmarks/samplers.py --ours-only --ours DPM-Solver-3M --csv /tmp/3m.csv  # one sampler, every grid
    python benchmarks/samplers.py --report /tmp/runs.csv,/tmp/3m.csv                   # the later CSV's rows win

The runs behind the stored defaults and the README's table are in ``benchmarks/results/samplers_panel10/``
(its README gives the ``--report`` line).

The panel (``PANEL``): exact Gaussian mixtures of :func:`ddlearn.oracles.named_mixture` with
different weights, widths and separations (``ring8``, ``two``, ``grid9``, ``tight``: five modes of
std 0.01-0.02 far apart; ``broad``: three overlapping modes of std 0.35-0.5; ``multiscale``: one
broad mode and three narrow ones; ``cross``: two thin crossing ellipses), the same on the cosine
schedule (``ring8@cosine``, ``tight@cosine``, ``broad@cosine``), ``hd16`` (four modes of std 0.05-0.3
in 16 dimensions), the widened panel of issue 26 (``skewed``: weights 0.90 / 0.07 / 0.03; ``unequal``:
std 0.02 / 0.1 / 0.4; ``very_unequal``: std 0.005 / 0.05 / 0.8 with weights 0.6 / 0.3 / 0.1; ``skewed16``:
16-D, std 0.01-0.5, weights 0.85-0.01), and the shipped checkpoints ``toy2d`` (swiss-roll MLP) and ``digits`` (16x16 UNet).
The mixtures use their exact eps (:meth:`GaussianMixture.eps_model`): no learning error.

Configurations. Ours: every fast sampler x every grid of :data:`ddlearn.samplers.SPACINGS`, the
steps that fit the budget from :func:`ddlearn.samplers.steps_for` (each sampler's declared cost).
diffusers (a test-only dependency, offline): every scheduler that applies to an eps-model of a
discrete schedule, with its grid options (``DIFFUSERS`` below: DDIM, DPMSolverMultistep in both
algorithm types, orders 2 and 3, on linspace/leading/trailing/karras/exponential/beta/Lu-lambda
grids, DPMSolverSinglestep, UniPC bh1/bh2, DEIS, Euler, Heun, LMS, PLMS, KDPM2, SA-Solver, and the
stochastic DDPM, DDIM eta=1, Euler-ancestral, KDPM2-ancestral and SDE-DPM-Solver++); the number of
steps is the largest whose counted model calls fit the budget. Not run, because they do not apply:
EDM*/CosineDPM (EDM-preconditioned sigma models), LCM/TCD (distilled models), flow-matching
schedulers, IPNDM (its own schedule), DPMSolverSDE (needs torchsde, not installed).
diffusers runs its own loop (``set_timesteps``, ``scale_model_input``, ``step``) with
``trained_betas`` = the model's schedule; every configuration starts from the same x_T draws.
On its sigma grids ("exp", "beta", "lu", "karras") diffusers steps with the exact sigmas but calls the
model at whole timesteps: rounded down on "exp" and "beta" (t = 4 where the sigma is t = 4.79's, so the
model is told a little less noise than the solver assumes), to the nearest on "lu" and "karras". The
``-exact-t`` twins of the best of them call the model at the sigmas' own timesteps, to show what that
rounding buys or costs.

Quality, lower is better; mean +- sd over ``--seeds`` draws of x_T (the same draws for every
configuration):

* ``MMD`` (x 1e4), the panel's main measure on the point problems: :func:`ddlearn.metrics.mmd`, the
  squared maximum mean discrepancy with a kernel that mixes widths 0.01 to 1, so the tightest mode's
  shape and position count as well as the weights and the whole cloud; against the exact mixture
  (no reference noise) or 20,000 held-out swiss-roll points. Unbiased: an exact sampler scores
  0 +- noise (printed as "exact samples").
* ``SW``: sliced Wasserstein-2 (256 fixed directions) to the exact projected quantiles of the mixture
  (or 20,000 held-out points). Blind to errors at the scale of a tight mode; its noise is mostly
  the multinomial noise of the mode weights, and on the swiss roll a handful of far points.
* ``ODE``: root-mean-square distance to a high-accuracy solution of the same probability-flow ODE
  from the same x_T (DPM-Solver-3, 150 steps; 40 on digits): the error of the sampler as an ODE
  solver and an upper bound on its Wasserstein-2 distance to what that ODE samples. Stochastic
  samplers score high here by construction; "leading" grids start below the top level and pay for it.
* ``FDD`` (digits, main measure): Frechet digit distance to the 359 held-out digits.

Each problem's heading also prints the score of the reference ODE solution itself ("converged ODE"):
what an exact solver of this schedule's probability-flow ODE reaches (down to t = 0, then the
denoise every sampler here ends with). Where a mode is about as narrow as the schedule's smallest
noise level (sigma = 0.01 at t = 0 on the linear schedule: ``tight``, ``very_unequal``, ``skewed16``)
it is far above the exact samples' floor, and a few-step sampler can land below it only by errors
that happen to cancel the ODE's own; the summary prints it beside each comparison.

Verdict at each budget: our best sampler *with default arguments* against diffusers' best
configuration, on the main measure; "tie" when the paired difference (same x_T) is within two
standard errors of zero. ``--screen K`` (default 12) first runs every diffusers configuration on one
small draw (``--screen-n`` points; a quarter as many images on digits) and keeps the K best on the
main measure (and K/4 on each other measure) for the full draws; all of ours run in full (the grid
choice needs every grid). The screen's own table is printed. ``--report a.csv,b.csv`` prints the grid
choice and the verdict from the CSVs of earlier runs (e.g. the panel run in pieces, ours and
diffusers' separately with ``--ours-only`` / ``--diffusers-only``), marking the defaults the samplers
have now.

All runs use one torch thread: on the shared 2-core machine that is both faster for these small
models and steadier to time. Per-step overhead: a separate table with a model that returns zeros.
"""
from __future__ import annotations

import argparse
import csv
import inspect
import itertools
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from ddlearn import data, metrics
from ddlearn.oracles import GaussianMixture, named_mixture
from ddlearn.samplers import (SPACINGS, CountedModel, sample_ddim, sample_dpm_solver, sample_dpm_solver_multistep,
                              sample_dpm_solver_pp, sample_heun, steps_for)
from ddlearn.samplers.spacing import final_grid, t_from_sigma, time_grid
from ddlearn.schedules import cosine, linear

BUDGETS = (10,)

# ours: sampler name -> (function, fixed options); every grid of SPACINGS is tried, and the default
# (no spacing given) is what the verdict uses. Euler is DDIM on the same grid (tests/test_samplers.py).
OURS = {
    "DDIM": (sample_ddim, {}),
    "Heun": (sample_heun, {}),
    "DPM-Solver-2": (sample_dpm_solver, {"order": 2}),
    "DPM-Solver-3": (sample_dpm_solver, {"order": 3}),
    # the multistep solvers with each ending (ddlearn.samplers.spacing.final_grid): the names without a suffix
    # denoise at the last evaluation (as every sampler did before final= existed, so earlier CSVs keep their
    # meaning); "-trapezoid" takes the trapezoidal step to sigma = 0 from it; "-sigmamin" spends it on one more
    # ODE step, to t = 0. The last two need a grid that ends at t = 0.
    "DPM-Solver++(2M)": (sample_dpm_solver_pp, {"final": "denoise"}),
    "DPM-Solver-2M": (sample_dpm_solver_multistep, {"order": 2, "final": "denoise"}),
    "DPM-Solver-3M": (sample_dpm_solver_multistep, {"order": 3, "final": "denoise"}),
    "DPM-Solver++(2M)-trapezoid": (sample_dpm_solver_pp, {"final": "trapezoid"}),
    "DPM-Solver-2M-trapezoid": (sample_dpm_solver_multistep, {"order": 2, "final": "trapezoid"}),
    "DPM-Solver-3M-trapezoid": (sample_dpm_solver_multistep, {"order": 3, "final": "trapezoid"}),
    "DPM-Solver++(2M)-sigmamin": (sample_dpm_solver_pp, {"final": "sigma_min"}),
    "DPM-Solver-2M-sigmamin": (sample_dpm_solver_multistep, {"order": 2, "final": "sigma_min"}),
    "DPM-Solver-3M-sigmamin": (sample_dpm_solver_multistep, {"order": 3, "final": "sigma_min"}),
}


def _default(fn, option: str):
    p = inspect.signature(fn).parameters.get(option)
    return None if p is None else p.default


def default_spacing(fn) -> str:
    return _default(fn, "spacing")


def final_of(name: str):
    """The ``final=`` a configuration of ours runs with (None for a sampler without the option)."""
    fn, opts = OURS[name]
    return opts.get("final", _default(fn, "final"))


def _resolved(final, spacing: str, steps: int = 10):
    """The ending ``final`` means on ``spacing`` ("auto" resolved on the linear schedule), None without one."""
    return None if final is None else final_grid(linear(1000), steps, spacing, final)[2]


def is_default(name: str, spacing: str) -> bool:
    """Whether ``name`` on ``spacing`` is what its sampler does with default arguments (``order`` is the
    method's name, not a tuning option: DPM-Solver-3M with its defaults is a sampler of its own)."""
    fn, _ = OURS[name]
    return spacing == default_spacing(fn) and _resolved(final_of(name), spacing) == _resolved(
        _default(fn, "final"), spacing)


def family_of(name: str) -> set[str]:
    """Our configurations that differ from ``name`` in ``final=`` only (the same function and order)."""
    fn, opts = OURS[name]
    rest = {k: v for k, v in opts.items() if k != "final"}
    return {n for n, (f, o) in OURS.items() if f is fn and {k: v for k, v in o.items() if k != "final"} == rest}


def _grid_ends_at_zero(spacing: str) -> bool:
    return time_grid(linear(1000), 11, spacing)[-1].item() == 0.0


# ---------------------------------------------------------------------------------------- diffusers
def _diffusers_configs() -> dict[str, tuple[str, dict]]:
    """name -> (scheduler class, config). Grid options per scheduler as diffusers offers them."""
    grids = {"linspace": {"timestep_spacing": "linspace"}, "leading": {"timestep_spacing": "leading"},
             "trailing": {"timestep_spacing": "trailing"}, "karras": {"use_karras_sigmas": True},
             "exp": {"use_exponential_sigmas": True}, "beta": {"use_beta_sigmas": True}}
    out: dict[str, tuple[str, dict]] = {}
    for g in ("linspace", "leading", "trailing"):
        out[f"DDIM[{g}]"] = ("DDIMScheduler", {"timestep_spacing": g, "clip_sample": False, "set_alpha_to_one": True})
    for algo, order in itertools.product(("dpmsolver++", "dpmsolver"), (2, 3)):
        # the noise-prediction form ("dpmsolver") only ends at sigma_min in diffusers
        extra = {"final_sigmas_type": "sigma_min"} if algo == "dpmsolver" else {}
        for g, c in list(grids.items()) + [("lu", {"use_lu_lambdas": True})]:
            out[f"DPMMultistep-{algo}-{order}M[{g}]"] = (
                "DPMSolverMultistepScheduler", {"algorithm_type": algo, "solver_order": order, **c, **extra})
    for order in (2, 3):
        out[f"DPMMultistep-dpmsolver++-{order}M-sigmamin[lu]"] = (
            "DPMSolverMultistepScheduler", {"solver_order": order, "use_lu_lambdas": True, "final_sigmas_type": "sigma_min"})
        out[f"DPMMultistep-dpmsolver++-{order}M-heun[lu]"] = (
            "DPMSolverMultistepScheduler", {"solver_order": order, "use_lu_lambdas": True, "solver_type": "heun"})
    for algo, order in itertools.product(("dpmsolver++", "dpmsolver"), (2, 3)):
        extra = {"final_sigmas_type": "sigma_min"} if algo == "dpmsolver" else {}
        for g in ("linspace", "karras", "exp", "beta"):  # no timestep_spacing option in the single-step solver
            out[f"DPMSinglestep-{algo}-{order}[{g}]"] = (
                "DPMSolverSinglestepScheduler",
                {"algorithm_type": algo, "solver_order": order, **({} if g == "linspace" else grids[g]), **extra})
    for st, order in itertools.product(("bh1", "bh2"), (2, 3)):
        for g, c in grids.items():
            out[f"UniPC-{st}-{order}[{g}]"] = ("UniPCMultistepScheduler", {"solver_type": st, "solver_order": order, **c})
    for order in (2, 3):
        for g, c in grids.items():
            out[f"DEIS-{order}[{g}]"] = ("DEISMultistepScheduler", {"solver_order": order, **c})
    for g, c in grids.items():
        out[f"Euler[{g}]"] = ("EulerDiscreteScheduler", c)
        out[f"Heun[{g}]"] = ("HeunDiscreteScheduler", c)
        out[f"LMS[{g}]"] = ("LMSDiscreteScheduler", c)
    for g in ("linspace", "leading", "trailing"):
        out[f"PLMS[{g}]"] = ("PNDMScheduler", {"skip_prk_steps": True, "timestep_spacing": g, "set_alpha_to_one": True})
        out[f"KDPM2[{g}]"] = ("KDPM2DiscreteScheduler", grids[g])
        out[f"DDIM-eta1[{g}]"] = ("DDIMScheduler", {"timestep_spacing": g, "clip_sample": False,
                                                    "set_alpha_to_one": True, "_eta": 1.0})
        out[f"EulerAncestral[{g}]"] = ("EulerAncestralDiscreteScheduler", grids[g])
        out[f"DDPM[{g}]"] = ("DDPMScheduler", {"timestep_spacing": g, "clip_sample": False})
    out["KDPM2[karras]"] = ("KDPM2DiscreteScheduler", grids["karras"])
    for g in ("linspace", "trailing", "karras"):
        out[f"KDPM2Ancestral[{g}]"] = ("KDPM2AncestralDiscreteScheduler", grids[g])
        out[f"DPMMultistep-sde-dpmsolver++-2M[{g}]"] = (
            "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, **grids[g]})
    for po, co in ((2, 2), (3, 3)):
        for g in ("linspace", "trailing", "karras"):
            out[f"SASolver-p{po}c{co}[{g}]"] = ("SASolverScheduler", {"predictor_order": po, "corrector_order": co,
                                                                      "_tau": 0.0, **grids[g]})
    # diffusers' sigma grids keep the exact sigmas for the solver but call the model at whole timesteps (rounded down
    # on "exp" and "beta": the model is told a little less noise than the solver assumes; to the nearest on "lu").
    # The same solvers with the model called at the sigmas' own (fractional) timesteps show what that costs or buys.
    for name in ("DPMMultistep-dpmsolver-3M[exp]", "DPMMultistep-dpmsolver-2M[exp]", "DEIS-3[exp]", "DEIS-2[exp]",
                 "UniPC-bh2-2[exp]", "DPMMultistep-dpmsolver++-3M[lu]", "DPMMultistep-dpmsolver++-2M[lu]"):
        cls, cfg = out[name]
        out[name.replace("[", "-exact-t[")] = (cls, {**cfg, "_exact_t": True})
    return out


DIFFUSERS = _diffusers_configs()


def run_diffusers(name, model, x_T, schedule, steps, seed=0):
    """diffusers' own loop for ``steps`` (its ``num_inference_steps``); returns (x, model calls)."""
    import diffusers

    cls, cfg = DIFFUSERS[name]
    cfg = dict(cfg)
    eta = cfg.pop("_eta", None)
    exact_t = cfg.pop("_exact_t", False)
    if "_tau" in cfg:  # SA-Solver's stochasticity tau(t): 0 = its ODE variant
        tau = cfg.pop("_tau")
        cfg["tau_func"] = lambda t: tau
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = getattr(diffusers, cls)(num_train_timesteps=schedule.T, trained_betas=schedule.betas.numpy(), **cfg)
        sched.set_timesteps(steps)
    kw = {"eta": eta} if eta is not None else {}
    if "generator" in inspect.signature(sched.step).parameters:
        kw["generator"] = torch.Generator().manual_seed(1000 + seed)
    counted = CountedModel(model)
    x = x_T * sched.init_noise_sigma
    with torch.no_grad():
        for i, t in enumerate(sched.timesteps):
            # exact_t: the (fractional) timestep whose noise level is the solver's sigma
            t_model = float(t_from_sigma(schedule, sched.sigmas[i])) if exact_t else float(t)
            tt = torch.full((x.shape[0],), t_model, dtype=x.dtype)
            x = sched.step(counted(sched.scale_model_input(x, t), tt), t, x, **kw).prev_sample
    return x, counted.nfe


_STEPS: dict = {}


def diffusers_steps(name, schedule, budget):
    """The most ``num_inference_steps`` whose model calls fit ``budget`` (counted with a zero model), or None."""
    key = (name, budget, schedule.T, float(schedule.betas.sum()))
    if key not in _STEPS:
        _STEPS[key] = None
        zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
        for n in range(budget, 0, -1):
            try:
                _, nfe = run_diffusers(name, zero, torch.randn(2, 2), schedule, n)
            except Exception:  # noqa: BLE001 - a configuration that refuses this many steps
                continue
            if nfe <= budget:
                _STEPS[key] = n
                break
    return _STEPS[key]


def run_ours(name, spacing, model, x_T, schedule, budget, seed=0):
    fn, opts = OURS[name]
    opts = dict(opts) if spacing is None else {**opts, "spacing": spacing}
    counted = CountedModel(model)
    steps = min(steps_for(fn, budget, **opts), schedule.T)
    x = fn(counted, x_T, schedule, steps, progress=False, generator=torch.Generator().manual_seed(1000 + seed), **opts)
    return x, counted.nfe


# ------------------------------------------------------------------------------------------ quality
def _directions(D, P=256, seed=0):
    th = torch.randn(D, P, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return th / th.norm(dim=0, keepdim=True)


def mixture_quantiles(mix: GaussianMixture, theta, n):
    """Quantiles at (i + 1/2)/n of theta^T x under the mixture, (n, P), by bisection of the exact CDF."""
    m = mix.means @ theta
    s = torch.einsum("dp,kde,ep->kp", theta, mix.covs, theta).sqrt()
    u = ((torch.arange(n, dtype=torch.float64) + 0.5) / n)[:, None]
    lo = (m - 9 * s).min(0).values.expand(n, -1).clone()
    hi = (m + 9 * s).max(0).values.expand(n, -1).clone()
    w = mix.weights[:, None, None]
    for _ in range(50):
        mid = (lo + hi) / 2
        cdf = (w * 0.5 * (1 + torch.erf((mid[None] - m[:, None]) / (s[:, None] * math.sqrt(2))))).sum(0)
        below = cdf < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def sample_quantiles(ref, theta, n):
    proj = (ref.double().reshape(ref.shape[0], -1) @ theta).sort(0).values
    idx = ((torch.arange(n, dtype=torch.float64) + 0.5) / n * ref.shape[0]).long()
    return proj[idx]


def sw_to_quantiles(x, theta, Q) -> float:
    px = (x.double().reshape(x.shape[0], -1) @ theta).sort(0).values
    if Q.shape[0] != px.shape[0]:  # a screening draw of another size: the quantiles at its positions
        Q = Q[((torch.arange(px.shape[0], dtype=torch.float64) + 0.5) / px.shape[0] * Q.shape[0]).long()]
    return float(((px - Q) ** 2).mean().sqrt())


# ------------------------------------------------------------------------------------------ the panel
def _unit_centres(seed: int, k: int = 4, d: int = 16) -> torch.Tensor:
    """``k`` random centres of unit norm in ``d`` dimensions (float64, from ``seed``)."""
    means = torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return means / means.norm(dim=1, keepdim=True)


def hd16() -> GaussianMixture:
    """Four modes in 16 dimensions (unit-norm random centres, std 0.05 to 0.3, weights 0.4 to 0.1)."""
    return GaussianMixture(_unit_centres(3), torch.tensor([0.05, 0.1, 0.2, 0.3], dtype=torch.float64) ** 2,
                           [0.4, 0.3, 0.2, 0.1])


def _mixture(means, stds, weights) -> GaussianMixture:
    return GaussianMixture(torch.tensor(means, dtype=torch.float64),
                           torch.tensor(stds, dtype=torch.float64) ** 2, weights)


def skewed() -> GaussianMixture:
    """Three modes of std 0.1 with weights 0.90 / 0.07 / 0.03 (a sampler that drifts to the big mode shows)."""
    return _mixture([[-0.8, 0.0], [0.6, 0.5], [0.4, -0.8]], [0.1, 0.1, 0.1], [0.90, 0.07, 0.03])


def unequal() -> GaussianMixture:
    """Three modes of std 0.02, 0.1 and 0.4 (weights 0.5 / 0.3 / 0.2): one grid cannot suit all three scales."""
    return _mixture([[-0.9, 0.3], [0.8, 0.6], [0.2, -0.6]], [0.02, 0.1, 0.4], [0.5, 0.3, 0.2])


def very_unequal() -> GaussianMixture:
    """Skewed weights and spreads 160 times apart: std 0.005 (weight 0.6), 0.05 (0.3), 0.8 (0.1)."""
    return _mixture([[0.7, 0.7], [-0.7, 0.2], [0.0, -0.3]], [0.005, 0.05, 0.8], [0.6, 0.3, 0.1])


def skewed16() -> GaussianMixture:
    """16-D: four modes (unit-norm random centres) of std 0.01, 0.05, 0.2, 0.5 with weights 0.85 / 0.1 / 0.04 / 0.01."""
    return GaussianMixture(_unit_centres(4), torch.tensor([0.01, 0.05, 0.2, 0.5], dtype=torch.float64) ** 2,
                           [0.85, 0.1, 0.04, 0.01])


MIXTURES = {"ring8": "ring8", "two": "two", "grid9": "grid9", "tight": "tight", "broad": "broad",
            "multiscale": "multiscale", "cross": "cross", "ring8@cosine": "ring8", "tight@cosine": "tight",
            "broad@cosine": "broad", "hd16": hd16,
            # issue 26's widened panel: skewed weights, unequal and very unequal spreads, in 2-D and 16-D
            "skewed": skewed, "unequal": unequal, "very_unequal": very_unequal, "skewed16": skewed16}
PANEL = list(MIXTURES) + ["toy2d", "digits"]
CORE = ["tight", "broad", "multiscale", "cross", "ring8", "toy2d", "digits"]  # --quick: the panel


@dataclass
class Problem:
    name: str
    model: Callable
    schedule: object
    x_T: list  # one starting noise a seed
    quality: Callable  # (x, k) -> dict of measures
    main: str  # the measure the verdict uses
    floor: dict = field(default_factory=dict)  # measures of exact samples / data, mean over seeds
    note: str = ""
    converged: dict = field(default_factory=dict)  # measures of the reference ODE solution, mean over seeds


def _converged(quality, refs) -> dict:
    """The main measures of the high-accuracy ODE solutions themselves: what an exact solver of this schedule's
    probability-flow ODE (from t = T-1 to the clean data, the last step a denoise at t = 0) scores. A few-step
    sampler scoring clearly below it has not solved the ODE better: its errors happen to cancel the ODE's own,
    unless its last step is better than that denoise (``final="trapezoid"``: on skewed16 the converged ODE
    scores MMD 82.9, DPM-Solver-3M with the trapezoid 2.7, because the denoise shrinks the sd-0.01 mode)."""
    runs = [quality(r, k) for k, r in enumerate(refs)]
    return {m: statistics.mean(r[m] for r in runs) for m in runs[0] if m != "ODE"}


def _reference(model, x_T, schedule, steps):
    with torch.no_grad():
        return sample_dpm_solver(model, x_T, schedule, steps, order=3, spacing="logsnr", progress=False)


def make_problem(name, n, seeds, digit_n=256) -> Problem:
    if name in MIXTURES:
        spec = MIXTURES[name]
        mix = spec() if callable(spec) else named_mixture(spec)
        schedule = cosine(1000) if name.endswith("@cosine") else linear(1000)
        model = mix.eps_model(schedule)
        theta = _directions(mix.D)
        Q = mixture_quantiles(mix, theta, n)
        x_T = [torch.randn(n, mix.D, generator=torch.Generator().manual_seed(100 + k)) for k in range(seeds)]
        refs = [_reference(model, x.double(), schedule, 150) for x in x_T]  # float64 reference, float32 runs

        def quality(x, k):
            x = x.double()
            if not torch.isfinite(x).all():
                return {"MMD": math.nan, "SW": math.nan, "ODE": math.nan}
            return {"MMD": 1e4 * metrics.mmd(x, mix), "SW": sw_to_quantiles(x, theta, Q),
                    "ODE": float((x - refs[k][: x.shape[0]]).pow(2).sum(1).mean().sqrt())}

        exact = [quality(mix.sample(n, generator=torch.Generator().manual_seed(50 + k)).double(), k)
                 for k in range(seeds)]
        floor = {m: statistics.mean(e[m] for e in exact) for m in ("MMD", "SW")}
        return Problem(name, model, schedule, x_T, quality, "MMD", floor, f"{mix.K} modes in {mix.D}-D, "
                       f"{'cosine' if name.endswith('@cosine') else 'linear'} schedule, n={n}",
                       _converged(quality, refs))
    from ddlearn import pretrained

    model, schedule = pretrained.load(name)
    if name == "toy2d":
        held = data.swiss_roll(20_000, split="test", seed=123)
        theta = _directions(2)
        Q = sample_quantiles(held, theta, n)
        x_T = [torch.randn(n, 2, generator=torch.Generator().manual_seed(100 + k)) for k in range(seeds)]
        refs = [_reference(model, x, schedule, 150) for x in x_T]

        def quality(x, k):
            if not torch.isfinite(x).all():
                return {"MMD": math.nan, "SW": math.nan, "ODE": math.nan}
            return {"MMD": 1e4 * metrics.mmd(x, held), "SW": sw_to_quantiles(x, theta, Q),
                    "ODE": float((x - refs[k][: x.shape[0]]).double().pow(2).sum(1).mean().sqrt())}

        train = [data.swiss_roll(n, split="train", seed=k) for k in range(seeds)]
        floor = {m: statistics.mean(quality(t, 0)[m] for t in train) for m in ("MMD", "SW")}
        return Problem(name, model, schedule, x_T, quality, "MMD", floor,
                       f"swiss-roll MLP (shipped), against 20,000 held-out points, n={n}", _converged(quality, refs))
    if name == "digits":
        held = data.digits("test")
        x_T = [torch.randn(digit_n, 1, 16, 16, generator=torch.Generator().manual_seed(100 + k)) for k in range(seeds)]
        refs = [_reference(model, x, schedule, 40) for x in x_T]

        def quality(x, k):
            if not torch.isfinite(x).all():
                return {"FDD": math.nan, "ODE": math.nan}
            ode = float((x - refs[k][: x.shape[0]]).pow(2).mean().sqrt())  # per pixel
            return {"FDD": metrics.frechet_digit_distance(x.float().clamp(-1, 1), held), "ODE": ode}

        train = data.digits("train")
        floor = {"FDD": statistics.mean(
            metrics.frechet_digit_distance(train[torch.randperm(train.shape[0], generator=torch.Generator()
                                                                .manual_seed(k))[:digit_n]], held)
            for k in range(seeds))}
        return Problem(name, model, schedule, x_T, quality, "FDD", floor,
                       f"16x16 UNet (shipped), {digit_n} images a draw against the 359 held-out digits; "
                       "ODE per pixel, reference DPM-Solver-3 with 40 steps",
                       _converged(lambda x, k: quality(x.clamp(-1, 1), k), refs))
    raise ValueError(f"unknown problem {name!r}; choose from {PANEL}")


# ------------------------------------------------------------------------------------------ running
@dataclass
class Result:
    problem: str
    library: str
    config: str
    budget: int
    nfe: int | None
    runs: list  # one dict of measures a seed
    wall: float = 0.0
    error: str = ""

    def values(self, m):
        return [r[m] for r in self.runs]

    def mean(self, m):
        v = self.values(m)
        return statistics.mean(v) if v else math.nan

    def sd(self, m):
        v = self.values(m)
        return statistics.stdev(v) if len(v) > 1 else 0.0


def ours_configs():
    for name in OURS:
        for sp in SPACINGS:
            if final_of(name) in ("sigma_min", "trapezoid") and not _grid_ends_at_zero(sp):
                continue  # "trailing" stops at T/N - 1: these endings refuse it
            yield name, sp, f"{name}[{sp}]" + (" (default)" if is_default(name, sp) else "")


def evaluate(problem: Problem, budget: int, *, only=None, seeds=None, libraries=("ddlearn", "diffusers"),
             ours=None) -> list[Result]:
    """Every configuration of ours (or of the samplers named in ``ours``) and every diffusers configuration (or
    those of diffusers named in ``only``)."""
    x_Ts = problem.x_T if seeds is None else problem.x_T[:seeds]
    out = []
    for name, sp, label in ours_configs():
        if "ddlearn" not in libraries or (ours is not None and name not in ours):
            continue
        runs, wall, nfe = [], 0.0, None
        for k, x_T in enumerate(x_Ts):
            t0 = time.perf_counter()
            x, nfe = run_ours(name, sp, problem.model, x_T, problem.schedule, budget, seed=k)
            wall += time.perf_counter() - t0
            runs.append(problem.quality(x, k))
        out.append(Result(problem.name, "ddlearn", label, budget, nfe, runs, wall / len(x_Ts)))
    for name in DIFFUSERS:
        if "diffusers" not in libraries or (only is not None and name not in only):
            continue
        steps = diffusers_steps(name, problem.schedule, budget)
        if steps is None:
            out.append(Result(problem.name, "diffusers", name, budget, None, [], error="no step count fits"))
            continue
        runs, wall, nfe, err = [], 0.0, None, ""
        for k, x_T in enumerate(x_Ts):
            try:
                t0 = time.perf_counter()
                x, nfe = run_diffusers(name, problem.model, x_T, problem.schedule, steps, seed=k)
                wall += time.perf_counter() - t0
                runs.append(problem.quality(x, k))
            except Exception as e:  # noqa: BLE001 - report, don't hide, a configuration diffusers refuses
                err = f"{type(e).__name__}: {str(e)[:80]}"
                runs = []
                break
        out.append(Result(problem.name, "diffusers", name, budget, nfe, runs, wall / max(len(x_Ts), 1), err))
    return out


def fmt(r: Result, m):
    if not r.runs or math.isnan(r.mean(m)):
        return "-"
    return f"{r.mean(m):.4g} +- {r.sd(m):.2g}"


def paired(a: Result, b: Result, m):
    """Mean and standard error of a - b over the shared seeds."""
    d = [x[m] - y[m] for x, y in zip(a.runs, b.runs)]
    if len(d) < 2:
        return statistics.mean(d), math.inf
    return statistics.mean(d), statistics.stdev(d) / math.sqrt(len(d))


def verdict(a: Result, b: Result, m):
    diff, se = paired(a, b, m)
    if math.isnan(diff):
        return "n/a"
    if abs(diff) <= 2 * se:
        return "tie"
    return "ours better" if diff < 0 else "diffusers better"


def best(results, m, library, defaults_only=False):
    cands = [r for r in results if r.library == library and r.runs and not math.isnan(r.mean(m))
             and (not defaults_only or r.config.endswith("(default)"))]
    return min(cands, key=lambda r: r.mean(m)) if cands else None


def print_table(problem, results, top):
    measures = list(results[0].runs[0]) if results and results[0].runs else []
    print(f"\n== {problem.name} ({problem.note}) at {results[0].budget} evaluations; "
          + ", ".join(f"exact samples {k} {v:.4g}" for k, v in problem.floor.items())
          + "".join(f"; converged ODE {k} {v:.4g}" for k, v in problem.converged.items()))
    head = f"{'library':9s} {'configuration':44s} {'NFE':>4s}" + "".join(f" {m:>18s}" for m in measures) + f" {'s/run':>6s}"
    print(head)
    main = problem.main
    ranked = sorted([r for r in results if r.runs], key=lambda r: (math.isnan(r.mean(main)), r.mean(main)))
    shown_theirs = 0
    for r in ranked:
        if r.library == "diffusers":
            shown_theirs += 1
            if top is not None and shown_theirs > top:
                continue
        print(f"{r.library:9s} {r.config:44s} {r.nfe or 0:4d}" + "".join(f" {fmt(r, m):>18s}" for m in measures)
              + f" {r.wall:6.2f}")
    hidden = sum(r.library == "diffusers" for r in ranked) - (top or 10 ** 9)
    if top is not None and hidden > 0:
        print(f"  ({hidden} more diffusers configurations, all worse on {main}; --top 0 prints every one)")
    for r in results:
        if not r.runs:
            print(f"  {r.library} {r.config}: {r.error}")


def grid_table(all_results, budget):
    """How each grid does for each of our samplers across the panel, and the grid a robust default would take.

    Per problem: log2 of (measure + c) / (best grid's measure + c) on the main measure, c twice the
    median seed-to-seed sd of our configurations there (so grids within noise of the best score
    about 0; MMD is unbiased and can be ~0). The robust choice minimises the worst problem, then the mean, over the
    linear-schedule problems (the defaults' rule, :mod:`ddlearn.samplers.spacing`: every shipped discrete-time model
    is on the linear schedule); the choice over both schedules is printed beside it.
    """
    problems = [p for p in PANEL if any(r.problem == p and r.budget == budget for r in all_results)]
    pick, per_function = {}, {}
    print(f"\nGrid choice at {budget} evaluations: log2((m + c) / (best + c)) on the main measure, 0 = this "
          "sampler's best grid on that problem, either final= (c = 2 x median seed sd there)")
    def runs_of(names):
        return {(r.problem, r.config.split("[")[1].split("]")[0], r.config.split("[")[0]): r for r in all_results
                if r.budget == budget and r.library == "ddlearn" and r.config.split("[")[0] in names and r.runs}

    for name in OURS:
        mine = {(p, g): r for (p, g, _), r in runs_of({name}).items()}
        if not mine:
            continue
        # the reference on each problem: the best grid of this sampler with either final= (the same method and
        # order), so a final that is worse everywhere scores above 0 on its best grid too
        family = runs_of(family_of(name)).values()
        print(f"\n{name}:")
        print(f"{'grid':10s}" + "".join(f"{p[:11]:>12s}" for p in problems) + f"{'worst':>8s}{'mean':>8s}"
              + f"{'lin. worst':>11s}")
        score, linear_score = {}, {}
        for sp in SPACINGS:
            row = []
            for p in problems:
                main = "FDD" if p == "digits" else "MMD"
                rs = [r for r in family if r.problem == p and not math.isnan(r.mean(main))]
                if (p, sp) not in mine or not rs or math.isnan(mine[p, sp].mean(main)):
                    row.append(math.nan)
                    continue
                c = 2 * statistics.median(r.sd(main) for r in rs) if main == "MMD" else 0.0
                b = min(r.mean(main) for r in rs)
                row.append(math.log2((mine[p, sp].mean(main) + c) / (b + c)) if b + c > 0 else math.nan)
            ok = [v for v in row if not math.isnan(v)]
            score[sp] = (max(ok), statistics.mean(ok)) if ok else (math.inf, math.inf)
            lin = [v for v, p in zip(row, problems) if not math.isnan(v) and not p.endswith("@cosine")]
            linear_score[sp] = (max(lin), statistics.mean(lin)) if lin else (math.inf, math.inf)
            print(f"{sp:10s}" + "".join(f"{v:12.2f}" for v in row) + f"{score[sp][0]:8.2f}{score[sp][1]:8.2f}"
                  + f"{linear_score[sp][0]:11.2f}")
        pick[name] = min(linear_score, key=linear_score.get)
        fn = OURS[name][0]
        per_function.setdefault(fn, []).append((final_of(name), linear_score))
        print(f"  robust choice (linear schedule): {pick[name]}; over both schedules: {min(score, key=score.get)}; "
              f"default now: {default_spacing(fn)}")
    print("\nOne grid a function (its orders together: the worst of their linear-schedule worst scores, then the "
          "mean of their means; a sampler with final= takes a grid and an ending together):")
    for fn, scores in per_function.items():
        combined = {}
        for final in dict.fromkeys(f for f, _ in scores):
            same_final = [sc for f, sc in scores if f == final]
            for sp in same_final[0]:
                combined[final, sp] = (max(sc[sp][0] for sc in same_final),
                                       statistics.mean(sc[sp][1] for sc in same_final))
        (final, choice) = min(combined, key=combined.get)
        print(f"  {fn.__name__:30s} {choice:10s}" + (f" final={final}" if final else "")
              + f" (worst {combined[final, choice][0]:.2f}); default now: {default_spacing(fn)}"
              + (f", final={_default(fn, 'final')}" if final else ""))
    return pick


def main_measure(problem: str) -> str:
    return "FDD" if problem == "digits" else "MMD"


def relabel(results):
    """Mark each of our configurations "(default)" by the samplers' signatures now (a CSV keeps the old marks)."""
    defaults = {f"{name}[{sp}]" for name in OURS for sp in SPACINGS if is_default(name, sp)}
    for r in results:
        if r.library == "ddlearn":
            base = r.config.replace(" (default)", "")
            r.config = base + (" (default)" if base in defaults else "")
    return results


def summary_table(results, budget, converged=None):
    """Per problem: our best sampler with default arguments against diffusers' best configuration.

    ``ratio``: ours / diffusers' on that measure (means; below 1 ours is better). ``converged``:
    {(problem, measure): value} of the high-accuracy ODE solution (:func:`_converged`), printed beside.
    """
    converged = converged or {}
    problems = list(dict.fromkeys(r.problem for r in results if r.budget == budget))
    print(f"\nSummary at {budget} evaluations: our best sampler with default arguments against diffusers' best "
          "configuration (mean +- sd over draws of x_T; tie = paired difference within 2 standard errors; ratio = "
          "ours / diffusers'; conv. = the converged ODE solution's own score)")
    for p in problems:
        res = [r for r in results if r.problem == p and r.budget == budget]
        first = next((r for r in res if r.runs), None)
        if first is None:
            continue
        main = main_measure(p)
        for m in [main] + [x for x in first.runs[0] if x != main]:
            o, t, a = best(res, m, "ddlearn", True), best(res, m, "diffusers"), best(res, m, "ddlearn")
            if o is None:
                continue
            theirs = f"{t.config} {fmt(t, m)}" if t is not None else "(not run)"
            ratio = o.mean(m) / t.mean(m) if t is not None and t.mean(m) > 0 and o.mean(m) > 0 else math.nan
            conv = converged.get((p, m))
            print(f"{p:14s} {m:4s} ours {o.config.replace(' (default)', '') + ' ' + fmt(o, m):>42s}"
                  f"  diffusers {theirs:>60s}  {verdict(o, t, m) if t is not None else '':>16s}"
                  f"  ratio {ratio:5.2f}  conv. {'-' if conv is None else f'{conv:.4g}':>7s}"
                  f"   (ours, any grid: {a.config.replace(' (default)', '')} {fmt(a, m)})")


def load_csv(paths, converged=None):
    """Results from CSVs written by --csv (several runs, e.g. one a piece of the panel); the converged ODE's
    scores go into ``converged`` ({(problem, measure): value}) when a dict is given."""
    runs: dict = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if row["library"] == "floor":
                    if converged is not None and row["configuration"] == "converged ODE":
                        converged[row["problem"], row["measure"]] = float(row["value"])
                    continue
                key = (row["problem"], row["library"], row["configuration"].replace(" (default)", ""),
                       int(row["budget"]))
                r = runs.setdefault(key, Result(key[0], key[1], key[2], key[3],
                                                int(row["nfe"]) if row["nfe"] else None, []))
                k = int(row["seed"])
                while len(r.runs) <= k:
                    r.runs.append({})
                r.runs[k][row["measure"]] = float(row["value"])
                r.wall = float(row["wall_s"] or 0)
    return relabel(list(runs.values()))


def overhead_table(schedule):
    """Per-step cost of the sampler itself: a model that returns zeros, 64 points, 50 steps, best of 10."""
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    pairs = {"DDIM[trailing]": ("DDIM", "trailing", "DDIM[trailing]"),
             "DPM-Solver++(2M)[logsnr]": ("DPM-Solver++(2M)", "logsnr", "DPMMultistep-dpmsolver++-2M[lu]"),
             "DPM-Solver++(2M)[karras]": ("DPM-Solver++(2M)", "karras", "DPMMultistep-dpmsolver++-2M[karras]"),
             "Heun[karras]": ("Heun", "karras", "Heun[karras]")}
    print("\nPer-step overhead (model returns zeros; 64 x 2 points; 50 steps; best of 10 runs)")
    print(f"{'sampler':28s} {'ours us/step':>13s} {'diffusers us/step':>18s} {'ratio':>6s}")
    for label, (name, sp, theirs) in pairs.items():
        fn, opts = OURS[name]
        steps = 50
        budget = fn.evaluations(steps, **{**opts, "spacing": sp})
        n_theirs = diffusers_steps(theirs, schedule, budget)
        run_ours(name, sp, zero, x_T, schedule, budget)
        run_diffusers(theirs, zero, x_T, schedule, n_theirs)
        best_o = best_t = math.inf
        for _ in range(10):
            t0 = time.perf_counter()
            run_ours(name, sp, zero, x_T, schedule, budget)
            best_o = min(best_o, time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_diffusers(theirs, zero, x_T, schedule, n_theirs)
            best_t = min(best_t, time.perf_counter() - t0)
        print(f"{label:28s} {1e6 * best_o / steps:13.1f} {1e6 * best_t / steps:18.1f} {best_o / best_t:6.2f}")


def screen(problem, budget, keep, n, libraries=("ddlearn", "diffusers")):
    """Every configuration on the first ``n`` points (images) of one draw of x_T; returns the names to run in
    full: all of ours (the grid choice needs every grid) and the ``keep`` best of diffusers' on each measure.
    With ``keep`` well above the number of configurations within noise of the best, the best one on the full
    draws is among them (the screen's own table is printed: check it)."""
    small = Problem(problem.name, problem.model, problem.schedule, [problem.x_T[0][:n]], problem.quality,
                    problem.main)
    res = evaluate(small, budget, libraries=tuple(lib for lib in libraries if lib == "diffusers"))
    keep_set = set()  # diffusers' names (ours all run)
    measures = list(next((r for r in res if r.runs), Result("", "", "", 0, 0, [{}])).runs[0])
    for m in measures:
        rs = sorted([r for r in res if r.library == "diffusers" and r.runs and not math.isnan(r.mean(m))],
                    key=lambda r: r.mean(m))
        keep_set |= {r.config for r in rs[:keep if m == problem.main else max(keep // 4, 2)]}
    # a kept configuration's exact-time twin goes on too, so the two are paired on the full draws
    keep_set |= {r.config for r in res if "-exact-t[" in r.config and r.config.replace("-exact-t[", "[") in keep_set}
    print(f"({problem.name} at {budget}: screened {len(res)} diffusers configurations on {n} points of one draw; "
          f"{len(keep_set)} configurations go on to the full draws)")
    if res:
        print_table(small, res, keep)
    return keep_set


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problems", default=",".join(PANEL), help=f"comma-separated, from {PANEL}")
    p.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    p.add_argument("--n", type=int, default=3000, help="samples a draw on the point problems")
    p.add_argument("--digit-n", type=int, default=256, help="images a draw on digits")
    p.add_argument("--seeds", type=int, default=3, help="draws of x_T")
    p.add_argument("--screen", type=int, default=12,
                   help="run every diffusers configuration on one small draw first and keep this many best on "
                        "the main measure (a quarter as many on the others) for the full draws (0: run all in full)")
    p.add_argument("--screen-n", type=int, default=800, help="points of the screening draw (digits: images / 4)")
    p.add_argument("--top", type=int, default=12, help="diffusers configurations printed a problem (0: all)")
    p.add_argument("--csv", default="", help="write every run (one row a configuration and seed) here")
    p.add_argument("--list", action="store_true", help="print the problems and configurations, run nothing")
    p.add_argument("--quick", action="store_true",
                   help=f"the core panel {CORE}, screened (--screen 12), digits with 2 draws of 64 images")
    p.add_argument("--report", default="", help="comma-separated CSVs of earlier runs: print the grid choice "
                   "and the summary from them (defaults as the samplers' signatures say now), run nothing")
    p.add_argument("--overhead-only", action="store_true")
    p.add_argument("--ours-only", action="store_true", help="run only ddlearn's configurations (to add to a CSV)")
    p.add_argument("--ours", default="", help="comma-separated: run only these of our samplers (every grid), e.g. "
                                             "'DPM-Solver-3M' after a change to it; --report a later CSV over an "
                                             "earlier one replaces its rows")
    p.add_argument("--diffusers-only", action="store_true", help="run only diffusers' configurations")
    p.add_argument("--no-overhead", action="store_true", help="skip the per-step overhead table")
    args = p.parse_args(argv)
    if args.list:
        print("problems:", ", ".join(PANEL))
        print("ours:", ", ".join(label for *_, label in ours_configs()))
        print(f"diffusers ({len(DIFFUSERS)}):", ", ".join(DIFFUSERS))
        return
    if args.overhead_only:
        return overhead_table(linear(1000))
    if args.quick:
        if args.problems == ",".join(PANEL):
            args.problems = ",".join(CORE)
        args.screen = args.screen or 12
        args.digit_n = min(args.digit_n, 64)
    if args.report:
        conv: dict = {}
        results = load_csv(args.report.split(","), conv)
        for b in sorted({r.budget for r in results}):
            grid_table(results, b)
            summary_table(results, b, conv)
        return
    budgets = [int(b) for b in args.budgets.split(",")]
    ours = args.ours.split(",") if args.ours else None
    unknown = sorted(set(ours or ()) - set(OURS))
    if unknown:
        p.error(f"--ours: unknown sampler(s) {unknown}; choose from {list(OURS)}")
    import diffusers

    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, 1 thread; budgets {budgets}; "
          f"{args.seeds} draws of x_T")
    everything, conv = [], {}
    sink = None
    if args.csv:
        sink_file = open(args.csv, "w", newline="")
        sink = csv.writer(sink_file)
        sink.writerow(["problem", "library", "configuration", "budget", "nfe", "seed", "measure", "value", "wall_s"])
    for name in args.problems.split(","):
        t0 = time.perf_counter()
        problem = make_problem(name, args.n, args.seeds, args.digit_n)
        conv.update({(name, m): v for m, v in problem.converged.items()})
        for b in budgets:
            libs = ("ddlearn",) if args.ours_only else ("diffusers",) if args.diffusers_only else ("ddlearn", "diffusers")
            only = None
            if args.screen and "diffusers" in libs:
                only = screen(problem, b, args.screen, args.screen_n // 4 if name == "digits" else args.screen_n)
            res = evaluate(problem, b, only=only, libraries=libs, ours=ours)
            everything += res
            if sink is not None:
                for r in res:
                    for k, run in enumerate(r.runs):
                        for m, v in run.items():
                            sink.writerow([r.problem, r.library, r.config, r.budget, r.nfe, k, m, v, f"{r.wall:.4f}"])
                for m, v in problem.floor.items():
                    sink.writerow([problem.name, "floor", "exact samples", b, "", "", m, v, ""])
                for m, v in problem.converged.items():
                    sink.writerow([problem.name, "floor", "converged ODE", b, "", "", m, v, ""])
                sink_file.flush()
            if res:
                print_table(problem, res, args.top or None)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    for b in budgets:
        grid_table(everything, b)
        summary_table(everything, b, conv)
    if args.csv:
        print(f"every run written to {args.csv}")
    if not args.no_overhead:
        overhead_table(linear(1000))


if __name__ == "__main__":
    main()
