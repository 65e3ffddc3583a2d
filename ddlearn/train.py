"""The training loop (AdamW, EMA, gradient clipping) and ``ddlearn train``, which runs a recipe end to end.

:func:`train` trains a :class:`~ddlearn.recipe.Recipe` (or a name in
:data:`ddlearn.recipes.RECIPES`); :func:`run_recipe` trains it, evaluates it
(:mod:`ddlearn.evals`) and writes the checkpoint and its sidecar
(:mod:`ddlearn.checkpoint`): it is what ``ddlearn train NAME`` runs and how
every shipped checkpoint in :mod:`ddlearn.pretrained` was made.

Repeatability: weights are initialised on the CPU inside
``torch.random.fork_rng`` from the recipe seed (the caller's global RNG is
untouched), and every batch index, timestep and noise draw comes from one CPU
``torch.Generator`` whose state is saved in the training state. Same seed,
same weights on the same CPU build; a run resumed from its training state
continues exactly as if never stopped. On a GPU the same draws are made on the
CPU and moved to the device, so only the device's arithmetic differs.
"""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import __version__, _checks, config, nets, pretrained, recipes
from .checkpoint import load_state, save_json, save_safetensors, save_state, sha256
from .evals import evaluate
from .losses import LOSSES
from .recipe import Recipe, build_net, build_schedule, load_data


def _lr_at(recipe: Recipe, step: int) -> float:
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    frac = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return recipe.lr * (recipe.lr_final + (1 - recipe.lr_final) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float, step: int) -> None:
    # warm-up of the decay (as in many DDPM codes): early on the average follows the net closely
    d = min(decay, (1 + step) / (10 + step))
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p, 1 - d)
    for be, b in zip(ema.buffers(), net.buffers()):
        be.copy_(b)


def _device(device) -> torch.device:
    if device is None:
        return config.device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be None, a device name such as 'cpu' or a torch.device, got {type(device).__name__}")
    return torch.device(device)


@dataclass
class Trained:
    """What :func:`train` returns: the EMA model (eval mode), the raw net, the schedule, the loss history."""

    model: torch.nn.Module
    net: torch.nn.Module
    schedule: object
    recipe: Recipe
    losses: list
    seconds: float
    step: int


def train(recipe, *, fast: bool = False, progress: bool = True, resume=None, checkpoint=None,
          checkpoint_every: int | None = None, seed: int | None = None, stop_after: int | None = None,
          device=None) -> Trained:
    """Train a recipe (a :class:`~ddlearn.recipe.Recipe` or a name in :data:`ddlearn.recipes.RECIPES`).

    ``fast``: apply the recipe's fast-mode overrides. ``seed``: replace the
    recipe's seed. ``checkpoint``: path of a resumable state file written every
    ``checkpoint_every`` steps and at the end; ``resume``: such a file to
    continue from. ``stop_after``: stop after this many steps in total (to
    test resuming; the learning-rate schedule still follows ``recipe.steps``).
    ``device``: where to train (default :func:`ddlearn.config.device`: CUDA,
    then MPS, then the CPU; ``DDLEARN_DEVICE=cpu`` forces the CPU).
    """
    recipe = recipes.get(recipe).resolved(fast=fast, seed=seed)
    dev = _device(device)
    _checks.positive_int("steps", recipe.steps)
    _checks.positive_int("batch_size", recipe.batch_size)
    _checks.choice("loss", recipe.loss, tuple(LOSSES))
    loss_fn = LOSSES[recipe.loss]
    schedule = build_schedule(recipe)
    train_data = {k: v.to(dev) for k, v in load_data(recipe, "train").items()}
    x_all = train_data["x"]
    n = x_all.shape[0]
    net = build_net(recipe).to(dev)  # initialised on the CPU: same weights on every device
    net.train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(recipe.seed + 1)  # +1: not the init stream; a CPU generator everywhere
    step, history = 0, []
    if resume is not None:
        step, history = load_state(resume, recipe, net, ema, opt, gen)
    last = recipe.steps if stop_after is None else min(recipe.steps, stop_after)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=recipe.steps, initial=step, desc=f"train {recipe.name}", leave=True)
    start, running = time.perf_counter(), None
    while step < last:
        for group in opt.param_groups:
            group["lr"] = _lr_at(recipe, step)
        idx = torch.randint(0, n, (recipe.batch_size,), generator=gen).to(dev)
        cond = {k: train_data[k][idx] for k in recipe.cond}
        loss = loss_fn(net, x_all[idx], schedule, generator=gen, cond=cond or None, **recipe.loss_kwargs)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"recipe {recipe.name!r}: loss became {loss.item()} at step {step}; "
                                     f"try a lower lr than {recipe.lr}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
        opt.step()
        _ema_update(ema, net, recipe.ema_decay, step)
        step += 1
        history.append(loss.item())
        running = history[-1] if running is None else 0.98 * running + 0.02 * history[-1]
        if bar is not None:
            bar.update(1)
            if step % 20 == 0 or step == last:
                bar.set_postfix(loss=f"{running:.4f}")
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step < last:
            save_state(checkpoint, recipe, net, ema, opt, gen, history, step)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    if checkpoint is not None:
        save_state(checkpoint, recipe, net, ema, opt, gen, history, step)
    net.eval()
    return Trained(model=ema, net=net, schedule=schedule, recipe=recipe, losses=history, seconds=seconds, step=step)


