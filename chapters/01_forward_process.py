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
# # Chapter 01 - The forward process
#
# A diffusion model learns to undo a process that slowly turns data into noise.
# This chapter is about that *forward* process alone: no network, no training,
# only Gaussian noise added on purpose. By the end you will be able to
#
# * see a data set (a 2-D swiss roll, handwritten digits, a photograph) as
#   samples from a distribution $p_\text{data}$;
# * add Gaussian noise one step at a time, $q(x_t \mid x_{t-1})$, and watch that
#   distribution dissolve;
# * derive the closed form $q(x_t \mid x_0)$ that jumps to any step at once, and
#   check it numerically against the step-by-step chain;
# * compare the linear, cosine and sigmoid noise schedules through
#   $\bar\alpha_t$ and the signal-to-noise ratio;
# * say, with a number, how close the last step $x_T$ is to $\mathcal N(0, I)$
#   for each schedule;
# * drive the explorers: a slider for $t$ on images and point clouds.
#
# The library code lives in `ddlearn/`; the chapter shows it with
# `show_source` rather than copying it, and imports it.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import data, forward, schedules, viz, widgets
from ddlearn.config import generator, is_fast, pick
from ddlearn.notebook import check, show_source

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 1. Data is a distribution
#
# A generative model never sees $p_\text{data}$ itself, only samples from it.
# Here are three data sets the book uses, all offline: scikit-learn's swiss
# roll (points in the plane), its 1,797 handwritten digits (8x8, upsampled to
# 16x16) and scikit-image's `camera` photograph. Images are tensors of shape
# `(B, C, H, W)` with values in $[-1, 1]$; point clouds have shape `(N, 2)`.

# %%
roll = data.swiss_roll(pick(2000, 800))
digits = data.digits("train")
camera = data.image("camera", 128)
print("swiss roll", tuple(roll.shape), "| digits", tuple(digits.shape), "| camera", tuple(camera.shape))

fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), layout="constrained")
viz.scatter(roll, axes[0], lim=1.6, title="swiss roll: 2-D samples")
viz.image_grid(digits[:36], axes[1], nrow=6, title="digits: 16x16 samples")
viz.image_grid(camera, axes[2], title="camera: one 128x128 sample")
viz.hist_vs_normal(camera, axes[3], title="camera pixel values vs N(0, 1)")
plt.show()

# %% [markdown]
# Each picture is a point in a space of $16 \cdot 16 = 256$ or $128 \cdot 128 =
# 16{,}384$ dimensions. The last panel shows one view of the photo's
# distribution: its pixel values, bounded in $[-1, 1]$, lumpy, nothing like the
# bell curve $\mathcal N(0, 1)$ drawn on top. The forward process will take
# *any* such distribution to that bell curve, in every dimension at once.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 2. Noise, one step at a time
#
# The forward process of Sohl-Dickstein et al. (2015) and Ho et al. (2020) is a
# Markov chain that, at step $t$, shrinks the current sample a little and adds a
# little Gaussian noise:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big),
# \qquad x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t,\quad \epsilon_t \sim \mathcal N(0, I).$$
#
# The variances $\beta_t \in (0, 1)$ form the **noise schedule**.
#
# **Indices, once for the whole book.** The maths follows the papers: the steps
# are $t = 1, \dots, T$, $x_0$ is the data, $x_1$ the first noisy latent and
# $x_T$ the noisiest; step $t$ adds variance $\beta_t$. Python arrays start at
# 0, so the code keeps step $t$ at **index $i = t - 1$**: `schedule.betas[i]` is
# $\beta_{i+1}$, `schedule.alpha_bars[i]` is $\bar\alpha_{i+1}$, and every
# function that takes a timestep (`q_step`, `q_sample`, a network
# `model(x, i)`, a sampler's callback) takes the index $i \in \{0, \dots, T-1\}$,
# as diffusers' `alphas_cumprod[i]` does. So `q_sample(x0, i)` draws
# $x_{i+1}$, and `q_sample(x0, T - 1)` draws $x_T$. Plots and tables in this book
# label the papers' $t$ where they sit next to the maths and say "index" where
# they show the code's $i$ (the explorers' sliders count indices);
# `ddlearn/schedules.py` states the same rule. One step in the library:

# %%
show_source(forward.q_step)

# %% [markdown]
# Why shrink by $\sqrt{1-\beta_t}$ instead of only adding noise? If $x_{t-1}$ has
# variance 1 then $x_t$ has variance $(1-\beta_t) + \beta_t = 1$: the process is
# **variance preserving**. Without the shrink the variance would grow by
# $\sum_t \beta_t \approx 10$ over the 1,000 steps of Ho et al.'s schedule. Let us
# run the chain on the swiss roll with that linear schedule ($\beta$ from $10^{-4}$
# to $0.02$) and look at a few steps (the code keeps step $t$ under index $t-1$).

# %%
linear = schedules.linear()  # T = 1000, Ho et al. 2020
shown = [1, 20, 50, 100, 200, 400, 1000]  # steps t of the maths
chain = forward.noise_chain(roll, linear, keep=[t - 1 for t in shown], generator=generator(0))

fig, axes = plt.subplots(1, len(shown), figsize=(2.1 * len(shown), 2.4), layout="constrained")
for ax, t in zip(axes, shown):
    viz.scatter(chain[t - 1], ax, lim=3.2, s=1)
    ax.set_title(f"t = {t}", fontsize="small")
    ax.set_xticks([]); ax.set_yticks([])
plt.show()

# %% [markdown]
# The roll blurs, shrinks towards the origin and, long before the last step,
# becomes a round cloud. Its spread stays bounded, as the variance argument said.
# The same chain without the shrink, for comparison of the spread. Noise only
# adds variances, so each coordinate should end with variance
# $\mathrm{Var}(x_0) + \sum_t \beta_t$, with the data's variance measured, not assumed:

# %%
def chain_without_shrink(x, schedule, steps, gen):
    for i in range(steps):
        x = x + schedule.betas[i].sqrt().float() * torch.randn(x.shape, generator=gen)
    return x

grown = chain_without_shrink(roll, linear, linear.T, generator(0))
var_data = roll.double().var(0)  # per coordinate
predicted = (var_data + linear.betas.sum()).sqrt()
print(f"data: std per coordinate {roll.std(0).numpy().round(3)}, variance {var_data.numpy().round(3)}")
print(f"std at t = T, variance preserving (with shrink): {chain[linear.T - 1].std(0).numpy().round(3)}")
print(f"std at t = T, noise only (no shrink):            {grown.std(0).numpy().round(3)}"
      f"   (predicted sqrt(Var(x_0) + sum of betas) = {predicted.numpy().round(3)})")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 3. The closed form $q(x_t \mid x_0)$
#
# Running a thousand steps to reach $x_{1000}$ would make training slow: every
# training example needs an $x_t$ at a random $t$. Fortunately two Gaussian steps
# merge into one Gaussian step from $x_0$ (exercise 01.2 asks you to show it and
# to find its variance), and by induction so does the whole chain. Write
# $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$; then
#
# $$q(x_t \mid x_0) = \mathcal N\big(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon .$$
#
# $\sqrt{\bar\alpha_t}$ is how much of the data is left; $\sqrt{1-\bar\alpha_t}$ how
# much noise came in. That is all `q_sample` does (Ho et al. 2020, eq. 4; it takes
# the index $t - 1$ and reads $\bar\alpha_t$ from `alpha_bars[t - 1]`):

# %%
show_source(forward.q_sample, docstring=False)

# %% [markdown]
# A derivation is a claim; let us test it. We take four points $x_0$, copy each
# $N$ times, run the **chain** step by step, and compare the mean and variance of
# the chain's $x_t$ with the closed form's $\sqrt{\bar\alpha_t}x_0$ and
# $1-\bar\alpha_t$. With $N$ samples the sample mean has standard error
# $\sqrt{(1-\bar\alpha_t)/N}$ and the sample variance about
# $(1-\bar\alpha_t)\sqrt{2/(N-1)}$; we call the two agreeing when every gap is
# under 5 standard errors.

