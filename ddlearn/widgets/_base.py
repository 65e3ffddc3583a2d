"""The base every explorer widget in the book is built on.

The pattern
-----------
An explorer is an ``ipywidgets.VBox``: a row of controls (sliders, a Play
button, dropdowns) above one ``ipywidgets.Image`` that shows a Matplotlib
figure rendered to PNG with Agg. Nothing depends on a Matplotlib widget
backend, so it works in JupyterLab, Notebook 7, VS Code and Colab alike.

Redraws are fast because the figure, its axes and its artists are built
**once** (:meth:`Explorer.build`); a control change only updates the artists
(:meth:`Explorer.update`: ``AxesImage.set_data``, ``PathCollection.set_offsets``,
``StepPatch.set_data``, ``Line2D.set_data``, ``Text.set_text``) and re-encodes
the PNG (fast zlib level). The constrained layout runs once, at build time,
and is then frozen. Keep axis limits fixed in :meth:`build` (autoscaling on
every step both costs time and makes the picture jump).

Static fallback: displaying an explorer produces a MIME bundle holding the
live widget view **and** an ``image/png`` picture of the explorer at a few
chosen states (:meth:`Explorer.static`). A Jupyter front end with a kernel
shows the widget; nbconvert's HTML book and code hosts, which cannot run
Python, show the picture. (If a notebook is executed with widget state stored,
nbconvert prefers the widget view and needs the ipywidgets HTML manager
scripts; a book builder that wants the picture can drop
``metadata.widgets`` before converting.)

Writing a new explorer (``reverse_explorer``, ``score_field_explorer``, ...)::

    class ReverseExplorer(Explorer):
        def __init__(self, frames, ...):
            self.frames = frames
            step = widgets.IntSlider(0, 0, len(frames) - 1, description="step")
            super().__init__({"step": step}, figsize=(6, 3))

        def build(self, fig):                 # once: axes and artists
            ax = fig.add_subplot()
            self.im = viz.image_grid(self.frames[0], ax)

        def update(self, step):               # every change: artists only
            self.im.set_data(viz.grid_array(self.frames[step]))

        def static_states(self):              # the states the fallback shows
            return [{"step": s} for s in (0, len(self.frames) // 2, len(self.frames) - 1)]

    def reverse_explorer(frames, **kw):       # the public, lower-case entry point
        return ReverseExplorer(frames, **kw)

The default :meth:`Explorer.static` stacks the full figure rendered at each of
:meth:`static_states`; override it for a more compact strip (as
:class:`~ddlearn.widgets.noising.NoisingExplorer` does). Tests change a
control in Python (``explorer.controls["t"].value = 500``) and check that
``explorer.image.value`` (the PNG bytes) changed.
"""
from __future__ import annotations

import base64
import time

import ipywidgets as widgets
import numpy as np

from .. import viz


class Explorer(widgets.VBox):
    """Controls + one PNG image of a Matplotlib figure, with a static fallback.

    Subclasses implement :meth:`build` (make axes and artists on ``fig``),
    :meth:`update` (take the control values as keyword arguments, change the
    artists) and :meth:`static_states` (a list of control-value dicts for the
    fallback picture).
    """

    def __init__(self, controls: dict[str, widgets.Widget], *, figsize=(9, 3), dpi: int = 80,
                 extra: list[widgets.Widget] | None = None):
        self.controls = dict(controls)
        self.fig = viz.new_figure(figsize=figsize, dpi=dpi)
        self.image = widgets.Image(format="png")
        self.redraw_times: list[float] = []  # seconds per redraw, for benchmarks
        self.build(self.fig)
        # Lay the figure out once (constrained layout), then freeze it: re-running the
        # layout on every slider step would cost about as much as drawing the figure.
        self.update(**self.values())
        self.fig.canvas.draw()
        self.fig.set_layout_engine("none")
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        row = widgets.HBox(list(extra or []) + list(self.controls.values()))
        super().__init__(children=[row, self.image])
        self.redraw()

    # ---- to implement -------------------------------------------------------
    def build(self, fig) -> None:
        raise NotImplementedError

    def update(self, **values) -> None:
        raise NotImplementedError

    def static_states(self) -> list[dict]:
        return [self.values()]

    # ---- the machinery ------------------------------------------------------
    def values(self) -> dict:
        """The current control values, ``{name: value}``."""
        return {name: c.value for name, c in self.controls.items()}

    def _on_change(self, _change) -> None:
        self.redraw()

    def render(self, **values) -> bytes:
        """PNG bytes of the figure at ``values`` (missing names keep their current value)."""
        self.update(**{**self.values(), **values})
        return viz.fig_to_png(self.fig)

    def redraw(self) -> None:
        """Redraw the figure for the current control values and show it."""
        start = time.perf_counter()
        self.image.value = self.render()
        self.redraw_times.append(time.perf_counter() - start)

    def static(self):
        """A Matplotlib figure showing the explorer at :meth:`static_states` (the fallback picture)."""
        frames = []
        for state in self.static_states():
            self.update(**{**self.values(), **state})
            self.fig.canvas.draw()
            frames.append(np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy())
        self.update(**self.values())  # leave the live figure as the controls say
        h, w = frames[0].shape[:2]
        dpi = self.fig.dpi
        fig = viz.new_figure(figsize=(w / dpi, h * len(frames) / dpi), dpi=dpi)
        fig.set_layout_engine(None)
        for i, frame in enumerate(frames):
            ax = fig.add_axes([0, 1 - (i + 1) / len(frames), 1, 1 / len(frames)])
            ax.imshow(frame, interpolation="nearest")
            ax.set_axis_off()
        return fig

    def static_png(self) -> bytes:
        return viz.fig_to_png(self.static(), compress_level=9, colors=256)

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = base64.b64encode(self.static_png()).decode("ascii")
        bundle["text/plain"] = (f"{type(self).__name__}: an interactive explorer; run the notebook "
                                f"with a Jupyter kernel to move its controls.")
        return bundle