def load_or_train(name: str, *, directory=None):
    """``(model, schedule)`` of checkpoint ``name`` (:func:`ddlearn.pretrained.load`); if it is not there, a quick stand-in.

    The stand-in is the recipe trained with its fast settings (seconds, not
    minutes), so a chapter still runs top to bottom on a checkout without the
    weights; ``ddlearn train NAME`` rebuilds the real checkpoint.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a checkpoint or recipe name (str), got {type(name).__name__}")
    if name in pretrained.available(directory):
        return tuple(pretrained.load(name, directory=directory))
    print(f"checkpoint {name!r} not found: training a quick stand-in (the recipe's fast settings); "
          f"`ddlearn train {name}` rebuilds the real one")
    result = train(name, fast=True, progress=False)
    return result.model, result.schedule


# --------------------------------------------------------------------------- run a recipe end to end
DEFAULT_OUT = Path("runs")


def command_for(name: str, *, fast: bool = False, out_dir=None, seed=None) -> str:
    """The ``ddlearn train`` command line that reproduces a run."""
    cmd = f"ddlearn train {name}"
    if fast:
        cmd += " --fast"
    if seed is not None:
        cmd += f" --seed {seed}"
    if out_dir is not None:
        cmd += f" --out {out_dir}"
    return cmd


def run_recipe(name, *, fast: bool = False, out_dir=None, seed: int | None = None, progress: bool = True,
               device=None) -> Path:
    """Train recipe ``name``, evaluate it, write ``OUT/NAME.safetensors`` (EMA weights) and ``OUT/NAME.json``.

    This is what ``ddlearn train NAME [--fast] [--out DIR] [--seed N]`` runs.
    ``out_dir`` defaults to ``./runs``. Returns the weights' path. The sidecar
    records the recipe, seed, command, training time, metrics, the weights'
    sha256 and the library version; :func:`ddlearn.pretrained.load` reads both.
    The evaluations run on a CPU copy of the model, whatever ``device`` trained it.
    """
    recipe = recipes.get(name)
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    result = train(recipe, fast=fast, seed=seed, progress=progress, device=device)
    model = result.model.cpu()
    metrics = evaluate(model, result.schedule, result.recipe)
    weights = out / f"{recipe.name}.safetensors"
    resolved = result.recipe.to_dict()
    save_safetensors(dict(model.state_dict()), weights,
                     metadata={"recipe": json.dumps(resolved), "kind": "ddlearn-model", "version": __version__})
    sidecar = {
        "name": recipe.name,
        "description": recipe.description,
        "recipe": resolved,
        "fast": fast,
        "seed": result.recipe.seed,
        "command": command_for(recipe.name, fast=fast, out_dir=out_dir, seed=seed),
        "train_seconds": round(result.seconds, 1),
        "steps": result.step,
        "final_loss_ema": float(sum(result.losses[-100:]) / max(1, len(result.losses[-100:]))),
        "metrics": metrics,
        "n_params": nets.n_params(model),
        "sha256": sha256(weights),
        "bytes": weights.stat().st_size,
        "ddlearn_version": __version__,
        "torch_version": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} torch threads",
    }
    save_json(sidecar, out / f"{recipe.name}.json")
    return weights

