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
# # Chapter 09 - Diffusion models in medical imaging
#
# Medical images are measured, not photographed: a CT scanner records line
# integrals of X-ray attenuation, an MR scanner samples the Fourier transform
# of the magnetisation. Measuring less (fewer views, fewer k-space lines) means
# less dose or a shorter scan, and an *inverse problem* that a prior has to
# make well posed. This chapter puts the posterior samplers of Chapter 06 to
# work on three such problems, with data that ships with our dependencies.
# By the end of it you will be able to
#
# * place a medical-imaging paper on the field's map (reconstruction,
#   denoising, segmentation, anomaly detection, translation, generation,
#   registration, classification) and say which diffusion formulation it uses;
# * read a real DICOM file offline, convert its values to Hounsfield units
#   with the file's own tags, and display it through the radiologist's windows;
# * write CT and MRI as linear operators (a Radon transform checked against
#   scikit-image, an undersampled Fourier transform) with exact adjoints;
# * reconstruct sparse-view CT and undersampled MRI with a diffusion prior and
#   **data consistency** (Song et al. 2022's projection sampler, DPS,
#   score-MRI's hard consistency), next to FBP, SART, SART+TV, zero filling
#   and TV compressed sensing, and measure who wins where;
# * detect lesions a model has never seen by **partial noising** (AnoDDPM),
#   with Gaussian noise and with simplex noise and a prior trained on it, as
#   the paper does, against thresholding and an autoencoder, with intervals.
#
# **These are teaching models, not clinical tools.** The priors are tiny,
# trained for minutes on synthetic ellipse phantoms; the real DICOM slices are
# two test files from pydicom. Nothing here has been validated for diagnosis,
# and a reconstruction that scores a higher PSNR can still invent or erase the
# one detail a radiologist needed (Section 7 comes back to this).

# %%
import json
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddlearn import pretrained, schedules, train, viz, widgets
from ddlearn.config import is_fast, pick
from ddlearn.data import medical
from ddlearn.metrics import consistency_psnr, psnr, ssim
from ddlearn.notebook import check, show_source
from ddlearn.operators import medical as medical_ops
from ddlearn.operators.medical import KSpace, Radon, kspace_mask
from ddlearn.report import fmt_mean_sd as ms, method_rows, paired_rows, table
from ddlearn.restoration import anomaly, consistency, reconstruction
from ddlearn.restoration import sample_dps
from ddlearn.samplers import sample_ddim

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)


def gen(seed):
    return torch.Generator().manual_seed(seed)


#: what benchmarks/medical.py measured and stored (12 test phantoms, 48 lesion images; tuning on validation ones):
#: more than this notebook can recompute in its few minutes, printed where the chapter needs it
RESULTS = json.loads((pretrained.HERE / "medical_results.json").read_text())


def show(images, titles, *, cmap="gray", vmin=-1, vmax=1, size=2.0):
    """A row of images with titles (each a 2-D array or a (1, 1, H, W) tensor)."""
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.4), layout="constrained")
    for ax, im, t in zip(np.atleast_1d(axes), images, titles):
        a = im.detach().reshape(im.shape[-2:]).numpy() if isinstance(im, torch.Tensor) else im
        ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(t, fontsize="small")
        ax.set_axis_off()
    plt.show()


# %% [markdown]
# ## 1. The map of the field
#
# Kazerouni et al. (2023) surveyed diffusion models in medical imaging and
# sorted the work by task. The three generic formulations of Chapters 02-04
# all appear: **DDPM** (discrete steps, eps-prediction), **NCSN** (score
# matching at a ladder of noise levels, annealed Langevin) and the **score
# SDE** (continuous time, predictor-corrector). Most tasks use them in one of
# two ways: as an *unconditional prior* combined with a known measurement or
# a noising trick at sampling time (reconstruction, anomaly detection), or as a
# *conditional* model trained on pairs (segmentation, translation,
# classification). The map below lists, for each task, the usual
# formulation and one or two representative papers (all in the survey or its
# companion list); the two tasks this chapter works through are highlighted.

# %%
FIELD = [  # task, how diffusion is used, representative papers
    ("reconstruction\n(CT, MRI)", "unconditional score / DDPM prior\n+ data consistency while sampling",
     "Song, Shen, Xing & Ermon, ICLR 2022 (score SDE)\nChung & Ye, MedIA 2022 (score-MRI)"),
    ("anomaly detection", "DDPM trained on healthy images;\npartial noising or guided counterfactual",
     "Wyatt et al., CVPR-W 2022 (AnoDDPM)\nWolleb et al., MICCAI 2022 (DDIM + classifier)"),
    ("denoising", "DDPM prior / self-supervised\ndiffusion denoiser",
     "Gong et al., arXiv 2022 (PET, DDPM)\nXiang et al., ICLR 2023 (DDM2, diffusion MRI)"),
    ("segmentation", "conditional DDPM: the mask is diffused,\nthe image conditions",
     "Wolleb et al., MIDL 2022 (ensembles)\nWu et al., MIDL 2023 (MedSegDiff)"),
    ("image-to-image\ntranslation", "conditional / adversarial DDPM,\nscore models (e.g. MRI <-> CT)",
     "Ozbey et al., IEEE TMI 2023 (SynDiff)\nLyu & Wang, arXiv 2022 (CT <-> MRI)"),
    ("generation (2-D / 3-D)", "DDPM, latent diffusion", "Pinaya et al., DGM4MICCAI 2022 (brain LDM)\n"
     "Dorjsembe et al., MIDL 2022 (3-D DDPM)"),
    ("registration", "DDPM score guides a deformation field", "Kim, Han & Ye, ECCV 2022 (DiffuseMorph)"),
    ("classification", "conditional diffusion over labels", "Yang et al., MICCAI 2023 (DiffMIC)"),
]
fig, ax = plt.subplots(figsize=(11, 6.2), layout="constrained")
ax.set_axis_off()
for j, head in enumerate(("task", "how diffusion is used", "representative papers")):
    ax.text((0.0, 0.2, 0.55)[j], 1.0, head, fontsize=11, fontweight="bold", va="top", transform=ax.transAxes)
for i, (task, how, papers) in enumerate(FIELD):
    y = 0.93 - i * 0.117
    if i < 2:  # the two tasks of this chapter
        ax.add_patch(plt.Rectangle((-0.01, y - 0.105), 1.01, 0.11, transform=ax.transAxes, color="#fde9c9", zorder=0))
    for j, txt in enumerate((task, how, papers)):
        ax.text((0.0, 0.2, 0.55)[j], y, txt, fontsize=9, va="top", transform=ax.transAxes)
ax.set_title("Diffusion models in medical imaging, after Kazerouni et al. (2023); shaded: this chapter", fontsize=11)
plt.show()

