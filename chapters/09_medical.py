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
#   with Gaussian and simplex noise, against thresholding and an autoencoder.
#
# **These are teaching models, not clinical tools.** The priors are tiny,
# trained for minutes on synthetic ellipse phantoms; the real DICOM slices are
# two test files from pydicom. Nothing here has been validated for diagnosis,
# and a reconstruction that scores a higher PSNR can still invent or erase the
# one detail a radiologist needed (Section 7 comes back to this).

# %%
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
from ddlearn.operators.medical import KSpace, Radon, kspace_mask
from ddlearn.restoration import anomaly, consistency, reconstruction
from ddlearn.restoration import sample_dps
from ddlearn.samplers import sample_ddim

chapter_start = time.perf_counter()
print("fast mode" if is_fast() else "full mode", "| torch", torch.__version__)


def gen(seed):
    return torch.Generator().manual_seed(seed)


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
samples = sample_ddim(model, torch.randn(pick(6, 2), 1, 64, 64, generator=gen(2)), schedule, pick(50, 5),
                      progress=False)
show(list(samples.clamp(-1, 1)), ["prior sample"] * len(samples))

# %% [markdown]
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
# draws averaged) live in the library, next to a note of what was measured
# to choose them, always on the *validation* phantoms, never on the test
# phantoms below (`python benchmarks/medical.py --tune` reruns the search).
# The noiseless setting was checked there (50 steps, the mean of 4 draws);
# the damping for noisy data and the DPS step size are first guesses that
# were not tuned, and the tables below show how they fare:

# %%
print("noiseless CT:", consistency.CT)
print("CT with 1% noise:", consistency.CT_NOISY)
print("DPS:", consistency.DPS_CT)

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
# Now the same comparison over several held-out phantoms, with and without 1%
# measurement noise (Gaussian, standard deviation 1% of each image's largest
# attenuation line integral), mean +- sd over images:

# %%
def ms(v):
    """mean +- sd (over images) of a list of per-image values."""
    v = np.asarray(v, dtype=np.float64)
    return f"{v.mean():5.2f} +- {v.std(ddof=1) if v.size > 1 else 0.0:4.2f}"


n_eval = pick(3, 1)
xs = test_set[:n_eval]
ct_table = {}
for views in pick((8, 16, 23), (23,)):
    op = Radon(64, views)
    for noise in pick((0.0, 0.01), (0.0,)):
        d = dict(consistency.CT_NOISY if noise else consistency.CT)
        kk, st = d.pop("samples"), pick(d.pop("steps"), 5)
        ys = op.measure_relative(xs, noise, generator=gen(views))
        outs = {name: reconstruction.baseline(name, op, ys) for name in ("FBP", "SART", "SART+TV")}
        mean, draws = consistency.reconstruct(model, schedule, op, ys, method="projection", steps=st, samples=kk,
                                              generator=gen(10 + views), clip=(-1.0, 1.0), **d)
        outs["diffusion, 1 draw"], outs[f"diffusion, mean of {kk}"] = draws[0].clamp(-1, 1), mean.clamp(-1, 1)
        ct_table[views, noise] = {name: (psnr(o, xs, reduction="none"), ssim(o, xs, reduction="none"))
                                  for name, o in outs.items()}
print(f"{n_eval} test phantoms; PSNR in dB (SSIM), mean +- sd over the images")
names = list(next(iter(ct_table.values())))
print(f"{'views':>5} {'noise':>5}  " + "  ".join(f"{n:>24}" for n in names))
for (views, noise), row in ct_table.items():
    print(f"{views:5d} {100 * noise:4.0f}%  " +
          "  ".join(f"{ms(p)} ({np.mean(s):.3f})" for p, s in row.values()))

