# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 05 - Fast samplers
#
# Ancestral sampling (Chapter 02) walks all 1000 steps of the reverse chain:
# 1000 network evaluations per sample. This chapter gets the same samples
# from 10 to 20. The trick is to stop seeing sampling as a chain of random
# steps and to see it as solving an ordinary differential equation, the
# probability-flow ODE, with a good numerical method. By the end you will be
# able to
#
# * write the probability-flow ODE in the variables that make it simple
#   (noise level $\sigma$, or half log-SNR $\lambda$);
# * derive DDIM as one Euler step of that ODE, Heun's method (EDM) as its
#   second-order correction, and DPM-Solver as an exponential integrator;
# * measure each method's order of convergence on an exact oracle, where the
#   true answer is known, and read it off a log-log plot;
# * compare samplers fairly, at an equal number of network evaluations, on a
#   2-D model and on digits, and against the diffusers library;
# * choose a sampler and a timestep spacing for a given budget.
#
# Every sampler has the book's one signature,
# `sample_NAME(model, x_T, schedule, steps, *, spacing=..., generator=None, callback=None, progress=True)`,
# and works with a trained network and with an exact oracle alike.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import data, metrics, param, pretrained, viz, widgets
from ddlearn.config import is_fast, pick
from ddlearn.notebook import check, show_source
from ddlearn.oracles import named_mixture
from ddlearn.samplers import (CountedModel, sample_ancestral, sample_ddim, sample_dpm_solver,
                              sample_dpm_solver_multistep, sample_dpm_solver_pp, sample_euler, sample_heun,
                              time_grid)
from ddlearn.samplers.spacing import final_step
from ddlearn.report import fmt_mean_sd
from ddlearn.samplers.compare import FAST_SAMPLERS, run_at_budget
from ddlearn.schedules import linear

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)

# %% [markdown]
# ## 1. The probability-flow ODE, in the variables that make it simple
#
# Chapter 04 shows that the forward diffusion
# $dx = f(t)\,x\,dt + g(t)\,dw$ has a deterministic twin, the
# **probability-flow ODE** (Song et al. 2021, "Score-based generative modeling
# through SDEs"),
#
# $$\frac{dx}{dt} = f(t)\,x - \tfrac12 g(t)^2\,\nabla_x \log p_t(x),$$
#
# whose solutions carry samples of $p_t$ to samples of $p_s$ at every pair of
# times: start it from $x_T \sim \mathcal N(0, I)$ and integrate back to
# $t = 0$, and you hold a sample of the data. That is all we need from
# Chapter 04. A network trained to predict the noise gives the score,
# $\nabla \log p_t(x) = -\hat\epsilon(x, t)/\sqrt{1-\bar\alpha_t}$ (`ddlearn.param`).
#
# For the variance-preserving process of this book, $x_t = \sqrt{\bar\alpha_t}\,x_0 +
# \sqrt{1-\bar\alpha_t}\,\epsilon$. Divide by $\sqrt{\bar\alpha_t}$:
#
# $$y = \frac{x}{\sqrt{\bar\alpha_t}} = x_0 + \sigma\,\epsilon,\qquad
#   \sigma = \sqrt{\frac{1-\bar\alpha_t}{\bar\alpha_t}},$$
#
# a *variance-exploding* view with noise level $\sigma$ (`schedule.sigma(t)`).
# In $(y, \sigma)$ the ODE loses its linear term and becomes (Karras et al. 2022)
#
# $$\boxed{\;\frac{dy}{d\sigma} = \hat\epsilon\big(\sqrt{\bar\alpha}\,y,\ t(\sigma)\big)
#   = \frac{y - \hat x_0(y)}{\sigma}\;}$$
#
# where $\hat x_0 = D(y;\sigma)$ is the denoiser. The slope is simply the
# predicted noise. The schedule only decides *which* $\sigma$ belongs to which
# timestep $t$; the sampler may visit any $\sigma$ it likes, fractional
# timesteps included.
#
# We test everything on an **exact oracle**: the ring of 8 Gaussians, whose
# $\hat\epsilon$ is known in closed form (`ddlearn.oracles`). With no learning
# error, whatever goes wrong is the sampler's fault.

# %%
schedule = linear(1000)
ring = named_mixture("ring8")
oracle = ring.eps_model(schedule)  # model(x_t, t) -> eps, exactly
print(schedule, "| sigma from", f"{schedule.sigmas[0].item():.4f} (t=0) to {schedule.sigmas[-1].item():.1f} (t=999)")

# %% [markdown]
# ## 2. DDIM is Euler's method
#
# One Euler step of the boxed ODE from $\sigma_t$ down to $\sigma_s$ is
# $y_s = y_t + (\sigma_s - \sigma_t)\,\hat\epsilon$. Multiply by
# $\sqrt{\bar\alpha_s}$ and substitute $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$:
#
# $$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\hat\epsilon .$$
#
# That is the DDIM update of Song, Meng & Ermon (2021): predict the clean
# sample, then re-noise it to the next level *with the same noise*. Their
# derivation was different (a non-Markovian forward process with the same
# marginals); the ODE view explains why it works with few steps, and predicts
# that it is first order: halve the step, halve the error. With `eta > 0`
# part of the re-noising uses fresh noise; `eta = 1` on every timestep is
# ancestral sampling again.

# %%
show_source(sample_ddim, docstring=False)

# %% [markdown]
# The last step, to the clean data ($\sigma = 0$), lands exactly on
# $\hat x_0$; every sampler here ends that way. Euler in $\sigma$
# (`sample_euler`) and first-order DPM-Solver should then be the *same
# method*. Check it on the oracle:

