"""Chapter 08 targets: animating held-out sprite images (appearance, motion, Frechet clip distance), the
guidance scales, speed against frame stride, and the ablation.

    flock /tmp/ddlearn-heavy.lock python benchmarks/video.py                          # shipped models
    python benchmarks/video.py --part sampler            # choose the sampler (eta, steps, clamping)
    flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part scales             # choose the scales
    flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part blank              # image tokens blanked
    flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part stride
    flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part ablation --train   # ~6 h on 2 cores
    python benchmarks/video.py --part iou_scale --models video16   # what an IoU is worth (noise, blur)

Every figure is measured on the held-out clips of :func:`ddlearn.video.heldout_set`
(held-out shapes, hues and backgrounds; ``--per-cell`` one-sprite clips for each of 8 straight
prompts x 4 strides, 48 clips with two or three sprites, 16 still, 16 bouncing), animated from
their frame 0 with DDIM (``--steps``) at each sampling seed (``--seeds``); a figure is the
mean over the clips of one seed, reported as mean +- sd over the seeds.
Rows "static copy" (frame 0 repeated) and "real clips" (the true continuations) bound each metric.

Targets (issue 21; ``--part heldout`` prints each as met or missed per sampling seed, ``--part targets``
from the stored rows), 16x16 with
animate()'s defaults: under 1% noise frames; frame-0 PSNR >= 34 dB; direction right >= 98% of
one-sprite clips and >= 95% of clips with two or three sprites; length ratio within 0.8-1.25 at
every stride; displacement error <= 1.0 px; sprite found (trackable) in >= 97% of frames; IoU >= 0.65.

``--part sampler`` animates the validation set with each setting of :data:`SAMPLER_GRID` (eta,
steps, the clean estimate clamped or not) at the recorded scales and keeps, among the settings with
under 1% noise frames, the one with the smallest displacement error on the moving clips
(``--only LABEL ...`` runs some settings and merges them into the stored table, so two processes
can share the grid). ``--part scales`` chooses the guidance scales on a VALIDATION set (``heldout_set(split="train",
seed=VALIDATION_SEED)``: new clips of the training shapes, hues and backgrounds, laid out like the
held-out set), never on the held-out clips: the pair with the smallest displacement error on the
moving clips. ``--part blank`` measures the shipped model with its image tokens blanked at sampling
on the chapter's held-out set (the chapter measures the unblanked model on the same clips and seed).
``--part ablation`` trains every ``video16_ablation_*`` recipe (``--train``; otherwise it loads
``runs/ablation/NAME.safetensors``) and measures each. ``scales``, ``blank`` and ``ablation`` store
their tables (with the command, the checkpoint's sha256, the seeds and the clip counts) in
``ddlearn/pretrained/video_results.json``, which the chapter reads instead of re-running them.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ddlearn import pretrained
from ddlearn import video as V
from ddlearn.data import clips as C
from ddlearn.report import fmt_mean_sd, table

COLUMNS = [("noise_frames", "noise frames", 100, "%"), ("length_ratio_1", "length ratio", 1, ""), ("direction_right_1", "dir. right 1 sprite", 100, "%"), ("direction_right_multi", "dir. right 2-3", 100, "%"),
           ("displacement_error", "disp. err px", 1, ""), ("trackable", "trackable", 100, "%"),
           ("iou", "IoU", 1, ""), ("still_kept", "still kept", 100, "%"), ("bounce_error", "bounce err px", 1, ""),
           ("psnr0", "frame-0 PSNR", 1, "dB"), ("ssim0", "frame-0 SSIM", 1, ""),
           ("colour_drift", "colour drift", 1, ""), ("texture_drift", "texture drift", 1, ""),
           ("background_drift", "bg drift", 1, "")]
RESULTS_PATH = Path(__file__).resolve().parents[1] / "ddlearn" / "pretrained" / "video_results.json"


def record(part: str, value: dict) -> None:
    """Store one part's results (with the command that made them) in the JSON the chapter reads."""
    data = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    data[part] = value
    RESULTS_PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {part!r} to {RESULTS_PATH}")


def chosen_scales(sha256=None):
    """(image, prompt) scales chosen by ``--part scales`` for this checkpoint; animate()'s defaults without one."""
    data = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    sc = data.get("scales")
    if sc and (sha256 is None or sc.get("model_sha256") == sha256):
        return tuple(sc["chosen"])
    from ddlearn.video import sampling

    return (sampling.IMAGE_SCALE, sampling.PROMPT_SCALE)


