"""Training: named recipes, one loop (AdamW, EMA, gradient clipping), safe checkpoints.

A :class:`Recipe` says everything that makes a checkpoint: the data, the
net and its arguments, the schedule, the objective and its options
(conditioning, label dropout, continuous t), steps, batch size, learning rate,
EMA decay and seed, plus the smaller sizes used in fast mode. :data:`RECIPES`
holds the book's recipes by name; ``ddlearn train NAME`` runs one through
:func:`run_recipe`, which is how every shipped checkpoint in
:mod:`ddlearn.pretrained` was made.

Extending (later chapters do this in their own modules)::

    from ddlearn.train import Recipe, register
    register(Recipe(name="digits_cfg", data="digits_labelled", net="unet",
                    net_kwargs={..., "num_classes": 10}, cond=("y",),
                    loss_kwargs={"p_uncond": 0.1}, ...))

Data sets are looked up in :data:`ddlearn.data.DATASETS` (name -> ``fn(split, **data_kwargs)``
returning a dict with ``"x"`` and optionally ``"y"``), objectives in
:data:`ddlearn.losses.LOSSES`, nets in :data:`ddlearn.nets.NETS`, post-training
evaluations (the metrics written to the sidecar) in :data:`EVALS`.

Repeatability: weights are initialised inside ``torch.random.fork_rng`` from
the recipe seed (the caller's global RNG is untouched), and every batch index,
timestep and noise draw comes from one ``torch.Generator`` whose state is
saved in the checkpoint. Same seed, same weights on the same CPU build; a run
resumed from a checkpoint continues exactly as if never stopped.

Files are safetensors (nothing is pickled) and written atomically: to a
temporary file in the same folder, then ``os.replace``, so an interrupted run
never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import __version__, _checks, data, nets, schedules
from .losses import LOSSES


# --------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained checkpoint. ``fast`` holds the field overrides of fast mode."""

    name: str
    data: str
    net: str
    net_kwargs: dict
    steps: int
    batch_size: int
    lr: float
    ema_decay: float = 0.999
    seed: int = 0
    schedule: str | None = "linear"
    schedule_kwargs: dict = field(default_factory=dict)
    loss: str = "simple"
    loss_kwargs: dict = field(default_factory=dict)
    cond: tuple = ()             # data keys passed to the net as keyword arguments, e.g. ("y",)
    data_kwargs: dict = field(default_factory=dict)
    warmup: int = 100            # linear learning-rate warm-up steps, then cosine decay to lr_final * lr
    lr_final: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    evaluate: tuple = ("heldout_loss",)
    eval_samples: int = 2000     # samples drawn by sampling-based evaluations (toy_sw)
    fast: dict = field(default_factory=dict)
    description: str = ""

    def resolved(self, *, fast: bool = False, seed: int | None = None) -> "Recipe":
        """The recipe with its fast-mode overrides applied (and ``seed`` replaced if given)."""
        r = replace(self, **self.fast) if fast else self
        return replace(r, seed=seed) if seed is not None else r

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cond"], d["evaluate"] = list(self.cond), list(self.evaluate)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        d["cond"], d["evaluate"] = tuple(d.get("cond", ())), tuple(d.get("evaluate", ()))
        return cls(**d)


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe, *, overwrite: bool = False) -> Recipe:
    """Add a recipe to :data:`RECIPES` (refuses to replace one unless ``overwrite``)."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a ddlearn.train.Recipe, got {type(recipe).__name__}")
    if recipe.name in RECIPES and not overwrite:
        raise ValueError(f"a recipe named {recipe.name!r} exists already; pass overwrite=True to replace it")
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, str):
        raise TypeError(f"recipe must be a Recipe or a recipe name, got {type(recipe).__name__}")
    _checks.choice("recipe", recipe, tuple(sorted(RECIPES)))
    return RECIPES[recipe]


def load_data(recipe: Recipe, split: str = "train") -> dict:
    out = data.load(recipe.data, split, **recipe.data_kwargs)
    missing = [k for k in ("x", *recipe.cond) if k not in out]
    if missing:
        raise ValueError(f"data set {recipe.data!r} has no {missing} for recipe {recipe.name!r}")
    return out


# --------------------------------------------------------------------------- building blocks
def build_schedule(recipe: Recipe):
    """The recipe's schedule (``None`` for recipes that need none, e.g. a clean-image classifier)."""
    if recipe.schedule is None:
        return None
    from . import sde as _sde  # continuous-time recipes (Chapter 04) name an SDE: "vp", "subvp", "ve"

    if recipe.schedule in _sde.NAMES:
        return _sde.get(recipe.schedule, **recipe.schedule_kwargs)
    return schedules.get(recipe.schedule, **recipe.schedule_kwargs)


