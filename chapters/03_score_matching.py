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

# %% [markdown] slideshow={"slide_type": "slide"}
# # Chapter 03 - Score matching and Langevin dynamics
#
# Chapter 02 trained a network to predict the noise $\epsilon$ in $x_t$. This
# chapter looks at the same object from another side: the **score**
# $\nabla_x \log p(x)$, the direction in which a density grows fastest. A
# noise-predictor *is* a score model in disguise, and a score alone is enough to
# draw samples. By the end you will be able to
#
# * compute the exact score of a Gaussian mixture, at any noise level, and draw
#   it as a vector field;
# * sample with **Langevin dynamics** using nothing but a score, and show with a
#   number where it goes wrong: between well-separated modes it cannot learn the
#   mixture's *weights*;
# * derive **denoising score matching** (Vincent 2011) from explicit score
#   matching (Hyvarinen 2005) and train a noise-conditional score network on
#   2-D data, comparing it with the exact score (and seeing where it is poor:
#   in low-density regions);
# * sample with **annealed Langevin dynamics** (Song & Ermon 2019) and recover
#   the weights that plain Langevin misses, on 2-D data and on digits, using the
#   Chapter 02 network as a noise-conditional score network;
# * move a slider over the noise level and watch the score field and Langevin
#   paths change.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import langevin, losses, nets, oracles, schedules, train, viz, widgets
from ddlearn import sde as sde_lib
from ddlearn.config import is_fast, pick
from ddlearn.notebook import check, show_source

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. The score of a distribution
#
# For a density $p$ on $\mathbb R^D$ the (Stein) score is
# $s(x) = \nabla_x \log p(x)$. It ignores the normalising constant:
# $\nabla_x \log \big(\tilde p(x)/Z\big) = \nabla_x \log \tilde p(x)$. For a
# Gaussian $\mathcal N(\mu, \Sigma)$ it is linear, $s(x) = -\Sigma^{-1}(x - \mu)$:
# an arrow pointing back to the mean, longer the further away you are.
#
# A mixture $p = \sum_k w_k \mathcal N(\mu_k, \Sigma_k)$ has score
#
# $$ s(x) = \sum_k r_k(x)\,\big(-\Sigma_k^{-1}(x - \mu_k)\big),\qquad
#    r_k(x) = \frac{w_k \mathcal N(x; \mu_k, \Sigma_k)}{\sum_j w_j \mathcal N(x; \mu_j, \Sigma_j)}, $$
#
# each component's pull weighted by how responsible it is for $x$. Noising the
# data, $x_\sigma = x_0 + \sigma\epsilon$, keeps it a mixture, with covariances
# $\Sigma_k + \sigma^2 I$, so the exact score is known **at every noise level**.
# `ddlearn.oracles` computes it (in the variance-preserving units of the book;
# `langevin.noise_conditional_score` converts to the $x_0 + \sigma\epsilon$ view
# used in this chapter):

# %%
show_source(oracles.GaussianMixture.score)

# %% [markdown]
# Two mixtures carry this chapter: `ring8` (eight equal components on a circle)
# and `two`, whose components at $(\pm 1, 0)$ have weights **0.2** (left) and
# **0.8** (right). Arrows show the direction of the score (all drawn the same
# length); their colour shows its size, $\log_{10}\|s\|$, on the colour bar.

# %%
ring, two = oracles.named_mixture("ring8"), oracles.named_mixture("two")
g = torch.Generator().manual_seed(0)


def draw_field(ax, mixture, sigma, lim=2.0, n=21, title="", clim=(-1.0, 2.5)):
    score = langevin.noise_conditional_score(mixture)
    a = torch.linspace(-lim, lim, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(a, a, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    s = score(pts, torch.full((pts.shape[0],), sigma, dtype=torch.float64)).numpy()
    mag = np.linalg.norm(s, axis=1) + 1e-12
    q = ax.quiver(gx, gy, (s[:, 0] / mag).reshape(n, n), (s[:, 1] / mag).reshape(n, n),
                  np.log10(mag).reshape(n, n), cmap="viridis", clim=clim, scale=28, width=0.004)
    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
    ax.set_title(title, fontsize="small")
    return q


fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), layout="constrained")
viz.scatter(ring.sample(2000, generator=g), axes[0], lim=2, title="ring8: samples")
draw_field(axes[1], ring, 0.05, title="ring8: score at sigma = 0.05")
viz.scatter(two.sample(2000, generator=g), axes[2], lim=2, title="two: samples (weights 0.2 / 0.8)")
q = draw_field(axes[3], two, 0.05, title="two: score at sigma = 0.05")
fig.colorbar(q, ax=axes[[1, 3]], shrink=0.85, label=r"$\log_{10}\|s(x)\|$ (both fields)")
plt.show()

