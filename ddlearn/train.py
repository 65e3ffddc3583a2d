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

import contextlib
import copy
import json
import math
import os
import platform
import signal
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import __version__, _checks, distributed, nets, pretrained, recipes
from .checkpoint import (STORAGES, CheckpointError, check_folder, check_name, load_state, pair_paths, read_sidecar,
                         save_json, save_state, storage_tensors, write_pair)
from .evals import evaluate
from .losses import LOSSES
from .recipe import Recipe, build_net, build_schedule, load_data, resolve_device


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


class _StopAfterStep:
    """While training with a state file: a first Ctrl-C (SIGINT) stops the loop after the current step
    (the state is saved there), a second one raises at once. Only in the main thread, and only where
    SIGINT has Python's default handler."""

    def __init__(self, active: bool):
        self.requested, self._old = False, None
        self._active = (active and threading.current_thread() is threading.main_thread()
                        and signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._old)

    def __enter__(self):
        if self._active:
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@dataclass
class Trained:
    """What :func:`train` returns: the EMA model (eval mode), the raw net, the schedule, the loss history."""

    model: torch.nn.Module
    net: torch.nn.Module
    schedule: object
    recipe: Recipe
    losses: list
    seconds: float   # time in the loop (including the time before a resume)
    step: int


def train(recipe, *, fast: bool = False, progress: bool = True, resume=None, checkpoint=None,
          checkpoint_every: int | None = None, seed: int | None = None, stop_after: int | None = None,
          device=None, amp: bool = False, compile: bool | str = False) -> Trained:
    """Train a recipe (a :class:`~ddlearn.recipe.Recipe` or a name in :data:`ddlearn.recipes.RECIPES`).

    ``fast``: apply the recipe's fast-mode overrides. ``seed``: replace the
    recipe's seed. ``checkpoint``: path of a resumable state file written every
    ``checkpoint_every`` steps and at the end (and, on a Ctrl-C, after the
    current step); ``resume``: such a file to continue from, bit for bit as if
    never stopped. ``stop_after``: stop after this many steps in total (to
    test resuming; the learning-rate schedule still follows ``recipe.steps``).
    ``device``: where to train (default :func:`ddlearn.config.device`: CUDA,
    then MPS, then the CPU; ``DDLEARN_DEVICE=cpu`` forces the CPU).

    Under ``torchrun`` (several processes) the same call trains one replica a
    process with DistributedDataParallel (:mod:`ddlearn.distributed`: the data
    split from the seed, ``batch_size`` per process, process 0 alone shows
    progress and writes ``checkpoint``). ``amp=True``: the forward pass and
    loss under bfloat16 autocast. ``compile=True`` (or a ``torch.compile``
    backend name): the net compiled with ``torch.compile``. Both are off by
    default; off, nothing about the step changes.
    """
    recipe = recipes.get(recipe).resolved(fast=fast, seed=seed)
    _checks.boolean("amp", amp)
    check_compile(compile)
    ctx = distributed.setup(resolve_device(device))
    dev = ctx.device
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
    step, history, before = 0, [], 0.0
    if resume is not None:
        step, history, before = _resume(resume, recipe, net, ema, opt, gen, ctx)
    last = recipe.steps if stop_after is None else min(recipe.steps, stop_after)
    model = distributed.wrap(net, ctx)   # the net itself for one process
    if compile:
        model = torch.compile(model) if compile is True else torch.compile(model, backend=compile)
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    noise_gen = torch.Generator() if ctx.distributed else gen
    checkpoint = checkpoint if ctx.is_main else None   # process 0 alone writes the state
    bar = None
    if progress and ctx.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=recipe.steps, initial=step, desc=f"train {recipe.name}", leave=True)
    start, running = time.perf_counter(), None
    with _StopAfterStep(checkpoint is not None) as stop:
        while step < last:
            for group in opt.param_groups:
                group["lr"] = _lr_at(recipe, step)
            if ctx.distributed:   # one draw for all processes, each takes its block, then its own noise seed
                idx = distributed.shard(torch.randint(0, n, (ctx.world * recipe.batch_size,), generator=gen), ctx)
                noise_gen.manual_seed(int(torch.randint(0, 2 ** 62, (ctx.world,), generator=gen)[ctx.rank]))
            else:
                idx = torch.randint(0, n, (recipe.batch_size,), generator=gen)
            idx = idx.to(dev)
            cond = {k: train_data[k][idx] for k in recipe.cond}
            with autocast():
                loss = loss_fn(model, x_all[idx], schedule, generator=noise_gen, cond=cond or None,
                               **recipe.loss_kwargs)
            value = loss.item()
            if ctx.distributed:   # the step's mean loss and whether any process was asked to stop
                both = distributed.all_mean(torch.tensor([value, float(stop.requested)], dtype=torch.float64), ctx)
                value, stop.requested = both[0].item(), bool(both[1] > 0)
            if not math.isfinite(value):
                raise FloatingPointError(f"recipe {recipe.name!r}: loss became {value} at step {step}; "
                                         f"try a lower lr than {recipe.lr}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            opt.step()
            _ema_update(ema, net, recipe.ema_decay, step)
            step += 1
            history.append(value)
            running = history[-1] if running is None else 0.98 * running + 0.02 * history[-1]
            if bar is not None:
                bar.update(1)
                if step % 20 == 0 or step == last:
                    bar.set_postfix(loss=f"{running:.4f}")
            if checkpoint is not None and (stop.requested or checkpoint_every and step % checkpoint_every == 0
                                           and step < last):
                save_state(checkpoint, recipe, net, ema, opt, gen, history, step, before + time.perf_counter() - start)
            if stop.requested:
                raise KeyboardInterrupt(f"training {recipe.name!r} stopped after step {step} of {recipe.steps}; "
                                        f"its state is in {checkpoint}")
    if bar is not None:
        bar.close()
    seconds = before + time.perf_counter() - start
    if checkpoint is not None:
        save_state(checkpoint, recipe, net, ema, opt, gen, history, step, seconds)
    net.eval()
    return Trained(model=ema, net=net, schedule=schedule, recipe=recipe, losses=history, seconds=seconds, step=step)


def _resume(path, recipe, net, ema, opt, gen, ctx):
    """:func:`load_state` on one process; with several, process 0 reads ``path`` (its errors reach every
    process) and sends the file's bytes to the others, so only process 0 needs the file."""
    if not ctx.distributed:
        return load_state(path, recipe, net, ema, opt, gen)

    def read():
        return load_state(path, recipe, net, ema, opt, gen), Path(path).read_bytes()

    got, raw = distributed.agree(read, ctx)
    if ctx.is_main:
        return got
    with tempfile.TemporaryDirectory() as tmp:
        copy_ = Path(tmp) / "state.safetensors"
        copy_.write_bytes(raw)
        return load_state(copy_, recipe, net, ema, opt, gen)


def check_compile(compile) -> bool | str:
    """``compile`` is True, False or the name of a ``torch.compile`` backend this torch knows (a misspelt one
    would otherwise fail at the first step, deep inside torch._dynamo, after the data is built)."""
    if not isinstance(compile, (bool, str)) or compile == "":
        raise TypeError(f"compile must be True, False or a torch.compile backend name, got {compile!r}")
    if isinstance(compile, str):
        from torch._dynamo import list_backends

        known = list_backends(exclude_tags=())
        if compile not in known:
            raise ValueError(f"compile: unknown torch.compile backend {compile!r}; this torch has "
                             f"{', '.join(b for b in known if 'TESTING' not in b)}")
    return compile


def load_or_train(name: str, *, directory=None):
    """``(model, schedule)`` of checkpoint ``name`` (:func:`ddlearn.pretrained.load`); if it is not there, a quick stand-in.

    The stand-in is the recipe trained with its fast settings (seconds, not
    minutes), so a chapter still runs top to bottom on a checkout without the
    weights; ``ddlearn train NAME`` rebuilds the real checkpoint.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a checkpoint or recipe name (str), got {type(name).__name__}")
    check_name(name)
    from . import config

    fast = config.is_fast()
    folder = pretrained.folder(directory)
    halves = [p.name for p in pair_paths(folder, name) if p.exists()]
    why = None
    if len(halves) == 2:
        try:
            return tuple(pretrained.load(name, directory=directory))
        except CheckpointError as err:
            if not fast:
                raise  # a damaged checkpoint is never replaced by another model's figures in full mode
            why = f"refused ({err})"
    else:
        why = f"incomplete in {folder} (only {halves[0]})" if halves else f"not found in {folder}"
        if halves and not fast:
            raise CheckpointError(f"checkpoint {name!r} is {why}: its weights and sidecar come as a pair; "
                                  f"`ddlearn train {name} --out {folder}` rebuilds it")
    recipes.get(name)  # the stand-in is the recipe's: an unknown name is refused before anything is trained
    message = (f"checkpoint {name!r} {why}: using a quick stand-in trained now with the recipe's fast settings; "
               f"what follows shows that stand-in, not the shipped model. `ddlearn train {name}` rebuilds the "
               "real one")
    if fast:  # fast mode (CI, a quick look): said once per checkpoint
        if name not in _STAND_INS_SAID:
            _STAND_INS_SAID.add(name)
            print(message)
    else:
        warnings.warn(message, StandInWarning, stacklevel=2)
        print(f"WARNING: {message}")
    result = train(name, fast=True, progress=False)
    return result.model, result.schedule


class StandInWarning(UserWarning):
    """A chapter runs on a stand-in model because the shipped checkpoint is missing (full mode)."""


_STAND_INS_SAID: set[str] = set()


# --------------------------------------------------------------------------- run a recipe end to end
DEFAULT_OUT = Path("runs")
#: Steps between training-state saves of ``ddlearn train`` (what a save costs against the steps between
#: two saves, recipe by recipe: ``benchmarks/train_state.py``; measured 2026-11-30 on 2 CPU cores: 0.01% to
#: 0.48% of training time for every recipe, at most 371 s of training lost by a crash, video32's).
DEFAULT_CHECKPOINT_EVERY = 200


def state_path(out_dir, name: str) -> Path:
    """Where ``ddlearn train NAME --out OUT`` keeps its resumable training state: ``OUT/NAME.train-state.safetensors``."""
    return Path(out_dir) / f"{name}.train-state.safetensors"


def command_for(name: str, *, fast: bool = False, out_dir=None, seed=None, device=None, amp: bool = False,
                compile: bool | str = False, world: int = 1) -> str:
    """The ``ddlearn train`` command line that reproduces a run (under ``torchrun`` when ``world > 1``)."""
    cmd = f"ddlearn train {name}"
    if world > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        nodes = f" --nnodes {world // local}" if world // local > 1 else ""
        cmd = f"torchrun{nodes} --nproc_per_node {local} -m ddlearn.cli train {name}"
    if fast:
        cmd += " --fast"
    if seed is not None:
        cmd += f" --seed {seed}"
    if out_dir is not None:
        cmd += f" --out {out_dir}"
    if device is not None:
        cmd += f" --device {device}"
    if amp:
        cmd += " --amp"
    if compile:
        cmd += " --compile" if compile is True else f" --compile {compile}"
    return cmd


def run_recipe(name, *, fast: bool = False, out_dir=None, seed: int | None = None, progress: bool = True,
               device=None, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, resume: bool = False,
               force: bool = False, amp: bool = False, compile: bool | str = False) -> Path | None:
    """Train recipe ``name``, evaluate it, write ``OUT/NAME.safetensors`` (EMA weights) and ``OUT/NAME.json``.

    This is what ``ddlearn train NAME [--fast] [--out DIR] [--seed N] ...`` runs.
    ``out_dir`` defaults to ``./runs``; it is checked (a folder that can be
    written to) before the first step. Returns the weights' path. The sidecar
    records the recipe, seed, command, training time, metrics, the weights'
    sha256 and the library version; :func:`ddlearn.pretrained.load` reads both.
    The evaluations run on a CPU copy of the model, whatever ``device`` trained it.

    While training, the state is saved every ``checkpoint_every`` steps (0:
    only at the end) to :func:`state_path`; ``resume=True`` continues from it,
    bit for bit as if never stopped, and the state is removed once the
    checkpoint is written. An existing checkpoint (or an interrupted run's
    state) is never replaced unless ``force=True``.

    Under ``torchrun`` every process runs this; they train together
    (:func:`train`), process 0 alone checks and writes ``out_dir``, evaluates
    and returns the weights' path; the other processes return None after
    the last step. ``amp``/``compile``: see :func:`train` (recorded in the
    sidecar and its command).
    """
    recipe = recipes.get(name)
    for arg, value in (("resume", resume), ("force", force)):
        if not isinstance(value, bool):
            raise TypeError(f"{arg} must be True or False, got {type(value).__name__}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be a whole number of steps >= 0 (0: only at the end), "
                         f"got {checkpoint_every!r}")
    ctx = distributed.setup(resolve_device(device))
    try:
        return _run(recipe, ctx, fast=fast, out_dir=out_dir, seed=seed, progress=progress, device=device,
                    checkpoint_every=checkpoint_every, resume=resume, force=force, amp=amp, compile=compile)
    finally:
        distributed.teardown(ctx)


def _run(recipe, ctx, *, fast, out_dir, seed, progress, device, checkpoint_every, resume, force, amp, compile):
    out = Path(out_dir if out_dir is not None else DEFAULT_OUT)
    weights, side = pair_paths(out, recipe.name)
    state = state_path(out, recipe.name)

    def refuse_overwrite(extra=""):
        if not force and (weights.exists() or side.exists()):
            raise FileExistsError(f"{weights} exists already and this run would overwrite it{extra}; pass force=True "
                                  f"(--force) to replace it, or choose another out_dir (--out)")

    def checks():   # before the first step (on process 0; its verdict reaches every process)
        check_folder(out, what="out_dir")
        refuse_overwrite()
        if resume and not state.is_file():
            raise FileNotFoundError(f"nothing to resume: no training state {state} (a run of {recipe.name!r} with "
                                    f"the same out_dir writes it every checkpoint_every steps)")
        if not resume and state.is_file() and not force:
            raise FileExistsError(f"{state} holds an interrupted run of {recipe.name!r}; continue it with "
                                  f"resume=True (--resume), or pass force=True (--force) to start over")
        if recipe.storage not in STORAGES:  # before training, not after
            raise ValueError(f"recipe {recipe.name!r}: storage must be one of {STORAGES}, got {recipe.storage!r}")

    distributed.agree(checks, ctx)
    result = train(recipe, fast=fast, seed=seed, progress=progress, device=device, checkpoint=state,
                   checkpoint_every=checkpoint_every, resume=state if resume else None, amp=amp, compile=compile)
    if not ctx.is_main:
        return None
    model = result.model.cpu()
    tensors = storage_tensors(model, result.recipe.storage)  # rounds the model too: the metrics are the file's
    metrics = evaluate(model, result.schedule, result.recipe)
    refuse_overwrite(f" (it appeared while training; the finished training state {state} is kept, so "
                     f"resume=True, force=True (--resume --force) writes the checkpoint without training again)")
    resolved = result.recipe.to_dict()
    sidecar = {
        "name": recipe.name,
        "description": recipe.description,
        "recipe": resolved,
        "fast": fast,
        "seed": result.recipe.seed,
        "command": command_for(recipe.name, fast=fast, out_dir=out_dir, seed=seed, device=device, amp=amp,
                               compile=compile, world=ctx.world),
        "train_seconds": round(result.seconds, 1),
        "steps": result.step,
        "final_loss_ema": float(sum(result.losses[-100:]) / max(1, len(result.losses[-100:]))),
        "metrics": metrics,
        "n_params": nets.n_params(model),
        "storage": result.recipe.storage,
        "sha256": None,   # filled in by write_pair from the file it writes
        "bytes": None,
        "ddlearn_version": __version__,
        "torch_version": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} torch threads",
        "device": str(next(iter(result.net.parameters())).device),
    }
    if resume:
        sidecar["resumed"] = True
    if ctx.distributed:
        sidecar["processes"] = ctx.world   # batch_size is per process: the step's batch was processes x batch_size
    if amp:
        sidecar["amp"] = "bfloat16"
    if compile:
        sidecar["compile"] = compile
    write_pair(out, recipe.name, tensors, sidecar, metadata={"recipe": json.dumps(resolved), "kind": "ddlearn-model",
                                                             "version": __version__, "storage": result.recipe.storage})
    state.unlink(missing_ok=True)
    return weights


def convert_command(name: str, storage: str, directory=None) -> str:
    """The ``ddlearn convert`` command line that re-stores checkpoint ``name``."""
    cmd = f"ddlearn convert {name} --storage {storage}"
    return cmd + (f" --dir {directory}" if directory is not None else "")


def convert_storage(name: str, storage: str = "float16", *, directory=None) -> Path:
    """Re-store an already trained checkpoint ``name`` (in ``directory``, default the shipped folder) as ``storage``.

    This is what ``ddlearn convert NAME --storage float16 [--dir DIR]`` runs.
    The EMA weights are rounded to ``storage``, the recipe's evaluations are
    run again on the rounded weights (so the sidecar's ``metrics`` are those of
    the file), and the pair is rewritten safely (:func:`ddlearn.checkpoint.write_pair`,
    new sha256). The sidecar keeps the training command (``ddlearn train NAME``
    with the recipe's storage rebuilds the same file) and says under
    ``"converted"`` from what, to what, by which command, and the metrics
    before. Refused while ``NAME.train-state.safetensors`` sits beside it (a
    training of that name is running or was interrupted there).
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    folder = Path(directory) if directory is not None else pretrained.HERE
    ck = pretrained.load(name, directory=folder)  # checks the name, the pair and its hash
    state = state_path(folder, name)
    if state.exists():
        raise FileExistsError(f"{state} exists: a training of {name!r} is running or was interrupted in {folder}; "
                              f"convert once it has finished (or remove the state)")
    old = ck.info
    before = old.get("storage", old["recipe"].get("storage", "float32"))
    if before == storage:
        raise ValueError(f"checkpoint {name!r} is stored as {storage} already")
    recipe = replace(ck.recipe, storage=storage)
    model = ck.model
    tensors = storage_tensors(model, storage)
    metrics = evaluate(model, ck.schedule, recipe)
    command = convert_command(name, storage, directory)
    sidecar = {k: v for k, v in old.items() if k not in ("sha256", "bytes", "converted")}
    sidecar.update(recipe=recipe.to_dict(), metrics=metrics, storage=storage, sha256=None, bytes=None)
    sidecar["converted"] = {"from": before, "to": storage, "command": command, "metrics_before": old.get("metrics"),
                            "sha256_before": old.get("sha256"), "bytes_before": old.get("bytes"),
                            "ddlearn_version": __version__, "torch_version": torch.__version__}
    return write_pair(folder, name, tensors, sidecar,
                      metadata={"recipe": json.dumps(recipe.to_dict()), "kind": "ddlearn-model", "version": __version__,
                                "storage": storage})


def reevaluate(name: str, *, why: str, directory=None) -> dict:
    """Run checkpoint ``name``'s evaluations again on its weights and store them in its sidecar.

    This is what ``ddlearn reevaluate NAME --why TEXT [--dir DIR]`` runs. For when the code an
    evaluation uses has changed (a sampler's defaults, a metric) and the sidecar's ``metrics``
    must be those that evaluation gives now. The weights are not touched (their file and sha256
    stay); the sidecar is rewritten atomically and records under ``"reevaluated"`` why, by which
    command, and the metrics before. Returns the new metrics.
    """
    if not isinstance(why, str) or not why.strip():
        raise ValueError("why must say, in words, what changed in the evaluation")
    folder = Path(directory) if directory is not None else pretrained.HERE
    ck = pretrained.load(name, directory=folder)  # checks the name, the pair and its hash
    metrics = evaluate(ck.model, ck.schedule, ck.recipe)
    side = pair_paths(folder, name)[1]
    sidecar = read_sidecar(side)   # the file as it is (what the loader may add to info stays out)
    command = f"ddlearn reevaluate {name} --why {json.dumps(why)}" + (f" --dir {directory}" if directory else "")
    sidecar["reevaluated"] = {"why": why, "command": command, "metrics_before": sidecar.get("metrics"),
                              "ddlearn_version": __version__, "torch_version": torch.__version__}
    sidecar["metrics"] = metrics
    save_json(sidecar, side)
    return metrics