# %%
x_T = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
a = sample_ddim(oracle, x_T, schedule, 12, spacing="karras", progress=False)
b = sample_euler(oracle, x_T, schedule, 12, spacing="karras", progress=False)
c = sample_dpm_solver(oracle, x_T, schedule, 12, order=1, spacing="karras", progress=False)
print(f"max |DDIM - Euler| = {(a - b).abs().max():.1e},  max |DDIM - DPM-Solver-1| = {(a - c).abs().max():.1e}")

# %% [markdown]
# ## 3. Higher order: Heun (EDM) and DPM-Solver
#
# **Heun** (Karras et al. 2022, Algorithm 1). Take the Euler step as a
# *predictor*, evaluate the slope where it lands, and step again with the
# average of the two slopes (the trapezoid rule). Two evaluations per step,
# second order. The last step to $\sigma = 0$ stays Euler (the slope
# $(y - \hat x_0)/\sigma$ is undefined there), so $N$ steps cost $2N - 1$
# evaluations. EDM's optional *churn* adds a little fresh noise before a step
# (raise $\sigma$ to $\sigma(1+\gamma)$, then solve back down), which trades
# some determinism for robustness to accumulated error.

# %%
show_source(sample_heun, docstring=False)

# %% [markdown]
# **DPM-Solver** (Lu et al. 2022). Go back to $x$ and use
# $\lambda = \log(\alpha_t/\sigma_t)$, half the log-SNR, with the VP pair
# $\alpha_t = \sqrt{\bar\alpha_t}$, $\sigma_t = \sqrt{1-\bar\alpha_t}$. The linear
# part of the ODE is solved exactly (variation of constants), which leaves
#
# $$x_t = \frac{\alpha_t}{\alpha_s}x_s - \alpha_t\int_{\lambda_s}^{\lambda_t}
#    e^{-\lambda}\,\hat\epsilon(x_\lambda, \lambda)\,d\lambda .$$
#
# Only the network term is approximated. The simplest choice holds
# $\hat\epsilon$ at its value $\hat\epsilon_s = \hat\epsilon(x_s, s)$ at the start
# of the step; the exponential weight then integrates exactly,
# $\alpha_t\int_{\lambda_s}^{\lambda_t} e^{-\lambda}\,d\lambda = \alpha_t e^{-\lambda_t}(e^{h}-1)
# = \sigma_t(e^{h}-1)$ with $h = \lambda_t - \lambda_s > 0$ (because
# $\alpha_t e^{-\lambda_t} = \sigma_t$). That is the **first-order step**, DPM-Solver-1:
#
# $$x_t = \frac{\alpha_t}{\alpha_s}x_s - \sigma_t\,(e^{h}-1)\,\hat\epsilon_s .$$
#
# Since $\sigma_t e^{h} = \alpha_t\sigma_s/\alpha_s$, it rearranges to
# $x_t = \alpha_t\,\frac{x_s - \sigma_s\hat\epsilon_s}{\alpha_s} + \sigma_t\hat\epsilon_s
# = \alpha_t\hat x_0 + \sigma_t\hat\epsilon_s$: DDIM again, which is why the check
# above found DPM-Solver-1 and DDIM equal to $10^{-15}$. Higher orders
# Taylor-expand $\hat\epsilon$ in $\lambda$ around $\lambda_s$,
# $\hat\epsilon_\lambda \approx \hat\epsilon_s + (\lambda-\lambda_s)\,\hat\epsilon^{(1)}_s + \dots$,
# integrate each term against $e^{-\lambda}$ exactly, and estimate the
# derivatives by finite differences of $\hat\epsilon$ at intermediate points
# $\lambda_s + r h$ inside the step ($r = \tfrac12$ for order 2;
# $r = \tfrac13, \tfrac23$ for order 3): one more evaluation per order and
# step. **DPM-Solver++** (Lu et al. 2022b) writes the same integral
# for the bounded data prediction $\hat x_0$ instead of $\hat\epsilon$,
#
# $$x_t = \frac{\sigma_t}{\sigma_s}x_s + \sigma_t\int_{\lambda_s}^{\lambda_t}
#    e^{\lambda}\,\hat x_0(x_\lambda, \lambda)\,d\lambda ,$$
#
# and its multistep "2M" variant estimates the slope of $\hat x_0$ from the
# *previous* step's prediction: second order at one evaluation per step.
#
# The multistep trick works in the noise form too (Lu et al. 2022b, Section
# 4.2; diffusers' `DPMSolverMultistepScheduler(algorithm_type="dpmsolver")`).
# **DPM-Solver-2M** (`sample_dpm_solver_multistep`) takes the first-order step
# of Section 3 and adds the slope of $\hat\epsilon$ in $\lambda$ estimated
# from the previous step's prediction, with $r = (\lambda_s - \lambda_{\rm prev})/h$:
#
# $$x_t = \frac{\alpha_t}{\alpha_s}x_s - \sigma_t(e^{h}-1)\,\hat\epsilon_s
#   - \tfrac12\,\sigma_t(e^{h}-1)\,\frac{\hat\epsilon_s - \hat\epsilon_{\rm prev}}{r} .$$
#
# Again one evaluation per step and second order. The two multistep methods
# extrapolate different quantities ($\hat x_0$ or $\hat\epsilon$); Sections 6
# and 7 measure which does better at small budgets.
#
# Order 3 (`sample_dpm_solver_multistep(order=3)`) takes the quadratic through
# the last three $\hat\epsilon$ in $\lambda$ and integrates it exactly against
# the weight $e^{h-u}$. Write $D_1 = h\hat\epsilon'$ and $D_2 = h^2\hat\epsilon''$
# at $\lambda_s$; the quadratic term is
# $\sigma_t\int_0^h e^{h-u}\tfrac{u^2}{2}\hat\epsilon''\,du
#  = \sigma_t\big(\tfrac{e^h-1-h}{h^2}-\tfrac12\big)D_2$.
# A cautionary tale: Lu et al.'s code and diffusers' `DPMSolverMultistepScheduler`
# multiply the same coefficient by an estimate of $h^2\hat\epsilon''/2$, half of
# $D_2$, so their "third-order" multistep solver is second order. One way to
# catch such a slip is to measure the order: halve the step and see the error
# fall by $2^k$ (`tests/test_dpm_solver_multistep.py` does, and checks each step
# against DEIS, which integrates the same quadratic).