# %% [markdown]
# The score vanishes at the modes and between them (a saddle), and it knows the
# weights only through the responsibilities: far from the saddle the arrows of
# `two` look the same on the left and on the right. Keep that in mind.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Langevin dynamics: sampling with a score
#
# Start anywhere and follow the score, plus noise:
#
# $$ x_{k+1} = x_k + \epsilon\, s(x_k) + \sqrt{2\epsilon}\, z_k, \qquad z_k \sim \mathcal N(0, I). $$
#
# This is the Euler-Maruyama discretisation of the Langevin diffusion
# $dx = \nabla\log p(x)\,dt + \sqrt 2\, dW$, whose stationary distribution is
# $p$: the drift pushes mass uphill, the noise spreads it, and they balance
# exactly at $p$ (the Fokker-Planck equation has $p$ as its fixed point). With a
# finite step $\epsilon$ the balance is slightly off (exercise 03.3 computes by
# how much for a Gaussian).

# %%
show_source(langevin.langevin)

# %%
n_chains = pick(4000, 1000)
n_steps = pick(1000, 200)
start = torch.rand(n_chains, 2, generator=g) * 4 - 2  # uniform on [-2, 2]^2
x_ring = langevin.langevin(ring.score, start, 1e-3, n_steps, generator=g, progress=False)
x_two = langevin.langevin(two.score, start, 1e-3, n_steps, generator=g, progress=False)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
viz.scatter(start, axes[0], lim=2.2, title="start: uniform")
viz.scatter(x_ring, axes[1], lim=2.2, title=f"Langevin on ring8 ({n_steps} steps)")
viz.scatter(x_two, axes[2], lim=2.2, title=f"Langevin on two ({n_steps} steps)")
plt.show()
right_start = (start[:, 0] > 0).float().mean().item()
right_end = (x_two[:, 0] > 0).float().mean().item()
print(f"'two': fraction of chains started on the right {right_start:.3f}, ended on the right {right_end:.3f}, "
      f"true weight 0.800")

