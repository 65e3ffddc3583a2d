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
# # Chapter 06 - Guidance and inverse problems
#
# A trained diffusion model samples from $p(x)$. Most uses want something
# narrower: a digit *of a given class*, or an image *that agrees with a
# measurement* $y$ (a photo with a hole, a low-resolution or blurred picture).
# Both are the same move: add to the model's score the gradient of a
# log-likelihood. By the end of this chapter you will be able to
#
# * steer a model towards a class with **classifier guidance** (a noise-aware
#   classifier's gradient) and **classifier-free guidance** (one network
#   trained with and without the label), and say what the *guidance scale* buys
#   and costs, with numbers: class accuracy and Frechet digit distance;
# * write a measurement $y = \mathcal A(x) + \sigma_y n$ as an operator with a
#   forward map, an adjoint and a pseudo-inverse (masks, downsampling, blur);
# * compute the **exact posterior** $p(x \mid y)$ of a Gaussian-mixture prior
#   and measure how far two popular approximations land from it: **DPS**
#   (gradient guidance through the predicted clean image) and the
#   **null-space projection** of DDNM;
# * restore held-out digits (inpainting, 4x super-resolution, deblurring) with
#   several posterior samples per input, next to classical baselines;
# * say what "guidance on $x_t$" versus "guidance on the predicted $x_0$"
#   means: the distinction Chapter 07 (GDP) is built on.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import wasserstein_distance

from ddlearn import data, guidance, metrics, operators, oracles, pretrained, recipes, schedules, train, viz, widgets
from ddlearn.config import is_fast, pick
from ddlearn.notebook import check, show_source
from ddlearn.restoration import (classical, consistency_psnr, exact_posterior, posterior_bias, sample_ddnm,
                                 sample_dps, sample_guided)
from ddlearn.samplers import sample_ddim

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# %% [markdown]
# ## 1. Guidance tilts the score
#
# Bayes' rule for a class $c$, differentiated in $x_t$ (the normaliser $p(c)$
# does not depend on $x_t$):
#
# $$\nabla_{x_t}\log p_t(x_t \mid c) = \nabla_{x_t}\log p_t(x_t) + \nabla_{x_t}\log p_t(c \mid x_t).$$
#
# The first term is what an unconditional model already gives us, through
# $\epsilon = -\sqrt{1-\bar\alpha_t}\,\nabla\log p_t$ (`ddlearn.param`). The
# second is the gradient of a classifier that looks at **noisy** inputs $x_t$.
# Guidance multiplies that second term by a **scale** $\gamma$, which samples
# (approximately) from $p_t(x_t)\,p_t(c\mid x_t)^\gamma$: $\gamma=0$ ignores the
# class, $\gamma=1$ is the true conditional, $\gamma>1$ exaggerates it.
#
# *Classifier guidance* (Dhariwal & Nichol 2021) trains a separate noise-aware
# classifier $p_\phi(c\mid x_t, t)$:
#
# $$\tilde\epsilon = \epsilon_\theta(x_t, t) - \gamma\sqrt{1-\bar\alpha_t}\;\nabla_{x_t}\log p_\phi(c\mid x_t, t).$$
#
# *Classifier-free guidance* (Ho & Salimans 2022) trains one network on
# labelled data, replacing the label by a "null" class at random (`digits_cfg`'s recipe:
# `p_uncond=0.15`), so it
# predicts both $\epsilon(x_t, t, c)$ and $\epsilon(x_t, t, \varnothing)$. Their
# difference is $-\sqrt{1-\bar\alpha_t}\,\nabla\log p_t(c\mid x_t)$, so
#
# $$\tilde\epsilon = \epsilon(x_t, t, \varnothing) + \gamma\,\big(\epsilon(x_t, t, c) - \epsilon(x_t, t, \varnothing)\big).$$
#
# ddlearn uses this one scale convention for both: `scale=0` is unconditional,
# `scale=1` conditional. (The paper writes $(1+w)\epsilon_c - w\,\epsilon_u$
# with its own $w$; exercise 06.1 relates the two.) Both wrappers return a plain
# `model(x_t, t)`, so every sampler of Chapters 02-05 uses them unchanged.

# %%
show_source(guidance.ClassifierGuidance.forward)