# %%
n_copies = pick(20_000, 2_000)
x0_points = roll[:4].double()
x0_many = x0_points.repeat_interleave(n_copies, dim=0)
check_t = [10, 100, 300, 1000]  # steps t; the code's indices are t - 1
chain_many = forward.noise_chain(x0_many, linear, keep=[t - 1 for t in check_t], generator=generator(1))

rows, worst = [], 0.0
for t in check_t:
    ab = float(linear.alpha_bars[t - 1])
    xt = chain_many[t - 1].reshape(4, n_copies, 2)
    mean_gap = (xt.mean(1) - math.sqrt(ab) * x0_points).abs().max().item()
    var_gap = (xt.var(1) - (1 - ab)).abs().max().item()
    se_mean, se_var = math.sqrt((1 - ab) / n_copies), (1 - ab) * math.sqrt(2 / (n_copies - 1))
    worst = max(worst, mean_gap / se_mean, var_gap / se_var)
    rows.append((t, math.sqrt(ab), 1 - ab, mean_gap, se_mean, var_gap, se_var))

print(f"N = {n_copies} chain runs per x0, 4 points x0, linear schedule")
print(f"{'t':>4} {'sqrt(abar)':>10} {'1-abar':>8} | {'max|mean gap|':>13} {'SE':>8} | {'max|var gap|':>12} {'SE':>8}")
for t, sab, v, mg, sm, vg, sv in rows:
    print(f"{t:>4} {sab:>10.4f} {v:>8.4f} | {mg:>13.5f} {sm:>8.5f} | {vg:>12.5f} {sv:>8.5f}")
print(f"largest gap: {worst:.2f} standard errors")

# %%
# NBVAL_CHECK_OUTPUT
print("chain and closed form agree within 5 standard errors:", worst < 5)

# %% [markdown]
# Moments are not the whole story, so here is the shape too: standardise the
# chain's $x_{300}$ by the closed form, $(x_t - \sqrt{\bar\alpha_t}x_0)/\sqrt{1-\bar\alpha_t}$,
# which should be exactly $\mathcal N(0, 1)$ if the closed form is right, and do
# the same on the camera photo, whose 16,384 pixels are 16,384 independent
# chains.

# %%
t = 300
ab = float(linear.alpha_bars[t - 1])
z_points = (chain_many[t - 1] - math.sqrt(ab) * x0_many) / math.sqrt(1 - ab)
cam_chain = forward.noise_chain(camera, linear, keep=[t - 1], generator=generator(2))[t - 1]
z_camera = (cam_chain - math.sqrt(ab) * camera) / math.sqrt(1 - ab)
cam_closed = forward.q_sample(camera, t - 1, schedule=linear, generator=generator(3))


def show_unclipped(ax, img, title):
    """One image on its own grey scale (its min to its max), with a colour bar: nothing is clipped."""
    im = ax.imshow(img[0, 0].numpy(), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize="small")
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), layout="constrained")
show_unclipped(axes[0], cam_chain, f"camera, chain to t={t}")
show_unclipped(axes[1], cam_closed, f"camera, closed form at t={t}")
viz.hist_vs_normal(z_points, axes[2], title="standardised chain, points")
viz.hist_vs_normal(z_camera, axes[3], title="standardised chain, camera")
plt.show()
print(f"standardised chain: points mean {z_points.mean():+.4f} std {z_points.std():.4f};"
      f" camera mean {z_camera.mean():+.4f} std {z_camera.std():.4f}")

# %% [markdown]
# The two photos are different draws of the same distribution, and the
# standardised chain is the standard normal. From here on we only use the closed
# form. (The photos are drawn on their own grey scale, with a colour bar: at
# $t = 300$ the values of $x_t$ run far outside $[-1, 1]$. Section 6 shows what
# clipping them for display does.)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 4. Schedules: linear, cosine, sigmoid
#
# The schedule decides how fast information is destroyed. Three common choices,
# all in `ddlearn.schedules`:
#
# * **linear** (Ho et al. 2020): $\beta_t$ linear from $10^{-4}$ to $0.02$.
# * **cosine** (Nichol & Dhariwal 2021): define $\bar\alpha$ directly,
#   $\bar\alpha(u) = f(u)/f(0)$ with $f(u) = \cos^2\!\big(\tfrac{u + s}{1 + s}\tfrac{\pi}{2}\big)$,
#   $u = t/T$, $s = 0.008$, and read off $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$,
#   clipped at 0.999.
# * **sigmoid** (Chen 2023): $\bar\alpha$ follows a shifted, rescaled sigmoid; a
#   temperature $\tau$ moves where the noise comes in.
#
# Here is the cosine schedule as the library builds it:

# %%
show_source(schedules.cosine)

# %% [markdown]
# The natural way to compare schedules is the **signal-to-noise ratio**
# (Kingma et al. 2021): in $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon$
# the signal has power $\bar\alpha_t$ and the noise $1-\bar\alpha_t$, so
#
# $$\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1-\bar\alpha_t}, \qquad
# \lambda_t = \log \mathrm{SNR}(t), \qquad \bar\alpha_t = \operatorname{sigmoid}(\lambda_t).$$
#
# Kingma et al. show that the continuous-time diffusion loss depends on the
# schedule only through its end points $\lambda_\text{min}, \lambda_\text{max}$; what the
# schedule changes is how the *steps* (and, in training, the samples of $t$) are
# spread over noise levels. Chen (2023) argues the right schedule depends on the
# image size, since larger images carry more redundant signal at the same SNR.

# %%
scheds = [schedules.linear(), schedules.cosine(), schedules.sigmoid(),
          schedules.sigmoid(start=0.0, end=3.0, tau=0.7)]
labels = ["linear", "cosine", "sigmoid (-3, 3, 1)", "sigmoid (0, 3, 0.7)"]

fig, axes = plt.subplots(1, 3, figsize=(14, 3.4), layout="constrained")
for s, label in zip(scheds, labels):
    ts = np.arange(1, s.T + 1)  # steps t = 1..T (index t - 1)
    axes[0].plot(ts, s.betas.numpy(), label=label)
    axes[1].plot(ts, s.alpha_bars.numpy(), label=label)
    axes[2].plot(ts, s.log_snr.numpy(), label=label)
axes[0].set(xlabel="t", ylabel=r"$\beta_t$", yscale="log", title="betas")
axes[1].set(xlabel="t", ylabel=r"$\bar\alpha_t$", title="signal power left")
axes[2].set(xlabel="t", ylabel=r"$\log\,\mathrm{SNR}$", title="log signal-to-noise ratio")
axes[2].axhline(0, color="gray", lw=0.5)
axes[1].legend(fontsize="small")
plt.show()

# %% [markdown]
# The linear schedule's $\bar\alpha_t$ collapses early: its log-SNR dives below
# zero around $t \approx 260$ and roughly the last quarter of its steps are nearly pure
# noise. The cosine schedule keeps log-SNR close to a straight line through the
# middle, which is what Nichol & Dhariwal were after. Some numbers, measured on
# these schedules: the step where SNR = 1 (`t_from_log_snr(0)` returns the
# code's fractional index, so $t$ is that plus one), the log-SNR range, and the
# share of steps at which less than a twentieth of the signal amplitude is left
# ($\sqrt{\bar\alpha_t} < 0.05$).

# %%
print(f"{'schedule':<22} {'t at SNR=1':>10} {'logSNR at t=1':>14} {'at t=T':>9} {'steps with sqrt(abar)<0.05':>27}")
for s, label in zip(scheds, labels):
    t_snr1 = float(s.t_from_log_snr(0.0)) + 1  # index -> step
    share = float((s.alpha_bars.sqrt() < 0.05).double().mean())
    print(f"{label:<22} {t_snr1:>10.1f} {float(s.log_snr[0]):>14.2f} {float(s.log_snr[-1]):>9.2f} {share:>26.1%}")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 5. How close is $x_T$ to $\mathcal N(0, I)$?
