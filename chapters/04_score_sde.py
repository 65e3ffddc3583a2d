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
# # Chapter 04 - Score SDEs
#
# DDPM (Chapter 02) adds noise in 1000 discrete steps; NCSN (Chapter 03) uses a
# ladder of noise levels. Song et al. (2021) saw both as discretisations of one
# object: a **stochastic differential equation** that moves data to noise in
# continuous time $u \in [0, 1]$. Running it backwards needs only the score, and
# the same score defines a deterministic **probability-flow ODE** with the
# same marginals, which gives exact likelihoods. By the end you will be able to
#
# * write down the VP, sub-VP and VE SDEs, their marginals, and show numerically
#   that DDPM discretises VP and NCSN discretises VE;
# * sample with the reverse-time SDE (Euler-Maruyama), with
#   predictor-corrector (a Langevin corrector with a target signal-to-noise
#   ratio), and with the probability-flow ODE (fixed-step Heun, and scipy's
#   adaptive RK45 with its number of evaluations);
# * plug any eps-network into any of these samplers, whether trained on DDPM's
#   discrete steps or in continuous time, and know exactly how;
# * encode data to noise and back with the ODE, and compute exact
#   log-likelihoods and **bits per dimension** on held-out digits;
# * watch a reverse SDE and an ODE trajectory from the same starting noise.
#
# Time convention (`ddlearn.schedules`, `ddlearn.sde`): SDE time $u \in [0, 1]$
# is timestep $t = u\,(T-1)$ of a $T$-step schedule; $u = 0$ is data.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import data, losses, metrics, oracles, schedules, train, viz, widgets
from ddlearn import sde as sde_lib
from ddlearn.config import is_fast, pick
from ddlearn.notebook import check, show_source
from ddlearn.samplers import (CountedModel, bits_per_dim, log_likelihood, pf_ode_encode, sample_euler_maruyama,
                              sample_pc, sample_pf_ode)
from ddlearn.samplers import reverse_sde

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)

# %% [markdown]
# ## 1. Three SDEs
#
# A forward SDE $dx = f(x, u)\,du + g(u)\,dW$ with linear drift has Gaussian
# marginals $x_u = m(u)\,x_0 + s(u)\,\epsilon$. The three of Song et al. (2021), with
# $\beta(u) = \beta_\min + u(\beta_\max - \beta_\min)$ and $B(u) = \int_0^u\beta$:
#
# | SDE | drift $f$ | $g^2$ | $m(u)$ | $s(u)$ |
# |---|---|---|---|---|
# | VP | $-\tfrac12\beta(u)x$ | $\beta(u)$ | $e^{-B/2}$ | $\sqrt{1-e^{-B}}$ |
# | sub-VP | $-\tfrac12\beta(u)x$ | $\beta(u)(1-e^{-2B})$ | $e^{-B/2}$ | exercise 04.1 |
# | VE | $0$ | $d\sigma^2/du$ | $1$ | $\sigma(u) = \sigma_\min(\sigma_\max/\sigma_\min)^u$ |
#
# (The variance $v = s^2$ solves $dv/du = 2\,\text{drift coefficient}\cdot v + g^2$;
# exercise 04.1 checks sub-VP's.)

# %%
show_source(sde_lib.VPSDE)

# %% [markdown]
# **DDPM discretises VP.** One DDPM step is
# $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,z$. With
# $\Delta u = 1/(T-1)$ and $\beta(u)\Delta u = \beta_t$, Euler-Maruyama on VP gives
# $x + (-\tfrac12\beta_t)x + \sqrt{\beta_t}\,z$, and $\sqrt{1-\beta_t} = 1 - \tfrac12\beta_t + O(\beta_t^2)$.
# So $\beta_\min = (T-1)\beta_\text{start}$, $\beta_\max = (T-1)\beta_\text{end}$: 0.1 and 20
# for Ho et al.'s schedule. **NCSN discretises VE**: its geometric noise levels
# are $\sigma(u)$ on a grid, and its step $x_i = x_{i-1} + \sqrt{\sigma_i^2-\sigma_{i-1}^2}\,z$
# is VE's exact transition. Numerically:

# %%
lin = schedules.linear()
vp, subvp, ve = sde_lib.VPSDE.from_schedule(lin), sde_lib.SubVPSDE(), sde_lib.VESDE(0.01, 50.0)
cmp = sde_lib.compare_with_schedule(lin, vp)
print(vp)
print(f"max |alpha_bar_DDPM(u (T-1)) - m_VP(u)^2| over u in [0, 1]: {cmp['max_abs_diff']:.2e}")
t = torch.arange(1, lin.T)
ddpm_coef = (1 - lin.betas[t]).sqrt() - 1  # what one DDPM step adds to x, per unit x
u = t / (lin.T - 1)
em_coef = vp.drift_coef(u.double()) / (lin.T - 1)  # Euler-Maruyama on VP, du = 1/(T-1)
print(f"one step, coefficient of x: max |DDPM - Euler-Maruyama(VP)| = {(ddpm_coef - em_coef).abs().max():.2e} "
      f"(the step itself is up to {ddpm_coef.abs().max():.2e})")
ncsn = schedules.ve_sigmas(10, 0.01, 50.0)
print(f"NCSN sigmas vs VE sigma(u) on a grid: max relative gap "
      f"{((ve.sigma(torch.linspace(1, 0, 10, dtype=torch.float64)) - ncsn).abs() / ncsn).max():.1e}")

uu = torch.linspace(0, 1, 201, dtype=torch.float64)
fig, axes = plt.subplots(1, 3, figsize=(14, 3.4), layout="constrained")
axes[0].plot(uu, cmp["discrete"], lw=3, alpha=0.4, label="DDPM linear, t = u (T-1)")
axes[0].plot(uu, cmp["continuous"], "--", label="VP SDE: m(u)^2")
axes[0].set_xlabel("u"), axes[0].set_title("alpha-bar", fontsize="small"), axes[0].legend(fontsize="small")
for sde_ in (vp, subvp, ve):
    axes[1].plot(uu, sde_.std(uu), label=sde_.name)
    axes[2].plot(uu, sde_.log_snr(uu.clamp_min(1e-4)), label=sde_.name)
axes[1].set_yscale("log"), axes[1].set_title("s(u), the noise std", fontsize="small"), axes[1].legend(fontsize="small")
axes[2].set_title("log-SNR 2 log(m / s)", fontsize="small"), axes[2].legend(fontsize="small")
plt.show()

# %% [markdown]
# The marginals are what everything else relies on, so check them against
# simulation: start 10,000 copies of one point from the marginal at $u = 0.1$,
# run the forward SDE with small Euler-Maruyama steps to $u = 0.6$, and compare.

# %%
g = torch.Generator().manual_seed(0)
n_mc = pick(10000, 2000)
x0 = torch.tensor([[0.7, -1.3]], dtype=torch.float64).expand(n_mc, 2)
print(f"{'SDE':6} {'MC mean':>18} {'m(u) x0':>18} {'MC std':>8} {'s(u)':>8}")
for sde_ in (vp, subvp, sde_lib.VESDE(0.01, 10.0)):
    x, _ = sde_.marginal_sample(x0, 0.1, generator=g)
    k = pick(200, 50)
    du = 0.5 / k
    for i in range(k):
        f, G = sde_.discretize(x, 0.1 + i * du, du)
        x = x + f + G * torch.randn(x.shape, generator=g, dtype=x.dtype)
    mean, std = sde_.marginal_mean_std(x0[:1], 0.6)
    print(f"{sde_.name:6} {str(np.round(x.mean(0).numpy(), 3)):>18} {str(np.round(mean[0].numpy(), 3)):>18} "
          f"{x.std(0).mean().item():8.3f} {std.item():8.3f}")

# %% [markdown]
# ## 2. Running time backwards
#
# Anderson (1982): the reverse of the forward diffusion is again a diffusion,
#
# $$ dx = \big[f(x, u) - g(u)^2\,\nabla_x\log p_u(x)\big]\,du + g(u)\,d\bar W, $$
#
# run from $u = 1$ down to $0$, where $p_u$ is the marginal at time $u$. Why
# the score, and why $g^2$? Take one small forward step of Euler-Maruyama,
# $x' = x + f(x, u)\,\Delta + g\sqrt{\Delta}\,z$, so that
# $p(x' \mid x) = \mathcal N(x + f\Delta,\; g^2\Delta\, I)$, and ask
# Bayes' rule for the step backwards:
#
# $$ p(x \mid x') \;\propto\; p(x' \mid x)\, p_u(x)
#    \;\propto\; \exp\Big(-\frac{\lVert x' - x - f\Delta\rVert^2}{2 g^2 \Delta}
#    + \log p_u(x)\Big). $$
#
# The Gaussian confines $x$ to within $O(\sqrt\Delta)$ of $x'$, so expand the
# prior to first order there, $\log p_u(x) \approx \log p_u(x') +
# \nabla\log p_u(x')^\top (x - x')$, and take $f$ at $x'$ (both errors are of
# higher order in $\Delta$). The exponent is then a quadratic in $x$; completing
# the square,
#
# $$ -\frac{\lVert x - x' + f\Delta\rVert^2}{2 g^2\Delta} + \nabla\log p_u(x')^\top (x - x')
#    = -\frac{\lVert x - \big(x' - f\Delta + g^2\Delta\,\nabla\log p_u(x')\big)\rVert^2}{2 g^2\Delta}
#    + \text{const}, $$
#
# so $p(x \mid x') \approx \mathcal N\big(x' - [f - g^2\nabla\log p_u]\Delta,\;
# g^2\Delta\, I\big)$: one Euler-Maruyama step of the reverse SDE above. The
# forward step blurs by $g^2\Delta$; undoing it means stepping *up* the score by
# that same variance, and the noise it adds back is the same size. Replace the
# score by a model and repeat: that is the **reverse-SDE sampler**
# (Euler-Maruyama). We stop at $u_\min = 10^{-3}$, where VP's noise std is 0.01.

