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
# # Chapter 10 - Flow matching and rectified flow
#
# Every model so far learns to undo a noising process fixed in advance (DDPM's
# chain, an SDE), and its fast samplers solve the probability-flow ODE that
# process implies (Chapters 04 and 05). Flow matching turns the order around:
# choose the path from data to noise first, as simply as possible (a straight
# line from each data point to its noise), and regress a network on the
# velocity along it. Sampling is then solving $dx/du = v_\theta(x, u)$ from
# noise to data. Lipman et al. (2023) called it flow matching, Liu, Gong & Liu
# (2023) rectified flow, Albergo & Vanden-Eijnden (2023) a stochastic
# interpolant; Stable Diffusion 3 (Esser et al. 2024) is trained this way. By
# the end of this chapter you will be able to
#
# * write a probability path $x_u = \alpha(u)\,x_0 + \sigma(u)\,\epsilon$, and
#   compare the straight path with DDPM's variance-preserving schedule as two
#   time frames of one family, through their log-SNR;
# * derive why regressing on the *conditional* velocity $\epsilon - x_0$
#   learns the *marginal* velocity $E[\epsilon - x_0 \mid x_u]$ that moves
#   the whole distribution, and check it by Monte Carlo against an exact oracle;
# * convert a velocity into $\epsilon$, $x_0$ and the score, and run any
#   sampler of the book on a flow-matching model;
# * show that DDIM is Euler's method on the straight path, to float precision;
# * train a flow-matching model and split its error into learning and
#   integration error with the exact velocity of a Gaussian mixture;
# * compare flow matching with DDPM at an equal number of network evaluations,
#   on 2-D mixtures and on digits;
# * straighten a flow by **reflow** (rectified flow), measure its
#   straightness, and see what that buys at one to four evaluations.
#
# Time convention (as in Chapter 04): $u \in [0, 1]$ with $u = 0$ the data
# and $u = 1$ the noise (Lipman et al. run time the other way); a model's
# time input is the timestep $t = u\,(T-1)$, as for every model in the book.

# %%
import dataclasses
import json
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import data, flow, frames, metrics, oracles, param, pretrained, recipes, train, viz, widgets
from ddlearn.config import is_fast, pick
from ddlearn.losses import flow_matching_loss
from ddlearn.notebook import check, show_source
from ddlearn.oracles import named_mixture
from ddlearn.rectified import reflow, reflow_pairs, straightness
from ddlearn.report import fmt_mean_sd
from ddlearn.samplers import sample_ddim, sample_flow, steps_for, time_grid
from ddlearn.samplers.compare import run_at_budget
from ddlearn.samplers.spacing import alpha_bars
from ddlearn.schedules import linear

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# %% [markdown]
# ## 1. Probability paths
#
# Every noising process in the book writes a noisy sample as
#
# $$x_u = \alpha(u)\,x_0 + \sigma(u)\,\epsilon,\qquad \epsilon \sim \mathcal N(0, I),\quad u \in [0, 1].$$
#
# DDPM's linear schedule has $\alpha = \sqrt{\bar\alpha_t}$ and
# $\sigma = \sqrt{1 - \bar\alpha_t}$ at $t = u\,(T-1)$, so $\alpha^2 + \sigma^2 = 1$
# (variance preserving, VP). Flow matching takes the simplest path between a
# data point and its noise, the straight line
#
# $$x_u = (1-u)\,x_0 + u\,\epsilon,\qquad \alpha = 1 - u,\quad \sigma = u .$$
#
# Lipman et al. call it the conditional optimal-transport path (with a small
# $\sigma_{\min}$ left at the data end, which `FlowPath(sigma_min=...)`
# offers), Liu et al. the rectified flow, Albergo & Vanden-Eijnden the linear
# interpolant. For one pair $(x_0, \epsilon)$ the point moves at the constant
# velocity $dx_u/du = \epsilon - x_0$.
#
# Both are **time frames** (`ddlearn.frames`): objects that give
# $\alpha(t)$ and $\sigma(t)$ at the model's timestep $t = u\,(T-1)$, their
# log-SNR $\lambda = \log(\alpha^2/\sigma^2)$ and its inverse. Two frames at
# the same log-SNR hold the same information, since
# $x/\alpha = x_0 + (\sigma/\alpha)\,\epsilon$ is the same variable in both:
# that is what lets a model trained in one frame answer in the other
# (Section 3). The straight path as a frame:

# %%
show_source(flow.FlowPath.coefs)

# %%
path, vp = flow.FlowPath(), linear(1000)
print(path, "and", vp, "are time frames:", frames.is_frame(path), frames.is_frame(vp))
u = torch.linspace(0, 1, 401, dtype=torch.float64)
t = u * (path.T - 1)
curves = {"straight path (flow matching)": path, "linear VP (DDPM)": vp}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
for (name, frame), style in zip(curves.items(), ("-", "--")):
    a, s = frame.coefs(t)
    axes[0].plot(u, a, style, color="C0", label=rf"$\alpha$, {name}")
    axes[0].plot(u, s, style, color="C1", label=rf"$\sigma$, {name}")
    axes[1].plot(u, a ** 2 + s ** 2, style, label=name)
    axes[2].plot(u, frame.log_snr_at(t), style, label=name)
axes[0].set_title(r"$\alpha(u)$ and $\sigma(u)$", fontsize="small")
axes[0].legend(fontsize="x-small")
axes[1].set_title(r"$\alpha^2 + \sigma^2$: the variance of $x_u$ for data of unit variance", fontsize="small")
axes[2].set_title(r"log-SNR $\lambda = \log(\alpha^2/\sigma^2)$", fontsize="small")
axes[2].set_ylim(-14, 14)
for ax in axes:
    ax.set_xlabel("u")
axes[1].legend(fontsize="x-small")
plt.show()

lo, hi = vp.log_snr_range()
print(f"log-SNR covered: straight path {path.log_snr_range()}, linear VP ({lo:.2f}, {hi:.2f})")
print("the same noise level in both frames (frames.matching_time):")
for t_vp in (999, 750, 500, 250, 50):
    u_fm = frames.matching_time(path, vp, torch.tensor([float(t_vp)])).item() / (path.T - 1)
    print(f"  linear VP at t = {t_vp:3d} (u = {t_vp / 999:.2f})  <->  straight path at u = {u_fm:.3f}")

# %% [markdown]
# The straight path is not variance preserving: halfway, $x_{1/2}$ of unit-variance
# data has variance $\tfrac14 + \tfrac14 = \tfrac12$. Its log-SNR,
# $2\log\big((1-u)/u\big)$, runs over the whole real line, from $+\infty$ at
# the data to $-\infty$ at the noise, so every noise level of every schedule
# has a time on it. The table shows how differently the two frames spend
# their time: the linear schedule's middle step, $t = 500$, has the noise level
# of $u = 0.775$ on the straight path, three quarters of the way to the noise.
# A uniform grid in $u$ and a uniform grid in DDPM's $t$ are therefore very
# different grids of noise levels. And DDPM's last step, $t = 999$, is not
# pure noise: it matches $u = 0.994$, a little short of the straight path's
# end, where $x_1 = \epsilon$ carries no signal at all.

