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
# * write the variational bound on $-\log p_\theta(x_0)$ as a sum of $T + 1$
#   terms, rewrite each as a weighted noise-prediction error, and arrive at
#   the *simple loss* that everyone trains with;
# * write a training loop yourself (a dozen lines), then let the library's
#   `train.train` run the same loop with its refinements on a 2-D swiss roll;
# * read the networks: the time embedding, the residual MLP for points, and the
#   UNet for images (residual blocks, attention, class embedding), drawn from
#   its own modules;
# * sample with the ancestral sampler, and scrub the reverse process step by
#   step in an explorer;
# * separate *learning* error from *sampling* error by putting the exact
#   $\epsilon$ of a Gaussian mixture in place of the network, with measures
#   that see what sliced Wasserstein misses;
# * measure sample quality (a Frechet distance on digit features), check for
#   memorisation, and compute the bound in bits per dimension on held-out
#   digits, term by term.
#
# Notation as in Chapter 01: the maths counts steps $t = 1, \dots, T$, with $x_0$
# the data and $x_T$ the noisiest latent, $\alpha_t = 1 - \beta_t$ and
# $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$ ($\bar\alpha_0 = 1$). The code keeps step
# $t$ at index $t - 1$: `schedule.alpha_bars[t - 1]` is $\bar\alpha_t$, and networks,
# `q_sample`, `q_posterior` and the samplers take that index.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from ddlearn import data, forward, losses, metrics, nets, oracles, pretrained, recipes, schedules, train, viz, widgets
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
# These are equations 6-7 of Ho et al. (2020), for $t \ge 2$; at $t = 1$ the
# posterior is $x_0$ itself ($\tilde\beta_1 = 0$). The library computes them once
# (called with the index $t - 1$):

# %%
show_source(forward.q_posterior)

# %% [markdown]
# A formula derived by hand deserves a check that does not reuse it. Fix
# $x_0 = 0.8$ (one pixel), run the forward chain many times, keep the runs whose
# $x_t$ landed in a thin slice around $0.3$ at step $t = 300$, and look at where
# their $x_{t-1}$ was.

# %%
sched = schedules.linear()
g = generator(0)
n_chains, x0_val, xt_val, t_check = pick(4_000_000, 400_000), 0.8, 0.3, 300  # step t = 300: index 299
prev = forward.q_sample(torch.full((n_chains, 1), x0_val, dtype=torch.float64), t_check - 2, None, sched,
                        generator=g)  # x_(t-1), at index t - 2
xt = forward.q_step(prev, t_check - 1, sched, generator=g)  # step t, at index t - 1
width = pick(0.005, 0.01)
near = (xt[:, 0] - xt_val).abs() < width
mean, var, _ = forward.q_posterior(torch.tensor([[x0_val]]), torch.tensor([[xt_val]]), t_check - 1, sched)
print(f"{int(near.sum())} chains with x_t within {width} of {xt_val} (t = {t_check})")
print(f"x_(t-1) mean:     simulation {prev[near].mean().item():.4f}   formula {mean.item():.4f}")
print(f"x_(t-1) variance: simulation {prev[near].var().item():.6f} formula {var.item():.6f}")

# %% [markdown]
# ## 2. From the variational bound to the simple loss
#
# A DDPM is the reverse chain $p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta(x_t, t), \sigma_t^2 I)$,
# $t = T, \dots, 1$, started from $p(x_T) = \mathcal N(0, I)$. Like a VAE with $T$
# latent layers $x_1, \dots, x_T$ whose encoder $q$ is fixed, it is trained on the
# evidence lower bound. Expanding
# $\log p_\theta(x_0) \ge \mathbb E_q[\log p_\theta(x_{0:T}) - \log q(x_{1:T}\mid x_0)]$
# and regrouping with Bayes' rule (Sohl-Dickstein et al. 2015; Ho et al. 2020, eq. 5):
#
# $$-\log p_\theta(x_0) \le \underbrace{D_\mathrm{KL}\big(q(x_T\mid x_0)\,\|\,\mathcal N(0, I)\big)}_{L_T:\ \text{no parameters}}
# + \sum_{t=2}^{T} \underbrace{\mathbb E_q\, D_\mathrm{KL}\big(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t-1}}
# \;\underbrace{-\ \mathbb E_q \log p_\theta(x_0 \mid x_1)}_{L_0:\ \text{decoder}} .$$
#
# $T$ latent variables give $T + 1$ terms: the prior term $L_T$, the $T - 1$
# KL terms $L_1, \dots, L_{T-1}$ and the decoder $L_0$. (In the code, index $i$
# holds $L_i$: `losses.vlb_terms(model, x0, schedule, i)`, with `losses.prior_kl`
# for $L_T$; section 7 evaluates them all.)
#
# Every $L_{t-1}$ compares two Gaussians: the posterior of section 1 and the model.
# With equal, fixed variances the KL is a squared distance between means,
# $L_{t-1} = \mathbb E\,\|\tilde\mu_t - \mu_\theta\|^2 / (2\sigma_t^2) + \text{const}$.
# Now parametrise the mean the way the posterior looks: with
# $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, the posterior mean is
# $\tilde\mu_t = \big(x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon\big)/\sqrt{\alpha_t}$,
# so let the network predict the noise and set
# $\mu_\theta = \big(x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon_\theta(x_t, t)\big)/\sqrt{\alpha_t}$. Then
#
# $$L_{t-1} = \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}\;\mathbb E_{x_0,\epsilon}\,\big\|\epsilon - \epsilon_\theta(x_t, t)\big\|^2 + \text{const}.$$
#
# Ho et al. found that dropping the weight trains better samples. The
# **simple loss** is
#
# $$L_\text{simple} = \mathbb E_{t \sim U\{1..T\},\ x_0,\ \epsilon \sim \mathcal N(0, I)}\,\big\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\|^2 .$$
#
# It is one line of arithmetic per batch (with $t$ drawn as the index, uniform on
# $0..T-1$):

