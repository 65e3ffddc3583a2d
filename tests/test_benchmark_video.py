"""benchmarks/video.py's IoU scale (issue 21): the perturbations that say what an IoU of the shape tracker is worth."""
import importlib.util
import pathlib
import sys

import torch

from ddlearn import video as V

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "video.py"
_spec = importlib.util.spec_from_file_location("bench_video", _PATH)
B = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = B
_spec.loader.exec_module(B)


def _clips():
    ev = V.heldout_set(16, per_cell=1, multi=0, still=0, bounce=0)
    return V.subset(ev, list(range(0, 32, 4)))


def test_perturbed_leaves_frame_zero_and_its_input_alone():
    ev = _clips()
    x = ev["x"]
    x0 = x.clone()
    noisy = B._perturbed(x, noise=0.02, generator=torch.Generator().manual_seed(0))
    blurred = B._perturbed(x, blur=0.5)
    assert torch.equal(x, x0)                                               # the caller's clips untouched
    for y in (noisy, blurred):
        assert torch.equal(y[:, :, 0], x[:, :, 0]) and not torch.equal(y[:, :, 1:], x[:, :, 1:])
    assert abs(float((noisy - x)[:, :, 1:].std()) - 0.02) < 0.002
    assert torch.allclose(blurred.mean((3, 4)), x.mean((3, 4)), atol=0.05)  # a blur keeps each frame's mean
    assert V.roughness(blurred)[:, 1:].mean() < V.roughness(x)[:, 1:].mean()


def test_the_shape_iou_falls_with_invisible_noise_and_slight_blur():
    """The reason for the scale: noise of sd 0.02 (about 40 dB) or a half-pixel blur costs real clips IoU."""
    ev = _clips()
    x, image = ev["x"], ev["x"][:, :, 0]
    iou = lambda clip: V.evaluate_clips(clip, ev["specs"], image)[1]["iou"][0]  # noqa: E731
    real = iou(x)
    assert real > 0.7
    assert iou(B._perturbed(x, noise=0.02, generator=torch.Generator().manual_seed(0))) < real - 0.08
    assert iou(B._perturbed(x, blur=0.5)) < real - 0.05