# %%
show_source(guidance.ClassifierFreeGuidance.forward)

# %% [markdown]
# On a Gaussian mixture everything is exact: the Bayes classifier of the noisy
# mixture is known in closed form (`guidance.MixtureClassifier`), and so is each
# component's own eps. Classifier guidance with the exact classifier at scale 1
# therefore *is* the component's eps, to machine precision:

# %%
mix = oracles.named_mixture("ring8")
sch = schedules.linear(1000)
clf_exact = guidance.MixtureClassifier(mix, sch)
x = torch.randn(5, 2, generator=gen(0), dtype=torch.float64)
t = torch.full((5,), 300.0)
guided = guidance.classifier_guidance(mix.eps_model(sch), clf_exact, 2, 1.0, sch)
component = guidance.MixtureConditionalEps(mix, sch)
print("max |guided eps - component-2 eps| =",
      f"{(guided(x, t) - component(x, t, y=torch.full((5,), 2))).abs().max():.2e}")

# %% [markdown]
# Now sample the ring with guidance towards component 0 (the one at angle 0) at
# several scales, from the same starting noise, with DDIM (Chapter 05):

# %%
n2d = pick(1000, 200)
x_T = torch.randn(n2d, 2, generator=gen(1), dtype=torch.float64)
scales_2d = (0.0, 1.0, 4.0)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
for ax, s in zip(axes, scales_2d):
    m = guidance.classifier_guidance(mix.eps_model(sch), clf_exact, 0, s, sch)
    pts = sample_ddim(m, x_T, sch, pick(50, 15), progress=False)
    share = (mix.responsibilities(pts).argmax(1) == 0).double().mean().item()
    viz.scatter(pts, ax, lim=1.5, s=3, title=f"scale {s:g}: {100 * share:.0f}% in component 0")
plt.show()

# %% [markdown]
# Scale 0 spreads samples over all eight components; scale 1 keeps them in
# component 0 with its natural spread; scale 4 squeezes them towards the part
# of component 0 farthest from its neighbours, where the classifier is most
# confident. That squeeze is the trade-off of guidance: more "on class", less
# diverse.
#
# ## 2. Guidance on digits: the scale's trade-off
#
# Two shipped checkpoints carry this section (each made by `ddlearn train NAME`):
#
# * `digits_cfg`: a small UNet with a class embedding, trained with label
#   dropout (p = 0.15) so its null class is an unconditional model;
# * `digit_classifier_noisy`: a classifier $p_\phi(c \mid x_t, t)$ trained on
#   noised digits $x_t \sim q(x_t\mid x_0)$ at uniformly drawn $t$.
#
# A third, `digit_classifier` (trained on clean digits), judges the results: its
# accuracy on generated digits against the requested class, and the Frechet
# digit distance (FDD) of its features between generated and 359 held-out
# digits (lower is better; the digits' stand-in for FID).

# %%
cfg_model, schedule = pretrained.load("digits_cfg")
noisy_clf = pretrained.load("digit_classifier_noisy").model
judge = pretrained.load("digit_classifier").model
held_out = data.digits("test")
for name in ("digits_cfg", "digit_classifier_noisy"):
    info = pretrained.info(name)
    print(f"{name}: `{info['command']}`, {info['train_seconds']:.0f} s, metrics {info['metrics']}")

# %% [markdown]
# The recipe is in `ddlearn.recipes.RECIPES["digits_cfg"]`; training it yourself
# is `ddlearn train digits_cfg` (minutes on two cores; the sidecar above records
# the time it took here, on a busy machine). Fast mode runs three steps of it
# here, to show the loop (label dropout happens inside the loss):

# %%
if is_fast():
    tiny = train.train("digits_cfg", fast=True, progress=False, stop_after=3)
    print(f"{tiny.step} steps in {tiny.seconds:.1f} s, losses {[round(v, 3) for v in tiny.losses]}")
else:
    print(recipes.RECIPES["digits_cfg"])

# %% [markdown]
# Ten rows, one per requested class, classifier-free guidance at scale 3:

# %%
per_row = pick(10, 4)
labels_grid = torch.arange(10).repeat_interleave(per_row)
x_T = torch.randn(len(labels_grid), 1, 16, 16, generator=gen(2))
grid = sample_ddim(guidance.classifier_free(cfg_model, labels_grid, 3.0), x_T, schedule, pick(30, 10),
                   progress=False)