#
# Sampling (Chapter 02) starts from $x_T \sim \mathcal N(0, I)$, pretending that is
# what the forward process produced. It is not exactly: $q(x_T \mid x_0)$ still
# has mean $\sqrt{\bar\alpha_T}\,x_0$ and variance $1-\bar\alpha_T$. Per dimension
# the gap is
#
# $$\mathrm{KL}\big(q(x_T\mid x_0)\,\|\,\mathcal N(0, 1)\big)
# = \tfrac12\big(\bar\alpha_T x_0^2 + (1-\bar\alpha_T) - 1 - \log(1-\bar\alpha_T)\big),$$
#
# and, averaged over the data, it bounds the KL between the true marginal
# $q(x_T)$ and $\mathcal N(0, I)$ (KL is convex). It is the prior term $L_T$ of
# the variational bound in Ho et al. (2020). Measured for each schedule, on the
# digits and on the photo, with the leftover signal scale $\sqrt{\bar\alpha_T}$:

# %%
def kl_to_standard_normal(x0, schedule):
    """Mean over dimensions of KL(q(x_T | x_0) || N(0, 1)) in nats, averaged over the data."""
    ab = float(schedule.alpha_bars[-1])
    return float((0.5 * (ab * x0.double() ** 2 + (1 - ab) - 1 - math.log(1 - ab))).mean())

print(f"{'schedule':<22} {'sqrt(abar_T)':>12} {'KL/dim digits':>14} {'KL/dim camera':>14} {'KL camera, all dims':>20}")
for s, label in zip(scheds, labels):
    d = camera[0].numel()
    print(f"{label:<22} {math.sqrt(float(s.alpha_bars[-1])):>12.2e} {kl_to_standard_normal(digits, s):>14.2e}"
          f" {kl_to_standard_normal(camera, s):>14.2e} {kl_to_standard_normal(camera, s) * d:>20.2e}")

# %% [markdown]
# The linear schedule leaves $\sqrt{\bar\alpha_T} \approx 0.006$ of the signal
# amplitude. Per dimension the KL is tiny (about $\tfrac12\bar\alpha_T\,\mathbb E[x_0^2]$),
# but it adds up over dimensions: the table puts it near 0.1 nats over the
# 16,384 pixels of the photo for the linear schedule, about $10^4$ times more
# than for cosine, which clips its last $\beta$ at 0.999 and ends with
# $\sqrt{\bar\alpha_T} \approx 5 \times 10^{-5}$. Small as it is, Lin et al.
# (2024) show that a nonzero terminal SNR leaks low-frequency information (the
# mean brightness of an image, for instance) that a trained model learns to rely
# on and then never gets from pure noise at sampling time; they rescale schedules
# to a zero terminal SNR.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## 6. Explore
#
# The explorers below draw images the way images are always drawn: values in
# $[-1, 1]$ become grey levels, and **anything outside is clipped** to black or
# white. The data live in $[-1, 1]$, but $x_t$ does not: Gaussian noise is
# unbounded. Once the noise dominates, about a third of the pixels lie outside
# the range (for pure noise $P(|\epsilon| > 1) = 0.32$) and are drawn pure black
# or white, so the clipped picture looks like salt-and-pepper noise, which
# Gaussian noise is not. The same $x_t$ both ways, and how much of it clipping
# hides:

# %%
i = 250  # the explorer's index below; the step is t = i + 1
x_t = forward.q_sample(camera, i, schedule=linear, generator=generator(4))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained")
viz.image_grid(x_t, axes[0], title=f"x_t at t = {i + 1}, clipped to [-1, 1] (as displayed)")
show_unclipped(axes[1], x_t, "the same x_t on its own grey scale")
axes[2].hist(x_t.flatten().numpy(), bins=80, density=True, color="0.4")
axes[2].axvspan(-1, 1, color="C1", alpha=0.2, label="[-1, 1]: drawn as grey levels")
axes[2].set(xlabel="value of $x_t$", title="values of $x_t$")
axes[2].legend(fontsize="small")
plt.show()
for t in (50, 251, 500, 1000):
    x = forward.q_sample(camera, t - 1, schedule=linear, generator=generator(4))
    print(f"t = {t:>4}: {(x.abs() > 1).double().mean().item():6.1%} of the pixels of x_t lie outside [-1, 1]")

