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
# # Chapter 02 - Denoising diffusion probabilistic models (DDPM)
#
# Chapter 01 built the forward process: a fixed chain that turns data into
# noise. This chapter learns to run it backwards. By the end you will be able to
#
# * derive the Gaussian $q(x_{t-1} \mid x_t, x_0)$ (the *forward posterior*) and
#   check it against a simulation;
# * write the variational bound on $-\log p_\theta(x_0)$ as a sum of per-step KL
#   terms, rewrite each as a weighted noise-prediction error, and arrive at
#   the *simple loss* that everyone trains with;
# * train an $\epsilon$-predicting network on a 2-D swiss roll (seconds) and read
#   the shipped small UNet trained on handwritten digits;
# * sample with the ancestral sampler, and scrub the reverse process step by
#   step in an explorer;
# * separate *learning* error from *sampling* error by putting the exact
#   $\epsilon$ of a Gaussian mixture in place of the network;
# * measure sample quality (sliced Wasserstein, a Frechet distance on digit
#   features), check for memorisation, and compute the bound in bits per
#   dimension on held-out digits.
#
# Notation follows `ddlearn.schedules`: timestep $t$ is an index
# $0, \dots, T-1$ (0 the least noisy), $\alpha_t = 1 - \beta_t$,
# $\bar\alpha_t = \prod_{s \le t} \alpha_s$, and $x_0$ (the data) sits just
# before index 0, so $\bar\alpha_{-1} = 1$.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import data, forward, losses, metrics, oracles, pretrained, recipes, schedules, train, viz, widgets
from ddlearn.config import generator, is_fast, pick
from ddlearn.notebook import check, show_source
from ddlearn.samplers import sample_ancestral

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__,
      "| shipped checkpoints:", ", ".join(pretrained.available()))

# %% [markdown]
# ## 1. The reverse step we can write down
#
# The forward step $q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{\alpha_t}\,x_{t-1}, \beta_t I)$
# is simple; the reverse $q(x_{t-1} \mid x_t)$ is not: it depends on the whole data
# distribution. But if we also know where the chain started, Bayes' rule gives
#
# $$q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0),$$
#
# a product of two Gaussians in $x_{t-1}$: one with precision $\alpha_t/\beta_t$
# around $x_t/\sqrt{\alpha_t}$, one with precision $1/(1-\bar\alpha_{t-1})$ around
# $\sqrt{\bar\alpha_{t-1}}\,x_0$. Adding precisions and precision-weighted means
# (and using $\alpha_t(1-\bar\alpha_{t-1}) + \beta_t = 1-\bar\alpha_t$),
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N\big(\tilde\mu_t(x_t, x_0), \tilde\beta_t I\big),\qquad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,\qquad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .$$
#
# These are equations 6-7 of Ho et al. (2020). The library computes them once:

# %%
show_source(forward.q_posterior)

# %% [markdown]
# A formula derived by hand deserves a check that does not reuse it. Fix
# $x_0 = 0.8$ (one pixel), run the forward chain many times, keep the runs whose
# $x_t$ landed in a thin slice around $0.3$, and look at where their $x_{t-1}$ was.

# %%
sched = schedules.linear()
g = generator(0)
n_chains, x0_val, xt_val, t_check = pick(4_000_000, 400_000), 0.8, 0.3, 300
prev = forward.q_sample(torch.full((n_chains, 1), x0_val, dtype=torch.float64), t_check - 1, None, sched, generator=g)
xt = forward.q_step(prev, t_check, sched, generator=g)
width = pick(0.005, 0.01)
near = (xt[:, 0] - xt_val).abs() < width
mean, var, _ = forward.q_posterior(torch.tensor([[x0_val]]), torch.tensor([[xt_val]]), t_check, sched)
print(f"{int(near.sum())} chains with x_t within {width} of {xt_val} (t = {t_check})")
print(f"x_(t-1) mean:     simulation {prev[near].mean().item():.4f}   formula {mean.item():.4f}")
print(f"x_(t-1) variance: simulation {prev[near].var().item():.6f} formula {var.item():.6f}")