fig, ax = plt.subplots(figsize=(0.5 * per_row + 1, 5.5), layout="constrained")
viz.image_grid(grid, ax, nrow=per_row, title="classifier-free guidance, scale 3, rows = classes 0-9")
plt.show()

# %% [markdown]
# Now the trade-off, measured. For each scale we draw the same number of digits
# of every class from the same noise, ask the judge which class each one is, and
# compute the FDD against the held-out digits. The dotted line is the FDD of
# as many *training* digits (same number per class) against the held-out ones:
# what a perfect sampler would score at this sample size. (Like FID, the FDD
# is biased upwards for small sets and noisy: compare numbers computed with
# the same set sizes only.) Guided samples overshoot the data range $[-1, 1]$,
# more so at large scales and few steps; we clamp them, as every picture does,
# before judging.

# %%
per_class = pick(30, 3)
labels = torch.arange(10).repeat_interleave(per_class)
x_T = torch.randn(len(labels), 1, 16, 16, generator=gen(3))
steps = pick(25, 8)
cfg_scales = (0.0, 1.0, 2.0, 3.0, 5.0)
cg_scales = (0.0, 1.0, 4.0, 8.0, 16.0)
uncond = guidance.classifier_free(cfg_model, labels, 0.0)  # the null class


def judge_samples(x):
    x = x.clamp(-1, 1)  # score the digits as they are shown: guided samples overshoot [-1, 1]
    acc = (judge(x).argmax(1) == labels).float().mean().item()
    return acc, metrics.frechet_digit_distance(x, held_out, classifier=judge)


results = {"classifier-free": [], "classifier": []}
for s in cfg_scales:
    x = sample_ddim(guidance.classifier_free(cfg_model, labels, s), x_T, schedule, steps, progress=False)
    results["classifier-free"].append(judge_samples(x))
results["classifier"].append(results["classifier-free"][0])  # scale 0: the same unconditional samples
for s in cg_scales[1:]:
    m = guidance.classifier_guidance(uncond, noisy_clf, labels, s, schedule)
    results["classifier"].append(judge_samples(sample_ddim(m, x_T, schedule, steps, progress=False)))
# the floor: as many real training digits, with the same number per class as the generated set
train_digits, train_labels = data.digits("train", return_labels=True)
balanced = torch.cat([train_digits[train_labels == c][:per_class] for c in range(10)])
floor = metrics.frechet_digit_distance(balanced, held_out, classifier=judge)

fig, ax = plt.subplots(figsize=(8, 4.6), layout="constrained")
ax2 = ax.twinx()
for (name, res), sc, c in zip(results.items(), (cfg_scales, cg_scales), ("C0", "C1")):
    ax.plot(sc, [100 * a for a, _ in res], "o-", color=c, label=f"{name}: accuracy")
    ax2.plot(sc, [f for _, f in res], "s--", color=c, label=f"{name}: FDD")
