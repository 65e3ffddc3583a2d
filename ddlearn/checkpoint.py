"""Checkpoint files: a weights + sidecar pair replaced safely, sha256, the resumable training state.

A checkpoint is a pair in one folder: ``NAME.safetensors`` (the EMA weights;
nothing is pickled) and ``NAME.json`` (the sidecar: recipe, seed, command,
metrics, and the weights' ``sha256`` and ``bytes``). The sidecar's hash is
what ties the two together: :func:`read_pair` accepts only a *matching* pair.

How a pair is replaced (:func:`write_pair`), so that a crash, a SIGINT or a
SIGKILL at any point leaves the previous good pair or the new pair, never new
weights beside an old sidecar that nothing can load:

1. ``weights_tmp``: the new weights go to a temporary file in the same folder
   (flushed and fsynced); their sha256 and size are taken from it.
2. ``sidecar_tmp``: the new sidecar, naming that hash, goes to a second
   temporary file. Until here the folder's pair is untouched.
3. ``backup``: if the current pair matches, it is kept as
   ``NAME.safetensors.prev`` + ``NAME.json.prev`` (hard links, or copies where
   the file system has none). A current pair that does not match (left by a
   crash of an earlier save) is not backed up, so the good ``.prev`` pair from
   before survives.
4. ``weights``: the new weights are renamed over ``NAME.safetensors``. From
   here until step 5 the pair does not match, and :func:`read_pair` loads the
   ``.prev`` pair instead (with a warning), which is the previous checkpoint.
5. ``sidecar``: the new sidecar is renamed over ``NAME.json``: the commit
   point; the new pair matches from now on.
6. ``cleanup``: the ``.prev`` pair is removed.

Each rename is ``os.replace`` (atomic on POSIX and Windows) followed by an
fsync of the folder. Temporary files an interrupted save leaves
(``NAME.*.tmp``) are never read; the next save of the same name removes them.
For tests, ``DDLEARN_SAVE_PAUSE=<stage>`` (a step name above) with
``DDLEARN_SAVE_PAUSE_FILE=<path>`` makes :func:`write_pair` write the stage
name to that file and sleep before doing that step, so a test can kill a real
training process at every point of the save.

Single files (a training state, a sidecar) are written atomically
(:func:`atomic_write`: a temporary file in the same folder, then
``os.replace``), so an interrupted write never leaves a half-written file.

The training state (:func:`save_state` / :func:`load_state`) holds the net,
its EMA, AdamW's moments, the data generator's state and the loss history, so
a run resumed from it continues exactly as if it had never stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open
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
        _finish(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _finish(tmp) -> None:
    """Give a finished temporary file ordinary permissions and flush it to disk."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a checkpoint is ordinary data
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


# --------------------------------------------------------------------------- the weights + sidecar pair
#: The steps of :func:`write_pair`, in order (see the module docstring).
SAVE_STAGES = ("weights_tmp", "sidecar_tmp", "backup", "weights", "sidecar", "cleanup")
PREV = ".prev"  # suffix of the previous pair kept during a save