# %% [markdown]
# ## 2. From the variational bound to the simple loss
#
# A DDPM is the reverse chain $p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta(x_t, t), \sigma_t^2 I)$
# started from $p(x_{T-1}) = \mathcal N(0, I)$. Like a VAE with $T$ latent layers
# whose encoder $q$ is fixed, it is trained on the evidence lower bound. Expanding
# $\log p_\theta(x_0) \ge \mathbb E_q[\log p_\theta(x_{0:T-1}) - \log q(x_{0:T-1}\mid x_0)]$
# and regrouping with Bayes' rule (Sohl-Dickstein et al. 2015; Ho et al. 2020, eq. 5):
#
# $$-\log p_\theta(x_0) \le \underbrace{D_\mathrm{KL}\big(q(x_{T-1}\mid x_0)\,\|\,\mathcal N(0, I)\big)}_{L_T:\ \text{no parameters}}
# + \sum_{t\ge 1} \underbrace{\mathbb E_q\, D_\mathrm{KL}\big(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t}}
# \;\underbrace{-\ \mathbb E_q \log p_\theta(x_0 \mid x_{t=0})}_{L_0:\ \text{decoder}} .$$
#
# Every $L_t$ compares two Gaussians: the posterior of section 1 and the model.
# With equal, fixed variances the KL is a squared distance between means,
# $L_t = \mathbb E\,\|\tilde\mu_t - \mu_\theta\|^2 / (2\sigma_t^2) + \text{const}$.
# Now parametrise the mean the way the posterior looks: with
# $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, the posterior mean is
# $\tilde\mu_t = \big(x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon\big)/\sqrt{\alpha_t}$,
# so let the network predict the noise and set
# $\mu_\theta = \big(x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon_\theta(x_t, t)\big)/\sqrt{\alpha_t}$. Then
#
# $$L_t = \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}\;\mathbb E_{x_0,\epsilon}\,\big\|\epsilon - \epsilon_\theta(x_t, t)\big\|^2 + \text{const}.$$
#
# Ho et al. found that dropping the weight trains better samples. The
# **simple loss** is
#
# $$L_\text{simple} = \mathbb E_{t \sim U\{0..T-1\},\ x_0,\ \epsilon \sim \mathcal N(0, I)}\,\big\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\|^2 .$$
#
# It is one line of arithmetic per batch:

# %%
show_source(losses.simple_loss, docstring=False)

# %% [markdown]
# What did dropping the weight change? The bound's weight $w_t$ is largest at
# small $t$, where the network only has to remove a trace of noise: optimising
# the bound spends the network on imperceptible detail, the simple loss spends
# it evenly over noise levels (relative to the bound, it *up-weights* the noisy
# steps where the structure of a sample is decided).

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
t_axis = np.arange(sched.T)
for variance, style in (("beta", "-"), ("beta_tilde", "--")):
    ax.semilogy(t_axis[1:], losses.vlb_weights(sched, variance)[1:].numpy(), style,
                label=rf"$w_t$, $\sigma_t^2$ = {variance.replace('_', '-')}")
ax.axhline(1 / sched.T, color="k", lw=0.8, label="simple loss: equal weight")
ax.set_xlabel("t")
ax.set_ylabel("weight of the eps error")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ## 3. Training on a swiss roll
#
# The recipe says everything that makes a checkpoint: data, net, schedule,
# steps, batch size, learning rate, EMA decay, seed. The network is a small
# residual MLP with a sinusoidal embedding of $t$ (in timestep units, so
# fractional $t$ works too).

# %%
print(recipes.RECIPES["toy2d"])
show_source(train.train, docstring=False)

# %% [markdown]
# **Train it yourself.** In full mode this reruns the whole `toy2d` recipe
# (tens of seconds on two cores); in fast mode a short version. The loss does
# not go to zero: even the perfect $\epsilon$-predictor cannot know which noise
# was drawn, only its conditional mean (section 5 measures that floor).

# %%
mine = train.train("toy2d", fast=is_fast())
loss_curve = np.convolve(mine.losses, np.ones(50) / 50, mode="valid") if len(mine.losses) > 50 else mine.losses
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(loss_curve)
ax.set_xlabel("step")
ax.set_ylabel("simple loss (running mean)")
ax.set_title(f"toy2d: {mine.step} steps in {mine.seconds:.0f} s")
plt.show()

# %% [markdown]
# The book ships the same recipe's result, with a sidecar that says how it was
# made. `pretrained.load` checks the file's sha256 before reading it with
# `safetensors` (nothing is unpickled) and returns the EMA weights in eval mode.

