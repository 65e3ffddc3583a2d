r"""Explorer for flow matching (Chapter 10): scrub u, watch the velocity field and the samples move.

:func:`flow_explorer` takes one or more velocity models on a flow path (a trained flow-matching model, the
exact velocity of a Gaussian mixture, a reflowed model, ...), integrates the flow ODE
:math:`dx/du = v(x, u)` from the *same* noise with Euler (:func:`ddlearn.samplers.sample_flow`), and
evaluates every field on a grid at each u the solver visits: all once, up front. The slider over u then
only swaps arrays. Each panel shows

* arrows: where the field moves a point over the next ``arrow_du`` of u, towards the data
  (:math:`-v\,\Delta u`, to scale: the sampler runs u from 1 down to 0);
* the cloud of points :math:`x_u`, and the paths of a few of them so far (red).

Straight, evenly travelled paths are what few Euler steps integrate well; the explorer shows where a
field's paths bend.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from .. import _checks
from ..samplers.flow import flow_grid, sample_flow
from ._base import Explorer


def _check_models(models) -> dict:
    if callable(models) and not isinstance(models, dict):
        models = {"model": models}
    if not isinstance(models, dict):
        raise TypeError(f"models must be a velocity model or a dict name -> model, got {type(models).__name__}")
    if not models:
        raise ValueError("models is empty: give at least one velocity model (name -> model(x, t))")
    for name, m in models.items():
        if not isinstance(name, str):
            raise TypeError(f"models' names must be strings, got {type(name).__name__}")
        if not callable(m):
            raise TypeError(f"models[{name!r}] must be callable as model(x_u, t) -> velocity, got {type(m).__name__}")
    return dict(models)


class FlowExplorer(Explorer):
    """Velocity fields and Euler paths of flow-matching models, side by side, scrubbed over u."""

    def __init__(self, models, path, *, steps: int = 20, n_points: int = 500, n_trails: int = 10,
                 n_grid: int = 15, lim: float = 2.5, arrow_du: float = 0.1, seed: int = 0, data=None):
        self.models = _check_models(models)
        if not callable(getattr(path, "coef_derivs", None)):
            raise TypeError(f"path must be a flow path (ddlearn.flow.FlowPath), got {type(path).__name__}")
        self.steps = _checks.positive_int("steps", steps)
        _checks.positive_int("n_points", n_points, minimum=2)
        self.n_trails = min(_checks.positive_int("n_trails", n_trails, minimum=0), n_points)
        _checks.positive_int("n_grid", n_grid, minimum=2)
        self.lim = _checks.number("lim", lim, low=0, low_open=True)
        self.arrow_du = _checks.number("arrow_du", arrow_du, low=0, low_open=True)
        if data is not None:
            _checks.tensor("data", data, ndim=2)
            if data.shape[1] != 2:
                raise ValueError(f"data must be 2-D points (N, 2), got shape {tuple(data.shape)}")
            data = data.detach().double().numpy()
        self.data, self.path = data, path
        self.us = flow_grid(self.steps).tolist()                      # 1 -> 0, steps + 1 values
        axis = torch.linspace(-self.lim, self.lim, n_grid)
        gx, gy = torch.meshgrid(axis, axis, indexing="xy")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)       # float32, as networks expect
        self.gx, self.gy = gx.numpy(), gy.numpy()
        x_T = torch.randn(n_points, 2, generator=torch.Generator().manual_seed(seed))
        self.x_T = x_T
        self.states, self.fields = {}, {}
        with torch.no_grad():
            for name, model in self.models.items():
                kept = [x_T]
                sample_flow(model, x_T, path, self.steps, progress=False, callback=lambda s, kept=kept: kept.append(s.x))
                self.states[name] = torch.stack(kept).double().numpy()  # (steps + 1, n_points, 2)
                self.fields[name] = np.stack([
                    model(grid, torch.full((grid.shape[0],), u * (path.T - 1))).double().numpy() for u in self.us])
        u_slider = widgets.SelectionSlider(options=[(f"{u:.2f}", k) for k, u in enumerate(self.us)], value=0,
                                           description="u", continuous_update=True)
        play = widgets.Play(value=0, min=0, max=self.steps, interval=200)
        widgets.jslink((play, "value"), (u_slider, "index"))
        super().__init__({"step": u_slider}, figsize=(3.6 * len(self.models), 3.8), extra=[play])

    def build(self, fig):
        axes = fig.subplots(1, len(self.models), squeeze=False)[0]
        self.artists = {}
        zero = np.zeros_like(self.gx)
        for ax, name in zip(axes, self.models):
            if self.data is not None:
                ax.plot(self.data[:, 0], self.data[:, 1], ".", ms=1.5, color="0.8", zorder=0)
            arrows = ax.quiver(self.gx, self.gy, zero, zero, angles="xy", scale_units="xy", scale=1.0,
                               color="0.55", width=0.004)
            (points,) = ax.plot([], [], ".", ms=3.5, alpha=0.6, mew=0, color="C0")
            trails = [ax.plot([], [], "-", lw=0.8, color="tab:red", alpha=0.7)[0] for _ in range(self.n_trails)]
            ax.set_xlim(-self.lim, self.lim)
            ax.set_ylim(-self.lim, self.lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize="x-small")
            title = ax.set_title(name, fontsize="small")
            self.artists[name] = (arrows, points, trails, title)

    def update(self, step):
        u = self.us[step]
        for name in self.models:
            arrows, points, trails, title = self.artists[name]
            move = -self.fields[name][step] * self.arrow_du              # where a point goes over the next du
            arrows.set_UVC(move[:, 0].reshape(self.gx.shape), move[:, 1].reshape(self.gx.shape))
            x = self.states[name][step]
            points.set_data(x[:, 0], x[:, 1])
            for k, line in enumerate(trails):
                line.set_data(self.states[name][: step + 1, k, 0], self.states[name][: step + 1, k, 1])
            title.set_text(f"{name}: u = {u:.2f}")

    def static_states(self):
        return [{"step": k} for k in sorted({0, self.steps // 2, self.steps})]


def flow_explorer(models, path, **kwargs) -> FlowExplorer:
    """Scrub u from 1 (noise) to 0 (data): each model's velocity field and its Euler paths from the same noise.

    ``models``: a velocity model ``model(x_u, t) -> v`` on ``path`` (a :class:`~ddlearn.flow.FlowPath`), or a
    dict ``{name: model}`` shown side by side. Options: ``steps`` (Euler steps, the slider's positions),
    ``n_points``, ``n_trails`` (paths drawn in red), ``n_grid`` (arrows per side), ``lim`` (axis range),
    ``arrow_du`` (an arrow is the move over that much u), ``seed`` (the starting noise), ``data`` (points
    drawn grey).
    """
    return FlowExplorer(models, path, **kwargs)


__all__ = ["FlowExplorer", "flow_explorer"]
