"""Chapter 07 targets: GDP-x0, GDP-xt, DPS, DDNM and classical baselines on held-out images, one table a task.

    flock /tmp/ddlearn-heavy.lock python benchmarks/restoration.py                       # everything (long)
    flock /tmp/ddlearn-heavy.lock python benchmarks/restoration.py --quick               # a small subset
    python benchmarks/restoration.py --prior gray --tasks sr4 blur --n 16 --k 4
    python benchmarks/restoration.py --split val --tasks sr4 --sweep GDP-x0:scale=0.1,0.3,1   # tuning
    python benchmarks/restoration.py --whole                                             # whole photographs

Priors: ``gray`` (``photo_patches_gray``, 32x32 luminance patches), ``rgb``
(the same gray prior on each colour channel, :class:`ddlearn.restoration.ChannelModel`:
no colour prior was trained this session) and ``faces`` (``faces``, lfw). Images:
``--split test`` (default) takes ``--n`` random patches of the held-out
photographs camera, astronaut and coffee (or the 20 held-out faces);
``--split val`` takes validation patches (the right-hand strips of the
training photographs, never trained on; the 10 validation faces): defaults
are chosen there, never on the test images. ``--whole`` restores the whole
held-out photographs at 128x128 patch-wise (:class:`ddlearn.restoration.PatchModel`).

For every task (:mod:`ddlearn.restoration.tasks`), each diffusion method
draws ``--k`` samples per image with ``--steps`` steps. Rows: "1 sample"
scores every sample on its own (mean over the k samples, then mean +- sd over
images); "mean of k" scores the average of the k samples. Columns: PSNR and
SSIM against the truth (outputs clipped to [-1, 1]), consistency PSNR of
A(x_hat) against y (raw outputs), sharpness (Sobel gradient energy / the
truth's: 1 is as sharp), colour error (CIELAB chroma distance, colour images),
the relative error of the learnt parameter (blind tasks), seconds per image
(per sample for diffusion methods: the batch's wall time / (n k)).

Targets (issue 13): mean of K beats bicubic by >= 0.5 dB PSNR and in SSIM
at 4x SR, and every classical baseline at 8x SR and box inpainting; single
samples have sharpness in [0.8, 1.2] while within 1 dB of the best baseline's
PSNR; blind low light: f within 15% and better than gamma, CLAHE and
max-stretch in PSNR and SSIM; blind deblurring: width within 15%;
colorization: colour error well below the luminance-only baseline's.
"""
from __future__ import annotations

import argparse
import re
import time

import numpy as np
import torch

from ddlearn import data, train
from ddlearn.report import fmt_mean_sd, table
from ddlearn.restoration import ChannelModel, PatchModel
from ddlearn.restoration.tasks import METHODS, TASKS, make_task, restore, score

PRIORS = {"gray": "photo_patches_gray", "rgb": "photo_patches_gray", "faces": "faces"}  # rgb: gray per channel
PRIOR_TASKS = {
    "gray": ("sr4", "sr8", "blur", "inpaint_random", "inpaint_box", "inpaint_text", "lowlight", "blind_blur"),
    "rgb": ("sr4", "colorize", "lowlight", "inpaint_box"),
    "faces": ("sr8", "inpaint_box"),
}


def ms(vals):
    return fmt_mean_sd(vals, digits=2)


def images(prior: str, split: str, n: int, seed: int) -> torch.Tensor:
    if prior == "faces":
        x = data.faces("val" if split == "val" else "test", 32)
        return x[:n]
    channels = 1 if prior == "gray" else 3
    if split == "test":
        return data.patches("test", 32, channels=channels, n=n, seed=seed)
    return data.patches("val", 32, channels=channels, n=n, seed=seed)


def whole_photos(prior: str, size: int) -> torch.Tensor:
    gray = prior == "gray"
    return torch.cat([data.image(name, size, gray=gray) if gray else
                      data.image(name, size).expand(-1, 3, -1, -1) for name in data.HELDOUT])


def row_from_scores(name, per_sample, k, secs, n_images, extra=None):
    """per_sample: list over k of score dicts (per image lists)."""
    r = {"method": name}
    for key, col in (("psnr", "PSNR"), ("ssim", "SSIM"), ("consistency", "cons. dB"), ("sharpness", "sharp"),
                     ("colour_error", "colour err")):
        if key in per_sample[0]:
            per_image = np.mean([s[key] for s in per_sample], axis=0)
            r[col] = fmt_mean_sd(per_image, digits=3 if key == "ssim" else 2)
    if extra:
        r.update(extra)
    r["s/img"] = f"{secs / max(1, n_images * k):.2f}"
    return r


def parse_sweep(spec):
    """'GDP-x0:scale=0.1,0.3,1' -> ('GDP-x0', 'scale', [0.1, 0.3, 1.0])."""
    m = re.fullmatch(r"([\w-]+):(\w+)=([\w.,e+-]+)", spec)
    if not m:
        raise SystemExit(f"--sweep must look like GDP-x0:scale=0.1,0.3,1, got {spec!r}")
    vals = []
    for v in m.group(3).split(","):
        try:
            vals.append(int(v) if re.fullmatch(r"-?\d+", v) else float(v))
        except ValueError:
            vals.append({"true": True, "false": False}.get(v.lower(), v))
    return m.group(1), m.group(2), vals