# %% [markdown]
# Each chain found *a* mode and settled into it with the right spread, but the
# proportions on `two` are the proportions of the **starting points**, not 0.2 /
# 0.8. The chain would have to cross the low-density valley at $x = 0$, and the
# probability of that per step is astronomically small: mixing time grows
# exponentially with the barrier. Two more problems hide here, both stated by
# Song & Ermon (2019):
#
# * with a *learned* score, the valley is where there was no training data, so
#   the score is least accurate exactly where the chain would need it;
# * real data live near a low-dimensional manifold, where the score of the
#   clean data is not even defined.
#
# Noise fixes all three: a noised density has no empty regions, its modes are
# connected, and it has a score everywhere. That is the idea behind the rest of
# the chapter and of the whole book.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. Score matching
#
# We do not know $\nabla\log p_\text{data}$; we want a network $s_\theta$ for it.
# **Explicit score matching** minimises
# $J(\theta) = \tfrac12\mathbb E_{p}\|s_\theta(x) - \nabla\log p(x)\|^2$, which
# needs the unknown score. Hyvarinen (2005) integrated by parts to remove it:
#
# $$ J(\theta) = \mathbb E_{p}\Big[\operatorname{tr}\nabla_x s_\theta(x) + \tfrac12\|s_\theta(x)\|^2\Big] + \text{const}, $$
#
# but the trace of a Jacobian costs $D$ backward passes. **Denoising score
# matching** (Vincent 2011) avoids it: perturb the data,
# $\tilde x = x + \sigma z$, with kernel $q_\sigma(\tilde x\mid x) = \mathcal N(x, \sigma^2 I)$,
# and match the score of the *noised* density $q_\sigma(\tilde x) = \int q_\sigma(\tilde x\mid x)p(x)\,dx$.
# Expanding the square, the only term that involves the unknown score is the
# cross term, and
#
# $$ \mathbb E_{q_\sigma(\tilde x)}\big[s_\theta(\tilde x)^\top \nabla\log q_\sigma(\tilde x)\big]
#  = \int s_\theta(\tilde x)^\top \nabla q_\sigma(\tilde x)\,d\tilde x
#  = \mathbb E_{p(x)\,q_\sigma(\tilde x\mid x)}\big[s_\theta(\tilde x)^\top\nabla_{\tilde x}\log q_\sigma(\tilde x\mid x)\big], $$
#
# because $\nabla q_\sigma(\tilde x) = \int \nabla_{\tilde x} q_\sigma(\tilde x\mid x)\,p(x)\,dx$. So,
# up to a constant that does not depend on $\theta$,
#
# $$ J_\text{DSM}(\theta) = \tfrac12\,\mathbb E_{x,\tilde x}\Big\|s_\theta(\tilde x) + \frac{\tilde x - x}{\sigma^2}\Big\|^2
#    = \tfrac12\,\mathbb E_{x,z}\Big\|s_\theta(x + \sigma z) + \frac{z}{\sigma}\Big\|^2 . $$
#
# The regression target $-z/\sigma$ is known for every training pair, and the
# minimiser is $s^*(\tilde x) = \nabla\log q_\sigma(\tilde x)$, the score of the noised
# data. A noise-conditional network $s_\theta(\tilde x, \sigma)$ learns all levels
# at once; Song & Ermon weight level $\sigma$ by $\sigma^2$, which makes every
# level's loss the same size: $\mathbb E\|\sigma s_\theta + z\|^2$. Write
# $s_\theta = -\epsilon_\theta/\sigma$ and this *is* Chapter 02's noise-prediction
# loss: a noise predictor is a score model.

# %%
show_source(losses.dsm_loss)

# %% [markdown]
# We train a noise-conditional network on samples of `two`. The network is the
# book's 2-D MLP (an eps-predictor with a time input); the noise level reaches it
# through the variance-exploding SDE of Chapter 04, $\sigma(u) = \sigma_\min(\sigma_\max/\sigma_\min)^u$,
# as time $t = u\,(T-1)$ and as the rescaled input $\tilde x/\sqrt{1+\sigma^2}$.
# (the code's timestep index, $0 \dots T-1$; see Chapter 01).
# `noise_conditional_score` does that bookkeeping and returns $s_\theta(\tilde x, \sigma) = -\epsilon_\theta/\sigma$.
# Noise levels are drawn log-uniformly between 0.01 and 10.

# %%
show_source(langevin.noise_conditional_score)

# %%
ve = sde_lib.VESDE(sigma_min=0.01, sigma_max=10.0)
data_two = two.sample(10000, generator=torch.Generator().manual_seed(1))
with torch.random.fork_rng(devices=[]):
    torch.manual_seed(0)
    net = nets.MLP(dim=2, hidden=128, depth=3, T=ve.T)
score_net = langevin.noise_conditional_score(net, ve)
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
train_steps = pick(2500, 150)
gtrain = torch.Generator().manual_seed(2)
history = []
t0 = time.perf_counter()
for step in range(train_steps):
    x0 = data_two[torch.randint(0, len(data_two), (256,), generator=gtrain)]
    sigma = torch.exp(torch.empty(256, dtype=torch.float64).uniform_(math.log(0.01), math.log(10.0), generator=gtrain))
    loss = losses.dsm_loss(score_net, x0, sigma, generator=gtrain)
    opt.zero_grad()
    loss.backward()
    opt.step()
    history.append(loss.item())
net.eval().requires_grad_(False)
print(f"{train_steps} steps in {time.perf_counter() - t0:.1f} s; DSM loss, first 100 steps {np.mean(history[:100]):.3f}, "
      f"last 100 steps {np.mean(history[-100:]):.3f}")

