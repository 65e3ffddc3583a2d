"""The held-out evaluation of Chapter 08: the clips every figure is measured on, and a model run through them.

* :func:`heldout_set` builds the held-out clips (fixed seeds, the ``"test"`` split: held-out shapes,
  hues and backgrounds), or with ``split="train", seed=VALIDATION_SEED`` a validation set laid out
  the same way; :func:`subset` picks clips of one;
* :func:`measure_model` animates every conditioning frame (:func:`ddlearn.video.sampling.animate`)
  and measures the clips (:mod:`ddlearn.video.metrics`), optionally with the image tokens blanked
  in the context stream;
* :func:`sidecar_metrics` is the small version a Chapter 08 checkpoint's sidecar records
  (:func:`ddlearn.evals.video_motion`).
"""
from __future__ import annotations

import torch

from .. import _checks
from ..data import clips as _clips
from .metrics import evaluate_clips, frechet_clip_distance
from . import sampling
from .sampling import animate

#: The straight motion prompts (every moving prompt but ``bounce``).
STRAIGHT = tuple(p for p in _clips.MOVING if p != "bounce")
#: Seed of the validation set (``heldout_set(split="train", seed=VALIDATION_SEED)``): far from the training
#: data's seed and from the held-out set's seeds.
VALIDATION_SEED = 90_000


def heldout_set(size: int = 16, *, per_cell: int = 2, multi: int = 48, still: int = 16, bounce: int = 16,
                seed: int = 100, split: str = "test") -> dict:
    """The held-out clips every Chapter 08 figure is measured on (fixed seeds, the ``"test"`` split).

    ``per_cell`` one-sprite clips for every straight prompt x every stride, then
    ``multi`` clips with two or three sprites (straight prompts), ``still`` and
    ``bounce`` one-sprite clips. Returns ``{"x", "prompt", "stride", "specs"}``.
    ``split="train"`` with another ``seed`` (e.g. :data:`VALIDATION_SEED`) gives a validation set
    laid out the same way: new clips of the training shapes, hues and backgrounds, for choosing
    settings (the guidance scales) without looking at the held-out clips.
    """
    _checks.positive_int("per_cell", per_cell)
    for arg, value in (("multi", multi), ("still", still), ("bounce", bounce)):
        _checks.positive_int(arg, value, minimum=0)
    parts = []
    i = 0
    for p in STRAIGHT:
        for s in _clips.STRIDES:
            parts.append(_clips.clips(per_cell, size=size, split=split, seed=seed + i, n_sprites=1, prompts=p,
                                      strides=s, return_specs=True))
            i += 1
    for n, kw in ((multi // 2, dict(n_sprites=2, prompts=STRAIGHT)), (multi - multi // 2, dict(n_sprites=3, prompts=STRAIGHT)),
                  (still, dict(n_sprites=1, prompts="still")), (bounce, dict(n_sprites=1, prompts="bounce"))):
        if n:
            parts.append(_clips.clips(n, size=size, split=split, seed=seed + i, return_specs=True, **kw))
        i += 1
    out = {k: torch.cat([d[k] for d in parts]) for k in ("x", "prompt", "stride")}
    out["specs"] = [s for d in parts for s in d["specs"]]
    return out


def subset(evalset: dict, index) -> dict:
    """The clips ``index`` (a list of positions) of an evaluation set, with their specs."""
    index = list(index)
    out = {k: v[index] for k, v in evalset.items() if isinstance(v, torch.Tensor)}
    out["specs"] = [evalset["specs"][i] for i in index]
    return out


def measure_model(model, schedule, evalset: dict, *, image_scale: float = sampling.IMAGE_SCALE,
                  prompt_scale: float = sampling.PROMPT_SCALE, seed: int = 0, steps: int = sampling.STEPS,
                  eta: float = sampling.ETA, clip=sampling.CLIP, batch: int = 64, classifier=None,
                  context: bool = True, progress: bool = False) -> dict:
    """Animate every conditioning frame of ``evalset`` (:func:`heldout_set`) and measure the clips.

    Returns ``{"rows": per-clip figures, "summary": :func:`ddlearn.video.metrics.summarize`,
    "clips": the generated clips, "fcd": Frechet clip distance to the real held-out clips (when
    ``classifier`` is given)}``.
    ``steps``, ``eta``, ``clip`` and the scales go to :func:`~ddlearn.video.sampling.animate` (its
    defaults by default).
    ``context=False`` blanks the image tokens at sampling (the null image in the context
    stream only; the detail stream keeps the frame), to see what the context stream does.
    """
    x = evalset["x"]
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, x.shape[0], batch):
        sl = slice(i, i + batch)
        m = model if context else _BlankContext(model)
        out.append(animate(m, schedule, x[sl, :, 0], evalset["prompt"][sl], evalset["stride"][sl],
                           image_scale=image_scale, prompt_scale=prompt_scale, steps=steps, eta=eta, clip=clip,
                           generator=g, progress=progress))
    clips = torch.cat(out)
    rows, summary = evaluate_clips(clips, evalset["specs"])
    res = {"rows": rows, "summary": summary, "clips": clips}
    if classifier is not None:
        res["fcd"] = frechet_clip_distance(clips, x, classifier=classifier)
    return res


class _BlankContext(torch.nn.Module):
    """The model with the context stream's image replaced by the null image (the detail stream keeps it)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        for name in ("in_channels", "image_size", "frames", "max_stride", "T"):
            setattr(self, name, getattr(model, name))
        self.z_bound = getattr(model, "z_bound", 1.0)

    def null_conditions(self, batch, device=None):
        return self.model.null_conditions(batch, device)

    def decode(self, z, image):
        return self.model.decode(z, image)

    def forward(self, x_t, t, *, image=None, prompt=None, stride=None):
        return self.model(x_t, t, image=image, prompt=prompt, stride=stride, context_image=torch.zeros_like(image)
                          if image is not None else None)


#: DDIM steps of a sidecar's motion figures: a record of the weights that tests/test_pretrained.py recomputes, so
#: kept at 25 (animate()'s default is :data:`~ddlearn.video.sampling.STEPS`, 50; on the 44 validation clips 25 and 50
#: steps differ by less than the spread over clips, Chapter 08, Section 6). Chapter 08's tables use the defaults.
SIDECAR_STEPS = 25


def sidecar_metrics(model, schedule, *, seed: int = 0, steps: int = SIDECAR_STEPS,
                    scales=(sampling.IMAGE_SCALE, sampling.PROMPT_SCALE)) -> dict:
    """The figures a Chapter 08 checkpoint's sidecar records: a small held-out set (one clip per straight
    prompt and stride, 16 with two or three sprites, 4 still, 4 bouncing), one sampling seed,
    :data:`SIDECAR_STEPS` steps and animate()'s other defaults."""
    evalset = heldout_set(model.image_size, per_cell=1, multi=16, still=4, bounce=4)
    s = measure_model(model, schedule, evalset, image_scale=scales[0], prompt_scale=scales[1], seed=seed,
                      steps=steps)["summary"]
    keys = ("direction_right_1", "direction_right_multi", "displacement_error", "trackable", "iou", "psnr0",
            "colour_drift", "still_kept")
    return {f"heldout_{k}": s[k][0] for k in keys}