# %%
toy = pretrained.load("toy2d")
print({k: toy.info[k] for k in ("command", "seed", "train_seconds", "steps", "n_params", "bytes")})
print("metrics recorded at training time:", {k: round(v, 4) for k, v in toy.info["metrics"].items()})

# %% [markdown]
# ## 4. Ancestral sampling
#
# Sampling walks the learned chain from $x_{T-1} \sim \mathcal N(0, I)$: at every
# step, turn $\epsilon_\theta$ into a guess $\hat x_0$, take the posterior mean
# $\tilde\mu_t(x_t, \hat x_0)$ (identical to $\mu_\theta$ above) and add fresh noise
# of variance $\sigma_t^2$ (Ho et al., Algorithm 2). Two choices of $\sigma_t^2$
# are natural: $\beta_t$ (exact if the data were $\mathcal N(0, I)$) and
# $\tilde\beta_t$ (exact if the data were one point).

# %%
show_source(sample_ancestral, docstring=False)

# %%
n_points = pick(2000, 300)
g = generator(1)
x_T = torch.randn(n_points, 2, generator=g)
rec2d = widgets.Recorder(every=20, limit=600)
samples_toy = sample_ancestral(toy.model, x_T, toy.schedule, generator=g, callback=rec2d, progress=False)
samples_mine = sample_ancestral(mine.model, x_T, mine.schedule, generator=generator(1), progress=False)
heldout = data.swiss_roll(n_points, split="test")
another = data.swiss_roll(n_points, seed=7)

sw = lambda a, b: metrics.sliced_wasserstein(a, b, generator=generator(0))  # noqa: E731
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
viz.scatter(heldout, axes[0], lim=1.6, title="held-out data")
viz.scatter(samples_toy, axes[1], lim=1.6, title=f"shipped model: SW {sw(samples_toy, heldout):.3f}")
viz.scatter(samples_mine, axes[2], lim=1.6, title=f"your run: SW {sw(samples_mine, heldout):.3f}")
plt.show()
print(f"sliced Wasserstein to held-out data: shipped {sw(samples_toy, heldout):.4f}, your run "
      f"{sw(samples_mine, heldout):.4f}; two independent draws of the data {sw(another, heldout):.4f} (the floor)")

# %% [markdown]
# In full mode "your run" is the same recipe with the same seed as the shipped
# checkpoint, so its samples score the same: training is repeatable (every
# random draw comes from generators seeded by the recipe). In fast mode it is a
# 200-step run and visibly worse.
#
# Scrub the reverse process: on the left the state $x_t$, on the right the
# network's guess $\hat x_0$ at that step. Early guesses collapse to the centre
# of the data (the best guess under heavy noise is an average); the guess
# spreads onto the roll long before $x_t$ itself does.

# %%
widgets.reverse_explorer(steps=rec2d, schedule=toy.schedule, data=heldout, lim=1.6)

# %% [markdown]
# ## 5. Learning error or sampling error? An exact oracle
#
# When samples look wrong, two things may be to blame: the network's
# $\epsilon_\theta$ differs from the ideal $\epsilon^*(x_t, t) = \mathbb E[\epsilon \mid x_t]$
# (learning error), or the sampler's finite steps and Gaussian reverse steps
# distort even a perfect $\epsilon^*$ (sampling error). For a Gaussian mixture,
# $\epsilon^*$ is known in closed form (`ddlearn.oracles`), so we can swap it in.
# The `mixture` recipe trains the same MLP on a ring of 8 Gaussians.
#
# First, the learning error per noise level, and the simple loss's floor:
# $\mathbb E\|\epsilon - \epsilon^*\|^2$ is what even the perfect model scores.

