"""What makes a checkpoint: the :class:`Recipe`, and the net, schedule and data it names.

A :class:`Recipe` says everything that determines a trained checkpoint: the
data, the net and its arguments, the schedule, the objective and its options
(conditioning, label dropout, continuous t), steps, batch size, learning rate,
EMA decay and seed, the evaluations written to the sidecar (by name), the
storage dtype of the weights file (``"float16"`` halves a large checkpoint; the
sidecar's metrics are then those of the rounded weights), plus the field
overrides used in fast mode. It is plain data: it names its data set
(:data:`ddlearn.data.DATASETS`), its net (:data:`ddlearn.nets.NETS`), its
objective (:data:`ddlearn.losses.LOSSES`) and its evaluations
(:data:`ddlearn.evals.EVALS`) by string, so a recipe module imports nothing
but this one.

The book's recipes live in :mod:`ddlearn.recipes` (one module a chapter), which
fills :data:`RECIPES` through :func:`register`; look them up with
``ddlearn.recipes.get(name)``. :func:`build_net`, :func:`build_schedule` and
:func:`load_data` turn a recipe into the objects the training loop
(:mod:`ddlearn.train`) and the loader (:mod:`ddlearn.pretrained`) need.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import torch

from . import _checks, config, data, flow, frames, nets, schedules, sde


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
    storage: str = "float32"     # dtype of the shipped weights file: "float32" or "float16" (half the bytes;
    #                              the EMA weights are rounded before the evaluations, the loader restores float32)
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
        """The recipe a :meth:`to_dict` (e.g. a sidecar's ``"recipe"``) describes; unknown or missing fields are a ValueError."""
        if not isinstance(d, dict):
            raise TypeError(f"a recipe must be a dict of its fields, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {unknown}; a Recipe has {sorted(known)}")
        d = dict(d)
        d["cond"], d["evaluate"] = tuple(d.get("cond", ())), tuple(d.get("evaluate", ()))
        try:
            return cls(**d)
        except TypeError as err:  # a required field is missing
            raise ValueError(f"incomplete recipe: {err}") from err


#: The registry :func:`register` fills; :mod:`ddlearn.recipes` registers the book's recipes in it
#: (import that package, or use ``ddlearn.recipes.get(name)``, to see them).
RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe, *, overwrite: bool = False) -> Recipe:
    """Add a recipe to :data:`RECIPES` (refuses to replace one unless ``overwrite``)."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a ddlearn.recipe.Recipe, got {type(recipe).__name__}")
    if recipe.name in RECIPES and not overwrite:
        raise ValueError(f"a recipe named {recipe.name!r} exists already; pass overwrite=True to replace it")
    RECIPES[recipe.name] = recipe
    return recipe


def load_data(recipe: Recipe, split: str = "train") -> dict:
    """The recipe's data set (:data:`ddlearn.data.DATASETS`) for ``split``, checked to hold ``x`` and the cond keys."""
    _checks.choice("data set", recipe.data, tuple(data.DATASETS))
    out = data.DATASETS[recipe.data](split=split, **recipe.data_kwargs)
    missing = [k for k in ("x", *recipe.cond) if k not in out]
    if missing:
        raise ValueError(f"data set {recipe.data!r} has no {missing} for recipe {recipe.name!r}")
    return out


#: The time frames a recipe's ``schedule`` field can name (:mod:`ddlearn.frames`): name -> factory(**kwargs).
#: Each module's frames: discrete schedules (Chapters 01-03), score SDEs (Chapter 04), the flow path (Chapter 10).
FRAMES: dict = {**{name: (lambda name: lambda **kw: schedules.get(name, **kw))(name) for name in schedules.NAMES},
                **{name: sde.SDES[name] for name in sde.NAMES},
                "flow": flow.FlowPath}


def register_frame(name: str, factory, *, overwrite: bool = False) -> None:
    """Let recipes name a new time frame: ``build_schedule`` then builds ``factory(**schedule_kwargs)``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in FRAMES and not overwrite:
        raise ValueError(f"a frame named {name!r} is registered already; pass overwrite=True to replace it")
    FRAMES[name] = factory


def build_schedule(recipe: Recipe):
    """The recipe's time frame, built from :data:`FRAMES` by the name in its ``schedule`` field (``None`` for
    recipes that need none, e.g. a clean-image classifier): a discrete schedule, an SDE (continuous-time
    recipes, Chapter 04) or a flow path."""
    if recipe.schedule is None:
        return None
    _checks.choice("schedule", recipe.schedule, tuple(FRAMES))
    return frames.check_frame(FRAMES[recipe.schedule](**recipe.schedule_kwargs), f"the frame {recipe.schedule!r}")


def build_net(recipe: Recipe, *, seed: int | None = None) -> torch.nn.Module:
    """The recipe's net, initialised from ``seed`` (default: the recipe's) without touching the global RNG.

    A net that takes a timestep records the ``T`` it was built for as ``net.T``
    (the number of timesteps of the recipe's schedule; ``None`` for a clean
    classifier); a sampler can compare it with its schedule's ``T``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed if seed is None else seed)
        net = nets.build(recipe.net, **recipe.net_kwargs)
    schedule = build_schedule(recipe)
    net_T = getattr(net, "T", None)
    if schedule is not None and net_T is not None and net_T != schedule.T:
        raise ValueError(f"recipe {recipe.name!r}: net_kwargs T={net_T} differs from the schedule's T={schedule.T}")
    return net


def resolve_device(device=None, *, name: str = "device") -> torch.device:
    """The device to train or load on: ``None`` -> :func:`ddlearn.config.device` (``$DDLEARN_DEVICE``, else
    CUDA, else MPS, else the CPU); a name or ``torch.device`` is checked to exist on this machine."""
    if device is None:
        device = config.device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be None, a device name such as 'cpu' or a torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"{name} must be a device name such as 'cpu', 'cuda' or 'mps', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={str(device)!r}: CUDA is not available on this machine (torch {torch.__version__}); "
                         f"use {name}='cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"{name}={str(device)!r}: Apple's MPS is not available on this machine; use {name}='cpu'")
    return dev


__all__ = ["Recipe", "RECIPES", "register", "FRAMES", "register_frame", "load_data", "build_schedule", "build_net",
           "resolve_device"]
