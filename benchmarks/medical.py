"""Chapter 09 targets: sparse-view CT, undersampled MRI and anomaly detection with a diffusion prior.

    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py                 # every case, test split, stored
    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py --cases ct --n 4 --no-store   # a quick look
    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py --tune          # choose defaults on "val", stored
    flock /tmp/ddlearn-heavy.lock python benchmarks/medical.py --tune --parts dps ct_noisy

Needs the shipped ``phantom64`` and ``phantom_ae64`` checkpoints (and ``phantom64_simplex`` for AnoDDPM as the
paper trains it). Results go to ``ddlearn/pretrained/medical_results.json`` (``--no-store`` leaves it alone),
which Chapter 09 prints: the chapter cannot afford to recompute them in its few minutes.

Every comparison is **paired**: the same held-out images (the "test" split of :mod:`ddlearn.data.medical`,
which no prior saw), the same measurements, and the difference taken image by image, reported as
mean +- sd over images. ``--tune`` runs measurements on the "val" split to pick the defaults the library stores
(:data:`ddlearn.restoration.consistency.CT`, ``CT_NOISY``, ``MRI``, ``DPS_CT``; :data:`ddlearn.restoration.anomaly.T0`,
...; the baselines' weights in :mod:`ddlearn.restoration.reconstruction`); the test split is never used for
choosing anything, and ``tests/test_medical_settings.py`` ties the library's defaults to the stored choices.

* **CT** (64x64): 8, 16 and 23 views, noiseless and with 1% noise (Gaussian, sd 1% of each image's largest
  attenuation line integral). FBP, SART, SART+TV; Song et al.'s projection sampler, as one draw (the PSNR of
  each of the ``k`` draws, averaged: what a single draw scores on average) and as the mean of the ``k`` draws;
  DPS at 23 views.
* **MRI** (64x64): x4 and x8 equispaced lines with a fully sampled centre, and x4 variable-density random
  lines; zero-filled, TV-CS, score-MRI (one draw and the mean of draws).
* **Anomalies**: held-out phantoms with one lesion each; pixel AUROC and best Dice over the pixels of the head
  with 95% bootstrap intervals over images, and paired intervals against the autoencoder, for intensity
  thresholding, the autoencoder, AnoDDPM with Gaussian noise (the Gaussian prior), simplex noise at t0 only
  with the Gaussian prior (the weak ablation) and simplex noise everywhere with the simplex-trained prior.

Sharpness is :func:`ddlearn.metrics.sharpness` (gradient energy relative to the truth's: 1 as sharp as the truth,
below 1 blurrier). Seconds are wall-clock per image (all draws included) on this machine, in batches.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from ddlearn import pretrained
from ddlearn.data import medical as M
from ddlearn.metrics import psnr, sharpness, ssim
from ddlearn.operators.medical import KSpace, Radon
from ddlearn.report import fmt_mean_sd as ms, method_rows, paired_rows, table
from ddlearn.restoration import anomaly as A
from ddlearn.restoration import consistency as C
from ddlearn.restoration import reconstruction as R
from ddlearn.restoration.posterior import sample_dps

RESULTS_PATH = Path(__file__).resolve().parents[1] / "ddlearn" / "pretrained" / "medical_results.json"
CHUNK = 4  # images per batch of a diffusion reconstruction (times the draws)


def load_results() -> dict:
    return json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}


def save_results(key: str, value) -> None:
    """Store one entry in the JSON under a lock; the other entries are kept."""
    import fcntl

    with open("/tmp/ddlearn-medical-results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = load_results()
        stored[key] = value
        RESULTS_PATH.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    print(f"stored {key} in {RESULTS_PATH.name}", flush=True)


def _floats(v):
    return [float(a) for a in np.asarray(v, dtype=np.float64).ravel()]


def measure(out, x) -> dict:
    """Per-image PSNR, SSIM and sharpness of ``out`` against the truth ``x``."""
    out = out.clamp(-1, 1)
    return {"psnr": _floats(psnr(out, x, reduction="none")), "ssim": _floats(ssim(out, x, reduction="none")),
            "sharpness": _floats(sharpness(out, x, reduction="none"))}


def diffusion(model, schedule, op, ys, *, method, steps, k, seed, **options):
    """The mean of ``k`` draws and the draws (k, B, ...) for every measurement in ``ys``, in chunks of images."""
    means, draws = [], []
    for c in range(0, ys.shape[0], CHUNK):
        g = torch.Generator().manual_seed(seed + c)
        m, d = C.reconstruct(model, schedule, op, ys[c:c + CHUNK], method=method, steps=steps, samples=k,
                             generator=g, clip=(-1.0, 1.0), **options)
        means.append(m)
        draws.append(d)
    return torch.cat(means), torch.cat(draws, dim=1)


def diffusion_entries(model, schedule, op, ys, xs, *, method, steps, k, seed, label, **options):
    """{label (1 draw): averaged over the draws, per image; label (mean of k): the mean}; seconds per image."""
    t = time.perf_counter()
    mean, draws = diffusion(model, schedule, op, ys, method=method, steps=steps, k=k, seed=seed, **options)
    sec = (time.perf_counter() - t) / xs.shape[0]
    per_draw = [measure(d, xs) for d in draws]
    one = {key: _floats(np.mean([m[key] for m in per_draw], axis=0)) for key in per_draw[0]}
    return {f"{label} (1 draw)": {**one, "seconds": sec / k},
            f"{label} (mean of {k})": {**measure(mean, xs), "seconds": sec}}, mean, draws


def baselines(names, op, ys, xs):
    out = {}
    for name in names:
        t = time.perf_counter()
        rec = R.baseline(name, op, ys)
        out[name] = {**measure(rec, xs), "seconds": (time.perf_counter() - t) / xs.shape[0]}
    return out


def paired(entry: dict, a: str, b: str, key="psnr") -> dict:
    d = np.asarray(entry[a][key]) - np.asarray(entry[b][key])
    return {"a": a, "b": b, "diff": _floats(d)}


def add_comparisons(setting: dict, classical: tuple[str, ...], k: int, label: str) -> None:
    """Paired PSNR differences: mean of draws - best classical (by mean PSNR), - SART+TV / TV-CS, - 1 draw."""
    methods = setting["methods"]
    best = max(classical, key=lambda n: np.mean(methods[n]["psnr"]))
    mean = f"{label} (mean of {k})"
    pairs = [paired(methods, mean, best), paired(methods, mean, f"{label} (1 draw)")]
    tv = "SART+TV" if "SART+TV" in methods else "TV-CS"
    if best != tv:
        pairs.insert(1, paired(methods, mean, tv))
    if "DPS (1 draw)" in methods:
        pairs.append(paired(methods, "DPS (1 draw)", best))
    setting["best_classical"] = best
    setting["paired"] = pairs


# --------------------------------------------------------------------------- CT
def ct_setting(model, schedule, xs, views, noise, *, dps: bool, k: int | None = None) -> dict:
    op = Radon(64, views)
    ys = op.measure_relative(xs, noise, generator=torch.Generator().manual_seed(views * 100 + int(noise * 1e4)))
    methods = baselines(("FBP", "SART", "SART+TV"), op, ys, xs)
    d = C.ct_settings(views, noise)
    kk = k or d.pop("samples")
    d.pop("samples", None)
    entries, _, _ = diffusion_entries(model, schedule, op, ys, xs, method="projection", steps=d.pop("steps"), k=kk,
                                      seed=1000 + views, label="projection", **d)
    methods.update(entries)
    if dps:
        p = dict(C.DPS_CT)
        t = time.perf_counter()
        out, _ = diffusion(model, schedule, op, ys, method=sample_dps, steps=p.pop("steps"), k=1, seed=5000 + views,
                           **p)
        methods["DPS (1 draw)"] = {**measure(out, xs), "seconds": (time.perf_counter() - t) / xs.shape[0]}
        # how far DPS is from explaining the data, against the size of the noise: if its residual is much larger,
        # the noise cannot matter to it
        res = (op(out.clamp(-1, 1)) - ys).flatten(1).norm(dim=1)
        methods["DPS (1 draw)"]["residual"] = _floats(res)
    setting = {"views": views, "noise": noise, "k": kk, "n": xs.shape[0], "methods": methods}
    if noise > 0:  # the noise's own norm, for the DPS residual above
        clean = op(xs)
        setting["noise_norm"] = _floats((ys - clean).flatten(1).norm(dim=1))
    add_comparisons(setting, ("FBP", "SART", "SART+TV"), kk, "projection")
    return setting


def run_ct(model, schedule, args, results):
    xs = M.phantoms(args.split, 64, args.n)
    for views, noise in itertools.product(args.views, args.noises):
        key = f"ct:{args.split}:{views}:{100 * noise:g}%"
        s = ct_setting(model, schedule, xs, views, noise, dps=views == 23 and not args.no_dps)
        label = {"views": views, "noise": f"{100 * noise:g}%"}
        table(method_rows(s["methods"], **label), ["views", "noise", "method", "PSNR", "SSIM", "sharpness", "s/img"],
              f"CT, {xs.shape[0]} {args.split} phantoms (mean +- sd over images)")
        table(paired_rows(s["paired"], **label),
              ["views", "noise", "difference (paired)", "mean +- sd", "images better"])
        if "DPS (1 draw)" in s["methods"] and noise > 0:
            r, nn = s["methods"]["DPS (1 draw)"]["residual"], s["noise_norm"]
            print(f"DPS data residual |A x - y| {ms(r)} against the noise's norm {ms(nn)}\n")
        results[key] = s
        if args.store:
            save_results(key, s)


def run_single(model, schedule, args, results):
    """Two single images at 23 views, noiseless: Shepp-Logan (never seen) and a real CT slice."""
    for name, x in (("Shepp-Logan", M.shepp_logan(64)), ("CT_small.dcm", M.ct_image("CT_small.dcm", 64))):
        op = Radon(64, 23)
        ys = op(x)
        methods = baselines(("FBP", "SART", "SART+TV"), op, ys, x)
        d = dict(C.CT)
        kk = d.pop("samples")
        entries, _, _ = diffusion_entries(model, schedule, op, ys, x, method="projection", steps=d.pop("steps"), k=kk,
                                          seed=6000, label="projection", **d)
        methods.update(entries)
        s = {"views": 23, "noise": 0.0, "k": kk, "n": 1, "methods": methods}
        table(method_rows(s["methods"], image=name), ["image", "method", "PSNR", "SSIM", "sharpness", "s/img"])
        key = f"single:{name}"
        results[key] = s
        if args.store:
            save_results(key, s)


# --------------------------------------------------------------------------- MRI
def run_mri(model, schedule, args, results):
    xs = M.phantoms(args.split, 64, args.n)
    for acc, kind in ((4, "equispaced"), (8, "equispaced"), (4, "variable_density")):
        op = KSpace.cartesian(64, acc, kind=kind, generator=torch.Generator().manual_seed(acc))
        ys = op(xs)
        methods = baselines(("zero-filled", "TV-CS"), op, ys, xs)
        d = dict(C.MRI)
        kk = d.pop("samples")
        entries, _, _ = diffusion_entries(model, schedule, op, ys, xs, method="score_mri", steps=d.pop("steps"), k=kk,
                                          seed=2000 + acc, label="score-MRI", **d)
        methods.update(entries)
        s = {"acceleration": acc, "kind": kind, "rate": op.rate, "k": kk, "n": xs.shape[0], "methods": methods}
        add_comparisons(s, ("zero-filled", "TV-CS"), kk, "score-MRI")
        label = {"mask": f"x{acc} {kind}"}
        table(method_rows(s["methods"], **label), ["mask", "method", "PSNR", "SSIM", "sharpness", "s/img"],
              f"MRI, {xs.shape[0]} {args.split} phantoms (mean +- sd over images)")
        table(paired_rows(s["paired"], **label), ["mask", "difference (paired)", "mean +- sd", "images better"])
        key = f"mri:{args.split}:x{acc}:{kind}"
        results[key] = s
        if args.store:
            save_results(key, s)


# --------------------------------------------------------------------------- anomalies
def anomaly_methods(model, schedule, simplex_prior):
    """name -> (model, schedule, anomaly_map options) for the AnoDDPM variants that can run."""
    out = {"AnoDDPM, Gaussian": (model, schedule, A.SETTINGS["gaussian"]),
           "AnoDDPM, simplex at t0 only, Gaussian prior": (model, schedule, A.SETTINGS["simplex_t0_only"])}
    if simplex_prior is not None:
        out["AnoDDPM, simplex, simplex prior"] = (*simplex_prior, A.SETTINGS["simplex"])
    return out


def anomaly_scores(model, schedule, x, opts, seed):
    maps = []
    for c in range(0, x.shape[0], 8):
        m, _ = A.anomaly_map(model, schedule, x[c:c + 8], generator=torch.Generator().manual_seed(seed + c), **opts)
        maps.append(m)
    return torch.cat(maps)


def run_anomaly(model, schedule, ae, simplex_prior, args, results):
    d = M.lesions(args.split, 64, args.n_lesions)
    x, mask = d["x"], d["mask"]
    head = d["healthy"] > -0.99
    scores, secs = {"thresholding": A.threshold_score(x)}, {"thresholding": 0.0}
    if ae is not None:
        scores["autoencoder"] = A.reconstruction_score(ae, x)
        secs["autoencoder"] = 0.0
    for name, (m, s, opts) in anomaly_methods(model, schedule, simplex_prior).items():
        t = time.perf_counter()
        scores[name] = anomaly_scores(m, s, x, opts, 3000)
        secs[name] = (time.perf_counter() - t) / x.shape[0]
    rows, stored = [], {"n": x.shape[0], "methods": {}}
    ref = "autoencoder" if ae is not None else "thresholding"
    for name, sc in scores.items():
        au = A.bootstrap(sc, mask, region=head, n=args.boot)
        di = A.bootstrap(sc, mask, region=head, metric="dice", n=args.boot)
        entry = {"auroc": au, "dice": di, "seconds": secs[name]}
        if name != ref:
            entry[f"auroc - {ref}"] = A.bootstrap(sc, mask, region=head, baseline=scores[ref], n=args.boot)
            entry[f"dice - {ref}"] = A.bootstrap(sc, mask, region=head, baseline=scores[ref], metric="dice",
                                                 n=args.boot)
        stored["methods"][name] = entry
        ci = lambda r: f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"  # noqa: E731
        dci = lambda r: f"{r['value']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]"  # noqa: E731
        rows.append({"method": name, "AUROC [95%]": ci(au), "best Dice [95%]": ci(di),
                     f"AUROC - {ref}": dci(entry[f"auroc - {ref}"]) if name != ref else "",
                     f"Dice - {ref}": dci(entry[f"dice - {ref}"]) if name != ref else "",
                     "s/img": f"{secs[name]:.2f}"})
    table(rows, list(rows[0]), f"anomaly detection, {x.shape[0]} {args.split} phantoms with one lesion each "
                               f"(head pixels; 95% bootstrap intervals over images, {args.boot} resamples)")
    stored["settings"] = {n: o for n, (_, _, o) in anomaly_methods(model, schedule, simplex_prior).items()}
    key = f"anomaly:{args.split}"
    results[key] = stored
    if args.store:
        save_results(key, stored)


# --------------------------------------------------------------------------- tuning (validation split only)
def tune(args, model, schedule, ae, simplex_prior):
    """Grids on the validation phantoms; each part fits in minutes on 2 cores (run one at a time)."""
    xs = M.phantoms("val", 64, args.n)
    print(f"# tuning on {xs.shape[0]} validation phantoms (never the test split), parts {args.parts}\n", flush=True)

    def store(key, value):
        """Store a grid's rows, keeping the stored rows of settings this run did not measure (a grid can be
        extended by a second run without losing the first)."""
        if not args.store:
            return
        measured = value["rows"]

        def config(r):
            return {k: v for k, v in r.items() if not k.startswith(("PSNR", "AUROC", "best", "s/"))}

        kept = [r for r in load_results().get(key, {}).get("rows", [])
                if all(config(r) != config(m) for m in measured)]
        save_results(key, {**value, "rows": kept + measured})

    if "baselines" in args.parts:
        rows = []
        for noise, views in itertools.product(args.noises, args.views):
            op = Radon(64, views)
            y = op.measure_relative(xs, noise, generator=torch.Generator().manual_seed(views))
            for sweeps, w in itertools.product(args.sart_sweeps, args.tv_weights):
                rows.append({"case": f"SART+TV {views} views {100 * noise:g}%", "iters": sweeps, "weight": w,
                             "PSNR": round(float(psnr(R.sart_tv(op, y, sweeps=sweeps, weight=w), xs)), 2)})
        for acc in (4, 8):
            op = KSpace.cartesian(64, acc)
            y = op(xs)
            for w in args.cs_weights:
                rows.append({"case": f"TV-CS x{acc}", "iters": R.TV_CS["iters"], "weight": w,
                             "PSNR": round(float(psnr(R.tv_cs(op, y, weight=w), xs)), 2)})
        table(rows, ["case", "iters", "weight", "PSNR"], "baselines (val)")
        store("tune:baselines", {"n": xs.shape[0], "rows": rows})
    grids = {
        "ct": (0.0, "projection", [dict(C.CT, eta=e) for e in args.etas], tuple(args.ct_views)),
        "ct_noisy": (0.01, "projection", [dict(C.CT_NOISY, damping=dmp, eta=e, weight=w)
                                          for dmp, e, w in itertools.product(args.dampings, args.etas, args.weights)],
                     tuple(args.ct_views)),
        "mri": (0.0, "score_mri", [dict(C.MRI, eta=e) for e in args.etas], (4, 8)),
        "dps": (None, sample_dps, [dict(C.DPS_CT, scale=s) for s in args.dps_scales], (23,)),
    }
    for part, (noise, method, configs, geoms) in grids.items():
        if part not in args.parts:
            continue
        rows = []
        for geom, cfg in itertools.product(geoms, configs):
            noises = (0.0, 0.01) if noise is None else (noise,)
            for nz in noises:
                op = KSpace.cartesian(64, geom) if part == "mri" else Radon(64, geom)
                g = torch.Generator().manual_seed(geom)
                ys = op(xs) if part == "mri" else op.measure_relative(xs, nz, generator=g)
                c = dict(cfg)
                kk = c.pop("samples", 1)
                t = time.perf_counter()
                mean, draws = diffusion(model, schedule, op, ys, method=method, steps=c.pop("steps"), k=kk, seed=0, **c)
                sec = (time.perf_counter() - t) / xs.shape[0]
                one = np.mean([psnr(d.clamp(-1, 1), xs, reduction="none") for d in draws], axis=0)
                rows.append({"geometry": geom, "noise": nz, **{a: b for a, b in cfg.items() if a != "samples"},
                             "samples": kk, "PSNR 1 draw": round(float(np.mean(one)), 2),
                             "PSNR mean": round(float(psnr(mean.clamp(-1, 1), xs)), 2), "s/img": round(sec, 1)})
                table(rows[-1:], list(rows[-1]))
        table(rows, list(rows[0]), f"{part} (val, {xs.shape[0]} phantoms)")
        store(f"tune:{part}", {"n": xs.shape[0], "rows": rows})
    if "anomaly" in args.parts:
        d = M.lesions("val", 64, args.n_lesions)
        head = d["healthy"] > -0.99
        rows = [{"method": "thresholding",
                 "AUROC": round(A.pixel_auroc(A.threshold_score(d["x"]), d["mask"], region=head), 3)}]
        if ae is not None:
            rows.append({"method": "autoencoder",
                         "AUROC": round(A.pixel_auroc(A.reconstruction_score(ae, d["x"]), d["mask"], region=head), 3)})
        variants = [("gaussian", model, schedule, "gaussian", 0.0, None)]
        variants += [("simplex_t0_only", model, schedule, "simplex", 0.0, o) for o in args.octaves]
        if simplex_prior is not None:
            variants += [("simplex", *simplex_prior, "simplex", e, o) for e in args.etas for o in args.octaves]
        for (label, m, s, noise, e, o), t0 in itertools.product(variants, args.t0s):
            opts = {"t0": t0, "steps": min(A.STEPS, t0 + 1), "noise": noise, "eta": e, "octaves": o,
                    "samples": A.SAMPLES}
            t = time.perf_counter()
            amap = anomaly_scores(m, s, d["x"], opts, 3000 + t0)
            rows.append({"method": label, **opts, "AUROC": round(A.pixel_auroc(amap, d["mask"], region=head), 3),
                         "best Dice": round(A.best_dice(amap, d["mask"], region=head)[0], 3),
                         "s/img": round((time.perf_counter() - t) / d["x"].shape[0], 2)})
            table(rows[-1:], list(rows[-1]))
        table(rows, ["method", "t0", "noise", "eta", "octaves", "AUROC", "best Dice", "s/img"],
              f"anomaly (val, {args.n_lesions} phantoms with lesions)")
        store("tune:anomaly", {"n": args.n_lesions, "rows": rows})


# --------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["ct", "single", "mri", "anomaly"],
                   choices=["ct", "single", "mri", "anomaly"])
    p.add_argument("--n", type=int, default=None, help="phantoms (default: 12 test, 8 when tuning)")
    p.add_argument("--n-lesions", type=int, default=None, help="lesion images (default: 48 test, 16 when tuning)")
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--views", nargs="+", type=int, default=[8, 16, 23])
    p.add_argument("--noises", nargs="+", type=float, default=[0.0, 0.01])
    p.add_argument("--no-dps", action="store_true")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for the anomaly intervals")
    p.add_argument("--no-store", dest="store", action="store_false", help="print only; leave the JSON alone")
    p.add_argument("--tune", action="store_true", help="choose defaults on the validation split")
    p.add_argument("--parts", nargs="+", default=["baselines", "ct", "ct_noisy", "dps", "mri", "anomaly"],
                   choices=["baselines", "ct", "ct_noisy", "dps", "mri", "anomaly"])
    p.add_argument("--dampings", nargs="+", type=float, default=[0.0, 1.0, 10.0, 100.0])
    p.add_argument("--etas", nargs="+", type=float, default=[0.0, 1.0])
    p.add_argument("--ct-views", nargs="+", type=int, default=[8, 23], help="--tune ct, ct_noisy: view counts")
    p.add_argument("--weights", nargs="+", type=float, default=[1.0], help="--tune ct_noisy: data-consistency weight")
    p.add_argument("--sart-sweeps", nargs="+", type=int, default=[10, 20], help="--tune baselines")
    p.add_argument("--tv-weights", nargs="+", type=float, default=[0.005, 0.01, 0.02, 0.04], help="--tune baselines")
    p.add_argument("--cs-weights", nargs="+", type=float, default=[0.005, 0.01, 0.02, 0.04], help="--tune baselines")
    p.add_argument("--dps-scales", nargs="+", type=float, default=[0.02, 0.05, 0.1, 0.2])
    p.add_argument("--t0s", nargs="+", type=int, default=[150, 250, 350, 450])
    p.add_argument("--octaves", nargs="+", type=int, default=[2, 4, 6])
    args = p.parse_args(argv)
    model, schedule = pretrained.load("phantom64")
    have = pretrained.available()
    ae = pretrained.load("phantom_ae64").model if "phantom_ae64" in have else None
    simplex_prior = tuple(pretrained.load("phantom64_simplex")) if "phantom64_simplex" in have else None
    if simplex_prior is None:
        print("phantom64_simplex is not shipped: AnoDDPM as the paper trains it is skipped\n")
    start = time.perf_counter()
    if args.tune:
        args.n = args.n or 8
        args.n_lesions = args.n_lesions or 16
        tune(args, model, schedule, ae, simplex_prior)
    else:
        args.n = args.n or 12
        args.n_lesions = args.n_lesions or 48
        results = {}
        if "ct" in args.cases:
            run_ct(model, schedule, args, results)
        if "single" in args.cases:
            run_single(model, schedule, args, results)
        if "mri" in args.cases:
            run_mri(model, schedule, args, results)
        if "anomaly" in args.cases:
            run_anomaly(model, schedule, ae, simplex_prior, args, results)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
