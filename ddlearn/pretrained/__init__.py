"""Shipped checkpoints: ``NAME.safetensors`` (EMA weights) + ``NAME.json`` (sidecar), beside this file.

The sidecar records the recipe (resolved: what was actually trained), the
seed, the exact command that made the checkpoint (``ddlearn train NAME --out
ddlearn/pretrained``), the training time, the metrics the recipe's
evaluations printed, the weights' sha256 and the library version.

:func:`load` rebuilds the net from the sidecar's recipe, verifies the hash
first and loads the weights with safetensors (nothing is unpickled). A missing,
truncated or altered file is a :class:`CheckpointError` naming the file and
the command that rebuilds it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, sha256
from ..recipe import Recipe, build_net, build_schedule

HERE = Path(__file__).resolve().parent


def _dir(directory=None) -> Path:
    """``directory``, else ``$DDLEARN_PRETRAINED_DIR`` (e.g. your own ``runs/``), else the shipped folder."""
    if directory is not None:
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


def available(directory=None) -> list[str]:
    """Names of the checkpoints shipped (those with both a .safetensors and a .json)."""
    d = _dir(directory)
    return sorted(p.stem for p in d.glob("*.json") if (d / f"{p.stem}.safetensors").exists())


def _rebuild_hint(name: str, info: dict | None = None) -> str:
    cmd = (info or {}).get("command") or f"ddlearn train {name} --out ddlearn/pretrained"
    return f"rebuild it with `{cmd}`"


def info(name: str, directory=None) -> dict:
    """The sidecar of checkpoint ``name`` as a dict."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a checkpoint name (str), got {type(name).__name__}")
    d = _dir(directory)
    side = d / f"{name}.json"
    if not side.exists():
        have = ", ".join(available(d)) or "none"
        raise CheckpointError(f"no checkpoint sidecar {side} (shipped checkpoints: {have}); {_rebuild_hint(name)}")
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{side} is not valid JSON ({err}); {_rebuild_hint(name)}") from err


def load(name: str, *, directory=None, device: str | torch.device = "cpu") -> Pretrained:
    """Load shipped checkpoint ``name``: verify its sha256, rebuild the net, load the EMA weights.

    ``model, schedule = load("digits")`` works (a :class:`Pretrained` unpacks to those two).
    """
    from safetensors.torch import load_file

    d = _dir(directory)
    meta = info(name, d)
    weights = d / f"{name}.safetensors"
    hint = _rebuild_hint(name, meta)
    if not weights.exists():
        raise CheckpointError(f"checkpoint weights {weights} are missing; {hint}")
    size = weights.stat().st_size
    if "bytes" in meta and size != meta["bytes"]:
        raise CheckpointError(f"{weights} has {size} bytes but its sidecar says {meta['bytes']} "
                              f"(truncated or replaced?); {hint}")
    digest = sha256(weights)
    if digest != meta.get("sha256"):
        raise CheckpointError(f"{weights} does not match the sha256 in {d / (name + '.json')} "
                              f"(got {digest[:12]}..., expected {str(meta.get('sha256'))[:12]}...); {hint}")
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as err:  # safetensors' own error class has changed name across versions
        raise CheckpointError(f"{weights} could not be read as safetensors ({err}); {hint}") from err
    recipe = Recipe.from_dict(meta["recipe"])
    model = build_net(recipe)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{weights} does not fit the net of recipe {recipe.name!r} ({err}); {hint}") from err
    model = model.to(device).eval().requires_grad_(False)
    return Pretrained(model=model, schedule=build_schedule(recipe), recipe=recipe, info=meta)


__all__ = ["available", "load", "info", "CheckpointError", "Pretrained"]