# %% [markdown]
# ## 2. The conditional and the marginal velocity
#
# For one pair $(x_0, \epsilon)$ the path moves at the **conditional
# velocity** $\epsilon - x_0$. A sampler cannot use it: at time $u$ it knows
# $x_u$, not the pair. What moves the whole distribution $p_u$ of $x_u$ is the
# **marginal velocity**
#
# $$v(x, u) = E\big[\epsilon - x_0 \,\big|\, x_u = x\big],$$
#
# the average conditional velocity of all the pairs whose line passes through
# $x$ at time $u$. Why that average? For any smooth test function $f$,
#
# $$\frac{d}{du}\,E f(x_u) = E\big[\nabla f(x_u)\cdot(\epsilon - x_0)\big]
#   = E\big[\nabla f(x_u)\cdot E[\epsilon - x_0 \mid x_u]\big]
#   = E\big[\nabla f(x_u)\cdot v(x_u, u)\big],$$
#
# where the middle step conditions on $x_u$ (the tower property;
# $\nabla f(x_u)$ is a function of $x_u$ alone). The right-hand side is how
# $E f$ changes when every point of $p_u$ moves with velocity $v(x, u)$. So the
# ODE $dx/du = v(x, u)$ carries $p_u$ to $p_{u'}$ for any two times, and in
# particular $\mathcal N(0, I)$ at $u = 1$ to the data at $u = 0$. (This is
# the continuity equation $\partial_u p_u + \nabla\cdot(p_u v) = 0$ in weak
# form; Lipman et al. 2023, Theorem 1, and Liu et al. 2023 show the same.)
#
# $v$ is an integral over the data distribution, which we only have samples
# of. The way out is the one Chapter 02 took for $\epsilon^* = E[\epsilon \mid x_t]$:
# regress on the conditional quantity. For any function $g(x, u)$,
#
# $$E\,\big\|g(x_u, u) - (\epsilon - x_0)\big\|^2
#   = E\,\big\|g(x_u, u) - v(x_u, u)\big\|^2 + E\,\big\|v(x_u, u) - (\epsilon - x_0)\big\|^2,$$
#
# because the cross term $2\,E\big[(g - v)\cdot\big(v - (\epsilon - x_0)\big)\big]
# = 2\,E\big[(g - v)\cdot E[v - (\epsilon - x_0) \mid x_u]\big]$ is zero. The
# second term does not depend on $g$. So the **conditional flow-matching loss**
#
# $$L(\theta) = E_{u,\,x_0,\,\epsilon}\,\big\|v_\theta(x_u, u) - (\epsilon - x_0)\big\|^2$$
#
# has the same minimiser as the marginal loss we cannot compute, $v$ itself,
# and the same gradients in $\theta$ (Lipman et al. 2023, Theorem 2). Its minimum is not zero: the floor
# $E\|v - (\epsilon - x_0)\|^2$ is how much the conditional velocity varies
# among the pairs that meet at the same $x_u$.

# %%
show_source(flow_matching_loss, docstring=False)

# %% [markdown]
# Check both claims on the `two` mixture (weights 0.2 and 0.8 at $(\mp 1, 0)$),
# whose exact $v$ the next section builds. First the conditional mean: draw many
# pairs, keep those whose $x_{1/2}$ lands in a small disc, and average their
# $\epsilon - x_0$.

# %%
two = named_mixture("two")
exact_two = two.velocity_model(path)          # the exact marginal velocity (Section 3)
n_mc = pick(400_000, 100_000)
x0 = two.sample(n_mc, generator=gen(4)).double()
eps = torch.randn(x0.shape, generator=gen(5), dtype=torch.float64)
t_half = torch.full((n_mc,), 0.5 * (path.T - 1))
x_u, v_cond = path.sample(x0, t_half, eps)    # x_u and the conditional velocity eps - x0
centre = torch.tensor([0.3, 0.1], dtype=torch.float64)
near = (x_u - centre).norm(dim=1) < 0.05
mc_mean, mc_se = v_cond[near].mean(0), v_cond[near].std(0) / near.sum().sqrt()
exact_there = exact_two(x_u[near], t_half[near]).mean(0)
np.set_printoptions(precision=3, suppress=True)
print(f"{int(near.sum())} of {n_mc} pairs have x_u within 0.05 of {centre.numpy()} at u = 0.5")
print(f"  their conditional velocities eps - x0: mean {mc_mean.numpy()}, standard error {mc_se.numpy()}, "
      f"spread (sd) {v_cond[near].std(0).numpy()}")
print(f"  the exact marginal velocity at the same points: {exact_there.numpy()}")
print(f"  difference in standard errors: {((mc_mean - exact_there) / mc_se).numpy()}")

# %% [markdown]
# The last line is the gap between the two in units of the Monte Carlo
# standard error: a few units at most if the claim holds. Then the
# decomposition of the loss: the loss of the exact $v$ is the floor,
# and a model that is off by a constant $\delta$ in every coordinate pays
# $\delta^2$ more per coordinate (`flow_matching_loss` averages over
# coordinates), because the cross term vanishes. Same pairs, same $u$, for both:

# %%
x0_loss = two.sample(pick(100_000, 20_000), generator=gen(3)).double()
floor_two = flow_matching_loss(exact_two, x0_loss, path, generator=gen(6)).item()
delta = 0.1
off = flow_matching_loss(lambda x, t: exact_two(x, t) + delta, x0_loss, path, generator=gen(6)).item()
print(f"loss of the exact velocity (the floor): {floor_two:.4f}")
print(f"loss of the exact velocity + {delta}:      {off:.4f}, larger by {off - floor_two:.4f} "
      f"(delta^2 = {delta ** 2:.4f}, up to the Monte Carlo noise of the cross term)")

# %% [markdown]
# ## 3. An exact velocity, and the conversions
#
# By linearity, $v(x, u) = \alpha'\,E[x_0 \mid x_u = x] + \sigma'\,E[\epsilon \mid x_u = x]$
# (primes are $d/du$; on the straight path $\alpha' = -1$, $\sigma' = 1$). For a
# Gaussian mixture both conditional means are closed-form: $E[x_0 \mid x]$
# is the posterior mean of a Gaussian denoising problem, computed in the
# variance-preserving state $x/\sqrt{\alpha^2+\sigma^2}$ (each component
# conditioned as in Chapter 06's exact posteriors, then weighted by its
# responsibility), and $E[\epsilon \mid x] = -\sigma\,\nabla_x \log p_u(x)$ is
# Tweedie's formula (Chapter 03). The oracle puts the two together:

