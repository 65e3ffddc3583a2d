"""Chapter 01 timings: the notebook in full and fast mode, and one slider redraw per explorer.

    flock /tmp/ddlearn-heavy.lock python benchmarks/chapter01.py [--skip-notebook] [--steps 40]

Prints a table. The notebook runs in a temporary copy (chapters/ is never
touched) with nbclient; "wall" includes starting the kernel, "in-notebook" is
what the chapter's last cell measured. A redraw is what one slider step costs:
update the artists, draw the figure with Agg, encode the PNG (the mean over
``--steps`` steps spread over t, first draw excluded). Targets: fast < 20 s,
full < 60 s, redraw < 0.2 s on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "chapters" / "01_forward_process.ipynb"


def run_notebook(fast: bool) -> tuple[float, float | None]:
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / NOTEBOOK.name
        shutil.copy(NOTEBOOK, path)
        nb = nbformat.read(path, as_version=4)
        env = dict(os.environ, DDLEARN_FAST="1" if fast else "0",
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp}})
        start = time.perf_counter()
        client.execute(env=env)
        wall = time.perf_counter() - start
    inner = None
    for out in nb.cells[-1].get("outputs", []):
        m = re.search(r"chapter ran in ([0-9.]+) s", out.get("text", ""))
        if m:
            inner = float(m.group(1))
    return wall, inner


def redraw_times(steps: int) -> list[tuple[str, float, float, int]]:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from ddlearn import data, schedules, widgets

    cases = {
        "noising_explorer, camera 128x128": lambda: widgets.noising_explorer(data.image("camera", 128), "linear"),
        "noising_explorer, 16 digits 16x16": lambda: widgets.noising_explorer(data.digits("train")[:16], "cosine"),
        "noising_explorer, swiss roll 2000 pts": lambda: widgets.noising_explorer(data.swiss_roll(2000), "cosine"),
        "schedule_explorer, camera 96x96 x 3": lambda: widgets.schedule_explorer(data.image("camera", 96)),
    }
    rows = []
    for name, make in cases.items():
        start = time.perf_counter()
        e = make()
        build = time.perf_counter() - start
        T = e.controls["t"].max + 1
        for t in np.linspace(1, T - 1, steps).round().astype(int):
            e.controls["t"].value = int(t)
        times = e.redraw_times[1:]
        rows.append((name, build, float(np.mean(times)), len(times)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebook", action="store_true", help="only time the explorers")
    parser.add_argument("--steps", type=int, default=40, help="slider steps per explorer")
    args = parser.parse_args(argv)

    import torch

    print(f"# Chapter 01 benchmark | {os.cpu_count()} CPUs | torch threads {torch.get_num_threads()}"
          f" | load average {os.getloadavg()[0]:.1f} at start")
    if not args.skip_notebook:
        print(f"\n{'notebook run':<14} {'wall (s)':>9} {'in-notebook (s)':>16} {'target (s)':>11}")
        for fast, target in ((False, 60), (True, 20)):
            wall, inner = run_notebook(fast)
            print(f"{'fast' if fast else 'full':<14} {wall:>9.1f} {inner if inner is not None else float('nan'):>16.1f}"
                  f" {target:>11}")
    print(f"\n{'explorer':<40} {'build (s)':>9} {'redraw mean (s)':>16} {'steps':>6}")
    for name, build, mean, n in redraw_times(args.steps):
        print(f"{name:<40} {build:>9.2f} {mean:>16.3f} {n:>6}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