# %% [markdown]
# How good is the learned score? Compare it with the exact one, point by
# point, at two noise levels. Which error? A *relative* error
# $\|\hat s - s\|/\|s\|$ looks natural but misleads here: the true score
# vanishes at each mode and at the saddle between the modes (section 1), so it
# divides by nearly zero exactly where the score is small and an absolute
# error is harmless, and it blows up there. We plot the absolute error in
# noise units instead, $\sigma\,\|\hat s - s\| = \|\hat\epsilon - \epsilon^*\|$:
# the quantity the $\sigma^2$-weighted DSM loss penalises equally at every
# level, on one colour scale for both panels, against the noised density
# (white contours). Next to it, the typical size of the target itself,
# $\sigma\|s\|$, in the same regions.

# %%
exact_score = langevin.noise_conditional_score(two)
lim, n = 2.5, 61
a = torch.linspace(-lim, lim, n, dtype=torch.float64)
gx, gy = torch.meshgrid(a, a, indexing="xy")
pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
rows = []
for ax, sigma in zip(axes, (0.1, 0.5)):
    sig = torch.full((pts.shape[0],), sigma, dtype=torch.float64)
    with torch.no_grad():
        s_hat = score_net(pts.float(), sig).double()
    s_true = exact_score(pts, sig)
    err = (sigma * (s_hat - s_true).norm(dim=1)).numpy()  # = |eps_hat - eps*|
    size = (sigma * s_true.norm(dim=1)).numpy()
    ab = torch.tensor(1.0 / (1.0 + sigma ** 2), dtype=torch.float64)
    logp = (two.log_prob(pts * ab.sqrt(), ab) + math.log(ab)).numpy()  # density of x0 + sigma*eps (Jacobian: log ab)
    im = ax.imshow(np.log10(err.reshape(n, n) + 1e-4), origin="lower", extent=(-lim, lim, -lim, lim),
                   cmap="magma", vmin=-3, vmax=1)
    ax.contour(gx, gy, logp.reshape(n, n), levels=[-8, -4, 0], colors="w", linewidths=0.7)
    ax.set_title(f"sigma = {sigma}: log10 sigma*|s_hat - s| (white: log p = -8, -4, 0)", fontsize="small")
    high, low = logp > -2, logp < -8
    rows.append((sigma, np.median(err[high]), np.median(size[high]), np.median(err[low]), np.median(size[low])))
fig.colorbar(im, ax=axes, label=r"$\log_{10}\,\sigma\|\hat s - s\|$")
plt.show()
print(f"{'':6} {'where log p > -2':>28} {'where log p < -8':>28}")
print(f"{'sigma':>6} {'error':>13} {'target size':>14} {'error':>13} {'target size':>14}")
for sigma, e_hi, s_hi, e_lo, s_lo in rows:
    print(f"{sigma:6.2f} {e_hi:13.3f} {s_hi:14.3f} {e_lo:13.3f} {s_lo:14.3f}")
print("(medians over the grid points of each region, in noise units: error sigma*|s_hat - s|, "
      "target size sigma*|s|)")

# %% [markdown]
# Where the data are (log p > -2) the error is about a tenth of the target's
# size. Far from them (log p < -8) it is six (sigma = 0.5) to thirty
# (sigma = 0.1) times larger, at sigma = 0.1 half the size of the target
# itself: the noised data of the small level never reach that far, so the
# network was never shown those points. A sampler started far from the
# data must cross exactly these regions, which is one more reason to start at
# a large noise level, where they are not empty.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Annealed Langevin dynamics
#
# Song & Ermon (2019) run Langevin on a *sequence* of noised densities,
# $\sigma_1 > \sigma_2 > \dots > \sigma_L$, starting each level where the previous
# one stopped, with step $\epsilon_i = \epsilon\,\sigma_i^2/\sigma_L^2$. Why
# $\sigma_i^2$? The noised score has **squared** size
# $\mathbb E\|s(\tilde x, \sigma)\|^2 \approx D/\sigma^2$ (its DSM target $-z/\sigma$
# has exactly $\mathbb E\|z/\sigma\|^2 = D/\sigma^2$), so its size is
# $\|s\| \sim \sqrt D/\sigma$. With $\epsilon_i \propto \sigma_i^2$ the drift
# $\epsilon_i s$ and the noise $\sqrt{2\epsilon_i}\,z$ are both of size
# $\propto \sigma_i$: their ratio, the update's signal-to-noise ratio, is the
# same at every level. The approximation holds once $\sigma$ exceeds the data's
# own local spread; below it the noised density is the data's, and the score
# stops growing. Measured with the exact score of `two` (D = 2, components of
# standard deviation 0.1):