# %% [markdown]
# How to read the table: each row is one geometry and noise level; the
# columns are FBP, SART, SART+TV (20 sweeps, TV weight 0.005, tuned on
# validation phantoms), one draw of the projection sampler and the mean of
# the draws. Compare the mean with the best classical column, not only with
# SART+TV, and compare the difference with the spread: with three images an
# advantage of a fraction of a dB is noise. The noisy rows use a damping that
# was not tuned; that is where a baseline is most likely to win.
#
# **What this run shows** (full mode, three test phantoms, so read every
# difference against its spread). Without noise, the mean of four draws has
# the highest PSNR at both 16 and 23 views ($37.9 \pm 3.9$ and
# $41.0 \pm 3.8$ dB against SART+TV's $34.3 \pm 0.2$ and $37.1 \pm 0.3$),
# but SART+TV keeps the higher SSIM (0.988 and 0.993 against 0.959 and
# 0.981): the prior gets the values right on average, TV gets the edges. With
# 1% noise the order turns: SART+TV wins at both view counts ($33.1 \pm 0.7$
# against $32.0 \pm 1.6$ dB at 16 views, $34.9 \pm 0.9$ against
# $31.2 \pm 2.0$ at 23), because hard data consistency copies the noise into
# the image. The diffusion columns also spread much more from image to image
# ($\pm 2$ to $4$ dB against TV's $\pm 0.2$ to $0.9$).

# %% [markdown]
# ### DPS, an unseen phantom, and a real CT slice
#
# DPS with its tuned step size on the same test phantoms at 23 views, with
# and without noise; then the projection sampler on scikit-image's
# Shepp-Logan phantom (never seen in training) and on the CT slice of
# `CT_small.dcm`, resized to 64x64 and mapped from HU to [-1, 1] (-1000 HU to
# -1, +1000 HU to 1), measured with 23 simulated views. The phantom prior has
# never seen anatomy like the real slice: the honest expectation is that it
# helps little there, or hurts.

# %%
op = Radon(64, 23)
d = dict(consistency.DPS_CT)
dps_steps = pick(d.pop("steps"), 5)
for noise in pick((0.0, 0.01), (0.0,)):
    ys = op.measure_relative(xs, noise, generator=gen(23))
    dps_out, _ = consistency.reconstruct(model, schedule, op, ys, method=sample_dps, steps=dps_steps, samples=1,
                                         generator=gen(5), clip=(-1.0, 1.0), **d)
    p_dps = psnr(dps_out.clamp(-1, 1), xs, reduction="none")
    row = ct_table[23, noise]
    print(f"23 views, {100 * noise:.0f}% noise: DPS (1 draw) {ms(p_dps)} dB   projection (1 draw) "
          f"{ms(row['diffusion, 1 draw'][0])}   SART+TV {ms(row['SART+TV'][0])}")

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
# DPS needs no pseudo-inverse and its step size is the only knob; here it
# was not tuned, and the printed rows say how far that leaves it from the
# projection sampler. The two single-image rows have no spread to quote: the
# Shepp-Logan phantom is close to the training distribution (ellipses), the
# real slice is not, and the gap between the diffusion column and the best
# classical one is the part of the prior's help that transfers.
#
# In this run: DPS reaches $31.8$ dB at 23 views with or without noise, well
# below the projection sampler without noise ($37.0 \pm 4.8$) and, with
# noise, above it ($30.9 \pm 2.0$) but below SART+TV ($34.9 \pm 0.9$): its
# soft pull does not copy the noise, and does not use exact data either. On
# the Shepp-Logan phantom the prior helps (mean of 4: $33.9$ dB against
# SART+TV's $30.7$; SSIM 0.956 against 0.976, TV again sharper). On the real
# CT slice **the baseline wins clearly**: FBP $29.3$ dB, diffusion $21.7$
# (and the iterative methods, SART $19.2$ and SART+TV $20.6$, also fail
# there). One image each: these are examples, not estimates.
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
mri_rows = []
d = dict(consistency.MRI)
kk, st = d.pop("samples"), pick(d.pop("steps"), 5)
for name, m in masks.items():
    op = KSpace(m)
    ys = op(xs)
    zf, cs = reconstruction.zero_filled(op, ys), reconstruction.tv_cs(op, ys)
    mean, draws = consistency.reconstruct(model, schedule, op, ys, method="score_mri", steps=st, samples=kk,
                                          generator=gen(20), clip=(-1.0, 1.0), **d)
    mean, one = mean.clamp(-1, 1), draws[0].clamp(-1, 1)
    mri_rows.append((name, zf, cs, mean))
    p = [psnr(r, xs, reduction="none") for r in (zf, cs, one, mean)]
    print(f"{name:20s} zero-filled {ms(p[0])}   TV-CS {ms(p[1])}   score-MRI 1 draw {ms(p[2])}, "
          f"mean of {kk} {ms(p[3])} dB")
