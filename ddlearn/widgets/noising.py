r"""Explorers for the forward process (Chapter 01).

* :func:`noising_explorer` - slide t and watch x_t ~ q(x_t | x_0) for a batch of
  images or a 2-D point cloud, the histogram of its values against N(0, 1),
  and where t sits on the alpha-bar and log-SNR curves.
* :func:`schedule_explorer` - several schedules side by side on the same data
  and the same noise at the same t, with their alpha-bar curves.

The noise eps is drawn once per explorer from a seeded generator, so moving the
slider shows the *same* noise growing as :math:`x_t = \sqrt{\bar\alpha_t}x_0 +
\sqrt{1-\bar\alpha_t}\,\epsilon` moves from the data to pure noise.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import torch

from .. import _checks, viz
from ..config import generator
from ..forward import q_sample
from ..schedules import Schedule, get
from ._base import Explorer

HIST_RANGE = (-4.0, 4.0)


class _DataView:
    """x_t drawn as an image grid (4-D input) or a scatter plot (2-D input); built once, updated in place."""

    def __init__(self, x: torch.Tensor, nrow: int | None = None, lim: float = 3.5):
        self.is_image = x.ndim == 4
        self.nrow, self.lim = nrow, lim

    def build(self, ax, x: torch.Tensor):
        if self.is_image:
            self.artist = viz.image_grid(x, ax, nrow=self.nrow)
        else:
            # Line2D markers draw several times faster than a scatter PathCollection
            p = x.detach().float().cpu().numpy()
            (self.artist,) = ax.plot(p[:, 0], p[:, 1], ".", ms=2.5, alpha=0.5, mew=0)
            ax.set_xlim(-self.lim, self.lim)
            ax.set_ylim(-self.lim, self.lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize="x-small")
        return self.artist

    def update(self, x: torch.Tensor):
        if self.is_image:
            self.artist.set_data(viz.grid_array(x, self.nrow))
        else:
            p = x.detach().float().cpu().numpy()
            self.artist.set_data(p[:, 0], p[:, 1])


def _check_data(x0) -> torch.Tensor:
    _checks.tensor("x0", x0, ndim=(2, 3, 4))
    if x0.ndim == 3:  # one image (C, H, W)
        x0 = x0.unsqueeze(0)
    if x0.ndim == 2 and x0.shape[1] != 2:
        raise ValueError(f"x0 must be images (B, C, H, W) or a 2-D point cloud (N, 2), got shape {tuple(x0.shape)}")
    if x0.ndim == 4 and x0.shape[1] not in (1, 3):
        raise ValueError(f"x0 images must have 1 or 3 channels, got shape {tuple(x0.shape)}")
    return x0.detach().float().cpu()


def _schedule(s) -> Schedule:
    if isinstance(s, str):
        return get(s)
    if not isinstance(s, Schedule):
        raise TypeError(f"schedule must be a Schedule or a name such as 'cosine', got {type(s).__name__}")
    return s


def _default_static_t(T: int, n: int = 5) -> list[int]:
    """``n`` evenly spaced steps from 0 to T-1 (the same t for every schedule)."""
    return sorted({round(f * (T - 1)) for f in np.linspace(0, 1, n)})


SIGNAL_LEVELS = (0.99, 0.95, 0.8, 0.5, 0.2)


def _signal_static_t(schedule: Schedule, levels=SIGNAL_LEVELS) -> list[int]:
    """t = 0, the first t at which the signal scale sqrt(alpha_bar_t) drops below each level, and T-1.

    Spacing by signal left rather than by t shows every stage of the noising,
    whatever the schedule (a linear schedule spends its last half near pure noise).
    """
    scale = schedule.alpha_bars.sqrt()
    ts = {0, schedule.T - 1}
    for level in levels:
        below = (scale < level).nonzero()
        if len(below):
            ts.add(int(below[0]))
    return sorted(ts)


def _t_controls(T: int, t: int, play_steps: int = 60):
    slider = widgets.IntSlider(value=t, min=0, max=T - 1, step=1, description="t",
                               continuous_update=True, layout=widgets.Layout(width="420px"))
    play = widgets.Play(value=t, min=0, max=T - 1, step=max(1, T // play_steps), interval=200,
                        description="play")
    widgets.jslink((play, "value"), (slider, "value"))  # browser-side link: smooth playback
    return slider, play


class NoisingExplorer(Explorer):
    """See :func:`noising_explorer`."""

    def __init__(self, x0, schedule, *, t: int = 0, seed: int = 0, max_images: int = 16, nrow=None,
                 static_t=None, bins: int = 60, dpi: int = 80):
        x0 = _check_data(x0)
        self.schedule = _schedule(schedule)
        T = self.schedule.T
        _checks.positive_int("max_images", max_images)
        _checks.positive_int("bins", bins)
        _checks.timesteps("t", t, T, integer=True)
        self.x0 = x0[:max_images] if x0.ndim == 4 else x0
        self.noise = torch.randn(self.x0.shape, generator=generator(seed))  # fixed: the same noise grows
        self.view = _DataView(self.x0, nrow)
        self.edges = np.linspace(*HIST_RANGE, bins + 1)
        self.static_t = _signal_static_t(self.schedule) if static_t is None else [int(s) for s in static_t]
        _checks.timesteps("static_t", torch.tensor(self.static_t, dtype=torch.float64), T, integer=True)
        slider, play = _t_controls(T, int(t))
        super().__init__({"t": slider}, extra=[play], figsize=(10, 3.2), dpi=dpi)

    def x_t(self, t: int) -> torch.Tensor:
        return q_sample(self.x0, int(t), self.noise, self.schedule)

    def build(self, fig):
        gs = fig.add_gridspec(2, 3, width_ratios=[1.25, 1, 1])
        self.ax_data = fig.add_subplot(gs[:, 0])
        self.ax_hist = fig.add_subplot(gs[:, 1])
        self.ax_ab = fig.add_subplot(gs[0, 2])
        self.ax_snr = fig.add_subplot(gs[1, 2], sharex=self.ax_ab)
        self.view.build(self.ax_data, self.x0)
        self.hist, _ = viz.hist_vs_normal(self.x0, self.ax_hist, bins=len(self.edges) - 1, range_=HIST_RANGE)
        self.ax_hist.set_ylim(0, 1.0)
        self.ax_hist.set_title("values of $x_t$ vs N(0, 1)", fontsize="small")
        self.ax_hist.tick_params(labelsize="x-small")
        ts = np.arange(self.schedule.T)
        ab, lsnr = self.schedule.alpha_bars.numpy(), self.schedule.log_snr.numpy()
        self.ax_ab.plot(ts, ab, lw=1.2)
        self.ax_ab.set_ylabel(r"$\bar\alpha_t$", fontsize="small")
        self.ax_snr.plot(ts, lsnr, lw=1.2, color="C1")
        self.ax_snr.set_ylabel("log SNR", fontsize="small")
        self.ax_snr.set_xlabel("t", fontsize="small")
        self.ax_snr.axhline(0, color="gray", lw=0.5)
        for ax in (self.ax_ab, self.ax_snr):
            ax.tick_params(labelsize="x-small")
        (self.mark_ab,) = self.ax_ab.plot([0], [ab[0]], "o", color="k", ms=5)
        (self.mark_snr,) = self.ax_snr.plot([0], [lsnr[0]], "o", color="k", ms=5)
        self.vline_ab = self.ax_ab.axvline(0, color="k", lw=0.6)
        self.vline_snr = self.ax_snr.axvline(0, color="k", lw=0.6)
        self.title = self.ax_data.set_title("", fontsize="small")

    def update(self, t):
        t = int(t)
        x = self.x_t(t)
        self.view.update(x)
        self.hist.set_data(viz.density(x.numpy().reshape(-1), self.edges))
        ab, lsnr = float(self.schedule.alpha_bars[t]), float(self.schedule.log_snr[t])
        self.mark_ab.set_data([t], [ab])
        self.mark_snr.set_data([t], [lsnr])
        self.vline_ab.set_xdata([t, t])
        self.vline_snr.set_xdata([t, t])
        # plain text, not mathtext: a changing mathtext string is re-parsed on every draw (~30 ms)
        self.title.set_text(f"t={t}   signal √ᾱ={math.sqrt(ab):.3f}   noise √(1-ᾱ)={math.sqrt(1 - ab):.3f}")

    def static_states(self):
        return [{"t": t} for t in self.static_t]

    def static(self):
        """Compact strip: x_t and its histogram at each of ``static_t``, and the curves with every t marked."""
        ts = self.static_t
        k = len(ts)
        fig = viz.new_figure(figsize=(1.9 * k + 2.6, 4.0), dpi=self.fig.dpi)
        gs = fig.add_gridspec(2, k + 1, height_ratios=[1.3, 1], width_ratios=[1] * k + [1.4])
        for i, t in enumerate(ts):
            x = self.x_t(t)
            ax = fig.add_subplot(gs[0, i])
            _DataView(x, self.view.nrow).build(ax, x)  # a fresh view: the live one keeps its artist
            ax.tick_params(labelsize="xx-small")
            ab = float(self.schedule.alpha_bars[t])
            ax.set_title(f"t={t}\n" + r"$\sqrt{\bar\alpha}$" + f"={math.sqrt(ab):.2f}", fontsize="small")
            axh = fig.add_subplot(gs[1, i])
            viz.hist_vs_normal(x, axh, bins=len(self.edges) - 1, range_=HIST_RANGE)
            axh.set_ylim(0, 1.0)
            axh.tick_params(labelsize="xx-small")
        axc = fig.add_subplot(gs[:, k])
        sab = self.schedule.alpha_bars.numpy()
        axc.plot(np.arange(self.schedule.T), sab, label=r"$\bar\alpha_t$")
        axc.plot(ts, sab[ts], "ko", ms=4)
        axc.set_xlabel("t", fontsize="small")
        axc.set_title(f"{self.schedule.name}: " + r"$\bar\alpha_t$", fontsize="small")
        axc.tick_params(labelsize="x-small")
        return fig


def noising_explorer(x0: torch.Tensor, schedule="linear", *, t: int = 0, seed: int = 0, max_images: int = 16,
                     nrow=None, static_t=None, bins: int = 60, dpi: int = 80) -> NoisingExplorer:
    r"""Slide t to noise ``x0`` with :math:`q(x_t \mid x_0)`.

    ``x0``: images ``(B, C, H, W)`` (at most ``max_images`` shown) or one image
    ``(C, H, W)`` in [-1, 1], or a point cloud ``(N, 2)``. ``schedule``: a
    :class:`~ddlearn.schedules.Schedule` or a name. The noise is fixed by
    ``seed``. The static picture shows the steps ``static_t`` (default: t = 0,
    T-1 and the first t where the signal scale sqrt(alpha_bar_t) falls below
    0.99, 0.95, 0.8, 0.5 and 0.2). Values of x_t outside [-1, 1] are clipped for display only.
    """
    return NoisingExplorer(x0, schedule, t=t, seed=seed, max_images=max_images, nrow=nrow,
                           static_t=static_t, bins=bins, dpi=dpi)


class ScheduleExplorer(Explorer):
    """See :func:`schedule_explorer`."""

    def __init__(self, x0, schedules=("linear", "cosine", "sigmoid"), *, t: int | None = None, seed: int = 0,
                 static_t=None, dpi: int = 80):
        x0 = _check_data(x0)
        self.x0 = x0[:1] if x0.ndim == 4 else x0
        if isinstance(schedules, (str, Schedule)):
            schedules = [schedules]
        self.schedules = [_schedule(s) for s in schedules]
        if not self.schedules:
            raise ValueError("schedules must name at least one schedule")
        Ts = {s.T for s in self.schedules}
        if len(Ts) != 1:
            raise ValueError(f"schedules must share the same T to compare at the same t, got T values {sorted(Ts)}")
        T = Ts.pop()
        t = T // 2 if t is None else t
        _checks.timesteps("t", t, T, integer=True)
        self.noise = torch.randn(self.x0.shape, generator=generator(seed))
        self.static_t = _default_static_t(T) if static_t is None else [int(s) for s in static_t]
        _checks.timesteps("static_t", torch.tensor(self.static_t, dtype=torch.float64), T, integer=True)
        slider, play = _t_controls(T, int(t))
        n = len(self.schedules)
        super().__init__({"t": slider}, extra=[play], figsize=(2.6 * n + 3.4, 3.0), dpi=dpi)

    def x_t(self, schedule: Schedule, t: int) -> torch.Tensor:
        return q_sample(self.x0, int(t), self.noise, schedule)

    def build(self, fig):
        n = len(self.schedules)
        gs = fig.add_gridspec(1, n + 1, width_ratios=[1] * n + [1.4])
        self.views, self.titles = [], []
        for i, s in enumerate(self.schedules):
            ax = fig.add_subplot(gs[0, i])
            view = _DataView(self.x0)
            view.build(ax, self.x0)
            self.views.append(view)
            self.titles.append(ax.set_title(s.name, fontsize="small"))
        self.ax_curves = fig.add_subplot(gs[0, n])
        lines = viz.schedule_curves(self.schedules, self.ax_curves, which="alpha_bar")
        self.marks = {}
        for s in self.schedules:
            (self.marks[s.name],) = self.ax_curves.plot([0], [1.0], "o", color=lines[s.name].get_color(), ms=5)
        self.vline = self.ax_curves.axvline(0, color="k", lw=0.6)
        self.ax_curves.tick_params(labelsize="x-small")

    def update(self, t):
        t = int(t)
        for s, view, title in zip(self.schedules, self.views, self.titles):
            view.update(self.x_t(s, t))
            ab = float(s.alpha_bars[t])
            title.set_text(f"{s.name}\n√ᾱ={math.sqrt(ab):.3f}  log SNR={float(s.log_snr[t]):.1f}")
            self.marks[s.name].set_data([t], [ab])
        self.vline.set_xdata([t, t])

    def static_states(self):
        return [{"t": t} for t in self.static_t]

    def static(self):
        """Grid: one row per schedule, one column per t in ``static_t``; alpha-bar curves on the right."""
        ts, n, k = self.static_t, len(self.schedules), len(self.static_t)
        fig = viz.new_figure(figsize=(1.7 * k + 3.0, 1.8 * n + 0.4), dpi=self.fig.dpi)
        gs = fig.add_gridspec(n, k + 1, width_ratios=[1] * k + [2.0])
        for r, s in enumerate(self.schedules):
            for c, t in enumerate(ts):
                ax = fig.add_subplot(gs[r, c])
                _DataView(self.x0).build(ax, self.x_t(s, t))
                ab = float(s.alpha_bars[t])
                ax.set_title((f"t={t}\n" if r == 0 else "") + r"$\sqrt{\bar\alpha}$" + f"={math.sqrt(ab):.2f}",
                             fontsize="x-small")
                if c == 0:
                    ax.text(-0.08, 0.5, s.name, transform=ax.transAxes, rotation=90, ha="right", va="center",
                            fontsize="small")
        axc = fig.add_subplot(gs[:, k])
        lines = viz.schedule_curves(self.schedules, axc, which="alpha_bar")
        for s in self.schedules:
            axc.plot(ts, s.alpha_bars.numpy()[ts], "o", color=lines[s.name].get_color(), ms=3)
        axc.tick_params(labelsize="x-small")
        return fig


def schedule_explorer(x0_image: torch.Tensor, schedules=("linear", "cosine", "sigmoid"), *, t: int | None = None,
                      seed: int = 0, static_t=None, dpi: int = 80) -> ScheduleExplorer:
    """Compare schedules on the same image (or point cloud) with the same noise at the same t.

    ``x0_image``: ``(1, C, H, W)``, ``(C, H, W)`` (the first image of a batch is
    used) or a point cloud ``(N, 2)``. ``schedules``: names or
    :class:`~ddlearn.schedules.Schedule` objects sharing one T.
    """
    return ScheduleExplorer(x0_image, schedules, t=t, seed=seed, static_t=static_t, dpi=dpi)