# %%
x_data = two.sample(20000, generator=torch.Generator().manual_seed(7)).double()
z = torch.randn(x_data.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
print(f"{'sigma':>6} {'E|s|^2':>10} {'D/sigma^2':>10} {'sigma^2 E|s|^2':>15}")
for sigma in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
    sig = torch.full((len(x_data),), sigma, dtype=torch.float64)
    e_s2 = exact_score(x_data + sigma * z, sig).pow(2).sum(1).mean().item()
    print(f"{sigma:6.2f} {e_s2:10.3g} {2 / sigma ** 2:10.3g} {sigma ** 2 * e_s2:15.3f}")

# %% [markdown]
# $\sigma^2\,\mathbb E\|s\|^2$ stays between 1.7 and 2.0, close to $D = 2$, from
# $\sigma = 0.3$ up, and falls far below it at the small levels (1.0 at 0.1,
# 0.02 at 0.01), where the components' own width (0.1) dominates: there the
# score stops growing like $1/\sigma$. At large $\sigma$ the modes overlap and the chains move freely
# between them, so they settle in proportion to the weights; as $\sigma$
# shrinks the modes separate, and the proportions are kept. A final Tweedie
# step $x + \sigma_L^2 s(x, \sigma_L)$ removes the last noise.

# %%
show_source(langevin.annealed_langevin)

# %%
sigmas = schedules.ve_sigmas(pick(20, 10), 0.01, 10.0)
n_each = pick(30, 10)
seeds = range(3)  # every sampler runs from three seeds (new starting points, new noise)
right_share = lambda x: (x[:, 0] > 0).double().mean().item()  # noqa: E731
shares = {"plain Langevin, exact score": [], "annealed Langevin, exact score": [],
          "annealed Langevin, learned score": []}
results = {}
for seed in seeds:
    gs = torch.Generator().manual_seed(100 + seed)
    start_s = torch.rand(n_chains, 2, generator=gs) * 4 - 2
    shares["plain Langevin, exact score"].append(
        right_share(langevin.langevin(two.score, start_s, 1e-3, n_steps, generator=gs, progress=False)))
    x_init = 10.0 * torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(3 + 10 * seed))
    for name, score in (("exact score", exact_score), ("learned score", score_net)):
        x = langevin.annealed_langevin(score, x_init, sigmas, n_each, 3e-5,
                                       generator=torch.Generator().manual_seed(4 + 10 * seed), progress=False)
        shares[f"annealed Langevin, {name}"].append(right_share(x))
        if seed == 0:
            results[name] = x

fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
viz.scatter(x_two, axes[0], lim=2.2, title="plain Langevin")
for ax, (name, x) in zip(axes[1:], results.items()):
    viz.scatter(x, ax, lim=2.2, title=f"annealed Langevin, {name}")
plt.show()
evals = {"plain": n_steps, "annealed": len(sigmas) * n_each + 1}
print(f"{'sampler':34} {'weight right (true 0.800)':>26} {'score evaluations':>18}")
for name, v in shares.items():
    print(f"{name:34} {np.mean(v):18.3f} +- {np.std(v, ddof=1):.3f} {evals[name.split()[0]]:18d}")
print(f"(mean +- sd over {len(seeds)} seeds, {n_chains} chains each; a chain counts as 'right' if x1 > 0)")

# %% [markdown]
# Annealing moves the right-hand share from the starting proportion (0.50) to
# about 0.77 with the exact score: close to the true 0.8, though still short of
# it with 20 levels of 30 steps (exercise 03.8 varies that budget). The learned
# score gets about 0.75; its gap to the exact score (0.02) is about the size
# of the spread from seed to seed.
#
# The explorer below shows the exact and the learned score fields of `two` at
# each noise level, with plain Langevin paths at that fixed level (red, from
# the same eight starting points). At $\sigma = 3$ the paths roam the whole
# plane and cross between the modes; at the smallest level each is trapped by
# the mode it first falls into, and the learned field goes astray far from the
# data.