# %%
show_source(reverse_sde.sample_euler_maruyama)

# %% [markdown]
# **How a model plugs in.** Every network in the book predicts $\epsilon$ as
# `model(x_in, t)`. The sampler's `schedule` argument is the model's *time
# frame*: a discrete `Schedule` (a DDPM model) or an `SDE` (a continuous-time
# model). For any SDE at any $u$, `score_fn` rescales the state to the
# variance-preserving one, $x/\sqrt{m^2+s^2}$, finds the frame's timestep with the
# same log-SNR, and returns $-\epsilon_\theta/s(u)$. A DDPM model thereby runs
# under VP, sub-VP or VE samplers unchanged; the exact mixture oracle plugs in
# the same way.

# %%
show_source(sde_lib.score_fn)

# %% [markdown]
# First with the exact score of `two` (weights 0.2 / 0.8), for VP and VE,
# starting from the same standard-normal $x_T$ (scaled by $\sigma_\max$ for VE):

# %%
two, ring = oracles.named_mixture("two"), oracles.named_mixture("ring8")
n = pick(3000, 800)
x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
ve10 = sde_lib.VESDE(0.01, 10.0)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained")
for ax, sde_ in zip(axes, (vp, ve10)):
    x = sample_euler_maruyama(sde_.oracle_model(two), x_T, sde_, pick(500, 100),
                              generator=torch.Generator().manual_seed(2), progress=False)
    viz.scatter(x, ax, lim=2, title=f"{sde_.name}: reverse SDE, exact score; right weight "
                                    f"{(x[:, 0] > 0).float().mean():.3f}")
plt.show()

# %% [markdown]
# Unlike plain Langevin (Chapter 03), the reverse SDE gets the weights right:
# it starts from the prior, where everything is connected, and follows the
# marginals down.
#
# ## 3. Predictor-corrector
#
# Each reverse step (the *predictor*) makes a small error; since we know the
# score of $p_u$, we can pull the state back towards $p_u$ with a few Langevin
# steps at fixed $u$ (the *corrector*). Song et al. choose the Langevin step
# from a target signal-to-noise ratio $r$:
# $\epsilon = 2\,(r\,\|z\|/\|s\|)^2$.

# %%
show_source(reverse_sde.langevin_corrector)

# %% [markdown]
# Is it worth it? Compare at an equal number of score evaluations, on `ring8`
# with its exact score, by the sliced Wasserstein distance to fresh samples of
# the mixture (the floor is the distance between two independent samples).
# The benchmark `benchmarks/sde.py` prints a larger table, also with learned
# scores.

# %%
ref = ring.sample(n, generator=torch.Generator().manual_seed(3))
floor = metrics.sliced_wasserstein(ring.sample(n, generator=torch.Generator().manual_seed(4)), ref,
                                   generator=torch.Generator().manual_seed(0))


def sw(x):
    return metrics.sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(0))


