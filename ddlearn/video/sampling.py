r"""Animating a still image with a video diffusion model (Chapter 08): the sampling pipeline.

:func:`animate` turns a conditioning image, a motion prompt and a frame
stride into a clip ``(B, C, F, H, W)``:

1. start from noise ``x_T`` shaped like the clip the model diffuses;
2. guide the eps-model with two scales through
   :func:`ddlearn.guidance.classifier_free`, in DynamiCrafter's nested order
   (Xing et al. 2023): image first, then the prompt given the image,

   .. math:: \tilde\epsilon = \epsilon(\varnothing, \varnothing)
             + s_{img}\,\big(\epsilon(c, \varnothing) - \epsilon(\varnothing, \varnothing)\big)
             + s_{txt}\,\big(\epsilon(c, p) - \epsilon(c, \varnothing)\big);

   the frame stride is passed to every prediction (it is never dropped);
3. sample with the DDIM family's loop (:func:`ddlearn.samplers.ddim.ddim_loop`, which works on any
   ``(B, ...)`` tensor), with ``eta`` (0: deterministic DDIM, 1: DDPM-like) and, optionally, the
   clean-clip estimate clamped to the data's range at every step (``clip``);
4. decode what was diffused into frames (``model.decode``: the frames
   themselves, or the conditioning image plus twice the predicted change).

The model is any ``model(z_t, t, *, image, prompt, stride)`` with
``null_conditions`` and ``decode`` (a :class:`ddlearn.nets.VideoUNet`).
"""
from __future__ import annotations

import torch

from .. import _checks, config
from ..data import clips as _clips
from ..guidance import classifier_free
from ..samplers.base import check_inputs
from ..samplers.ddim import check_clip, ddim_loop, model_predict

# animate()'s defaults, chosen by measurement on validation clips (never the held-out ones) for the shipped
# video16: the sampler first (`python benchmarks/video.py --part sampler`: eta, steps, clamping; among the
# settings with under 1% noise frames, the smallest displacement error), then the two guidance scales with
# that sampler (`--part scales`). Both tables are in ddlearn/pretrained/video_results.json;
# tests/test_video_defaults.py keeps these constants equal to the choices stored there.
#: DDIM's eta: 1, the stochastic (DDPM-like) step. Deterministic DDIM (eta 0) turned about half the frames
#: into colour noise (Chapter 08, Section 6).
ETA = 1.0
#: Sampling steps (network evaluations per guided prediction: two at image scale 1, else three). 50 and 25 steps
#: differ by less than the spread over clips (displacement error 1.01 against 1.04 px, +- 0.65 and 0.80 over 44
#: validation clips); the rule (the smallest mean error) chose 50, at twice the cost.
STEPS = 50
#: The clean estimate of what is diffused, clamped to [-1, 1] times the model's ``z_bound`` at every step
#: (the range of the change z = s (x - c) of two frames in [-1, 1] is +-2s; of frames, +-1).
CLIP = (-1.0, 1.0)
#: The guidance scales (image, then prompt given the image). Prompt 2 and 3 tie within the spread over clips
#: (displacement error 0.99 against 1.01 px, +- 0.67 and 0.65); the rule chose 2.
IMAGE_SCALE, PROMPT_SCALE = 1.0, 2.0


def _images(image, model) -> torch.Tensor:
    _checks.tensor("image", image, ndim=(3, 4))
    image = image[None] if image.ndim == 3 else image
    want = (model.in_channels, model.image_size, model.image_size)
    if tuple(image.shape[1:]) != want:
        raise ValueError(f"image must have shape (B, {want[0]}, {want[1]}, {want[2]}) for this model, "
                         f"got {tuple(image.shape)}")
    _checks.in_range("image", image)  # the first frame, in [-1, 1] like every clip the model learnt from
    return image


