r"""Explorer for GDP restoration (Chapter 07): pick a task, a guidance scale and a number of steps.

:func:`restoration_explorer` shows, for a few images, the truth, what was
measured, the classical baseline and the GDP-x0 restoration; a control change
redraws the row with the restoration for that setting (computed once, then
cached, so moving back is instant). The static fallback shows a few
settings. The same starting noise is used for every setting, so the picture
shows what the scale and the number of steps alone change.
"""
from __future__ import annotations

import ipywidgets as widgets
import torch

from .. import _checks, viz
from ..config import generator
from ..restoration.tasks import TASKS, make_task, restore
from ._base import Explorer


def _shown_measurement(task) -> torch.Tensor:
    """y as a picture of x's shape: upsampled (SR), gray copies (colorization), else y itself."""
    y, x = task.y, task.x
    if y.shape[-1] != x.shape[-1]:
        y = torch.nn.functional.interpolate(y, size=x.shape[-2:], mode="nearest")
    if y.shape[1] != x.shape[1]:
        y = y.expand(-1, x.shape[1], -1, -1)
    return y


class RestorationExplorer(Explorer):
    """Task, guidance scale and steps pickers over a prior; rows: truth | measured | baseline | GDP-x0."""

    def __init__(self, model, schedule, x: torch.Tensor, *, tasks=("sr4", "inpaint_box", "lowlight"),
                 scales=(0.0, 0.1, 0.3, 1.0), steps=(10, 25, 50), method: str = "GDP-x0", seed: int = 0):
        _checks.tensor("x", x, ndim=4)
        for t in tasks:
            _checks.choice("task", t, TASKS)
        if not tasks or not scales or not steps:
            raise ValueError("tasks, scales and steps must each offer at least one value")
        self.model, self.schedule, self.x = model, schedule, x.float()
        self.method, self.seed, self.cache, self.tasks = method, seed, {}, {}
        for t in tasks:
            self.tasks[t] = make_task(t, self.x, generator=generator(seed))
        scales = [float(_checks.number("scale", s, low=0)) for s in scales]
        steps = [_checks.positive_int("steps", s) for s in steps]
        controls = {
            "task": widgets.Dropdown(options=list(tasks), value=tasks[0], description="task"),
            "scale": widgets.SelectionSlider(options=scales, value=scales[min(2, len(scales) - 1)],
                                             description="scale"),
            "steps": widgets.SelectionSlider(options=steps, value=steps[-1], description="steps"),
        }
        n = x.shape[0]
        super().__init__(controls, figsize=(1.15 * n + 0.4, 4.9))

    def result(self, task: str, scale: float, steps: int) -> torch.Tensor:
        key = (task, scale, steps)
        if key not in self.cache:
            tk = self.tasks[task]
            out, _ = restore(self.method, self.model, self.schedule, tk, steps=steps, k=1,
                             generator=generator(self.seed + 1), scale=scale)
            self.cache[key] = out[:, 0].clamp(-1, 1)
        return self.cache[key]

    def rows(self, task: str, scale: float, steps: int) -> torch.Tensor:
        tk = self.tasks[task]
        baseline = next(iter(tk.baselines().values()))
        rows = [tk.x, _shown_measurement(tk), baseline, self.result(task, scale, steps)]
        return torch.cat([r.clamp(-1, 1) for r in rows])

    def build(self, fig):
        ax = fig.add_subplot()
        n = self.x.shape[0]
        self.im = viz.image_grid(torch.zeros(4 * n, *self.x.shape[1:]), ax, nrow=n)
        for k, label in enumerate(["truth", "measured", "baseline", self.method]):
            ax.text(-1.5, (k + 0.5) * (self.x.shape[-2] + 1), label, ha="right", va="center", fontsize="small")
        self.title = ax.set_title("", fontsize="small")

    def update(self, task, scale, steps):
        n = self.x.shape[0]
        self.im.set_data(viz.grid_array(self.rows(task, scale, steps), n))
        name = next(iter(self.tasks[task].baselines()))
        self.title.set_text(f"{task}: baseline {name}, {self.method} scale {scale:g}, {steps} steps")

    def static_states(self):
        tasks = list(self.controls["task"].options)
        scales = list(self.controls["scale"].options)
        return [{"task": tasks[0], "scale": scales[0]}, {"task": tasks[0], "scale": scales[-1]}] + \
            [{"task": t} for t in tasks[1:2]]


def restoration_explorer(model, schedule, x, **kw) -> RestorationExplorer:
    """Task, scale and steps pickers that redraw a GDP restoration (see :class:`RestorationExplorer`)."""
    return RestorationExplorer(model, schedule, x, **kw)
