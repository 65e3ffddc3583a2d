r"""Chapter 07's restoration tasks: the degradation, the measurement, the operator a restoration is given,
and the classical baselines, in one place for the chapter, its widget and ``benchmarks/restoration.py``.

:func:`make_task` degrades clean images ``x`` (B, C, H, W) in [-1, 1]:

=================  ==================================================  =====================================
task               measurement                                         classical baselines
=================  ==================================================  =====================================
``sr4``, ``sr8``   4x / 8x block averages (:class:`~ddlearn.operators.Downsample`)  bicubic
``blur``           Gaussian blur, sigma 2 px, known                    Wiener, Richardson-Lucy
``inpaint_random`` half of the pixels, at random                       biharmonic
``inpaint_box``    a centred box covering a quarter of the image      biharmonic
``inpaint_text``   pixels under rendered text                          biharmonic
``colorize``       the channel mean (colour images only)               luminance only (gray copies)
``lowlight``       :math:`u_y = f u + M`, f in [0.15, 0.35] and a      gamma correction, CLAHE, max-stretch
                   smooth M (a 3x3 grid in [0, 0.05]), both unknown
                   (a guess f = 0.5, M = 0); or chosen with ``f=``
                   and ``mask=`` (below)
``blind_blur``     Gaussian blur of unknown width in [1.5, 2.5] px     Wiener and Richardson-Lucy with the
                   (a guess of 1 px)                                   guess; with the true width (an oracle)
=================  ==================================================  =====================================

``noise`` adds Gaussian measurement noise of that standard deviation (in
[-1, 1] units) to y. Blind tasks draw their true parameters per image from
``generator``, and the restoration operator starts from the guess with one
copy of the parameters per image, learnt while sampling. For ``lowlight`` a
reader may choose them instead: ``f`` (the exposure, a number or one per
image) and ``mask`` (M's coarse r x r grid in intensity units, one for all
images or one per image; r becomes the operators' ``mask_res``). The
generator is drawn from exactly as without them, so choosing f alone keeps
the mask and the noise of the same seed's default task.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from .. import _checks
from ..operators import Blur, Downsample, Grayscale, Mask, Operator
from ..operators.parametric import BlindBlur, LowLight
from .classical import clahe, classical, gamma_correction, max_stretch, richardson_lucy

TASKS = ("sr4", "sr8", "blur", "inpaint_random", "inpaint_box", "inpaint_text", "colorize", "lowlight",
         "blind_blur")
#: tasks whose degradation has unknown parameters the restoration learns
BLIND = ("lowlight", "blind_blur")
BLUR_SIGMA = 2.0
LOWLIGHT_F = (0.15, 0.35)
BLIND_SIGMA = (1.5, 2.5)
GUESS = {"lowlight": 0.5, "blind_blur": 1.0}


@lru_cache(maxsize=None)
def text_mask(size: int, text: str = "diffusion\nprior\nGDP 07") -> torch.Tensor:
    """A (size, size) 0/1 mask, 0 under ``text`` rendered by Matplotlib (Agg, DejaVu Sans bold): text inpainting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _checks.positive_int("size", size, minimum=8)
    fig = Figure(figsize=(1, 1), dpi=size)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=15, family="DejaVu Sans", fontweight="bold",
             linespacing=1.0)
    fig.canvas.draw()
    ink = np.asarray(fig.canvas.buffer_rgba())[..., 0] < 160
    return torch.from_numpy(~ink).float()