def _prompts(prompt, batch: int) -> torch.Tensor:
    if isinstance(prompt, torch.Tensor):
        ids = prompt.long()
        ids = ids[None] if ids.ndim == 1 else ids
    else:
        ids = _clips.encode_prompt(prompt)
        ids = ids[None] if ids.ndim == 1 else ids
    if ids.shape[0] == 1:
        ids = ids.expand(batch, -1)
    if ids.shape[0] != batch:
        raise ValueError(f"prompt must be one prompt or one per image ({batch}), got {ids.shape[0]}")
    return ids


def _strides(stride, batch: int, model) -> torch.Tensor:
    if isinstance(stride, bool):
        raise TypeError("stride must be a number or a tensor of one per image, got bool")
    s = _checks.as_tensor("stride", stride, dtype=torch.float32).reshape(-1)
    if s.numel() == 1:
        s = s.expand(batch)
    if s.numel() != batch:
        raise ValueError(f"stride must be one number or one per image ({batch}), got {s.numel()}")
    hi = getattr(model, "max_stride", None)
    if not torch.isfinite(s).all() or s.min() < 1 or (hi is not None and s.max() > hi):
        raise ValueError(f"stride must lie in [1, {hi}], got values from {float(s.min()):g} to {float(s.max()):g}")
    return s


def guided(model, image, prompt, stride=2, *, image_scale: float = 1.0, prompt_scale: float = 1.0):
    """``model(z_t, t)``: the video model with two-scale classifier-free guidance (image, then prompt).

    ``image`` (B, C, H, W) or (C, H, W); ``prompt`` a string, a list of strings
    or token ids; ``stride`` a number or one per image. Scales both 1: the
    conditional model exactly; ``image_scale=0, prompt_scale=0``: the null model.
    """
    image = _images(image, model)
    B = image.shape[0]
    nulls = model.null_conditions(B)
    s = _strides(stride, B, model)
    return classifier_free(model, {"stride": (s, s),               # never dropped: its step weighs nothing
                                   "image": (image, nulls["image"].to(image)),
                                   "prompt": (_prompts(prompt, B), nulls["prompt"])},
                           {"stride": 1.0, "image": image_scale, "prompt": prompt_scale})


@torch.no_grad()
def animate(model, schedule, image, prompt, stride=2, *, image_scale: float = IMAGE_SCALE,
            prompt_scale: float = PROMPT_SCALE, steps: int = STEPS, generator=None, x_T=None, eta: float = ETA,
            clip=CLIP, spacing="quadratic", callback=None, progress: bool = True) -> torch.Tensor:
    """A clip ``(B, C, F, H, W)`` in [-1, 1] animating ``image`` by ``prompt`` at frame ``stride``.

    The DDIM family's loop with ``steps`` steps on the ``spacing`` grid and ``eta``; ``clip``
    (a (low, high) pair or None) clamps the clean estimate of what is diffused at every step;
    ``x_T`` (the starting noise, shaped like the diffused clip) is drawn from ``generator`` when
    not given. See the module docstring for the guidance and :func:`guided` for the arguments.
    The defaults (:data:`ETA`, :data:`STEPS`, :data:`CLIP`, :data:`IMAGE_SCALE`, :data:`PROMPT_SCALE`)
    were chosen by measurement on validation clips.
    """
    image = _images(image, model)
    B = image.shape[0]
    shape = (B, model.in_channels, model.frames, model.image_size, model.image_size)
    if x_T is None:
        x_T = config.randn(shape, generator=generator)
    elif tuple(x_T.shape) != shape:
        raise ValueError(f"x_T must have shape {shape}, got {tuple(x_T.shape)}")
    m = guided(model, image, prompt, stride, image_scale=image_scale, prompt_scale=prompt_scale)
    check_inputs(m, x_T, schedule)
    clip = check_clip(clip)
    if clip is not None:  # in units of the data's range: z = s (x - c) lies within +-2s
        bound = float(getattr(model, "z_bound", 1.0))
        clip = (clip[0] * bound, clip[1] * bound)
    z = ddim_loop(model_predict(m), x_T, schedule, steps, eta=eta, spacing=spacing, clip=clip, generator=generator,
                  callback=callback, progress=progress, desc="animate")
    return model.decode(z, image)