def check_name(name) -> str:
    """A checkpoint name is a name: no folders, no path, not empty (``../x`` would write outside its folder;
    ``pretrained.load_file`` loads a path)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a checkpoint name (str), got {type(name).__name__}")
    seps = {"/", "\\", os.sep, os.altsep} - {None}
    if (not name or name in (".", "..") or name.startswith(".") or any(s in name for s in seps)
            or "\0" in name or Path(name).is_absolute()):
        raise ValueError(f"name must be a checkpoint name such as 'digits' (no folder or path), got {name!r}; "
                         f"to load a checkpoint file from elsewhere use ddlearn.pretrained.load_file(path)")
    return name


def pair_paths(folder, name: str) -> tuple[Path, Path]:
    """``(folder/NAME.safetensors, folder/NAME.json)``; ``name`` must be a plain name (:func:`check_name`)."""
    check_name(name)
    folder = Path(folder)
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def _prev(path: Path) -> Path:
    return path.with_name(path.name + PREV)


def _pause(stage: str) -> None:
    """Test hook: with ``DDLEARN_SAVE_PAUSE=stage``, say so in ``DDLEARN_SAVE_PAUSE_FILE`` and wait to be killed."""
    if os.environ.get("DDLEARN_SAVE_PAUSE") != stage:
        return
    mark = os.environ.get("DDLEARN_SAVE_PAUSE_FILE")
    if mark:
        Path(mark).write_text(stage)
    time.sleep(float(os.environ.get("DDLEARN_SAVE_PAUSE_SECONDS", "120")))


def _temp_beside(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return tmp


def _keep_copy(src: Path, dst: Path) -> None:
    """Keep ``src`` as ``dst`` (a hard link where possible, else a copy). Only called while the current pair
    matches, so a crash half-way leaves a ``.prev`` pair that is never needed (and is redone next time)."""
    dst.unlink(missing_ok=True)  # (renaming a link over its twin would be a no-op that leaves the temporary)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _matches(weights: Path, sidecar: Path) -> bool:
    """True when both files exist and the sidecar's sha256 and size are the weights'."""
    try:
        info = json.loads(sidecar.read_text())
        return (isinstance(info, dict) and weights.stat().st_size == info.get("bytes", weights.stat().st_size)
                and sha256(weights) == info.get("sha256"))
    except (OSError, ValueError):
        return False


def write_pair(folder, name: str, tensors: dict, sidecar: dict, metadata: dict | None = None) -> Path:
    """Write checkpoint ``name`` into ``folder``: weights ``tensors`` and the JSON ``sidecar`` (to which
    ``sha256`` and ``bytes`` of the weights are added), replacing an existing pair safely (module docstring).

    Returns the weights' path.
    """
    weights, side = pair_paths(folder, name)  # checks the name before anything is created
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{name}.safetensors.*.tmp"):  # left by an interrupted save of this name
        stale.unlink(missing_ok=True)
    for stale in folder.glob(f"{name}.json.*.tmp"):
        stale.unlink(missing_ok=True)
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    w_tmp = s_tmp = None
    try:
        _pause("weights_tmp")
        w_tmp = _temp_beside(weights)
        save_file(clean, w_tmp, metadata=metadata)
        _finish(w_tmp)
        sidecar = {**sidecar, "sha256": sha256(w_tmp), "bytes": os.path.getsize(w_tmp)}
        _pause("sidecar_tmp")
        s_tmp = _temp_beside(side)
        with open(s_tmp, "w") as f:
            json.dump(sidecar, f, indent=2, sort_keys=False)
            f.write("\n")
        _finish(s_tmp)
        _pause("backup")
        if _matches(weights, side):
            _keep_copy(weights, _prev(weights))
            _keep_copy(side, _prev(side))
        _fsync_dir(folder)
        _pause("weights")
        os.replace(w_tmp, weights)
        w_tmp = None
        _fsync_dir(folder)
        _pause("sidecar")
        os.replace(s_tmp, side)
        s_tmp = None
        _fsync_dir(folder)
    except BaseException:
        for tmp in (w_tmp, s_tmp):
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
        raise
    _pause("cleanup")
    for path in (_prev(weights), _prev(side)):
        path.unlink(missing_ok=True)
    return weights


def read_sidecar(path) -> dict:
    """The sidecar at ``path`` as a dict, checked to be a JSON object with a ``"recipe"`` object."""
    path = Path(path)
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err})") from err
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{path} is not a text (JSON) file ({err})") from err
    if not isinstance(info, dict):
        raise CheckpointError(f"{path} is not a checkpoint sidecar: expected a JSON object, got a {type(info).__name__}")
    if not isinstance(info.get("recipe"), dict):
        raise CheckpointError(f"{path} is not a checkpoint sidecar: it has no \"recipe\" object")
    return info


def read_pair(weights, *, hint: str = "") -> tuple[dict, dict]:
    """``(sidecar, tensors)`` of the checkpoint whose weights file is ``weights`` (the sidecar beside it).

    Checks the sidecar, the weights' size and sha256, then reads the weights
    with safetensors (onto the CPU). When the pair does not match but the
    ``.prev`` pair a save keeps does (an interrupted :func:`write_pair`), that
    previous checkpoint is returned, with a warning. Anything else is a
    :class:`CheckpointError` naming the file and ending with ``hint``.
    """
    weights = Path(weights)
    side = weights.with_suffix(".json")
    try:
        return _read_exact(weights, side, hint)
    except CheckpointError as err:
        if not (_prev(weights).is_file() and _prev(side).is_file()):
            raise
        try:
            info, state = _read_exact(_prev(weights), _prev(side), hint)
        except CheckpointError:
            raise err from None
        warnings.warn(f"{weights.name} and {side.name} do not match (an interrupted save?): loaded the previous "
                      f"checkpoint kept beside them as {_prev(weights).name} + {_prev(side).name}", stacklevel=3)
        return info, state


def _read_exact(weights: Path, side: Path, hint: str) -> tuple[dict, dict]:
    tail = f"; {hint}" if hint else ""
    if not side.is_file():
        raise CheckpointError(f"no checkpoint sidecar {side}{tail}")
    info = read_sidecar(side)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights {weights} are missing{tail}")
    size = weights.stat().st_size
    if "bytes" in info and size != info["bytes"]:
        raise CheckpointError(f"{weights} has {size} bytes but its sidecar says {info['bytes']} "
                              f"(truncated or replaced?){tail}")
    digest = sha256(weights)
    if digest != info.get("sha256"):
        raise CheckpointError(f"{weights} does not match the sha256 in {side} "
                              f"(got {digest[:12]}..., expected {str(info.get('sha256'))[:12]}...){tail}")
    try:
        state = load_file(str(weights), device="cpu")
        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors' own error class has changed name across versions
        raise CheckpointError(f"{weights} could not be read as safetensors ({err}){tail}") from err
    _same_story(weights, side, info, meta, tail)
    return info, state


def _same_story(weights: Path, side: Path, info: dict, meta: dict, tail: str) -> None:
    """The sidecar and the weights' own metadata must tell the same recipe and storage: the sha256 in the
    sidecar vouches for the weights, not for the sidecar's other fields, so a sidecar edited to another
    schedule or T would otherwise load silently with the wrong noise levels."""
    if "recipe" in meta:
        try:
            stored = json.loads(meta["recipe"])
        except ValueError as err:
            raise CheckpointError(f"{weights}'s metadata holds a recipe that is not JSON ({err}){tail}") from err
        said = info.get("recipe")
        if not isinstance(said, dict) or not isinstance(stored, dict):
            raise CheckpointError(f"{side} has no recipe to compare with the one in {weights.name}'s metadata{tail}")
        for key in sorted(set(stored) | set(said)):
            if stored.get(key) != said.get(key):
                raise CheckpointError(
                    f"{side} and {weights.name} disagree on recipe field {key!r}: the sidecar says "
                    f"{said.get(key)!r:.80}, the weights' metadata {stored.get(key)!r:.80} (was the sidecar "
                    f"edited?){tail}")
    if "storage" in meta and info.get("storage", meta["storage"]) != meta["storage"]:
        raise CheckpointError(f"{side} and {weights.name} disagree on field 'storage': the sidecar says "
                              f"{info.get('storage')!r}, the weights' metadata {meta['storage']!r}{tail}")


def check_folder(folder, *, what: str = "out_dir") -> Path:
    """Make sure checkpoints can be written to ``folder`` (created if missing): a clear ValueError if not."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"{what} {folder} cannot be written to ({err.strerror or err})") from err
    return folder