# %%
widgets.score_field_explorer(two, net, ve, sigmas=(3.0, 1.0, 0.5, 0.25, 0.1, 0.03), data=data_two[:1500],
                             lim=2.0, n_grid=pick(21, 11), langevin_steps=pick(60, 20))

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. Digits: a noise-predictor is a noise-conditional score network
#
# The Chapter 02 digits network predicts $\epsilon$ at timestep $t$ of a DDPM
# schedule. The noise level of step $t$ in the $x_0 + \sigma\epsilon$ view is
# $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$, so for any $\sigma$ we can find the
# $t$ with the same signal-to-noise ratio, feed the rescaled state
# $x\sqrt{\bar\alpha_t}$, and read off $s = -\epsilon_\theta/\sigma$: the same
# `noise_conditional_score`, now with the schedule as the model's time frame.
# Annealed Langevin then runs NCSN's sampler on a DDPM network.


# %%
digit_model, digit_schedule = train.load_or_train("digits")
n_digits = pick(36, 9)
x_T = torch.randn(n_digits, 1, 16, 16, generator=torch.Generator().manual_seed(5))
levels = pick(50, 8)
t0 = time.perf_counter()
digit_samples = langevin.sample_annealed_langevin(digit_model, x_T, digit_schedule, levels, n_steps_each=pick(5, 2),
                                                  step_size=2e-5, sigma_max=20.0,
                                                  generator=torch.Generator().manual_seed(6), progress=False)
print(f"{levels} noise levels x {pick(5, 2)} Langevin steps for {n_digits} digits in {time.perf_counter() - t0:.1f} s")
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
viz.image_grid(digit_samples.clamp(-1, 1), ax, nrow=int(math.sqrt(n_digits)),
               title="annealed Langevin with the Chapter 02 network")
plt.show()

# %% [markdown]
# Annealed Langevin needs many evaluations per noise level, and its quality
# depends on the step size and on how many levels there are. Chapter 04 turns
# the sequence of noise levels into a continuum, a stochastic differential
# equation, and gets samplers (reverse-time SDE, predictor-corrector, the
# probability-flow ODE) that use each evaluation more efficiently, as well as
# exact likelihoods.

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.0f} s")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercises
#
# Four kinds: **compute**, **derive** (pen and paper first, then code the
# result), **predict, then run** (write your prediction down *before* running)
# and **implement** (write a function the library has; the checker compares
# yours with it), plus open questions. A checkable answer goes where the cell
# says `None`; run the cell and the checker prints `Correct` or `Not yet` with a
# hint.
#
# **03.1** (compute) What is the score of $\mathcal N(\mu = 1.5, s = 0.5)$ at
# $x = 0.7$? A `float`.

# %% tags=["solution"]
answer_03_1 = -(0.7 - 1.5) / 0.5 ** 2
check("03.1", answer_03_1)

# %% [markdown]
# **03.2** (derive) Section 3 derived denoising score matching for the kernel
# $\mathcal N(x_0, \sigma^2 I)$. The DDPM forward process of Chapters 01 and 02
# uses the variance-preserving kernel $q(x_t\mid x_0) = \mathcal N(\sqrt{\bar\alpha}\,x_0, (1-\bar\alpha)I)$.
# Derive the regression target $\nabla_{x_t}\log q(x_t\mid x_0)$ for it, and write
# `dsm_target_vp(x_t, x0, alpha_bar)` (tensors `x_t`, `x0` of one shape, a
# float `alpha_bar`). How does it relate to the noise $\epsilon$ in
# $x_t = \sqrt{\bar\alpha}\,x_0 + \sqrt{1-\bar\alpha}\,\epsilon$?