# %% [markdown]
# ## 2. The data: phantoms, lesions and two real DICOM slices
#
# Real patient data cannot ship with a book, so the priors learn from
# **random-ellipse phantoms** in the spirit of Shepp & Logan (1974): a bright
# skull, soft tissue, a few organs of other tissue classes and some small,
# low-contrast details, all drawn from a seed (`ddlearn.data.medical`).
# Intensities are attenuation-like values $\mu \in [0, 1]$ stored, as every
# image in the book, as $x = 2\mu - 1 \in [-1, 1]$. Three splits never share a
# phantom: **train** (what priors see), **val** (where this chapter's defaults
# were chosen) and **test** (where every figure below is measured).
# scikit-image's Shepp-Logan phantom is a test image that no prior saw.

# %%
train_examples = medical.phantoms("train", 64, 6)
test_set = medical.phantoms("test", 64, 16)
show([*train_examples[:5], medical.shepp_logan(64)], ["train"] * 5 + ["Shepp-Logan (never seen)"])

# %% [markdown]
# Now the real thing. pydicom ships two small test files, a CT slice and an MR
# slice, found on disk by `pydicom.data.get_testdata_file(name,
# download=False)`: nothing is downloaded. A CT file stores integers; the
# tags `RescaleSlope` and `RescaleIntercept` turn them into **Hounsfield
# units** (HU: air -1000, water 0, bone several hundred to above 1000):
# $\text{HU} = \text{stored} \times \text{slope} + \text{intercept}$. We read
# both from the file, never assume them.

# %%
show_source(medical.to_hu)

# %%
for name in medical.DICOM_FILES:
    print(name, medical.metadata(name))
hu = medical.to_hu("CT_small.dcm")
print(f"CT_small.dcm: stored values {medical.read_dicom('CT_small.dcm').pixel_array.min()}..."
      f"{medical.read_dicom('CT_small.dcm').pixel_array.max()}, HU {hu.min():.0f}...{hu.max():.0f}")

# %% [markdown]
# A monitor shows about 256 grey levels and the eye separates far fewer; CT
# spans 3000 HU. Radiologists therefore look through **windows**: a centre and
# a width in HU mapped to black-to-white, everything outside clipped. The
# soft-tissue window (centre 40, width 400) separates organs whose HU differ by
# tens; the lung window (-600, 1500) shows air-filled tissue; the bone window
# (400, 1800) shows skeleton. Same data, three pictures:

# %%
mr = medical.to_hu("MR_small.dcm")
show([medical.window(hu, w) for w in medical.WINDOWS] + [(mr - mr.min()) / (mr.max() - mr.min())],
     [f"CT, {w} window\n(C {c:g}, W {wd:g} HU)" for w, (c, wd) in medical.WINDOWS.items()] +
     ["MR_small.dcm (no HU:\nMR values have no unit)"], vmin=0, vmax=1, size=2.6)

# %% [markdown]
# ## 3. Case 1: sparse-view CT
#
# ### The measurement
#
# A parallel-beam CT scanner measures, for each angle $\theta$ and detector
# position $s$, the line integral of the attenuation along the ray:
# the **Radon transform** $(\mathcal R\mu)(\theta, s) = \int \mu(s\,e_\theta + t\,e_\theta^\perp)\,dt$.
# A full scan takes hundreds of angles; a *sparse-view* scan takes 8 to 23, a
# fraction of the dose, and classical reconstruction then streaks.
#
# `ddlearn.operators.medical.Radon` computes exactly what
# `skimage.transform.radon(image, theta, circle=True)` computes (rotate by
# bilinear interpolation, sum columns), but written once as a sparse matrix,
# so that it is differentiable and its adjoint is its transpose. Both claims
# are checked here (and in `tests/test_operators_medical.py`):

# %%
show_source(medical.circle_mask)

# %%
from skimage.transform import radon as sk_radon  # noqa: E402

op23 = Radon(64, 23)
x_sl = medical.shepp_logan(64).double()
mu = ((x_sl + 1) / 2 * medical.circle_mask(64)).double()
ref = sk_radon(mu[0, 0].numpy(), op23.theta, circle=True)
print(f"max |Radon - skimage.radon| = {np.abs(op23(mu)[0, 0].numpy() - ref).max():.1e} "
      f"(sinogram values up to {ref.max():.1f})")
u, v = torch.randn(2, 1, 64, 64, dtype=torch.float64, generator=gen(0)), torch.randn(2, 1, 64, 23, dtype=torch.float64, generator=gen(1))
lhs, rhs = (op23(u) * v).sum().item(), (u * op23.adjoint(v)).sum().item()
print(f"<A u, v> = {lhs:.10f}, <u, A^T v> = {rhs:.10f}, relative gap {abs(lhs - rhs) / abs(lhs):.1e}")

# %% [markdown]
# The operator acts on the book's image $x$; a scanner measures the sinogram
# of the attenuation $\mu = (x+1)/2 \ge 0$. Because $\mathcal R$ is linear the
# two differ by the known sinogram of a constant image,
# $\mathcal R\mu = (\mathcal R x + \mathcal R\mathbf 1)/2$ (`Radon.attenuation`),
# so either one determines the other. Pixels outside the inscribed circle are
# seen by no ray: they are in the null space, as on a real scanner.
#
# ### Classical reconstructions
#
# * **FBP** (`iradon`): back-project ramp-filtered projections; exact with
#   all angles, streaks with few.
# * **SART** (`iradon_sart`): solve $A\mu = y$ iteratively, one sweep over the
#   angles at a time (several sweeps).
# * **SART+TV**: a total-variation denoising step (`denoise_tv_chambolle`)
#   between SART sweeps, which favours piecewise-constant images, i.e. exactly
#   phantoms. Its sweeps and TV weight (20 and 0.005) were tuned on
#   validation phantoms like the diffusion sampler's settings: a weak
#   baseline would flatter the diffusion model.

# %%
x_ct = test_set[:1]
ct_rows = []
for views in (8, 23):
    op = Radon(64, views)
    y = op(x_ct)
    outs = {name: reconstruction.baseline(name, op, y) for name in ("FBP", "SART", "SART+TV")}
    ct_rows.append((views, y, outs))