# %%
ring = oracles.named_mixture("ring8")
mix = pretrained.load("mixture")
oracle = ring.eps_model(mix.schedule)
x0_ring = data.gaussian_mixture(pick(4000, 500), split="test")
t_grid = np.linspace(0, 999, pick(40, 8)).round()
learn_err, floor = [], []
g = generator(2)
with torch.no_grad():
    for t in t_grid:
        eps = torch.randn(x0_ring.shape, generator=g)
        xt = forward.q_sample(x0_ring, float(t), eps, mix.schedule)
        tt = torch.full((len(xt),), float(t))
        e_star, e_net = oracle(xt, tt), mix.model(xt, tt)
        learn_err.append(((e_net - e_star) ** 2).sum(1).mean().item())
        floor.append(((eps - e_star) ** 2).sum(1).mean().item())
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.plot(t_grid, floor, label=r"irreducible: $E\|\epsilon-\epsilon^*\|^2$")
ax.plot(t_grid, learn_err, label=r"learning error: $E\|\epsilon_\theta-\epsilon^*\|^2$")
ax.set_yscale("log")
ax.set_xlabel("t")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# The network is almost perfect at large $t$ and worst at small $t$, where
# the noised mixture still has eight sharp components (standard deviation 0.08)
# and $\epsilon^*$ changes quickly between them. At large $t$ the learning
# error is tiny next to the loss the perfect model itself pays, which is why
# the training loss says little about sample quality.
#
# Then sampling: the same starting noise and the same fresh noise through the
# oracle and through the network. The oracle's distance to held-out data is
# the sampling error alone (1000 ancestral steps: it should sit at the floor);
# the network's adds the learning error on top. Read the three distances with
# care: on clustered data the floor itself moves a lot from one pair of draws
# to the next (mostly through how many points land in each component), so
# differences of a few hundredths are within noise. The component weights
# below and the learning-error curve above are the sharper instruments
# (`benchmarks/ddpm.py` averages the floor over several draws).

# %%
n_ring = pick(1000, 200)
x_T = torch.randn(n_ring, 2, generator=generator(3))
by_oracle = sample_ancestral(oracle, x_T, mix.schedule, generator=generator(4), progress=False)
by_net = sample_ancestral(mix.model, x_T, mix.schedule, generator=generator(4), progress=False)
ring_held = data.gaussian_mixture(n_ring, split="test")
ring_other = data.gaussian_mixture(n_ring, seed=7)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
viz.scatter(ring_held, axes[0], lim=1.5, title="held-out data")
viz.scatter(by_oracle, axes[1], lim=1.5, title=f"exact eps*: SW {sw(by_oracle, ring_held):.3f}")
viz.scatter(by_net, axes[2], lim=1.5, title=f"learned eps: SW {sw(by_net, ring_held):.3f}")
plt.show()
weights = lambda x: torch.bincount(ring.responsibilities(x).argmax(1), minlength=8).float() / len(x)  # noqa: E731
print(f"SW to held-out: data floor {sw(ring_other, ring_held):.4f} | oracle {sw(by_oracle, ring_held):.4f} "
      f"| network {sw(by_net, ring_held):.4f}")
print("component weights (true 0.125 each): oracle", np.round(weights(by_oracle).numpy(), 3),
      "\n                                     network", np.round(weights(by_net).numpy(), 3))

# %% [markdown]
# ## 6. Digits
#
# The same recipe, scaled up: scikit-learn's handwritten digits at 16x16, a
# UNet with about 0.6 M parameters (residual blocks, GroupNorm, self-attention
# at 4x4), 5,000 steps. Retraining it takes about ten minutes on two cores,
# so the chapter loads the shipped checkpoint; `ddlearn train digits` (the
# command in its sidecar) remakes it. In fast mode the cell below shows a
# 60-step run only to prove the code path.

# %%
digits_model = pretrained.load("digits")
print({k: digits_model.info[k] for k in ("command", "seed", "train_seconds", "steps", "n_params", "bytes")})
quick = train.train("digits", fast=True, progress=False)
print(f"a {quick.step}-step run of the same recipe took {quick.seconds:.1f} s; "
      f"its last loss {np.mean(quick.losses[-10:]):.3f} against the shipped run's {digits_model.info['final_loss_ema']:.3f}")

# %% [markdown]
# Ancestral sampling with all 1000 steps. We clip $\hat x_0$ to $[-1, 1]$ (the
# data range) inside each step, as the original DDPM code does for images.

# %%
n_digits = pick(64, 8)
g = generator(5)
rec_img = widgets.Recorder(every=25, limit=16)
samples_digits = sample_ancestral(digits_model.model, torch.randn(n_digits, 1, 16, 16, generator=g),
                                  digits_model.schedule, clip_x0=(-1, 1), generator=g, callback=rec_img,
                                  progress=not is_fast())
train_digits, test_digits = data.digits("train"), data.digits("test")
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), layout="constrained")
viz.image_grid(samples_digits, axes[0], title=f"{n_digits} DDPM samples")
viz.image_grid(test_digits[:n_digits], axes[1], title="held-out digits")
plt.show()