# %%
show_source(oracles.MixtureVelocity.forward)

# %%
show_source(oracles.GaussianMixture.score_and_denoise)

# %% [markdown]
# **Velocity, $\epsilon$, $x_0$, score.** The same two linear relations hold for
# the conditional means (write $\hat x_0$, $\hat\epsilon$ for them, or for a
# model's estimates):
#
# $$x = \alpha\,\hat x_0 + \sigma\,\hat\epsilon,\qquad v = \alpha'\,\hat x_0 + \sigma'\,\hat\epsilon .$$
#
# Two equations, two unknowns. Put $\hat x_0 = (x - \sigma\hat\epsilon)/\alpha$
# into the second and multiply by $\alpha$: $\alpha v = \alpha' x + (\alpha\sigma' - \alpha'\sigma)\,\hat\epsilon$, so
#
# $$\hat\epsilon = \frac{\alpha\,v - \alpha'\,x}{\alpha\,\sigma' - \alpha'\,\sigma},\qquad
#   \hat x_0 = \frac{x - \sigma\hat\epsilon}{\alpha},\qquad
#   \nabla_x \log p_u(x) = -\frac{\hat\epsilon}{\sigma}.$$
#
# On the straight path the denominator is $(1-u)\cdot 1 - (-1)\cdot u = 1$ at
# every $u$, so the conversion never divides by zero (exercise 10.1 writes it
# out for the score). This is the one place in the library that turns a
# velocity into $\epsilon$:

# %%
show_source(param.velocity_to_eps)

# %% [markdown]
# `param.adapt` builds on it: given a velocity model and its path it returns
# an $\epsilon$-model *of any other frame*: called at a schedule's timestep, it
# finds the path's time with the same log-SNR, rescales the state, asks the
# velocity model and converts. Every sampler of the book (DDIM, DPM-Solver++,
# DPS, ...) then runs on a flow-matching model unchanged. Check the
# conversion and the adapter against the mixture's exact $\epsilon$, which the
# oracle computes without any velocity:

# %%
x = torch.randn(256, 2, generator=gen(7), dtype=torch.float64)
for u0 in (0.05, 0.3, 0.7, 0.95):
    tt = torch.full((256,), u0 * (path.T - 1))
    a, s = path.coefs(tt)
    da, ds = path.coef_derivs(tt)
    eps_from_v = param.velocity_to_eps(x, exact_two(x, tt), a, s, da, ds)
    norm = (a ** 2 + s ** 2).sqrt()
    eps_exact = two.eps(x / norm[:, None], (a / norm) ** 2)   # E[eps | x] in the VP state: the same eps
    back = param.eps_to_velocity(x, eps_from_v, a, s, da, ds)
    print(f"u = {u0:.2f}: max |eps from v - exact eps| = {(eps_from_v - eps_exact).abs().max():.1e}, "
          f"round trip to v: {(back - exact_two(x, tt)).abs().max():.1e}")
as_eps = param.adapt(exact_two, path, prediction="velocity", to=vp)   # an eps-model of the linear schedule
t_vp = torch.tensor([10.0, 300.0, 600.0, 990.0]).repeat_interleave(64)
x_vp = torch.randn(256, 2, generator=gen(8), dtype=torch.float64)
print(f"adapt(velocity oracle) against the eps oracle at linear-schedule steps 10 to 990: max difference "
      f"{(as_eps(x_vp, t_vp) - two.eps_model(vp)(x_vp, t_vp)).abs().max():.1e}")

# %% [markdown]
# ## 4. DDIM is Euler's method on the straight path
#
# Chapter 05 found DDIM to be Euler's method on the probability-flow ODE
# written in $\bar x = x/\sqrt{\bar\alpha}$ and $\sigma_{\rm VE} = \sqrt{(1-\bar\alpha)/\bar\alpha}$.
# On the straight path the same thing happens in the path's own variables.
# One Euler step of $dx/du = \hat v$ from $u$ to $u'$ is
# $x' = x + (u' - u)\,\hat v$. Write the model's velocity through its $\hat x_0$
# and $\hat\epsilon$ (Section 3): $x = (1-u)\,\hat x_0 + u\,\hat\epsilon$ and
# $\hat v = \hat\epsilon - \hat x_0$. Then
#
# $$x' = (1-u)\,\hat x_0 + u\,\hat\epsilon + (u' - u)(\hat\epsilon - \hat x_0)
#      = (1-u')\,\hat x_0 + u'\,\hat\epsilon :$$
#
# predict the clean sample and the noise, and rebuild the state at the new
# level *with the same noise*: DDIM's update. Divide by $1 - u'$ and it is
# Chapter 05's form exactly: with $\bar x = x/(1-u)$ and
# $\bar\sigma = u/(1-u)$ (the same noise-to-signal ratio $\sigma/\alpha$ as
# $\sigma_{\rm VE}$),
#
# $$\bar x' = \hat x_0 + \bar\sigma'\,\hat\epsilon = \bar x + (\bar\sigma' - \bar\sigma)\,\hat\epsilon .$$
#
# The step is exact for frozen predictions because $\alpha$ and $\sigma$ are
# *affine* in $u$: with $\hat x_0$ and $\hat\epsilon$ held fixed,
# $(1-u)\,\hat x_0 + u\,\hat\epsilon$ is a straight line in $u$, and Euler
# follows straight lines. (Euler in the VP schedule's own $t$ is not DDIM: there
# $\sqrt{\bar\alpha_t}$ is not affine in $t$.) So DDIM with $N$ steps on any
# schedule is Euler with $N$ steps on the straight path, on the grid
# $u = \bar\sigma/(1+\bar\sigma)$ of the same noise levels, from the same
# starting point rescaled, $x_{u} = (1-u)\,x_{\rm VP}/\sqrt{\bar\alpha}$. Check it
# with the `grid9` mixture's exact $\epsilon$ (for DDIM) and exact velocity (for Euler):

# %%
grid9 = named_mixture("grid9")
x_T = torch.randn(200, 2, generator=gen(1), dtype=torch.float64)
for steps in (1, 4, 13, 50):
    ts = time_grid(vp, steps, "quadratic")                        # DDIM's timesteps
    ab = torch.tensor(alpha_bars(vp, ts), dtype=torch.float64)    # their alpha-bars, then 1 (the data)
    sig = ((1 - ab) / ab).sqrt()
    us = sig / (1 + sig)                                          # the same noise levels on the straight path
    ddim = sample_ddim(grid9.eps_model(vp), x_T, vp, steps, spacing="quadratic", progress=False)
    euler = sample_flow(grid9.velocity_model(path), x_T * (1 - us[0]) / ab[0].sqrt(), path, steps, grid=us,
                        progress=False)
    print(f"{steps:3d} steps: max |DDIM - Euler| = {(ddim - euler).abs().max():.1e} "
          f"(the samples moved {(ddim - x_T).norm(dim=1).mean():.2f} from x_T on average)")