# %% [markdown]
# Move the slider (or press play). The explorer draws $x_t$ with **one fixed
# noise** $\epsilon$, so you see the same noise growing while the data fades;
# next to it the histogram of the values of $x_t$ against $\mathcal N(0, 1)$
# (unclipped), and where $t$ sits on the $\bar\alpha_t$ and log-SNR curves. The
# image is clipped to $[-1, 1]$ as above, and the slider and titles count the
# code's index $t - 1$. In the HTML book, or on a code host, you see a still
# strip at a few indices instead; open the notebook in Jupyter to move it.

# %%
widgets.noising_explorer(camera, linear, t=250)

# %%
widgets.noising_explorer(digits[:16], schedules.cosine(), t=400, nrow=4)

# %%
widgets.noising_explorer(roll, schedules.cosine(), t=100)

# %% [markdown]
# The same photo, the same noise, the same index, three schedules. At index 500
# ($t = 501$) the linear schedule has all but erased the cameraman; cosine and
# sigmoid still show him.

# %%
widgets.schedule_explorer(data.image("camera", 96), ("linear", "cosine", "sigmoid"), t=500)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Exercises
#
# Four kinds: **compute** (read a number off the library), **derive** (pen and
# paper first, then code the result), **predict, then run** (write your
# prediction down *before* running the experiment) and **implement** (write a
# function the library has; the checker compares yours with it), plus open
# questions. A checkable answer goes where the cell says `None`; run the cell and
# the checker in `ddlearn.exercises` prints `Correct` or `Not yet` with a hint.
# (This is the student view; `ddlearn student` writes it for every chapter.)
#
# **01.1** (compute) With the linear schedule (`schedules.linear()`, T = 1000), at
# which step does the signal scale $\sqrt{\bar\alpha_t}$ first fall below 0.1?
# Answer with the code's index (the position in `alpha_bars`, that is $t - 1$),
# an `int`.

# %% tags=["solution"]
answer_01_1 = int((schedules.linear().alpha_bars.sqrt() < 0.1).nonzero()[0])
check("01.1", answer_01_1)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.2** (derive) Section 3 claimed that two forward steps, with variances
# $\beta_1$ then $\beta_2$, are one Gaussian step from $x_0$. Show it: write
# $x_2$ in terms of $x_0$ and the two noises, and find the variance $\beta$ of
# the single step that gives the same distribution. Then write
# `merged_beta(beta1, beta2)` returning it.

# %% [markdown] tags=["solution"]
# *Solution.* $x_1 = \sqrt{1-\beta_1}\,x_0 + \sqrt{\beta_1}\,\epsilon_1$ and
# $x_2 = \sqrt{1-\beta_2}\,x_1 + \sqrt{\beta_2}\,\epsilon_2
#      = \sqrt{(1-\beta_1)(1-\beta_2)}\,x_0 + \sqrt{(1-\beta_2)\beta_1}\,\epsilon_1 + \sqrt{\beta_2}\,\epsilon_2$.
# The two noise terms are independent zero-mean Gaussians, so their sum is one
# Gaussian whose variance is the sum of theirs, $(1-\beta_2)\beta_1 + \beta_2$.
# A single step $\sqrt{1-\beta}\,x_0 + \sqrt\beta\,\epsilon$ matches both the
# mean and the variance when $1 - \beta = (1-\beta_1)(1-\beta_2)$, and then indeed
# $\beta = (1-\beta_2)\beta_1 + \beta_2 = \beta_1 + \beta_2 - \beta_1\beta_2$:
# variances do not add, the *retained signal powers* $1-\beta$ multiply. By
# induction this is the closed form, $1 - \bar\alpha_t = 1 - \prod_s(1-\beta_s)$.

# %% tags=["solution"]
def merged_beta(beta1, beta2):
    return 1 - (1 - beta1) * (1 - beta2)
check("01.2", merged_beta)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.3** (implement) Training a diffusion model (Chapter 02) means predicting
# the noise $\epsilon$ from $x_t$. Given $x_0$ and $x_t$ the noise is determined.
# Write `recover_noise(x0, x_t, t, schedule)` for batches `x0`, `x_t` of shape
# `(B, ...)` and code indices `t` of shape `(B,)` (as everywhere in the
# library); `schedule.alpha_bar(t)` returns $\bar\alpha$ at each index, a float64
# tensor of shape `(B,)`. The library has this function under another name in
# `ddlearn/param.py` (the one place that converts between parametrisations);
# write yours without it: the checker compares the two.

