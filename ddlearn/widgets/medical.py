r"""The medical-imaging explorer (Chapter 09): watch a reconstruction or an anomaly map form, step by step.

Pick the case (sparse-view CT, undersampled MRI, anomaly detection), its
setting (the number of views, the acceleration, the noise level t0), and
scrub the sampler's steps: the panels show the truth, the classical baseline
(SART+TV, TV compressed sensing, intensity thresholding), the diffusion
model's estimate of the clean image at that step (:math:`\hat x_0`), and its
error (CT, MRI) or anomaly map :math:`|x - \hat x|` (anomalies). Each setting
is computed when first asked for and cached; the static fallback shows a few.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from .. import _checks, viz
from ..metrics import psnr
from ..operators.medical import KSpace, Radon
from ..restoration.anomaly import anomaly_map, threshold_score
from ..restoration.consistency import sample_projection, sample_score_mri
from ..restoration.reconstruction import sart_tv, tv_cs
from ._base import Explorer

CASES = ("CT", "MRI", "anomaly")


class MedicalExplorer(Explorer):
    """Case, setting and step controls over one image per case (see the module docstring)."""

    def __init__(self, model, schedule, *, ct_image: torch.Tensor, mri_image: torch.Tensor,
                 lesion_image: torch.Tensor, lesion_mask: torch.Tensor | None = None, steps: int = 30,
                 views=(8, 16, 23), accelerations=(4, 8), t0s=(100, 250, 400), seed: int = 0,
                 ct_options: dict | None = None):
        for name, v in (("ct_image", ct_image), ("mri_image", mri_image), ("lesion_image", lesion_image)):
            _checks.tensor(name, v, ndim=4)
            if v.shape[0] != 1:
                raise ValueError(f"{name} must hold one image (1, C, H, W), got {tuple(v.shape)}")
        _checks.positive_int("steps", steps)
        self.model, self.schedule, self.steps, self.seed = model, schedule, steps, seed
        self.images = {"CT": ct_image.float(), "MRI": mri_image.float(), "anomaly": lesion_image.float()}
        self.lesion_mask = lesion_mask
        self.ct_options = dict(ct_options or {})
        self.cache: dict = {}
        controls = {
            "case": widgets.Dropdown(options=list(CASES), value="CT", description="case"),
            "views": widgets.SelectionSlider(options=[int(v) for v in views], value=int(views[-1]), description="views"),
            "acceleration": widgets.SelectionSlider(options=[int(a) for a in accelerations], value=int(accelerations[0]),
                                                    description="accel."),
            "t0": widgets.SelectionSlider(options=[int(t) for t in t0s], value=int(t0s[len(t0s) // 2]),
                                          description="t0"),
            "step": widgets.IntSlider(value=steps, min=0, max=steps, description="step"),
        }
        super().__init__(controls, figsize=(8.4, 2.5))

    # ---- the computations (cached per setting) ---------------------------------
    def setting(self, case: str, views: int, acceleration: int, t0: int):
        """``(baseline, frames, truth, label)`` for one setting: frames is (steps + 1, 1, C, H, W): the x0
        estimate of each step, then the output."""
        key = (case, views if case == "CT" else acceleration if case == "MRI" else t0)
        if key in self.cache:
            return self.cache[key]
        x = self.images[case]
        g = torch.Generator().manual_seed(self.seed)
        frames = []

        def keep(step):
            frames.append(step.x0.detach().clamp(-1, 1).clone())

        x_T = torch.randn(x.shape, generator=g)
        if case == "CT":
            op = Radon(x.shape[-1], views)
            y = op(x)
            base, label = sart_tv(op, y), f"SART+TV, {views} views"
            out = sample_projection(self.model, x_T, self.schedule, self.steps, operator=op, y=y, generator=g,
                                    clip=(-1.0, 1.0), callback=keep, progress=False, **self.ct_options)
        elif case == "MRI":
            op = KSpace.cartesian(x.shape[-1], acceleration, kind="equispaced")
            y = op(x)
            base, label = tv_cs(op, y), f"TV-CS, x{acceleration}"
            out = sample_score_mri(self.model, x_T, self.schedule, self.steps, operator=op, y=y, generator=g,
                                   clip=(-1.0, 1.0), callback=keep, progress=False)
        else:
            steps = min(self.steps, t0 + 1)
            base, label = threshold_score(x), "thresholding map"
            out = anomaly_map(self.model, self.schedule, x, t0=t0, steps=steps, generator=g, callback=keep)[1]
        frames.append(out.detach().clamp(-1, 1))  # the output (after the final data-consistency step)
        out = (base, torch.stack(frames), x, label)
        self.cache[key] = out
        return out

    # ---- the figure ---------------------------------------------------------------
    def build(self, fig):
        axes = fig.subplots(1, 4)
        blank = np.zeros(self.images["CT"].shape[-2:])
        self.ims, self.titles = [], []
        for ax, cmap, vmax in zip(axes, ("gray", "gray", "gray", "magma"), (1, 1, 1, 1)):
            im = ax.imshow(blank, cmap=cmap, vmin=-1 if cmap == "gray" else 0, vmax=vmax, interpolation="nearest")
            ax.set_axis_off()
            self.ims.append(im)
            self.titles.append(ax.set_title("", fontsize="x-small"))

    def update(self, case, views, acceleration, t0, step):
        base, frames, x, label = self.setting(case, views, acceleration, t0)
        i = min(step, frames.shape[0] - 1)
        est = frames[i][0]
        when = "output" if i == frames.shape[0] - 1 else f"step {i + 1}/{frames.shape[0] - 1}"
        self.ims[0].set_data(x[0, 0].numpy())
        self.titles[0].set_text("truth" if case != "anomaly" else "image with lesion")
        if case == "anomaly":
            b = base[0, 0].numpy()
            self.ims[1].set_data(b / max(b.max(), 1e-6) * 2 - 1)
            self.titles[1].set_text(label)
            err = (est - x)[0, 0].abs().numpy()
            self.titles[2].set_text(f"healthy estimate, {when}")
            self.titles[3].set_text("anomaly map |x - x_hat|")
        else:
            self.ims[1].set_data(base[0, 0].numpy())
            self.titles[1].set_text(f"{label}: {psnr(base, x):.1f} dB")
            err = (est - x)[0, 0].abs().numpy()
            self.titles[2].set_text(f"diffusion x0, {when}: {psnr(est, x):.1f} dB")
            self.titles[3].set_text("|error| (0 to 0.5)")
        self.ims[2].set_data(est[0].numpy())
        self.ims[3].set_data(err * 2 if case != "anomaly" else err / max(err.max(), 1e-6))

    def static_states(self):
        last = self.controls["step"].max
        return [{"case": "CT", "step": last}, {"case": "MRI", "step": last}, {"case": "anomaly", "step": last}]


def medical_explorer(model, schedule, **kw) -> MedicalExplorer:
    """The Chapter 09 explorer (see :class:`MedicalExplorer`)."""
    return MedicalExplorer(model, schedule, **kw)


__all__ = ["MedicalExplorer", "medical_explorer", "CASES"]
