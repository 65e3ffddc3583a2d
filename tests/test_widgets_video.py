"""Chapter 08's clip pictures and the animation explorer: controls change the picture; APNGs hold every frame."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from ddlearn.data import clips as C
from ddlearn.nets import VideoUNet
from ddlearn.schedules import linear
from ddlearn.widgets.video import animation, filmstrip, strip_array, video_explorer


@pytest.fixture(scope="module")
def model():
    net = VideoUNet(image_size=16, base=16, T=100)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random weights: the output depends on every control
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


def test_strip_and_animation_hold_every_frame():
    from PIL import Image

    x = C.clips(3, size=16, seed=0)["x"]
    strip = strip_array(x)
    assert strip.shape == (3 * 17 - 1, 8 * 17 - 1, 3)
    assert np.allclose(strip[17:33, 34:50], ((x[1, :, 2] + 1) / 2).permute(1, 2, 0).numpy(), atol=1e-6)
    a = animation(x, scale=2)
    im = Image.open(io.BytesIO(a._repr_png_()))
    assert im.n_frames == 8 and im.size == (2 * (3 * 17 - 1), 2 * 16)
    im.seek(5)
    got = np.asarray(im.convert("RGB"))[::2, ::2] / 255
    assert np.abs(got[:, 17:33] - ((x[1, :, 5] + 1) / 2).permute(1, 2, 0).numpy()).max() < 0.003
    img = filmstrip(x, labels=["a", "b", "c"])
    assert img.get_array().shape == strip.shape


def test_explorer_controls_change_the_picture(model):
    images = C.clips(2, size=16, split="test", seed=1)["x"][:, :, 0]
    ex = video_explorer(model, linear(100), images, steps=3)
    before = ex.image.value
    ex.controls["frame"].value = 5
    after_frame = ex.image.value
    assert after_frame != before
    ex.controls["prompt"].value = "left"
    assert ex.image.value != after_frame
    n = len(ex.cache)
    ex.controls["stride"].value = 4
    assert len(ex.cache) == n + 1, "a new setting samples a new clip"
    ex.controls["stride"].value = 2
    assert len(ex.cache) == n + 1, "moving back is served from the cache"
    ex.controls["image"].value = 1
    ex.controls["prompt_scale"].value = 1.0
    ex.controls["image_scale"].value = 2.0
    assert ex.image.value != after_frame
    png = ex.static_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    bundle = ex._repr_mimebundle_()
    assert "image/png" in bundle


def test_bad_input(model):
    images = torch.zeros(2, 3, 16, 16)
    with pytest.raises(ValueError, match="names must name every image"):
        video_explorer(model, linear(100), images, names=["one"])
    with pytest.raises(ValueError, match="unknown prompt"):
        video_explorer(model, linear(100), images, prompts=("up", "sideways"))
    with pytest.raises(ValueError, match="5 dimensions"):
        animation(torch.zeros(3, 8, 16, 16))