# %% tags=["solution"]
def recover_noise(x0, x_t, t, schedule):
    ab = schedule.alpha_bar(t).to(x0.dtype).reshape(-1, *[1] * (x0.ndim - 1))
    return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
check("01.3", recover_noise)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.4** (compute) Section 4's table gives the step where each schedule's
# SNR is 1. At which (possibly fractional) code index does the cosine schedule
# (T = 1000) reach SNR = 0.1, ten times more noise power than signal power?
# Compute it from the schedule, not from the plot; a `float`.

# %% tags=["solution"]
answer_01_4 = float(schedules.cosine().t_from_log_snr(math.log(0.1)))
check("01.4", answer_01_4)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.5** (compute) For the linear schedule (T = 1000) and a single pixel with
# $x_0 = 2$, compute $\mathrm{KL}\big(q(x_T\mid x_0)\,\|\,\mathcal N(0, 1)\big)$ in
# nats (a `float`). Why would $x_0 = 1$ give a suspiciously simple answer?

# %% tags=["solution"]
ab_T = float(schedules.linear().alpha_bars[-1])
answer_01_5 = 0.5 * (ab_T * 2.0 ** 2 + (1 - ab_T) - 1 - math.log(1 - ab_T))
check("01.5", answer_01_5)

# %% [markdown] tags=["solution"]
# *Solution, second part.* With $x_0 = 1$ the mean term $\bar\alpha_T x_0^2$ and the
# variance term $(1 - \bar\alpha_T) - 1$ cancel, leaving $-\tfrac12\log(1-\bar\alpha_T)$:
# an answer that no longer depends on where the pixel started, so a mistake in
# the mean term would go unnoticed.

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.6** (derive) Generalise the closed form: for two steps $1 \le s < t$,
# what is $q(x_t \mid x_s)$? It is Gaussian, $\mathcal N(c\,x_s, v I)$; derive
# $c$ and $v$ in terms of $\bar\alpha_s$ and $\bar\alpha_t$, then write
# `transition(alpha_bar_s, alpha_bar_t)` returning the pair `(c, v)`. Check your
# formula on the two ends: $s = t$ and $x_s = x_0$.

# %% [markdown] tags=["solution"]
# *Solution.* From $x_s$ the chain runs the steps $s+1, \dots, t$, each
# $x_r = \sqrt{\alpha_r}\,x_{r-1} + \sqrt{1-\alpha_r}\,\epsilon_r$. Exercise 01.2's
# argument, repeated, merges them into one step whose retained signal power is
# the product of the $\alpha_r$ over $r = s+1, \dots, t$, that is
# $\bar\alpha_t/\bar\alpha_s$. So $q(x_t\mid x_s) = \mathcal N\big(\sqrt{\bar\alpha_t/\bar\alpha_s}\;x_s,\ (1 - \bar\alpha_t/\bar\alpha_s)I\big)$.
# At $s = t$ it is the identity ($c = 1$, $v = 0$); setting $\bar\alpha_s = 1$
# (that is, $x_s = x_0$) gives back $q(x_t\mid x_0)$. Chapter 04 meets the same
# ratio as the transition kernel of the variance-preserving SDE.

# %% tags=["solution"]
def transition(alpha_bar_s, alpha_bar_t):
    ratio = alpha_bar_t / alpha_bar_s
    return math.sqrt(ratio), 1 - ratio
check("01.6", transition)

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.7** (predict, then run) Section 2 ran the chain *without* the shrink on
# the linear schedule and predicted the spread it ends with. Predict, before
# running anything, the variance that the noise alone adds over all 1,000 steps
# when the chain without shrink runs on the **cosine** schedule instead: will it
# be larger or smaller than with the linear schedule, and by how much? Enter
# your number, then check it by running the chain without shrink on the cosine
# schedule, starting from $x_0 = 0$ (so that all the variance is the noise's).

