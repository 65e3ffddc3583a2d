"""The sprite-clip generator (Chapter 08): physics against closed forms, rendering, splits, prompts, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddlearn import data
from ddlearn.data import clips as C


def test_reflect_is_the_triangle_wave_of_an_elastic_bounce():
    lo, hi = 2.0, 7.0
    p = np.linspace(-20, 40, 2001)
    r = C.reflect(p, lo, hi)
    assert (r >= lo - 1e-12).all() and (r <= hi + 1e-12).all()
    inside = (p >= lo) & (p <= hi)
    assert np.allclose(r[inside], p[inside]), "no wall reached: identity"
    # one bounce off the top wall: hi - (p - hi); off the bottom: lo + (lo - p)
    one_up = (p > hi) & (p < 2 * hi - lo)
    assert np.allclose(r[one_up], 2 * hi - p[one_up])
    one_down = (p < lo) & (p > 2 * lo - hi)
    assert np.allclose(r[one_down], 2 * lo - p[one_down])
    assert np.allclose(C.reflect(p + 2 * (hi - lo), lo, hi), r), "period 2L"


@pytest.mark.parametrize("prompt", C.PROMPTS)
def test_trajectory_closed_forms(prompt):
    size, radius = 16, 2.0
    stride = 3 if prompt == "bounce" else 1   # stride 1 from the centre: no wall within the clip
    v = C.speed(size) * stride
    d = np.asarray(C.direction(prompt))
    start = (8.0, 8.0) if prompt != "bounce" else (8.0, 11.0)
    pos = C.trajectory(prompt, start, stride, size, radius)
    f = np.arange(C.FRAMES)[:, None]
    free = np.asarray(start) + f * v * d
    if prompt == "bounce":
        floor = size - radius
        hit = (floor - start[1]) / v  # the frame time of the bounce
        y = np.where(f[:, 0] <= hit, start[1] + f[:, 0] * v, 2 * floor - start[1] - f[:, 0] * v)
        assert np.allclose(pos[:, 1], y) and np.allclose(pos[:, 0], start[0])
    else:
        assert np.allclose(pos, free)
        step = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        assert np.allclose(step, 0 if prompt == "still" else v), "constant speed = stride x size/40 per frame"


def test_directions_are_unit_vectors_with_y_down():
    assert C.direction("right") == (1.0, 0.0) and C.direction("up") == (0.0, -1.0)
    dx, dy = C.direction("up-left")
    assert math.isclose(dx, -1 / math.sqrt(2)) and math.isclose(dy, -1 / math.sqrt(2))
    assert np.allclose(C.commanded_displacement("down-right", 2, 32), 0.8 * 2 * 7 * np.array([1, 1]) / math.sqrt(2))


def test_sampled_paths_stay_inside_and_bounces_bounce():
    specs = C.sample_specs(300, size=16, seed=3)
    for s in specs:
        pos = s.positions()
        for sp, p in zip(s.sprites, pos):
            assert (p >= sp.radius - 1e-9).all() and (p <= s.size - sp.radius + 1e-9).all()
            if s.prompt not in ("bounce", "still"):  # straight paths never touch a wall: the free path
                free = np.asarray(sp.start) + np.arange(s.frames)[:, None] * C.speed(16) * s.stride * np.asarray(C.direction(s.prompt))
                assert np.allclose(p, free)
            if s.prompt == "bounce":
                low = int(np.argmax(p[:, 1]))
                assert 2 <= low <= s.frames - 3 + 1 and p[low, 1] > p[0, 1] and p[low, 1] > p[-1, 1]
        # sprites never touch
        for i in range(len(s.sprites)):
            for j in range(i):
                dist = np.linalg.norm(pos[i] - pos[j], axis=1)
                assert (dist >= s.sprites[i].radius + s.sprites[j].radius + 0.5 - 1e-9).all()


@pytest.mark.parametrize("size", C.SIZES)
def test_rendered_circle_centroid_is_its_position(size):
    spec = C.ClipSpec("right", 2, size, {"kind": "gradient", "c1": (0.2, 0.2, 0.2), "c2": (0.2, 0.2, 0.2),
                                          "angle": 0.0, "period": 4.0, "offset": 0.0, "centre": (0, 0), "blobs": []})
    spec.sprites.append(C.Sprite("circle", (1.0, 0.2, 0.2), 0.0, "flat", 0.13 * size, 0.0, (0.3 * size + 0.37, 0.5 * size + 0.21)))
    clip, masks = C.render_clip(spec, return_masks=True)
    m = masks[0].double()
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    cx = (m * xs).sum((1, 2)) / m.sum((1, 2))
    cy = (m * ys).sum((1, 2)) / m.sum((1, 2))
    truth = spec.positions()[0]
    assert np.allclose(cx.numpy(), truth[:, 0], atol=0.02) and np.allclose(cy.numpy(), truth[:, 1], atol=0.02)
    assert np.allclose(m.sum((1, 2)).numpy(), math.pi * (0.13 * size) ** 2, rtol=0.03), "area of the disc"
    # where the sprite fully covers a pixel the clip shows its colour (flat texture), elsewhere the background
    full = masks[0, 0] == 1
    assert torch.allclose(clip[:, 0][:, full], torch.tensor([1.0, -0.6, -0.6])[:, None], atol=1e-5)
    assert torch.allclose(clip[:, 0][:, masks[0, 0] == 0], torch.tensor(-0.6), atol=1e-5)


def test_clips_shapes_range_determinism_and_keys():
    d = C.clips(20, size=16, seed=1, return_specs=True)
    assert d["x"].shape == (20, 3, 8, 16, 16) and d["x"].dtype == torch.float32
    assert d["x"].min() >= -1 and d["x"].max() <= 1
    assert d["prompt"].shape == (20, C.PROMPT_LEN) and d["prompt"].dtype == torch.long
    assert set(d["stride"].tolist()) <= set(C.STRIDES)
    assert [C.PROMPTS[i] for i in d["y"].tolist()] == [s.prompt for s in d["specs"]]
    assert [C.decode_prompt(p) for p in d["prompt"]] == [s.prompt for s in d["specs"]]
    assert torch.equal(d["x"], C.clips(20, size=16, seed=1)["x"])
    assert not torch.equal(d["x"], C.clips(20, size=16, seed=2)["x"])
    big = C.clips(4, size=32, seed=1)["x"]
    assert big.shape == (4, 3, 8, 32, 32)
    reg = data.load("sprite_clips", "test", size=16, n_test=5)
    assert reg["x"].shape == (5, 3, 8, 16, 16) and set(reg) >= {"x", "prompt", "stride", "y"}


def test_heldout_split_holds_what_training_never_sees():
    train = C.sample_specs(400, seed=0, split="train")
    test = C.sample_specs(200, seed=0, split="test")
    lo, hi = C.HELDOUT_HUES
    for s in train:
        assert s.background["kind"] in C.TRAIN_BACKGROUNDS
        for sp in s.sprites:
            assert sp.shape in C.TRAIN_SHAPES and not (lo <= sp.hue < hi)
    for s in test:
        assert s.background["kind"] in C.HELDOUT_BACKGROUNDS
        for sp in s.sprites:
            assert sp.shape in C.HELDOUT_SHAPES or lo <= sp.hue < hi, "every held-out sprite is novel somehow"
    assert any(sp.shape in C.HELDOUT_SHAPES for s in test for sp in s.sprites)
    assert any(lo <= sp.hue < hi for s in test for sp in s.sprites)
    counts = np.bincount([len(s.sprites) for s in train], minlength=4)
    assert counts[1] > counts[2] > 0 and counts[3] > 0


def test_prompt_tokens_round_trip_and_null():
    for p in C.PROMPTS:
        ids = C.encode_prompt(p)
        assert ids.shape == (C.PROMPT_LEN,) and ids.max() <= len(C.WORDS) and C.decode_prompt(ids) == p
    assert C.encode_prompt("").sum() == 0 and C.encode_prompt(None).sum() == 0
    assert C.encode_prompt(["up", "down-left"]).shape == (2, C.PROMPT_LEN)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown prompt 'sideways'"):
        C.encode_prompt("sideways")
    with pytest.raises(TypeError, match="prompt must be a string"):
        C.encode_prompt(3)
    with pytest.raises(ValueError, match="size"):
        C.clips(2, size=24)
    with pytest.raises(ValueError, match="split"):
        C.clips(2, split="val")
    with pytest.raises(ValueError, match="stride must be at most"):
        C.clips(2, strides=9)
    with pytest.raises(ValueError, match="n_sprites must be 1, 2 or 3"):
        C.clips(2, n_sprites=4)
    with pytest.raises(ValueError, match="unknown prompt"):
        C.clips(2, prompts=("left", "sideways"))
    x = torch.zeros(2, 3, 8, 16, 16)
    C.check_clip("clip", x, size=16)
    with pytest.raises(ValueError, match="8 frames"):
        C.check_clip("clip", torch.zeros(2, 3, 6, 16, 16))
    with pytest.raises(ValueError, match="3 channels"):
        C.check_clip("clip", torch.zeros(2, 1, 8, 16, 16))
    with pytest.raises(ValueError, match="16x16"):
        C.check_clip("clip", torch.zeros(2, 3, 8, 32, 32), size=16)
