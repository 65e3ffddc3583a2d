"""Flow matching against DDPM at equal size, training budget and model evaluations; rectified flow's reflow.

    python benchmarks/flow.py --part train                  # the panel's 14 models (runs/flow; about 25 min, 2 threads)
    python benchmarks/flow.py --part compare --seeds 5      # table 1: MMD at 4, 10 and 20 evaluations
    python benchmarks/flow.py --part reflow --seeds 5       # table 2: one reflow of flow_mixture (ring8)
    python benchmarks/flow.py --part compare --save         # also write the tables to ddlearn/pretrained/flow_results.json

Table 1. For every 2-D mixture of ``benchmarks/samplers.py``'s exact panel (``PANEL_MIXTURES`` of
:mod:`ddlearn.recipes.ch10`), a flow-matching model (``flow_panel_NAME``: the straight path, velocity
regression) and a DDPM model (``ddpm_panel_NAME``: eps regression on the linear schedule) of the same MLP,
trained with the same steps, batch, learning rate, EMA and seed. Each is sampled at 4, 10 and 20 model
evaluations from the same ``--seeds`` draws of ``--n`` starting points, by every sampler of the book that
applies, with default arguments: DDPM by DDIM, DPM-Solver++(2M) and Heun (EDM); flow matching by Euler and
Heun on its own ODE and, through :func:`ddlearn.param.adapt` on the DDPM model's schedule, by DDIM and
DPM-Solver++. Quality: MMD (x 1e4) against the exact mixture (:func:`ddlearn.metrics.mmd`; exact samples
score 0 +- noise), mean +- sd over the draws. The verdict pairs each model's best sampler over the same draws
("tie" when the mean paired difference is within two standard errors of zero).

Table 2. One reflow (Liu et al. 2023) of the shipped ``flow_mixture`` (ring8): ``--pairs`` noise draws carried
to samples by the model (Heun, 100 steps), the model fine-tuned ``--reflow-steps`` steps on those pairs
(:func:`ddlearn.rectified.reflow`). Straightness (:func:`ddlearn.rectified.straightness`, 100 Euler steps)
and MMD at 1, 2 and 4 evaluations (Euler) against the un-reflowed model at 8 (Euler, Heun, and
DPM-Solver++ through adapt), over the same draws.

Single-threaded sampling (small models: faster and steadier on the shared machine); trainings use
``DDLEARN_THREADS`` (two when alone).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from ddlearn import flow, metrics, param, pretrained, recipes
from ddlearn.oracles import named_mixture
from ddlearn.recipe import build_schedule
from ddlearn.recipes.ch10 import PANEL_MIXTURES
from ddlearn.rectified import reflow, reflow_pairs, straightness
from ddlearn.samplers import sample_ddim, sample_dpm_solver_pp, sample_flow, sample_heun, steps_for
from ddlearn.train import run_recipe

BUDGETS = (4, 10, 20)
RESULTS = Path(__file__).resolve().parents[1] / "ddlearn" / "pretrained" / "flow_results.json"


def load_or_train(name: str, folder: Path, train: bool):
    if not (folder / f"{name}.safetensors").exists():
        if not train:
            raise SystemExit(f"{folder / name}.safetensors is missing: run --part train (or pass --train)")
        run_recipe(name, out_dir=folder, progress=False)
    return pretrained.load(name, directory=folder)


def ddpm_samplers():
    """name -> fn(model, x_T, schedule, budget) for an eps-model of a discrete schedule, default arguments."""
    return {
        "DDIM": lambda m, x, s, b: sample_ddim(m, x, s, steps_for(sample_ddim, b), progress=False),
        "DPM-Solver++": lambda m, x, s, b: sample_dpm_solver_pp(m, x, s, steps_for(sample_dpm_solver_pp, b),
                                                                progress=False),
        "Heun (EDM)": lambda m, x, s, b: sample_heun(m, x, s, steps_for(sample_heun, b), progress=False),
    }


def flow_samplers(schedule):
    """name -> fn(model, x_T, path, budget) for a velocity model: its own ODE, and the book's samplers via adapt."""
    def adapted(fn):
        def run(m, x, path, b):
            eps = param.adapt(m, path, prediction="velocity", to=schedule)
            return fn(eps, x, schedule, steps_for(fn, b), progress=False)
        return run

    return {
        "Euler": lambda m, x, p, b: sample_flow(m, x, p, steps_for(sample_flow, b), progress=False),
        "Heun": lambda m, x, p, b: sample_flow(m, x, p, steps_for(sample_flow, b, solver="heun"), solver="heun",
                                               progress=False),
        "DDIM (adapt)": adapted(sample_ddim),
        "DPM-Solver++ (adapt)": adapted(sample_dpm_solver_pp),
    }


