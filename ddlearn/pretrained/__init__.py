"""Shipped checkpoints: ``NAME.safetensors`` (EMA weights) + ``NAME.json`` (sidecar), beside this file.

The sidecar records the recipe (resolved: what was actually trained), the
seed, the exact command that made the checkpoint (``ddlearn train NAME --out
ddlearn/pretrained``), the training time, the metrics the recipe's
evaluations printed, the weights' sha256 and the library version.

:func:`load` takes a checkpoint *name* (``"digits"``), looked up in the
shipped folder, ``directory=`` or ``$DDLEARN_PRETRAINED_DIR``; a file from
anywhere else is loaded with the explicit :func:`load_file`. Both rebuild the
net from the sidecar's recipe, verify the hash first and load the weights
with safetensors (nothing is unpickled). A missing, truncated or altered file
is a :class:`CheckpointError` naming the file and the command that rebuilds
it; an interrupted save is recovered as :mod:`ddlearn.checkpoint` describes.

A checkpoint stored in float16 (``Recipe.storage``; the sidecar's
``"storage"``) loads as float32, holding exactly the rounded weights its
sidecar's metrics were measured on.

A loaded model records the number of timesteps it was trained for as
``model.T`` (also ``Pretrained.T``; ``None`` for a clean classifier): a
network trained with T = 1000 belongs with a schedule of T = 1000.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, check_name, read_pair, read_sidecar, restore_dtypes
from ..recipe import Recipe, build_net, build_schedule, resolve_device

HERE = Path(__file__).resolve().parent


def _dir(directory=None) -> Path:
    """``directory``, else ``$DDLEARN_PRETRAINED_DIR`` (e.g. your own ``runs/``), else the shipped folder."""
    if directory is not None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a folder path or None, got {type(directory).__name__}")
        return Path(directory)
    env = os.environ.get("DDLEARN_PRETRAINED_DIR")
    return Path(env) if env else HERE


@dataclass
class Pretrained:
    """A loaded checkpoint: ``model`` (eval mode, EMA weights), ``schedule`` (None for a classifier),
    ``recipe`` (:class:`ddlearn.recipe.Recipe`) and ``info`` (the sidecar dict)."""

    model: torch.nn.Module
    schedule: object
    recipe: object
    info: dict

    def __iter__(self):  # model, schedule = load("digits")
        return iter((self.model, self.schedule))

    @property
    def T(self) -> int | None:
        """The number of timesteps the model was trained for (``model.T``; None for a clean classifier)."""
        return getattr(self.model, "T", None)


def folder(directory=None) -> Path:
    """The folder checkpoints are read from: ``directory``, else ``$DDLEARN_PRETRAINED_DIR``, else the shipped one."""
    return _dir(directory)


def available(directory=None) -> list[str]:
    """Names of the checkpoints shipped (those with both a .safetensors and a .json)."""
    d = _dir(directory)
    return sorted(p.stem for p in d.glob("*.json") if (d / f"{p.stem}.safetensors").exists())


def _rebuild_hint(name: str, info: dict | None = None) -> str:
    cmd = (info or {}).get("command") or f"ddlearn train {name} --out ddlearn/pretrained"
    return f"rebuild it with `{cmd}`"


def info(name: str, directory=None) -> dict:
    """The sidecar of checkpoint ``name`` as a dict."""
    check_name(name)
    d = _dir(directory)
    side = d / f"{name}.json"
    if not side.exists():
        have = ", ".join(available(d)) or "none"
        raise CheckpointError(f"no checkpoint sidecar {side} (shipped checkpoints: {have}); {_rebuild_hint(name)}")
    try:
        return read_sidecar(side)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; {_rebuild_hint(name)}") from err


def load(name: str, *, directory=None, device: str | torch.device = "cpu") -> Pretrained:
    """Load checkpoint ``name``: verify its sha256, rebuild the net, load the EMA weights.

    ``name`` is a name (``"digits"``), never a path: see :func:`load_file`.
    ``model, schedule = load("digits")`` works (a :class:`Pretrained` unpacks to those two).
    """
    check_name(name)
    dev = resolve_device(device)
    d = _dir(directory)
    info(name, d)  # a missing or unreadable sidecar is named with the shipped list and the rebuild command
    return _load(d / f"{name}.safetensors", name, dev)


def load_file(path, *, device: str | torch.device = "cpu") -> Pretrained:
    """Load the checkpoint whose weights file is ``path`` (``.../NAME.safetensors``, its ``NAME.json`` beside it).

    The explicit way to load a checkpoint from any folder; same checks as :func:`load`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be the path of a .safetensors checkpoint, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must name a .safetensors checkpoint file (its .json sidecar beside it), got {path}")
    return _load(path, path.stem, resolve_device(device))


def _load(weights: Path, name: str, device: torch.device) -> Pretrained:
    try:
        meta = read_sidecar(weights.with_suffix(".json"))
    except (CheckpointError, OSError):
        meta = None
    meta, state = read_pair(weights, hint=_rebuild_hint(name, meta))
    hint = _rebuild_hint(name, meta)
    try:
        recipe = Recipe.from_dict(meta["recipe"])
        model = build_net(recipe)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{weights.with_suffix('.json')} has a recipe that cannot be built ({err}); {hint}") from err
    try:
        model.load_state_dict(restore_dtypes(state, model.state_dict()))  # float16 storage loads as float32
    except RuntimeError as err:
        raise CheckpointError(f"{weights} does not fit the net of recipe {recipe.name!r} ({err}); {hint}") from err
    model = model.to(device).eval().requires_grad_(False)
    return Pretrained(model=model, schedule=build_schedule(recipe), recipe=recipe, info=meta)


__all__ = ["available", "folder", "load", "load_file", "info", "CheckpointError", "Pretrained"]
