"""DDPM (Chapter 02): training time, sample quality against floors and baselines, memorisation, the bound, sizes.

    flock /tmp/ddlearn-heavy.lock python benchmarks/ddpm.py               # shipped checkpoints
    flock /tmp/ddlearn-heavy.lock python benchmarks/ddpm.py --n-digits 500 --retrain-toy2d

Prints six tables:

1. training: wall time of each shipped checkpoint's recipe, as recorded in its
   sidecar when it was trained (``--retrain-toy2d`` also retrains toy2d now
   and times it on this machine);
2. 2-D: sliced Wasserstein of 1000-step ancestral samples of the shipped
   toy2d / mixture models to held-out data, next to two independent draws of
   the data (the floor); target: within 1.5x of the floor (the network against
   the exact oracle is table 2b, over seeds);
2b. ring of 8: what sliced Wasserstein cannot see. Mean true log-density of
   the samples under the exact mixture and the share within 2 standard
   deviations of a centre (``metrics.mixture_fit``) and the sliced
   Wasserstein distance, for data, the exact oracle (sampling error alone) and
   the network, mean +- sd over ``--seeds`` sampling seeds;
3. digits: Frechet digit distance of ancestral samples (x0 clipped to [-1, 1])
   to the held-out digits, next to the floor (training digits vs held-out)
   and a Gaussian (mean + covariance of the training pixels) baseline, all
   sets of the same size; plus the nearest-neighbour memorisation check;
4. the variational bound of ``digits`` in bits per dimension on the first
   ``--n-bpd`` held-out digits (the 100 that ``benchmarks/sde.py`` gives the
   PF-ODE), every one of the T + 1 terms computed, with Ho et al.'s
   discretised decoder (``metrics.elbo_bpd``): L_T, the sum of L_1..L_{T-1},
   L_0, for sigma_t^2 = beta_t and tilde-beta_t;
5. checkpoint sizes.

Sampling uses one torch thread (steadier on the shared 2-core machine).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from ddlearn import data, metrics, pretrained, recipes, train
from ddlearn.oracles import named_mixture
from ddlearn.samplers import sample_ancestral


def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def sw(a, b):
    return metrics.sliced_wasserstein(a, b, n_projections=500, generator=torch.Generator().manual_seed(0))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-points", type=int, default=2000)
    p.add_argument("--n-digits", type=int, default=359, help="digits sampled (the held-out split has 359; 0 skips)")
    p.add_argument("--retrain-toy2d", action="store_true")
    p.add_argument("--digits-steps", type=int, default=100,
                   help="time this many steps of the digits recipe at 1 and 2 threads (0: skip)")
    p.add_argument("--seeds", type=int, default=5, help="sampling seeds for table 2b")
    p.add_argument("--n-bpd", type=int, default=100, help="held-out digits for the bound (0 skips table 4)")
    a = p.parse_args()
    threads = torch.get_num_threads()
    step_rows = []
    if a.digits_steps:
        from dataclasses import replace

        recipe = recipes.RECIPES["digits"]
        for n_threads in sorted({1, threads}):
            torch.set_num_threads(n_threads)
            out = train.train(replace(recipe, steps=a.digits_steps), progress=False)
            per = out.seconds / out.step
            step_rows.append((n_threads, out.step, f"{per:.3f}", f"{per * recipe.steps / 60:.1f}"))
    torch.set_num_threads(1)
    shipped = pretrained.available()

    rows = []
    for name in shipped:
        info = pretrained.info(name)
        rows.append((name, info["steps"], f"{info['train_seconds']:.0f}", info.get("machine", "?"), info["command"]))
    if a.retrain_toy2d:
        start = time.perf_counter()
        out = train.train("toy2d", progress=False)
        rows.append(("toy2d (retrained now)", out.step, f"{time.perf_counter() - start:.0f}",
                     "this machine, 1 thread", "train.train('toy2d')"))
    table("1. training time (sidecar: measured when the checkpoint was made)",
          ("checkpoint", "steps", "seconds", "machine", "command"), rows)
    if step_rows:
        table(f"1b. digits recipe: seconds per step now, and the {recipes.RECIPES['digits'].steps}-step run it implies",
              ("torch threads", "steps timed", "s / step", "implied minutes"), step_rows)

    rows = []
    n = a.n_points
    for name, load_data in (("toy2d", lambda n, **k: data.swiss_roll(n, **k)),
                            ("mixture", lambda n, **k: data.gaussian_mixture(n, **k))):
        if name not in shipped:
            continue
        ck = pretrained.load(name)
        held = load_data(n, split="test")
        # the floor is itself noisy (on clustered data mostly through how many points land in each
        # cluster): average it over five independent draws and show the range
        floors = [sw(load_data(n, seed=seed), held) for seed in range(7, 12)]
        floor = sum(floors) / len(floors)
        floor_txt = f"{floor:.4f} ({min(floors):.4f}-{max(floors):.4f})"
        x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
        start = time.perf_counter()
        x = sample_ancestral(ck.model, x_T, ck.schedule, generator=torch.Generator().manual_seed(2), progress=False)
        secs = time.perf_counter() - start
        rows.append((name, "network, 1000 steps", f"{sw(x, held):.4f}", floor_txt, f"{sw(x, held) / floor:.2f}",
                     f"{secs:.1f}"))
    table(f"2. 2-D: sliced Wasserstein to {n} held-out points (target: ratio <= 1.5)",
          ("model", "sampler", "SW", "floor: data vs data, mean (range) of 5", "ratio to mean", "sampling s"), rows)

    if "mixture" in shipped:
        ring = named_mixture("ring8")
        ck = pretrained.load("mixture")
        held = data.gaussian_mixture(n, split="test")
        runs = {"data (fresh draws)": [], "exact oracle, 1000 steps": [], "network, 1000 steps": []}
        for seed in range(a.seeds):
            fresh = data.gaussian_mixture(n, seed=100 + seed)
            runs["data (fresh draws)"].append({**metrics.mixture_fit(fresh, ring), "sw": sw(fresh, held)})
            x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(100 + seed))
            for label, model in (("exact oracle, 1000 steps", ring.eps_model(ck.schedule)),
                                 ("network, 1000 steps", ck.model)):
                x = sample_ancestral(model, x_T, ck.schedule, generator=torch.Generator().manual_seed(200 + seed),
                                     progress=False)
                runs[label].append({**metrics.mixture_fit(x, ring), "sw": sw(x, held)})
        pm = lambda v, d=3: f"{torch.tensor(v).mean():.{d}f} +- {torch.tensor(v).std():.{d}f}"  # noqa: E731
        rows = [(label, pm([f["log_prob"] for f in fits]), pm([f["within"] for f in fits]),
                 pm([float((f["weights"] - 0.125).abs().max()) for f in fits]), pm([f["sw"] for f in fits], 4))
                for label, fits in runs.items()]
        table(f"2b. ring of 8, {n} points, mean +- sd over {a.seeds} seeds (an isolated 2-D Gaussian has "
              f"0.865 of its mass within 2 sd)",
              ("samples", "mean log p(x) (nats)", "share within 2 sd of a centre", "max |weight - 1/8|",
               f"SW to {n} held-out"), rows)

    if a.n_digits > 0 and "digits" in shipped and "digit_classifier" in shipped:
        ck = pretrained.load("digits")
        train_x, test_x = data.digits("train"), data.digits("test")
        m = min(a.n_digits, len(test_x))
        ref = test_x[:m]
        g = torch.Generator().manual_seed(3)
        start = time.perf_counter()
        x = sample_ancestral(ck.model, torch.randn(a.n_digits, 1, 16, 16, generator=g), ck.schedule, clip_x0=(-1, 1),
                             generator=g, progress=True)
        secs = time.perf_counter() - start
        flat = train_x.flatten(1).double()
        gauss = torch.distributions.MultivariateNormal(flat.mean(0), torch.cov(flat.T) + 1e-4 * torch.eye(256,
                                                                                                          dtype=torch.float64))
        z = torch.randn(a.n_digits, 256, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        gx = (gauss.loc + z @ gauss.scale_tril.T).float().reshape(-1, 1, 16, 16).clamp(-1, 1)
        perm = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(4))[:a.n_digits]
        rows = [("training digits vs held-out (floor)", f"{metrics.frechet_digit_distance(train_x[perm], ref):.2f}"),
                (f"DDPM samples ({secs:.0f} s for {a.n_digits})", f"{metrics.frechet_digit_distance(x, ref):.2f}"),
                ("Gaussian (mean + cov) baseline", f"{metrics.frechet_digit_distance(gx, ref):.2f}")]
        table(f"3a. digits: Frechet digit distance to {m} held-out digits (n = {a.n_digits} per set)",
              ("set", "FDD"), rows)
        nn = metrics.nearest_neighbour(x, train_x, test_x)
        nn_train = metrics.nearest_neighbour(train_x[perm][:50], train_x, test_x)
        rows = [("DDPM samples", f"{nn['sample_median']:.3f}", f"{nn['heldout_median']:.3f}",
                 f"{nn['ratio_median']:.2f}", f"{100 * nn['frac_closer_than_heldout_min']:.1f}%"),
                ("training digits (copies)", f"{nn_train['sample_median']:.3f}", f"{nn_train['heldout_median']:.3f}",
                 f"{nn_train['ratio_median']:.2f}", f"{100 * nn_train['frac_closer_than_heldout_min']:.1f}%")]
        table("3b. memorisation: L2 distance to the nearest training digit",
              ("set", "median", "held-out median", "ratio", "closer than any held-out"), rows)

    if a.n_bpd > 0 and "digits" in shipped:
        ck = pretrained.load("digits")
        x = data.digits("test")[:a.n_bpd]
        rows = []
        for variance in ("beta", "beta_tilde"):
            start = time.perf_counter()
            r = metrics.elbo_bpd(ck.model, x, ck.schedule, variance=variance, generator=torch.Generator().manual_seed(6))
            rows.append((variance, f"{r['bpd']:.3f} +- {r['bpd_std_err']:.3f}", f"{r['prior_bpd']:.5f}",
                         f"{r['diffusion_bpd']:.3f}", f"{r['decoder_bpd']:.3f}", f"{time.perf_counter() - start:.0f}"))
        table(f"4. digits: the bound in bits/dim on {len(x)} held-out digits (8-bit, discretised decoder, all "
              f"{ck.schedule.T} + 1 terms; +- is the standard error over digits)",
              ("sigma_t^2", "bound", "L_T", "sum L_1..L_{T-1}", "L_0 (decoder)", "seconds"), rows)

    rows = [(n, (pretrained._dir() / f"{n}.safetensors").stat().st_size) for n in shipped]
    rows.append(("total", sum(r[1] for r in rows)))
    table("5. shipped checkpoint sizes", ("checkpoint", "bytes"), [(n, f"{b:,}") for n, b in rows])


if __name__ == "__main__":
    main()