def draws(n, seeds, D=2):
    return [torch.randn(n, D, generator=torch.Generator().manual_seed(100 + k)) for k in range(seeds)]


def score(x, mix):
    x = x.double()
    return 1e4 * metrics.mmd(x, mix) if torch.isfinite(x).all() else math.nan


def ms(vals):
    vals = [v for v in vals if math.isfinite(v)]
    if not vals:
        return "nan"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.2f} +- {sd:.2f}"


def paired(a, b):
    d = [x - y for x, y in zip(a, b)]
    m = statistics.mean(d)
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    return m, se


def compare(args, folder):
    out = {"command": "python benchmarks/flow.py --part compare", "n": args.n, "seeds": args.seeds,
           "budgets": list(BUDGETS), "steps": recipes.get(f"flow_panel_{PANEL_MIXTURES[0]}").steps, "problems": {}}
    print(f"Table 1: flow matching against DDPM, same MLP and budget "
          f"({out['steps']} steps), MMD x 1e4 (mean +- sd over {args.seeds} draws of {args.n} points)\n")
    for name in args.problems:
        mix = named_mixture(name)
        fm, path = load_or_train(f"flow_panel_{name}", folder, args.train)
        dd, sch = load_or_train(f"ddpm_panel_{name}", folder, args.train)
        xs = draws(args.n, args.seeds)
        exact = [score(mix.sample(args.n, generator=torch.Generator().manual_seed(50 + k)), mix)
                 for k in range(args.seeds)]
        rows = {}
        with torch.no_grad():
            for label, fn in ddpm_samplers().items():
                rows[f"DDPM / {label}"] = {b: [score(fn(dd, x, sch, b), mix) for x in xs] for b in BUDGETS}
            for label, fn in flow_samplers(sch).items():
                rows[f"FM / {label}"] = {b: [score(fn(fm, x, path, b), mix) for x in xs] for b in BUDGETS}
        print(f"{name} (exact samples: {ms(exact)})")
        print(f"  {'model / sampler':28s}" + "".join(f"{b:>18d} evals" for b in BUDGETS))
        for label, r in rows.items():
            print(f"  {label:28s}" + "".join(f"{ms(r[b]):>24s}" for b in BUDGETS))
        verdict = {}
        for b in BUDGETS:
            def best(prefix):
                cand = {k: v[b] for k, v in rows.items() if k.startswith(prefix) and all(map(math.isfinite, v[b]))}
                return min(cand, key=lambda k: statistics.mean(cand[k]))
            bf, bd = best("FM"), best("DDPM")
            m, se = paired(rows[bf][b], rows[bd][b])
            word = "tie" if abs(m) <= 2 * se else ("flow matching" if m < 0 else "DDPM")
            verdict[b] = {"best_fm": bf, "best_ddpm": bd, "diff": m, "se": se, "winner": word}
            print(f"  {b:>2d} evals: best FM {bf} against best DDPM {bd}: {m:+.2f} (se {se:.2f}) -> {word}")
        print()
        out["problems"][name] = {"exact": exact, "rows": {k: {str(b): v for b, v in r.items()} for k, r in rows.items()},
                                 "verdict": {str(b): v for b, v in verdict.items()}}
    return out