# %% [markdown]
# Equal up to float64 rounding, at every number of steps. The solver is the same
# method; what differs between "a DDPM model sampled with DDIM" and "a flow
# model sampled with Euler" is therefore (1) what the network learnt (which
# target it regresses, and so how the loss weights each noise level,
# exercise 10.5), and (2) the grid of noise levels the sampler visits
# (Section 1: a uniform grid in $u$ is not a uniform grid in $t$).

# %% [markdown]
# ## 5. Training on 2-D data: learning error and integration error
#
# `flow_mixture` is Chapter 02's `mixture` recipe (the ring of 8 Gaussians,
# the same MLP, steps, batch, learning rate and EMA) with two fields changed:
# the frame is the straight path and the loss is the flow-matching loss. What
# differs between the two recipes:

# %%
ddpm_rec, fm_rec = recipes.get("mixture"), recipes.get("flow_mixture")
for f in dataclasses.fields(fm_rec):
    if f.name not in ("name", "description") and getattr(ddpm_rec, f.name) != getattr(fm_rec, f.name):
        print(f"  {f.name:10s} mixture: {getattr(ddpm_rec, f.name)!r:28} flow_mixture: {getattr(fm_rec, f.name)!r}")
print(f"  the same for both: {fm_rec.steps} steps, batch {fm_rec.batch_size}, lr {fm_rec.lr}, "
      f"EMA {fm_rec.ema_decay}, net {fm_rec.net} {fm_rec.net_kwargs}")
fm_model, fm_path = train.load_or_train("flow_mixture")
ring = named_mixture("ring8")
exact_ring = ring.velocity_model(fm_path)

# %% [markdown]
# Where does the network miss the exact velocity? Per $u$, on held-out
# points: the learning error $E\|v_\theta - v\|^2$ next to the floor
# $E\|v - (\epsilon - x_0)\|^2$ that even the exact field pays in the loss.

# %%
held = data.gaussian_mixture(pick(4000, 500), split="test", name="ring8").double()
u_grid = np.linspace(0.0, 1.0, pick(41, 9))
learn_err, loss_floor = [], []
g = gen(2)
with torch.no_grad():
    for u0 in u_grid:
        noise = torch.randn(held.shape, generator=g, dtype=torch.float64)
        tt = torch.full((held.shape[0],), u0 * (fm_path.T - 1))
        xu, target = fm_path.sample(held, tt, noise)
        v_star = exact_ring(xu, tt)
        learn_err.append(((fm_model(xu.float(), tt.float()).double() - v_star) ** 2).sum(1).mean().item())
        loss_floor.append(((target - v_star) ** 2).sum(1).mean().item())
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.plot(u_grid, loss_floor, label=r"floor: $E\|v - (\epsilon - x_0)\|^2$")
ax.plot(u_grid, learn_err, label=r"learning error: $E\|v_\theta - v\|^2$")
ax.set_yscale("log")
ax.set_xlabel("u (0: data, 1: noise)")
ax.legend(fontsize="small")
plt.show()
worst = int(np.argmax(learn_err))
print(f"learning error largest at u = {u_grid[worst]:.3f} ({learn_err[worst]:.3g}); "
      f"at u = 1: {learn_err[-1]:.3g}; the floor ranges over {min(loss_floor):.3g} .. {max(loss_floor):.3g}")

# %% [markdown]
# The floor has two ends we can work out by hand. At $u = 0$ the state is the
# data point itself and says nothing about the noise, so
# $v(x, 0) = E[\epsilon] - x = -x$ and the floor is $E\|\epsilon\|^2 = 2$ (two
# coordinates). At $u = 1$ the state is the noise and says nothing about the
# data point, so $v(x, 1) = x - E[x_0]$ and the floor is the data's total
# variance, $E\|x_0 - E x_0\|^2$, about 1 for the ring of radius 1. The
# learning error is a different matter: it says where on the path this
# network's field is hardest to fit (the print names the worst $u$).
#
# Then samples. Integrate the trained field and the exact field from the same
# noise with Euler and Heun (two evaluations a step, the last step Euler, so
# $N$ steps cost $2N - 1$) at several budgets, and score each set by the MMD
# against the exact mixture (`metrics.mmd`, times $10^4$; a sample of the
# mixture itself scores 0 plus noise, shown in the last row). The exact field
# has no learning error, so its row is the **integration error** alone; the
# trained field adds the **learning error**.

# %%
n_pts, n_draws = pick(2000, 400), pick(3, 2)
x_Ts = [torch.randn(n_pts, 2, generator=gen(100 + k)) for k in range(n_draws)]
budgets = pick([1, 2, 4, 8, 16, 32, 64], [1, 4, 16])


def mmd(x):
    return 1e4 * metrics.mmd(x.double(), ring)


def flow_at_budget(model, x, solver, budget):
    steps = steps_for(sample_flow, budget, solver=solver)
    with torch.no_grad():
        return sample_flow(model, x, fm_path, steps, solver=solver, progress=False)


fields = {"trained": fm_model, "exact v": exact_ring}
quality, shown = {}, {}
for name, model in fields.items():
    for solver in ("euler", "heun"):
        for b in budgets:
            xs = [flow_at_budget(model, x if name == "trained" else x.double(), solver, b) for x in x_Ts]
            quality[name, solver, b] = [mmd(x) for x in xs]
            shown[name, solver, b] = xs[0]
exact_floor = [mmd(ring.sample(n_pts, generator=gen(50 + k))) for k in range(n_draws)]
print(f"MMD x 1e4 to the exact ring (mean +- sd over {n_draws} draws of {n_pts} points); "
      f"Heun uses 2N - 1 <= budget evaluations")
print(f"{'field, solver':16s}" + "".join(f"{b:>18d}" for b in budgets))
for name in fields:
    for solver in ("euler", "heun"):
        print(f"{name + ', ' + solver:16s}" + "".join(f"{fmt_mean_sd(quality[name, solver, b]):>18s}"
                                                      for b in budgets))
print(f"{'exact samples':16s}{fmt_mean_sd(exact_floor):>18s}")

# %% [markdown]
# Read the table by columns. In an "exact v" row everything above the exact
# samples' level is integration error, and once the steps are small it
# shrinks as the evaluations grow (Euler's trajectory error as $1/N$, Heun's as
# $1/N^2$, Chapter 05), down to that level. A "trained" row sits above the "exact v"
# row of the same solver by the learning error, which no solver removes: where
# more evaluations stop helping the trained field, what is left is learnt, not
# integrated. The cell below says, per budget, which of the two gaps is the
# larger, for the better solver at that budget:

# %%
floor_mean = np.mean(exact_floor)
for b in budgets:
    best = min(("euler", "heun"), key=lambda s: np.mean(quality["trained", s, b]))
    integ = np.mean(quality["exact v", best, b]) - floor_mean      # the exact field's excess: integration error
    learn = np.mean(quality["trained", best, b]) - np.mean(quality["exact v", best, b])
    verdict = "integration error larger" if integ > learn else "learning error larger"
    print(f"{b:3d} evaluations ({best:5s}): exact field above exact samples by {integ:8.2f}, "
          f"trained above exact field by {learn:8.2f} -> {verdict}")

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
small, large = budgets[min(2, len(budgets) - 1)], budgets[-1]
for ax, (title, pts) in zip(axes, [(f"trained, Euler, {small} evaluations", shown["trained", "euler", small]),
                                   (f"exact v, Euler, {small} evaluations", shown["exact v", "euler", small]),
                                   (f"trained, Heun, {large} evaluations", shown["trained", "heun", large]),
                                   ("exact samples", ring.sample(n_pts, generator=gen(50)))]):
    pts = pts.double().numpy()
    ax.plot(pts[:, 0], pts[:, 1], ".", ms=1.5, alpha=0.5)
    ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal", title=title)
    ax.title.set_fontsize("small")
plt.show()

# %% [markdown]
# (MMD differences are not additive errors: the two gaps only compare three
# rows of the same table. Where the integration error is large, the trained
# field may even land nearer the data than the exact one, a negative gap:
# the two errors need not add up.)

# %% [markdown]
# ## 6. Flow matching against DDPM at equal evaluations
#
# Is a flow-matching model better than a DDPM model of the same size and
# training budget, when both may use only a few network evaluations? On the
# ring, `flow_mixture` and Chapter 02's `mixture` are such a pair. Give each
# its natural samplers, and the flow model one more through `param.adapt`:
# DPM-Solver++(2M) on the DDPM model's schedule, fed by the velocity model.

# %%
ddpm_model, ddpm_sched = pretrained.load("mixture")


def fm_dpm_pp(x, budget):
    as_eps_model = param.adapt(fm_model, fm_path, prediction="velocity", to=ddpm_sched)
    return run_at_budget("DPM-Solver++(2M)", as_eps_model, x, ddpm_sched, budget)[0]


contenders = {
    "DDPM / DDIM": lambda x, b: run_at_budget("DDIM", ddpm_model, x, ddpm_sched, b)[0],
    "DDPM / DPM-Solver++(2M)": lambda x, b: run_at_budget("DPM-Solver++(2M)", ddpm_model, x, ddpm_sched, b)[0],
    "FM / Euler": lambda x, b: flow_at_budget(fm_model, x, "euler", b),
    "FM / Heun": lambda x, b: flow_at_budget(fm_model, x, "heun", b),
    "FM / DPM-Solver++(2M) (adapt)": fm_dpm_pp,
}
eq_budgets = [4, 10, 20]
versus = {}
with torch.no_grad():
    for name, fn in contenders.items():
        for b in eq_budgets:
            versus[name, b] = [mmd(fn(x, b)) for x in x_Ts]
print(f"ring8, MMD x 1e4 (mean +- sd over the same {n_draws} draws of {n_pts} points)")
print(f"{'model / sampler':32s}" + "".join(f"{b:>12d} evals" for b in eq_budgets))
for name in contenders:
    print(f"{name:32s}" + "".join(f"{fmt_mean_sd(versus[name, b]):>18s}" for b in eq_budgets))


def paired(a, b):
    d = [x - y for x, y in zip(a, b)]
    return statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5


for b in eq_budgets:
    best_fm = min((n for n in contenders if n.startswith("FM")), key=lambda n: np.mean(versus[n, b]))
    best_dd = min((n for n in contenders if n.startswith("DDPM")), key=lambda n: np.mean(versus[n, b]))
    m, se = paired(versus[best_fm, b], versus[best_dd, b])
    word = "tie" if abs(m) <= 2 * se else ("flow matching" if m < 0 else "DDPM")
    print(f"{b:2d} evals: best FM ({best_fm}) minus best DDPM ({best_dd}): {m:+.2f} (se {se:.2f}) -> {word}")

# %% [markdown]
# One mixture, one training run of each model and a few draws: enough to
# see how the comparison is made, not to settle it ("tie" means within two
# standard errors of the paired difference; with this few draws the standard
# error itself is rough). `benchmarks/flow.py` asks the same question on all
# seven mixtures of Chapter 05's panel, from wide overlapping components to
# tight separated ones, each with a flow-matching and a DDPM model of the same
# MLP trained for the purpose, every applicable sampler at default settings,
# and more draws. Its stored table:

# %%
RESULTS = pretrained.HERE / "flow_results.json"
stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
if "compare" not in stored:
    print(f"{RESULTS.name} holds no 'compare' table yet. Make it with\n"
          "    python benchmarks/flow.py --part train\n"
          "    python benchmarks/flow.py --part compare --save\n"
          "(the chapter skips the table until then)")
else:
    cmp = stored["compare"]
    print(f"{cmp['command']}: flow matching against DDPM, the same MLP and {cmp['steps']} training steps each; "
          f"MMD x 1e4, mean over {cmp['seeds']} draws of {cmp['n']} points; the difference is paired over the draws")
    print(f"{'problem':11s}{'evals':>6s}  {'best flow matching':34s}{'best DDPM':30s}{'FM - DDPM (se)':>17s}  winner")
    tally = {b: {} for b in cmp["budgets"]}
    for problem, res in cmp["problems"].items():
        for b in cmp["budgets"]:
            v = res["verdict"][str(b)]
            fm_m = np.mean(res["rows"][v["best_fm"]][str(b)])
            dd_m = np.mean(res["rows"][v["best_ddpm"]][str(b)])
            print(f"{problem:11s}{b:6d}  {v['best_fm'] + f' ({fm_m:.2f})':34s}{v['best_ddpm'] + f' ({dd_m:.2f})':30s}"
                  f"{v['diff']:+9.2f} ({v['se']:.2f})  {v['winner']}")
            tally[b][v["winner"]] = tally[b].get(v["winner"], 0) + 1
    for b, counts in tally.items():
        print(f"at {b:2d} evaluations: " + ", ".join(f"{w} {c}" for w, c in sorted(counts.items())))

# %% [markdown]
# Each line names the better sampler of each model on one problem and budget
# (in brackets its mean MMD) and the paired verdict; the last lines count the
# verdicts per budget. That count, not a single problem, answers this
# section's question, and only for what was measured: small MLPs, 2-D
# mixtures, one training budget, uniform $u$ during training. Section 4 says
# where a difference can come from: the sampler is the same method for both
# models, so it comes from what each network learnt and from the grid of
# noise levels each sampler visits. Esser et al. (2024) compared many such
# formulations on images; the one they ranked best trained rectified flow
# with $u$ drawn from a logit-normal distribution, which spends more of the
# training on the middle of the path than uniform $u$ does (exercise 10.6).