fig, axes = plt.subplots(2, 5, figsize=(11, 4.8), layout="constrained")
for row, (views, y, outs) in zip(axes, ct_rows):
    row[0].imshow(x_ct[0, 0], cmap="gray", vmin=-1, vmax=1)
    row[0].set_title("test phantom", fontsize="small")
    row[1].imshow(Radon(64, views).attenuation(y)[0, 0], cmap="gray", aspect="auto")
    row[1].set_title(f"sinogram, {views} views", fontsize="small")
    for ax, (name, out) in zip(row[2:], outs.items()):
        ax.imshow(out[0, 0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{name}: {psnr(out, x_ct):.1f} dB", fontsize="small")
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ### The prior
#
# One diffusion prior serves all three cases of the chapter: `phantom64`, a
# 1.5M-parameter UNet (Chapter 02's) trained on healthy 64x64 training
# phantoms only, with the linear schedule of Chapter 02. Its sidecar records
# the command that made it and the time it took on two cores:

# %%
model, schedule = train.load_or_train("phantom64")
info = pretrained.info("phantom64") if "phantom64" in pretrained.available() else {}
print(f"`{info.get('command')}`: {info.get('steps')} steps in {info.get('train_seconds')} s, "
      f"{info.get('n_params')} parameters, held-out loss {info.get('metrics', {}).get('heldout_loss')}")
samples = sample_ddim(model, torch.randn(pick(8, 2), 1, 64, 64, generator=gen(2)), schedule, pick(50, 5),
                      progress=False).clamp(-1, 1)
ae = train.load_or_train("phantom_ae64")[0]  # Section 5's autoencoder, trained on the same healthy phantoms


def ae_error(x):
    """Mean |x - AE(x)| per image: small for images like the phantoms the autoencoder learnt to reproduce."""
    return anomaly.reconstruction_score(ae, x).flatten(1).mean(1)


val_err = ae_error(medical.phantoms("val", 64, 32))
s_err = ae_error(samples)
print(f"autoencoder error of 32 validation phantoms: {val_err.min():.3f} to {val_err.max():.3f}; "
      f"of the prior's samples: " + ", ".join(f"{e:.3f}" for e in s_err))
print(f"{int((s_err <= val_err.max()).sum())} of {len(samples)} samples inside the phantoms' range")
show(list(samples), [f"sample, AE error {e:.3f}" for e in s_err])

# %% [markdown]
# Look at them before trusting the prior. Only one of the eight (the clean
# skull ring, second) has an autoencoder error inside the range of real
# phantoms, and even it is empty inside; the others are heads with mottled or
# noisy interiors, noisy rings, one almost blank image. As an *unconditional*
# generator this small prior is poor: 1.5M parameters and 1600 steps learnt
# the local statistics of phantoms (flat regions, a bright ring, sharp
# boundaries) far better than whole, coherent phantoms. That is enough for the
# reconstructions below, because there the measurement fixes the global
# layout (every view sees the whole head) and the prior only has to fill in
# what the data leave open, which is exactly the local part it did learn.
# It also warns us: where the data fix little (MRI at $R = 8$, below), the
# prior's weakness shows.
#
# ### Data consistency
#
# The measurements pin down $Ax$; the prior has to fill the null space of
# $A$. For a linear $A$ the images that agree with the data form the affine set
# $\{x: Ax = y\}$, and the closest point of it to any $x$ is
# $x + A^+(y - Ax)$, with $A^+ = A^\top(AA^\top)^{+}$ (computed once per
# geometry from the small Gram matrix $AA^\top$). Song, Shen, Xing & Ermon
# (2022) apply this to the **noisy state**: before each step they noise the
# measurement to the state's level,
#
# $$\hat y_t = \sqrt{\bar\alpha_t}\,y + \sqrt{1-\bar\alpha_t}\,A z,\qquad
#   x_t \leftarrow x_t + \lambda\,A^+(\hat y_t - A x_t),$$
#
# ($A x_t = \sqrt{\bar\alpha_t}Ax_0 + \sqrt{1-\bar\alpha_t}A\epsilon$ has exactly
# this law; exercise 09.1), then let the model take its step. $\lambda = 1$
# replaces the measured part of the state; $\lambda < 1$ (or a damped inverse)
# trusts noisy data less. In ddlearn it is a `predict` hook on the one DDIM
# loop of the samplers package:

# %%
show_source(consistency.consistency_predict)

# %% [markdown]
# The defaults (steps, $\lambda$, damping, the DDIM $\eta$ and the number of
# draws averaged) live in the library. They were chosen on 8 *validation*
# phantoms, never on the test phantoms below, by
# `python benchmarks/medical.py --tune`, which stored every row it measured
# (a test, `tests/test_medical_settings.py`, fails if the library's defaults
# stop being the best stored row). "PSNR 1 draw" is the PSNR of each draw,
# averaged over the draws; "PSNR mean" is the PSNR of the draws' mean:

# %%
print("noiseless CT:", consistency.CT)
print("CT with 1% noise:", consistency.CT_NOISY, "with the damping by views", consistency.CT_NOISY_DAMPING,
      "(consistency.ct_settings(views, noise) picks it)")
print("DPS:", consistency.DPS_CT)
print("MRI:", consistency.MRI)
TUNE_COLS = ["geometry", "noise", "damping", "weight", "eta", "scale", "PSNR 1 draw", "PSNR mean", "s/img"]
for part in ("ct", "ct_noisy", "dps", "mri"):
    rows = RESULTS[f"tune:{part}"]["rows"]
    table(rows, [c for c in TUNE_COLS if c in rows[0]], f"tune:{part} ({RESULTS[f'tune:{part}']['n']} validation "
          f"phantoms; geometry = views for CT, acceleration for MRI)")

# %% [markdown]
# What the search found, each a lesson of its own:
#
# * **Fresh noise in every step matters.** Deterministic DDIM ($\eta = 0$)
#   reaches 30.67 dB at 8 views and 41.99 at 23 (mean of 4 draws); with
#   $\eta = 1$ 34.92 and 44.10. A deterministic sampler started from pure
#   noise fixes the large structures in its first steps and can only refine
#   them afterwards; with fresh noise at every step, a later step can still
#   undo an early mistake that the data consistency exposed. (Chapter 08's
#   video model broke for the same reason.)
# * **Noisy data need damping.** Undamped projection ($\mu = 0$) puts every
#   measured number, noise included, into the state at every step: 16.94 dB
#   at 8 views and 11.17 at 23, where more views carry more noise. The damped
#   inverse $A^\top(AA^\top + \mu I)^{-1}$ with $\mu = 10$ and $\eta = 1$ gives
#   32.73 and 35.22, and each geometry prefers its own: $\mu = 3$ at 8
#   views (33.06), 30 at 16 and 23 (35.53 and 36.30). More views make the
#   rows of $A$ more alike, so $AA^\top$ has smaller eigenvalues and its
#   inverse amplifies more noise; the library keeps the damping by view
#   count (`CT_NOISY_DAMPING`). A smaller weight $\lambda$ instead of damping
#   does not help (18.69 and 12.97).
# * **DPS's step size** has a narrow good range: 0.05 gives 31.25 dB, 0.02
#   and 0.2 lose 4 to 5 dB.
# * **MRI** barely cares about $\eta$: 40.34 against 39.49 at $R = 4$, 22.12
#   against 23.33 at $R = 8$; the default ($\eta = 1$) wins on average by a
#   fifth of a dB, a tie.

# %% [markdown]
# DPS (Chapter 06) instead back-propagates $\lVert y - A\hat x_0(x_t)\rVert$
# through the network at every step: no pseudo-inverse needed, but a step size
# to tune and twice the cost per step.
#
# Several draws from the posterior differ where the data say little; their
# **mean** estimates the posterior mean, which is what minimises the squared
# error: image by image, the mean's squared error is never larger than the
# draws' average (Jensen's inequality), though one lucky draw can beat it, and
# it looks smoother. Reconstruct the test phantom at 23 and 8 views:

# %%
k = consistency.CT["samples"]
steps_ct = pick(consistency.CT["steps"], 5)
ct_opts = {key: v for key, v in consistency.CT.items() if key not in ("samples", "steps")}
fig, axes = plt.subplots(2, 6, figsize=(13, 4.8), layout="constrained")
for row, (views, y, outs) in zip(axes, ct_rows):
    op = Radon(64, views)
    t = time.perf_counter()
    mean, draws = consistency.reconstruct(model, schedule, op, y, method="projection", steps=steps_ct,
                                          samples=k, generator=gen(3), clip=(-1.0, 1.0), **ct_opts)
    sec = time.perf_counter() - t
    pics = [(x_ct, "truth"), (outs["SART+TV"], "SART+TV"), (draws[0], "one draw"), (draws[1], "another draw"),
            (mean, f"mean of {k} ({sec:.1f} s)"), ((mean - x_ct).abs() * 2 - 1, "|mean - truth|")]
    for ax, (im, title) in zip(row, pics):
        ax.imshow(im.clamp(-1, 1)[0, 0], cmap="gray", vmin=-1, vmax=1)
        extra = f": {psnr(im.clamp(-1, 1), x_ct):.1f} dB" if title not in ("truth", "|mean - truth|") else ""
        ax.set_title(f"{views} views, {title}{extra}" if title == "truth" else title + extra, fontsize="small")
    print(f"{views} views: consistency PSNR of the raw mean (data range of y) "
          f"{consistency_psnr(op, mean, y, data_range=float(y.abs().max())):.1f} dB")
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# Now the same comparison over 12 held-out test phantoms, with and without
# 1% measurement noise (Gaussian, standard deviation 1% of each image's
# largest attenuation line integral). Twelve phantoms at three view counts,
# two noise levels and four draws are more than this notebook can afford, so
# `python benchmarks/medical.py` measured them and stored every per-image
# value; the cell prints them. Each image is one case: the first table gives
# mean +- sd over the images, the second the **paired** differences (the
# same image, the same measurement), which is what a comparison needs, since
# the phantoms differ from each other far more than the methods do.
# Sharpness is the reconstruction's gradient energy relative to the truth's
# (1: as sharp as the truth; below 1: blurrier).

# %%
CT_COLS = ["views", "noise", "method", "PSNR", "SSIM", "sharpness", "s/img"]
PAIR_COLS = ["views", "noise", "difference (paired)", "mean +- sd", "images better"]
ct_rows_all, ct_pairs_all = [], []
for views in (8, 16, 23):
    for noise in ("0%", "1%"):
        stored = RESULTS[f"ct:test:{views}:{noise}"]
        ct_rows_all += method_rows(stored["methods"], views=views, noise=noise)
        ct_pairs_all += paired_rows(stored["paired"], views=views, noise=noise)
n_ct = RESULTS["ct:test:23:0%"]["n"]
table(ct_rows_all, CT_COLS, f"sparse-view CT, {n_ct} test phantoms: PSNR in dB, mean +- sd over images")
table(ct_pairs_all, PAIR_COLS, "paired PSNR differences (dB), mean +- sd over the same images")

# %% [markdown]
# How to read the tables: FBP, SART and SART+TV (20 sweeps, TV weight 0.005,
# tuned on validation phantoms) are the classical columns; "projection
# (1 draw)" is what one draw of the projection sampler scores on average,
# "projection (mean of 4)" the PSNR of the average of four draws. The paired
# table compares the mean of draws with the best classical method of that
# row (by mean PSNR), with SART+TV when that is not the best, with a single
# draw, and DPS with the best classical method.
#
# **What the stored run shows.** Without noise the prior wins everywhere,
# and by far more than the spread: the mean of four draws is 8.86 +- 1.46 dB
# above SART+TV at 8 views, 7.24 +- 0.84 at 16 and 7.43 +- 0.55 at 23, on
# 12 of 12 phantoms each time, with the higher SSIM too (0.974 against 0.926
# at 8 views). The classical methods are the blurrier ones (sharpness 0.76
# for SART+TV at 8 views against 0.96 for the mean of draws): TV flattens
# the small low-contrast ellipses, the prior restores them. The mean of four
# draws beats a single draw on every phantom (1.93 +- 0.56 dB at 8 views,
# 1.43 +- 0.16 at 23) and costs almost no sharpness (0.96 against 0.97 at 8
# views): where the draws disagree is mostly noise-like detail, not edges.
#
# With 1% noise the margins shrink but stay: with the damping chosen per
# view count on validation phantoms, the mean of draws is 6.41 +- 1.52 dB
# above SART+TV at 8 views, 2.70 +- 0.78 at 16 and 1.57 +- 0.45 at 23, on
# every phantom. SSIM tells a more mixed story: at 16 and 23 views SART+TV
# keeps the higher SSIM (0.970 and 0.973 against 0.954 and 0.948), because
# the damped data consistency still lets some noise through, as fine
# texture, which SSIM punishes more than PSNR does. Averaging draws helps
# less with noise (0.46 +- 0.10 dB at 23 views): the noise that came in
# through the data is the same in every draw, and averaging cannot remove it.

# %% [markdown]
# ### DPS, an unseen phantom, and a real CT slice
#
# DPS with its step size tuned on validation phantoms (the `tune:dps` table
# above), on the same test phantoms at 23 views, with and without noise (the
# stored rows); then the projection sampler on scikit-image's
# Shepp-Logan phantom (never seen in training) and on the CT slice of
# `CT_small.dcm`, resized to 64x64 and mapped from HU to [-1, 1] (-1000 HU to
# -1, +1000 HU to 1), measured with 23 simulated views. The phantom prior has
# never seen anatomy like the real slice: the honest expectation is that it
# helps little there, or hurts.

# %%
for noise in ("0%", "1%"):
    stored = RESULTS[f"ct:test:23:{noise}"]
    m = stored["methods"]
    print(f"23 views, {noise} noise: DPS (1 draw) {ms(m['DPS (1 draw)']['psnr'])} dB   projection (1 draw) "
          f"{ms(m['projection (1 draw)']['psnr'])}   SART+TV {ms(m['SART+TV']['psnr'])}")
    print(f"   DPS's data residual |A x - y| {ms(m['DPS (1 draw)']['residual'])}"
          + (f" against the noise's own norm {ms(stored['noise_norm'])}" if "noise_norm" in stored else ""))
dps_clean, dps_noisy = (np.asarray(RESULTS[f"ct:test:23:{nz}"]["methods"]["DPS (1 draw)"]["psnr"]) for nz in ("0%", "1%"))
print(f"DPS without noise - with 1% noise, paired over the same phantoms: {ms(dps_clean - dps_noisy)} dB")
op = Radon(64, 23)

x_slice = medical.ct_image("CT_small.dcm", 64)
pics = []
for img, label in ((medical.shepp_logan(64), "Shepp-Logan"), (x_slice, "CT_small.dcm")):
    y = op(img)
    outs = {name: reconstruction.baseline(name, op, y) for name in ("FBP", "SART", "SART+TV")}
    mean, _ = consistency.reconstruct(model, schedule, op, y, method="projection", steps=steps_ct, samples=k,
                                      generator=gen(6), clip=(-1.0, 1.0), **ct_opts)
    outs[f"diffusion, mean of {k}"] = mean.clamp(-1, 1)
    print(f"{label:13s} 23 views: " + "   ".join(f"{name} {psnr(o, img):.2f} dB ({ssim(o, img):.3f})"
                                             for name, o in outs.items()))
    pics += [(img, label)] + [(o, f"{name}\n{psnr(o, img):.1f} dB") for name, o in outs.items()]
fig, axes = plt.subplots(2, 5, figsize=(9, 4.2), layout="constrained")
for ax, (im, title) in zip(axes.flat, pics):
    ax.imshow(im[0, 0], cmap="gray", vmin=-1, vmax=1)
    ax.set_title(title, fontsize="x-small")
    ax.set_axis_off()
plt.show()

# %% [markdown]
# DPS needs no pseudo-inverse and its step size is the only knob. It is the
# weakest method here, 4.57 +- 1.30 dB below SART+TV without noise and
# 2.11 +- 1.33 with it, and it scores the same with and without noise (the
# paired difference printed above is a tenth of a dB, with an sd four times
# larger). The residual explains why: DPS ends with $\lVert Ax - y\rVert$
# near 26 to 29 with or without noise, about twice the norm of the noise
# itself (16). Its step moves a fixed distance along the gradient of the
# residual's norm, so it never fits the data closely enough for the noise to
# matter: what limits it is the step size, not the data. The projection
# sampler, which does fit the data, is the one that needed damping.
#
# The two single-image rows have no spread to quote: the
# Shepp-Logan phantom is close to the training distribution (ellipses), the
# real slice is not, and the gap between the diffusion column and the best
# classical one is the part of the prior's help that transfers.
#
# Here the prior helps on the Shepp-Logan phantom (mean of 4: 34.42 dB
# against SART+TV's 30.71; SSIM 0.964 against 0.976, TV keeping the higher
# SSIM on this piecewise-constant image). On the real CT slice **the
# baseline wins clearly**: FBP 29.25 dB, diffusion 22.42 (and the iterative
# methods, SART 19.23 and SART+TV 20.59, also fail there). One image each:
# these are examples, not estimates.
#
# ### 128x128
#
# Doubling the side quadruples the pixels and the cost of every network call.
# The 64x64 UNet cannot simply be run at 128 (its sense of object size would
# be wrong), so 128x128 phantoms need their own prior. Its recipe is
# registered (`phantom128`: base width 16, five levels; `ddlearn train
# phantom128`), but it is **not shipped**: there was no compute left to train
# it for this edition, so this chapter works at 64x64 throughout and reports
# no 128x128 figures. Training it and rerunning
# `python benchmarks/medical.py --cases ct128` is an exercise for a machine
# with time to spare.
#
# ## 4. Case 2: undersampled MRI
#
# An MR scanner fills **k-space**, the 2-D Fourier transform of the image, one
# phase-encoding line (a row) at a time; scan time is proportional to the
# number of lines. Skipping lines by a factor $R$ (the *acceleration*) and
# keeping a fully sampled centre (where most of the energy is) is the
# standard Cartesian pattern (fastMRI: 8% of the lines at $R = 4$, 4% at
# $R = 8$). `KSpace` is $y = M \odot \mathcal F x$ with the orthonormal,
# centred FFT; since $\mathcal F$ is unitary and $M$ a projection,
# $AA^H = M$ and the adjoint is the pseudo-inverse: the **zero-filled**
# reconstruction $\mathcal F^{-1}(My)$, which aliases. One subtlety: our images
# are real, and the spectrum of a real image is Hermitian-symmetric,
# $\hat x(-k) = \overline{\hat x(k)}$, so a sampled line also tells us its
# mirror; `KSpace.solve_real` is the exact pseudo-inverse over real images.

# %%
x_mr = test_set[1:2]
print("fully sampled centre, as fastMRI's masks:",
      ", ".join(f"{100 * f:.0f}% of the lines at R = {a}" for a, f in medical_ops.CENTER_FRACTION.items()))
masks = {"x4 equispaced": kspace_mask(64, 4), "x8 equispaced": kspace_mask(64, 8),
         "x4 variable density": kspace_mask(64, 4, kind="variable_density", generator=gen(4))}
fig, axes = plt.subplots(2, 3, figsize=(7.5, 5), layout="constrained")
for j, (name, m) in enumerate(masks.items()):
    op = KSpace(m)
    axes[0, j].imshow(m, cmap="gray")
    axes[0, j].set_title(f"{name}: {100 * op.rate:.1f}% of k-space", fontsize="small")
    zf = reconstruction.zero_filled(op, op(x_mr))
    axes[1, j].imshow(zf[0, 0], cmap="gray", vmin=-1, vmax=1)
    axes[1, j].set_title(f"zero-filled: {psnr(zf, x_mr):.1f} dB", fontsize="small")
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# The classical answer is **compressed sensing** (Lustig, Donoho & Pauly
# 2007): among the images that agree with the measured lines, prefer one of
# small total variation,
# $\min_x \tfrac12\lVert M\mathcal Fx - y\rVert^2 + w\,\mathrm{TV}(x)$, solved
# here by accelerated proximal gradient whose proximal step is scikit-image's
# TV denoiser (`reconstruction.tv_cs`). **Score-MRI** (Chung & Ye 2022)
# replaces TV by the diffusion prior: after every step of the sampler, put
# the measured k-space lines back (at the state's signal scale
# $\sqrt{\bar\alpha_t}$): hard data consistency.

# %%
show_source(consistency.sample_score_mri)

# %%
d = dict(consistency.MRI)
kk, st = d.pop("samples"), pick(d.pop("steps"), 5)
xs = test_set[:pick(2, 1)]
mri_rows = []
for name, m in masks.items():  # two test phantoms live, for the pictures
    op = KSpace(m)
    ys = op(xs)
    mean, _ = consistency.reconstruct(model, schedule, op, ys, method="score_mri", steps=st, samples=kk,
                                      generator=gen(20), clip=(-1.0, 1.0), **d)
    mri_rows.append((name, reconstruction.zero_filled(op, ys), reconstruction.tv_cs(op, ys), mean.clamp(-1, 1)))
fig, axes = plt.subplots(len(mri_rows), 4, figsize=(7.5, 2 * len(mri_rows)), layout="constrained")
for row, (name, zf, cs, mean) in zip(axes, mri_rows):
    for ax, (im, title) in zip(row, ((xs[:1], f"truth ({name})"), (zf[:1], "zero-filled"), (cs[:1], "TV-CS"),
                                     (mean[:1], f"score-MRI, mean of {kk}"))):
        ax.imshow(im[0, 0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(title + ("" if title.startswith("truth") else f" {psnr(im, xs[:1]):.1f} dB"), fontsize="x-small")
        ax.set_axis_off()
plt.show()

# and the stored measurement over 12 test phantoms
mri_rows_all, mri_pairs_all = [], []
for acc, kind in ((4, "equispaced"), (8, "equispaced"), (4, "variable_density")):
    stored = RESULTS[f"mri:test:x{acc}:{kind}"]
    mri_rows_all += method_rows(stored["methods"], mask=f"x{acc} {kind}")
    mri_pairs_all += paired_rows(stored["paired"], mask=f"x{acc} {kind}")
table(mri_rows_all, ["mask", "method", "PSNR", "SSIM", "sharpness", "s/img"],
      f"MRI, {RESULTS['mri:test:x4:equispaced']['n']} test phantoms: PSNR in dB, mean +- sd over images")
table(mri_pairs_all, ["mask", "difference (paired)", "mean +- sd", "images better"],
      "paired PSNR differences (dB), mean +- sd over the same images")

# %% [markdown]
# Equispaced undersampling aliases coherently (shifted copies of the
# image), which TV cannot tell from structure; the random variable-density
# mask aliases incoherently, which is the situation compressed sensing was
# designed for, and TV-CS is at its best there. Compare score-MRI with TV-CS
# mask by mask: the prior's advantage is largest where TV's assumption
# fails.
#
# **What the stored run shows** (12 test phantoms, paired): at $R = 4$
# equispaced, score-MRI's mean of four draws is 12.70 +- 2.44 dB above TV-CS
# (40.28 against 27.58 dB); with the variable-density mask TV-CS recovers to
# 38.62 dB and the margin shrinks to 4.10 +- 2.15, as the argument above
# predicts. At $R = 8$ everything is poor (21.44 +- 2.87 dB for score-MRI,
# 15.33 +- 0.99 for TV-CS, still 6.11 +- 2.74 apart): with 4% of the lines
# even a good prior cannot recover what was never measured, and its draws
# disagree, so the mean is visibly blurrier than one draw (sharpness 0.77
# against 0.90) while scoring 1.07 +- 0.92 dB higher (11 of 12 phantoms).
#
# ## 5. Case 3: anomaly detection by partial noising
#
# A model trained only on healthy anatomy has never seen a lesion. AnoDDPM
# (Wyatt et al. 2022) uses that: noise the image to a level $t_0$,
# $x_{t_0} = \sqrt{\bar\alpha_{t_0}}x + \sqrt{1-\bar\alpha_{t_0}}\,n$, and let the
# model denoise it back. The noise drowns the lesion's detail; the model fills
# in what it knows, healthy tissue; the **anomaly map** $|x - \hat x|$ lights up
# where the image is not what the model expects. $t_0$ is the knob: too small
# and the lesion survives the noising, too large and the healthy anatomy is not
# reproduced either.
#
# The test images are held-out phantoms with one inserted lesion each (an
# irregular blob, brighter or darker than the tissue, of varied size and
# contrast), with the ground-truth mask:

# %%
les = medical.lesions("test", 64, pick(8, 4))
show([*les["x"][:4], *les["mask"][:4].float() * 2 - 1], ["with lesion"] * 4 + ["mask"] * 4, size=1.6)

# %%
show_source(anomaly.anomaly_map)

# %% [markdown]
# AnoDDPM's other idea is the noise itself. White Gaussian noise is
# independent from pixel to pixel; at a moderate $t_0$ a large lesion's
# low-frequency content survives it. **Simplex noise** (Perlin's successor, a
# sum of smooth random fields over a few octaves, normalised to unit variance)
# hides large structures at the same noise level. Here it is next to Gaussian
# noise, and what each does to a phantom at $t_0 = 250$ (`ddlearn.simplex`
# makes it; `anomaly.simplex_noise` is the same function):

# %%
g_noise = torch.randn(1, 1, 64, 64, generator=gen(8))
s_noise = anomaly.simplex_noise((1, 1, 64, 64), generator=gen(8))
show([g_noise / 3, s_noise / 3, anomaly.partial_noise(les["x"][:1], 250, schedule, generator=gen(9)),
      anomaly.partial_noise(les["x"][:1], 250, schedule, noise="simplex", generator=gen(9))],
     ["Gaussian noise", "simplex noise", "x_250, Gaussian", "x_250, simplex"])

# %% [markdown]
# AnoDDPM does not only *test* with simplex noise: it **trains** with it (the
# forward process's $\epsilon$ is simplex noise, so the network learns to
# predict smooth noise) and adds simplex noise in **every reverse step**
# (ancestral sampling, $\eta = 1$, with simplex instead of Gaussian fresh
# noise). A prior trained on Gaussian noise meets simplex noise at test time as
# something it has never seen. So the chapter compares three variants:
#
# * **Gaussian**: `phantom64` with Gaussian noise (DDIM, $\eta = 0$);
# * **simplex at $t_0$ only, Gaussian prior**: the same prior, simplex noise
#   at $t_0$ and deterministic reverse steps (the paper's weak ablation);
# * **simplex, simplex prior**: `phantom64_simplex`, the same network trained
#   with simplex noise (`ddlearn train phantom64_simplex`, the loss option
#   `noise="simplex"`), simplex noise at $t_0$ and in every reverse step.
#
# $t_0$, $\eta$ and the octaves of each were chosen on 16 validation phantoms
# with lesions (the stored `tune:anomaly` rows). The shipped simplex prior's
# sidecar says what its training cost:

# %%
simplex_model, simplex_schedule = train.load_or_train("phantom64_simplex")
info_s = pretrained.info("phantom64_simplex") if "phantom64_simplex" in pretrained.available() else {}
print(f"`{info_s.get('command')}`: {info_s.get('steps')} steps in {info_s.get('train_seconds')} s "
      f"({info_s.get('machine')}), held-out loss {info_s.get('metrics', {}).get('heldout_loss')}")
print("settings:", anomaly.SETTINGS)
tune_rows = RESULTS["tune:anomaly"]["rows"]
table(tune_rows, ["method", "t0", "eta", "octaves", "AUROC", "best Dice", "s/img"],
      f"tune:anomaly ({RESULTS['tune:anomaly']['n']} validation phantoms with lesions; pixel AUROC over the head)")

# %% [markdown]
# Two baselines: **thresholding** (each pixel's distance from the image's
# median tissue value: anything unusual is flagged, including healthy skull
# and dark organs) and an **autoencoder** trained on the same healthy phantoms
# (`phantom_ae64`, a bottleneck of 8x8x4 numbers; its $|x - \mathrm{AE}(x)|$).
# Scores: **pixel AUROC** (the probability that a random lesion pixel scores
# above a random healthy one, over the pixels of the head) and the **best
# Dice** over thresholds (optimistic: the threshold is chosen on the same
# data, as AnoDDPM reports it). Here are the maps of a few test images, all
# on one colour scale:

# %%
head = les["healthy"] > -0.99
maps = {"thresholding": anomaly.threshold_score(les["x"]), "autoencoder": anomaly.reconstruction_score(ae, les["x"])}
variants = {"AnoDDPM, Gaussian": (model, schedule, anomaly.SETTINGS["gaussian"]),
            "AnoDDPM, simplex at t0,\nGaussian prior": (model, schedule, anomaly.SETTINGS["simplex_t0_only"]),
            "AnoDDPM, simplex,\nsimplex prior": (simplex_model, simplex_schedule, anomaly.SETTINGS["simplex"])}
for name, (m, sch, opts) in variants.items():
    o = {**opts, "steps": pick(opts["steps"], 3)}
    maps[name] = anomaly.anomaly_map(m, sch, les["x"], generator=gen(10), **o)[0]
vmax = float(torch.cat([m_.flatten() for m_ in maps.values()]).quantile(0.995))
n_show = min(3, les["x"].shape[0])
fig, axes = plt.subplots(n_show, 2 + len(maps), figsize=(1.6 * (2 + len(maps)) + 0.6, 1.75 * n_show + 0.4),
                         layout="constrained")
for r in range(n_show):
    axes[r, 0].imshow(les["x"][r, 0], cmap="gray", vmin=-1, vmax=1)
    axes[r, 1].imshow(les["mask"][r, 0], cmap="gray")
    for c, (name, m_) in enumerate(maps.items()):
        im = axes[r, 2 + c].imshow(m_[r, 0], cmap="magma", vmin=0, vmax=vmax)
        if r == 0:
            axes[r, 2 + c].set_title(name, fontsize="x-small")
axes[0, 0].set_title("image", fontsize="x-small")
axes[0, 1].set_title("lesion mask", fontsize="x-small")
for ax in axes.flat:
    ax.set_axis_off()
fig.colorbar(im, ax=axes[:, 2:], shrink=0.8, label="anomaly score (one scale for every map)")
plt.show()

# %% [markdown]
# The stored measurement: 48 test phantoms with one lesion each, 95%
# intervals from a bootstrap over *images* (resampling pixels would pretend
# that 48 x 3000 correlated pixels were independent cases), and each method's
# paired difference from the autoencoder on the same resampled images:

# %%
an = RESULTS["anomaly:test"]


def ci(r, sign=""):
    return f"{r['value']:{sign}.3f} [{r['low']:{sign}.3f}, {r['high']:{sign}.3f}]"


rows = [{"method": name, "AUROC [95%]": ci(e["auroc"]), "best Dice [95%]": ci(e["dice"]),
         "AUROC - AE [95%]": ci(e["auroc - autoencoder"], "+") if "auroc - autoencoder" in e else "",
         "Dice - AE [95%]": ci(e["dice - autoencoder"], "+") if "dice - autoencoder" in e else "",
         "s/img": f"{e['seconds']:.2f}"} for name, e in an["methods"].items()]
table(rows, list(rows[0]), f"anomaly detection, {an['n']} test phantoms with one lesion each (head pixels)")

# %% [markdown]
# **What the stored run shows.** AnoDDPM as the paper does it, the prior
# trained on simplex noise and simplex noise in every step, is the best
# detector here: pixel AUROC 0.933 [0.909, 0.954] against the autoencoder's
# 0.863 [0.836, 0.891], a paired difference of +0.070 [+0.039, +0.101], and
# best Dice 0.537 against 0.364. With Gaussian noise the same kind of prior
# only ties the autoencoder (0.847, a difference of -0.016 [-0.049, +0.020])
# and has the worse Dice. Simplex noise handed to the prior trained on
# Gaussian noise is worse than thresholding (0.525 against 0.635): the prior
# was never taught to remove smooth noise, so it reproduces it and the
# anomaly map is mostly noise. Both halves of AnoDDPM's idea are needed: the
# noise that hides a lesion, and a model that knows how to take it away.
#
# ## 6. Explorer
#
# Pick the case and its setting (views, acceleration, $t_0$), then scrub the
# steps: the third panel is the model's estimate of the clean image at that
# step, next to the baseline. (Static pictures in the HTML book.)

# %%
widgets.medical_explorer(model, schedule, ct_image=test_set[2:3], mri_image=test_set[3:4],
                         lesion_image=les["x"][:1], lesion_mask=les["mask"][:1], steps=pick(30, 3),
                         views=pick((8, 16, 23), (8, 23)), accelerations=(4, 8), t0s=pick((100, 250, 400), (100, 250)),
                         ct_options=ct_opts)

# %% [markdown]
# ## 7. Teaching models, not clinical tools
#
# What the tables above measure is narrow, and it is worth saying how narrow.
#
# * **Few images.** Every mean +- sd is over 12 held-out phantoms (48 for
#   the lesions), every comparison paired; that is enough to see differences
#   of a few dB, not to rank methods that differ by a fraction of one.
# * **The prior knows only ellipses.** The test phantoms come from the same
#   generator as the training phantoms, which is the most favourable case a
#   learned prior can have. On the real CT slice, anatomy the prior has never
#   seen, it has nothing right to add and the data-consistency step is all
#   that keeps it honest; compare its row with the classical ones above.
# * **PSNR rewards the posterior mean, not a plausible image.** The mean of
#   several draws scored higher than a single draw on every CT phantom
#   because averaging removes what the draws disagree on; where they disagree
#   a lot (MRI at $R = 8$) the mean is also visibly blurrier, and a single draw
#   can place a crisp small ellipse where there was none (exercise 09.7). A
#   radiologist needs the detail that matters to be there and nothing
#   invented; neither PSNR nor SSIM measures that.
# * **Noise changes the picture.** Exact data consistency trusts every
#   measured number; with noisy data it copies the noise into the image
#   (11 dB at 23 views on the validation phantoms), and the damping that
#   prevents it depends on the geometry.
# * **Nothing here is validated.** Real scanners have fan or cone beams,
#   beam hardening, coil sensitivities, motion; real lesions are not blobs of
#   one contrast. The models are minutes of CPU training on 64x64 synthetic
#   phantoms. Use them to understand the methods, never to read a scan.
#
# ## Exercises
#
# **09.1** (derive) A VP state is $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$
# and $A$ is linear with orthonormal rows ($AA^\top = I$). What is the law of
# $Ax_t$ given $y = Ax_0$? Give the pair (factor multiplying $y$, standard
# deviation of the noise on each entry) at $\bar\alpha_t = 0.64$.

# %% [markdown] tags=["solution"]
# *Solution.* $A$ is linear, so $Ax_t = \sqrt{\bar\alpha_t}\,Ax_0 + \sqrt{1-\bar\alpha_t}\,A\epsilon
# = \sqrt{\bar\alpha_t}\,y + \sqrt{1-\bar\alpha_t}\,A\epsilon$. $A\epsilon$ is Gaussian with
# covariance $AA^\top = I$, so given $y$ the law is
# $\mathcal N(\sqrt{\bar\alpha_t}\,y,\ (1-\bar\alpha_t) I)$: the pair is
# $(\sqrt{0.64}, \sqrt{0.36}) = (0.8, 0.6)$. This is why the projection sampler
# noises the measurement as $\sqrt{\bar\alpha_t}\,y + \sqrt{1-\bar\alpha_t}\,Az$: the
# measured part of the state then has exactly the law it would have had.

# %% tags=["solution"]
answer_09_1 = (math.sqrt(0.64), math.sqrt(1 - 0.64))
check("09.1", answer_09_1)

# %% [markdown]
# **09.2** (derive) AnoDDPM noises to $t_0$. With the book's linear schedule
# ($\beta$ from $10^{-4}$ to $0.02$ over $T = 1000$ steps) and
# $\bar\alpha$ the running product of $1-\beta$, what amplitude of the image
# survives at code index 250 (`schedules.linear().alpha_bars[250]` is
# $\bar\alpha$ there)? Derive a closed-form approximation with
# $\log(1-\beta) \approx -\beta$, then give the exact value.

# %% [markdown] tags=["solution"]
# *Solution.* $\log\bar\alpha = \sum\log(1-\beta_s) \approx -\sum\beta_s$ over the
# 251 steps up to index 250; the betas are an arithmetic series, so the sum is
# $251\,(\beta_0 + \beta_{250})/2$ with $\beta_{250} = 10^{-4} + 0.0199 \cdot 250/999$,
# about 0.650 (printed below), and the amplitude
# $\sqrt{\bar\alpha} \approx e^{-0.325} \approx 0.722$. The exact product is a
# little smaller, by less than the third decimal (the neglected $-\beta^2/2$
# terms sum to about $0.001$ in $\log\bar\alpha$).

# %% tags=["solution"]
sched = schedules.linear(T=1000)
approx_09_2 = math.exp(-0.5 * float(sched.betas[:251].sum()))
answer_09_2 = float(sched.alpha_bars[250].sqrt())
print(f"sum of the 251 betas {float(sched.betas[:251].sum()):.3f}: amplitude about {approx_09_2:.3f}, "
      f"exactly {answer_09_2:.3f}")
check("09.2", answer_09_2)

# %% [markdown]
# **09.3** (predict, then run) `sample_projection(..., weight=w)` moves the
# state a fraction $w$ of the way to the measurement-consistent set, and
# projects the output once more at the end. *Before running anything*, predict
# which of $w = 0.5$ and $w = 1$ gives an output that explains a noiseless
# measurement to float precision. Then run both on one validation phantom at
# 16 views and print `consistency_psnr(op, out, y, data_range=float(y.abs().max()))`
# for each. Answer with the weight.

# %% tags=["solution"]
m09, s09 = train.load_or_train("phantom64")
x_val = medical.phantoms("val", 64, 1)
op16 = Radon(64, 16)
y16 = op16(x_val)
cpsnr = {}
for w in (0.5, 1.0):
    out = consistency.sample_projection(m09, torch.randn(1, 1, 64, 64, generator=gen(0)), s09, pick(50, 5),
                                        operator=op16, y=y16, weight=w, generator=gen(1), progress=False)
    cpsnr[w] = consistency_psnr(op16, out, y16, data_range=float(y16.abs().max()))
answer_09_3 = max(cpsnr, key=cpsnr.get)
check("09.3", answer_09_3)

# %% [markdown]
# **09.4** (implement) Write score-MRI's
# hard data consistency for a real image, `dc(x, y, mask)`: take the centred
# orthonormal FFT of `x`, keep it where `mask` is 0 and put `y` where it is 1,
# transform back and keep the real part. The checker compares your function
# with `consistency.data_consistency(KSpace(mask), x, y)` on a mask that is
# mirror-symmetric ($k$ sampled iff $-k$ is).

# %% tags=["solution"]
def dc(x, y, mask):
    k = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
    k = k * (1 - mask) + y * mask
    return torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho").real
check("09.4", dc)

# %% [markdown]
# **09.5** (open) On a mask that is *not* mirror-symmetric (`kind="random"`),
# your `dc` and the library differ. Which one makes $A\,\mathrm{dc}(x) = y$ hold
# exactly for a real image, and why does the real part of the zero-filled
# correction fall short by a factor of 2 on lines whose mirror was not sampled?
#
# **09.6** (open) `phantom64_simplex` learnt simplex noise of 4 octaves
# (`ddlearn.simplex.simplex_noise`'s default); the `tune:anomaly` rows
# changed the octaves at test time only. Register a recipe that trains with
# 2 octaves (a `noise_options`-style entry in the loss, or a new noise name),
# train it, and measure whether the best test-time octaves follow the
# training ones. What does that say about tuning a noise the prior was not
# trained on?
#
# **09.7** (open) Find a test phantom where the diffusion reconstruction at 8
# views scores a higher PSNR than SART+TV but invents or erases a small
# low-contrast ellipse. Would a radiologist prefer it? What would you measure
# instead of PSNR?
#
# ## References
#
# * A. Kazerouni, E. K. Aghdam, M. Heidari, R. Azad, M. Fayyaz, I. Hacihaliloglu,
#   D. Merhof. *Diffusion models in medical imaging: A comprehensive survey.*
#   Medical Image Analysis 88, 102846, 2023 (the map of Section 1).
# * Y. Song, L. Shen, L. Xing, S. Ermon. *Solving Inverse Problems in Medical
#   Imaging with Score-Based Generative Models.* ICLR 2022 (the projection sampler).
# * H. Chung, J. C. Ye. *Score-based diffusion models for accelerated MRI.*
#   Medical Image Analysis 80, 102479, 2022 (score-MRI, hard data consistency).
# * H. Chung, J. Kim, M. T. Mccann, M. L. Klasky, J. C. Ye. *Diffusion Posterior
#   Sampling for General Noisy Inverse Problems.* ICLR 2023 (DPS).
# * J. Wyatt, A. Leach, S. M. Schmon, C. G. Willcocks. *AnoDDPM: Anomaly Detection
#   with Denoising Diffusion Probabilistic Models using Simplex Noise.* CVPR
#   Workshops 2022.
# * J. Wolleb, F. Bieder, R. Sandkuhler, P. C. Cattin. *Diffusion Models for
#   Medical Anomaly Detection.* MICCAI 2022.
# * L. A. Shepp, B. F. Logan. *The Fourier reconstruction of a head section.*
#   IEEE Transactions on Nuclear Science 21(3), 1974 (the phantom).
# * A. H. Andersen, A. C. Kak. *Simultaneous algebraic reconstruction technique
#   (SART).* Ultrasonic Imaging 6(1), 1984.
# * M. Lustig, D. Donoho, J. M. Pauly. *Sparse MRI: The application of
#   compressed sensing for rapid MR imaging.* Magnetic Resonance in Medicine
#   58(6), 2007 (variable-density sampling, TV compressed sensing).
# * J. Zbontar et al. *fastMRI: An Open Dataset and Benchmarks for Accelerated
#   MRI.* arXiv:1811.08839, 2018 (the Cartesian masks with a fully sampled centre).
# * A. Chambolle. *An algorithm for total variation minimization and
#   applications.* J. Math. Imaging and Vision 20, 2004 (the TV denoiser).
# * K. Perlin. *Improving noise.* SIGGRAPH 2002; S. Gustavson, *Simplex noise
#   demystified*, 2005 (simplex noise).
# * The other papers of the map: Gong et al. 2022; Xiang et al. 2023; Wolleb et
#   al., MIDL 2022; Wu et al., MIDL 2023; Ozbey et al. 2023; Lyu & Wang 2022;
#   Pinaya et al. 2022; Dorjsembe et al. 2022; Kim, Han & Ye 2022; Yang et al. 2023
#   (full titles in the survey and its companion list,
#   github.com/amirhossein-kz/Awesome-Diffusion-Models-in-Medical-Imaging).

# %%
print(f"chapter ran in {time.perf_counter() - chapter_start:.1f} s ({'fast' if is_fast() else 'full'} mode)")