# %%
show_source(losses.simple_loss, docstring=False)

# %% [markdown]
# What did dropping the weight change? The bound's weight $w_t$ (the fraction
# in front of the error) is largest at small $t$, where the network only has to
# remove a trace of noise: optimising the bound spends the network on
# imperceptible detail, the simple loss spends it evenly over noise levels
# (relative to the bound, it *up-weights* the noisy steps where the structure of
# a sample is decided).

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
steps = np.arange(2, sched.T + 1)  # the KL terms' steps t = 2..T, at indices 1..T-1
for variance, style in (("beta", "-"), ("beta_tilde", "--")):
    ax.semilogy(steps, losses.vlb_weights(sched, variance)[1:].numpy(), style,
                label=rf"$w_t$, $\sigma_t^2$ = {variance.replace('_', '-')}")
ax.axhline(1 / sched.T, color="k", lw=0.8, label="simple loss: equal weight")
ax.set_xlabel("step t")
ax.set_ylabel("weight of the eps error")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ## 3. A network and a training loop
#
# **Telling the network the noise level.** $\epsilon_\theta(x_t, t)$ must know how
# noisy its input is. Every network in the book receives the index $t - 1$ as a
# float (so fractional indices, which Chapters 04-05 use, work too) and turns it
# into sinusoidal features, as in the Transformer (Vaswani et al. 2017) and in
# Ho et al.: frequencies $\omega_k = 10000^{-k/(d/2)}$, features
# $[\sin(\omega_k t), \cos(\omega_k t)]$; a two-layer MLP then maps them to the
# width the network needs (`nets.embed.TimeEmbedding`).

# %%
show_source(nets.embed.timestep_embedding, docstring=False)

# %% [markdown]
# **A network for points.** For 2-D data the $\epsilon$-predictor is a small
# residual MLP: a linear layer lifts the point to 128 features $h$, then each of
# three blocks adds the time embedding, normalises (LayerNorm), applies
# Linear-SiLU-Linear and adds the result back to $h$ (a residual connection,
# so each block only learns a correction), and a last layer maps $h$ to the two
# numbers $\hat\epsilon$. About 126k parameters.

# %%
show_source(nets.MLP, docstring=False)

# %% [markdown]
# **Write the training loop yourself.** Algorithm 1 of Ho et al. is all there
# is: draw a batch of data, a step $t$ per item, and noise $\epsilon$; jump to
# $x_t$ with the closed form of Chapter 01; regress $\epsilon_\theta(x_t, t)$ on
# $\epsilon$. A dozen lines, run for a few hundred steps on the swiss roll:

# %%
roll_train = data.swiss_roll(10_000)
with torch.random.fork_rng(devices=[]):  # the net's initial weights from a seed, leaving torch's global RNG alone
    torch.manual_seed(0)
    my_net = nets.MLP(dim=2, hidden=128, depth=3)
opt = torch.optim.Adam(my_net.parameters(), lr=2e-3)
g = generator(10)
my_losses = []
for step in range(pick(400, 100)):
    x0 = roll_train[torch.randint(0, len(roll_train), (256,), generator=g)]  # a batch of data
    t = torch.randint(0, sched.T, (256,), generator=g).double()             # index t-1 of a uniform step t
    eps = torch.randn(x0.shape, generator=g)                                 # the noise to predict
    x_t = forward.q_sample(x0, t, eps, sched)                                # jump to x_t (Chapter 01)
    loss = ((my_net(x_t, t.float()) - eps) ** 2).mean()                      # the simple loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    my_losses.append(loss.item())
my_net.eval().requires_grad_(False)

# the library's simple loss, fed the same random draws, computes the same number
x0 = roll_train[:256]
ga, gb = generator(11), generator(11)
t = torch.randint(0, sched.T, (256,), generator=ga).double()
eps = torch.randn(x0.shape, generator=ga)
by_hand = ((my_net(forward.q_sample(x0, t, eps, sched), t.float()) - eps) ** 2).mean().item()
print(f"{len(my_losses)} steps; loss over the first 20 steps {np.mean(my_losses[:20]):.3f}, last 20 "
      f"{np.mean(my_losses[-20:]):.3f}; on one batch: by hand {by_hand:.6f}, "
      f"losses.simple_loss {losses.simple_loss(my_net, x0, sched, generator=gb).item():.6f}")

# %% [markdown]
# That is a diffusion model; section 4 samples from it. `train.train` runs the
# same loop with four refinements that matter for a good checkpoint: a
# learning-rate warm-up then cosine decay, gradient clipping, an exponential
# moving average (EMA) of the weights, which is the model it returns and we
# sample from, and a *recipe* that fixes everything that makes the checkpoint
# (data, net, schedule, steps, batch size, learning rate, EMA decay, seed), so
# that every random draw is repeatable.

# %%
print(recipes.RECIPES["toy2d"])
show_source(train.train, docstring=False)