fig, axes = plt.subplots(len(mri_rows), 4, figsize=(7.5, 2 * len(mri_rows)), layout="constrained")
for row, (name, zf, cs, mean) in zip(axes, mri_rows):
    for ax, (im, title) in zip(row, ((xs[:1], f"truth ({name})"), (zf[:1], "zero-filled"), (cs[:1], "TV-CS"),
                                     (mean[:1], "score-MRI"))):
        ax.imshow(im[0, 0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(title + ("" if title.startswith("truth") else f" {psnr(im, xs[:1]):.1f} dB"), fontsize="x-small")
        ax.set_axis_off()
plt.show()

# %% [markdown]
# Equispaced undersampling aliases coherently (shifted copies of the
# image), which TV cannot tell from structure; the random variable-density
# mask aliases incoherently, which is the situation compressed sensing was
# designed for, and TV-CS is at its best there. Compare score-MRI with TV-CS
# mask by mask: the prior's advantage is largest where TV's assumption
# fails.
#
# In this run (three test phantoms, mean $\pm$ sd): at $R = 4$ equispaced,
# score-MRI $40.1 \pm 1.9$ dB (one draw) against TV-CS $26.9 \pm 2.2$; with
# the variable-density mask TV-CS improves to $36.8 \pm 3.0$ and score-MRI
# stays ahead ($42.8 \pm 1.7$), a smaller margin, as the argument above
# predicts. At $R = 8$ everything fails (score-MRI $21.9 \pm 4.0$, TV-CS
# $15.6 \pm 1.6$): at 4% of the lines even a good prior cannot recover what
# was never measured. Here one draw scores as well as the mean of four: with
# this much data the draws hardly disagree.
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
les = medical.lesions("test", 64, pick(24, 4))
show([*les["x"][:4], *les["mask"][:4].float() * 2 - 1], ["with lesion"] * 4 + ["mask"] * 4, size=1.6)

# %%
show_source(anomaly.anomaly_map)

# %% [markdown]
# AnoDDPM's other idea is the noise itself. White Gaussian noise is
# independent from pixel to pixel; at a moderate $t_0$ a large lesion's
# low-frequency content survives it. **Simplex noise** (Perlin's successor, a
# sum of smooth random fields over a few octaves, normalised to unit variance)
# hides large structures at the same noise level. Here it is next to Gaussian
# noise, and what each does to a phantom at $t_0 = 250$:

# %%
g_noise = torch.randn(1, 1, 64, 64, generator=gen(8))
s_noise = anomaly.simplex_noise((1, 1, 64, 64), generator=gen(8))
show([g_noise / 3, s_noise / 3, anomaly.partial_noise(les["x"][:1], 250, schedule, generator=gen(9)),
      anomaly.partial_noise(les["x"][:1], 250, schedule, noise="simplex", generator=gen(9))],
     ["Gaussian noise", "simplex noise", "x_250, Gaussian", "x_250, simplex"])

# %% [markdown]
# Two baselines: **thresholding** (each pixel's distance from the image's
# median tissue value: anything unusual is flagged, including healthy skull
# and dark organs) and an **autoencoder** trained on the same healthy phantoms
# (`phantom_ae64`, a bottleneck of 8x8x4 numbers; its $|x - \mathrm{AE}(x)|$).
# Scores: **pixel AUROC** (the probability that a random lesion pixel scores
# above a random healthy one, over the pixels of the head) and the **best
# Dice** over thresholds (optimistic: the threshold is chosen on the same data,
# as AnoDDPM reports it). The diffusion prior was trained with Gaussian noise
# only; simplex noise at test time is therefore a mismatch that we measure,
# not AnoDDPM's full recipe (which also trains with simplex noise).

# %%
ae = train.load_or_train("phantom_ae64")[0]
head = les["healthy"] > -0.99
maps = {"thresholding": anomaly.threshold_score(les["x"]), "autoencoder": anomaly.reconstruction_score(ae, les["x"])}
for noise in anomaly.NOISES:
    t0 = anomaly.T0[noise]
    maps[f"AnoDDPM {noise}, t0={t0}"] = anomaly.anomaly_map(model, schedule, les["x"], t0=t0,
                                                            steps=pick(anomaly.STEPS, 3), noise=noise,
                                                            samples=anomaly.SAMPLES, generator=gen(10))[0]
for name, m in maps.items():
    print(f"{name:28s} pixel AUROC {anomaly.pixel_auroc(m, les['mask'], region=head):.3f}   "
          f"best Dice {anomaly.best_dice(m, les['mask'], region=head)[0]:.3f}")
fig, axes = plt.subplots(3, 2 + len(maps), figsize=(1.6 * (2 + len(maps)), 5.2), layout="constrained")
for r in range(3):
    axes[r, 0].imshow(les["x"][r, 0], cmap="gray", vmin=-1, vmax=1)
    axes[r, 1].imshow(les["mask"][r, 0], cmap="gray")
    for c, (name, m) in enumerate(maps.items()):
        axes[r, 2 + c].imshow(m[r, 0], cmap="magma")
        if r == 0:
            axes[r, 2 + c].set_title(name.replace(", ", "\n"), fontsize="x-small")
axes[0, 0].set_title("image", fontsize="x-small")
axes[0, 1].set_title("lesion mask", fontsize="x-small")
for ax in axes.flat:
    ax.set_axis_off()
plt.show()

# %% [markdown]
# Thresholding flags every unusual intensity, healthy skull and dark organs
# included, so it is a floor. The autoencoder and AnoDDPM both reconstruct a
# healthy-looking image and flag the difference; AnoDDPM's noise level sets
# how much of the lesion survives. Simplex noise at test time is a mismatch
# for a prior trained with Gaussian noise (see the caveat above), so its row
# says little about AnoDDPM's full recipe. Best Dice is optimistic (its
# threshold is chosen on the same images).
#
# In this run (24 held-out phantoms with lesions) **the autoencoder beats
# AnoDDPM** on both scores: pixel AUROC 0.856 against 0.833 (Gaussian noise,
# $t_0 = 300$, the level chosen on validation phantoms) and best Dice 0.366
# against 0.267. Both are far above thresholding (0.637) and simplex noise
# (0.578). A diffusion prior is not automatically the better anomaly
# detector: on these blobs a small bottleneck, which cannot reproduce a
# lesion it never saw, does the job at least as well, with one network call.
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
# * **Few images.** Every mean +- sd is over a handful of held-out phantoms
#   (three in this notebook's full run; `python benchmarks/medical.py` measures
#   more). A difference smaller than the spread is not a result.
# * **The prior knows only ellipses.** The test phantoms come from the same
#   generator as the training phantoms, which is the most favourable case a
#   learned prior can have. On the real CT slice, anatomy the prior has never
#   seen, it has nothing right to add and the data-consistency step is all
#   that keeps it honest; compare its row with the classical ones above.
# * **PSNR rewards the posterior mean, not a plausible image.** The mean of
#   several draws scores higher than any one draw because averaging removes
#   what the draws disagree on; it is also blurrier, and a single draw can
#   place a crisp small ellipse where there was none (exercise 09.7). A
#   radiologist needs the detail that matters to be there and nothing
#   invented; neither PSNR nor SSIM measures that.
# * **Noise changes the picture.** Exact data consistency trusts every
#   measured number; with noisy data it copies the noise into the image, and
#   the damping that should prevent it was not tuned here (Section 3).
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
# about 0.638, and the amplitude $\sqrt{\bar\alpha} \approx e^{-0.319} \approx 0.727$.
# The exact product is a little smaller (the neglected $-\beta^2/2$ terms).

# %% tags=["solution"]
sched = schedules.linear(T=1000)
approx_09_2 = math.exp(-0.5 * float(sched.betas[:251].sum()))
answer_09_2 = float(sched.alpha_bars[250].sqrt())
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
# **09.6** (open) AnoDDPM trains its model with simplex noise too. Add a
# `"simplex"` option to the training loss (draw `anomaly.simplex_noise` instead
# of Gaussian noise), train `phantom64` with it for the same number of steps
# and compare pixel AUROC with Gaussian and simplex noise at test time. Does
# the mismatch we measured in Section 5 disappear?
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
