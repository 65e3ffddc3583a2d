"""Training throughput against the number of processes, and the 2-process vs 1-process comparison.

    flock /tmp/ddlearn-heavy.lock python benchmarks/training.py                      # images/s, 1 and 2 processes
    flock /tmp/ddlearn-heavy.lock python benchmarks/training.py --device cuda --procs 1 2 4 8 --amp
    flock /tmp/ddlearn-heavy.lock python benchmarks/training.py --compare --seeds 5   # tests/test_distributed.py's TOLERANCE

Throughput: for each number of processes W, W processes (``torch.multiprocessing``,
the gloo backend on the CPU, NCCL on GPUs: one GPU a process) train ``--recipe``
for ``--steps`` steps with ``batch_size`` per process, exactly as
``torchrun --nproc_per_node W -m ddlearn.cli train`` does (:func:`ddlearn.train.train`);
images/s = W x batch_size x steps / the seconds process 0 spent in the loop
(set-up excluded). On the CPU the machine's cores are shared out: each process
gets ``cpu_count // W`` torch threads.

``--compare``: the held-out loss (``evals.heldout_loss``) of a tiny 2-D recipe
trained with seeds 0..N-1 three ways: 2 processes of batch B, 1 process of
batch 2B, 1 process of batch B; mean +- sd over seeds and the largest
per-seed gap between the first two.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ddlearn import distributed, evals, recipes, train  # noqa: E402
from ddlearn.recipe import Recipe, build_net  # noqa: E402

#: tests/test_distributed.py's recipe
TINY = Recipe(name="tiny_dist", data="swiss_roll", data_kwargs={"n": 1000}, net="mlp",
              net_kwargs={"dim": 2, "hidden": 32, "depth": 2, "emb_dim": 16, "T": 100},
              schedule_kwargs={"T": 100}, steps=120, batch_size=32, lr=3e-3, ema_decay=0.9, warmup=10)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out, recipe, steps, device, threads, amp, compile, seed):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    ctx = distributed.setup(torch.device(device)) if world > 1 else None
    try:
        r = train.train(recipe, progress=False, stop_after=steps, device=device, amp=amp, compile=compile, seed=seed)
        if rank == 0:
            torch.save({"seconds": r.seconds, "ema": r.model.state_dict()}, out)
    finally:
        if ctx is not None:
            distributed.teardown(ctx)


def run(world, recipe, steps, device, *, amp=False, compile=False, seed=None, threads=None) -> dict:
    """Train on ``world`` processes; returns process 0's loop seconds and EMA weights."""
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // world) if device == "cpu" else 1
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "r0.pt")
        args = (world, _port(), out, recipe, steps, device, threads, amp, compile, seed)
        if world == 1:
            n = torch.get_num_threads()
            try:
                _worker(0, *args)
            finally:
                torch.set_num_threads(n)
        else:
            mp.start_processes(_worker, args=args, nprocs=world, start_method="spawn")
        return torch.load(out)


def throughput(a) -> None:
    r = recipes.get(a.recipe)
    if a.batch_size:
        r = replace(r, batch_size=a.batch_size)
    rows = []
    for world in a.procs:
        times = []
        for _ in range(a.repeats):
            times.append(run(world, r, a.steps, a.device, amp=a.amp, compile=a.compile)["seconds"])
        ips = [world * r.batch_size * a.steps / t for t in times]
        rows.append((world, r.batch_size, world * r.batch_size, statistics.mean(ips),
                     statistics.stdev(ips) if len(ips) > 1 else 0.0, statistics.mean(times) / a.steps))
        print(rows[-1], flush=True)
    print(f"\n{a.recipe}: {a.steps} steps on {a.device} (amp={a.amp}, compile={a.compile}), "
          f"mean +- sd over {a.repeats} runs")
    print("| processes | batch/process | batch/step | images/s | s/step |\n|---|---|---|---|---|")
    for world, b, bb, m, sd, sps in rows:
        print(f"| {world} | {b} | {bb} | {m:.0f} +- {sd:.0f} | {sps:.4f} |")
    dev = torch.cuda.get_device_name(0) if a.device == "cuda" else f"{os.cpu_count()} CPU cores"
    print(f"\n(torch {torch.__version__}, {dev}; on the CPU each process has cpu_count // processes threads)")


def compare(a) -> None:
    schedule = train.build_schedule(TINY)
    sets = {"2 processes, batch 32 each": (2, TINY), "1 process, batch 64": (1, replace(TINY, batch_size=64)),
            "1 process, batch 32": (1, TINY)}
    losses = {k: [] for k in sets}
    for seed in range(a.seeds):
        for label, (world, r) in sets.items():
            got = run(world, r, r.steps, "cpu", seed=seed, threads=1)
            model = build_net(TINY)
            model.load_state_dict(got["ema"])
            losses[label].append(evals.heldout_loss(model.eval(), schedule, TINY)["heldout_loss"])
        print(seed, {k: round(v[-1], 4) for k, v in losses.items()}, flush=True)
    print(f"\nheld-out loss of the tiny 2-D recipe ({TINY.steps} steps), mean +- sd over seeds 0..{a.seeds - 1}:")
    for k, v in losses.items():
        print(f"  {k:<28} {statistics.mean(v):.4f} +- {statistics.stdev(v):.4f}")
    gaps = [abs(x - y) for x, y in zip(losses["2 processes, batch 32 each"], losses["1 process, batch 64"])]
    print(f"  |2 processes - 1 process of twice the batch|, same seed: mean {statistics.mean(gaps):.4f}, "
          f"max {max(gaps):.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="digits")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=None, help="per process (default: the recipe's)")
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--compare", action="store_true", help="the 2-process vs 1-process comparison instead")
    p.add_argument("--seeds", type=int, default=5)
    a = p.parse_args(argv)
    compare(a) if a.compare else throughput(a)


if __name__ == "__main__":
    main()