# %% [markdown]
# ## 7. Reflow: straightening the flow
#
# The straight lines of independent pairs $(x_0, \epsilon)$ cross one another;
# the marginal velocity averages the lines that meet at a point, and the ODE's
# paths, which cannot cross, bend around each other instead. Curved paths are
# what costs a solver its steps. **Reflow** (Liu et al. 2023) rewires the
# pairs: draw noise $z$, carry it with the trained flow to $x = \Phi(z)$
# (`reflow_pairs`, 100 Heun steps), and train again, now on the coupled pairs
# $(x, z)$ (`reflow`, flow matching with the noise of each pair given). The
# straight line from $z$ to $\Phi(z)$ is close to a path the flow already
# takes, the new pairs' lines cross far less, and the new flow is
# straighter. Liu et al. measure it by the **straightness**
#
# $$S = \int_0^1 E\,\big\|(Z_1 - Z_0) - v(Z_u, u)\big\|^2\,du,$$
#
# the mean squared gap between the velocity along a path and the path's
# average velocity; $S = 0$ exactly when every path is a straight line
# travelled at constant speed.

# %%
show_source(straightness, docstring=False)

# %% [markdown]
# One reflow of `flow_mixture` (the sizes of `benchmarks/flow.py --part reflow`
# in full mode; a few hundred pairs and steps in fast mode):

