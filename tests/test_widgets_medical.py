"""The Chapter 09 explorer: moving a control redraws the picture; the static fallback renders."""
from __future__ import annotations

import torch

from ddlearn import schedules
from ddlearn.data import medical as M
from ddlearn.widgets.medical import MedicalExplorer


class ShrinkEps(torch.nn.Module):
    """The exact eps-model of x0 ~ N(0, 0.25 I): a stand-in prior that costs nothing."""

    def __init__(self, schedule):
        super().__init__()
        self.ab = schedule.alpha_bars

    def forward(self, x, t):
        ab = self.ab[t.round().long()].to(x.dtype).reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * x / (0.25 * ab + 1 - ab)


def _explorer():
    sch = schedules.get("linear", T=1000)
    x = M.phantoms("val", 64, 1)
    lesion = M.lesions("val", 64, 1)
    return MedicalExplorer(ShrinkEps(sch), sch, ct_image=x, mri_image=x, lesion_image=lesion["x"],
                           lesion_mask=lesion["mask"], steps=4, views=(8, 23), accelerations=(4, 8), t0s=(50, 200))


def test_controls_change_the_picture():
    ex = _explorer()
    seen = {ex.image.value}
    for name, value in (("views", 8), ("step", 0), ("case", "MRI"), ("acceleration", 8), ("case", "anomaly"),
                        ("t0", 50)):
        ex.controls[name].value = value
        assert ex.image.value not in seen, f"moving {name} to {value} did not change the picture"
        seen.add(ex.image.value)
    # the step slider scrubs recorded estimates: one per sampler step, then the output
    base, frames, x, label = ex.setting("CT", 23, 4, 200)
    assert frames.shape[0] == 5 and "SART+TV" in label
    assert ex.controls["step"].max == 4


def test_static_fallback_renders_png():
    ex = _explorer()
    png = ex.static_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle
