"""What saving the training state costs, per recipe: the measurement behind ``--checkpoint-every``'s default.

    flock /tmp/ddlearn-heavy.lock python benchmarks/train_state.py [--steps 20] [--repeats 5]

For every recipe (full-mode settings) it times ``--steps`` training steps and
``--repeats`` saves of the training state (weights, EMA, AdamW moments, RNG,
losses: what ``ddlearn train`` writes every N steps, atomically and fsynced), then prints the state's
size, seconds per step, seconds per save, and the overhead of one save every
``train.DEFAULT_CHECKPOINT_EVERY`` steps, with the work a crash can lose at
that setting. Training runs on the CPU with torch's default threads.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ddlearn import checkpoint, recipes, train  # noqa: E402
from ddlearn.recipe import build_net  # noqa: E402


def measure(name: str, steps: int, repeats: int, folder: Path) -> dict:
    r = recipes.get(name)
    state = folder / f"{name}.train-state.safetensors"
    t0 = time.perf_counter()
    train.train(r, progress=False, stop_after=steps, checkpoint=state, checkpoint_every=0, device="cpu")
    per_step = (time.perf_counter() - t0) / steps  # includes set-up and one save: an upper bound
    net = build_net(r)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    gen = torch.Generator()
    step, losses, seconds = checkpoint.load_state(state, r, net, ema, opt, gen)
    saves = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        checkpoint.save_state(state, r, net, ema, opt, gen, losses, step, seconds)
        saves.append(time.perf_counter() - t0)
    save_s = statistics.median(saves)
    every = train.DEFAULT_CHECKPOINT_EVERY
    return {"recipe": name, "state MB": f"{state.stat().st_size / 2 ** 20:.1f}", "s/step": f"{per_step:.4f}",
            "s/save": f"{save_s:.4f}", "save in steps": f"{save_s / per_step:.1f}",
            f"overhead at {every}": f"{100 * save_s / (every * per_step):.2f}%",
            "work lost at most (s)": f"{every * per_step:.0f}"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--recipes", nargs="*", default=None)
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.recipes or recipes.names():
            rows.append(measure(name, a.steps, a.repeats, Path(tmp)))
            print(rows[-1], flush=True)
    cols = list(rows[0])
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    print(f"\n(torch {torch.__version__}, {torch.get_num_threads()} threads; s/save: one save_state, atomic and "
          f"fsynced, median of {a.repeats}; s/step: {a.steps} steps including set-up, an upper bound)")


if __name__ == "__main__":
    main()
