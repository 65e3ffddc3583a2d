"""Explorer for fast samplers (Chapter 05): one evaluations slider, every sampler side by side.

:func:`sampler_explorer` runs each sampler of
:data:`ddlearn.samplers.compare.FAST_SAMPLERS` at every budget once, up front,
from the same starting noise, and keeps the results; the slider then only
swaps pictures. Row 1 is a 2-D model: the final samples and the paths of a
few points through the sampler's states. Row 2 (when an image model is given)
is a grid of generated digits.
"""
from __future__ import annotations

import ipywidgets as widgets
import torch

from .. import _checks, viz
from ..config import generator
from ..samplers.compare import FAST_SAMPLERS, run_at_budget
from ..schedules import Schedule
from ._base import Explorer


class SamplerExplorer(Explorer):
    def __init__(self, model2d, schedule2d, image_model=None, image_schedule=None, *, budgets=(4, 6, 10, 20, 50),
                 samplers=None, n_points=1000, n_paths=12, n_images=16, image_shape=(1, 16, 16), lim=2.0,
                 seed=0, progress=True):
        for name, s in (("schedule2d", schedule2d), ("image_schedule", image_schedule)):
            if s is not None and not isinstance(s, Schedule):
                raise TypeError(f"{name} must be a ddlearn Schedule, got {type(s).__name__}")
        if (image_model is None) != (image_schedule is None):
            raise ValueError("give image_model and image_schedule together (or neither)")
        self.budgets = sorted({_checks.positive_int("budgets", b) for b in budgets})  # 2.7 is no budget
        if not self.budgets:
            raise ValueError("budgets must hold at least one number of model evaluations")
        self.names = list(samplers or FAST_SAMPLERS)
        for n in self.names:
            _checks.choice("sampler", n, tuple(FAST_SAMPLERS))
        _checks.positive_int("n_points", n_points)
        _checks.positive_int("n_paths", n_paths)
        self.lim, self.n_paths = lim, min(n_paths, n_points)
        self.has_images = image_model is not None
        g = generator(seed)
        x_T = torch.randn(n_points, 2, generator=g)
        img_T = torch.randn(n_images, *image_shape, generator=g) if self.has_images else None
        jobs = [(b, n) for b in self.budgets for n in self.names]
        from tqdm.auto import tqdm

        self.points, self.paths, self.images, self.nfe = {}, {}, {}, {}
        for b, n in (tqdm(jobs, desc="sampling", leave=False) if progress else jobs):
            states = [x_T[: self.n_paths]]
            x, nfe = run_at_budget(n, model2d, x_T, schedule2d, b,
                                   callback=lambda s: states.append(s.x[: self.n_paths].float()))
            self.points[b, n], self.nfe[b, n] = x.float().numpy(), nfe
            self.paths[b, n] = torch.stack(states, 1).numpy()  # (paths, steps + 1, 2)
            if self.has_images:
                self.images[b, n] = run_at_budget(n, image_model, img_T, image_schedule, b)[0].clamp(-1, 1)
        nfe = widgets.SelectionSlider(options=self.budgets, value=10 if 10 in self.budgets else self.budgets[0],
                                      description="evaluations", continuous_update=True)
        rows = 2 if self.has_images else 1
        super().__init__({"nfe": nfe}, figsize=(2.0 * len(self.names), 2.1 * rows + 0.3))

    def build(self, fig):
        rows = 2 if self.has_images else 1
        axes = fig.subplots(rows, len(self.names), squeeze=False)
        self.dots, self.lines, self.titles, self.ims = [], [], [], []
        b0 = self.budgets[0]
        for j, name in enumerate(self.names):
            ax = axes[0, j]
            p = self.points[b0, name]
            (dots,) = ax.plot(p[:, 0], p[:, 1], ".", ms=1.5, alpha=0.4, mew=0, color="C0")
            lines = [ax.plot([], [], "-", lw=0.7, color="C3", alpha=0.8)[0] for _ in range(self.n_paths)]
            ax.set_xlim(-self.lim, self.lim)
            ax.set_ylim(-self.lim, self.lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            self.titles.append(ax.set_title(name, fontsize="small"))
            self.dots.append(dots)
            self.lines.append(lines)
            if self.has_images:
                self.ims.append(viz.image_grid(self.images[b0, name], axes[1, j]))

    def update(self, nfe):
        for j, name in enumerate(self.names):
            p = self.points[nfe, name]
            self.dots[j].set_data(p[:, 0], p[:, 1])
            for line, path in zip(self.lines[j], self.paths[nfe, name]):
                line.set_data(path[:, 0], path[:, 1])
            self.titles[j].set_text(f"{name}\n{self.nfe[nfe, name]} evaluations")
            if self.has_images:
                self.ims[j].set_data(viz.grid_array(self.images[nfe, name]))

    def static_states(self):
        picks = [b for b in (4, 10, 50) if b in self.budgets] or [self.budgets[0], self.budgets[-1]]
        return [{"nfe": b} for b in picks]


def sampler_explorer(model2d, schedule2d, image_model=None, image_schedule=None, **kwargs) -> SamplerExplorer:
    """Every fast sampler side by side at a chosen number of model evaluations (2-D model, optional digits).

    ``budgets``: the evaluation counts the slider offers (each sampled up front);
    ``samplers``: names from ``FAST_SAMPLERS`` (default all); ``n_points``,
    ``n_paths``, ``n_images``: how much to draw; ``seed``: the starting noise.
    """
    return SamplerExplorer(model2d, schedule2d, image_model, image_schedule, **kwargs)