# %%
show_source(sample_dpm_solver_pp, docstring=False)

# %% [markdown]
# ## 4. Where to put the steps
#
# A solver with $N$ steps still has to choose $N$ noise levels. The
# `spacing=` argument, shared by all samplers, offers the common choices:
# uniform in timestep ("leading" and "trailing", as diffusers defines them),
# "quadratic" (DDIM's), "karras" (uniform in $\sigma^{1/7}$, EDM) and "logsnr"
# (uniform in $\lambda$, DPM-Solver's). Plotted as $\sigma$ on a log axis:

# %%
fig, ax = plt.subplots(figsize=(8, 2.8), layout="constrained")
for k, name in enumerate(["leading", "trailing", "quadratic", "karras", "logsnr"]):
    sig = schedule.sigma(time_grid(schedule, 10, name))
    ax.plot(sig, np.full(10, k), "o", ms=5)
ax.set_yticks(range(5), ["leading", "trailing", "quadratic", "karras", "logsnr"])
ax.set_xscale("log")
ax.set_xlabel(r"noise level $\sigma$ of the 10 timesteps (then one last step to $\sigma = 0$)")
plt.show()

# %% [markdown]
# "leading" never visits the noisiest level (it starts at t = 900 for 10
# steps, so $x_T$ is treated as slightly less noisy than it is); "trailing"
# starts at t = 999 but never comes closer to the data than t = 99; the last
# three span the whole range from $\sigma = 157$ to $\sigma_{\min} = 0.01$ but
# spend their steps differently. "logsnr" is uniform in $\log\sigma$.
# "karras" ($\rho = 7$) is *not* the grid with most steps at small $\sigma$:
# against log-SNR spacing it is denser at *large* $\sigma$ (4 of its 10
# levels above $\sigma = 10$, log-SNR 3) and sparser near the data (2 below
# 0.1, log-SNR 3; it strides $1.25 \to 0.35 \to 0.074 \to 0.01$), as the
# plot shows (levels from `schedule.sigma(time_grid(schedule, 10, name))`).
# Only against the grids uniform in t does it get closer to the data.

# %% [markdown]
# ### The last step
#
# Every grid ends at $t = 0$, which on the linear schedule is not clean data:
# $\sigma(0) = 0.01$ (Chapter 01). One step remains, from $\sigma_{\min}$ to
# $\sigma = 0$, and it is taken without a new evaluation. In the variables of
# Section 1 ($\bar x = x/\alpha$, $\bar\sigma = \sigma/\alpha$) the ODE is
# $d\bar x/d\bar\sigma = \hat\epsilon$, so
#
# $$\bar x(0) = \bar x - \int_0^{\bar\sigma_{\min}} \hat\epsilon\, d\bar\sigma .$$
#
# Euler holds $\hat\epsilon$ at its last value and lands on
# $\bar x - \bar\sigma_{\min}\hat\epsilon = \hat x_0$: the denoised prediction,
# which is what DDIM, Heun and every diffusers scheduler return. But we know
# the integrand at the other end too. $\hat\epsilon = -\bar\sigma\,\nabla\log p_{\bar\sigma}$,
# and for data whose density is smooth at the scale $\bar\sigma_{\min}$ the score
# stays bounded, so $\hat\epsilon \to 0$ as $\bar\sigma \to 0$. The trapezoidal rule
# with that endpoint costs nothing and is second order:
#
# $$\bar x(0) \approx \bar x - \tfrac12\bar\sigma_{\min}\hat\epsilon = \tfrac12(\bar x + \hat x_0),$$
#
# halfway between where the sampler stands and where the denoiser points. For
# one Gaussian mode of sd $s$ the exact flow shrinks $\bar x - m$ by
# $s/\sqrt{s^2+\bar\sigma^2}$, Euler by $s^2/(s^2+\bar\sigma^2)$, the trapezoid by
# $1 - \bar\sigma^2/(2(s^2+\bar\sigma^2))$: at $s = \bar\sigma$ that is $0.71$, $0.50$
# and $0.75$. The denoised end *halves the variance* of a mode as narrow as
# $\sigma_{\min}$; the trapezoid is the closer of the two whenever
# $s > \bar\sigma/\sqrt8 \approx 0.35\,\bar\sigma$ (exercise 05.8).
#
# The multistep solvers take the ending as `final=`: "denoise", "trapezoid",
# or "sigma_min" (stop at $t = 0$ and spend the evaluation there on one more
# solver step). Their default, "auto", is the trapezoid wherever the grid ends
# at $t = 0$. On the mixture "tight" (five modes of sd 0.01 to 0.02), the
# converged ODE (DPM-Solver-3M, 200 steps) and 10 evaluations, each ending,
# MMD $\times 10^4$ to the exact mixture (an exact sample scores about 0):

# %%
show_source(final_step, docstring=False)
tight = named_mixture("tight")
tight_oracle = tight.eps_model(schedule)
n_end = pick(3000, 1000)
x_T_end = [torch.randn(n_end, 2, generator=torch.Generator().manual_seed(60 + k)) for k in range(pick(3, 2))]
exact_end = [1e4 * metrics.mmd(tight.sample(n_end, generator=torch.Generator().manual_seed(70 + k)), tight)
             for k in range(len(x_T_end))]
print(f"tight: MMD x 1e4, mean +- sd over {len(x_T_end)} draws of {n_end} points; exact samples "
      f"{fmt_mean_sd(exact_end, digits=3)}")
