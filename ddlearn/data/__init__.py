"""Offline data sets, one module a kind. Nothing here downloads anything.

* :mod:`.toy`     2-D point clouds ``(N, 2)``: swiss roll, moons, named Gaussian mixtures;
* :mod:`.digits`  scikit-learn's handwritten digits ``(N, 1, S, S)``, fixed 80/20 split;
* :mod:`.photos`  scikit-image's bundled photographs ``(1, C, H, W)`` and patches of them (Ch. 07);
* :mod:`.faces`   ``lfw_subset``'s aligned faces ``(N, 1, S, S)``, fixed held-out faces (Ch. 07).

Later chapters add a module each (clips, phantoms and
DICOM). Every data set is in [-1, 1] and keeps a held-out split that no
shipped checkpoint saw.

Training recipes name their data set: :data:`DATASETS` maps a name to
``fn(split, **data_kwargs) -> {"x": tensor, ...}`` (plus ``"y"`` or other
conditioning keys), and :func:`load` calls it. A new data set for a recipe
registers here.
"""
from __future__ import annotations

from .. import _checks
from .digits import SPLIT_SEED, SPLITS, digits
from .faces import faces
from .photos import HELDOUT, IMAGES, gray_source, image, patches, val_photos
from .toy import HELDOUT_OFFSET, TOY, gaussian_mixture, moons, swiss_roll, toy

__all__ = ["swiss_roll", "moons", "gaussian_mixture", "toy", "TOY", "digits", "image", "IMAGES",
           "SPLIT_SEED", "SPLITS", "HELDOUT_OFFSET", "DATASETS", "load", "patches", "faces", "HELDOUT", "val_photos",
           "gray_source"]


def _toy(name):
    def load_toy(split="train", n=10000, seed=0):
        return {"x": toy(name, n, seed=seed, split=split)}
    return load_toy


def _digits(split="train", size=16):
    return {"x": digits(split, size)}


def _digits_labelled(split="train", size=16):
    x, y = digits(split, size, return_labels=True)
    return {"x": x, "y": y}


def _mixture(split="train", n=10000, seed=0, name="ring8"):
    return {"x": gaussian_mixture(n, seed=seed, split=split, name=name)}


def _photo_patches(split="train", size=32, channels=1, stride=None, n=None):
    return {"x": patches(split, size, channels=channels, stride=stride, n=n)}


def _faces(split="train", size=32, flips=True):
    return {"x": faces(split, size, flips=_checks.boolean("flips", flips) and split == "train")}


#: Data sets for training recipes by name: ``fn(split, **data_kwargs) -> {"x": tensor, ...}``;
#: splits "train" / "test".
DATASETS = {"swiss_roll": _toy("swiss_roll"), "moons": _toy("moons"), "mixture": _mixture,
            "digits": _digits, "digits_labelled": _digits_labelled,
            "photo_patches": _photo_patches, "faces": _faces}  # Chapter 07


def _phantoms(split="train", size=64, n=None, seed=0):
    from .medical import phantoms  # Chapter 09: random-ellipse head phantoms (scikit-image/pydicom-free)

    return {"x": phantoms(split, size, n, seed=seed)}


DATASETS["phantoms"] = _phantoms


def _sprite_clips(split="train", size=16, n=12000, n_test=256, seed=0):
    from .clips import clips  # Chapter 08: generated clips of moving sprites (B, 3, F, H, W)

    d = clips(n if split == "train" else n_test, size=size, split=split, seed=seed)
    return {k: d[k] for k in ("x", "prompt", "stride", "y")}


DATASETS["sprite_clips"] = _sprite_clips


def load(name: str, split: str = "train", **data_kwargs) -> dict:
    """The data set ``name`` of :data:`DATASETS` as a dict of tensors (``"x"`` and conditioning keys)."""
    _checks.choice("data set", name, tuple(DATASETS))
    return DATASETS[name](split=split, **data_kwargs)