# %%
n_pairs, n_reflow = pick(20000, 400), pick(4000, 150)
start = time.perf_counter()
z_pairs = torch.randn(n_pairs, 2, generator=gen(7))
x_pairs = reflow_pairs(fm_model, fm_path, z_pairs)        # where the trained flow carries each noise
fm_reflowed = reflow(fm_model, fm_path, x_pairs, z_pairs, steps=n_reflow, generator=gen(8))
print(f"one reflow: {n_pairs} pairs, {n_reflow} training steps, {time.perf_counter() - start:.0f} s")
s_before = [straightness(fm_model, fm_path, x) for x in x_Ts]
s_after = [straightness(fm_reflowed, fm_path, x) for x in x_Ts]
print(f"straightness (over the same {n_draws} draws): before {fmt_mean_sd(s_before, digits=3)}, "
      f"after {fmt_mean_sd(s_after, digits=3)}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
starts = torch.randn(30, 2, generator=gen(9))
ring_pts = ring.sample(3000, generator=gen(10)).numpy()
for ax, (name, model) in zip(axes, (("before reflow", fm_model), ("after one reflow", fm_reflowed))):
    states = [starts]
    with torch.no_grad():
        sample_flow(model, starts, fm_path, 32, progress=False, callback=lambda s, st=states: st.append(s.x))
    paths_xy = torch.stack(states, 1).numpy()                   # (30, 33, 2)
    ax.plot(ring_pts[:, 0], ring_pts[:, 1], ".", ms=1, color="0.8")
    for p in paths_xy:
        ax.plot(p[:, 0], p[:, 1], "-", lw=0.8, color="C0", alpha=0.8)
    ax.plot(paths_xy[:, 0, 0], paths_xy[:, 0, 1], "o", ms=3, color="C1", label="noise (u = 1)")
    ax.plot(paths_xy[:, -1, 0], paths_xy[:, -1, 1], "o", ms=3, color="C3", label="sample (u = 0)")
    ax.set(xlim=(-2.8, 2.8), ylim=(-2.8, 2.8), aspect="equal", title=f"{name}: Euler paths, 32 steps")
    ax.legend(fontsize="x-small", loc="lower right")
plt.show()

# %% [markdown]
# Now what straightness buys: the reflowed model with very few Euler steps,
# against the model it came from at the same budgets and at 8 evaluations
# (Euler and Heun), on the same draws:

# %%
few = {}
with torch.no_grad():
    for b in (1, 2, 4):
        few[f"reflowed, Euler, {b}"] = [mmd(sample_flow(fm_reflowed, x, fm_path, b, progress=False)) for x in x_Ts]
    for b in (1, 2, 4, 8):
        few[f"un-reflowed, Euler, {b}"] = [mmd(sample_flow(fm_model, x, fm_path, b, progress=False)) for x in x_Ts]
    few["un-reflowed, Heun, 7"] = [mmd(flow_at_budget(fm_model, x, "heun", 8)) for x in x_Ts]
print(f"MMD x 1e4 to the exact ring (mean +- sd over {n_draws} draws); the number is the evaluations")
for name, vals in few.items():
    print(f"  {name:24s} {fmt_mean_sd(vals):>16s}")
print(f"  {'exact samples':24s} {fmt_mean_sd(exact_floor):>16s}")
best8 = min(("un-reflowed, Euler, 8", "un-reflowed, Heun, 7"), key=lambda k: np.mean(few[k]))
for b in (1, 2):
    m, se = paired(few[f"reflowed, Euler, {b}"], few[best8])
    print(f"reflowed at {b} evaluation(s) minus {best8}: {m:+.2f} (se {se:.2f})")

# %% [markdown]
# The reflow did its work on the ring: the straightness fell from 0.725 to
# 0.000 at three decimals, the paths in the figure are nearly straight lines,
# and one Euler step of the reflowed model (MMD 2.47) lands nearer the ring
# than eight steps of the model it came from (25.42), with the paired
# differences printed last. The original needs between 32 and 64 Euler steps
# to match it (Section 5's table).
# Two costs come with it. The pairs and the second training cost time on top
# of the first training (the seconds printed above). And the
# reflowed model learns the *first model's* distribution, not the data's:
# its $x_0$ are the first model's samples, so whatever the first model got
# wrong, the reflowed one is taught. `benchmarks/flow.py --part reflow` runs
# the same reflow over more draws; its stored table:

# %%
if "reflow" not in stored:
    print(f"{RESULTS.name} holds no 'reflow' table yet: python benchmarks/flow.py --part reflow --save makes it")
else:
    rf = stored["reflow"]
    print(f"{rf['command']}: {rf['pairs']} pairs, {rf['reflow_steps']} steps ({rf['seconds']:.0f} s); "
          f"{rf['seeds']} draws of {rf['n']} points")
    print(f"  straightness: before {fmt_mean_sd(rf['straightness_before'], digits=3)}, "
          f"after {fmt_mean_sd(rf['straightness_after'], digits=3)}")
    print(f"  {'exact samples':40s} {fmt_mean_sd(rf['exact']):>16s}")
    for name, vals in rf["rows"].items():
        print(f"  {name:40s} {fmt_mean_sd(vals):>16s}")
    m, se = rf["reflowed2_minus_best8"]
    print(f"  reflowed at 2 evaluations minus the best un-reflowed at 8 ({rf['best8']}): {m:+.2f} (se {se:.2f})")

# %% [markdown]
# ## 8. Digits
#
# `flow_digits` is Chapter 02's `digits` recipe (the same UNet, steps, batch
# and learning rate) trained by flow matching. Sample it with Euler and Heun
# on its own ODE, and the DDPM `digits` model with DDIM and DPM-Solver++(2M),
# all from the same noise at the same budgets, and score the digits by the
# Frechet digit distance to the held-out digits (Chapter 02). The floor is a
# set of real training digits of the same size, since the distance is biased
# upwards for small sets.

# %%
fd_model, fd_path = train.load_or_train("flow_digits")
dd_model, dd_sched = pretrained.load("digits")
held_digits, train_digits = data.digits("test"), data.digits("train")
n_dig = pick(256, 32)
x_Td = torch.randn(n_dig, 1, 16, 16, generator=gen(12))
digit_budgets = pick([4, 10], [4])


def flow_digits_at(x, solver, budget):
    return sample_flow(fd_model, x, fd_path, steps_for(sample_flow, budget, solver=solver), solver=solver,
                       progress=False)


digit_runs = {
    "FM / Euler": lambda x, b: flow_digits_at(x, "euler", b),
    "FM / Heun": lambda x, b: flow_digits_at(x, "heun", b),
    "DDPM / DDIM": lambda x, b: run_at_budget("DDIM", dd_model, x, dd_sched, b)[0],
    "DDPM / DPM-Solver++(2M)": lambda x, b: run_at_budget("DPM-Solver++(2M)", dd_model, x, dd_sched, b)[0],
}
start = time.perf_counter()
fdd, digit_samples = {}, {}
with torch.no_grad():
    for name, fn in digit_runs.items():
        for b in digit_budgets:
            x = fn(x_Td, b).clamp(-1, 1)
            fdd[name, b] = metrics.frechet_digit_distance(x, held_digits)
            digit_samples[name, b] = x
subset = torch.randperm(len(train_digits), generator=gen(13))[:n_dig]
fdd_floor = metrics.frechet_digit_distance(train_digits[subset], held_digits)
print(f"FDD to the {len(held_digits)} held-out digits, {n_dig} samples each, one draw "
      f"({time.perf_counter() - start:.0f} s)")
print(f"{'model / sampler':26s}" + "".join(f"{b:>10d} evals" for b in digit_budgets))
for name in digit_runs:
    print(f"{name:26s}" + "".join(f"{fdd[name, b]:16.2f}" for b in digit_budgets))
print(f"{'training digits (floor)':26s}{fdd_floor:16.2f}")

fig, axes = plt.subplots(1, len(digit_runs), figsize=(13, 3.4), layout="constrained")
b_show = digit_budgets[-1]
for ax, name in zip(axes, digit_runs):
    viz.image_grid(digit_samples[name, b_show][:16], ax, nrow=4, title=f"{name}, {b_show} evaluations")
plt.show()

# %% [markdown]
# Each number is one draw, so only large differences count (Chapter 05 saw
# how much the FDD of a set this size moves between draws). As on the ring,
# the comparison is of two models trained by the same recipe with different
# targets, sampled at equal cost, not of two ODE solvers.

# %% [markdown]
# ## 9. Explore: the velocity field as u runs from noise to data
#
# The explorer integrates three fields from the same noise with Euler: the
# exact velocity of the ring, the trained model and the reflowed model. Move
# $u$ from 1 to 0 (or press play). Arrows show where a point moves over the
# next tenth of $u$, to scale. At $u = 1$ every field should be close to
# $v(x, 1) = E[\epsilon - x_0 \mid x_1 = x] = x - E[x_0]$ (at $u = 1$ the
# point *is* its noise, and the ring's mean is 0), so the points first
# contract towards the middle; watch where the cloud splits into eight, and
# which field's red paths bend there.

# %%
explorer = widgets.flow_explorer({"exact velocity": exact_ring, "trained": fm_model, "reflowed": fm_reflowed},
                                 fm_path, steps=pick(20, 8), n_points=pick(600, 200), n_trails=10,
                                 n_grid=pick(15, 9), lim=2.5, data=ring.sample(pick(2000, 300), generator=gen(11)))
explorer

# %% [markdown]
# ## 10. What changed, and what did not
#
# * **The path.** $x_u = (1-u)\,x_0 + u\,\epsilon$ instead of a variance-preserving
#   schedule: its log-SNR covers every noise level, and its time is spent
#   differently (Section 1).
# * **The target.** The velocity $\epsilon - x_0$ instead of $\epsilon$; the
#   loss is a regression whose minimiser is the marginal velocity, for the same
#   reason the simple loss's minimiser is $E[\epsilon \mid x_t]$ (Section 2).
# * **Not the solver.** Euler on the straight path is DDIM (Section 4);
#   through `param.adapt` a velocity model runs under every sampler of the
#   book.
# * **New: a handle on the paths.** Reflow trades a second training for
#   straighter paths and fewer steps (Section 7); whether one wins in a given
#   setting is a measurement (Sections 6 and 7, `benchmarks/flow.py`).

# %% [markdown]
# ## Exercises
#
# **10.1** (implement) On the straight path, write `velocity_to_score(x, v, u)`:
# the score $\nabla_x \log p_u(x)$ of the path's marginal at $x$, given the
# marginal velocity `v` there (`x`, `v` tensors of shape `(B, 2)`, `u` a float
# in $(0, 1)$). The checker compares it with the exact score of the `two`
# mixture, which it computes without any velocity.

# %% tags=["solution"]
def velocity_to_score(x, v, u):
    eps_hat = x + (1 - u) * v       # alpha v - alpha' x over alpha sigma' - alpha' sigma, with alpha = 1 - u, sigma = u
    return -eps_hat / u             # Tweedie: the score is -E[eps | x] / sigma


check("10.1", velocity_to_score)

# %% [markdown]
# **10.2** (implement) Write `euler_step(model, x, u, u_next)`: one Euler step
# of the flow ODE $dx/du = v_\theta(x, u)$ from `u` to the smaller `u_next`,
# for a model on `FlowPath()` ($T = 1000$) called as `model(x, t)` with the
# book's timesteps `t` of shape `(B,)`. The checker compares it with
# `sample_flow` on the `grid9` mixture's exact velocity.

# %% tags=["solution"]
def euler_step(model, x, u, u_next):
    t = torch.full((x.shape[0],), u * (1000 - 1), dtype=x.dtype)   # the model's clock: t = u (T - 1)
    return x + (u_next - u) * model(x, t)


check("10.2", euler_step)

# %% [markdown]
# **10.3** (derive) Let the data be one Gaussian, $x_0 \sim \mathcal N(\mu, c\,I)$.
# Derive its marginal velocity on the straight path and write
# `gaussian_velocity(x, u, mu, c)` (`x` of shape `(B, D)`, `mu` of shape
# `(D,)`, `c` a positive float, `u` in $[0, 1]$, both ends included). The
# checker compares it with the mixture oracle of one component.

# %% [markdown] tags=["solution"]
# *Solution.* With $a = 1 - u$ and $s = u$, $x_u = a\,x_0 + s\,\epsilon$ is
# Gaussian with mean $a\mu$ and covariance $(a^2 c + s^2)\,I$, jointly Gaussian
# with $x_0$ (covariance $a c\,I$) and with $\epsilon$ (covariance $s\,I$). The
# conditional mean of a jointly Gaussian pair is the prior mean plus covariance
# over variance times the residual, so with $r = x - a\mu$ and $V = a^2 c + s^2$:
# $E[x_0 \mid x] = \mu + (a c / V)\,r$ and $E[\epsilon \mid x] = (s/V)\,r$, and
#
# $$v(x, u) = E[\epsilon \mid x] - E[x_0 \mid x] = \frac{s - a c}{a^2 c + s^2}\,(x - a\mu) - \mu .$$
#
# At $u = 0$ it is $-(x - \mu) - \mu = -x$, at $u = 1$ it is $x - \mu$; $V > 0$ at
# every $u$, so no end is special. Solving the ODE gives the paths
# $x_u = (1-u)\,\mu + \sqrt{(1-u)^2 + u^2}\;z$ for the noise $z$: curved, even for
# one Gaussian, unless $z$ points along $\mu$.

# %% tags=["solution"]
def gaussian_velocity(x, u, mu, c):
    a, s = 1 - u, u
    var = a * a * c + s * s          # the variance of x_u per coordinate
    r = x - a * mu                   # x_u minus its mean
    return (s / var) * r - (mu + (a * c / var) * r)


check("10.3", gaussian_velocity)

# %% [markdown]
# **10.4** (predict, then run) Let the data be a single point $x^*$: every
# path is $x_u = (1-u)\,x^* + u\,\epsilon$. Write down its marginal velocity,
# then predict: how many Euler steps from $u = 1$ carry every noise sample
# *exactly* (to rounding) to $x^*$? Then run `sample_flow` on that velocity
# with a few step counts and compare.

# %% tags=["solution"]
# the noise is recovered from x: eps = (x - (1 - u) x*) / u, so v = eps - x* = (x - x*) / u, constant along each
# path (x - x* = u (eps - x*)): a straight line at constant speed, which Euler follows exactly with any step.
# (For any data, one Euler step from u = 1 moves x by -v(x, 1) = -(x - E[x0]): every point lands on the data's
# mean. That is the single point x* here, and a collapse onto one point anywhere else: Section 5's 1-step rows.)
x_star = torch.tensor([0.7, -0.4], dtype=torch.float64)


def point_velocity(x, t):
    return (x - x_star) / (t / 999).reshape(-1, 1)    # never evaluated at u = 0: Euler stops there


noise_10_4 = torch.randn(500, 2, generator=gen(0), dtype=torch.float64)
errors_10_4 = {n: (sample_flow(point_velocity, noise_10_4, flow.FlowPath(), n, progress=False) - x_star).abs().max()
               .item() for n in (1, 2, 10)}
print("largest distance to x* after n Euler steps:", {n: f"{e:.1e}" for n, e in errors_10_4.items()})
answer_10_4 = 1
check("10.4", answer_10_4)

# %% [markdown]
# **10.5** (derive) Flow matching as an $\epsilon$-loss. At fixed $x$ and $u$ on
# the straight path, a model's velocity $\hat v$ and the $\hat\epsilon$ it
# implies (Section 3) are related linearly, and so are the target $\epsilon - x_0$
# and $\epsilon$. Find the weight $w(u)$ with
# $\|\hat v - (\epsilon - x_0)\|^2 = w(u)\,\|\hat\epsilon - \epsilon\|^2$ and write
# it as `loss_weight(u)`. Which noise levels does flow matching weight more
# heavily than Chapter 02's simple loss?

# %% [markdown] tags=["solution"]
# *Solution.* Section 3 with $\alpha = 1-u$, $\sigma = u$ gives
# $\hat\epsilon = x + (1-u)\,\hat v$, and the same relation holds for the pair's
# own noise and velocity: $x + (1-u)(\epsilon - x_0) = (1-u)x_0 + u\epsilon + (1-u)\epsilon - (1-u)x_0 = \epsilon$.
# Subtract: $\hat\epsilon - \epsilon = (1-u)\,\big(\hat v - (\epsilon - x_0)\big)$, so
# $w(u) = 1/(1-u)^2 = (1 + \sigma/\alpha)^2 = (1 + e^{-\lambda/2})^2$. It is 1 at the
# data and grows without bound towards the noise: against the simple loss,
# flow matching with uniform $u$ puts more weight on the noisy half of the path
# (where the network's error matters most for the first, coarse steps of a sampler).

# %% tags=["solution"]
def loss_weight(u):
    return 1.0 / (1.0 - u) ** 2


check("10.5", loss_weight)

# %% [markdown]
# **10.6** (open) Esser et al. (2024) draw $u$ for training from a logit-normal
# distribution, $u = \mathrm{sigmoid}(n)$ with $n \sim \mathcal N(0, 1)$, instead
# of uniformly (`flow_matching_loss(..., time="logit_normal")`; a recipe
# passes it as `loss_kwargs={"time": "logit_normal"}`). Train two copies of
# `flow_mixture` with a few thousand steps each
# (`train.train(dataclasses.replace(recipes.get("flow_mixture"), steps=3000, loss_kwargs=...), progress=False)`),
# one per time distribution, and compare them at 4, 10 and 20 evaluations on
# the same draws as Section 5. Where on the path does each one's learning error
# (the plot of Section 5) sit, and does it explain the difference you measure?
#
# **10.7** (open) Reflow the reflowed model once more (a 2-rectified flow, in
# Liu et al.'s words). Does the straightness keep falling? Compare the three
# models at 1 and at 64 evaluations, and explain the change at 64 from what
# each reflow is trained on.
#
# ## References
#
# * Y. Lipman, R. T. Q. Chen, H. Ben-Hamu, M. Nickel, M. Le. *Flow Matching for
#   Generative Modeling.* ICLR 2023 (conditional flow matching; the
#   optimal-transport path).
# * X. Liu, C. Gong, Q. Liu. *Flow Straight and Fast: Learning to Generate and
#   Transfer Data with Rectified Flow.* ICLR 2023 (rectified flow, reflow,
#   straightness).
# * M. S. Albergo, E. Vanden-Eijnden. *Building Normalizing Flows with Stochastic
#   Interpolants.* ICLR 2023.
# * P. Esser, S. Kulal, A. Blattmann, et al. *Scaling Rectified Flow Transformers for
#   High-Resolution Image Synthesis.* ICML 2024 (Stable Diffusion 3;
#   logit-normal time sampling).
# * J. Song, C. Meng, S. Ermon. *Denoising Diffusion Implicit Models.* ICLR 2021
#   (DDIM, Section 4).

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s ({'fast' if is_fast() else 'full'} mode)")