# %%
widgets.reverse_explorer(steps=rec_img, schedule=digits_model.schedule)

# %% [markdown]
# ## 7. How good, and is it copying?
#
# **Frechet digit distance.** FID compares Gaussians fitted to Inception
# features of two image sets (Heusel et al. 2017); here the features are the
# 64 penultimate activations of a small classifier trained on the training
# digits (shipped as `digit_classifier`). The number alone means little: put
# it next to (a) real training digits, the floor, and (b) samples from a
# single Gaussian fitted to the training pixels (mean and covariance), a
# baseline any model should beat. All sets have the same size, since the
# distance is biased upwards for small sets.

# %%
n_eval = n_digits
flat = train_digits.flatten(1).double()
gauss = torch.distributions.MultivariateNormal(flat.mean(0), torch.cov(flat.T) + 1e-4 * torch.eye(256, dtype=torch.float64))
z = torch.randn(n_eval, 256, generator=generator(8), dtype=torch.float64)
gauss_digits = (gauss.loc + z @ gauss.scale_tril.T).float().reshape(-1, 1, 16, 16).clamp(-1, 1)
ref = test_digits  # all 359 held-out digits as the reference for every set
fdd = {"training digits (floor)": metrics.frechet_digit_distance(train_digits[:n_eval], ref),
       "DDPM samples": metrics.frechet_digit_distance(samples_digits, ref),
       "Gaussian baseline": metrics.frechet_digit_distance(gauss_digits, ref)}
for k, v in fdd.items():
    print(f"{k:>24}: {v:8.2f}")
print(f"(n = {n_eval} per set against all {len(ref)} held-out digits; benchmarks/ddpm.py repeats this with "
      f"n = 359, which lowers every number)")

# %% [markdown]
# **Memorisation.** A model trained on 1,438 digits could simply return
# them. For each sample, find its nearest training digit (pixel distance), and
# compare with how close *held-out* digits come to the training set: a copy
# would be far closer than any held-out digit ever gets (Carlini et al. 2023
# and Somepalli et al. 2023 run this test at scale).

# %%
nn = metrics.nearest_neighbour(samples_digits, train_digits, test_digits)
print(f"median distance to the nearest training digit: samples {nn['sample_median']:.2f}, "
      f"held-out digits {nn['heldout_median']:.2f} (ratio {nn['ratio_median']:.2f})")
print(f"samples closer to a training digit than the closest held-out digit: "
      f"{100 * nn['frac_closer_than_heldout_min']:.0f}%")
k = min(12, n_digits)
pairs = torch.cat([samples_digits[:k], train_digits[nn["sample_index"][:k]]])
fig, ax = plt.subplots(figsize=(8, 1.8), layout="constrained")
viz.image_grid(pairs, ax, nrow=k, title="top: samples; bottom: nearest training digit")
plt.show()

# %% [markdown]
# **The bound in bits per dimension.** The ELBO of section 2 is a number we can
# evaluate on held-out digits. Density needs care: the digits are continuous
# values, and a continuous density can grow without limit on data that sits
# on a lower-dimensional set (bilinearly upsampled digits do). So we state
# the convention: quantise to 8 bits (256 levels on $[-1, 1]$), add uniform
# noise inside each bin (dequantisation; Theis et al. 2016), and report
# $(\text{bound in nats} - D \log \Delta)/(D \ln 2)$ with bin width $\Delta = 2/255$,
# an upper bound on the discrete data's negative log-likelihood. A uniform
# model scores 8 bits per dimension; the Gaussian baseline is evaluated with the
# same dequantisation.

# %%
show_source(metrics.elbo_bpd, docstring=False)

# %%
n_bpd = pick(359, 24)
held = test_digits[:n_bpd]
bpd = metrics.elbo_bpd(digits_model.model, held, digits_model.schedule, n_t=pick(12, 2), generator=generator(6))
delta = 2 / 255
xq = torch.round((held + 1) / delta) * delta - 1 + (torch.rand(held.shape, generator=generator(7)) - 0.5) * delta
gauss_bpd = ((-gauss.log_prob(xq.flatten(1).double()) - 256 * math.log(delta)) / (256 * math.log(2))).mean()
print(f"DDPM bound: {bpd['bpd']:.2f} +- {bpd['bpd_std_err']:.2f} bits/dim | Gaussian baseline {gauss_bpd:.2f} | "
      f"uniform 8.00")