endings = ("denoise", "trapezoid", "sigma_min")
end_mmd = {}
for steps in (200, 10):
    for final in endings:
        end_mmd[steps, final] = [1e4 * metrics.mmd(sample_dpm_solver_multistep(
            tight_oracle, x.double(), schedule, steps, order=3, final=final, progress=False), tight) for x in x_T_end]
    print(f"  DPM-Solver-3M, {steps:3d} evaluations: " + ";  ".join(
        f"{final} {fmt_mean_sd(end_mmd[steps, final], digits=3)}" for final in endings))

# %% [markdown]
# The converged ODE is *not* the exact sampler with the denoised end: its
# error is the last step's, and the trapezoid removes most of it. At 10
# evaluations the solver's own error is the larger part, and the trapezoid
# still lowers the score. Ending at
# $t = 0$ ("sigma_min") leaves the noise of $\sigma(0)$ in every sample,
# harmless on modes much wider than 0.01 and ruinous here, where it doubles a
# mode's variance. `benchmarks/samplers.py` chose the default ending with the
# grid, by the worst case over its panel (`ddlearn.samplers.spacing` gives the
# scores). The other samplers keep the denoised end: theirs is the reference
# Chapters 02 to 04 were measured with.

# %% [markdown]
# ## 5. Order of convergence on the exact oracle
#
# Fix 64 starting points, solve the ODE with each method for a growing number
# of steps (log-SNR spacing), and compare with a reference solution: the
# third-order solver with many steps. Every method here ends with the denoised
# step, as the reference does (DPM-Solver++(2M) is told `final="denoise"`), so
# the errors are the solvers'. How much it still moves when its steps
# are halved is printed: it must be far below every error we plot. If the
# error behaves as $C h^p$ for step size $h$ (here the log-SNR step), a
# log-log plot is a line of slope $p$, the method's **order**.