#: The pairs (image, prompt) ``--part scales`` compares; each is an option of the explorer's sliders.
SCALE_GRID = [(1.0, 1.0), (1.0, 2.0), (1.0, 3.0), (1.0, 5.0), (2.0, 1.0), (2.0, 3.0)]
#: The chapter's held-out evaluation set (Section 7) and the validation set's layout.
CHAPTER_SET = dict(per_cell=1, multi=24, still=8, bounce=8)
VALIDATION_SET = dict(per_cell=1, multi=8, still=4, bounce=0)


#: The sampler settings ``--part sampler`` compares: label -> animate() keyword arguments.
SAMPLER_GRID = {   # every setting names its clamping: measure_model's default is animate()'s, which clamps
    "DDIM eta 0, 25 steps, not clamped": dict(eta=0.0, steps=25, clip=None),
    "DDIM eta 0, 25 steps, clamped": dict(eta=0.0, steps=25, clip=(-1.0, 1.0)),
    "DDIM eta 0, 100 steps, clamped": dict(eta=0.0, steps=100, clip=(-1.0, 1.0)),
    "eta 0.5, 25 steps, clamped": dict(eta=0.5, steps=25, clip=(-1.0, 1.0)),
    "eta 1, 25 steps, not clamped": dict(eta=1.0, steps=25, clip=None),
    "eta 1, 25 steps, clamped": dict(eta=1.0, steps=25, clip=(-1.0, 1.0)),
    "eta 1, 50 steps, clamped": dict(eta=1.0, steps=50, clip=(-1.0, 1.0)),
}