def run_task(task_name, model, schedule, x, args, *, methods, sweep=None):
    g = torch.Generator().manual_seed(args.seed)
    task = make_task(task_name, x, noise=args.noise, generator=g)
    n, k = x.shape[0], args.k
    rows = []
    for name, base in task.baselines().items():
        t0 = time.perf_counter()
        s = score(task, base)
        rows.append(row_from_scores(name, [s], 1, time.perf_counter() - t0, n))
    runs = [(m, {}) for m in methods]
    if sweep is not None:
        method, key, vals = sweep
        runs = [(method, {key: v}) for v in vals]
    for method, opts in runs:
        t0 = time.perf_counter()
        out, op = restore(method, model, schedule, task, steps=args.steps, k=k,
                          generator=torch.Generator().manual_seed(args.seed + 1), **opts)
        secs = time.perf_counter() - t0
        if out is None:
            continue
        label = method + (f" {list(opts.items())[0][0]}={list(opts.values())[0]}" if opts else "")
        per_sample = [score(task, out[:, j]) for j in range(k)]
        extra = {}
        err = task.estimate_error(op, k) if method.startswith("GDP") else {}
        for key, v in err.items():
            extra["param err"] = f"{key} {fmt_mean_sd(v, digits=1, scale=100, unit='%')}"
        rows.append(row_from_scores(f"{label} (1 sample)", per_sample, k, secs, n, extra))
        if k > 1:
            rows.append(row_from_scores(f"{label} (mean of {k})", [score(task, out.mean(1))], k, secs, n))
    cols = ["method", "PSNR", "SSIM", "cons. dB", "sharp"]
    if x.shape[1] == 3:
        cols.append("colour err")
    if any("param err" in r for r in rows):
        cols.append("param err")
    cols.append("s/img")
    print(f"== {task_name}  (noise {args.noise:g}, {n} images, {k} samples, {args.steps} steps, split "
          f"{args.split})")
    table(rows, cols)
    return rows


def memorisation(model, schedule, n: int, steps: int, seed: int) -> None:
    """The face prior's samples against its training faces (ddlearn.metrics.nearest_neighbour)."""
    from ddlearn import metrics
    from ddlearn.samplers import sample_ddim

    x_T = torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed))
    samples = sample_ddim(model, x_T, schedule, steps, progress=False).clamp(-1, 1)
    r = metrics.nearest_neighbour(samples, data.faces("train", 32, flips=True), data.faces("test", 32))
    print(f"== memorisation: {n} face samples (DDIM, {steps} steps) vs the 140 training faces (70 + mirrors)")
    print(f"median distance to the nearest training face: samples {r['sample_median']:.3f}, held-out faces "
          f"{r['heldout_median']:.3f} (ratio {r['ratio_median']:.2f}); samples closer to a training face than any "
          f"held-out face: {100 * r['frac_closer_than_heldout_min']:.1f}%\n", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", choices=tuple(PRIORS), nargs="+", default=list(PRIORS))
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=None)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--n", type=int, default=24, help="images (patches) per task")
    p.add_argument("--k", type=int, default=4, help="posterior samples per image")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="8 images, 2 samples, 50 steps, gray prior, 3 tasks")
    p.add_argument("--whole", action="store_true", help="whole 128x128 held-out photographs, patch-wise")
    p.add_argument("--sweep", default=None, help="METHOD:option=v1,v2,... (use with --split val)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.k, args.steps = 8, 2, 50
        args.prior = ["gray"] if args.prior == list(PRIORS) else args.prior
        args.tasks = args.tasks or ["sr4", "inpaint_box", "lowlight"]
    sweep = parse_sweep(args.sweep) if args.sweep else None
    start = time.perf_counter()
    for prior in args.prior:
        model, schedule = train.load_or_train(PRIORS[prior])
        if prior == "rgb":
            model = ChannelModel(model)
        tasks = [t for t in (args.tasks or PRIOR_TASKS[prior]) if t in TASKS and (t != "colorize" or prior == "rgb")]
        if args.whole:
            if prior == "faces":
                continue
            x = whole_photos(prior, 128)
            model = PatchModel(model, 32, 16)
            print(f"##### prior {prior}: whole held-out photographs {tuple(x.shape)}, patch 32, stride 16")
        else:
            x = images(prior, args.split, args.n, args.seed)
            print(f"##### prior {prior}: {x.shape[0]} {args.split} images {tuple(x.shape[1:])}")
            if prior == "faces" and args.sweep is None:
                memorisation(model, schedule, 50 if args.quick else 200, 50, args.seed)
        for t in tasks:
            run_task(t, model, schedule, x, args, methods=args.methods, sweep=sweep)
    print(f"total {time.perf_counter() - start:.0f} s (2 torch threads)")


if __name__ == "__main__":
    main()