# %%
methods = {  # name: (sampler, options, evaluations per step)
    "DDIM (Euler)": (sample_ddim, {}, 1),
    "Heun (EDM)": (sample_heun, {}, 2),
    "DPM-Solver-2": (sample_dpm_solver, {"order": 2}, 2),
    "DPM-Solver-3": (sample_dpm_solver, {"order": 3}, 3),
    "DPM-Solver++(2M)": (sample_dpm_solver_pp, {"final": "denoise"}, 1),  # the reference's ending
}
x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
n_ref = pick(900, 300)
ref = sample_dpm_solver(oracle, x_T, schedule, n_ref, order=3, spacing="logsnr", progress=False)
half = sample_dpm_solver(oracle, x_T, schedule, n_ref // 2, order=3, spacing="logsnr", progress=False)
print(f"reference: DPM-Solver-3, {n_ref} steps; it moves by {(ref - half).norm(dim=1).mean():.1e} "
      f"from {n_ref // 2} steps (an upper bound on its own error)")

span = (schedule.log_snr[0] - schedule.log_snr[-1]).item() / 2  # total lambda range
step_counts = pick([8, 16, 32, 64, 128], [8, 16, 32, 64])
errors, nfes = {}, {}
for name, (fn, opts, _) in methods.items():
    errors[name], nfes[name] = [], []
    for n in step_counts:
        counted = CountedModel(oracle)
        out = fn(counted, x_T, schedule, n, spacing="logsnr", progress=False, **opts)
        errors[name].append((out - ref).norm(dim=1).mean().item())
        nfes[name].append(counted.nfe)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
orders = {}
for name in methods:
    h = np.array([span / (n - 1) for n in step_counts])  # log-SNR step of the ODE part
    e = np.array(errors[name])
    orders[name] = np.polyfit(np.log(h[-3:]), np.log(e[-3:]), 1)[0]
    ax1.loglog(h, e, "o-", label=f"{name}: slope {orders[name]:.2f}")
    ax2.loglog(nfes[name], e, "o-", label=name)
ax1.set_xlabel(r"step size $h$ (in $\lambda$)")
ax1.set_ylabel("mean distance to the reference")
ax1.legend(fontsize="small")
ax1.set_title("error against step size")
ax2.set_xlabel("network evaluations")
ax2.set_title("error against cost")
ax2.legend(fontsize="small")
plt.show()

# %%
print("observed order (slope over the three smallest steps):")
for name in methods:
    print(f"  {name:18s} {orders[name]:.2f}")

# %% [markdown]
# The slopes come out close to the theory: 1 for DDIM, 2 for Heun,
# DPM-Solver-2 and DPM-Solver++(2M), 3 for DPM-Solver-3. The right panel is the
# one that matters in practice: at equal *cost*, DPM-Solver++(2M) is ahead at
# small budgets (second order for one evaluation per step), and
# DPM-Solver-3 pulls away once the steps are small enough for its expansion
# to hold. At very few steps the higher-order single-step methods are *worse*
# than DDIM: an order is a statement about small $h$, and with 3 or 4 steps
# across the whole noise range $h$ is not small.

# %% [markdown]
# ## 6. Sample quality at equal evaluations
#
# Error along a trajectory is one thing; what we want is the right
# *distribution*. Sample the ring with each sampler (on its default grid) at 4
# to 50 evaluations, from the same noise, and measure the sliced Wasserstein
# distance (SW, `ddlearn.metrics`) to a large sample of the true mixture; do it
# for three draws of the noise $x_T$ and report mean $\pm$ sd over the draws
# (one draw is not enough to rank two samplers). Two reference lines: the same
# distance for an independent true sample (a perfect sampler scores about
# this), and 1000-step ancestral sampling.

# %%
n, seeds = pick(3000, 500), range(pick(3, 1))
budgets = [4, 6, 10, 20, 50]
truth = ring.sample(n, generator=torch.Generator().manual_seed(2))
sw = lambda x: metrics.sliced_wasserstein(x, truth, generator=torch.Generator().manual_seed(0))  # noqa: E731
# one row per seed: each seed is its own x_T (and its own fresh true sample for the floor)
floor = [sw(ring.sample(n, generator=torch.Generator().manual_seed(30 + k))) for k in seeds]
x_Ts = [torch.randn(n, 2, generator=torch.Generator().manual_seed(4 + k)) for k in seeds]

t0 = time.perf_counter()
x_anc = [sample_ancestral(oracle, x_T, schedule, generator=torch.Generator().manual_seed(50 + k), progress=False)
         for k, x_T in zip(seeds, x_Ts)]
sw_anc, t_anc = [sw(x) for x in x_anc], (time.perf_counter() - t0) / len(x_Ts)
quality, samples = {}, {}
for name in FAST_SAMPLERS:
    quality[name] = np.zeros((len(budgets), len(x_Ts)))
    for i, b in enumerate(budgets):
        for k, x_T in enumerate(x_Ts):
            x, used = run_at_budget(name, oracle, x_T, schedule, b)
            quality[name][i, k] = sw(x)
            samples[name, b, k] = x

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for name in FAST_SAMPLERS:
    q = quality[name]
    ax.errorbar(budgets, q.mean(1), yerr=q.std(1, ddof=1) if q.shape[1] > 1 else None, fmt="o-", capsize=3,
                label=name)
ax.axhline(np.mean(sw_anc), color="k", ls="--", lw=1, label=f"ancestral, 1000 evaluations ({np.mean(sw_anc):.3f})")
ax.axhline(np.mean(floor), color="gray", ls=":", lw=1, label=f"true vs true ({np.mean(floor):.3f})")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xticks(budgets, [str(b) for b in budgets])
ax.set_xlabel("network evaluations")
ax.set_ylabel("sliced Wasserstein to the true ring")
ax.legend(fontsize="small")
plt.show()
print(f"sliced Wasserstein to the true ring, mean +- sd over {len(x_Ts)} draws of x_T ({n} points each)")
print(f"{'sampler':18s}" + "".join(f"{b:>19d}" for b in budgets))
for name in FAST_SAMPLERS:
    print(f"{name:18s}" + "".join(f"{fmt_mean_sd(quality[name][i], digits=4):>19s}" for i in range(len(budgets))))
print(f"{'ancestral, 1000':18s}{fmt_mean_sd(sw_anc, digits=4):>19s}  ({t_anc:.1f} s a draw)")
print(f"{'true vs true':18s}{fmt_mean_sd(floor, digits=4):>19s}")

# %%
fig, axes = plt.subplots(1, len(FAST_SAMPLERS) + 1, figsize=(15, 2.8), layout="constrained")
viz.scatter(x_anc[0], axes[0], lim=1.6, s=1, title="ancestral, 1000")
for ax, name in zip(axes[1:], FAST_SAMPLERS):
    viz.scatter(samples[name, 10, 0], ax, lim=1.6, s=1, title=f"{name}, 10")
plt.show()

# %% [markdown]
# Three draws rank what one could not (full-mode run; the table above). At 4
# evaluations no sampler is close: the best three (DPM-Solver-2M, DDIM,
# DPM-Solver++(2M)) score 0.13 to 0.15 against $0.039 \pm 0.009$ for a true
# sample. At 6, DPM-Solver-2M is already at that floor ($0.045 \pm 0.011$),
# DDIM ($0.069 \pm 0.005$) and DPM-Solver++(2M) ($0.0985 \pm 0.0064$) are not.
# From 10 evaluations on, those three are within each other's spread and the
# floor's, as close as the ancestral sampler that needs 100 times the work:
# on this ring the differences that matter are below 10 evaluations. The
# single-step higher-order methods need more: with 4 to 6 evaluations
# DPM-Solver-2 and -3 take one or two steps across the whole noise range and
# throw points far off (SW of 2.6 to 39), and Heun (two evaluations a step)
# is still at $0.17$ with 10. An order is a statement about small steps.

# %% [markdown]
# ## 7. Trained models: the swiss roll and digits
#
# On a trained network the ODE is the network's, so errors of learning and of
# solving add up. Load the shipped checkpoints from Chapter 02 (`toy2d`, a
# 2-D MLP trained on the swiss roll; `digits`, a small UNet on 16x16 digits)
# and compare samplers at equal evaluations: sliced Wasserstein to held-out
# points, and the Frechet digit distance (FDD, features of the shipped digit
# classifier) to held-out digits.

# %%
toy_model, toy_schedule = pretrained.load("toy2d")
digit_model, digit_schedule = pretrained.load("digits")
held_roll = data.swiss_roll(pick(3000, 500), split="test")
held_digits = data.digits("test")

n2 = held_roll.shape[0]
x_T2 = torch.randn(n2, 2, generator=torch.Generator().manual_seed(6))
roll_floor = metrics.sliced_wasserstein(data.swiss_roll(n2, split="train"), held_roll,
                                        generator=torch.Generator().manual_seed(0))
toy_budgets = [5, 10, 20]
toy_q, toy_x = {}, {}
for name in FAST_SAMPLERS:
    toy_q[name] = []
    for b in toy_budgets:
        x, _ = run_at_budget(name, toy_model, x_T2, toy_schedule, b)
        toy_q[name].append(metrics.sliced_wasserstein(x, held_roll, generator=torch.Generator().manual_seed(0)))
        toy_x[name, b] = x

print(f"swiss roll: SW to held-out points (train vs held-out: {roll_floor:.4f})")
print(f"{'sampler':18s}" + "".join(f"{b:>8d}" for b in toy_budgets))
for name in FAST_SAMPLERS:
    print(f"{name:18s}" + "".join(f"{q:8.4f}" for q in toy_q[name]))

fig, axes = plt.subplots(1, len(FAST_SAMPLERS), figsize=(15, 2.7), layout="constrained")
for ax, name in zip(axes, FAST_SAMPLERS):
    viz.scatter(toy_x[name, 10], ax, lim=1.7, s=1, title=f"{name}, 10")
plt.show()

# %% [markdown]
# Unlike on the oracle, the ODE samplers here level off at a *worse* score
# than ancestral sampling, however many steps they take. The deterministic
# ODE has no way to recover from a wrong slope. Which points go wrong? Compare
# where the samples land with where they started:

# %%
x_anc2 = sample_ancestral(toy_model, x_T2, toy_schedule, generator=torch.Generator().manual_seed(8), progress=False)
x_ode = toy_x["DPM-Solver++(2M)", 20]
far = x_ode.norm(dim=1) > 2.0  # the swiss roll lies within radius 1.6
print(f"ancestral: {int((x_anc2.norm(dim=1) > 2).sum())} of {n2} samples beyond radius 2; "
      f"DPM-Solver++(2M), 20 evaluations: {int(far.sum())}")
print("their starting noise |x_T|:", x_T2[far].norm(dim=1).numpy().round(2), "(typical |x_T| is about 1.2)")
sw_held = lambda x: metrics.sliced_wasserstein(x, held_roll, generator=torch.Generator().manual_seed(0))  # noqa: E731
print(f"SW: ancestral {sw_held(x_anc2):.4f};  ODE {sw_held(x_ode):.4f};  ODE without those points "
      f"{sw_held(x_ode[~far]):.4f}")

# %% [markdown]
# The few bad samples start in the far tail of $x_T$, where the network saw
# almost no training data at high noise. Its $\hat\epsilon$ there is wrong,
# and the ODE carries the error all the way down. Ancestral sampling adds fresh
# noise at every step, which pulls such points back towards regions where the
# network is accurate. This is the motivation for stochastic samplers (DDIM with
# `eta > 0`, EDM's churn), and sliced Wasserstein, a squared-distance metric,
# is very sensitive to a handful of far points. On the exact oracle there is
# no such error, and the ODE samples were as good as the ancestral ones.

# %%
n_dig = pick(160, 32)
x_Td = torch.randn(n_dig, 1, 16, 16, generator=torch.Generator().manual_seed(7))
digit_budgets = pick([10, 20], [10])
dig_q, dig_x = {}, {}
t0 = time.perf_counter()
for name in FAST_SAMPLERS:
    dig_q[name] = []
    for b in digit_budgets:
        x, _ = run_at_budget(name, digit_model, x_Td, digit_schedule, b)
        x = x.clamp(-1, 1)
        dig_q[name].append(metrics.frechet_digit_distance(x, held_digits))
        dig_x[name, b] = x
print(f"digits: FDD to held-out digits ({n_dig} samples, {time.perf_counter() - t0:.0f} s)")
print(f"{'sampler':18s}" + "".join(f"{b:>8d}" for b in digit_budgets))
for name in FAST_SAMPLERS:
    print(f"{name:18s}" + "".join(f"{q:8.2f}" for q in dig_q[name]))

fig, axes = plt.subplots(1, len(FAST_SAMPLERS), figsize=(15, 2.9), layout="constrained")
for ax, name in zip(axes, FAST_SAMPLERS):
    viz.image_grid(dig_x[name, 10][:16], ax, nrow=4, title=f"{name}, 10")
plt.show()

# %% [markdown]
# Section 7's two tables are one draw each (160 digits per sampler and
# budget is what the chapter can afford), so they show large effects only:
# DDIM's first-order blur (FDD $7.4$ at 10 evaluations, against $3.9$ to $5.0$
# for the second-order methods) and DPM-Solver-3's failure at 10 evaluations
# (three steps: $28.6$). `benchmarks/samplers.py` repeats the panel over
# seeds.

# %% [markdown]
# ## 8. Explore: one slider, every sampler
#
# The explorer below samples the swiss-roll model and the digit model with
# every sampler at 4 to 50 evaluations, from the same noise, and shows them
# side by side, with the paths of a few points through the sampler's states.
# Move the slider and watch where each method's samples settle.

# %%
explorer = widgets.sampler_explorer(toy_model, toy_schedule, digit_model, digit_schedule,
                                    budgets=pick((4, 6, 10, 20, 50), (4, 10)), n_points=pick(1500, 300),
                                    n_images=16, lim=2.0, progress=False)
explorer

# %% [markdown]
# ## 9. Against diffusers
#
# The same algorithms ship in the diffusers library as schedulers.
# `tests/test_samplers_vs_diffusers.py` checks that our DDIM, DPM-Solver++(2M),
# Euler and Heun agree with diffusers' `DDIMScheduler`,
# `DPMSolverMultistepScheduler`, `EulerDiscreteScheduler` and
# `HeunDiscreteScheduler` step by step to $10^{-5}$, on the same schedule,
# timesteps and model. `benchmarks/samplers.py` compares quality and wall time
# at 5 to 1000 evaluations on the oracle and both checkpoints
# (`python benchmarks/samplers.py`).
#
# One caution when you compare with diffusers at few steps: on its
# $\sigma$ grids ("exponential", "beta", Lu's $\lambda$, "karras") a
# scheduler steps with the exact noise levels but calls the model at whole
# timesteps; on the exponential grid they are *rounded down*, so the model is
# told a little less noise than the solver assumes. On mixtures whose modes are about as narrow as the
# schedule's smallest noise level, that bias happens to help. The benchmark
# runs such configurations a second time with the model at the exact times
# (their "-exact-t" twins) and prints the score of the converged ODE
# solution: a few-step sampler that lands far below it is lucky, not
# accurate. That solution ends with the denoising step, so the one
# exception is a sampler with a better last step: on the panel's skewed16
# (a mode of sd 0.01 in 16-D) the converged ODE scores MMD $\times 10^4$ 82.9
# and DPM-Solver-3M with the trapezoid 2.7 (`python benchmarks/samplers.py
# --report`, the README gives the files).
#
# ## 10. Which sampler when
#
# * **Default: a multistep solver, DPM-Solver++(2M) or DPM-Solver-2M**, 10 to
#   20 evaluations on their default log-SNR grid: second order at one
#   evaluation per step. Neither won everywhere in this chapter: DPM-Solver-2M
#   was the better of the two on the ring at 6 evaluations (three draws),
#   DPM-Solver++(2M) on the swiss-roll network at 5 and 10 and on digits at 10
#   (one draw each; at 10, SW $0.12$ against $0.16$, FDD $3.90$ against
#   $5.03$). Measure on your model.
# * **Very small budgets (under ~8 evaluations)**: the multistep solvers, or
#   DDIM; single-step higher-order methods (Heun, DPM-Solver-2/3) spend their
#   evaluations on too few steps and can be far worse than DDIM.
# * **High accuracy, 30+ evaluations** (likelihoods, encoding data to noise
#   and back, research comparisons): DPM-Solver-3, whose error falls as $h^3$.
# * **DDIM** when you need the simplest invertible map, or `eta > 0` for a
#   stochastic sampler with a knob between ODE and ancestral.
# * **Heun** (EDM) from about 10 evaluations: on digits, on its default
#   "trailing" grid, it matched DPM-Solver++(2M) at 10 (FDD $3.87$ against
#   $3.90$, one draw) but failed at 5 on the swiss roll. With churn when a
#   model's errors accumulate along the ODE and a little fresh noise per step
#   helps.
# * **The last step**: the multistep solvers' default, `final="auto"`, ends
#   with the trapezoid (Section 4); pass `final="denoise"` to compare with a
#   sampler that returns $\hat x_0$, and try `final="sigma_min"` when every
#   mode of your data is much wider than $\sigma(0)$.
# * **Spacing**: "leading" wastes the noisiest level. Each sampler's default
#   grid was chosen by measurement on the linear schedule, the one every model
#   of this book is trained on (`ddlearn.samplers.spacing` says how); no grid
#   wins on every problem, so pass `spacing=` when a measurement of your own
#   says so. On a **cosine** schedule pass `spacing="quadratic"` to the
#   DPM-Solvers: its log-SNR at $t = T-1$ lies far below the linear
#   schedule's, and a grid uniform in log-SNR spends a third of its steps
#   there, on samples that are still noise (Chapter 01 draws both schedules'
#   log-SNR).

# %% [markdown]
# ## Exercises
#
# **05.1** (implement) Write `ddim_step(x_t, eps, ab_t, ab_s)`, one deterministic DDIM step
# from alpha-bar `ab_t` to the less noisy `ab_s`, from the formula in Section 2.

# %% tags=["solution"]
def ddim_step(x_t, eps, ab_t, ab_s):
    x0 = (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)   # the clean estimate
    return math.sqrt(ab_s) * x0 + math.sqrt(1 - ab_s) * eps     # rebuilt at the new level with the same eps


check("05.1", ddim_step)

# %% [markdown]
# **05.2** (predict, then run) How many network evaluations does
# `sample_dpm_solver(..., steps=6, order=3)` use? Reason it out, then verify
# with `CountedModel`.

# %% tags=["solution"]
# third order: three evaluations a step, except the last step to the clean data, which is first order (one)
answer_05_2 = 3 * (6 - 1) + 1
counted = CountedModel(lambda x, t: 0.1 * x)
sample_dpm_solver(counted, torch.randn(4, 2, generator=torch.Generator().manual_seed(0)), linear(1000), 6, order=3,
                  progress=False)
print(f"predicted {answer_05_2}, counted {counted.nfe}")
check("05.2", answer_05_2)

# %% [markdown]
# **05.3** (implement) EDM-style samplers choose noise levels $\sigma$ and must ask the
# network at the matching (fractional) timestep. Write `t_of_sigma(schedule, sigma)`.

# %% tags=["solution"]
def t_of_sigma(schedule, sigma):
    # sigma = sqrt((1 - ab) / ab) = 1 / sqrt(snr), so log-SNR = -2 log sigma; the schedule inverts a log-SNR
    return float(schedule.t_from_log_snr(torch.tensor(-2 * math.log(sigma), dtype=torch.float64)))


check("05.3", t_of_sigma)

# %% [markdown]
# **05.4** (derive) A sampler's error falls from $4\times10^{-3}$ to $5\times10^{-4}$ when
# you double its number of steps. What is its order?

# %% tags=["solution"]
# error ~ C h^p: halving h divides it by 2^p, so p = log2(4e-3 / 5e-4) = log2(8)
answer_05_4 = math.log2(4e-3 / 5e-4)
check("05.4", answer_05_4)

# %% [markdown]
# **05.5** (derive) Show that deterministic DDIM is Euler's method on the
# probability-flow ODE, in the right coordinates. Write
# $x = \sqrt{\bar\alpha}\,(\bar x)$ with $\bar x = x/\sqrt{\bar\alpha}$ and
# $\sigma = \sqrt{(1 - \bar\alpha)/\bar\alpha}$ (the noise-to-signal ratio). Derive
# the ODE $d\bar x/d\sigma$ from $x = \sqrt{\bar\alpha}\,x_0 + \sqrt{1 -
# \bar\alpha}\,\epsilon$, then write `euler_in_sigma(x_t, eps, ab_t, ab_s)`: one Euler
# step of it from `ab_t` to `ab_s`, mapped back to $x$. The checker compares it
# with DDIM's step. (Lu et al. 2022 make the same change of variables in
# log-SNR, $\lambda = -\log\sigma$, and get DPM-Solver by going to higher order.)

# %% [markdown] tags=["solution"]
# *Solution.* Divide $x = \sqrt{\bar\alpha}\,x_0 + \sqrt{1-\bar\alpha}\,\epsilon$ by
# $\sqrt{\bar\alpha}$: $\bar x = x_0 + \sigma\,\epsilon$. Along the probability-flow
# ODE the model's prediction of $x_0$ stays on the same curve, and its velocity is
# $d\bar x/d\sigma = \epsilon_\theta(x, t)$: the scaled state moves in a straight line
# in $\sigma$ while $\epsilon$ is constant. One Euler step with $\epsilon$ frozen at
# its value at $\sigma_t$ gives $\bar x_s = \bar x_t + (\sigma_s - \sigma_t)\,\epsilon$,
# so $x_s = \sqrt{\bar\alpha_s}\,\big(x_t/\sqrt{\bar\alpha_t} + (\sigma_s -
# \sigma_t)\,\epsilon\big)$. Expand it: $\sqrt{\bar\alpha_s}\,(x_t -
# \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t} + \sqrt{1-\bar\alpha_s}\,\epsilon$,
# which is DDIM's step (05.1) term for term. DDIM is therefore exact when
# $\epsilon_\theta$ does not change along the path (a single data point), and
# first order otherwise: the error Section 6 measured.

# %% tags=["solution"]
def euler_in_sigma(x_t, eps, ab_t, ab_s):
    sigma_t, sigma_s = math.sqrt((1 - ab_t) / ab_t), math.sqrt((1 - ab_s) / ab_s)
    return math.sqrt(ab_s) * (x_t / math.sqrt(ab_t) + (sigma_s - sigma_t) * eps)


check("05.5", euler_in_sigma)

# %% [markdown]
# **05.6** (open) Run Section 6 with `spacing="leading"` for DDIM and compare
# with "trailing". Which starting noise level does "leading" assume for
# $x_T$, and why does that matter most at 4 to 10 steps?
#
# **05.7** (open) Add churn to Heun (`S_churn=10`, generator given) on the
# swiss-roll model. Does the SW at 20 evaluations improve? Why might it on a
# trained network but not on the exact oracle?

# %% [markdown]
# **05.8** (derive) Section 4's last step: for one Gaussian mode of sd $s$ the
# exact flow from $\bar\sigma$ to 0 shrinks $\bar x - m$ by $\sqrt u$, Euler (the
# denoised end) by $u$ and the trapezoid by $(1 + u)/2$, with
# $u = s^2/(s^2 + \bar\sigma^2)$. Derive the three factors, then find the ratio
# $s/\bar\sigma$ above which the trapezoid lands closer to the exact flow than
# Euler. Give it as `answer_05_8`.

# %% [markdown] tags=["solution"]
# *Solution.* For $x_0 \sim N(m, s^2)$, $\bar x = x_0 + \bar\sigma\epsilon$ is
# $N(m, s^2 + \bar\sigma^2)$ and the posterior mean is
# $\hat x_0 = m + u(\bar x - m)$ (Tweedie), so Euler's factor is $u$, and
# $\hat\epsilon = (\bar x - \hat x_0)/\bar\sigma$ gives the trapezoid
# $(\bar x + \hat x_0)/2$, factor $(1 + u)/2$. The probability-flow ODE moves
# every point of a Gaussian in proportion to its sd, $\sqrt{s^2 + \bar\sigma^2}$,
# so the exact factor is $s/\sqrt{s^2+\bar\sigma^2} = \sqrt u$. Since
# $u \le \sqrt u \le (1+u)/2$, Euler falls short by $\sqrt u(1 - \sqrt u)$ and
# the trapezoid overshoots by $(1 + u)/2 - \sqrt u = (1 - \sqrt u)^2/2$. The
# trapezoid is closer when $(1 - \sqrt u)/2 < \sqrt u$, that is $\sqrt u > 1/3$,
# $u > 1/9$, $8 s^2 > \bar\sigma^2$: $s/\bar\sigma > 1/\sqrt 8 \approx 0.354$.

# %% tags=["solution"]
answer_05_8 = 1 / math.sqrt(8)
u = np.linspace(0.01, 0.99, 99)  # check the inequality numerically over the whole range
trap_closer = np.abs((1 + u) / 2 - np.sqrt(u)) < np.abs(np.sqrt(u) - u)
print(f"trapezoid closer from u = {u[trap_closer].min():.2f} (1/9 = {1 / 9:.3f}); s / sigma > {answer_05_8:.3f}")
check("05.8", answer_05_8)

# %% [markdown]
# ## References
#
# * J. Song, C. Meng, S. Ermon. *Denoising Diffusion Implicit Models.* ICLR 2021.
# * Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole.
#   *Score-Based Generative Modeling through Stochastic Differential
#   Equations.* ICLR 2021 (the probability-flow ODE).
# * C. Lu, Y. Zhou, F. Bao, J. Chen, C. Li, J. Zhu. *DPM-Solver: A Fast ODE
#   Solver for Diffusion Probabilistic Model Sampling in Around 10 Steps.*
#   NeurIPS 2022.
# * C. Lu, Y. Zhou, F. Bao, J. Chen, C. Li, J. Zhu. *DPM-Solver++: Fast Solver
#   for Guided Sampling of Diffusion Probabilistic Models.* arXiv:2211.01095, 2022.
# * T. Karras, M. Aittala, T. Aila, S. Laine. *Elucidating the Design Space of
#   Diffusion-Based Generative Models.* NeurIPS 2022 (EDM: sigma
#   parametrisation, rho = 7 spacing, Heun, churn).
# * S. Lin, B. Liu, J. Li, X. Yang. *Common Diffusion Noise Schedules and Sample
#   Steps are Flawed.* WACV 2024 ("trailing" spacing).

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s ({'fast' if is_fast() else 'full'} mode)")
