"""Explorer for the reverse process (Chapter 02): scrub through ancestral sampling.

Left: the state x_t; right: the network's guess of the clean sample x0 at
that step. Early on x_t is noise and the x0 guess is a blurry average (of
digits, or of the whole point cloud); as t falls the guess sharpens and x_t
follows it. Works for digits (image grids) and for 2-D models (scatter plots).

Sampling happens once, up front: either pass ``model, schedule, x_T`` (the
explorer runs :func:`~ddlearn.samplers.sample_ancestral` itself), or record a
run you are doing anyway with a :class:`Recorder` as its ``callback`` and pass
``steps=recorder.steps``. The slider only swaps stored states.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from .. import _checks, viz
from ..samplers import Step
from ._base import Explorer


class Recorder:
    """A sampler callback keeping every ``every``-th :class:`Step` (and the last), on the CPU in float32."""

    def __init__(self, every: int = 20, limit: int | None = None):
        self.every = _checks.positive_int("every", every)
        self.limit = limit  # keep only the first `limit` items of the batch
        self.steps: list[Step] = []
        self._last = None

    def __call__(self, step: Step) -> None:
        keep = (lambda x: None if x is None else x[: self.limit].detach().float().cpu().clone())
        rec = Step(step.i, step.t, keep(step.x), keep(step.x0))
        if step.i % self.every == 0:
            self.steps.append(rec)
            self._last = None
        else:
            self._last = rec

    def finish(self) -> list[Step]:
        """The kept steps, with the final one included."""
        if self._last is not None:
            self.steps.append(self._last)
            self._last = None
        return self.steps


class ReverseExplorer(Explorer):
    def __init__(self, steps: list[Step], *, x_T: torch.Tensor | None = None, lim: float = 2.5,
                 data: torch.Tensor | None = None, schedule=None):
        if not steps:
            raise ValueError("steps must hold at least one recorded sampler step")
        self.steps = list(steps)
        first = self.steps[0].x
        self.images = first.ndim == 4
        if not self.images and (first.ndim != 2 or first.shape[1] != 2):
            raise ValueError(f"the reverse explorer shows images (B, C, H, W) or 2-D points (B, 2), got states "
                             f"of shape {tuple(first.shape)}")
        self.x_T = x_T[: first.shape[0]].detach().float().cpu() if x_T is not None else None
        self.lim, self.schedule = lim, schedule
        self.data = data.detach().float().cpu().numpy() if data is not None else None
        slider = widgets.IntSlider(value=len(self.steps) - 1, min=0, max=len(self.steps) - 1,
                                   description="step", continuous_update=True)
        play = widgets.Play(value=len(self.steps) - 1, min=0, max=len(self.steps) - 1, interval=120)
        widgets.jslink((play, "value"), (slider, "value"))
        super().__init__({"k": slider}, figsize=(7.0, 3.6), extra=[play])

    def _label(self, k):
        s = self.steps[k]
        nxt = int(s.t) - 1
        extra = ""
        if self.schedule is not None and nxt >= 0:
            extra = f", signal {self.schedule.alpha_bars[nxt].sqrt().item():.2f}"
        return s, (f"x after step {s.i + 1} (now t={nxt}{extra})" if nxt >= 0 else f"x0: final sample (step {s.i + 1})")

    def build(self, fig):
        ax_x, ax_0 = fig.subplots(1, 2)
        s = self.steps[-1]
        if self.images:
            self.im_x = viz.image_grid(s.x, ax_x)
            self.im_0 = viz.image_grid(s.x0, ax_0)
        else:
            for ax in (ax_x, ax_0):
                if self.data is not None:
                    ax.scatter(self.data[:, 0], self.data[:, 1], s=1, color="0.8", linewidths=0)
                ax.set_xlim(-self.lim, self.lim)
                ax.set_ylim(-self.lim, self.lim)
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
            p = s.x.numpy()
            self.dots_x = ax_x.scatter(p[:, 0], p[:, 1], s=2, color="C0", linewidths=0)
            self.dots_0 = ax_0.scatter(p[:, 0], p[:, 1], s=2, color="C3", linewidths=0)
        self.title_x = ax_x.set_title("", fontsize="small")
        self.title_0 = ax_0.set_title("", fontsize="small")

    def update(self, k):
        s, label = self._label(k)
        x0 = s.x0 if s.x0 is not None else s.x
        if self.images:
            self.im_x.set_data(viz.grid_array(s.x))
            self.im_0.set_data(viz.grid_array(x0))
        else:
            self.dots_x.set_offsets(s.x.numpy())
            self.dots_0.set_offsets(np.clip(x0.numpy(), -self.lim * 1.5, self.lim * 1.5))
        self.title_x.set_text(label)
        self.title_0.set_text(f"predicted x0 at t={int(s.t)}")

    def static_states(self):
        n = len(self.steps)
        picks = sorted({0, n // 3, (2 * n) // 3, n - 1})
        return [{"k": k} for k in picks]


def reverse_explorer(model=None, schedule=None, x_T: torch.Tensor | None = None, *, steps: list[Step] | None = None,
                     every: int | None = None, variance: str = "beta", clip_x0=None, seed: int = 0,
                     data: torch.Tensor | None = None, lim: float = 2.5, progress: bool = True) -> ReverseExplorer:
    """Scrub the reverse process: x_t and the predicted x0, step by step.

    Either ``steps`` (from a :class:`Recorder` used as a sampler callback) or
    ``model, schedule, x_T`` (sampled here with ``variance``, ``clip_x0`` and a
    generator seeded with ``seed``; ``every``: keep every k-th step, default T/50).
    ``data``: for 2-D models, a point cloud drawn faintly behind the samples.
    """
    if steps is None:
        if model is None or schedule is None or x_T is None:
            raise ValueError("give either steps=recorder.steps, or model, schedule and x_T to sample from")
        from ..config import generator
        from ..samplers import sample_ancestral

        rec = Recorder(every or max(1, schedule.T // 50))
        sample_ancestral(model, x_T, schedule, variance=variance, clip_x0=clip_x0, generator=generator(seed),
                         callback=rec, progress=progress)
        steps = rec.finish()
    elif isinstance(steps, Recorder):
        steps = steps.finish()
    return ReverseExplorer(steps, x_T=x_T, lim=lim, data=data, schedule=schedule)
