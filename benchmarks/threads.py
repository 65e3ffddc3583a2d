"""How many intra-op threads the book's workloads want, on a quiet machine and beside other CPU-bound jobs.

    python benchmarks/threads.py                 # every workload, 1 and 2 threads, 0/1/2 competing processes
    python benchmarks/threads.py --quick         # fewer repeats, for a smoke run
    python benchmarks/threads.py --loads 0 1 --workloads toy2d digits_sample

Run it alone on the machine (it makes its own load). Each cell of the table
is one fresh worker process (so the thread settings apply before torch
starts its pools) that runs the workload once to warm up, then ``--repeats``
timed times: mean +- sample sd in seconds. A training workload counts only
its steps (the set-up of data and net is not what is compared). The competing processes are
pure-Python busy loops, one core's worth each: a second notebook, a browser
tab. A run (warm-up included) that takes longer than ``--cap`` seconds
stops that setting there: it is reported as "> cap" (two threads beside two busy loops took 334 s
on Chapter 02's swiss-roll cell).

Settings compared (what :func:`ddlearn.config.set_threads` chooses between):

* ``1``: one intra-op thread (``torch.set_num_threads(1)``): no OpenMP team at all;
* ``2``: two intra-op threads, OpenMP's default waiting policy (threads spin
  for a while after each parallel region, waiting for the next);
* ``2 passive``: two threads, ``OMP_WAIT_POLICY=PASSIVE`` (they sleep at once).

The workloads are the book's typical ones: Chapter 02's swiss-roll cell
(``toy2d``, 300 points, 1000 ancestral steps), 64 digits from the digits UNet
(DDIM, 50 steps), training steps of the ``digits`` and ``video16`` recipes,
and a restoration run (DDNM deblurring of 8 photograph patches, 50 steps).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKLOADS = {
    "toy2d": "2-D MLP: toy2d, 300 points, 1000 ancestral steps (Ch. 02)",
    "digits_sample": "digits UNet: 64 samples, DDIM 50 steps (Ch. 02/05)",
    "digits_train": "digits recipe: 10 training steps, batch 128 (Ch. 02)",
    "video_train": "video16 recipe: 3 training steps, batch 32 (Ch. 08)",
    "restore": "DDNM deblurring, 8 photo patches 32x32, 50 steps (Ch. 07)",
}
#: seconds a worker may take to import, load and build before its first run (more beside busy loops)
SETUP_SECONDS = 300
SETTINGS = {"1": (1, None), "2": (2, None), "2 passive": (2, "PASSIVE")}


def _workload(name: str):
    """A function running the workload once (built outside the timed part)."""
    import torch

    from ddlearn import pretrained, recipes, train
    from ddlearn.config import generator
    from ddlearn.samplers import sample_ancestral, sample_ddim

    if name == "toy2d":
        p = pretrained.load("toy2d")
        x_T = torch.randn(300, 2, generator=generator(0))
        return lambda: sample_ancestral(p.model, x_T, p.schedule, generator=generator(1), progress=False)
    if name == "digits_sample":
        p = pretrained.load("digits")
        x_T = torch.randn(64, 1, 16, 16, generator=generator(0))
        return lambda: sample_ddim(p.model, x_T, p.schedule, 50, progress=False)
    if name in ("digits_train", "video_train"):
        from dataclasses import replace

        recipe = recipes.get("digits" if name == "digits_train" else "video16")
        # a smaller training set: the cost of a step does not depend on it, the set-up's does
        recipe = replace(recipe, data_kwargs={**recipe.data_kwargs, "n": 512, "n_test": 8}) \
            if name == "video_train" else recipe
        steps = 10 if name == "digits_train" else 3
        return lambda: train.train(recipe, stop_after=steps, progress=False, device="cpu").seconds
    if name == "restore":
        from ddlearn import data, operators
        from ddlearn.restoration.posterior import sample_ddnm

        p = pretrained.load("photo_patches_gray")
        x = data.load("photo_patches", "test", **p.recipe.data_kwargs)["x"][:8]
        op = operators.image.Blur(sigma=1.5)
        y = op.forward(x)
        x_T = torch.randn_like(x)
        return lambda: sample_ddnm(p.model, x_T, p.schedule, 50, operator=op, y=y, generator=generator(3),
                                   progress=False)
    raise ValueError(f"workload must be one of {sorted(WORKLOADS)}, got {name!r}")


def worker(name: str, repeats: int) -> None:
    """Runs in a fresh process: "ready", then one JSON line a run (the first is the warm-up)."""
    import torch

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    run = _workload(name)
    print("ready", flush=True)
    for _ in range(repeats + 1):
        t = time.perf_counter()
        inner = run()
        dt = time.perf_counter() - t
        # a training run reports its own step time (setting up the data and net is not what we measure)
        print(json.dumps({"seconds": float(inner) if isinstance(inner, float) else dt,
                          "threads": torch.get_num_threads()}), flush=True)


def busy_loops(n: int) -> list[subprocess.Popen]:
    code = "while True:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def measure(name: str, setting: str, load: int, repeats: int, cap: float) -> dict:
    threads, policy = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "DDLEARN_THREADS")}
    env["BENCH_THREADS"] = str(threads)
    env["DDLEARN_THREADS"] = str(threads)     # the library's policy must not override the setting measured
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    hogs = busy_loops(load)
    proc = subprocess.Popen([sys.executable, __file__, "--worker", name, "--repeats", str(repeats)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout] + [lines.put(None)], daemon=True).start()
    runs = []
    try:
        # set-up (imports, data, weights) may take a while under load; each run then gets `cap` seconds
        deadline = SETUP_SECONDS
        while True:
            try:
                line = lines.get(timeout=deadline)
            except queue.Empty:   # this run is past the cap: stop the setting here
                return {"times": runs, "capped": True} if runs or deadline == cap else {"error": "set-up timed out"}
            if line is None:
                break
            deadline = cap
            if line.startswith("{"):
                runs.append(json.loads(line)["seconds"])
        proc.wait()
        if proc.returncode:
            err = proc.stderr.read().strip().splitlines()
            return {"error": err[-1] if err else f"exit {proc.returncode}"}
        return {"times": runs[1:] if len(runs) > 1 else runs, "warmup": runs[0]}
    finally:
        for h in [proc, *hogs]:
            if h.poll() is None:
                h.kill()
            h.wait()


def cell(res: dict, cap: float) -> str:
    if "error" in res:
        return "error: " + res["error"][:40]
    if res.get("capped"):
        return f"> {cap:g}"
    t = res["times"]
    from ddlearn.report import fmt_mean_sd

    return fmt_mean_sd(t, digits=2 if max(t) < 10 else 1) if len(t) > 1 else f"{t[0]:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--loads", nargs="+", type=int, default=[0, 1, 2], help="competing busy processes")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cap", type=float, default=60.0, help="seconds: a slower first run stops that setting")
    p.add_argument("--quick", action="store_true", help="2 repeats, cap 20 s")
    p.add_argument("--json", type=Path, help="also write the raw times here")
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.repeats)
        return
    if args.quick:
        args.repeats, args.cap = 2, 20.0
    from ddlearn.report import table

    print(f"{os.cpu_count()} cores; {args.repeats} timed runs a cell after one warm-up, mean +- sample sd, seconds",
          flush=True)
    raw, rows = {}, []
    for name in args.workloads:
        row = {"workload": WORKLOADS[name]}
        for load in args.loads:
            for setting in args.settings:
                res = measure(name, setting, load, args.repeats, args.cap)
                raw[f"{name}|{setting}|{load}"] = res
                row[f"{setting} thr, load {load}"] = cell(res, args.cap)
                print(f"  {name:14s} threads {setting:9s} load {load}: {row[f'{setting} thr, load {load}']}",
                      flush=True)
        rows.append(row)
    print()
    table(rows, ["workload"] + [f"{s} thr, load {ld}" for ld in args.loads for s in args.settings])
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