# --------------------------------------------------------------------------- storage dtype of the weights file
#: What a weights file may store its floating-point tensors as (``Recipe.storage``).
STORAGES = ("float32", "float16")


def storage_tensors(model: torch.nn.Module, storage: str) -> dict:
    """The state dict of ``model`` to write with ``storage`` (its float32 tensors cast to that dtype).

    The model's own tensors are replaced by the rounded values (in their own
    dtype), so whatever is evaluated next is exactly what the file holds and
    what :func:`restore_dtypes` gives back. A value beyond float16's range is
    a ValueError (the file would hold inf).
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    dtype = getattr(torch, storage)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    out = {}
    for k, v in state.items():
        if v.dtype == torch.float32 and dtype != torch.float32:
            r = v.to(dtype)
            if not bool(torch.isfinite(r).all()) and bool(torch.isfinite(v).all()):
                raise ValueError(f"storage={storage!r}: {k} holds values beyond {storage}'s range "
                                 f"(largest {v.abs().max().item():.4g}, {storage} max {torch.finfo(dtype).max:.4g}); "
                                 f"keep storage='float32'")
            out[k] = r
        else:
            out[k] = v
    model.load_state_dict({k: out[k].to(v.dtype) for k, v in state.items()})
    return out


def restore_dtypes(tensors: dict, like: dict) -> dict:
    """``tensors`` read from a file, their floating-point entries cast to the dtype of the same key in ``like``
    (a freshly built model's state dict): a float16-stored checkpoint loads as float32."""
    return {k: v.to(like[k].dtype) if k in like and v.is_floating_point() and like[k].is_floating_point() else v
            for k, v in tensors.items()}


# --------------------------------------------------------------------------- training state
def _state_tensors(net, ema, opt, gen, losses, step, seconds) -> dict:
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
    out["seconds"] = torch.tensor([float(seconds)], dtype=torch.float64)
    return out


def save_state(path, recipe: Recipe, net, ema, opt, gen, losses, step, seconds: float = 0.0) -> None:
    """A resumable training checkpoint (weights, EMA, AdamW moments, RNG state, loss history, training seconds)."""
    save_safetensors(_state_tensors(net, ema, opt, gen, losses, step, seconds), path,
                     metadata={"recipe": json.dumps(recipe.to_dict()), "kind": STATE_KIND,
                               "version": __version__})


def load_state(path, recipe: Recipe, net, ema, opt, gen) -> tuple[int, list, float]:
    """Restore a :func:`save_state` file into ``net``, ``ema``, ``opt`` and ``gen``; returns ``(step, losses, seconds)``.

    The state must have been written by the same recipe (same settings; only
    ``steps`` may differ). Tensors go to the net's device; the generator stays where it is.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"resume must be the path of a training state file, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume={path}: no such training state file")
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors' error class has changed name across versions
        raise ValueError(f"resume={path} is not a safetensors file ({err}); pass the training state that "
                         f"train(..., checkpoint=...) wrote") from err
    if meta.get("kind") != STATE_KIND:
        raise ValueError(f"resume={path} is not a ddlearn training state (written by train(..., checkpoint=...))")
    saved = Recipe.from_dict(json.loads(meta["recipe"]))
    same = {"steps": recipe.steps, "storage": recipe.storage}  # neither changes a training step
    if replace(saved, **same) != replace(recipe, **same):
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
    seconds = float(st["seconds"][0]) if "seconds" in st else 0.0
    return int(st["step"][0]), st["losses"].tolist(), seconds


__all__ = ["CheckpointError", "atomic_write", "save_safetensors", "save_json", "sha256", "write_pair", "read_pair",
           "read_sidecar", "pair_paths", "check_folder", "save_state", "load_state", "STATE_KIND", "SAVE_STAGES",
           "STORAGES", "storage_tensors", "restore_dtypes"]