# %% [markdown]
# **Train it with the library.** In full mode this reruns the whole `toy2d`
# recipe (tens of seconds on two cores); in fast mode a short version. The loss
# does not go to zero: even the perfect $\epsilon$-predictor cannot know which
# noise was drawn, only its conditional mean (section 5 measures that floor).

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
# Sampling walks the learned chain from $x_T \sim \mathcal N(0, I)$ down to
# $x_0$: at every step $t = T, \dots, 1$, turn $\epsilon_\theta$ into a guess
# $\hat x_0$, take the posterior mean $\tilde\mu_t(x_t, \hat x_0)$ (identical to
# $\mu_\theta$ above) and add fresh noise of variance $\sigma_t^2$, except at the
# last step $t = 1$, which returns the mean (Ho et al., Algorithm 2). Two choices
# of $\sigma_t^2$ are natural: $\beta_t$ (exact if the data were
# $\mathcal N(0, I)$) and $\tilde\beta_t$ (exact if the data were one point).

# %%
show_source(sample_ancestral, docstring=False)

# %%
n_points = pick(2000, 300)
heldout = data.swiss_roll(n_points, split="test")
sw = lambda a, b: metrics.sliced_wasserstein(a, b, generator=generator(0))  # noqa: E731
models = {"shipped toy2d": toy.model, "your train.train run": mine.model, "your hand loop": my_net}
seeds = range(3)  # each seed: a new x_T and new noise, the same for every model
scores, first = {"data (another draw)": [], **{name: [] for name in models}}, {}
rec2d = widgets.Recorder(every=20, limit=600)
for seed in seeds:
    x_T = torch.randn(n_points, 2, generator=generator(100 + seed))
    scores["data (another draw)"].append(sw(data.swiss_roll(n_points, seed=7 + seed), heldout))
    for name, model in models.items():
        x = sample_ancestral(model, x_T, sched, generator=generator(200 + seed), progress=False,
                             callback=rec2d if (seed == 0 and name == "shipped toy2d") else None)
        scores[name].append(sw(x, heldout))
        first.setdefault(name, x)

fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
viz.scatter(heldout, axes[0], lim=1.6, title="held-out data")
for ax, (name, x) in zip(axes[1:], first.items()):
    viz.scatter(x, ax, lim=1.6, title=f"{name}: SW {scores[name][0]:.3f}")
plt.show()
print(f"sliced Wasserstein to {n_points} held-out points, mean +- sd over {len(seeds)} seeds:")
for name, v in scores.items():
    print(f"  {name:22} {np.mean(v):.4f} +- {np.std(v, ddof=1):.4f}")
gap = max((a - b).abs().max().item() for a, b in zip(toy.model.state_dict().values(), mine.model.state_dict().values()))
print(f"largest difference between a weight of your train.train run and the shipped checkpoint's: {gap:.1e}")

# %% [markdown]
# The first line is the floor: two independent draws of the data are this far
# apart. In full mode "your train.train run" is the same recipe with the same
# seed as the shipped checkpoint, and its weights come out the same (the last
# line): training is repeatable, because every random draw comes from
# generators seeded by the recipe.
# In fast mode it is a 200-step run. Your hand-written loop, a few hundred
# steps without EMA or a learning-rate schedule, already draws the roll, but
# blurred: compare its distance with the other two, sd included.
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
t_grid = np.linspace(0, 999, pick(40, 8)).round()  # indices; the steps are t_grid + 1
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
ax.plot(t_grid + 1, floor, label=r"irreducible: $E\|\epsilon-\epsilon^*\|^2$")
ax.plot(t_grid + 1, learn_err, label=r"learning error: $E\|\epsilon_\theta-\epsilon^*\|^2$")
ax.set_yscale("log")
ax.set_xlabel("step t")
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
# oracle and through the network. The oracle's samples carry the sampling error
# alone (1000 ancestral steps: it should be small); the network's add the
# learning error on top.
#
# How to score them? Sliced Wasserstein compares one-dimensional projections
# of the two clouds, and the projections of eight tight clusters and of a ring
# whose clusters are smeared into one another are much alike; it also moves a
# lot from one draw to the next (mostly through how many points land in each
# cluster). The share of points nearest each centre is blind to smearing too.
# Because this data set's density is *known*, two sharper measures are at hand
# (`metrics.mixture_fit`):
#
# * the mean true log-density of the samples, $\frac1N\sum_i \log p(x_i)$ (minus
#   a cross-entropy; on samples of $p$ itself it is minus $p$'s entropy), which
#   drops for every point that lands between the clusters;
# * the share of samples within 2 standard deviations of a centre: for the
#   data it is $1 - e^{-2} = 0.865$ (a 2-D Gaussian).
#
# Every number comes from three seeds (new $x_T$, new noise; a new draw of the
# data), as mean $\pm$ sd.

# %%
n_ring, seeds = pick(1000, 200), range(3)
ring_held = data.gaussian_mixture(n_ring, split="test")
runs, shown = {"data (fresh draw)": [], "exact eps*": [], "learned eps": []}, {}
for seed in seeds:
    x_T = torch.randn(n_ring, 2, generator=generator(300 + seed))
    draws = {"data (fresh draw)": data.gaussian_mixture(n_ring, seed=7 + seed),
             "exact eps*": sample_ancestral(oracle, x_T, mix.schedule, generator=generator(400 + seed), progress=False),
             "learned eps": sample_ancestral(mix.model, x_T, mix.schedule, generator=generator(400 + seed),
                                             progress=False)}
    for name, x in draws.items():
        runs[name].append({**metrics.mixture_fit(x, ring), "sw": sw(x, ring_held)})
        shown.setdefault(name, x)

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
for ax, (name, x) in zip(axes, shown.items()):
    viz.scatter(x, ax, lim=1.5, title=name)
