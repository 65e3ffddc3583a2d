"""Checkpoint files: atomic safetensors and JSON writes, sha256, the resumable training state.

Files are safetensors (nothing is pickled) and written atomically: to a
temporary file in the same folder, then ``os.replace``, so an interrupted
write never leaves a half-written file behind.

The training state (:func:`save_state` / :func:`load_state`) holds the net,
its EMA, AdamW's moments, the data generator's state and the loss history, so
a run resumed from it continues exactly as if it had never stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import __version__
from .recipe import Recipe

STATE_KIND = "ddlearn-train-state"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, damaged or does not match its sidecar."""


def atomic_write(path, write) -> None:
    """Call ``write(tmp_path)`` then move the finished file over ``path`` in one step."""
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
    """Atomically write ``tensors`` (contiguous CPU copies) with string ``metadata``."""
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(clean, tmp, metadata=metadata))


def save_json(obj, path) -> None:
    """Atomically write ``obj`` as indented JSON."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
    atomic_write(Path(path), write)


def sha256(path) -> str:
    """The hex sha256 of the file at ``path``."""
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
                     metadata={"recipe": json.dumps(recipe.to_dict()), "kind": STATE_KIND,
                               "version": __version__})


def load_state(path, recipe: Recipe, net, ema, opt, gen) -> tuple[int, list]:
    """Restore a :func:`save_state` file into ``net``, ``ema``, ``opt`` and ``gen``; returns ``(step, losses)``.

    The state must have been written by the same recipe (same settings; only
    ``steps`` may differ). Tensors go to the net's device; the generator stays where it is.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint {path} does not exist")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("kind") != STATE_KIND:
        raise ValueError(f"{path} is not a ddlearn training state (written by train(..., checkpoint=...))")
    saved = Recipe.from_dict(json.loads(meta["recipe"]))
    if replace(saved, steps=recipe.steps) != replace(recipe, steps=recipe.steps):
        raise ValueError(f"{path} was written by recipe {saved.name!r} with different settings; "
                         f"resume it with the same recipe (and fast/seed options)")
    st = load_file(str(path))
    net.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("net.")})
    ema.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("ema.")})
    for i, p in enumerate(net.parameters()):
        if f"opt.{i}.exp_avg" in st:
            opt.state[p] = {"exp_avg": st[f"opt.{i}.exp_avg"].to(p.device).clone(),
                            "exp_avg_sq": st[f"opt.{i}.exp_avg_sq"].to(p.device).clone(),
                            "step": torch.tensor(float(st[f"opt.{i}.step"][0]))}
    gen.set_state(st["rng"])
    return int(st["step"][0]), st["losses"].tolist()


__all__ = ["CheckpointError", "atomic_write", "save_safetensors", "save_json", "sha256", "save_state", "load_state", "STATE_KIND"]