# %% tags=["solution"]
cosine = schedules.cosine()
answer_01_7 = float(cosine.betas.sum())  # the prediction: independent noises add their variances
check("01.7", answer_01_7)

# %% tags=["solution"]
# the run: the chain without shrink from x_0 = 0, 20,000 copies of one coordinate
gen = generator(7)
x = torch.zeros(20_000, dtype=torch.float64)
for beta in cosine.betas:
    x = x + beta.sqrt() * torch.randn(x.shape, generator=gen, dtype=torch.float64)
print(f"variance measured over 20,000 runs: {x.var():.2f}")

# %% [markdown] tags=["solution"]
# *What the run shows.* The cosine schedule adds *more* variance than the linear
# one, although its $\bar\alpha_t$ falls more gently through most of the steps:
# its last few $\beta_t$ are large (the last is clipped at 0.999), and a sum of
# variances is dominated by its largest terms. The measured variance is within
# two standard errors of the prediction (a variance estimated from $n$ Gaussian
# runs has a standard error of $\sqrt{2/n}$ of itself: $1\%$ for $n = 20{,}000$).

# %% [markdown] slideshow={"slide_type": "subslide"}
# **01.8** (open) Using `schedules.sigmoid(start=..., end=..., tau=...)`, find
# settings whose log-SNR curve is closest to a straight line between its own end
# points, and compare with the cosine schedule. Does $\tau$ matter more than
# `start`/`end`? Say how you measured "closest".

# %% tags=["solution"]
def largest_bend(s):
    """Largest gap between the log-SNR curve and the straight line through its end points."""
    lam = s.log_snr.double()
    line = torch.linspace(float(lam[0]), float(lam[-1]), s.T, dtype=torch.float64)
    return float((lam - line).abs().max())

print(f"{'schedule':<28} {'largest gap to a straight line':>30}")
print(f"{'cosine':<28} {largest_bend(schedules.cosine()):>30.2f}")
for start, end, tau in [(-3, 3, 0.5), (-3, 3, 1.0), (-3, 3, 2.0), (0, 3, 0.7), (0, 3, 1.0), (-1, 3, 1.5)]:
    print(f"{f'sigmoid({start}, {end}, {tau})':<28} "
          f"{largest_bend(schedules.sigmoid(start=start, end=end, tau=tau)):>30.2f}")

# %% [markdown] tags=["solution"]
# *One way to answer.* "Closest" here is the largest gap, in log-SNR, between
# the curve and the straight line through its end points (a mean squared gap is
# another choice; say which you used). Compare the rows that change only $\tau$
# with those that change only `start`/`end`. By this measure every sigmoid
# setting in the table bends by 9.7 to 9.8 in log-SNR, less than the cosine
# schedule (13.3), and neither $\tau$ nor `start`/`end` moves it by more than 0.1
# over these settings. Every curve bends most near its ends, where it turns to
# reach $\bar\alpha = 1$ and $0$, so a measure of the middle steps alone may rank
# them differently: try it.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## References
#
# * J. Sohl-Dickstein, E. Weiss, N. Maheswaranathan, S. Ganguli. *Deep
#   Unsupervised Learning using Nonequilibrium Thermodynamics.* ICML 2015.
# * J. Ho, A. Jain, P. Abbeel. *Denoising Diffusion Probabilistic Models.*
#   NeurIPS 2020 (eq. 4: the closed form; Sec. 4: the linear schedule).
# * A. Nichol, P. Dhariwal. *Improved Denoising Diffusion Probabilistic Models.*
#   ICML 2021 (Sec. 3.2: the cosine schedule).
# * D. P. Kingma, T. Salimans, B. Poole, J. Ho. *Variational Diffusion Models.*
#   NeurIPS 2021 (the signal-to-noise ratio view).
# * T. Chen. *On the Importance of Noise Scheduling for Diffusion Models.*
#   arXiv:2301.10972, 2023 (the sigmoid schedule; resolution and SNR).
# * S. Lin, B. Liu, J. Li, X. Yang. *Common Diffusion Noise Schedules and Sample
#   Steps are Flawed.* WACV 2024 (zero terminal SNR).

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s ({'fast' if is_fast() else 'full'} mode)")
