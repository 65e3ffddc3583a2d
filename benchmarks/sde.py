"""Score-SDE samplers and PF-ODE likelihoods (Chapter 04): tables of quality against evaluations.

    flock /tmp/ddlearn-heavy.lock python benchmarks/sde.py                 # everything available
    flock /tmp/ddlearn-heavy.lock python benchmarks/sde.py --skip-bpd      # 2-D tables only
    python benchmarks/sde.py --fast                                        # small, quick smoke run

Table 1 (2-D, ring8): for the exact score and for the learned ones (the
Chapter 02 DDPM ``mixture`` model through log-SNR matching, and the
continuous-time ``sde_vp_ring8`` / ``sde_ve_ring8``), at equal numbers of
model evaluations: the reverse SDE (Euler-Maruyama, predictor only),
predictor-corrector (half the steps, one Langevin corrector each, snr 0.1)
and the PF-ODE (Heun, half the steps); the PF-ODE with RK45 at two tolerances
(its evaluations as counted); and 1000-step DDPM ancestral sampling for the
models that have a discrete schedule. Quality: sliced Wasserstein-2
(``ddlearn.metrics.sliced_wasserstein``, fixed projections) to n held-out
points of ring8; the floor is the same distance between two independent data
draws. Every sampler starts from the same x_T.

Table 2 (digits): PF-ODE bits per dimension on held-out digits.
* ``sde_vp_digits8``: 8x8 digits, 17 grey levels dequantised uniformly (bins of
  width 2/17 over [-1, 1]); Hutchinson divergence, RK45.
* Chapter 02's ``digits`` (16x16, if shipped): the PF-ODE bits/dim next to its
  ELBO (``ddlearn.metrics.elbo_bpd``), both with the ELBO's dequantisation
  (8-bit levels, bins of width 2/255) on the same held-out images.

All runs use one torch thread (steadier on the shared 2-core machine).
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from ddlearn import data, losses, metrics, pretrained
from ddlearn import sde as sde_lib
from ddlearn.oracles import named_mixture
from ddlearn.samplers import (CountedModel, bits_per_dim, log_likelihood, sample_euler_maruyama, sample_pc,
                              sample_pf_ode)
from ddlearn.schedules import Schedule, linear


def load_or_train(name, fast):
    if name in pretrained.available():
        return pretrained.load(name)
    from ddlearn import train

    print(f"# {name}: no shipped checkpoint, training the recipe now ({'fast' if fast else 'full'})")
    r = train.train(name, fast=fast, progress=False)
    return r.model, r.schedule


def table_2d(args):
    ring = named_mixture("ring8")
    n = args.n
    held = data.gaussian_mixture(n, split="test", name="ring8")
    floor = metrics.sliced_wasserstein(data.gaussian_mixture(n, seed=1234, name="ring8"), held,
                                       generator=torch.Generator().manual_seed(0))

    def sw(x):
        if not torch.isfinite(x).all():
            return float("nan")
        return metrics.sliced_wasserstein(x, held, generator=torch.Generator().manual_seed(0))

    def escaped(x):
        return (x.norm(dim=1) > 2).double().mean().item()

    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
    vp, ve = sde_lib.VPSDE(), sde_lib.VESDE(0.01, 10.0)
    lin = linear()
    runs = [("exact score", vp.oracle_model(ring), vp, vp, ring.eps_model(lin), lin),
            ("exact score", ve.oracle_model(ring), ve, ve, None, None)]
    for name in ("mixture", "sde_vp_ring8", "sde_ve_ring8"):
        model, frame = load_or_train(name, args.fast)
        if isinstance(frame, Schedule):
            runs.append((f"{name} (DDPM)", model, frame, vp, model, frame))
        else:
            runs.append((name, model, frame, frame, None, None))
    budgets = (20, 50, 100, 200) if not args.fast else (20, 50)
    print(f"\n## Table 1: 2-D ring8, sliced W2 to {n} held-out points (floor {floor:.4f}); same x_T for all")
    print("(escaped: fraction of samples farther than 2 from the origin; the data have none)")
    print(f"{'score':22} {'SDE':4} {'sampler':28} {'evals':>6} {'SW2':>8} {'escaped':>8} {'sec':>6}")
    for label, model, frame, sde, anc_model, anc_sched in runs:
        rows = []
        for nfe in budgets:
            for sname, fn, steps, kw in (
                    ("reverse SDE (EM)", sample_euler_maruyama, nfe, {"generator": torch.Generator().manual_seed(2)}),
                    ("PC, snr 0.1", sample_pc, nfe // 2, {"snr": 0.1, "generator": torch.Generator().manual_seed(2)}),
                    ("PF-ODE Heun", sample_pf_ode, nfe // 2, {"solver": "heun"})):
                m = CountedModel(model)
                t0 = time.perf_counter()
                x = fn(m, x_T, frame, steps, sde=sde, progress=False, **kw)
                rows.append((sname, m.nfe, sw(x), escaped(x), time.perf_counter() - t0))
        for tol in (1e-3, 1e-5):
            m = CountedModel(model)
            t0 = time.perf_counter()
            x = sample_pf_ode(m, x_T, frame, 2, sde=sde, solver="rk45", rtol=tol, atol=tol, progress=False)
            rows.append((f"PF-ODE RK45 tol {tol:g}", m.nfe, sw(x), escaped(x), time.perf_counter() - t0))
        if anc_model is not None:
            from ddlearn.samplers.ancestral import sample_ancestral

            m = CountedModel(anc_model)
            t0 = time.perf_counter()
            x = sample_ancestral(m, x_T, anc_sched, generator=torch.Generator().manual_seed(2), progress=False)
            rows.append(("DDPM ancestral (T=1000)", m.nfe, sw(x), escaped(x), time.perf_counter() - t0))
        for sname, nfe, d, esc, sec in rows:
            print(f"{label:22} {sde.name:4} {sname:28} {nfe:6d} {d:8.4f} {esc:8.4f} {sec:6.1f}")


def table_bpd(args):
    print("\n## Table 2: bits per dimension on held-out digits (lower is better; PF-ODE with Hutchinson, RK45)")
    print(f"{'model':34} {'data / dequantisation':38} {'n':>4} {'bits/dim':>16} {'evals':>6} {'sec':>6}")
    model, frame = load_or_train("sde_vp_digits8", args.fast)
    n = args.n_digits
    x = data.digits("test", size=8)[:n]
    x_deq = losses.dequantize(x, 17, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    res = log_likelihood(model, x_deq, frame, u_min=1e-5, divergence="hutchinson",
                         generator=torch.Generator().manual_seed(1), rtol=args.tol, atol=args.tol)
    bpd = bits_per_dim(res["logp"], 64, 2 / 17)
    print(f"{'sde_vp_digits8 (VP, continuous)':34} {'8x8, 17 levels, bins 2/17':38} {n:4d} "
          f"{bpd.mean():8.3f} +- {bpd.std() / math.sqrt(n):5.3f} {res['nfe']:6d} {time.perf_counter() - t0:6.0f}")
    print(f"{'uniform density on [-1, 1]':34} {'8x8, 17 levels, bins 2/17':38} {'':4} {math.log2(17):8.3f}")
    if "digits" not in pretrained.available():
        print("# Chapter 02 'digits' checkpoint not shipped: no ELBO comparison")
        return
    model, schedule = pretrained.load("digits")
    n2 = args.n_digits16
    x = data.digits("test", size=16)[:n2]
    delta = 2.0 / 255
    xq = torch.round((x.clamp(-1, 1) + 1) / delta) * delta - 1
    x_deq = xq + (torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) - 0.5) * delta
    t0 = time.perf_counter()
    res = log_likelihood(model, x_deq, schedule, sde=sde_lib.VPSDE(), u_min=1e-3, divergence="hutchinson",
                         generator=torch.Generator().manual_seed(3), rtol=args.tol, atol=args.tol)
    bpd = bits_per_dim(res["logp"], 256, delta)
    print(f"{'digits (Ch. 02 DDPM), PF-ODE':34} {'16x16, 8-bit, bins 2/255':38} {n2:4d} "
          f"{bpd.mean():8.3f} +- {bpd.std() / math.sqrt(n2):5.3f} {res['nfe']:6d} {time.perf_counter() - t0:6.0f}")
    t0 = time.perf_counter()
    elbo = metrics.elbo_bpd(model, x, schedule, n_t=args.elbo_nt, bits=8, generator=torch.Generator().manual_seed(4))
    print(f"{'digits (Ch. 02 DDPM), ELBO':34} {'16x16, 8-bit, bins 2/255':38} {n2:4d} "
          f"{elbo['bpd']:8.3f} +- {elbo['bpd_std_err']:5.3f} {'':6} {time.perf_counter() - t0:6.0f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--n", type=int, default=None, help="2-D samples per sampler (default 2000; fast 300)")
    p.add_argument("--n-digits", type=int, default=None, help="held-out 8x8 digits (default 359; fast 8)")
    p.add_argument("--n-digits16", type=int, default=None, help="held-out 16x16 digits for the ELBO comparison "
                                                                 "(default 100; fast 4)")
    p.add_argument("--elbo-nt", type=int, default=None, help="timesteps per image in the ELBO (default 200; fast 10)")
    p.add_argument("--tol", type=float, default=None, help="RK45 rtol = atol for likelihoods (default 1e-5; fast 1e-3)")
    p.add_argument("--skip-2d", action="store_true")
    p.add_argument("--skip-bpd", action="store_true")
    args = p.parse_args()
    f = args.fast
    args.n = args.n or (300 if f else 2000)
    args.n_digits = args.n_digits or (8 if f else 359)
    args.n_digits16 = args.n_digits16 or (4 if f else 100)
    args.elbo_nt = args.elbo_nt or (10 if f else 200)
    args.tol = args.tol or (1e-3 if f else 1e-5)
    start = time.perf_counter()
    print(f"# benchmarks/sde.py {'--fast ' if f else ''}(torch {torch.__version__}, 1 thread)")
    if not args.skip_2d:
        table_2d(args)
    if not args.skip_bpd:
        table_bpd(args)
    print(f"\n# total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
