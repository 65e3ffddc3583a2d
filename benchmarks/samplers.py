"""Fast samplers against diffusers' schedulers: quality and wall time at equal model evaluations.

    flock /tmp/ddlearn-heavy.lock python benchmarks/samplers.py            # every model available
    flock /tmp/ddlearn-heavy.lock python benchmarks/samplers.py --models mixture --n 2000

Models: ``mixture`` (the exact ring8 oracle, linear schedule T = 1000) and the
shipped checkpoints ``toy2d`` (swiss roll MLP) and ``digits`` (16x16 UNet),
when they exist. Every sampler starts from the same x_T draws.

Quality: sliced Wasserstein (``ddlearn.metrics``, fixed projections) to
samples of the true mixture / held-out swiss-roll points, averaged over
``--seeds`` draws of x_T (each against its own reference set) (a single draw of 4000 points moves SW by
about +-0.01, as much as the differences we want to see); Frechet digit distance to the
held-out digits. At 1000 evaluations every sampler runs on the oracle, but on
the checkpoints only those named by ``--trained-at-1000`` / ``--images-at-1000``
(plus 1000-step ancestral): a network at 1000 evaluations per sampler would
take an hour on 2 cores. Lower is better; the "floor" line is the same metric between
two independent data sets of the same size (what a perfect sampler scores).

diffusers runs its own loop (``set_timesteps``, ``scale_model_input``,
``step``) with ``trained_betas`` = the model's schedule. Pairs of the same
algorithm get a wall-time ratio ours / diffusers; a separate table measures
per-step overhead alone with a model that returns zeros.

All runs use one torch thread: on the shared 2-core machine that is both
faster for these small models and steadier to time.
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from ddlearn import data, metrics
from ddlearn.oracles import named_mixture
from ddlearn.samplers import (sample_ddim, sample_dpm_solver, sample_dpm_solver_pp, sample_euler, sample_heun)
from ddlearn.schedules import linear

BUDGETS = (5, 10, 20, 50, 1000)

# ours: name -> (function, options, evaluations as a function of steps, steps for a budget)
OURS = {
    "DDIM[leading]": (sample_ddim, {"spacing": "leading"}, 1),
    "DDIM[trailing]": (sample_ddim, {"spacing": "trailing"}, 1),
    "Euler[karras]": (sample_euler, {"spacing": "karras"}, 1),
    "Heun[karras]": (sample_heun, {"spacing": "karras"}, 2),
    "DPM-Solver-2[logsnr]": (sample_dpm_solver, {"order": 2, "spacing": "logsnr"}, 2),
    "DPM-Solver-3[logsnr]": (sample_dpm_solver, {"order": 3, "spacing": "logsnr"}, 3),
    "DPM++2M[logsnr]": (sample_dpm_solver_pp, {"spacing": "logsnr"}, 1),
    "DPM++2M[karras]": (sample_dpm_solver_pp, {"spacing": "karras"}, 1),
    "DPM++2M[trailing]": (sample_dpm_solver_pp, {"spacing": "trailing"}, 1),  # ~ diffusers' DPM "linspace"
}
# diffusers: name -> (scheduler class name, config, evaluations per step)
THEIRS = {
    "DDIM[leading]": ("DDIMScheduler", {"timestep_spacing": "leading", "set_alpha_to_one": True,
                                        "clip_sample": False}, 1),
    "DDIM[trailing]": ("DDIMScheduler", {"timestep_spacing": "trailing", "set_alpha_to_one": True,
                                         "clip_sample": False}, 1),
    "Euler[karras]": ("EulerDiscreteScheduler", {"use_karras_sigmas": True}, 1),
    "Heun[karras]": ("HeunDiscreteScheduler", {"use_karras_sigmas": True}, 2),
    "DPM++2M[linspace]": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, 1),
    "DPM++2M[logsnr]": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_lu_lambdas": True}, 1),
    "DPM++2M[karras]": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_karras_sigmas": True}, 1),
}


def steps_for(budget: int, per_step: int) -> int:
    """Most steps within ``budget`` evaluations: N steps cost per_step (N - 1) + 1 (last step first order)."""
    return max(1, 1 + (budget - 1) // per_step)


def run_ours(name, model, x_T, schedule, budget):
    fn, opts, per = OURS[name]
    return fn(model, x_T, schedule, steps_for(budget, per), progress=False, **opts)


def run_diffusers(name, model, x_T, schedule, budget):
    import diffusers

    cls, cfg, per = THEIRS[name]
    sched = getattr(diffusers, cls)(num_train_timesteps=schedule.T, trained_betas=schedule.betas.numpy(), **cfg)
    sched.set_timesteps(steps_for(budget, per))
    x = x_T * sched.init_noise_sigma
    with torch.no_grad():
        for t in sched.timesteps:
            tt = torch.full((x.shape[0],), float(t), dtype=x.dtype)
            eps = model(sched.scale_model_input(x, t), tt)
            x = sched.step(eps, t, x).prev_sample
    return x


class Counted:
    def __init__(self, model):
        self.model, self.nfe = model, 0

    def __call__(self, x, t):
        self.nfe += 1
        return self.model(x, t)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def load_models(names, n, seeds):
    """(label, model, schedule, starting noises, quality function, name, floor) per model asked for and available.

    2-D models: ``seeds`` draws of x_T, draw k scored against its own reference set
    k of the same size (true mixture / held-out swiss roll), and the floor is the
    mean score of ``seeds`` fresh data sets. Digits: one draw, FDD to the 359 held-out digits.
    """
    out = []

    def sw_to(refs):  # score draw k against reference set k (equal sizes: exact quantiles, no interpolation)
        return lambda x, k: metrics.sliced_wasserstein(x, refs[k], generator=torch.Generator().manual_seed(0))

    noises = [torch.randn(n, 2, generator=torch.Generator().manual_seed(100 + k)) for k in range(seeds)]
    for name in names:
        if name == "mixture":
            sched, mix = linear(1000), named_mixture("ring8")
            sw = sw_to([mix.sample(n, generator=torch.Generator().manual_seed(1 + k)) for k in range(seeds)])
            others = [mix.sample(n, generator=torch.Generator().manual_seed(50 + k)) for k in range(seeds)]
            floor = sum(sw(x, k) for k, x in enumerate(others)) / seeds
            out.append(("mixture (exact oracle)", mix.eps_model(sched), sched, noises, sw, "SW", floor))
            continue
        from ddlearn import pretrained

        if name not in pretrained.available():
            print(f"(skipping {name}: checkpoint not shipped yet)")
            continue
        model, sched = pretrained.load(name)
        if name == "toy2d":
            sw = sw_to([data.swiss_roll(n, split="test", seed=k) for k in range(seeds)])
            floor = sum(sw(data.swiss_roll(n, split="train", seed=k), k) for k in range(seeds)) / seeds
            out.append(("toy2d (swiss roll MLP)", model, sched, noises, sw, "SW", floor))
        elif name == "digits":
            held = data.digits("test")
            train = data.digits("train")
            m = min(n, 128)

            def fdd(x, k, held=held):
                return metrics.frechet_digit_distance(x.float().clamp(-1, 1), held)

            floor = fdd(train[torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(0))[:m]], 0)
            out.append(("digits (16x16 UNet)", model, sched, [torch.randn(m, 1, 16, 16,
                        generator=torch.Generator().manual_seed(100))], fdd, "FDD", floor))
    return out


def warm_up(model, x_T, schedule):
    """One short run of everything first, so imports and first-call setup are not timed."""
    for name in OURS:
        run_ours(name, model, x_T[:8], schedule, 5)
    for name in THEIRS:
        try:
            run_diffusers(name, model, x_T[:8], schedule, 5)
        except Exception:  # reported where it matters, in the table
            pass


def overhead_table(schedule):
    """Per-step cost of the sampler itself: a model that returns zeros, 64 points, 50 steps, best of 10."""
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    warm_up(zero, x_T, schedule)
    print("\nPer-step overhead (model returns zeros; 64 x 2 points; 50 steps; best of 10 runs)")
    print(f"{'sampler':24s} {'ours us/step':>13s} {'diffusers us/step':>18s} {'ratio':>6s}")
    for name in OURS:
        if name not in THEIRS:
            continue
        per = OURS[name][2]
        best = [math.inf, math.inf]
        for _ in range(10):
            best[0] = min(best[0], timed(run_ours, name, zero, x_T, schedule, 50 * per)[1])
            best[1] = min(best[1], timed(run_diffusers, name, zero, x_T, schedule, 50 * per)[1])
        n = steps_for(50 * per, per)
        print(f"{name:24s} {1e6 * best[0] / n:13.1f} {1e6 * best[1] / n:18.1f} {best[0] / best[1]:6.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="mixture,toy2d,digits")
    p.add_argument("--n", type=int, default=4000, help="samples per run (digits: at most 128)")
    p.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    p.add_argument("--seeds", type=int, default=2, help="draws of x_T averaged for the 2-D models")
    p.add_argument("--overhead-only", action="store_true")
    p.add_argument("--trained-at-1000", default="DPM++2M[logsnr]",
                   help="samplers run at 1000 evaluations on the 2-D checkpoint (comma-separated)")
    p.add_argument("--images-at-1000", default="",
                   help="samplers run at 1000 evaluations on digits (comma-separated; ancestral always runs)")
    args = p.parse_args(argv)
    if args.overhead_only:
        torch.set_num_threads(1)
        return overhead_table(linear(1000))
    torch.set_num_threads(1)
    budgets = [int(b) for b in args.budgets.split(",")]

    def at_1000(label):
        return (args.images_at_1000 if label.startswith("digits") else args.trained_at_1000).split(",")

    print(f"torch {torch.__version__}, 1 thread; budgets {budgets}")
    summary = []
    for label, model, sched, x_Ts, quality, qname, floor in load_models(args.models.split(","), args.n, args.seeds):
        print(f"\n== {label}: {qname} (lower is better; mean over {len(x_Ts)} draws of x_T of {x_Ts[0].shape[0]}); "
              f"floor (fresh data of the same size) {floor:.4f}")
        warm_up(model, x_Ts[0], sched)

        def score(run):  # mean quality and mean wall time over the starting noises
            q = w = 0.0
            for k, x_T in enumerate(x_Ts):
                x, sec = timed(run, x_T, k)
                q, w = q + quality(x, k), w + sec
            return q / len(x_Ts), w / len(x_Ts)

        ref = None
        if 1000 in budgets:  # DDPM ancestral over all 1000 steps, the slow baseline
            from ddlearn.samplers.ancestral import sample_ancestral

            ref, sa = score(lambda x_T, k: sample_ancestral(model, x_T, sched, progress=False,
                                                            generator=torch.Generator().manual_seed(5 + k)))
            print(f"ancestral, 1000 steps: {qname} {ref:.4f}, {sa:.1f} s")
        print(f"{'NFE':>5s} {'sampler':24s} {'ours ' + qname:>10s} {'wall s':>7s} {'diffusers ' + qname:>14s}"
              f" {'wall s':>7s} {'wall ratio':>10s}")
        for b in budgets:
            best_ours, best_theirs = (math.inf, ""), (math.inf, "")
            for name in sorted(set(OURS) | set(THEIRS), key=lambda s: (s not in OURS, s)):
                if b >= 1000 and "oracle" not in label and name not in at_1000(label):
                    continue  # a trained net at 1000 evaluations per sampler would take an hour on 2 cores
                row = f"{b:5d} {name:24s}"
                wo = wt = None
                if name in OURS:
                    cm = Counted(model)
                    qo, wo = score(lambda x_T, k: run_ours(name, cm, x_T, sched, b))
                    best_ours = min(best_ours, (qo, name))
                    row += f" {qo:10.4f} {wo:7.2f}"
                else:
                    row += f" {'':10s} {'':7s}"
                if name in THEIRS:
                    try:
                        ct = Counted(model)
                        qt, wt = score(lambda x_T, k: run_diffusers(name, ct, x_T, sched, b))
                        best_theirs = min(best_theirs, (qt, name))
                        row += f" {qt:14.4f} {wt:7.2f}"
                    except Exception as err:  # report, don't hide, a configuration diffusers refuses
                        row += f" failed: {type(err).__name__}: {str(err)[:60]}"
                if wo is not None and wt is not None:
                    row += f" {wo / wt:10.2f}"
                if name in OURS:
                    row += f"   (nfe {cm.nfe // len(x_Ts)})"
                print(row, flush=True)
            summary.append((label, qname, b, best_ours, best_theirs, ref))
    print("\nSummary: best of each library at equal evaluations")
    print(f"{'model':26s} {'NFE':>5s} {'ours best':>34s} {'diffusers best':>34s} {'ours<=theirs':>12s} {'vs ancestral':>12s}")
    for label, qname, b, (qo, no), (qt, nt), ref in summary:
        if math.isinf(qo) and math.isinf(qt):
            continue  # nothing but ancestral ran at this budget
        rel = f"{qo / ref:12.2f}" if ref else f"{'-':>12s}"
        print(f"{label:26s} {b:5d} {f'{no} {qo:.4f}':>34s} {f'{nt} {qt:.4f}':>34s} {str(qo <= qt):>12s} {rel}")
    overhead_table(linear(1000))


if __name__ == "__main__":
    main()