# %% [markdown]
# Likelihood and sample quality need not agree (Theis et al. 2016): the
# Gaussian baseline exploits that upsampled digits live near a 64-dimensional
# linear subspace of the 256 pixels, which gives it a high density without
# producing a single convincing digit; the DDPM bound, trained with the simple
# loss rather than the bound itself, spends its capacity elsewhere.
# (Improved DDPM, Nichol & Dhariwal 2021, learns $\sigma_t$ and adds the bound
# back to the loss to close this gap.)
#
# ## Exercises
#
# **02.1** Compute $\tilde\beta_1$ (the posterior variance at $t = 1$) for the
# linear schedule with $T = 1000$, from the schedule's arrays.

# %%
answer_02_1 = None  # a float
check("02.1", answer_02_1)

# %% [markdown]
# **02.2** Write `mu(x_t, eps, t, schedule)`, the reverse mean
# $\mu_\theta = (x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon)/\sqrt{\alpha_t}$,
# using only the schedule's arrays (no `q_posterior`). The checker compares it
# with the posterior mean at $\hat x_0$.

# %%
def mu(x_t, eps, t, schedule):
    return None  # your code


check("02.2", mu)

# %% [markdown]
# **02.3** How many times larger is the bound's weight $w_t$ at $t = 1$ than at
# $t = 999$ (with $\sigma_t^2 = \beta_t$)? Compare with the plot in section 2.

# %%
answer_02_3 = None  # a float
check("02.3", answer_02_3)

# %% [markdown]
# **02.4** Write one ancestral step `step(model, x_t, t, schedule, noise)`
# returning $x_{t-1}$ with $\sigma_t^2 = \beta_t$ (no noise at $t = 0$).

# %%
def step(model, x_t, t, schedule, noise):
    return None  # your code


check("02.4", step)

# %% [markdown]
# **02.5** (open) Sample the `mixture` model with `variance="beta_tilde"` and
# with `variance="beta"` from the same noise. Which gives narrower components,
# and why does the difference shrink as $T$ grows? (Hint: compare
# $\tilde\beta_t/\beta_t$ over $t$.)
#
# **02.6** (open) Retrain `toy2d` with the VLB weighting
# (`losses.simple_loss(..., weighting="vlb")`, via a `Recipe` with
# `loss_kwargs={"weighting": "vlb"}`) and compare the sliced Wasserstein
# distance of its samples with the simple loss's. Which noise levels does the
# learning-error plot of section 5 say it spends its capacity on?
#
# ## References
#
# * J. Sohl-Dickstein, E. Weiss, N. Maheswaranathan, S. Ganguli. *Deep
#   Unsupervised Learning using Nonequilibrium Thermodynamics.* ICML 2015.
# * J. Ho, A. Jain, P. Abbeel. *Denoising Diffusion Probabilistic Models.*
#   NeurIPS 2020 (eqs. 5-7 the bound and posterior, eq. 12 the eps form, eq. 14
#   the simple loss, Algorithms 1-2).
# * A. Nichol, P. Dhariwal. *Improved Denoising Diffusion Probabilistic Models.*
#   ICML 2021 (learned variances, the hybrid loss).
# * D. P. Kingma, T. Salimans, B. Poole, J. Ho. *Variational Diffusion Models.*
#   NeurIPS 2021 (the bound as a weighted loss over the SNR).
# * C. Luo. *Understanding Diffusion Models: A Unified Perspective.*
#   arXiv:2208.11970, 2022 (a step-by-step derivation of the bound).
# * L. Theis, A. van den Oord, M. Bethge. *A note on the evaluation of
#   generative models.* ICLR 2016 (dequantisation; likelihood vs samples).
# * M. Heusel et al. *GANs Trained by a Two Time-Scale Update Rule Converge to a
#   Local Nash Equilibrium.* NeurIPS 2017 (the Frechet Inception Distance).
# * N. Bonneel, J. Rabin, G. Peyre, H. Pfister. *Sliced and Radon Wasserstein
#   Barycenters of Measures.* JMIV 2015 (sliced Wasserstein).
# * N. Carlini et al. *Extracting Training Data from Diffusion Models.* USENIX
#   Security 2023; G. Somepalli et al. *Diffusion Art or Digital Forgery?* CVPR
#   2023 (memorisation).

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s ({'fast' if is_fast() else 'full'} mode)")
