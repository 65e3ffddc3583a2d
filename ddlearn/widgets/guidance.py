r"""Explorers for guidance and inverse problems (Chapter 06).

* :func:`guidance_explorer` - pick a class, a guidance method (classifier-free
  or classifier) and a scale; a grid of digits is redrawn from the *same*
  starting noise, so the picture shows what the scale alone changes.
* :func:`posterior_explorer` - pick a measurement (box / random-pixel mask,
  4x downsampling, blur) and a method (DDNM, DPS, guidance on x0, the
  classical baseline); the truth, the measurement and several posterior
  samples per digit are redrawn.

Samples are computed when a control first asks for them and cached, so
moving back to a setting is instant; the static fallback shows a few settings.
"""
from __future__ import annotations

import ipywidgets as widgets
import torch

from .. import _checks, operators, viz
from ..guidance import classifier_free, classifier_guidance
from ..restoration import classical, sample_ddnm, sample_dps, sample_guided
from ..samplers import sample_ddim
from ._base import Explorer


class GuidanceExplorer(Explorer):
    """Guidance scale + class pickers over a class-conditional model (and optionally a noise-aware classifier)."""

    def __init__(self, cond_model, schedule, *, classifier=None, n: int = 16, steps: int = 20,
                 scales=(0.0, 1.0, 2.0, 3.0, 5.0, 8.0), seed: int = 0, size: int = 16):
        _checks.positive_int("n", n)
        _checks.positive_int("steps", steps)
        self.model, self.schedule, self.classifier = cond_model, schedule, classifier
        self.steps, self.cache = steps, {}
        g = torch.Generator().manual_seed(seed)
        self.x_T = torch.randn(n, 1, size, size, generator=g)
        methods = ["classifier-free"] + (["classifier"] if classifier is not None else [])
        controls = {
            "label": widgets.Dropdown(options=list(range(cond_model.num_classes)), value=0, description="class"),
            "method": widgets.Dropdown(options=methods, value=methods[0], description="method"),
            "scale": widgets.SelectionSlider(options=[float(s) for s in scales], value=float(scales[min(2, len(scales) - 1)]),
                                             description="scale"),
        }
        super().__init__(controls, figsize=(3.2, 3.4))

    def samples(self, label: int, method: str, scale: float) -> torch.Tensor:
        key = (label, method, scale)
        if key not in self.cache:
            if method == "classifier-free":
                guided = classifier_free(self.model, label, scale)
            else:
                uncond = classifier_free(self.model, label, 0.0)  # the null class: the unconditional model
                guided = classifier_guidance(uncond, self.classifier, label, scale, self.schedule)
            self.cache[key] = sample_ddim(guided, self.x_T, self.schedule, self.steps, progress=False)
        return self.cache[key]

    def build(self, fig):
        ax = fig.add_subplot()
        self.im = viz.image_grid(self.x_T.clamp(-1, 1), ax)
        self.title = ax.set_title("", fontsize="small")

    def update(self, label, method, scale):
        self.im.set_data(viz.grid_array(self.samples(label, method, scale)))
        self.title.set_text(f"class {label}, {method}, scale {scale:g}")

    def static_states(self):
        opts = list(self.controls["scale"].options)
        pick = sorted({opts[0], opts[min(1, len(opts) - 1)], opts[-1]})
        return [{"scale": s} for s in pick]


class PosteriorExplorer(Explorer):
    """Measurement + method pickers: truth, measurement, and posterior samples for a few held-out digits."""

    MEASUREMENTS = ("inpaint_box", "inpaint_random", "sr4", "blur")
    METHODS = ("DDNM", "DPS", "guidance on x0", "classical")

    def __init__(self, model, schedule, x: torch.Tensor, *, samples: int = 3, steps: int = 30,
                 dps_scale: float = 1.0, x0_scale: float = 1.0, seed: int = 0):
        _checks.tensor("x", x, ndim=4)
        _checks.positive_int("samples", samples)
        self.model, self.schedule, self.x = model, schedule, x.float()
        self.k, self.steps, self.seed = samples, steps, seed
        self.scales = {"DPS": dps_scale, "guidance on x0": x0_scale}
        self.cache = {}
        controls = {
            "measurement": widgets.Dropdown(options=list(self.MEASUREMENTS), value="inpaint_box", description="measure"),
            "method": widgets.Dropdown(options=list(self.METHODS), value="DDNM", description="method"),
        }
        super().__init__(controls, figsize=(1.1 * (2 + samples), 1.1 * x.shape[0] + 0.3))

    def operator(self, name):
        return operators.get(name, self.x.shape[-1], generator=torch.Generator().manual_seed(self.seed))

    def result(self, measurement, method):
        key = (measurement, method)
        if key not in self.cache:
            op = self.operator(measurement)
            y = op(self.x)
            B = self.x.shape[0]
            rep = self.x.repeat_interleave(self.k, 0)  # k samples per digit
            Y = op(rep)
            g = torch.Generator().manual_seed(self.seed + 1)
            x_T = torch.randn(rep.shape, generator=g)
            kw = dict(operator=op, y=Y, generator=g, progress=False, clip=(-1.0, 1.0))
            if method == "DDNM":
                out = sample_ddnm(self.model, x_T, self.schedule, self.steps, **kw)
            elif method == "DPS":
                out = sample_dps(self.model, x_T, self.schedule, self.steps, scale=self.scales["DPS"], **kw)
            elif method == "guidance on x0":
                out = sample_guided(self.model, x_T, self.schedule, self.steps, on="x0",
                                    scale=self.scales["guidance on x0"], **kw)
            else:
                out = classical(op, Y)
            shown_y = op.pinv(y) if measurement != "sr4" else torch.nn.functional.interpolate(y, scale_factor=4)
            cols = [self.x.unsqueeze(1), shown_y.unsqueeze(1), out.reshape(B, self.k, *self.x.shape[1:])]
            self.cache[key] = torch.cat(cols, 1).reshape(-1, *self.x.shape[1:]).clamp(-1, 1)
        return self.cache[key]

    def build(self, fig):
        ax = fig.add_subplot()
        self.im = viz.image_grid(torch.zeros((2 + self.k) * self.x.shape[0], *self.x.shape[1:]), ax, nrow=2 + self.k)
        self.title = ax.set_title("", fontsize="small")

    def update(self, measurement, method):
        self.im.set_data(viz.grid_array(self.result(measurement, method), 2 + self.k))
        self.title.set_text(f"truth | measured | {self.k} samples ({method})")

    def static_states(self):
        return [{"measurement": "inpaint_box", "method": "DDNM"}, {"measurement": "sr4", "method": "DDNM"}]


def guidance_explorer(cond_model, schedule, **kw) -> GuidanceExplorer:
    """Guidance scale and class pickers that redraw samples (see :class:`GuidanceExplorer`)."""
    return GuidanceExplorer(cond_model, schedule, **kw)


def posterior_explorer(model, schedule, x, **kw) -> PosteriorExplorer:
    """A measurement picker that redraws posterior samples (see :class:`PosteriorExplorer`)."""
    return PosteriorExplorer(model, schedule, x, **kw)