def reflow_table(args):
    fm, path = pretrained.load("flow_mixture")
    mix = named_mixture("ring8")
    sch = build_schedule(recipes.get("mixture"))   # the DDPM twin's schedule, for the samplers run through adapt
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(args.pairs, 2, generator=g)
    start = time.perf_counter()
    x0 = reflow_pairs(fm, path, noise)
    rf = reflow(fm, path, x0, noise, steps=args.reflow_steps, generator=torch.Generator().manual_seed(8))
    seconds = time.perf_counter() - start
    xs = draws(args.n, args.seeds)
    with torch.no_grad():
        s_before = [straightness(fm, path, x) for x in xs]
        s_after = [straightness(rf, path, x) for x in xs]
        rows = {f"reflowed, Euler, {b} eval{'s' * (b > 1)}": [score(sample_flow(rf, x, path, b, progress=False), mix)
                                                          for x in xs] for b in (1, 2, 4)}
        fs = flow_samplers(sch)
        for label in ("Euler", "Heun", "DPM-Solver++ (adapt)"):
            rows[f"un-reflowed, {label}, 8 evals"] = [score(fs[label](fm, x, path, 8), mix) for x in xs]
        for b in (1, 2, 4):
            rows[f"un-reflowed, Euler, {b} eval{'s' * (b > 1)}"] = [score(sample_flow(fm, x, path, b, progress=False),
                                                                       mix) for x in xs]
    exact = [score(mix.sample(args.n, generator=torch.Generator().manual_seed(50 + k)), mix) for k in range(args.seeds)]
    print(f"Table 2: one reflow of flow_mixture (ring8): {args.pairs} pairs, {args.reflow_steps} steps "
          f"({seconds:.0f} s with the pairs); MMD x 1e4 and straightness, mean +- sd over {args.seeds} draws "
          f"of {args.n} points\n")
    print(f"  straightness: before {ms(s_before)}, after {ms(s_after)}")
    print(f"  exact samples: {ms(exact)}")
    for label, v in rows.items():
        print(f"  {label:40s} {ms(v):>18s}")
    best8 = min((k for k in rows if k.endswith("8 evals")), key=lambda k: statistics.mean(rows[k]))
    m, se = paired(rows["reflowed, Euler, 2 evals"], rows[best8])
    print(f"\n  reflowed at 2 evaluations minus the un-reflowed model's best at 8 ({best8}): {m:+.2f} (se {se:.2f})")
    return {"command": "python benchmarks/flow.py --part reflow", "pairs": args.pairs, "reflow_steps": args.reflow_steps,
            "seconds": seconds, "n": args.n, "seeds": args.seeds, "straightness_before": s_before,
            "straightness_after": s_after, "exact": exact, "rows": rows, "best8": best8,
            "reflowed2_minus_best8": [m, se]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("train", "compare", "reflow"), required=True)
    p.add_argument("--problems", default=",".join(PANEL_MIXTURES))
    p.add_argument("--dir", default="runs/flow", help="where the panel's models are (or are trained to)")
    p.add_argument("--train", action="store_true", help="train a missing panel model instead of stopping")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--pairs", type=int, default=20000)
    p.add_argument("--reflow-steps", type=int, default=4000)
    p.add_argument("--save", action="store_true", help=f"write the table into {RESULTS.name}")
    args = p.parse_args(argv)
    args.problems = [s for s in args.problems.split(",") if s]
    for s in args.problems:
        if s not in PANEL_MIXTURES:
            p.error(f"unknown problem {s!r}; choose from {PANEL_MIXTURES}")
    folder = Path(args.dir)
    if args.part == "train":
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.problems:
            for kind in ("flow", "ddpm"):
                start = time.perf_counter()
                load_or_train(f"{kind}_panel_{name}", folder, True)
                print(f"{kind}_panel_{name}: {time.perf_counter() - start:.0f} s", flush=True)
        return
    torch.set_num_threads(1)
    result = compare(args, folder) if args.part == "compare" else reflow_table(args)
    if args.save:
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        stored[args.part] = result
        RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"saved to {RESULTS}")


if __name__ == "__main__":
    main()