# %% [markdown] tags=["solution"]
# *Solution.* $\log q(x_t\mid x_0) = -\|x_t - \sqrt{\bar\alpha}\,x_0\|^2 / (2(1-\bar\alpha)) + \text{const}$,
# so its gradient in $x_t$ is $-(x_t - \sqrt{\bar\alpha}\,x_0)/(1-\bar\alpha)$. With
# $x_t - \sqrt{\bar\alpha}\,x_0 = \sqrt{1-\bar\alpha}\,\epsilon$ this is
# $-\epsilon/\sqrt{1-\bar\alpha}$: the target is the noise, rescaled and
# negated, which is why Chapter 02's noise predictor is a score model.

# %% tags=["solution"]
def dsm_target_vp(x_t, x0, alpha_bar):
    return -(x_t - math.sqrt(alpha_bar) * x0) / (1 - alpha_bar)
check("03.2", dsm_target_vp)

# %% [markdown]
# **03.3** (derive) Langevin dynamics with step $\epsilon$ on $\mathcal N(0, s^2)$
# with its exact score is the linear chain $x' = (1 - \epsilon/s^2)x + \sqrt{2\epsilon}\,z$.
# Write `stationary_variance(s2, eps)`, the variance it settles at. What happens
# as $\epsilon \to 2 s^2$?

# %% [markdown] tags=["solution"]
# *Solution.* If $x$ has variance $v$ and is independent of $z$, then $x'$ has
# variance $(1-\epsilon/s^2)^2 v + 2\epsilon$. A stationary $v$ is a fixed point:
# $v\,\big(1 - (1-\epsilon/s^2)^2\big) = 2\epsilon$, so
# $v = 2\epsilon / \big(1 - (1-\epsilon/s^2)^2\big) = s^2 / (1 - \epsilon/(2s^2))$.
# It exceeds the target $s^2$ for every $\epsilon > 0$ (the bias that a
# Metropolis correction would remove) and tends to $s^2$ as $\epsilon \to 0$. As
# $\epsilon \to 2s^2$ the factor $|1 - \epsilon/s^2|$ reaches 1: the variance
# diverges and, beyond, the chain is unstable.

# %% tags=["solution"]
def stationary_variance(s2, eps):
    return s2 / (1 - eps / (2 * s2))
check("03.3", stationary_variance)

# %% [markdown]
# **03.4** (derive) *Tweedie's formula.* Let $x_t = \sqrt{\bar\alpha}\,x_0 + \sqrt{1-\bar\alpha}\,\epsilon$
# with $x_0 \sim p$ (any distribution) and $\epsilon \sim \mathcal N(0, I)$, and
# let $s(x_t) = \nabla\log p_t(x_t)$ be the score of the noised density.
# Express the posterior mean $\mathbb E[x_0 \mid x_t]$ through $x_t$, $s(x_t)$ and
# $\bar\alpha$ alone. (Start from $p_t(x_t) = \int q(x_t\mid x_0)\,p(x_0)\,dx_0$,
# differentiate under the integral and use exercise 03.2.) Then write
# `posterior_mean(x_t, score, alpha_bar)` for tensors `x_t`, `score` of one shape
# and a float `alpha_bar`, and relate it to section 4's final denoising step.

# %% [markdown] tags=["solution"]
# *Solution.* $\nabla p_t(x_t) = \int \nabla_{x_t} q(x_t\mid x_0)\,p(x_0)\,dx_0
# = \int q(x_t\mid x_0)\,p(x_0)\,\frac{-(x_t - \sqrt{\bar\alpha}\,x_0)}{1-\bar\alpha}\,dx_0$
# (03.2). Divide by $p_t(x_t)$: $q(x_t\mid x_0)p(x_0)/p_t(x_t) = p(x_0\mid x_t)$ by
# Bayes, so $s(x_t) = -\big(x_t - \sqrt{\bar\alpha}\,\mathbb E[x_0\mid x_t]\big)/(1-\bar\alpha)$.
# Solve for the posterior mean. In the $x_0 + \sigma\epsilon$ view (scale the
# state by $1/\sqrt{\bar\alpha}$, $\sigma^2 = (1-\bar\alpha)/\bar\alpha$) it reads
# $\mathbb E[x_0\mid \tilde x] = \tilde x + \sigma^2 s(\tilde x)$, the final step of
# section 4. The formula holds for *any* data distribution: the denoiser is the
# score, up to an affine map.