def _merge_record(part: str, key: str, rows: dict, extra: dict) -> dict:
    """Add ``rows`` (label -> row) to ``part``'s stored rows (other processes may add theirs), under a lock."""
    import fcntl

    with open("/tmp/ddlearn-video-results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
        old = data.get(part, {})
        same = (isinstance(old.get(key), dict) and old.get("model_sha256") == extra.get("model_sha256")
                and all(old.get(k) == json.loads(json.dumps(extra.get(k))) for k in ("sampler", "scales")))
        merged = {**(old[key] if same else {}), **rows}
        data[part] = {**extra, key: merged}
        RESULTS_PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {part!r} ({len(merged)} rows) to {RESULTS_PATH}")
    return data[part]


def _summary_row(label: str, summary: dict, seconds: float | None = None) -> dict:
    row = {"setting": label}
    for k, lab, mult, unit in COLUMNS:
        m, sd, n = summary.get(k, (float("nan"), 0.0, 0))   # tables stored before a column existed lack it
        digits = 1 if mult == 100 or unit == "dB" else 3
        row[lab] = f"{mult * m:.{digits}f} +- {mult * sd:.{digits}f}" if np.isfinite(m) else "-"
    if seconds is not None:
        row["seconds"] = f"{seconds:.0f}"
    return row


def part_sampler(args):
    """Each setting of SAMPLER_GRID on the validation set (one sampling seed, mean +- sd over clips)."""
    p = pretrained.load(args.models[0])
    scales = chosen_scales(p.info.get("sha256"))
    evalset = V.heldout_set(p.model.image_size, split="train", seed=V.VALIDATION_SEED, **VALIDATION_SET)
    seed = args.seeds[0]
    labels = args.only or list(SAMPLER_GRID)
    print(f"== {args.models[0]}: {len(evalset['specs'])} validation clips, scales {scales}, sampling seed {seed}",
          flush=True)
    raw = {}
    for label in labels:
        t = time.perf_counter()
        res = V.measure_model(p.model, p.schedule, evalset, image_scale=scales[0], prompt_scale=scales[1],
                              seed=seed, **SAMPLER_GRID[label])
        raw[label] = {"kwargs": SAMPLER_GRID[label], "summary": _json_summary(res["summary"]),
                      "seconds": time.perf_counter() - t}
        print(_summary_row(label, res["summary"], raw[label]["seconds"]), flush=True)
    stored = _merge_record("sampler", "rows", raw, {
        "command": "python benchmarks/video.py --part sampler", "model": args.models[0],
        "model_sha256": p.info.get("sha256"), "scales": list(scales),
        "split": f"validation: heldout_set(split='train', seed={V.VALIDATION_SEED}, {VALIDATION_SET})",
        "sampling_seed": seed, "eval_clips": len(evalset["specs"]),
        "rule": "among settings with under 1% noise frames, the smallest mean displacement error over the moving clips"})
    rows = stored["rows"]
    table([_summary_row(k, {kk: tuple(v) for kk, v in r["summary"].items()}, r["seconds"]) for k, r in rows.items()],
          ["setting"] + [c[1] for c in COLUMNS] + ["seconds"])
    ok = {k: r for k, r in rows.items() if r["summary"]["noise_frames"][0] < 0.01}
    if ok:
        best = min(ok, key=lambda k: ok[k]["summary"]["displacement_error"][0])
        stored["chosen"] = best
        _merge_record("sampler", "rows", {}, {k: v for k, v in stored.items() if k != "rows"})
        print(f"chosen: {best} ({SAMPLER_GRID.get(best, rows[best]['kwargs'])})")
    else:
        print("no setting has under 1% noise frames")


def fmt(vals, mult=1.0, digits=1):
    return fmt_mean_sd(vals, digits=digits, scale=mult)


def run_model(model, schedule, evalset, args, *, scales=(1.0, 3.0), context=True, clf=None):
    """Summaries (one per sampling seed) and Frechet clip distances of a model on the evaluation set."""
    sums, fcds, seconds = [], [], []
    for seed in args.seeds:
        t = time.perf_counter()
        res = V.measure_model(model, schedule, evalset, image_scale=scales[0], prompt_scale=scales[1], seed=seed,
                              steps=args.steps, classifier=clf, context=context)
        seconds.append(time.perf_counter() - t)
        sums.append(res["summary"])
        if clf is not None:
            fcds.append(res["fcd"])
    return sums, fcds, seconds


def row_of(name, sums, fcds=()):
    row = {"model": name}
    for key, label, mult, unit in COLUMNS:
        row[label] = fmt([s[key][0] for s in sums], mult, 1 if mult == 100 or unit == "dB" else 3)
    row["FCD"] = fmt(fcds, 1, 2) if len(fcds) else "-"
    return row


def baselines(evalset, clf, size):
    static = evalset["x"][:, :, :1].expand_as(evalset["x"]).contiguous()
    _, s_static = V.evaluate_clips(static, evalset["specs"])
    _, s_real = V.evaluate_clips(evalset["x"], evalset["specs"])
    other = V.heldout_set(size, per_cell=max(1, len(evalset["specs"]) // 48), seed=777)
    n = min(len(other["x"]), len(evalset["x"]))
    return ([row_of("static copy", [s_static], [V.frechet_clip_distance(static, evalset["x"], classifier=clf)]),
             row_of("real clips", [s_real], [V.frechet_clip_distance(other["x"][:n], evalset["x"][:n], classifier=clf)])])


def part_models(args):
    clf = pretrained.load("clip_classifier").model
    for name in args.models:
        if name not in pretrained.available():
            print(f"{name}: not shipped, skipped")
            continue
        p = pretrained.load(name)
        size = p.model.image_size
        scales = chosen_scales(p.info.get("sha256"))
        evalset = V.heldout_set(size, per_cell=args.per_cell)
        print(f"== {name}: {len(evalset['specs'])} held-out clips at {size}x{size}, DDIM {args.steps}, "
              f"scales (image, prompt) = {scales}, seeds {args.seeds}; trained in "
              f"{p.info['train_seconds'] / 60:.1f} min ({p.info['steps']} steps)", flush=True)
        sums, fcds, secs = run_model(p.model, p.schedule, evalset, args, scales=scales, clf=clf)
        rows = [row_of(name, sums, fcds)]
        if size == 16 and p.model.context:
            s2, f2, _ = run_model(p.model, p.schedule, evalset, args, scales=scales, context=False, clf=clf)
            rows.append(row_of(name + ", image tokens blanked", s2, f2))
        rows += baselines(evalset, clf, size)
        table(rows, ["model"] + [c[1] for c in COLUMNS] + ["FCD"])
        print(f"sampling + metrics: {np.mean(secs):.0f} s per seed for {len(evalset['specs'])} clips "
              f"(measured under the lock on the 2-core machine)\n", flush=True)


def _stride_ratios(rows) -> dict:
    """Length ratio (along the command / commanded length) of the one-sprite moving clips, by stride."""
    out = {}
    for stride in C.STRIDES:
        v = [r["length_ratio"] for r in rows if r.get("stride") == stride and r["n_sprites"] == 1
             and "length_ratio" in r and np.isfinite(r["length_ratio"])]
        out[str(stride)] = [float(np.mean(v)) if v else float("nan"), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                            len(v)]
    return out


#: The per-clip figures stored for a model measured from --dir (the ablation's paired differences).
PER_CLIP = ("n_sprites", "direction_right", "displacement_error", "length_ratio", "trackable", "iou", "psnr0",
            "colour_drift", "background_drift", "noise_frames")


def _sampler(args) -> dict:
    """animate()'s defaults as a record stores them; with ``args.like``, the sampler of that stored record instead
    (so that a variant pairs with it clip by clip)."""
    from ddlearn.video import sampling

    if args is not None and args.like:
        like = json.loads(RESULTS_PATH.read_text()).get(args.like)
        if not like or "sampler" not in like:
            raise SystemExit(f"--like {args.like}: no such record with a sampler in {RESULTS_PATH}")
        return dict(like["sampler"])
    return {"image_scale": sampling.IMAGE_SCALE, "prompt_scale": sampling.PROMPT_SCALE, "eta": sampling.ETA,
            "steps": sampling.STEPS, "clip": list(sampling.CLIP) if sampling.CLIP else None}


def part_heldout(args):
    """video16 with animate()'s defaults on the held-out set, one row per sampling seed (merged in the JSON).

    ``--blank``: the image tokens blanked at sampling (stored as ``heldout_blank``). ``--like KEY``: sample as the
    stored record KEY did instead (its scales, eta, steps and clamping), so that a variant pairs with it clip by clip.
    """
    name = args.models[0]
    p = pretrained.load(name, directory=args.dir)
    clf = pretrained.load("clip_classifier").model
    if args.validation:  # choosing between trained variants: never on the held-out clips
        evalset = V.heldout_set(p.model.image_size, split="train", seed=V.VALIDATION_SEED, **VALIDATION_SET)
    else:
        evalset = V.heldout_set(p.model.image_size, per_cell=args.per_cell)
    # the shipped model's rows under "heldout"; a model from --dir (an ablation variant) under "heldout:NAME"
    key = ("validation" if args.validation else "heldout_blank" if args.blank else "heldout") + (
        "" if args.dir is None else f":{name}")
    defaults = _sampler(args)
    print(f"== {name}{' (image tokens blanked)' if args.blank else ''}: {len(evalset['specs'])} held-out "
          f"clips, sampler {defaults}, seeds {args.seeds}", flush=True)
    raw = {}
    for seed in args.seeds:
        t = time.perf_counter()
        res = V.measure_model(p.model, p.schedule, evalset, seed=seed, classifier=clf, context=not args.blank,
                              image_scale=defaults["image_scale"], prompt_scale=defaults["prompt_scale"],
                              eta=defaults["eta"], steps=defaults["steps"],
                              clip=None if defaults["clip"] is None else tuple(defaults["clip"]))
        raw[str(seed)] = {"summary": _json_summary(res["summary"]), "fcd": res["fcd"],
                          "length_ratio_by_stride": _stride_ratios(res["rows"]), "seconds": time.perf_counter() - t}
        if args.dir is not None:  # an ablation variant: per-clip figures, for differences paired over clips
            raw[str(seed)]["per_clip"] = {k: [None if r.get(k) is None else float(r[k]) for r in res["rows"]]
                                          for k in PER_CLIP}
        print(_summary_row(f"seed {seed}", res["summary"], raw[str(seed)]["seconds"]), f"FCD {res['fcd']:.2f}",
              flush=True)
    where = "" if args.dir is None else f" --models {name} --dir {args.dir}"
    flags = ((" --blank" if args.blank else "") + (" --validation" if args.validation else "")
             + (f" --like {args.like}" if args.like else ""))
    extra = {"command": f"python benchmarks/video.py --part heldout{flags}{where} --seeds S",
             "model": name, "train_seconds": p.info.get("train_seconds"), "steps": p.info.get("steps"),
             "model_sha256": p.info.get("sha256"), "sampler": defaults,
             "eval_clips": len(evalset["specs"]), "per_cell": args.per_cell}
    if not args.blank and not args.validation:   # the rows that bound every figure, once
        static = evalset["x"][:, :, :1].expand_as(evalset["x"]).contiguous()
        other = V.heldout_set(p.model.image_size, per_cell=args.per_cell, seed=777)
        extra["static_copy"] = {"summary": _json_summary(V.evaluate_clips(static, evalset["specs"])[1]),
                                "fcd": V.frechet_clip_distance(static, evalset["x"], classifier=clf)}
        real_rows, real_summary = V.evaluate_clips(evalset["x"], evalset["specs"])
        extra["real_clips"] = {"summary": _json_summary(real_summary),
                               "length_ratio_by_stride": _stride_ratios(real_rows),
                               "fcd": V.frechet_clip_distance(other["x"], evalset["x"], classifier=clf)}
    stored = _merge_record(key, "seeds", raw, extra)
    rows = [_summary_row(f"seed {k}", {kk: tuple(v) for kk, v in r["summary"].items()}) for k, r in stored["seeds"].items()]
    for bound in ("static_copy", "real_clips"):
        if bound in stored:
            rows.append(_summary_row(bound.replace("_", " "), {kk: tuple(v) for kk, v in stored[bound]["summary"].items()}))
    table(rows, ["setting"] + [c[1] for c in COLUMNS])
    for k, r in stored["seeds"].items():
        print(f"seed {k}: FCD {r['fcd']:.2f}; length ratio by stride (mean +- sd, n): "
              + ", ".join(f"{s}: {m:.2f} +- {sd:.2f} ({n})" for s, (m, sd, n) in r["length_ratio_by_stride"].items()))
    if not args.blank and args.dir is None:
        print_targets(stored["seeds"])


#: Issue 21's held-out targets: (label, summary key or None for the stride ratios, test of the mean).
TARGETS = [("noise frames < 1%", "noise_frames", lambda v: v < 0.01),
           ("frame-0 PSNR >= 34 dB", "psnr0", lambda v: v >= 34),
           ("one sprite right >= 98%", "direction_right_1", lambda v: v >= 0.98),
           ("2-3 sprites right >= 95%", "direction_right_multi", lambda v: v >= 0.95),
           ("length ratio 0.8-1.25 at every stride", None, lambda v: 0.8 <= v <= 1.25),
           ("displacement error <= 1.0 px", "displacement_error", lambda v: v <= 1.0),
           ("sprite found in >= 97% of frames", "trackable", lambda v: v >= 0.97),
           ("IoU >= 0.65", "iou", lambda v: v >= 0.65)]


def part_targets(args):
    """The targets against the stored held-out rows (``--part heldout``), without sampling again."""
    held = json.loads(RESULTS_PATH.read_text()).get("heldout", {})
    sha = pretrained.info(args.models[0]).get("sha256")
    if held.get("model_sha256") != sha or not held.get("seeds"):
        raise SystemExit(f"no held-out rows of the shipped {args.models[0]}: run --part heldout --seeds 0 1 first")
    defaults = _sampler(None)
    if held.get("sampler") != defaults:
        raise SystemExit(f"the stored rows used {held.get('sampler')}, animate()'s defaults are {defaults}: "
                         "run --part heldout again")
    print(f"`{held['command']}`: {held['eval_clips']} held-out clips, sampler {held['sampler']}")
    print_targets(held["seeds"])


def print_targets(seeds: dict) -> None:
    """Each target, met or missed, with each sampling seed's mean."""
    rows = []
    for label, key, ok in TARGETS:
        row = {"target": label}
        for k, r in seeds.items():
            if key is None:
                vals = [m for m, _, _ in r["length_ratio_by_stride"].values()]
                row[f"seed {k}"] = (f"{min(vals):.2f}-{max(vals):.2f} "
                                    + ("met" if all(ok(v) for v in vals) else "missed"))
            else:
                m = r["summary"][key][0]
                shown = f"{100 * m:.1f}%" if key not in ("psnr0", "displacement_error", "iou") else f"{m:.3g}"
                row[f"seed {k}"] = f"{shown} " + ("met" if ok(m) else "missed")
        rows.append(row)
    table(rows, ["target"] + [f"seed {k}" for k in seeds])


def _json_summary(summary):
    return {k: [float(v[0]), float(v[1]), int(v[2])] for k, v in summary.items()}


def chosen_sampler(sha256=None) -> dict:
    """The animate() keyword arguments ``--part sampler`` chose for this checkpoint (eta 0, 25 steps without one)."""
    data = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    sm = data.get("sampler")
    if sm and sm.get("chosen") and (sha256 is None or sm.get("model_sha256") == sha256):
        kw = dict(sm["rows"][sm["chosen"]]["kwargs"])
        if kw.get("clip") is not None:
            kw["clip"] = tuple(kw["clip"])
        return kw
    return dict(eta=0.0, steps=25)


def part_scales(args):
    """Each pair of SCALE_GRID on the validation set with the chosen sampler (one seed, mean +- sd over clips)."""
    p = pretrained.load(args.models[0])
    evalset = V.heldout_set(p.model.image_size, split="train", seed=V.VALIDATION_SEED, **VALIDATION_SET)
    seed = args.seeds[0]
    sampler = chosen_sampler(p.info.get("sha256"))
    pairs = [tuple(float(v) for v in pair.split(",")) for pair in args.only] if args.only else SCALE_GRID
    print(f"== {args.models[0]}: {len(evalset['specs'])} validation clips, sampler {sampler}, sampling seed {seed}",
          flush=True)
    raw = {}
    for si, sp in pairs:
        t = time.perf_counter()
        res = V.measure_model(p.model, p.schedule, evalset, image_scale=si, prompt_scale=sp, seed=seed, **sampler)
        raw[f"{si:g},{sp:g}"] = {"image_scale": si, "prompt_scale": sp, "summary": _json_summary(res["summary"]),
                                 "seconds": time.perf_counter() - t}
        print(_summary_row(f"image {si:g}, prompt {sp:g}", res["summary"], raw[f"{si:g},{sp:g}"]["seconds"]),
              flush=True)
    extra = {"command": "python benchmarks/video.py --part scales", "model": args.models[0],
             "model_sha256": p.info.get("sha256"), "sampler": sampler,
             "split": f"validation: heldout_set(split='train', seed={V.VALIDATION_SEED}, {VALIDATION_SET})",
             "sampling_seed": seed, "eval_clips": len(evalset["specs"]),
             "rule": "smallest mean displacement error over the moving clips"}
    rows = _merge_record("scales", "rows", raw, extra)["rows"]
    best = min(rows.values(), key=lambda r: r["summary"]["displacement_error"][0])
    chosen = [best["image_scale"], best["prompt_scale"]]
    _merge_record("scales", "rows", {}, {**extra, "chosen": chosen})
    table([_summary_row(k, {kk: tuple(v) for kk, v in r["summary"].items()}, r["seconds"]) for k, r in rows.items()],
          ["setting"] + [c[1] for c in COLUMNS] + ["seconds"])
    print(f"chosen (smallest displacement error on the moving validation clips): image {chosen[0]:g}, "
          f"prompt {chosen[1]:g}")


def part_blank(args):
    """The shipped model with its image tokens blanked at sampling, on the chapter's held-out set and seed."""
    p = pretrained.load(args.models[0])
    scales = chosen_scales(p.info.get("sha256"))
    clf = pretrained.load("clip_classifier").model
    evalset = V.heldout_set(p.model.image_size, **CHAPTER_SET)
    seed = args.seeds[0]
    t = time.perf_counter()
    res = V.measure_model(p.model, p.schedule, evalset, image_scale=scales[0], prompt_scale=scales[1], seed=seed,
                          steps=args.steps, classifier=clf, context=False)
    print(f"== {args.models[0]}, image tokens blanked: {len(evalset['specs'])} held-out clips, scales {scales}, "
          f"seed {seed}, {time.perf_counter() - t:.0f} s", flush=True)
    table([row_of("image tokens blanked", [res["summary"]], [res["fcd"]])], ["model"] + [c[1] for c in COLUMNS] + ["FCD"])
    record("blank", {"command": "flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part blank",
                     "model": args.models[0], "model_sha256": p.info.get("sha256"), "scales": list(scales),
                     "sampling_seed": seed, "ddim_steps": args.steps, "eval_clips": len(evalset["specs"]),
                     "summary": _json_summary(res["summary"]), "fcd": res["fcd"]})


def part_stride(args):
    """The same held-out images (drawn at stride 4, so every stride's path fits) animated at every stride."""
    from dataclasses import replace

    p = pretrained.load(args.models[0])
    size = p.model.image_size
    parts = [C.clips(args.per_cell * 2, size=size, split="test", seed=500 + i, n_sprites=1, prompts=prompt,
                     strides=max(C.STRIDES), return_specs=True) for i, prompt in enumerate(V.STRAIGHT)]
    base = {"x": torch.cat([d["x"] for d in parts]), "prompt": torch.cat([d["prompt"] for d in parts]),
            "specs": [s for d in parts for s in d["specs"]]}
    rows = []
    for stride in C.STRIDES:
        evalset = {**base, "stride": torch.full((len(base["specs"]),), stride),
                   "specs": [replace(s, stride=stride) for s in base["specs"]]}
        speeds = []
        for seed in args.seeds:
            scales = chosen_scales(p.info.get("sha256"))
            res = V.measure_model(p.model, p.schedule, evalset, image_scale=scales[0],
                                  prompt_scale=scales[1], seed=seed, steps=args.steps)
            speeds.append(np.nanmean([r["speed"] for r in res["rows"]]))
        rows.append({"stride": stride, "commanded px/frame": f"{C.speed(size) * stride:.2f}",
                     "measured px/frame": fmt(speeds, 1, 3)})
    table(rows, ["stride", "commanded px/frame", "measured px/frame"])
    record("stride", {"command": "flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part stride",
                      "model": args.models[0], "sampling_seeds": list(args.seeds), "clips_per_stride": len(base["specs"]),
                      "rows": rows})


def part_ablation(args):
    from ddlearn import train
    from ddlearn.recipes.ch08 import ABLATION_STEPS, ABLATIONS

    clf = pretrained.load("clip_classifier").model
    evalset = V.heldout_set(16, per_cell=args.per_cell)
    out_dir = Path("runs/ablation")
    results = {}
    for short in ABLATIONS:
        name = f"video16_ablation_{short}"
        if args.only and short not in args.only:
            continue
        if args.train and not (out_dir / f"{name}.safetensors").exists():
            t = time.perf_counter()
            train.run_recipe(name, out_dir=out_dir, progress=False)
            print(f"{name}: trained in {(time.perf_counter() - t) / 60:.1f} min", flush=True)
        p = pretrained.load(name, directory=out_dir)
        res = {"train_seconds": p.info["train_seconds"], "steps": p.info["steps"]}
        # every variant at the shipped scales; the reference also without guidance and with its image tokens blanked
        scale_sets = {"scales 1, 3": (1.0, 3.0), **({"scales 1, 1": (1.0, 1.0)} if short == "both" else {})}
        for label, sc in scale_sets.items():
            sums, fcds, _ = run_model(p.model, p.schedule, evalset, args, scales=sc, clf=clf)
            res[label] = {"summary": [{k: v[0] for k, v in s.items()} for s in sums], "fcd": fcds}
        if short == "both":
            sums, fcds, _ = run_model(p.model, p.schedule, evalset, args, context=False, clf=clf)
            res["image tokens blanked"] = {"summary": [{k: v[0] for k, v in s.items()} for s in sums], "fcd": fcds}
        res["gates"] = p.model.gates()
        results[short] = res
        print(name, json.dumps({k: v for k, v in res.items() if k != "gates"})[:400], flush=True)
    if not args.only:
        record("ablation", {"command": "flock /tmp/ddlearn-heavy.lock python benchmarks/video.py --part ablation --train",
                            "steps": ABLATION_STEPS, "sampling_seeds": list(args.seeds), "ddim_steps": args.steps,
                            "eval_clips": len(evalset["specs"]), "per_cell": args.per_cell, "results": results})
    rows = []
    for short, res in results.items():
        sums = [{k: (v, 0, 0) for k, v in s.items()} for s in res["scales 1, 3"]["summary"]]
        rows.append(row_of(short, sums, res["scales 1, 3"]["fcd"]))
    table(rows, ["model"] + [c[1] for c in COLUMNS] + ["FCD"])


def _perturbed(x, *, noise=0.0, blur=0.0, generator=None):
    """Clips ``x`` (B, 3, F, H, W) with frames 1.. given Gaussian noise of sd ``noise`` or a Gaussian blur of sd
    ``blur`` pixels (frame 0, the conditioning image, untouched); a new tensor."""
    from scipy.ndimage import gaussian_filter

    y = x.clone()
    if noise:
        y[:, :, 1:] += torch.randn(y[:, :, 1:].shape, generator=generator) * noise
    if blur:
        arr = y.numpy()
        arr[:, :, 1:] = gaussian_filter(arr[:, :, 1:], sigma=(0, 0, 0, blur, blur))
        y = torch.from_numpy(arr)
    return y


def _iou_row(label, clip, real, specs, image) -> dict:
    """One row of the IoU scale: ``clip``'s distance from the ``real`` clips and the tracker's figures on it."""
    _, summ = V.evaluate_clips(clip, specs, image)
    return {"clips": label, "rmse": f"{float((clip - real).pow(2).mean().sqrt()):.4f}",
            "IoU": "%.3f +- %.3f" % tuple(summ["iou"][:2]), "trackable": f"{100 * summ['trackable'][0]:.1f}%"}


def part_iou_scale(args):
    """What an IoU is worth (issue 21): the tracker's shape IoU of the real held-out clips with frames 1.. perturbed
    by invisible noise or a slight blur, and the shipped model's one-step clean estimate from real clips noised to t."""
    from ddlearn import forward, param

    evalset = V.heldout_set(16, per_cell=args.per_cell)
    x, specs, image = evalset["x"], evalset["specs"], evalset["x"][:, :, 0]
    g = torch.Generator().manual_seed(0)
    rows = [_iou_row(label, _perturbed(x, generator=g, **kw), x, specs, image)
            for label, kw in [("real clips", {})] + [(f"noise sd {r}", {"noise": r}) for r in (0.005, 0.01, 0.02, 0.04)]
            + [(f"blur sd {b} px", {"blur": b}) for b in (0.3, 0.5, 0.8)]]
    p = pretrained.load(args.models[0])
    model, schedule = p.model.eval(), p.schedule
    scales = chosen_scales(p.info.get("sha256"))
    m = V.guided(model, image, evalset["prompt"], evalset["stride"], image_scale=scales[0], prompt_scale=scales[1])
    z0 = model.encode(x, image)
    noise = torch.randn(z0.shape, generator=g)
    for t in (2, 10, 50, 100, 200):
        zt = forward.q_sample(z0, t, noise, schedule)
        with torch.no_grad():
            eps = m(zt, torch.full((zt.shape[0],), t))
        z0h = param.eps_to_x0(zt, eps, schedule.alpha_bars[t]).clamp(-model.z_bound, model.z_bound)
        rows.append(_iou_row(f"{args.models[0]}'s clean estimate at t = {t}", model.decode(z0h, image), x, specs, image))
    table(rows, ["clips", "rmse", "IoU", "trackable"])
    record("iou_scale", {"command": "python benchmarks/video.py --part iou_scale", "model": args.models[0],
                         "model_sha256": p.info.get("sha256"), "scales": list(scales),
                         "eval_clips": len(specs), "rows": rows})


def main():
    global RESULTS_PATH
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("models", "sampler", "scales", "heldout", "targets", "blank", "stride",
                                      "ablation", "iou_scale"),
                   default="models")
    p.add_argument("--blank", action="store_true", help="heldout: the image tokens blanked at sampling")
    p.add_argument("--validation", action="store_true",
                   help="heldout: measure on the validation clips instead (stored as validation[:NAME])")
    p.add_argument("--like", default=None, metavar="KEY",
                   help="heldout: sample with the sampler a stored record used (e.g. heldout:video16s_reference), "
                        "to pair with it; default: animate()'s defaults")
    p.add_argument("--dir", default=None, help="heldout: load the model from this folder (e.g. runs/ablation)")
    p.add_argument("--models", nargs="+", default=["video16", "video32"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--per-cell", type=int, default=2)
    p.add_argument("--train", action="store_true", help="ablation: train the variants that runs/ablation lacks")
    p.add_argument("--only", nargs="*", default=None,
                   help="ablation: only these variants (no JSON written); sampler: only these settings; "
                        "scales: only these pairs 'IMAGE,PROMPT' (both merged into the stored table)")
    p.add_argument("--results", type=Path, default=RESULTS_PATH, help="the JSON the chapter reads (for trials: elsewhere)")
    args = p.parse_args()
    RESULTS_PATH = args.results
    start = time.perf_counter()
    {"models": part_models, "sampler": part_sampler, "heldout": part_heldout, "targets": part_targets,
     "scales": part_scales, "blank": part_blank, "stride": part_stride, "ablation": part_ablation,
     "iou_scale": part_iou_scale}[args.part](args)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