print(f"sliced W2 between two independent samples (floor): {floor:.4f}")
print(f"{'SDE':5} {'evaluations':>11} {'predictor only':>15} {'PC (snr 0.1)':>13} {'PF-ODE Heun':>12}")
for sde_ in (vp, ve10):
    oracle = sde_.oracle_model(ring)
    for nfe in pick((20, 50, 200), (20, 50)):
        xe = sample_euler_maruyama(oracle, x_T, sde_, nfe, generator=torch.Generator().manual_seed(5), progress=False)
        xp = sample_pc(oracle, x_T, sde_, nfe // 2, snr=0.1, generator=torch.Generator().manual_seed(5), progress=False)
        xo = sample_pf_ode(oracle, x_T, sde_, nfe // 2, solver="heun", progress=False)
        print(f"{sde_.name:5} {nfe:11d} {sw(xe):15.4f} {sw(xp):13.4f} {sw(xo):12.4f}")

# %% [markdown]
# Read the table against the floor: two independent draws of the data already
# differ by that much, so differences of a few hundredths between samplers are
# noise of the metric. With the exact score on this easy 2-D target the
# corrector rarely pays for its extra evaluation, and at the smallest budget it
# can hurt (a Langevin step sized for $p_u$ at a coarse grid overshoots); Song et
# al. found it most useful for VE on images, where the predictor's errors are
# larger. The ODE sampler is already at the floor with a few dozen
# evaluations. `benchmarks/sde.py` repeats this with learned scores.
#
# ## 4. The probability-flow ODE
#
# Song et al. show that the deterministic ODE
#
# $$ \frac{dx}{du} = f(x, u) - \tfrac12 g(u)^2\,\nabla_x\log p_u(x) $$
#
# has the same marginals $p_u$ as the SDE. The derivation is three lines. The
# forward SDE's marginals obey the Fokker-Planck equation
#
# $$ \partial_u p_u = -\nabla\cdot(f\,p_u) + \tfrac12 g^2\,\Delta p_u . $$
#
# Since $\nabla p_u = p_u\nabla\log p_u$, the diffusion term is itself a
# divergence, $\tfrac12 g^2 \Delta p_u = \nabla\cdot\big(\tfrac12 g^2\, p_u
# \nabla\log p_u\big)$, and the two terms combine:
#
# $$ \partial_u p_u = -\nabla\cdot\Big(\big[f - \tfrac12 g^2\nabla\log p_u\big]\, p_u\Big). $$
#
# That is the continuity equation of particles moving with velocity
# $v = f - \tfrac12 g^2\nabla\log p_u$ and no noise at all: a cloud of points
# started from $p_1$ and moved by $dx/du = v$ has density $p_u$ at every $u$.
# The reverse SDE carries the score with weight $g^2$ and adds noise; the ODE
# carries half of it and adds none. Both move the whole density the same way;
# they differ in what happens to a single particle. No noise: a sample is a
# deterministic function of $x_T$, and an adaptive ODE solver can choose its own
# steps. The sampler offers Euler and Heun on a fixed grid and scipy's
# `solve_ivp` (RK45, Dormand-Prince).
#
# **Checking both derivations numerically.** On a Gaussian everything is exact:
# data $\mathcal N(\mu, \Sigma)$ under VP has marginals $\mathcal N(m_u\mu,\;
# m_u^2\Sigma + s_u^2 I)$ and the oracle knows the score. Run the reverse SDE
# and the ODE from the same standard-normal points with that score and compare
# the spread of the cloud along each axis with the exact marginal's, at every
# step:

# %%
gauss = oracles.gaussian([0.8, -0.4], [0.05, 0.6])   # a narrow axis and a wide one
steps_chk = pick(200, 50)
x_chk = torch.randn(pick(4000, 1000), 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
u_grid = torch.linspace(1.0, 1e-3, steps_chk + 1, dtype=torch.float64)[1:]   # the state after step i sits at u_grid[i]
m_u, s_u = vp.mean_coef(u_grid), vp.std(u_grid)
exact_std = torch.sqrt(m_u[:, None] ** 2 * gauss.covs[0].diagonal()[None] + s_u[:, None] ** 2)
paths = {}
for label, sampler, kw in (("reverse SDE", sample_euler_maruyama, {"generator": torch.Generator().manual_seed(12)}),
                           ("PF-ODE (Heun)", sample_pf_ode, {"solver": "heun"})):
    stds = []
    sampler(vp.oracle_model(gauss), x_chk, vp, steps_chk, progress=False,
            callback=lambda st: stds.append(st.x.std(0)), **kw)
    paths[label] = torch.stack(stds)
fig, ax = plt.subplots(figsize=(6.5, 3.4), layout="constrained")
for d, (name, c) in enumerate((("narrow axis", "C0"), ("wide axis", "C1"))):
    ax.plot(u_grid, exact_std[:, d], color=c, lw=4, alpha=0.3, label=f"exact, {name}")
    ax.plot(u_grid, paths["reverse SDE"][:, d], color=c, ls="--", label=f"reverse SDE, {name}")
    ax.plot(u_grid, paths["PF-ODE (Heun)"][:, d], color=c, ls=":", label=f"PF-ODE, {name}")
ax.invert_xaxis()
ax.set(xlabel="u (sampling runs right to left: from 1 to 0)", ylabel="std of the cloud",
       title="Both samplers follow the exact marginals of a Gaussian")
ax.legend(fontsize=7, ncol=2)
plt.show()
print(f"sampling error of a std from {x_chk.shape[0]} points: about std / sqrt(2n) = "
      f"{exact_std.max().item() / (2 * x_chk.shape[0]) ** 0.5:.3f} on the wide axis")
for label, st in paths.items():
    err = (st - exact_std).abs().max().item()
    print(f"{label:14s}: largest |std - exact std| over all steps and both axes {err:.3f}; at u = 0.001: "
          f"{st[-1, 0]:.3f} and {st[-1, 1]:.3f} (exact {exact_std[-1, 0]:.3f} and {exact_std[-1, 1]:.3f})")

# %% [markdown]
# Both clouds shrink with the exact marginal all the way down, along the narrow
# axis and the wide one, and both end at the data's spread. The ODE stays within
# about the sampling error of a cloud's spread (a standard deviation estimated
# from $n$ points is off by about $\sigma/\sqrt{2n}$) at every step; the
# reverse SDE strays by a few times that on the way (the largest gaps printed
# above) and recovers by the end: Euler-Maruyama's step error, which is of order
# $\sqrt{\Delta}$ per step for the noise against the ODE solver's $\Delta^2$ (Heun).
# The two samplers are different maps from $x_T$ to $x_0$ with the same
# pushforward.

# %%
show_source(sample_pf_ode)

# %%
print(f"{'solver':24} {'evaluations':>11} {'sliced W2':>10} {'seconds':>8}")
for label, kw in (("Heun, 25 steps", {"solver": "heun", "steps": 25}),
                  ("Heun, 100 steps", {"solver": "heun", "steps": 100}),
                  ("RK45, rtol=atol=1e-3", {"solver": "rk45", "steps": 5, "rtol": 1e-3, "atol": 1e-3}),
                  ("RK45, rtol=atol=1e-5", {"solver": "rk45", "steps": 5, "rtol": 1e-5, "atol": 1e-5})):
    counted = CountedModel(vp.oracle_model(ring))
    steps = kw.pop("steps")
    t0 = time.perf_counter()
    x = sample_pf_ode(counted, x_T, vp, steps, progress=False, **kw)
    print(f"{label:24} {counted.nfe:11d} {sw(x):10.4f} {time.perf_counter() - t0:8.2f}")

# %% [markdown]
# Because it is deterministic and invertible, the ODE is also an **encoder**:
# run it forwards from data to get a latent $z$, backwards to get the data again.

# %%
x_data = ring.sample(pick(200, 50), generator=torch.Generator().manual_seed(6)).double()
z = pf_ode_encode(vp.oracle_model(ring), x_data, vp, rtol=1e-6, atol=1e-6)
back = sample_pf_ode(vp.oracle_model(ring), z, vp, 5, solver="rk45", rtol=1e-6, atol=1e-6, progress=False)
print(f"latent mean {z.mean(0).numpy().round(3)}, std {z.std(0).numpy().round(3)} (a standard normal has 0 and 1)")
print(f"decode(encode(x)): largest error {(back - x_data).abs().max():.2e}")

# %% [markdown]
# The explorer runs the reverse SDE and the ODE from the **same** $x_T$ (here
# with the exact score of `ring8`). Scrub the steps: the SDE's particles jitter
# and may change their minds about which mode to join; the ODE's paths glide,
# each particle's fate fixed by where it started.

# %%
widgets.sde_trajectory_explorer(vp.oracle_model(ring), vp, x_T[:pick(600, 200)], steps=pick(100, 20), lim=2.5)

# %% [markdown]
# ## 5. Learned scores: discrete and continuous-time models
#
# Now networks. Three 2-D models of `ring8`, all the same MLP: the Chapter 02
# DDPM model (trained on discrete steps of the linear schedule), and two trained
# in continuous time on VP and on VE with `losses.sde_loss`, the
# denoising score matching loss with weight $\lambda(u) = s(u)^2$ (i.e. eps
# prediction):

# %%
show_source(losses.sde_loss)


# %%
models = {name: train.load_or_train(name) for name in ("mixture", "sde_vp_ring8", "sde_ve_ring8")}
print(f"{'model (frame)':34} {'sampler':26} {'evaluations':>11} {'sliced W2':>10} {'escaped':>8}")
steps = pick(100, 20)
for name, (model, frame) in models.items():
    for sde_ in ((vp, ve10) if name == "mixture" else (frame,)):
        for label, fn, kw in (("reverse SDE", sample_euler_maruyama, {"generator": torch.Generator().manual_seed(7)}),
                              ("PF-ODE Heun", sample_pf_ode, {"solver": "heun"})):
            counted = CountedModel(model)
            s = steps if fn is sample_euler_maruyama else steps // 2
            x = fn(counted, x_T, frame, s, sde=sde_, progress=False, **kw)
            escaped = (x.norm(dim=1) > 2).float().mean().item()  # ring8 has no points beyond radius 2
            print(f"{name + ' (' + type(frame).__name__ + ')':34} {label + ' on ' + sde_.name:26} {counted.nfe:11d} "
                  f"{sw(x):10.4f} {escaped:8.4f}")

# %% [markdown]
# The DDPM network, trained only on integer timesteps of one schedule, samples
# under the VE SDE too: the log-SNR matching of `score_fn` is all it takes.
#
# Watch the last column. The ODE is deterministic, so where the learned score is
# wrong nothing corrects it: a network sees few training points in the far tails
# of $x_T$ (radius 3.5 and beyond is $e^{-3.5^2/2}$, about 0.2%, of a 2-D standard normal), and a
# starting point out there can be carried far from the data (escaped: the
# fraction ending beyond radius 2, where `ring8` has no mass). A few such points
# are enough to dominate a Wasserstein distance. The SDE's fresh noise and its
# stronger pull, $g^2 s$ instead of $\tfrac12 g^2 s$, forgive those errors:
# here no SDE sample escapes, while 0.07% of the PF-ODE samples of both
# continuous-time models do. How well a network has learnt the tails decides
# how much of this you see: the first version of `sde_vp_ring8`, trained for
# 3,000 steps, let 0.23% of its PF-ODE samples escape and scored a sliced W2 of
# 0.58 against 0.07 for its SDE samples (an earlier run of this cell, when that
# version was replaced; `ddlearn/recipes/ch04.py` records its sidecar's 0.573); the
# shipped one, trained for 20,000 steps, is the row printed above.
#
# ## 6. Exact likelihood
#
# Along the ODE $dx/du = v(x, u)$ the log-density changes by the divergence
# (the instantaneous change of variables, Chen et al. 2018):
#
# $$ \log p_{u_\min}(x(u_\min)) = \log p_1(x(1)) + \int_{u_\min}^{1} \nabla\cdot v(x(u), u)\,du . $$
#
# Integrate $x$ and the running divergence together from the data to $u = 1$,
# then evaluate the prior. In 2-D the divergence is exact (two backward
# passes); for images Hutchinson's estimator
# $\nabla\cdot v \approx \epsilon^\top(\partial v/\partial x)\,\epsilon$ with a
# Rademacher $\epsilon$ costs one (FFJORD, Grathwohl et al. 2019).

# %%
show_source(log_likelihood)

# %% [markdown]
# With the exact score the answer must be the true log-density (of the state
# at $u_\min$, which is the data plus a little noise), up to the solver's
# tolerance and the prior's approximation. With learned scores we get each
# model's own likelihood of held-out points.

# %%
held = data.gaussian_mixture(pick(300, 40), split="test", name="ring8").double()
u_min = 1e-3
ab_min = vp.alpha_bar(torch.tensor([u_min], dtype=torch.float64))
true_logp = ring.log_prob(held, 1.0)
out = log_likelihood(vp.oracle_model(ring), held, vp, u_min=u_min)
true_umin = ring.log_prob(held * ab_min.sqrt(), ab_min) + math.log(ab_min.item())  # law of x(u_min) = m x0 + s eps
print(f"{'model':28} {'mean log p (nats)':>18} {'RHS evaluations':>16}")
print(f"{'truth: log p_data(x)':28} {true_logp.mean():18.4f}")
print(f"{'truth at u_min':28} {true_umin.mean():18.4f}")
print(f"{'PF-ODE, exact score':28} {out['logp'].mean():18.4f} {out['nfe']:16d}")
for name in ("sde_vp_ring8", "sde_ve_ring8"):
    model, frame = models[name]
    res = log_likelihood(model, held.float(), frame, u_min=u_min)
    print(f"{'PF-ODE, ' + name:28} {res['logp'].mean():18.4f} {res['nfe']:16d}")
hut = log_likelihood(vp.oracle_model(ring), held, vp, u_min=u_min, divergence="hutchinson",
                     generator=torch.Generator().manual_seed(8))
print(f"{'Hutchinson, exact score':28} {hut['logp'].mean():18.4f} {hut['nfe']:16d}   "
      f"(per-point spread {(hut['logp'] - out['logp']).std():.3f} nats)")

# %% [markdown]
# On 300 held-out points the exact score reproduces the true log-density at
# $u_\min$ to $10^{-4}$ nats ($0.2352$ against $0.2353$). The learned models
# come close, below it as a model's likelihood of unseen data should be:
# $0.218$ nats for `sde_vp_ring8`, $0.182$ for `sde_ve_ring8`. Hutchinson's
# estimator is unbiased but noisy point by point (a spread of $0.89$ nats
# with one probe); its mean over 300 points is off by $0.03$.

# %% [markdown]
# ## 7. Bits per dimension on held-out digits
#
# A density on continuous values says nothing directly about discrete pixels.
# scikit-learn's digits are 8x8 images with **17 grey levels** (0..16). We
# dequantise them uniformly: the interval $[-1, 1]$ is cut into 17 bins of
# width $w = 2/17$ and level $k$ becomes $-1 + 2(k + U)/17$, $U \sim U(0, 1)$
# (`losses.dequantize`). Then (Theis et al. 2016)
# $\log P(k) \ge \mathbb E_U \log p(\text{dequantised}) + D\log w$, so
#
# $$ \text{bpd} = -\frac{\log p + D\log w}{D\ln 2} $$
#
# is an upper bound on the model's discrete negative log-likelihood in bits per
# pixel. A model that spreads its density evenly over $[-1, 1]$ is the
# baseline to beat (exercise 04.3 computes it). The model here, `sde_vp_digits8`, is a
# small UNet trained in continuous time on VP with dequantised digits of the
# training split; the held-out split was never seen.

# %%
dig_model, dig_sde = train.load_or_train("sde_vp_digits8")
test8 = data.digits("test", size=8)
n_eval = pick(359, 6)
x_deq = losses.dequantize(test8[:n_eval], 17, generator=torch.Generator().manual_seed(9))
t0 = time.perf_counter()
res = log_likelihood(dig_model, x_deq, dig_sde, u_min=1e-5, divergence="hutchinson",
                     generator=torch.Generator().manual_seed(10), rtol=pick(1e-4, 1e-2), atol=pick(1e-4, 1e-2))
bpd = bits_per_dim(res["logp"], 64, 2 / 17)
print(f"{n_eval} held-out digits: PF-ODE bits/dim {bpd.mean():.3f} (sd {bpd.std():.3f} over digits, "
      f"standard error of the mean {bpd.std() / math.sqrt(n_eval):.3f}) "
      f"({res['nfe']} ODE evaluations, {time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# `benchmarks/sde.py` evaluates the same 359 held-out digits at a tighter tolerance
# and puts the number next to the Chapter 02 ELBO.

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown]
# ## Exercises
#
# **04.1** (derive, then implement) Write `subvp_std(u)` for the default sub-VP SDE
# ($\beta_\min = 0.1$, $\beta_\max = 20$), from the variance equation
# $dv/du = -\beta(u)\,v + \beta(u)(1 - e^{-2B(u)})$ with $v(0) = 0$, where
# $B(u) = \int_0^u \beta$.

# %% [markdown] tags=["solution"]
# *Solution.* Guess $v = (1 - e^{-B})^2$. Then $dv/du = 2(1 - e^{-B})\,\beta e^{-B}$,
# and the right-hand side is $-\beta(1 - e^{-B})^2 + \beta(1 - e^{-B})(1 + e^{-B})
# = \beta(1 - e^{-B})\,2e^{-B}$: the same, and $v(0) = 0$. So $s(u) = 1 - e^{-B(u)}$
# with $B(u) = \beta_\min u + \tfrac12(\beta_\max - \beta_\min)u^2$ (VP's is
# $\sqrt{1 - e^{-B}}$, larger: sub-VP adds less noise at every $u$).

# %% tags=["solution"]
def subvp_std(u, beta_min=0.1, beta_max=20.0):
    B = beta_min * u + 0.5 * (beta_max - beta_min) * u ** 2
    return 1 - math.exp(-B)


check("04.1", subvp_std)

# %% [markdown]
# **04.2** (implement) Write `ve_pf_drift(x, u, score)`, the probability-flow drift of the VE
# SDE with $\sigma_\min = 0.01$, $\sigma_\max = 50$.

# %% tags=["solution"]
def ve_pf_drift(x, u, score, sigma_min=0.01, sigma_max=50.0):
    # VE: f = 0 and g^2 = d sigma^2 / du with sigma(u) = sigma_min (sigma_max / sigma_min)^u
    sigma2 = (sigma_min * (sigma_max / sigma_min) ** u) ** 2
    g2 = 2 * sigma2 * math.log(sigma_max / sigma_min)
    return -0.5 * g2 * score


check("04.2", ve_pf_drift)

# %% [markdown]
# **04.3** (predict, then compute) Before running anything: is the
# bits-per-dimension of a model whose density is uniform on $[-1, 1]^D$, under
# the 17-level dequantisation of section 7, above or below 4? Then compute it
# (a `float`).

# %% tags=["solution"]
# uniform on [-1, 1]: density 1/2 per dimension; bpd = -(log p + log w) / ln 2 with w = 2/17
answer_04_3 = -(math.log(0.5) + math.log(2 / 17)) / math.log(2)   # = log2(17), a little above 4
print(f"uniform model: {answer_04_3:.3f} bits per dimension (section 7's model is the number to compare)")
check("04.3", answer_04_3)

# %% [markdown]
# **04.4** (derive) Gaussian data $\mathcal N(0.5, 0.3^2)$ under the VE SDE
# ($\sigma_\min = 0.01$, $\sigma_\max = 50$): derive the probability-flow velocity
# $v(x, u)$ in closed form and write `gauss_ve_velocity(x, u)`. Which way does
# it point for $x$ above the mean, as $u$ runs from 1 down to 0, and why does
# that shrink the cloud?

# %% [markdown] tags=["solution"]
# *Solution.* VE adds independent noise of variance $\sigma(u)^2$, so
# $p_u = \mathcal N(0.5,\; 0.3^2 + \sigma(u)^2)$ and
# $\nabla\log p_u(x) = -(x - 0.5)/(0.3^2 + \sigma^2)$. With $f = 0$ and
# $g^2 = d\sigma^2/du = 2\sigma^2\ln(\sigma_\max/\sigma_\min)$, section 4's velocity is
#
# $$ v(x, u) = -\tfrac12 g^2\,\nabla\log p_u(x) = \frac{\sigma^2\ln(\sigma_\max/\sigma_\min)\,(x - 0.5)}{0.3^2 + \sigma^2}. $$
#
# For $x > 0.5$ it is positive: $x$ grows with $u$. Sampling runs $u$ downwards,
# so $x$ moves towards the mean, the faster the further away: the cloud
# contracts from the prior's spread to the data's, as the figure of section 4
# showed for VP.

# %% tags=["solution"]
def gauss_ve_velocity(x, u, sigma_min=0.01, sigma_max=50.0, mean=0.5, std=0.3):
    sigma2 = (sigma_min * (sigma_max / sigma_min) ** u) ** 2
    return sigma2 * math.log(sigma_max / sigma_min) * (x - mean) / (std ** 2 + sigma2)


check("04.4", gauss_ve_velocity)

# %% [markdown]
# **04.5** (open) In section 3, scan the corrector's `snr` over 0.01 .. 0.5 at a
# fixed budget. Where is the optimum for VP, and for VE? Why might 2-D data
# want a different value from Song et al.'s 0.16 for images?
#
# **04.6** (open) Use `pf_ode_encode` on two digits and decode points on the
# straight line between their latents. Compare with interpolating the pixels.
#
# ## References
#
# * Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole.
#   *Score-Based Generative Modeling through Stochastic Differential Equations.*
#   ICLR 2021 (VP / sub-VP / VE, reverse SDE, predictor-corrector,
#   probability-flow ODE, likelihoods).
# * B. D. O. Anderson. *Reverse-time diffusion equation models.* Stochastic
#   Processes and their Applications 12(3), 1982.
# * J. Ho, A. Jain, P. Abbeel. *Denoising Diffusion Probabilistic Models.*
#   NeurIPS 2020. Y. Song, S. Ermon. *Generative Modeling by Estimating
#   Gradients of the Data Distribution.* NeurIPS 2019.
# * R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud. *Neural Ordinary
#   Differential Equations.* NeurIPS 2018 (instantaneous change of variables).
# * W. Grathwohl, R. T. Q. Chen, J. Bettencourt, I. Sutskever, D. Duvenaud.
#   *FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative
#   Models.* ICLR 2019 (Hutchinson's trace estimator in the ODE).
# * M. F. Hutchinson. *A stochastic estimator of the trace of the influence
#   matrix for Laplacian smoothing splines.* 1990.
# * L. Theis, A. van den Oord, M. Bethge. *A note on the evaluation of
#   generative models.* ICLR 2016 (dequantisation).
# * J. R. Dormand, P. J. Prince. *A family of embedded Runge-Kutta formulae.*
#   1980 (RK45).