# %% tags=["solution"]
def posterior_mean(x_t, score, alpha_bar):
    return (x_t + (1 - alpha_bar) * score) / math.sqrt(alpha_bar)
check("03.4", posterior_mean)

# %% [markdown]
# **03.5** (predict, then run) Take the Gaussian $\mathcal N(0, s^2)$ with
# $s = 0.1$, the width of each component of `two`, and run plain Langevin with
# its exact score and step $\epsilon = 0.01$ (ten times section 2's step).
# *Before running*, predict the variance the chains settle at, and enter it.
# Then run `langevin.langevin` on 4,000 chains for 500 steps and measure.

# %% tags=["solution"]
s2, eps = 0.1 ** 2, 0.01
answer_03_5 = s2 / (1 - eps / (2 * s2))  # 03.3's formula: eps / s2 = 1, so x' = sqrt(2 eps) z
check("03.5", answer_03_5)

# %% tags=["solution"]
x = langevin.langevin(lambda x: -x / s2, torch.zeros(4000, 1), eps, 500,
                      generator=torch.Generator().manual_seed(0), progress=False)
print(f"measured variance: {x.var().item():.4f}")

# %% [markdown] tags=["solution"]
# *What the run shows.* At $\epsilon = s^2$ the drift exactly cancels the current
# position, $x' = \sqrt{2\epsilon}\,z$, so every step forgets the past and the
# variance is $2\epsilon = 2s^2$: twice the target's. A step that looks small in
# absolute terms is large against the width of the density, and the
# error of unadjusted Langevin is set by $\epsilon/s^2$. Annealed Langevin's
# $\epsilon_i \propto \sigma_i^2$ keeps that ratio fixed across levels.

# %% [markdown]
# **03.6** (implement) The library's `oracles.GaussianMixture.score` computes the
# exact score of a mixture. Write `mixture_score(x, means, weights, var)` for an
# isotropic mixture $\sum_k w_k \mathcal N(\mu_k, v I)$: `x` of shape `(B, D)`,
# `means` `(K, D)`, `weights` `(K,)`, `var` a float; return `(B, D)`. Use the
# formula of section 1, computing the responsibilities in log space
# (`torch.softmax` of the log-weights plus log-densities): why does that matter
# far from every mean? The checker compares yours with the library's.

# %% tags=["solution"]
def mixture_score(x, means, weights, var):
    diff = x[:, None, :] - means[None, :, :]                                 # (B, K, D)
    logits = torch.log(weights)[None, :] - 0.5 * (diff ** 2).sum(-1) / var  # (B, K); shared constants cancel
    r = torch.softmax(logits, dim=1)                                         # responsibilities
    return -(r[:, :, None] * diff).sum(1) / var
check("03.6", mixture_score)

# %% [markdown]
# **03.7** (open) Run plain Langevin on `two` for 10x and 100x more steps. Does
# the right-hand fraction move towards 0.8? Estimate how long a single crossing
# takes by starting all chains at $(-1, 0)$.
#
# **03.8** (open) In section 4, halve and double the number of noise levels and
# the steps per level at the same total budget. Which matters more for the
# recovered weight? Give mean and spread over seeds before you conclude.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
#
# * A. Hyvarinen. *Estimation of Non-Normalized Statistical Models by Score
#   Matching.* JMLR 6, 2005.
# * P. Vincent. *A Connection Between Score Matching and Denoising
#   Autoencoders.* Neural Computation 23(7), 2011.
# * Y. Song, S. Ermon. *Generative Modeling by Estimating Gradients of the Data
#   Distribution.* NeurIPS 2019 (NCSN, annealed Langevin dynamics).
# * G. O. Roberts, R. L. Tweedie. *Exponential convergence of Langevin
#   distributions and their discrete approximations.* Bernoulli 2(4), 1996.
# * A. Jolicoeur-Martineau, R. Piche-Taillefer, R. Tachet des Combes,
#   I. Mitliagkas. *Adversarial score matching and improved sampling for image
#   generation.* ICLR 2021 (the final denoising step).
# * Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole.
#   *Score-Based Generative Modeling through Stochastic Differential Equations.*
#   ICLR 2021 (Chapter 04).