for name, x in shown.items():
    axes[3].hist(torch.atan2(x[:, 1], x[:, 0]).numpy(), bins=144, range=(-np.pi, np.pi), histtype="step",
                 density=True, label=name)
axes[3].set(xlabel="angle around the ring (radians)", ylabel="density (log scale)", yscale="log",
            title="where the points sit around the ring")
axes[3].legend(fontsize="x-small")
plt.show()
pm = lambda v: f"{np.mean(v):7.3f} +- {np.std(v, ddof=1):.3f}"  # noqa: E731
print(f"{'':18} {'mean log p(x)':>16} {'within 2 sd':>16} {'max |w_k - 1/8|':>16} {'SW to held-out':>16}")
for name, fits in runs.items():
    print(f"{name:18} {pm([f['log_prob'] for f in fits]):>16} {pm([f['within'] for f in fits]):>16} "
          f"{pm([float((f['weights'] - 0.125).abs().max()) for f in fits]):>16} {pm([f['sw'] for f in fits]):>16}")
print(f"(mean +- sd over {len(seeds)} seeds, {n_ring} points each; w_k: the share of points nearest centre k)")

# %% [markdown]
# Read each row against the first, the data itself. The exact $\epsilon^*$ through
# 1000 ancestral steps carries the sampling error alone; the learned $\epsilon_\theta$
# adds the learning error. Compare two rows only where their difference is larger
# than their $\pm$ sd.
#
# The `mixture` recipe's first version trained for 3,000 steps, and its samples
# smeared the eight clusters into a continuous ring: a mean log-density of
# $-3.06 \pm 0.08$ nats against the oracle's $+0.08$, and 38% of the samples within
# 2 sd of a centre against 85% (2000 points, 3 seeds, 1000 ancestral steps), while
# its sliced Wasserstein distance ($0.071 \pm 0.003$ against the oracle's
# $0.047 \pm 0.009$) and its cluster weights looked almost as good (those runs'
# measurements are in `ddlearn/recipes/ch02.py`). Training longer fixed most of it:
# the shipped recipe trains for 20,000 steps, and a wider, deeper MLP or a smaller
# learning rate did not do better. The table above is the shipped model: read off
# how close it now comes to the oracle in each column (mean log-density 0.011 against
# 0.058, 0.834 of the samples within 2 sd against 0.847), and where it still falls
# short. The lesson carries over: where the
# data's density is known, score samples with it; sliced Wasserstein alone called
# the smeared model nearly perfect.

# %% [markdown]
# ## 6. Digits and the UNet
#
# The same recipe, scaled up: scikit-learn's handwritten digits at 16x16 and,
# instead of the MLP, a **UNet** (Ronneberger et al. 2015, in the form Ho et al.
# and Dhariwal & Nichol use for diffusion). An image's noise is predicted pixel
# by pixel, but deciding what is noise needs context from the whole digit, so
# the UNet works at three resolutions: it halves the image twice on the way
# down (16x16, 8x8, 4x4), and on the way back up it concatenates, at each
# resolution, the features it saved on the way down (the *skip connections*),
# so fine detail is not lost. Its pieces:
#
# * **residual blocks**: GroupNorm, SiLU, 3x3 convolution, twice, added back to
#   the input; the time embedding (section 3) is projected to the block's
#   channels and added to every pixel between the two convolutions: this is how
#   every layer learns the noise level. The second convolution starts at zero,
#   so each block starts as the identity;
# * **self-attention** at the lowest resolution (4x4 = 16 positions; attention is
#   quadratic in the number of positions): every position mixes information from
#   all others, which a 3x3 convolution cannot do in one layer;
# * a **class embedding** for conditional models (Chapter 06): a label $y$ is
#   looked up in a learned table and added to the time embedding, so it reaches
#   every residual block the same way; one extra index stands for "no label";
# * the last convolution also starts at zero: an untrained UNet predicts
#   $\epsilon = 0$.
#
# The shape of the shipped `digits` network, read from its own modules (one
# forward pass with hooks records every layer's output channels and
# resolution, and the code below draws them):

# %%
digits_model = pretrained.load("digits")


def unet_stages(net):
    """One forward pass with hooks: (part, kind, channels, side) of every layer in the order the UNet runs
    them, and its skip connections as (layer whose output is saved, layer that concatenates it)."""
    records, handles, groups = [], [], []

    def hook(part):
        def record(module, inputs, output):
            records.append((part, type(module).__name__, output.shape[1], output.shape[-1]))
        return record

    handles.append(net.conv_in.register_forward_hook(hook("in")))
    for part in ("down", "mid", "up"):
        for group in (getattr(net, part) if part != "mid" else [net.mid]):
            groups.append((part, len(group)))
            handles += [layer.register_forward_hook(hook(part)) for layer in group]
    handles.append(net.out.register_forward_hook(hook("out")))
    with torch.no_grad():
        net(torch.zeros(1, net.in_channels, net.image_size, net.image_size), torch.zeros(1))
    for h in handles:
        h.remove()
    saved, skips, i = [0], [], 1  # conv_in's output is saved first
    for part, n in groups:
        if part == "down":
            saved.append(i + n - 1)  # then each down group's output
        if part == "up" and records[i][1] == "ResBlock":
            skips.append((saved.pop(), i))  # each up group that starts with a ResBlock takes the latest
        i += n
    return records, skips


