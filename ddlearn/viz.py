"""Plots used across the book.

Every function draws into a Matplotlib ``Axes`` you pass (``ax=``) or makes a
new figure, and returns what it drew, so the widgets in
:mod:`ddlearn.widgets` can build a figure once and then only update the
artists (``set_data``, ``set_offsets``) on each slider step.

* :func:`grid_array` / :func:`image_grid` - a batch ``(B, C, H, W)`` in [-1, 1]
  as one tiled picture (values outside [-1, 1] are clipped for display).
* :func:`scatter` - a 2-D point cloud ``(N, 2)``.
* :func:`schedule_curves` - alpha-bar or log-SNR against t for several schedules.
* :func:`hist_vs_normal` - a histogram of values against the N(0, 1) density.
* :func:`fig_to_png` - a figure as PNG bytes (what ``ipywidgets.Image`` shows).
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch

from . import _checks


def _new_axes(ax, figsize):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    # A bare Figure (not pyplot): no global state, nothing shown twice in a notebook.
    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def new_figure(figsize=(6, 4), dpi=100):
    """A Matplotlib ``Figure`` outside pyplot (rendered with Agg; displays as a PNG in Jupyter)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fig_to_png(fig, *, compress_level: int = 1, colors: int | None = None) -> bytes:
    """Render ``fig`` with Agg and return PNG bytes (RGB, no alpha).

    ``compress_level=1`` trades a slightly larger file for a much faster encode,
    which is what a slider redraw needs. ``colors=256`` quantizes to a palette:
    a several-times smaller file for pictures stored inside a notebook.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    if colors is not None:
        img = img.quantize(colors=colors)
    buf = io.BytesIO()
    img.save(buf, format="png", compress_level=compress_level)
    return buf.getvalue()


def grid_array(x: torch.Tensor, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile a batch ``(B, C, H, W)`` in [-1, 1] into one array ``(H', W')`` or ``(H', W', 3)`` in [0, 1].

    ``nrow`` is the number of images per row (default: about square). Gaps of
    ``pad`` pixels are white.
    """
    _checks.tensor("x", x, ndim=4, finite=False)
    b, c, h, w = x.shape
    if c not in (1, 3):
        raise ValueError(f"x must have 1 or 3 channels to be shown as an image, got shape {tuple(x.shape)}")
    nrow = math.ceil(math.sqrt(b)) if nrow is None else _checks.positive_int("nrow", nrow)
    _checks.positive_int("pad", pad, minimum=0)
    ncol_rows = math.ceil(b / nrow)
    img = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    out = np.ones((ncol_rows * (h + pad) - pad, nrow * (w + pad) - pad, c), dtype=np.float32)
    for i in range(b):
        r, k = divmod(i, nrow)
        out[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = img[i].transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def image_grid(x: torch.Tensor, ax=None, *, nrow: int | None = None, title: str | None = None,
               figsize=(4, 4)):
    """Show a batch of images (``(B, C, H, W)`` in [-1, 1]) as one grid; returns the ``AxesImage``."""
    ax = _new_axes(ax, figsize)
    arr = grid_array(x, nrow)
    im = ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return im


def scatter(points: torch.Tensor, ax=None, *, lim: float | None = 3.0, s: float = 2.0, title: str | None = None,
            figsize=(4, 4), **kwargs):
    """Scatter a point cloud ``(N, 2)``; ``lim`` fixes both axes to [-lim, lim]. Returns the collection."""
    _checks.tensor("points", points, ndim=2, finite=False)
    if points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {tuple(points.shape)}")
    ax = _new_axes(ax, figsize)
    p = points.detach().float().cpu().numpy()
    kwargs.setdefault("alpha", 0.6)
    kwargs.setdefault("linewidths", 0)
    coll = ax.scatter(p[:, 0], p[:, 1], s=s, **kwargs)
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return coll


def estimates_vs_truth(trajectory: torch.Tensor, truth: torch.Tensor, ax=None, *, ylabel: str = "estimate",
                       title: str | None = None, figsize=(5.5, 3.2)):
    """Parameters estimated along a run, one line per item, each with its true value dotted in the same colour.

    ``trajectory`` is ``(steps, B)`` (the estimate of each of B items after each step), ``truth`` ``(B,)``.
    Returns the axes.
    """
    _checks.tensor("trajectory", trajectory, ndim=2, finite=False)
    _checks.tensor("truth", truth, ndim=1, finite=False)
    if trajectory.shape[1] != truth.shape[0]:
        raise ValueError(f"trajectory has {trajectory.shape[1]} items per step and truth {truth.shape[0]}; "
                         "they must match (trajectory is (steps, B), truth (B,))")
    ax = _new_axes(ax, figsize)
    traj = trajectory.detach().float().cpu().numpy()
    for b, value in enumerate(truth.detach().float().cpu().tolist()):
        ax.plot(traj[:, b], color=f"C{b % 10}")
        ax.axhline(value, color=f"C{b % 10}", ls=":", lw=1)
    ax.set_xlabel("sampling step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize="small")
    return ax


_CURVES = {
    "alpha_bar": (lambda s: s.alpha_bars, r"$\bar\alpha_t$"),
    "sqrt_alpha_bar": (lambda s: s.alpha_bars.sqrt(), r"$\sqrt{\bar\alpha_t}$ (signal scale)"),
    "log_snr": (lambda s: s.log_snr, r"$\log \mathrm{SNR}_t = \log \bar\alpha_t/(1-\bar\alpha_t)$"),
    "snr": (lambda s: s.snr, r"$\mathrm{SNR}_t$"),
    "beta": (lambda s: s.betas, r"$\beta_t$"),
}


def schedule_curves(schedules, ax=None, *, which: str = "alpha_bar", figsize=(5, 3.5), legend: bool = True):
    """Plot one quantity (``"alpha_bar"``, ``"sqrt_alpha_bar"``, ``"log_snr"``, ``"snr"``, ``"beta"``)
    against t for one schedule or a list of them. Returns ``{schedule name: Line2D}``."""
    from .schedules import Schedule

    _checks.choice("which", which, tuple(_CURVES))
    if isinstance(schedules, Schedule):
        schedules = [schedules]
    ax = _new_axes(ax, figsize)
    fn, label = _CURVES[which]
    lines = {}
    for sch in schedules:
        if not isinstance(sch, Schedule):
            raise TypeError(f"schedules must be Schedule objects, got {type(sch).__name__}")
        (lines[sch.name],) = ax.plot(np.arange(sch.T), fn(sch).numpy(), label=sch.name)
    ax.set_xlabel("t")
    ax.set_ylabel(label)
    if which == "snr":
        ax.set_yscale("log")
    if legend and len(lines) > 1:
        ax.legend(fontsize="small")
    return lines


def normal_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi)


def hist_vs_normal(values, ax=None, *, bins: int = 60, range_: tuple[float, float] = (-4.0, 4.0),
                   figsize=(4, 3), title: str | None = None):
    """Density histogram of ``values`` (any shape) with the N(0, 1) density on top.

    Returns ``(step_patch, edges)``; update it with
    ``step_patch.set_data(density(new_values, edges))``.
    """
    _checks.positive_int("bins", bins)
    v = torch.as_tensor(values).detach().float().cpu().reshape(-1).numpy()
    ax = _new_axes(ax, figsize)
    edges = np.linspace(*range_, bins + 1)
    patch = ax.stairs(density(v, edges), edges, fill=True, alpha=0.6, label="values")
    z = np.linspace(*range_, 200)
    ax.plot(z, normal_pdf(z), "k--", lw=1, label="N(0, 1)")
    ax.set_xlim(*range_)
    if title:
        ax.set_title(title)
    return patch, edges


def density(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram heights normalised by the count of *all* values (so clipped mass shows as missing)."""
    heights, _ = np.histogram(values, edges)
    return heights / max(values.size, 1) / np.diff(edges)