def build_net(recipe: Recipe, *, seed: int | None = None) -> torch.nn.Module:
    """The recipe's net, initialised from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed if seed is None else seed)
        net = nets.build(recipe.net, **recipe.net_kwargs)
    schedule = build_schedule(recipe)
    net_T = getattr(net, "T", None)
    if schedule is not None and net_T is not None and net_T != schedule.T:
        raise ValueError(f"recipe {recipe.name!r}: net_kwargs T={net_T} differs from the schedule's T={schedule.T}")
    return net


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


# --------------------------------------------------------------------------- atomic safetensors I/O
def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move it over ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a checkpoint is ordinary data
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_safetensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """Atomically write ``tensors`` (contiguous copies) with string ``metadata``."""
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    _atomic_write(Path(path), lambda tmp: save_file(clean, tmp, metadata=metadata))


def save_json(obj, path) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
    _atomic_write(Path(path), write)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- training state
def _state_tensors(net, ema, opt, gen, losses, step) -> dict:
    out = {f"net.{k}": v for k, v in net.state_dict().items()}
    out.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for i, p in enumerate(net.parameters()):
        st = opt.state.get(p)
        if st:
            out[f"opt.{i}.exp_avg"], out[f"opt.{i}.exp_avg_sq"] = st["exp_avg"], st["exp_avg_sq"]
            out[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
    out["rng"] = gen.get_state()
    out["losses"] = torch.tensor(losses, dtype=torch.float64) if losses else torch.zeros(0, dtype=torch.float64)
    out["step"] = torch.tensor([step], dtype=torch.int64)
    return out


def save_state(path, recipe: Recipe, net, ema, opt, gen, losses, step) -> None:
    """A resumable training checkpoint (weights, EMA, AdamW moments, RNG state, loss history)."""
    save_safetensors(_state_tensors(net, ema, opt, gen, losses, step), path,
                     metadata={"recipe": json.dumps(recipe.to_dict()), "kind": "ddlearn-train-state",
                               "version": __version__})


def _load_state(path, recipe: Recipe, net, ema, opt, gen):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint {path} does not exist")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("kind") != "ddlearn-train-state":
        raise ValueError(f"{path} is not a ddlearn training state (written by train(..., checkpoint=...))")
    saved = Recipe.from_dict(json.loads(meta["recipe"]))
    if replace(saved, steps=recipe.steps) != replace(recipe, steps=recipe.steps):
        raise ValueError(f"{path} was written by recipe {saved.name!r} with different settings; "
                         f"resume it with the same recipe (and fast/seed options)")
    st = load_file(str(path))
    net.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("net.")})
    ema.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("ema.")})
    params = list(net.parameters())
    for i, p in enumerate(params):
        if f"opt.{i}.exp_avg" in st:
            opt.state[p] = {"exp_avg": st[f"opt.{i}.exp_avg"].clone(), "exp_avg_sq": st[f"opt.{i}.exp_avg_sq"].clone(),
                            "step": torch.tensor(float(st[f"opt.{i}.step"][0]))}
    gen.set_state(st["rng"])
    return int(st["step"][0]), st["losses"].tolist()


# --------------------------------------------------------------------------- the loop
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
          checkpoint_every: int | None = None, seed: int | None = None, stop_after: int | None = None) -> Trained:
    """Train a recipe (a :class:`Recipe` or a name in :data:`RECIPES`).

    ``fast``: apply the recipe's fast-mode overrides. ``seed``: replace the
    recipe's seed. ``checkpoint``: path of a resumable state file written every
    ``checkpoint_every`` steps and at the end; ``resume``: such a file to
    continue from. ``stop_after``: stop after this many steps in total (to
    test resuming; the learning-rate schedule still follows ``recipe.steps``).
    """
    recipe = get_recipe(recipe).resolved(fast=fast, seed=seed)
    _checks.positive_int("steps", recipe.steps)
    _checks.positive_int("batch_size", recipe.batch_size)
    _checks.choice("loss", recipe.loss, tuple(LOSSES))
    loss_fn = LOSSES[recipe.loss]
    schedule = build_schedule(recipe)
    train_data = load_data(recipe, "train")
    x_all = train_data["x"]
    n = x_all.shape[0]
    net = build_net(recipe)
    net.train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(recipe.seed + 1)  # +1: not the init stream
    step, history = 0, []
    if resume is not None:
        step, history = _load_state(resume, recipe, net, ema, opt, gen)
    last = recipe.steps if stop_after is None else min(recipe.steps, stop_after)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=recipe.steps, initial=step, desc=f"train {recipe.name}", leave=True)
    start, running = time.perf_counter(), None
    while step < last:
        for group in opt.param_groups:
            group["lr"] = _lr_at(recipe, step)
        idx = torch.randint(0, n, (recipe.batch_size,), generator=gen)
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


# --------------------------------------------------------------------------- evaluations for the sidecar
def _heldout_loss(model, schedule, recipe, *, seed=0, repeats=4):
    """Simple loss on the held-out split with a fixed generator: deterministic, cheap, comparable."""
    test = load_data(recipe, "test")
    g = torch.Generator().manual_seed(seed)
    kwargs = {k: v for k, v in recipe.loss_kwargs.items() if k != "p_uncond"}
    with torch.no_grad():
        vals = [LOSSES[recipe.loss](model, test["x"], schedule, generator=g,
                                    cond={k: test[k] for k in recipe.cond} or None, **kwargs).item()
                for _ in range(repeats)]
    return {"heldout_loss": sum(vals) / len(vals)}


def _accuracy(model, schedule, recipe, *, seed=0):
    test = load_data(recipe, "test")
    with torch.no_grad():
        pred = model(test["x"]).argmax(1)
    return {"heldout_accuracy": (pred == test["y"]).float().mean().item()}


def _toy_sliced_wasserstein(model, schedule, recipe, *, seed=0):
    """Sliced Wasserstein distance of n ancestral samples to n held-out points (and the data-vs-data floor)."""
    from .metrics import sliced_wasserstein
    from .samplers.ancestral import sample_ancestral

    n = recipe.eval_samples

    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, model.dim, generator=g)
    samples = sample_ancestral(model, x_T, schedule, generator=g, progress=False)
    held = load_data(replace(recipe, data_kwargs={**recipe.data_kwargs, "n": n}), "test")["x"]
    other = data.load(recipe.data, "train", **{**recipe.data_kwargs, "n": n, "seed": 12345})["x"]
    return {"sw_samples_vs_heldout": sliced_wasserstein(samples, held, generator=torch.Generator().manual_seed(seed)),
            "sw_data_vs_heldout": sliced_wasserstein(other, held, generator=torch.Generator().manual_seed(seed))}


#: Evaluations by name: ``fn(model, schedule, recipe, *, seed) -> {metric: float}``.
EVALS = {"heldout_loss": _heldout_loss, "accuracy": _accuracy, "toy_sw": _toy_sliced_wasserstein}


def evaluate(model, schedule, recipe, *, seed: int = 0) -> dict:
    """Run the recipe's evaluations; this is what the sidecar's ``metrics`` hold and what tests re-check."""
    recipe = get_recipe(recipe)
    out = {}
    for name in recipe.evaluate:
        _checks.choice("evaluation", name, tuple(EVALS))
        out.update(EVALS[name](model, schedule, recipe, seed=seed))
    return out


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


def run_recipe(name, *, fast: bool = False, out_dir=None, seed: int | None = None, progress: bool = True) -> Path:
    """Train recipe ``name``, evaluate it, write ``OUT/NAME.safetensors`` (EMA weights) and ``OUT/NAME.json``.

    This is what ``ddlearn train NAME [--fast] [--out DIR] [--seed N]`` runs.
    ``out_dir`` defaults to ``./runs``. Returns the weights' path. The sidecar
    records the recipe, seed, command, training time, metrics, the weights'
    sha256 and the library version; :func:`ddlearn.pretrained.load` reads both.
    """
    recipe = get_recipe(name)
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    result = train(recipe, fast=fast, seed=seed, progress=progress)
    metrics = evaluate(result.model, result.schedule, result.recipe)
    weights = out / f"{recipe.name}.safetensors"
    resolved = result.recipe.to_dict()
    save_safetensors(dict(result.model.state_dict()), weights,
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
        "n_params": nets.n_params(result.model),
        "sha256": sha256(weights),
        "bytes": weights.stat().st_size,
        "ddlearn_version": __version__,
        "torch_version": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} torch threads",
    }
    save_json(sidecar, out / f"{recipe.name}.json")
    return weights


# --------------------------------------------------------------------------- the book's recipes
#: The 2-D MLP every point-cloud recipe trains (toy2d, mixture, the SDE rings): one definition.
TOY_MLP = {"dim": 2, "hidden": 128, "depth": 3, "emb_dim": 64, "T": 1000}

register(Recipe(
    name="toy2d", description="2-D swiss roll, residual MLP eps-predictor, linear schedule T=1000 (Chapter 02)",
    data="swiss_roll", data_kwargs={"n": 10000},
    net="mlp", net_kwargs=dict(TOY_MLP),
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=4000, batch_size=512, lr=2e-3, ema_decay=0.995, seed=0, warmup=200,
    evaluate=("heldout_loss", "toy_sw"), fast={"steps": 200, "eval_samples": 200}))

register(Recipe(
    name="mixture", description="2-D ring of 8 Gaussians (exact oracle known), same MLP as toy2d (Chapter 02)",
    data="mixture", data_kwargs={"n": 10000, "name": "ring8"},
    net="mlp", net_kwargs=dict(TOY_MLP),
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=3000, batch_size=512, lr=2e-3, ema_decay=0.995, seed=0, warmup=200,
    evaluate=("heldout_loss", "toy_sw"), fast={"steps": 200, "eval_samples": 200}))

register(Recipe(
    name="digits", description="scikit-learn digits at 16x16, small UNet eps-predictor, linear schedule T=1000 (Chapter 02)",
    data="digits", data_kwargs={"size": 16},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 16, "base": 24, "channel_mults": [1, 2, 2],
                            "num_res": 1, "attn_res": [4], "T": 1000},
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=5000, batch_size=64, lr=1.5e-3, ema_decay=0.999, seed=0, warmup=200,
    evaluate=("heldout_loss",), fast={"steps": 60, "batch_size": 16}))

register(Recipe(
    name="digit_classifier", description="clean-digit CNN classifier; its features define the Frechet digit distance",
    data="digits_labelled", data_kwargs={"size": 16},
    net="classifier", net_kwargs={"in_channels": 1, "num_classes": 10, "width": 32, "feature_dim": 64},
    schedule=None, loss="cross_entropy", cond=("y",),
    steps=1500, batch_size=128, lr=2e-3, ema_decay=0.99, seed=0, warmup=50,
    evaluate=("accuracy",), fast={"steps": 50}))


# ---- Chapter 06 (guidance): a class-conditional UNet for classifier-free guidance, and a
# noise-aware classifier p(y | x_t, t) for classifier guidance.
def _noisy_accuracy(model, schedule, recipe, *, seed=0):
    """Held-out accuracy of a noise-aware classifier on x_t ~ q(x_t | x_0) at a few timesteps (fixed noise)."""
    from .forward import q_sample

    test = load_data(recipe, "test")
    g = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for t in (0, 250, 500, 750):
            x_t = q_sample(test["x"], t, None, schedule, generator=g)
            pred = model(x_t, torch.full((x_t.shape[0],), float(t))).argmax(1)
            out[f"heldout_accuracy_t{t}"] = (pred == test["y"]).float().mean().item()
    return out


EVALS["noisy_accuracy"] = _noisy_accuracy

register(Recipe(
    name="digits_cfg", description="class-conditional digits UNet with label dropout (p=0.15) for classifier-free "
                                   "guidance; the null class is its unconditional model (Chapter 06)",
    data="digits_labelled", data_kwargs={"size": 16},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 16, "base": 16, "channel_mults": [1, 2, 2],
                            "num_res": 1, "attn_res": [], "T": 1000, "num_classes": 10},
    schedule="linear", schedule_kwargs={"T": 1000}, cond=("y",), loss_kwargs={"p_uncond": 0.15},
    steps=3000, batch_size=48, lr=2e-3, ema_decay=0.998, seed=0, warmup=200,
    evaluate=("heldout_loss",), fast={"steps": 40, "batch_size": 16}))

register(Recipe(
    name="digit_classifier_noisy", description="noise-aware digit classifier p(y | x_t, t) trained on x_t of the "
                                               "linear T=1000 schedule, for classifier guidance (Chapter 06)",
    data="digits_labelled", data_kwargs={"size": 16},
    net="classifier", net_kwargs={"in_channels": 1, "num_classes": 10, "width": 16, "feature_dim": 64, "T": 1000},
    schedule="linear", schedule_kwargs={"T": 1000}, loss="cross_entropy", loss_kwargs={"noisy": True}, cond=("y",),
    steps=2500, batch_size=64, lr=2e-3, ema_decay=0.995, seed=0, warmup=50,
    evaluate=("noisy_accuracy",), fast={"steps": 40}))


# ---- Chapter 04 (score SDEs): continuous-time eps-models for the VP and VE SDEs (loss "sde",
# :func:`ddlearn.losses.sde_loss`; the model sees ``sde.model_input(x_u, u)``), evaluated by PF-ODE samples.
def _sde_sliced_wasserstein(model, sde, recipe, *, seed=0):
    """Sliced Wasserstein distance of n PF-ODE samples (Heun, 50 steps) to n held-out points."""
    from .metrics import sliced_wasserstein
    from .samplers.ode import sample_pf_ode

    n = recipe.eval_samples
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, model.dim, generator=g)
    samples = sample_pf_ode(model, x_T, sde, 50, solver="heun", progress=False)
    held = load_data(replace(recipe, data_kwargs={**recipe.data_kwargs, "n": n}), "test")["x"]
    return {"sw_pf_ode_samples_vs_heldout": sliced_wasserstein(samples, held, generator=torch.Generator().manual_seed(seed))}


EVALS["sde_sw"] = _sde_sliced_wasserstein

for _name, _sde_name, _kw in (("sde_vp_ring8", "vp", {"beta_min": 0.1, "beta_max": 20.0, "T": 1000}),
                              ("sde_ve_ring8", "ve", {"sigma_min": 0.01, "sigma_max": 10.0, "T": 1000})):
    register(Recipe(
        name=_name, description=f"2-D ring of 8 Gaussians, MLP trained in continuous time on the {_sde_name.upper()} "
                                "SDE (Chapter 04)",
        data="mixture", data_kwargs={"n": 10000, "name": "ring8"},
        net="mlp", net_kwargs=dict(TOY_MLP),
        schedule=_sde_name, schedule_kwargs=_kw, loss="sde",
        steps=3000, batch_size=512, lr=2e-3, ema_decay=0.995, seed=0, warmup=200,
        evaluate=("heldout_loss", "sde_sw"), fast={"steps": 200, "eval_samples": 200}))

register(Recipe(
    name="sde_vp_digits8", description="scikit-learn digits at their native 8x8, 17 grey levels dequantised "
                                       "uniformly; small UNet trained in continuous time on the VP SDE, for "
                                       "PF-ODE likelihoods in bits/dim (Chapter 04)",
    data="digits", data_kwargs={"size": 8},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 8, "base": 16, "channel_mults": [1, 2],
                            "num_res": 1, "attn_res": [], "T": 1000},
    schedule="vp", schedule_kwargs={"beta_min": 0.1, "beta_max": 20.0, "T": 1000},
    loss="sde", loss_kwargs={"dequantize": 17},
    steps=3000, batch_size=64, lr=2e-3, ema_decay=0.998, seed=0, warmup=200,
    evaluate=("heldout_loss",), fast={"steps": 40, "batch_size": 16}))

if __name__ == "__main__":  # python -m ddlearn.train RECIPE [--fast] [--out DIR] [--seed N]
    import argparse

    p = argparse.ArgumentParser(description="train a ddlearn recipe (same as `ddlearn train`)")
    p.add_argument("recipe")
    p.add_argument("--fast", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    print(run_recipe(a.recipe, fast=a.fast, out_dir=a.out, seed=a.seed))
