"""Chapter 09 targets: sparse-view CT, undersampled MRI and anomaly detection with a diffusion prior.

    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py                     # everything, test split
    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py --quick             # a few images, fewer settings
    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py --cases ct mri --n 8
    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py --tune              # choose defaults on "val"

Needs the shipped ``phantom64`` (and ``phantom128``, ``phantom_ae64``) checkpoints.

Every table row is mean +- sd over held-out images (the "test" split of
:mod:`ddlearn.data.medical`, which no prior saw); ``--tune`` runs the same
measurements on the "val" split to pick the defaults that the library
stores (:data:`ddlearn.restoration.consistency.CT`, ``MRI``, ``CT_NOISY``,
``DPS_CT``; :data:`ddlearn.restoration.anomaly.T0`, ...; the baselines'
weights in :mod:`ddlearn.restoration.reconstruction`). The test split is never
used for choosing anything.

* **CT** (64x64): 8, 16 and 23 views, noiseless and with 1% noise (Gaussian,
  sd 1% of each image's largest attenuation line integral). FBP, SART,
  SART+TV; Song et al.'s projection sampler (one draw, and the mean of
  ``samples`` draws); DPS. Also scikit-image's Shepp-Logan phantom (never
  seen) and the CT slice of ``CT_small.dcm`` at 23 views, and the 128x128
  phantoms with their own prior.
* **MRI** (64x64): x4 and x8 equispaced lines with a fully sampled centre,
  and x4 variable-density random lines; zero-filled, TV-CS, score-MRI
  (hard data consistency, one draw and the mean of draws).
* **Anomalies**: held-out phantoms with one lesion each; pixel AUROC and
  best Dice over the pixels of the head (air excluded; the whole image too),
  for AnoDDPM with Gaussian and simplex noise, intensity thresholding and the
  autoencoder.

Seconds are wall-clock per reconstruction (per image, all draws included) on
this machine; on the book's 2-core machine they were measured under the
shared lock.
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from ddlearn import pretrained
from ddlearn.data import medical as M
from ddlearn.metrics import psnr, ssim
from ddlearn.operators.medical import KSpace, Radon
from ddlearn.report import fmt_mean_sd, table
from ddlearn.restoration import anomaly as A
from ddlearn.restoration import consistency as C
from ddlearn.restoration import reconstruction as R
from ddlearn.restoration.posterior import sample_dps


def ms(vals, digits=2):
    return fmt_mean_sd(vals, digits=digits)


def per_image(fn, xs):
    """Run ``fn(x_i)`` for each image (1, C, H, W); returns the outputs stacked and the seconds per image."""
    outs, secs = [], []
    for i in range(xs.shape[0]):
        t = time.perf_counter()
        outs.append(fn(xs[i:i + 1], i))
        secs.append(time.perf_counter() - t)
    return torch.cat(outs), secs


def scores(out, x):
    return psnr(out, x, reduction="none"), ssim(out, x, reduction="none")


# --------------------------------------------------------------------------- CT
def ct_methods(model, schedule, op, noise, *, samples=None, dps=True, only=None):
    """name -> fn(y, x_index) for one geometry; diffusion defaults from the library (noisy or not)."""
    d = dict(C.CT_NOISY if noise > 0 else C.CT)
    k = samples or d.pop("samples")
    d.pop("samples", None)
    steps = d.pop("steps")

    def diffusion(kk):
        def run(y, i):
            g = torch.Generator().manual_seed(1000 + i)
            mean, _ = C.reconstruct(model, schedule, op, y, method="projection", steps=steps, samples=kk,
                                    generator=g, clip=(-1.0, 1.0), **d)
            return mean.clamp(-1, 1)
        return run

    def dps_run(y, i):
        g = torch.Generator().manual_seed(1000 + i)
        p = dict(C.DPS_CT)
        mean, _ = C.reconstruct(model, schedule, op, y, method=sample_dps, steps=p.pop("steps"), samples=1,
                                generator=g, clip=(-1.0, 1.0), **p)
        return mean.clamp(-1, 1)

    out = {"FBP": lambda y, i: R.fbp(op, y), "SART": lambda y, i: R.sart(op, y),
           "SART+TV": lambda y, i: R.sart_tv(op, y), "projection (1 draw)": diffusion(1),
           f"projection (mean of {k})": diffusion(k)}
    if dps:
        out["DPS (1 draw)"] = dps_run
    if only:
        out = {n: f for n, f in out.items() if n in only}
    return out


def ct_case(model, schedule, xs, views_list, noises, *, label, dps=True, size=64, samples=None):
    rows = []
    for views, noise in itertools.product(views_list, noises):
        op = Radon(size, views)
        g = torch.Generator().manual_seed(views * 100 + int(noise * 1e4))
        ys = op.measure_relative(xs, noise, generator=g)
        for name, fn in ct_methods(model, schedule, op, noise, dps=dps, samples=samples).items():
            out, secs = per_image(lambda x, i: fn(ys[i:i + 1], i), xs)
            p, s = scores(out, xs)
            rows.append({"images": label, "views": views, "noise": f"{100 * noise:g}%", "method": name,
                         "PSNR": ms(p), "SSIM": ms(s, 3), "s/recon": f"{np.mean(secs):.2f}",
                         "_p": float(np.mean(p)), "_s": float(np.mean(s))})
    return rows


def ct_targets(rows):
    """Diffusion mean-of-draws minus SART+TV (and minus the best classical) per setting."""
    out = []
    keys = sorted({(r["images"], r["views"], r["noise"]) for r in rows}, key=lambda k: (k[0], -k[1], k[2]))
    for key in keys:
        rs = {r["method"]: r for r in rows if (r["images"], r["views"], r["noise"]) == key}
        diff = [r for n, r in rs.items() if n.startswith("projection (mean")]
        if not diff or "SART+TV" not in rs:
            continue
        d = diff[0]
        best = max((r for n, r in rs.items() if n in ("FBP", "SART", "SART+TV")), key=lambda r: r["_p"])
        out.append({"images": key[0], "views": key[1], "noise": key[2],
                    "diffusion - SART+TV (dB)": f"{d['_p'] - rs['SART+TV']['_p']:+.2f}",
                    "SSIM diff - SART+TV": f"{d['_s'] - rs['SART+TV']['_s']:+.3f}",
                    "best classical": best["method"],
                    "diffusion - best classical (dB)": f"{d['_p'] - best['_p']:+.2f}"})
    return out


# --------------------------------------------------------------------------- MRI
def mri_case(model, schedule, xs, settings, *, label, samples=None):
    rows = []
    d = dict(C.MRI)
    k = samples or d.pop("samples")
    d.pop("samples", None)
    steps = d.pop("steps")
    for acc, kind in settings:
        op = KSpace.cartesian(xs.shape[-1], acc, kind=kind, generator=torch.Generator().manual_seed(acc))
        ys = op(xs)

        def diffusion(kk):
            def run(y, i):
                g = torch.Generator().manual_seed(2000 + i)
                mean, _ = C.reconstruct(model, schedule, op, y, method="score_mri", steps=steps, samples=kk,
                                        generator=g, clip=(-1.0, 1.0), **d)
                return mean.clamp(-1, 1)
            return run

        methods = {"zero-filled": lambda y, i: R.zero_filled(op, y), "TV-CS": lambda y, i: R.tv_cs(op, y),
                   "score-MRI (1 draw)": diffusion(1), f"score-MRI (mean of {k})": diffusion(k)}
        for name, fn in methods.items():
            out, secs = per_image(lambda x, i: fn(ys[i:i + 1], i), xs)
            p, s = scores(out, xs)
            rows.append({"images": label, "mask": f"x{acc} {kind}", "rate": f"{op.rate:.3f}", "method": name,
                         "PSNR": ms(p), "SSIM": ms(s, 3), "s/recon": f"{np.mean(secs):.2f}", "_p": float(np.mean(p))})
    return rows


# --------------------------------------------------------------------------- anomalies
def anomaly_case(model, schedule, ae, split, n, *, t0s=None, noises=("gaussian", "simplex"), samples=None,
                 steps=None):
    d = M.lesions(split, 64, n)
    x, mask, healthy = d["x"], d["mask"], d["healthy"]
    head = healthy > -0.99
    rows = []

    def add(name, score, secs):
        rows.append({"method": name, "AUROC (head)": f"{A.pixel_auroc(score, mask, region=head):.3f}",
                     "best Dice (head)": f"{A.best_dice(score, mask, region=head)[0]:.3f}",
                     "AUROC (image)": f"{A.pixel_auroc(score, mask):.3f}", "s/image": f"{secs:.2f}",
                     "_auroc": A.pixel_auroc(score, mask, region=head)})

    t = time.perf_counter()
    add("thresholding", A.threshold_score(x), (time.perf_counter() - t) / n)
    if ae is not None:
        t = time.perf_counter()
        add("autoencoder", A.reconstruction_score(ae, x), (time.perf_counter() - t) / n)
    for noise in noises:
        for t0 in (t0s or (A.T0[noise],)):
            g = torch.Generator().manual_seed(3000 + t0)
            st = min(steps or A.STEPS, t0 + 1)
            maps, secs = per_image(lambda xi, i: A.anomaly_map(model, schedule, xi, t0=t0, steps=st, noise=noise,
                                                             samples=samples or A.SAMPLES, generator=g)[0], x)
            add(f"AnoDDPM {noise}, t0={t0}", maps, float(np.mean(secs)))
    return rows


# --------------------------------------------------------------------------- tuning (validation split only)
def _noisy(op, xs, noise, seed):
    return op.measure_relative(xs, noise, generator=torch.Generator().manual_seed(seed))


def tune(args, model, schedule, ae):
    """Small grids on the validation phantoms; each part fits in a few minutes on 2 cores (run one at a time)."""
    xs = M.phantoms("val", 64, args.n)
    print(f"# tuning on {xs.shape[0]} validation phantoms (never the test split), parts {args.parts}\n", flush=True)
    if "baselines" in args.parts:
        rows = []
        for noise, views in itertools.product(args.noise_levels, args.views):
            op = Radon(64, views)
            y = _noisy(op, xs, noise, views)
            n0 = len(rows)
            for sweeps, w in itertools.product(args.sart_sweeps, args.tv_weights):
                p = psnr(R.sart_tv(op, y, sweeps=sweeps, weight=w), xs)
                rows.append({"case": f"SART+TV {views} views {100 * noise:g}%", "iters": sweeps, "weight": w,
                             "PSNR": f"{p:.2f}"})
            for sweeps in args.sart_sweeps:
                rows.append({"case": f"SART {views} views {100 * noise:g}%", "iters": sweeps, "weight": "-",
                             "PSNR": f"{psnr(R.sart(op, y, sweeps=sweeps), xs):.2f}"})
            table(rows[n0:], ["case", "iters", "weight", "PSNR"])
        for acc in args.accelerations:
            op = KSpace.cartesian(64, acc)
            y = op(xs)
            for w, it in itertools.product(args.cs_weights, args.cs_iters):
                p = psnr(R.tv_cs(op, y, weight=w, iters=it), xs)
                rows.append({"case": f"TV-CS x{acc}", "iters": it, "weight": w, "PSNR": f"{p:.2f}"})
                table(rows[-1:], ["case", "iters", "weight", "PSNR"])
        table(rows, ["case", "iters", "weight", "PSNR"], "baselines (val)")
    for part, noise in (("ct", 0.0), ("ct_noisy", 0.01)):
        if part not in args.parts:
            continue
        rows = []
        base = dict(steps=50, weight=1.0, damping=0.0, eta=0.0)
        if noise == 0:
            configs = [dict(base, steps=s) for s in args.tune_steps] + [dict(base, eta=1.0)]
        else:
            configs = [dict(base, damping=dmp) for dmp in args.dampings] + [dict(base, weight=0.5)]
        for views in (8, 23):
            op = Radon(64, views)
            ys = _noisy(op, xs, noise, views)
            for cfg in configs:
                t = time.perf_counter()
                mean, draws = C.reconstruct(model, schedule, op, ys, method="projection", samples=args.k,
                                            generator=torch.Generator().manual_seed(0), clip=(-1.0, 1.0), **cfg)
                sec = (time.perf_counter() - t) / xs.shape[0]
                rows.append({"noise": noise, "views": views, **cfg,
                             "PSNR 1 draw": f"{psnr(draws[0].clamp(-1, 1), xs):.2f}",
                             f"PSNR mean {args.k}": f"{psnr(mean.clamp(-1, 1), xs):.2f}",
                             f"SSIM mean {args.k}": f"{ssim(mean.clamp(-1, 1), xs):.3f}", "s/img": f"{sec:.1f}"})
                table(rows[-1:], list(rows[-1]))
            out = R.sart_tv(op, ys)
            rows.append({"noise": noise, "views": views, "steps": "SART+TV", f"PSNR mean {args.k}": f"{psnr(out, xs):.2f}",
                         f"SSIM mean {args.k}": f"{ssim(out, xs):.3f}"})
        table(rows, list(rows[0]), f"CT projection sampler (val), {100 * noise:g}% noise")
    if "dps" in args.parts:
        rows = []
        op = Radon(64, 23)
        ys = op(xs)
        for scale in args.dps_scales:
            t = time.perf_counter()
            mean, _ = C.reconstruct(model, schedule, op, ys, method=sample_dps, steps=100, samples=1, scale=scale,
                                    eta=1.0, generator=torch.Generator().manual_seed(0), clip=(-1.0, 1.0))
            rows.append({"views": 23, "scale": scale, "steps": 100, "PSNR": f"{psnr(mean.clamp(-1, 1), xs):.2f}",
                         "s/img": f"{(time.perf_counter() - t) / xs.shape[0]:.1f}"})
            table(rows[-1:], list(rows[-1]))
        table(rows, list(rows[0]), "DPS (val)")
    if "mri" in args.parts:
        rows = []
        configs = [(st, 0.0) for st in args.tune_steps] + [(50, 1.0)]
        for acc in (4, 8):
            op = KSpace.cartesian(64, acc)
            ys = op(xs)
            for steps, e in configs:
                mean, draws = C.reconstruct(model, schedule, op, ys, method="score_mri", steps=steps, samples=args.k,
                                            eta=e, generator=torch.Generator().manual_seed(0), clip=(-1.0, 1.0))
                rows.append({"acc": acc, "steps": steps, "eta": e,
                             "PSNR 1 draw": f"{psnr(draws[0].clamp(-1, 1), xs):.2f}",
                             f"PSNR mean {args.k}": f"{psnr(mean.clamp(-1, 1), xs):.2f}"})
                table(rows[-1:], list(rows[-1]))
            rows.append({"acc": acc, "steps": "TV-CS", f"PSNR mean {args.k}": f"{psnr(R.tv_cs(op, ys), xs):.2f}"})
        table(rows, list(rows[0]), "MRI score-MRI (val)")
    if "anomaly" in args.parts:
        d = M.lesions("val", 64, args.n_lesions)
        head = d["healthy"] > -0.99
        rows = [{"method": "thresholding", "AUROC": f"{A.pixel_auroc(A.threshold_score(d['x']), d['mask'], region=head):.3f}"}]
        if ae is not None:
            rows.append({"method": "autoencoder",
                         "AUROC": f"{A.pixel_auroc(A.reconstruction_score(ae, d['x']), d['mask'], region=head):.3f}"})
        for noise, t0, k in itertools.product(args.noises, args.t0s, args.anomaly_samples):
            t = time.perf_counter()
            amap, _ = A.anomaly_map(model, schedule, d["x"], t0=t0, steps=min(args.anomaly_steps or A.STEPS, t0 + 1),
                                    noise=noise, samples=k, generator=torch.Generator().manual_seed(3000 + t0))
            rows.append({"method": f"AnoDDPM {noise}", "t0": t0, "samples": k,
                         "AUROC": f"{A.pixel_auroc(amap, d['mask'], region=head):.3f}",
                         "best Dice": f"{A.best_dice(amap, d['mask'], region=head)[0]:.3f}",
                         "s/img": f"{(time.perf_counter() - t) / d['x'].shape[0]:.2f}"})
            table(rows[-1:], list(rows[-1]))
        table(rows, ["method", "t0", "samples", "AUROC", "best Dice", "s/img"],
              f"anomaly (val, {args.n_lesions} phantoms with lesions)")


# --------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["ct", "shepp", "dicom", "mri", "anomaly", "ct128"],
                   choices=["ct", "shepp", "dicom", "mri", "anomaly", "ct128"])
    p.add_argument("--n", type=int, default=None, help="held-out images per case (default 16; --quick 3)")
    p.add_argument("--n-lesions", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="a few images, 23 views only, no DPS")
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--tune", action="store_true", help="choose defaults on the validation split")
    p.add_argument("--parts", nargs="+", default=["baselines", "ct", "ct_noisy", "dps", "mri", "anomaly"],
                   choices=["baselines", "ct", "ct_noisy", "dps", "mri", "anomaly"])
    p.add_argument("--dampings", nargs="+", type=float, default=[0.0, 1.0, 10.0])
    p.add_argument("--views", nargs="+", type=int, default=[8, 23], help="--tune baselines: CT views")
    p.add_argument("--noise-levels", nargs="+", type=float, default=[0.0, 0.01], help="--tune baselines: CT noise")
    p.add_argument("--sart-sweeps", nargs="+", type=int, default=[10, 20], help="--tune baselines")
    p.add_argument("--tv-weights", nargs="+", type=float, default=[0.005, 0.01, 0.02, 0.04], help="--tune baselines")
    p.add_argument("--accelerations", nargs="+", type=int, default=[4, 8], help="--tune baselines: MRI")
    p.add_argument("--cs-weights", nargs="+", type=float, default=[0.005, 0.01, 0.02, 0.04], help="--tune baselines")
    p.add_argument("--cs-iters", nargs="+", type=int, default=[60], help="--tune baselines")
    p.add_argument("--noises", nargs="+", default=["gaussian", "simplex"], choices=list(A.NOISES))
    p.add_argument("--anomaly-samples", nargs="+", type=int, default=[1])
    p.add_argument("--k", type=int, default=4, help="draws averaged while tuning")
    p.add_argument("--tune-steps", nargs="+", type=int, default=[25, 50, 100])
    p.add_argument("--dps-scales", nargs="+", type=float, default=[0.05, 0.1, 0.2, 0.5])
    p.add_argument("--t0s", nargs="+", type=int, default=[150, 250, 350, 450])
    p.add_argument("--anomaly-steps", type=int, default=None)
    args = p.parse_args(argv)
    model, schedule = pretrained.load("phantom64")
    ae = pretrained.load("phantom_ae64").model if "phantom_ae64" in pretrained.available() else None
    if args.tune:
        args.n = args.n or 4
        tune(args, model, schedule, ae)
        return
    n = args.n or (3 if args.quick else 16)
    views_list, noises = ((23,), (0.0,)) if args.quick else ((8, 16, 23), (0.0, 0.01))
    start = time.perf_counter()
    ct_rows = []
    if "ct" in args.cases:
        xs = M.phantoms(args.split, 64, n)
        ct_rows += ct_case(model, schedule, xs, views_list, noises, label=f"{args.split} phantoms x{n}",
                           dps=not args.quick)
    if "shepp" in args.cases:
        ct_rows += ct_case(model, schedule, M.shepp_logan(64), (23,) if args.quick else (16, 23), (0.0,),
                           label="Shepp-Logan", dps=False)
    if "dicom" in args.cases:
        ct_rows += ct_case(model, schedule, M.ct_image("CT_small.dcm", 64), (23,), (0.0,), label="CT_small.dcm",
                           dps=False)
    if ct_rows:
        table(ct_rows, ["images", "views", "noise", "method", "PSNR", "SSIM", "s/recon"], "CT 64x64 (PSNR dB)")
        table(ct_targets(ct_rows), ["images", "views", "noise", "diffusion - SART+TV (dB)", "SSIM diff - SART+TV",
                                    "best classical", "diffusion - best classical (dB)"], "CT: diffusion vs classical")
    if "ct128" in args.cases and "phantom128" in pretrained.available():
        m128, s128 = pretrained.load("phantom128")
        xs = M.phantoms(args.split, 128, max(2, n // 2))
        rows = ct_case(m128, s128, xs, (23,), (0.0,), label=f"{args.split} phantoms 128 x{xs.shape[0]}", dps=False,
                       size=128)
        rows += ct_case(m128, s128, M.shepp_logan(128), (23,), (0.0,), label="Shepp-Logan 128", dps=False, size=128)
        table(rows, ["images", "views", "noise", "method", "PSNR", "SSIM", "s/recon"], "CT 128x128")
        table(ct_targets(rows), ["images", "views", "noise", "diffusion - SART+TV (dB)", "SSIM diff - SART+TV",
                                 "best classical", "diffusion - best classical (dB)"], "CT 128: diffusion vs classical")
    if "mri" in args.cases:
        xs = M.phantoms(args.split, 64, n)
        settings = [(4, "equispaced")] if args.quick else [(4, "equispaced"), (8, "equispaced"),
                                                           (4, "variable_density")]
        rows = mri_case(model, schedule, xs, settings, label=f"{args.split} phantoms x{n}")
        table(rows, ["images", "mask", "rate", "method", "PSNR", "SSIM", "s/recon"], "MRI 64x64 (PSNR dB)")
    if "anomaly" in args.cases:
        rows = anomaly_case(model, schedule, ae, args.split, 8 if args.quick else args.n_lesions)
        table(rows, [c for c in rows[0] if not c.startswith("_")],
              f"anomaly detection, {args.split} phantoms with one lesion each")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
