"""Chapter 06 targets: guidance scale trade-off on digits, and posterior sampling on held-out digits.

    flock /tmp/ddlearn-heavy.lock python benchmarks/guidance.py                 # everything
    flock /tmp/ddlearn-heavy.lock python benchmarks/guidance.py --part posterior --n-digits 16

Guidance (needs the shipped ``digits_cfg``, ``digit_classifier_noisy`` and ``digit_classifier``):
for each scale, ``--per-class`` digits of every class from the same noise
(DDIM, ``--steps`` steps), classified by the clean digit classifier
(accuracy = share classified as the requested class) and compared with the
359 held-out digits by the Frechet digit distance (FDD, lower is better).
Scale 0 is the unconditional model (the null class). The "data" row is the
FDD of as many training digits (same number per class) against the held-out
ones (the floor; FDD, like FID, is biased upwards for small sets).
Target: at the best scale, accuracy >= 95% with FDD no worse than scale 0.

Posterior sampling: ``--n-digits`` held-out digits, ``--samples`` posterior
samples each, for box inpainting, random-pixel inpainting (30% kept), 4x
super-resolution and Gaussian blur (sigma 1.5), noiseless, and the blur again
with measurement noise 0.05. PSNR against
the truth (dB, mean over samples, outputs clipped to [-1, 1]), consistency PSNR of A(x_hat) against y (on the raw output: clipping changes A(x_hat)),
and the spread (mean per-pixel std over the samples of one digit).
Target: consistency above 30 dB for the projection method (DDNM).
"""
from __future__ import annotations

import argparse
import time

import torch

from ddlearn import data, metrics, operators, pretrained
from ddlearn.guidance import classifier_free, classifier_guidance
from ddlearn.report import table
from ddlearn.restoration import (
    classical,
    consistency_psnr,
    sample_ddnm,
    sample_dps,
    sample_guided,
)
from ddlearn.samplers import sample_ddim

CFG_SCALES = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
CG_SCALES = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)
#: guidance step sizes used for digits here and in Chapter 06
DPS_SCALE, X0_SCALE = 2.0, 1.0


def guidance_part(args):
    cfg, schedule = pretrained.load("digits_cfg")
    noisy_clf = pretrained.load("digit_classifier_noisy").model
    clf = pretrained.load("digit_classifier").model
    held = data.digits("test")
    train, train_labels = data.digits("train", return_labels=True)
    n = args.per_class * 10
    labels = torch.arange(10).repeat_interleave(args.per_class)
    x_T = torch.randn(n, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    rows = []

    def score(method, scale, x):
        acc = (clf(x).argmax(1) == labels).float().mean().item()
        rows.append({"method": method, "scale": f"{scale:g}", "accuracy": f"{100 * acc:.1f}%",
                     "FDD": f"{metrics.frechet_digit_distance(x, held, classifier=clf):.2f}"})

    t0 = time.time()
    for s in CFG_SCALES:
        score("classifier-free", s, sample_ddim(classifier_free(cfg, labels, s), x_T, schedule, args.steps,
                                                 progress=False))
    uncond = classifier_free(cfg, labels, 0.0)
    for s in CG_SCALES[1:]:
        guided = classifier_guidance(uncond, noisy_clf, labels, s, schedule)
        score("classifier", s, sample_ddim(guided, x_T, schedule, args.steps, progress=False))
    sub = torch.cat([train[train_labels == c][:args.per_class] for c in range(10)])  # same per-class counts
    rows.append({"method": "data (train vs held-out)", "scale": "-", "accuracy": "-",
                 "FDD": f"{metrics.frechet_digit_distance(sub, held, classifier=clf):.2f}"})
    if "digits" in pretrained.available():
        unc, unc_sched = pretrained.load("digits")
        x = sample_ddim(unc, x_T, unc_sched, args.steps, progress=False)
        rows.append({"method": "unconditional 'digits' model", "scale": "-", "accuracy": "-",
                     "FDD": f"{metrics.frechet_digit_distance(x, held, classifier=clf):.2f}"})
    print(f"Guidance on digits: {args.per_class} per class, DDIM {args.steps} steps "
          f"({time.time() - t0:.0f} s)")
    table(rows, ["method", "scale", "accuracy", "FDD"])


def posterior_part(args):
    model_cfg, schedule = pretrained.load("digits_cfg")
    model = classifier_free(model_cfg, 0, 0.0)  # the null class: an unconditional prior
    x = data.digits("test")[:args.n_digits]
    k = args.samples
    truth = x.repeat_interleave(k, 0)
    g0 = torch.Generator().manual_seed(0)
    ops = {"box inpainting": operators.get("inpaint_box", 16),
           "random pixels (30%)": operators.get("inpaint_random", 16, generator=g0),
           "4x super-resolution": operators.get("sr4", 16),
           "blur (sigma 1.5)": operators.get("blur", 16),
           "noisy blur (sigma 1.5, noise 0.05)": operators.get("blur", 16, noise=0.05)}
    rows = []
    for name, op in ops.items():
        y = op.measure(truth, generator=torch.Generator().manual_seed(5))
        x_T = torch.randn(truth.shape, generator=torch.Generator().manual_seed(1))
        kw = dict(operator=op, y=y, clip=(-1.0, 1.0), progress=False)
        methods = {
            "DDNM": lambda: sample_ddnm(model, x_T, schedule, args.steps, generator=torch.Generator().manual_seed(2), **kw),
            "DPS (on x_t)": lambda: sample_dps(model, x_T, schedule, args.steps, scale=DPS_SCALE,
                                               generator=torch.Generator().manual_seed(2), **kw),
            "guidance on x0": lambda: sample_guided(model, x_T, schedule, args.steps, on="x0", scale=X0_SCALE,
                                                    generator=torch.Generator().manual_seed(2), **kw),
            "classical": lambda: classical(op, y),
        }
        for m, run in methods.items():
            t0 = time.time()
            raw = run()
            out = raw.clamp(-1, 1)
            spread = out.reshape(args.n_digits, k, -1).std(1).mean().item() if k > 1 else 0.0
            rows.append({"measurement": name, "method": m,
                         "PSNR (dB)": f"{metrics.psnr(out, truth):.2f}",
                         "consistency (dB)": f"{consistency_psnr(op, raw, y):.2f}",
                         "spread": f"{spread:.3f}", "seconds": f"{time.time() - t0:.0f}"})
    print(f"Posterior sampling on {args.n_digits} held-out digits x {k} samples, {args.steps} steps "
          f"(the classical baseline is deterministic: its spread is the measurement noise's alone)")
    table(rows, ["measurement", "method", "PSNR (dB)", "consistency (dB)", "spread", "seconds"])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("all", "guidance", "posterior"), default="all")
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--n-digits", type=int, default=32)
    p.add_argument("--samples", type=int, default=3)
    a = p.parse_args()
    if a.part in ("all", "guidance"):
        guidance_part(a)
    if a.part in ("all", "posterior"):
        posterior_part(a)