@dataclass
class Task:
    """A degraded batch: ``y`` measured from ``x`` by ``truth``; ``operator`` is what a restoration is given
    (for blind tasks: a fresh copy at the guess, whose parameters it learns); ``true_params`` the hidden values."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    operator: Operator
    truth: Operator
    true_params: dict = field(default_factory=dict)

    def fresh_operator(self, repeat: int = 1) -> Operator:
        """The operator to restore with, for ``y.repeat_interleave(repeat, 0)`` (K samples of each image):
        for blind tasks a new copy at the guess with one set of parameters per sample; else ``operator``."""
        _checks.positive_int("repeat", repeat)
        n = self.y.shape[0] * repeat
        if self.name == "lowlight":
            return LowLight(GUESS["lowlight"], mask_res=self.operator.mask_res, noise=self.truth.noise, copies=n)
        if self.name == "blind_blur":
            return BlindBlur(GUESS["blind_blur"], noise=self.truth.noise, copies=n)
        return self.operator

    def true_operator(self, repeat: int = 1) -> Operator:
        """The true degradation for ``y.repeat_interleave(repeat, 0)`` (blind tasks: parameters repeated, frozen)."""
        _checks.positive_int("repeat", repeat)
        if self.name not in BLIND or repeat == 1:
            return self.truth
        n = self.y.shape[0] * repeat
        if self.name == "lowlight":
            p = self.true_params
            return LowLight(p["f"].repeat_interleave(repeat), p["mask"].repeat_interleave(repeat, 0),
                            mask_res=p["mask"].shape[-1], noise=self.truth.noise, copies=n).requires_grad_(False)
        return BlindBlur(self.true_params["sigma"].repeat_interleave(repeat), noise=self.truth.noise,
                         copies=n).requires_grad_(False)

    def estimate_error(self, operator: Operator, repeat: int = 1) -> dict:
        """Relative error of the learnt parameters (f or sigma) against the truth, per sample: |est/true - 1|."""
        if self.name not in BLIND:
            return {}
        key = "f" if self.name == "lowlight" else "sigma"
        est = operator.f.detach().reshape(-1) if key == "f" else operator.sigma.detach().reshape(-1)
        true = self.true_params[key].reshape(-1).repeat_interleave(repeat)
        return {key: (est / true - 1).abs()}

    def baselines(self) -> dict:
        """The classical restorations of ``y``, by name (scikit-image / scipy)."""
        y, op = self.y, self.truth
        n = self.name
        if n in ("sr4", "sr8"):
            return {"bicubic": classical(op, y)}
        if n == "blur":
            return {"Wiener": op.wiener(y), "Richardson-Lucy": richardson_lucy(op, y)}
        if n.startswith("inpaint"):
            return {"biharmonic": classical(op, y)}
        if n == "colorize":
            return {"luminance only": op.pinv(y)}
        if n == "lowlight":
            return {"gamma": gamma_correction(y), "CLAHE": clahe(y),
                    "max-stretch": max_stretch(y)}
        if n == "blind_blur":
            guess = Blur(GUESS["blind_blur"], noise=op.noise)
            out = {"Wiener (guess)": guess.wiener(y), "Richardson-Lucy (guess)": richardson_lucy(guess, y)}
            sig = self.true_params["sigma"]
            per = [Blur(float(s), noise=op.noise) for s in sig.reshape(-1)]
            out["Wiener (true width)"] = torch.cat([b.wiener(y[i:i + 1]) for i, b in enumerate(per)])
            return out
        raise ValueError(f"no baselines for task {n!r}")  # pragma: no cover - TASKS is closed


def _lowlight_f(f, B: int) -> torch.Tensor:
    """A chosen exposure: a number or a tensor of 1 or B values, positive and finite; a (B,) float32 copy."""
    if isinstance(f, torch.Tensor):
        _checks.tensor("f", f, ndim=(0, 1))
        if f.numel() not in (1, B):
            raise ValueError(f"f must be a number or a tensor of 1 or {B} values (one per image), got shape "
                             f"{tuple(f.shape)}")
        if (f <= 0).any():
            raise ValueError(f"f must be positive (an exposure factor), got {f.detach().cpu().tolist()}")
        return f.detach().to(torch.float32).reshape(-1).expand(B).clone()
    if isinstance(f, bool) or not isinstance(f, (int, float)):
        raise TypeError(f"f must be a number or a torch.Tensor of shape ({B},), got {type(f).__name__}")
    return torch.full((B,), _checks.number("f", f, low=0, low_open=True), dtype=torch.float32)


def _lowlight_mask(mask, B: int) -> torch.Tensor:
    """A chosen illumination grid: (r, r) or (1 or B, 1, r, r), finite; a (B, 1, r, r) float32 copy."""
    _checks.tensor("mask", mask, ndim=(2, 4))
    m = mask.detach()
    if m.ndim == 2:
        m = m[None, None]
    if m.shape[0] not in (1, B) or m.shape[1] != 1 or m.shape[2] != m.shape[3]:
        raise ValueError(f"mask must be a square grid (r, r) or (1 or {B}, 1, r, r) (one for all images or one "
                         f"per image), got shape {tuple(mask.shape)}")
    return m.to(torch.float32).expand(B, -1, -1, -1).clone()


def make_task(name: str, x: torch.Tensor, *, noise: float = 0.0, generator: torch.Generator | None = None,
              f: float | torch.Tensor | None = None, mask: torch.Tensor | None = None) -> Task:
    """Degrade clean images ``x`` (B, C, H, W) for task ``name`` (see the table above); y gets ``noise``.

    ``lowlight`` only: ``f`` chooses the exposure (a positive number, or a
    tensor of 1 or B values) and ``mask`` the illumination offset M (a grid
    (r, r) or (1 or B, 1, r, r) in intensity units, bilinearly upsampled;
    r is the operators' ``mask_res``); None draws them as usual. The generator
    is drawn from exactly as when they are not given. ``true_params`` holds
    copies of the values used; ``x``, ``f`` and ``mask`` are not modified.
    """
    _checks.choice("task", name, TASKS)
    _checks.tensor("x", x, ndim=4)
    _checks.in_range("x", x)  # clean images in [-1, 1]: a [0, 255] x would make every figure meaningless
    _checks.number("noise", noise, low=0)
    _checks.generator("generator", generator)
    B, C, H, W = x.shape
    for arg, value in (("f", f), ("mask", mask)):
        if value is not None and name != "lowlight":
            raise ValueError(f"{arg} is the lowlight task's (its exposure f, its illumination mask); task "
                             f"{name!r} takes no {arg}")
    if name == "lowlight":  # checked before anything is drawn
        f = None if f is None else _lowlight_f(f, B)
        mask = None if mask is None else _lowlight_mask(mask, B)
    params = {}
    if name in ("sr4", "sr8"):
        truth = Downsample(int(name[2:]), noise)
        op = truth
    elif name == "blur":
        truth = op = Blur(BLUR_SIGMA, noise)
    elif name == "inpaint_random":
        truth = op = Mask.random_pixels((H, W), 0.5, generator=generator, noise=noise)
    elif name == "inpaint_box":
        truth = op = Mask.box((H, W), H // 4, W // 4, H // 2, W // 2, noise)
    elif name == "inpaint_text":
        if H != W:
            raise ValueError(f"inpaint_text needs square images, got {H}x{W}")
        truth = op = Mask(text_mask(H), noise)
    elif name == "colorize":
        if C != 3:
            raise ValueError(f"colorize needs colour images (3 channels), got {C}")
        truth = op = Grayscale(3, noise)
    elif name == "lowlight":
        lo, hi = LOWLIGHT_F
        # drawn even when chosen, so the generator is left where the default task leaves it
        drawn_f = lo + (hi - lo) * torch.rand(B, generator=generator)
        # a smooth illumination offset: a 3x3 grid of values in [0, 0.05] (intensity units), bilinear
        drawn_mask = 0.05 * torch.rand(B, 1, 3, 3, generator=generator)
        f = drawn_f if f is None else f
        mask = drawn_mask if mask is None else mask
        res = mask.shape[-1]
        truth = LowLight(f, mask, mask_res=res, noise=noise, copies=B).requires_grad_(False)
        op = LowLight(GUESS["lowlight"], mask_res=res, noise=noise, copies=B)
        params = {"f": f, "mask": mask}
    else:  # blind_blur
        lo, hi = BLIND_SIGMA
        sigma = lo + (hi - lo) * torch.rand(B, generator=generator)
        truth = BlindBlur(sigma, noise=noise, copies=B).requires_grad_(False)
        op = BlindBlur(GUESS["blind_blur"], noise=noise, copies=B)
        params = {"sigma": sigma}
    with torch.no_grad():
        y = truth.measure(x, generator=generator).detach()
    return Task(name, x, y, op, truth, params)


#: Blind low light on whole photographs (Chapter 07, Section 5): the exposure range, the largest value of the
#: illumination offset's 3x3 grid (intensity units, bilinear: non-uniform light) and the measurement noise
#: (in [-1, 1] units, so 0.02 is 1% of the range), so that a max-stretch is no oracle.
WHOLE_LOWLIGHT = {"f": (0.15, 0.35), "mask": 0.1, "noise": 0.02}


def whole_lowlight(x: torch.Tensor, seed: int = 0) -> Task:
    """The low-light task of whole photographs ``x`` (B, C, H, W) for ``seed``: f, M and the noise drawn from one
    generator seeded ``1000 + seed`` with the ranges of :data:`WHOLE_LOWLIGHT` (one f and one M per photograph)."""
    _checks.tensor("x", x, ndim=4)
    _checks.seed("seed", seed)
    g = torch.Generator().manual_seed(1000 + seed)
    B = x.shape[0]
    lo, hi = WHOLE_LOWLIGHT["f"]
    f = lo + (hi - lo) * torch.rand(B, generator=g)
    mask = WHOLE_LOWLIGHT["mask"] * torch.rand(B, 1, 3, 3, generator=g)
    return make_task("lowlight", x, f=f, mask=mask, noise=WHOLE_LOWLIGHT["noise"], generator=g)


# ---- running and scoring the diffusion methods on a task ------------------------------------------------
METHODS = ("GDP-x0", "GDP-xt", "DPS", "DDNM")

#: Per-task settings of each method, chosen on validation images by ``benchmarks/restoration.py --tune`` (the
#: highest mean PSNR; the sweep is stored in ``ddlearn/pretrained/restoration_results.json`` and
#: tests/test_restoration_settings.py keeps the two equal); anything not listed uses the method's defaults.
SETTINGS: dict = {
    **{task: {"GDP-x0": {"scale": 1.0, "eta": 1.0}}
       for task in ("sr4", "sr8", "blur", "inpaint_random", "inpaint_box", "inpaint_text", "blind_blur")},
    "colorize": {"GDP-x0": {"scale": 1.0, "eta": 1.0}},
    "lowlight": {"GDP-x0": {"scale": 0.3, "param_fit": "closed_form", "param_from": 0.5}},
}
#: The prior each task is tuned with (``benchmarks/restoration.py`` names): the gray patch prior, except where
#: the task needs colour.
TUNE_PRIOR = {"colorize": "rgb", "lowlight": "rgb"}


def settings(task: str, method: str) -> dict:
    """The options :func:`restore` passes to ``method`` for ``task`` (a copy of :data:`SETTINGS`' entry)."""
    _checks.choice("task", task, TASKS)
    _checks.choice("method", method, METHODS)
    return dict(SETTINGS.get(task, {}).get(method, {}))


def restore(method: str, model, schedule, task: Task, *, steps: int = 100, k: int = 1,
            generator: torch.Generator | None = None, progress: bool = False, use_settings: bool = True,
            **options):
    """Restore ``task.y`` with ``method`` (one of :data:`METHODS`), ``k`` samples per image.

    Returns ``(samples, operator)``: samples (B, k, C, H, W) (raw, unclipped) and
    the operator the method ended with (for blind tasks: its learnt parameters).
    DPS and DDNM learn no parameters: on blind tasks they are given the *true*
    operator (an advantage GDP does not get). DDNM needs a linear operator: for
    ``lowlight`` it returns ``(None, None)``. ``options`` override :func:`settings`;
    ``use_settings=False`` starts from the method's own defaults instead (what a settings search needs, so
    that an option it leaves out is not silently the current choice).
    """
    from .gdp import sample_gdp
    from .posterior import sample_ddnm, sample_dps

    _checks.choice("method", method, METHODS)
    _checks.positive_int("k", k)
    B = task.y.shape[0]
    if not isinstance(use_settings, bool):
        raise TypeError(f"use_settings must be a bool, got {type(use_settings).__name__}")
    opts = {**(settings(task.name, method) if use_settings else {}), **options}
    y = task.y.repeat_interleave(k, 0)
    shape = (B * k, *task.x.shape[1:])
    from ..config import randn

    x_T = randn(shape, generator=generator, dtype=task.x.dtype, device=task.x.device)
    if method.startswith("GDP"):
        op = task.fresh_operator(k)
        out = sample_gdp(model, x_T, schedule, steps, operator=op, y=y, on=method[4:], generator=generator,
                         progress=progress, **opts)
    else:
        op = task.true_operator(k) if task.name in BLIND else task.operator
        if method == "DDNM" and not op.linear:
            return None, None
        sampler = sample_dps if method == "DPS" else sample_ddnm
        opts.setdefault("clip", (-1.0, 1.0))
        out = sampler(model, x_T, schedule, steps, operator=op, y=y, generator=generator, progress=progress, **opts)
    return out.detach().reshape(B, k, *task.x.shape[1:]), op


def score(task: Task, x_hat: torch.Tensor) -> dict:
    """Per-image measures of restorations ``x_hat`` (B, C, H, W) of ``task.x``: PSNR, SSIM (dB / 1, on
    outputs clipped to [-1, 1]), consistency PSNR of A(x_hat) to y (raw output, the true operator),
    sharpness (gradient energy / the truth's) and, for colour images, the CIELAB chroma error."""
    from .. import metrics

    _checks.same_shape("task.x", task.x, "x_hat", x_hat)
    xc = x_hat.clamp(-1, 1)
    out = {"psnr": metrics.psnr(xc, task.x, reduction="none"), "ssim": metrics.ssim(xc, task.x, reduction="none"),
           "consistency": metrics.consistency_psnr(task.truth, x_hat, task.y, reduction="none"),
           "sharpness": metrics.sharpness(xc, task.x, reduction="none")}
    if task.x.shape[1] == 3:
        out["colour_error"] = metrics.colour_error(xc, task.x, reduction="none")
    return out


__all__ = ["TASKS", "BLIND", "Task", "make_task", "whole_lowlight", "WHOLE_LOWLIGHT", "text_mask", "BLUR_SIGMA", "LOWLIGHT_F", "BLIND_SIGMA", "GUESS",
           "METHODS", "SETTINGS", "TUNE_PRIOR", "settings", "restore", "score"]