def draw_unet(net, ax):
    records, skips = unet_stages(net)
    colours = {"ResBlock": "C0", "AttnBlock": "C1", "Conv2d": "0.6", "Upsample": "C2", "Sequential": "0.6"}
    widest = max(c for _, _, c, _ in records)
    level = lambda side: int(np.log2(net.image_size // side))  # noqa: E731
    for i, (part, kind, ch, side) in enumerate(records):
        h = 0.25 + 0.5 * ch / widest  # box height grows with the channels
        ax.add_patch(plt.Rectangle((i - 0.4, -level(side) - h / 2), 0.8, h, color=colours[kind], alpha=0.85))
        ax.text(i, -level(side) - h / 2 - 0.06, str(ch), ha="center", va="top", fontsize=6)
    for a, b in skips:
        xs = np.linspace(a, b, 50)
        bump = 0.1 + 0.25 * (b - a) / len(records)
        ax.plot(xs, -level(records[a][3]) + 0.42 + bump * np.sin(np.pi * (xs - a) / (b - a)), color="0.3", lw=0.8)
    for kind, label in (("ResBlock", "residual block (+ time / class embedding)"), ("AttnBlock", "self-attention"),
                        ("Conv2d", "3x3 conv (stride 2: down)"), ("Upsample", "upsample x2")):
        ax.bar(0, 0, color=colours[kind], label=label)
    ax.plot([], [], color="0.3", lw=0.8, label="skip connection (concatenated)")
    sides = sorted({r[3] for r in records}, reverse=True)
    ax.set_yticks([-level(s) for s in sides], [f"{s}x{s}" for s in sides])
    ax.set(xlim=(-1, len(records)), ylim=(-len(sides) + 0.3, 0.95), xticks=[])
    ax.set_xlabel("layers in the order they run: down, middle, up (numbers: output channels)")
    ax.legend(fontsize="x-small", ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


fig, ax = plt.subplots(figsize=(12, 3.6), layout="constrained")
draw_unet(digits_model.model, ax)
plt.show()
print(f"{sum(p.numel() for p in digits_model.model.parameters()):,} parameters;",
      {k: v for k, v in digits_model.info["recipe"]["net_kwargs"].items()})

# %% [markdown]
# A residual block, and where the time embedding enters (`h + self.emb(...)`):

# %%
show_source(nets.unet.ResBlock, docstring=False)

# %% [markdown]
# The attention block (its cross-attention to context tokens is used in
# Chapter 08), and the forward pass that ties everything together: the time
# embedding plus the class embedding, the way down saving `hs`, the middle,
# and the way up concatenating them back:

# %%
display(show_source(nets.unet.AttnBlock.forward))
show_source(nets.UNet.forward)

# %% [markdown]
# Training is the loop of section 3 with this network and 5,000 steps of 64
# digits. Retraining it takes about ten minutes on two cores, so the chapter
# loads the shipped checkpoint; `ddlearn train digits` (the command in its
# sidecar) remakes it. The cell below runs 60 steps of the same recipe only to
# prove the code path.

# %%
print({k: digits_model.info[k] for k in ("command", "seed", "train_seconds", "steps", "n_params", "bytes")})
quick = train.train("digits", fast=True, progress=False)
print(f"a {quick.step}-step run of the same recipe took {quick.seconds:.1f} s; "
      f"its last loss {np.mean(quick.losses[-10:]):.3f} against the shipped run's {digits_model.info['final_loss_ema']:.3f}")

# %% [markdown]
# Ancestral sampling with all 1000 steps. We clip $\hat x_0$ to $[-1, 1]$ (the
# data range) inside each step, as the original DDPM code does for images.

# %%
n_sets, n_eval = 3, pick(48, 4)  # three sets of samples (three seeds), drawn in one batch
rec_img = widgets.Recorder(every=25, limit=16)
x_T = torch.cat([torch.randn(n_eval, 1, 16, 16, generator=generator(50 + k)) for k in range(n_sets)])
samples_digits = sample_ancestral(digits_model.model, x_T, digits_model.schedule, clip_x0=(-1, 1),
                                  generator=generator(5), callback=rec_img, progress=not is_fast())
sample_sets = samples_digits.split(n_eval)
train_digits, test_digits = data.digits("train"), data.digits("test")
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), layout="constrained")
viz.image_grid(sample_sets[0], axes[0], nrow=int(math.ceil(math.sqrt(n_eval))), title=f"{n_eval} DDPM samples")
viz.image_grid(test_digits[:n_eval], axes[1], nrow=int(math.ceil(math.sqrt(n_eval))), title="held-out digits")
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
# distance is biased upwards for small sets, and each kind comes in three sets
# (three seeds for the samples; three random subsets of the training digits)
# so that we can see how much the number moves by chance.

# %%
flat = train_digits.flatten(1).double()
gauss = torch.distributions.MultivariateNormal(flat.mean(0), torch.cov(flat.T) + 1e-4 * torch.eye(256, dtype=torch.float64))
ref = test_digits  # all 359 held-out digits as the reference for every set
fdd = {"training digits (floor)": [], "DDPM samples": [], "Gaussian baseline": []}
for k in range(n_sets):
    subset = torch.randperm(len(train_digits), generator=generator(20 + k))[:n_eval]
    z = torch.randn(n_eval, 256, generator=generator(8 + k), dtype=torch.float64)
    gauss_digits = (gauss.loc + z @ gauss.scale_tril.T).float().reshape(-1, 1, 16, 16).clamp(-1, 1)
    fdd["training digits (floor)"].append(metrics.frechet_digit_distance(train_digits[subset], ref))
    fdd["DDPM samples"].append(metrics.frechet_digit_distance(sample_sets[k], ref))
    fdd["Gaussian baseline"].append(metrics.frechet_digit_distance(gauss_digits, ref))
for k, v in fdd.items():
    print(f"{k:>24}: {np.mean(v):7.2f} +- {np.std(v, ddof=1):.2f}")
print(f"(mean +- sd over {n_sets} sets of n = {n_eval} against all {len(ref)} held-out digits; "
      f"benchmarks/ddpm.py repeats this with n = 359, which lowers every number)")

# %% [markdown]
# **Memorisation.** A model trained on 1,438 digits could simply return
# them. For each sample, find its nearest training digit (pixel distance), and
# compare with how close *held-out* digits come to the training set: a copy
# would be far closer than any held-out digit ever gets (Carlini et al. 2023
# and Somepalli et al. 2023 run this test at scale).

# %%
nn = metrics.nearest_neighbour(samples_digits, train_digits, test_digits)
q = lambda d: np.percentile(d.numpy(), [25, 50, 75]).round(2)  # noqa: E731
print(f"distance to the nearest training digit, quartiles (25%, median, 75%): "
      f"{len(samples_digits)} samples {q(nn['sample_dist'])}, {len(test_digits)} held-out digits "
      f"{q(nn['heldout_dist'])} (ratio of medians {nn['ratio_median']:.2f})")
print(f"samples closer to a training digit than the closest held-out digit: "
      f"{100 * nn['frac_closer_than_heldout_min']:.0f}%")
k = min(12, len(samples_digits))
pairs = torch.cat([samples_digits[:k], train_digits[nn["sample_index"][:k]]])
fig, ax = plt.subplots(figsize=(8, 1.8), layout="constrained")
viz.image_grid(pairs, ax, nrow=k, title="top: samples; bottom: nearest training digit")
plt.show()

# %% [markdown]
# **The bound in bits per dimension.** The ELBO of section 2 is a number we can
# evaluate on held-out digits, term by term. Likelihoods of images are stated
# for discrete data (a continuous density can grow without limit on data that
# sit on a lower-dimensional set, and upsampled digits nearly do), so quantise
# the digits to 8 bits: 256 levels on $[-1, 1]$, spacing $\Delta = 2/255$. Ho et
# al.'s decoder then makes the bound a bound on the discrete probability
# itself: $L_0 = -\log$ of the mass that $\mathcal N(\hat x_0(x_1), \sigma_1^2 I)$ puts
# on $x_0$'s bin $[x_0 - \Delta/2,\ x_0 + \Delta/2]$ in each pixel, the end bins
# reaching to $\pm\infty$ (their eq. 13). Bits per dimension is the bound in nats
# over $D \ln 2$, $D = 256$; a uniform model scores 8.

# %%
show_source(losses.discretised_gaussian_log_likelihood, docstring=False)

# %% [markdown]
# We compute every one of the $T + 1$ terms for each digit, with one noise
# draw per term (`metrics.elbo_bpd`, through `losses.vlb_breakdown`). Cheaper
# estimates sample a few timesteps; they are unbiased but very noisy here,
# because the terms differ by orders of magnitude from one step to the next
# (the plot below), so we pay for all of them on fewer digits. Both choices of
# $\sigma_t^2$ from section 4, and, as a baseline, the Gaussian of section 7
# (its density on dequantised digits, $x + u$ with $u$ uniform in the bin,
# minus $D \log \Delta$: also an upper bound on the discrete NLL).

# %%
n_bpd = pick(16, 2)
held = test_digits[:n_bpd]
t0 = time.perf_counter()
bounds = {v: metrics.elbo_bpd(digits_model.model, held, digits_model.schedule, variance=v, generator=generator(6))
          for v in ("beta", "beta_tilde")}
seconds = time.perf_counter() - t0
delta = 2 / 255
xq = torch.round((held + 1) / delta) * delta - 1 + (torch.rand(held.shape, generator=generator(7)) - 0.5) * delta
gauss_bits = (-gauss.log_prob(xq.flatten(1).double()) - 256 * math.log(delta)) / (256 * math.log(2))
print(f"bits per dimension on {n_bpd} held-out digits (mean +- standard error over digits; all "
      f"{digits_model.schedule.T} + 1 terms, {seconds:.0f} s for both):")
x8 = torch.round((held + 1) / delta) * delta - 1  # the 8-bit digits the bound is computed on
print(f"{'':26} {'bound':>15} {'L_T':>9} {'sum L_1..L_999':>15} {'L_0 (decoder)':>14} {'L_0 at x0_hat = x0':>19} "
      f"{'KL share in t <= 10':>20}")
for v, r in bounds.items():
    # the decoder's cost if x0_hat were exactly x0: no network can pay less with this sigma_1
    log_var = torch.full_like(x8, math.log(losses.reverse_variance(digits_model.schedule, v)[0].item()))
    best_l0 = -losses.discretised_gaussian_log_likelihood(x8, x8, log_var).flatten(1).sum(1).mean() / (256 * math.log(2))
    kl = r["per_t_bpd"][1:]  # L_1 .. L_999 (steps 2 .. 1000)
    print(f"{'DDPM, sigma_t^2 = ' + v.replace('_', '-'):26} {r['bpd']:8.3f} +- {r['bpd_std_err']:.3f} "
          f"{r['prior_bpd']:9.5f} {r['diffusion_bpd']:15.3f} {r['decoder_bpd']:14.3f} {best_l0:19.3f} "
          f"{kl[:9].sum() / kl.sum():20.2f}")
print(f"{'Gaussian baseline':26} {gauss_bits.mean():8.3f} +- {gauss_bits.std() / math.sqrt(n_bpd - 1):.3f}")
print(f"{'uniform':26} {8:8.3f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
steps = np.arange(1, digits_model.schedule.T + 1)  # L_(t-1) belongs to step t
for v, r in bounds.items():
    per_t = r["per_t_bpd"].numpy()
    axes[0].loglog(steps, per_t, lw=0.8, label=rf"$\sigma_t^2$ = {v.replace('_', '-')}")
    axes[1].semilogx(steps, np.cumsum(per_t), label=rf"$\sigma_t^2$ = {v.replace('_', '-')}")
axes[0].set(xlabel="step t", ylabel="bits / dim", title=r"each term: $L_0$ at t = 1, then $L_{t-1}$")
axes[1].set(xlabel="step t", ylabel="bits / dim", title=r"running sum $L_0 + \dots + L_{t-1}$")
axes[0].legend(fontsize="small")
plt.show()

# %% [markdown]
# What the terms say:
#
# * $L_T$ is negligible (a few $10^{-5}$ bits): $q(x_T \mid x_0)$ is $\mathcal N(0, I)$ to
#   within rounding, and there is nothing to learn there.
# * $L_0$, the decoder, is the largest single part, and most of it is not the
#   network's error. The column "$L_0$ at $\hat x_0 = x_0$" is what a perfect
#   $\hat x_0$ would still pay: $\sigma_1$ (0.01 for $\beta_t$, the square root of
#   the linear schedule's first variance $10^{-4}$; a little less for $\tilde\beta_t$)
#   is about one grey level ($\Delta = 0.0078$) wide, so even a decoder centred on
#   the right value puts only part of its mass in the right bin. Only the
#   difference between the two columns is the network's.
# * The KL terms concentrate at the smallest steps (the last column: their share
#   in steps 2-10), where the bound's weight $w_t$ is largest and the simple loss,
#   weighting all steps alike, trains the network least relative to the bound
#   (section 2's plot).
# * $\sigma_t^2 = \tilde\beta_t$ gives the tighter bound for the same network: a
#   narrower decoder, and reverse variances that match the posterior's at small $t$.
# * Against the Gaussian baseline and the uniform 8 bits, read the table with its
#   standard errors (16 digits in full mode).
#
# **Next to the probability-flow ODE.** Chapter 04 reads the same
# $\epsilon_\theta$ as a probability-flow ODE, whose log-likelihood is exact (up to
# the solver and the Hutchinson trace estimate) instead of a bound.
# `python benchmarks/sde.py` computes it for this `digits` model on the first
# 100 held-out digits (8-bit, dequantised uniformly within each bin, RK45 at
# rtol = atol = $10^{-5}$): $2.046 \pm 0.019$ bits/dim (here and in the rest of
# this paragraph, $\pm$ is the standard error over the digits). On the same 100 digits the
# bound with $\sigma_t^2 = \beta_t$ is $2.662 \pm 0.017$ (`metrics.elbo_bpd`, all terms,
# generator seed 6: what table 4 of `python benchmarks/ddpm.py` runs; with
# $\tilde\beta_t$, $2.141 \pm 0.033$ on the first 32). The ODE's figure is lower, but it
# is not a tighter bound on the same model: it is the exact likelihood of a
# different model, the deterministic flow, built from the same network, while the
# bound describes the stochastic chain we sample from and is loose by
# construction in its decoder and its first steps. Ho et al. (2020, Table 1) saw
# the same on CIFAR-10: the simple loss gave their best samples, not their best
# bound.
#
# ## Exercises
#
# **02.1** (compute) Compute $\tilde\beta_2$, the first posterior variance above zero
# ($\tilde\beta_1 = 0$: at $t = 1$ the posterior is $x_0$ itself), for the linear
# schedule with $T = 1000$, from the schedule's arrays (step $t$ sits at index
# $t - 1$).

# %% tags=["solution"]
from ddlearn import schedules as _s
_lin = _s.linear()
answer_02_1 = float(_lin.betas[1] * (1 - _lin.alpha_bars[0]) / (1 - _lin.alpha_bars[1]))
check("02.1", answer_02_1)

# %% [markdown]
# **02.2** (implement) Write `mu(x_t, eps, t, schedule)`, the reverse mean
# $\mu_\theta = (x_t - \tfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon)/\sqrt{\alpha_t}$,
# using only the schedule's arrays (no `q_posterior`); `t` is the code's index,
# as for every function in the library. The checker compares it with the
# posterior mean at $\hat x_0$.

# %% tags=["solution"]
def mu(x_t, eps, t, schedule):
    return (x_t - schedule.betas[t] / (1 - schedule.alpha_bars[t]).sqrt() * eps) / schedule.alphas[t].sqrt()


check("02.2", mu)

# %% [markdown]
# **02.3** (predict, then compute) Read off the plot in section 2 roughly how
# many times larger the bound's weight $w_t$ is at step $t = 2$ (the first KL
# term, index 1 of `losses.vlb_weights`) than at step $t = 1000$ (index 999),
# with $\sigma_t^2 = \beta_t$; then compute it.

# %% tags=["solution"]
from ddlearn import losses as _losses, schedules as _s
_w = _losses.vlb_weights(_s.linear())
answer_02_3 = float(_w[1] / _w[999])
check("02.3", answer_02_3)

# %% [markdown]
# **02.4** (implement) Write one ancestral step `step(model, x_t, t, schedule, noise)`
# returning $x_{t-1}$ with $\sigma_t^2 = \beta_t$, where `t` is the code's index
# (no noise at index 0, the last step, which returns $\hat x_0$).

# %% tags=["solution"]
def step(model, x_t, t, schedule, noise):
    mean = mu(x_t, model(x_t, t), t, schedule)  # 02.2's reverse mean
    return mean + schedule.betas[t].sqrt() * noise if t > 0 else mean


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

# %% [markdown]
# **02.7** (derive) Take data $x_0 \sim \mathcal N(0, I)$. Show that then every
# $x_t \sim \mathcal N(0, I)$, and derive the exact reverse step $q(x_{t-1}\mid x_t)$
# (not conditioned on $x_0$). Which of section 4's two reverse variances is exact
# for these data? (Ho et al. 2020 remark that one choice is optimal for
# $x_0 \sim \mathcal N(0, I)$ and the other for data that is a single point.)

# %% [markdown] tags=["solution"]
# *Solution.* If $x_{t-1} \sim \mathcal N(0, I)$ then $x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t$
# has variance $(1-\beta_t) + \beta_t = 1$, so by induction every $x_t \sim \mathcal N(0, I)$.
# The pair $(x_{t-1}, x_t)$ is jointly Gaussian with unit variances and covariance
# $\sqrt{1-\beta_t}\,I$. Conditioning a joint Gaussian: $\mathbb E[x_{t-1}\mid x_t] = \sqrt{1-\beta_t}\,x_t$
# and $\operatorname{Var}(x_{t-1}\mid x_t) = 1 - (1-\beta_t) = \beta_t$. So
# $q(x_{t-1}\mid x_t) = \mathcal N(\sqrt{1-\beta_t}\,x_t, \beta_t I)$: the reverse
# variance $\sigma_t^2 = \beta_t$ is exact here, and $\tilde\beta_t$ (exact when $x_0$ is known,
# hence for a single point) is too small. A numerical check by regression:

# %% tags=["solution"]
import torch as _torch
from ddlearn import schedules as _s
_lin, _g, _i = _s.linear(), _torch.Generator().manual_seed(0), 500  # index 500 = step t = 501
_x0 = _torch.randn(200_000, generator=_g, dtype=_torch.float64)
_ab_prev = _lin.alpha_bars[_i - 1]
_x_prev = _ab_prev.sqrt() * _x0 + (1 - _ab_prev).sqrt() * _torch.randn(_x0.shape, generator=_g, dtype=_torch.float64)
_x_t = (1 - _lin.betas[_i]).sqrt() * _x_prev + _lin.betas[_i].sqrt() * _torch.randn(_x0.shape, generator=_g,
                                                                                   dtype=_torch.float64)
_slope = float((_x_prev * _x_t).mean() / (_x_t * _x_t).mean())
print(f"slope {_slope:.5f} vs sqrt(1 - beta) {float((1 - _lin.betas[_i]).sqrt()):.5f}; "
      f"residual variance {float((_x_prev - _slope * _x_t).var()):.5f} vs beta {float(_lin.betas[_i]):.5f}")

# %% [markdown]
# **02.8** (predict, then run) For data $\mathcal N(0, I)$ the best possible noise
# predictor is known in closed form (Chapter 03 derives it), so the smallest
# simple loss $\mathbb E\|\epsilon - \epsilon_\theta(x_t, t)\|^2$ per dimension that
# *any* network can reach at step $t$ is known too. Before computing anything,
# predict that floor at the first step and at the last step of the linear
# schedule: at which end is predicting the noise hard? Then measure it with the
# exact oracle `oracles.gaussian(torch.zeros(2), 1.0).eps_model(schedule)` on
# 20,000 draws at indices 0, 99, 499 and 999.

# %% tags=["solution"]
import torch as _torch
from ddlearn import forward as _forward, oracles as _oracles, schedules as _s
_lin = _s.linear()
_oracle = _oracles.gaussian(_torch.zeros(2), 1.0).eps_model(_lin)
_g = _torch.Generator().manual_seed(1)
print(f"{'index':>6} {'measured floor':>15} {'alpha_bar':>10}")
for _i in (0, 99, 499, 999):
    _x0 = _torch.randn(20_000, 2, generator=_g, dtype=_torch.float64)
    _eps = _torch.randn(_x0.shape, generator=_g, dtype=_torch.float64)
    with _torch.no_grad():
        _pred = _oracle(_forward.q_sample(_x0, _i, _eps, _lin), _torch.full((20_000,), float(_i), dtype=_torch.float64))
    print(f"{_i:>6} {float(((_eps - _pred) ** 2).mean()):>15.5f} {float(_lin.alpha_bars[_i]):>10.5f}")

# %% [markdown] tags=["solution"]
# *Solution.* Here $\epsilon$ given $x_t$ is Gaussian with variance
# $1 - (1 - \bar\alpha_t) = \bar\alpha_t$ (the covariance of $\epsilon$ and $x_t$ is
# $\sqrt{1-\bar\alpha_t}$), so the floor is $\bar\alpha_t$: almost 1 at the first
# step, where $x_t$ is nearly clean and the little noise in it cannot be told
# apart from the data, and almost 0 at the last, where $x_t$ *is* the noise. The
# measured floors match $\bar\alpha_t$. A training loss that stays near 1 at
# small $t$ is therefore no sign of a bad network.


# %% [markdown]
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