ax2.axhline(floor, color="gray", ls=":", label="FDD of real digits (floor)")
ax.set_xlabel("guidance scale $\\gamma$ (0 = unconditional, 1 = conditional)")
ax.set_ylabel("accuracy of requested class (%)")
ax2.set_ylabel("Frechet digit distance (lower is better)")
ax.set_xscale("symlog", linthresh=1)
h1, l1 = ax.get_legend_handles_labels()
h2, l2 = ax2.get_legend_handles_labels()
ax.legend(h1 + h2, l1 + l2, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
plt.show()
for name, sc in (("classifier-free", cfg_scales), ("classifier", cg_scales)):
    print(name.ljust(16), " ".join(f"scale {s:g}: {100 * a:5.1f}% FDD {f:5.2f} |" for s, (a, f) in zip(sc, results[name])))
print(f"real digits (floor): FDD {floor:.2f}")

# %% [markdown]
# Read the plot left to right. At scale 0 the accuracy is the chance that an
# unconditional digit happens to be the requested class (about one in ten: ten
# classes). Scale 1
# is the conditional model: most digits are right. Larger scales push
# accuracy towards 100% while the FDD, after improving, starts to *rise*:
# the samples become stereotyped (the "squeeze" of Section 1), covering less
# of the variety of real digits. Classifier guidance needs larger scales than
# classifier-free guidance for the same accuracy with this small classifier:
# its gradients on noisy inputs are weak and partly adversarial (a classifier's
# gradient can change its decision without changing the digit much), which is
# one reason classifier-free guidance took over.
#
# ## 3. Measurements as operators
#
# An inverse problem observes $y = \mathcal A(x) + \sigma_y n$. Three linear
# ones carry this chapter (and Chapter 07 adds non-linear ones, Chapter 09 Radon
# and Fourier transforms, on the same base class):
#
# | operator | $A x$ | $A^\top y$ | $A^+ y$ |
# |---|---|---|---|
# | `Mask` | $m \odot x$ | $m \odot y$ | $m \odot y$ |
# | `Downsample(f)` | mean of $f\times f$ blocks | nearest upsampling $/ f^2$ | nearest upsampling |
# | `Blur(sigma)` | circular convolution $k * x$ | convolution with the flipped kernel | division by $\hat k$ in Fourier space (small gains dropped) |
#
# The adjoint is defined by $\langle Ax, y\rangle = \langle x, A^\top y\rangle$;
# the pseudo-inverse $A^+$ gives the smallest $x$ that best explains $y$. Both
# are checked numerically in `tests/test_operators.py`; here is the adjoint
# identity once, for the blur:

# %%
blur = operators.Blur(1.5)
xa = torch.randn(2, 1, 16, 16, generator=gen(5), dtype=torch.float64)
ya = torch.randn(2, 1, 16, 16, generator=gen(6), dtype=torch.float64)
print(f"<Ax, y> = {(blur(xa) * ya).sum():.10f}\n<x, A^T y> = {(xa * blur.adjoint(ya)).sum():.10f}")

# %% [markdown]
# One identity does most of the work in DDNM (Wang et al. 2023): any $x$ splits
# into a part $A^+A x$ that the measurement sees (the *range*) and a part
# $(I - A^+A)x$ it cannot see (the *null space*). Keep the null-space part of a
# guess and take the range part from $y$:

# %%
show_source(operators.Operator.project)

# %% [markdown]
# ## 4. An exact posterior, and how far the samplers land from it
#
# Let the prior be the ring of eight Gaussians and observe only the first
# coordinate, $y = x_1 + \sigma_y n$ with $\sigma_y = 0.1$. For a Gaussian
# mixture prior and a linear Gaussian measurement the posterior is again a
# Gaussian mixture: each component is conditioned like a Kalman update and
# re-weighted by how well it explains $y$,
#
# $$p(x \mid y) = \sum_k w_k'\,\mathcal N(x;\,\mu_k', \Sigma_k'),\quad
#   w_k' \propto w_k\,\mathcal N(y;\,A\mu_k,\,A\Sigma_kA^\top + \sigma_y^2 I),$$
#
# $$\mu_k' = \mu_k + K_k(y - A\mu_k),\quad \Sigma_k' = \Sigma_k - K_kA\Sigma_k,\quad
#   K_k = \Sigma_kA^\top(A\Sigma_kA^\top + \sigma_y^2 I)^{-1}.$$

# %%
show_source(exact_posterior, docstring=False)

# %% [markdown]
# The posterior samplers share the book's sampler signature, plus the operator
# and the measurement. Each approximates the intractable
# $\nabla_{x_t}\log p(y\mid x_t)$ through the model's guess of the clean sample,
# $\hat x_0(x_t) = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$:
#
# * **DPS** (Chung et al. 2023) differentiates $\lVert y - \mathcal A(\hat x_0(x_t))\rVert$
#   with respect to $x_t$, *through the network*, and steps against it:
#   guidance **on $x_t$**;
# * **guidance on $\hat x_0$** moves the prediction itself down
#   $\nabla_{\hat x_0}\tfrac12\lVert y-\mathcal A(\hat x_0)\rVert^2$ and then takes the
#   usual step: no gradient through the network (this is the variant GDP,
#   Chapter 07, builds on);
# * **DDNM** replaces $\hat x_0$ by its projection $A^+y + (I-A^+A)\hat x_0$:
#   no gradient and no step size at all.

# %%
show_source(sample_guided, docstring=False)

# %%
prior = oracles.named_mixture("ring8")
op2 = operators.Matrix([[1.0, 0.0]], noise=0.1)
y0 = torch.tensor([[0.7]], dtype=torch.float64)
post = exact_posterior(prior, op2, y0)
print("posterior weights:", np.round(post.weights.numpy(), 3))

n_post, steps_2d = pick(800, 150), pick(100, 20)
x_T = torch.randn(n_post, 2, generator=gen(7), dtype=torch.float64)
Y = y0.expand(n_post, 1)
prior_eps = prior.eps_model(sch)
runs = {"exact posterior": post.sample(n_post, generator=gen(8)).double()}
kw2d = dict(operator=op2, y=Y, generator=gen(9), progress=False)
for s in (0.2, 1.0):
    runs[f"DPS (scale {s:g})"] = sample_dps(prior_eps, x_T, sch, steps_2d, scale=s, **kw2d)
    kw2d["generator"] = gen(9)
runs["guidance on x0 (scale 1)"] = sample_guided(prior_eps, x_T, sch, steps_2d, on="x0", scale=1.0, **kw2d)
kw2d["generator"] = gen(9)
runs["DDNM"] = sample_ddnm(prior_eps, x_T, sch, steps_2d, **kw2d)
fig, axes = plt.subplots(1, 5, figsize=(16, 3.5), layout="constrained")
for ax, (name, pts) in zip(axes, runs.items()):
    viz.scatter(prior.sample(400, generator=gen(10)), ax, lim=1.5, s=2, color="lightgray")
    viz.scatter(pts, ax, lim=1.5, s=3, title=name)
    ax.axvline(0.7, color="k", lw=0.5, ls="--")
plt.show()
print(f"{'method':28s} {'mean error':>10s} {'cov error':>10s} {'weight TV':>10s} {'avg log p(x|y)':>15s}")
for name, pts in runs.items():
    b = posterior_bias(pts, post)
    print(f"{name:28s} {b['mean_error']:10.3f} {b['cov_error']:10.3f} {b['weight_tv']:10.3f} {b['avg_log_prob']:15.2f}")

# %% [markdown]
# The exact row is the yardstick (its own errors are pure Monte-Carlo noise).
# Reading the others:
#
# * **DDNM** puts every sample *exactly* on the line $x_1 = 0.7$: it enforces
#   $Ax = y$ and so ignores the measurement noise $\sigma_y$, over which the
#   exact posterior spreads; and its component weights are off (weight TV):
#   the projection is exact about the range of $A$ and only approximate about
#   everything the prior must decide.
# * **Guidance on $\hat x_0$ at scale 1** is, for this operator, the same
#   projection applied to the prediction, and lands in the same place.
# * **DPS** depends on its step size. At a small scale its weights and its
#   covariance look close to exact, but its average log-density is well below
#   the exact samples' own: look at the scatter, and each component's cloud is
#   cut in two along $x_1 = 0.7$, where the exact posterior is densest. At
#   scale 1 it overshoots, and samples pile up away from the posterior. No
#   single scale is right for every problem (exercise 06.4).
#
# **The split, measured.** The measurement fixes the first coordinate, so look
# at it alone: the histogram of $x_1$ for each sampler against the exact
# posterior's, and two numbers that see a hole, the share of samples within
# 0.05 of the measured value and the 1-D Wasserstein distance to the exact
# $x_1$ marginal (from many exact samples):

# %%
x1_exact = post.sample(pick(20000, 4000), generator=gen(14))[:, 0].double().numpy()
fig, ax = plt.subplots(figsize=(7.5, 3), layout="constrained")
bins = np.linspace(0.25, 1.15, 46)
ax.hist(x1_exact, bins=bins, density=True, color="lightgray", label="exact posterior")
for name in ("DPS (scale 0.2)", "DPS (scale 1)"):
    ax.hist(runs[name][:, 0].numpy(), bins=bins, density=True, histtype="step", lw=1.5, label=name)
ax.axvline(0.7, color="k", lw=0.8, ls="--", label="y (guidance on x0 and DDNM: every sample here)")
ax.set(xlabel="$x_1$ (the measured coordinate)", ylabel="density", title="First coordinate of the samples")
ax.legend(fontsize=8)
plt.show()
print(f"{'method':28s} {'within 0.05 of y':>16s} {'sd of x1':>9s} {'W1 to exact x1':>15s}")
print(f"{'exact (many samples)':28s} {np.mean(np.abs(x1_exact - 0.7) < 0.05):16.3f} {x1_exact.std():9.3f} {'':>15s}")
for name, pts in runs.items():
    x1 = pts[:, 0].numpy()
    print(f"{name:28s} {np.mean(np.abs(x1 - 0.7) < 0.05):16.3f} {x1.std():9.3f} "
          f"{wasserstein_distance(x1, x1_exact):15.3f}")

# %% [markdown]
# At scale 0.2 DPS leaves the middle empty: 0.022 of its samples lie within 0.05
# of $y$ against 0.557 of the exact posterior's, and its $x_1$ forms two bands,
# near 0.6 and 0.8, with an sd of 0.107 against the exact 0.070. **Why:** DPS
# steps along the gradient of the residual's *norm*, $\lVert y - \mathcal A(\hat x_0)\rVert$,
# not of its square. That gradient,
# $-J^\top A^\top r/\lVert r\rVert$ with $r = y - A\hat x_0$ and $J = \partial\hat x_0/\partial x_t$,
# has the same length however small the residual is: near the measurement
# every step kicks the sample across the line by about the same amount, so it
# oscillates around $x_1 = 0.7$ and ends on one side or the other, about one
# kick away. **Why the moments miss it:** the two bands balance, so the mean is
# right (mean error 0.020), and the covariance is dominated by the spread along
# $x_2$, between the two arcs of the ring that cross $x_1 = 0.7$, which DPS gets
# right; the extra spread in $x_1$ is a small part of it (cov error 0.016). The
# average log-density sees it (0.75 against the exact samples' 1.57: the samples
# sit where the posterior is thin), and so do the histogram and the distance
# between the $x_1$ marginals (0.049). Guidance on $\hat x_0$ and DDNM have no
# such kick, since their pull shrinks with the residual, and they put every sample
# on the line instead (spread 0: they ignore the measurement noise).
#
# None is the exact posterior, and each is wrong in its own way: that is what
# "approximate posterior sampling" means, and why a closed-form test case is
# worth having.
#
# ## 5. Restoring held-out digits
#
# Now with the trained UNet as the prior (its null class: unconditional), on
# digits it never saw. For each measurement we draw several posterior samples
# per digit, to show the spread: where the measurement pins the image down,
# samples agree; where it does not (the hidden box), they differ. The classical
# baselines know nothing about digits: biharmonic inpainting (scikit-image),
# bicubic upsampling, Wiener deconvolution. The blur comes with measurement
# noise ($\sigma_y = 0.05$), the other two are noiseless.

# %%
prior_digits = guidance.classifier_free(cfg_model, 0, 0.0)  # null class = unconditional prior
n_digits, k = pick(8, 2), pick(3, 2)
truth = held_out[:n_digits]
reps = truth.repeat_interleave(k, 0)
measure = {"box inpainting": operators.get("inpaint_box", 16),
           "4x super-resolution": operators.get("sr4", 16),
           "noisy blur (sigma 1.5, noise 0.05)": operators.get("blur", 16, noise=0.05)}
steps_img = pick(40, 10)
DPS_SCALE, X0_SCALE = 2.0, 1.0  # the step sizes benchmarks/guidance.py uses too
restored, rows = {}, []
for mname, op in measure.items():
    y = op.measure(reps, generator=gen(13))  # A(x) + noise * n (noise 0 for the first two)
    x_T = torch.randn(reps.shape, generator=gen(11))
    kw = dict(operator=op, y=y, clip=(-1.0, 1.0), progress=False)
    outs = {
        "classical": classical(op, y),
        "DDNM": sample_ddnm(prior_digits, x_T, schedule, steps_img, generator=gen(12), **kw),
        "DPS": sample_dps(prior_digits, x_T, schedule, steps_img, scale=DPS_SCALE, generator=gen(12), **kw),
        "guidance on x0": sample_guided(prior_digits, x_T, schedule, steps_img, on="x0", scale=X0_SCALE,
                                        generator=gen(12), **kw),
    }
    restored[mname] = (y, outs)
    for meth, out in outs.items():
        per_image = np.array(metrics.psnr(out.clamp(-1, 1), reps, reduction="none"), dtype=float)
        cons = np.array(consistency_psnr(op, out, y, reduction="none"), dtype=float)
        rows.append((mname, meth, per_image, cons))
print(f"{'measurement':36s} {'method':16s} {'PSNR vs truth (dB)':>20s} {'consistency (dB)':>18s}")
for mname, meth, p_img, cons in rows:
    print(f"{mname:36s} {meth:16s} {p_img.mean():11.2f} +- {p_img.std(ddof=1):5.2f} "
          f"{cons.mean():9.2f} +- {cons.std(ddof=1):5.2f}")
print(f"(mean +- sd over {n_digits * k} restorations: {n_digits} held-out digits x {k} samples each)")

# %%
for mname, (y, outs) in restored.items():
    op = measure[mname]
    shown = op.pinv(y) if "blur" not in mname else y
    if mname == "4x super-resolution":
        shown = torch.nn.functional.interpolate(y, scale_factor=4)
    cols = [reps[::k], shown[::k]] + [outs[m].reshape(n_digits, k, 1, 16, 16)[:, j]
                                      for m in ("classical", "DDNM", "DPS") for j in range(1 if m == "classical" else k)]
    grid = torch.stack(cols, 1).reshape(-1, 1, 16, 16)
    titles = "truth | measured | classical | " + f"DDNM x{k} | DPS x{k}"
    fig, ax = plt.subplots(figsize=(0.55 * len(cols) + 1, 0.6 * n_digits + 0.6), layout="constrained")
    viz.image_grid(grid, ax, nrow=len(cols), title=f"{mname}:\n{titles}")
    plt.show()

# %% [markdown]
# What to look for (the numbers are in the table above; `benchmarks/guidance.py`
# measures the same on more digits):
#
# * DDNM's **consistency** is the highest by construction: its samples
#   reproduce $y$ up to rounding (consistency is computed on the raw output;
#   clipping to $[-1, 1]$ would change $A\hat x$).
# * With **noise**, the projection is a liability: $A^+ y$ divides by the
#   blur's small Fourier gains and so amplifies the noise, and DDNM copies that
#   into its result. DPS treats $y$ as a soft target and degrades gracefully;
#   Wiener knows the noise level. (DDNM+ in Wang et al. 2023 fixes this by
#   weighting the projection with the noise level; exercise 06.5.)
# * In the hidden box the samples **differ**: the measurement says nothing
#   there, so the prior fills in several plausible strokes. A classical method
#   gives one smooth answer, and PSNR, which rewards the *average* of the
#   plausible answers, can favour it over a sharp sample that picked one.
#   PSNR against the truth is not the whole story for a sampler.
# * Super-resolution from 4x4 is badly under-determined: the samples show
#   which digits are compatible with 16 grey blocks.
#
# ## 6. Explorers
#
# Pick a class, a method and a scale: the digits are redrawn from the same
# noise, so only the guidance changes. (Static pictures in the HTML book.)

# %%
widgets.guidance_explorer(cfg_model, schedule, classifier=noisy_clf, n=pick(16, 4), steps=pick(20, 5),
                          scales=(0.0, 1.0, 2.0, 3.0, 5.0, 8.0) if not is_fast() else (0.0, 3.0))

# %% [markdown]
# Pick a measurement and a method; the truth, the measurement and posterior
# samples are redrawn for a few held-out digits.

# %%
widgets.posterior_explorer(prior_digits, schedule, held_out[:pick(3, 1)], samples=pick(3, 2), steps=pick(30, 5),
                           dps_scale=DPS_SCALE, x0_scale=X0_SCALE)

# %% [markdown]
# ## Exercises
#
# **06.1** (derive) Ho & Salimans write the guided prediction as
# $(1+w)\,\epsilon_c - w\,\epsilon_u$. Which ddlearn `scale` gives their $w = 2$?

# %% [markdown] tags=["solution"]
# *Solution.* ddlearn's guided prediction (Section 1) is
# $\epsilon_u + s\,(\epsilon_c - \epsilon_u) = s\,\epsilon_c - (s - 1)\,\epsilon_u$.
# Matching the coefficients of $\epsilon_c$ and $\epsilon_u$ with $(1+w)\,\epsilon_c -
# w\,\epsilon_u$ gives $s = 1 + w$ (both coefficients agree): their $w = 0$ is the plain
# conditional model, ddlearn's scale 1.

# %% tags=["solution"]
answer_06_1 = 1 + 2
check("06.1", answer_06_1)

# %% [markdown]
# **06.2** (predict, then run) A 1-D prior $x \sim \mathcal N(0, 1)$ is measured as $y = x + n$,
# $n \sim \mathcal N(0, 0.5^2)$, and $y = 1$ comes out. Predict the posterior mean
# by hand (is it nearer 0 or 1?), then compute it with `exact_posterior`.

# %% tags=["solution"]
# by hand: precisions add, 1 + 1/0.25 = 5; the mean is (0 * 1 + 1 * 4) / 5 = 0.8 (nearer the measurement,
# whose noise is smaller than the prior's spread)
post_1d = exact_posterior(oracles.gaussian([0.0], 1.0), operators.Matrix([[1.0]], noise=0.5), torch.tensor([1.0]))
answer_06_2 = float(post_1d.means[0, 0])
print(f"by hand 0.8, exact_posterior {answer_06_2:.4f}")
check("06.2", answer_06_2)

# %% [markdown]
# **06.3** (implement) Write DDNM's projection for a mask by hand:
# `project(x0, y, mask)` returning $A^+y + (I - A^+A)x_0$ for
# $A x = \text{mask} \odot x$ (tensors of shape (B, 1, H, W)).

# %% tags=["solution"]
def project(x0, y, mask):
    # A is diagonal with 0/1 entries: A^T = A, A A^T = A, so A^+ = A; A^+ y = mask * y and A^+ A x0 = mask * x0
    return mask * y + (1 - mask) * x0


check("06.3", project)

# %% [markdown]
# **06.4** (open) In Section 4, run DPS with scales 0.2, 0.5, 1 and 2 and plot
# the weight TV and the average log-posterior against the scale. Is there a
# scale that gets both right? What does that say about DPS's step size?
#
# **06.5** (open) Give DDNM a noisy measurement on digits ($\sigma_y = 0.1$,
# `operators.get("sr4", 16, noise=0.1)` and `op.measure(x, generator=...)`).
# Why does its consistency stay perfect while the PSNR against the truth drops?
# (Wang et al. 2023 propose DDNM+ for this case.)
#
# ## References
#
# * P. Dhariwal, A. Nichol. *Diffusion Models Beat GANs on Image Synthesis.*
#   NeurIPS 2021 (classifier guidance, Sec. 4 and Algorithm 2).
# * J. Ho, T. Salimans. *Classifier-Free Diffusion Guidance.* NeurIPS 2021
#   Workshop; arXiv:2207.12598, 2022 (eq. 6; label dropout).
# * H. Chung, J. Kim, M. T. Mccann, M. L. Klasky, J. C. Ye. *Diffusion Posterior
#   Sampling for General Noisy Inverse Problems.* ICLR 2023 (DPS, Algorithm 1).
# * Y. Wang, J. Yu, J. Zhang. *Zero-Shot Image Restoration Using Denoising
#   Diffusion Null-Space Model.* ICLR 2023 (DDNM, range-null-space decomposition).
# * B. Kawar, M. Elad, S. Ermon, J. Song. *Denoising Diffusion Restoration Models.*
#   NeurIPS 2022 (DDRM: posterior sampling in the operator's SVD basis).
# * B. Fei, Z. Lyu, L. Pan, J. Zhang, W. Yang, T. Luo, B. Zhang, B. Dai.
#   *Generative Diffusion Prior for Unified Image Restoration and Enhancement.*
#   CVPR 2023 (guidance on $x_t$ vs on $\hat x_0$; Chapter 07).
# * J. Song, C. Meng, S. Ermon. *Denoising Diffusion Implicit Models.* ICLR 2021
#   (the DDIM step every sampler here uses).

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s ({'fast' if is_fast() else 'full'} mode)")
