"""Chapter 08's clip metrics: the tracker is exact on real clips and catches what it should."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlearn.video import metrics as V
from ddlearn.data import clips as C
from ddlearn.nets import ClipClassifier


@pytest.fixture(scope="module")
def real():
    return C.clips(60, size=16, split="test", seed=5, return_specs=True)


def test_tracker_is_exact_on_real_clips(real):
    for x, spec in zip(real["x"], real["specs"]):
        tr = V.track(x, spec)
        assert tr["trackable"].all()
        assert np.abs(tr["centres"] - spec.positions()).max() < 0.35
    rows, s = V.evaluate_clips(real["x"], real["specs"])
    assert s["direction_right_1"][0] == 1.0 and s["direction_right_multi"][0] == 1.0
    assert s["displacement_error"][0] < 0.1 and s["trackable"][0] == 1.0
    assert s["still_kept"][0] == 1.0 and s["bounced"][0] == 1.0 and s["bounce_error"][0] < 0.15
    assert s["iou"][0] > 0.75 and s["background_drift"][0] == 0.0
    assert s["length_ratio_1"][0] == pytest.approx(1.0, abs=0.02)
    assert all(r["ssim0"] == 1.0 for r in rows)


def test_a_static_copy_scores_no_motion(real):
    static = real["x"][:, :, :1].expand_as(real["x"]).contiguous()
    rows, s = V.evaluate_clips(static, real["specs"])
    assert s["direction_right_1"][0] == 0.0 and abs(s["length_ratio_1"][0]) < 1e-6
    # its displacement error is the commanded length, clip by clip
    for r in rows:
        if "commanded_length" in r:
            assert abs(r["displacement_error"] - r["commanded_length"]) < 0.05
    assert s["still_kept"][0] == 1.0, "a still clip copied stays still"


def test_reversed_time_is_the_wrong_direction(real):
    backwards = real["x"].flip(2)
    moving = [i for i, sp in enumerate(real["specs"]) if sp.prompt in C.MOVING and sp.prompt != "bounce"]
    # judged against frame 0 of the real clip, a reversed clip starts at the wrong place: pass the
    # reversed clip's own first frame as the conditioning image
    for i in moving[:10]:
        r = V.clip_metrics(backwards[i], real["specs"][i], image=real["x"][i][:, 0])
        assert r["direction_right"] is False


def test_untrackable_and_recoloured_sprites_are_caught(real):
    i = next(i for i, sp in enumerate(real["specs"]) if len(sp.sprites) == 1 and sp.prompt == "right")
    spec, x = real["specs"][i], real["x"][i].clone()
    bg = torch.from_numpy(C.render_background(spec.background, 16) * 2 - 1).float()
    gone = x.clone()
    gone[:, 3:] = bg[:, None]
    r = V.clip_metrics(gone, spec)
    assert abs(r["trackable"] - 3 / 8) < 1e-9
    # a sprite that changes colour after frame 0 drifts (and may get lost)
    recol = x.clone()
    recol[:, 1:] = torch.where((x[:, 1:] - bg[:, None]).norm(dim=0, keepdim=True) > 0.3, x[:, 1:].flip(0), x[:, 1:])
    assert V.clip_metrics(recol, spec)["colour_drift"] > V.clip_metrics(x, spec)["colour_drift"] + 0.05 or \
        V.clip_metrics(recol, spec)["trackable"] < 1


def test_direction_rule():
    D = np.array([4.0, 0.0])
    assert V.direction_right([3.0, 2.0], D)              # 33.7 degrees, long enough
    assert not V.direction_right([3.0, 3.5], D)          # 49 degrees
    assert not V.direction_right([1.9, 0.0], D)          # under half the length
    assert not V.direction_right([np.nan, 0.0], D) and not V.direction_right([0.0, 0.0], D)


def test_fitted_displacement_is_the_least_squares_line():
    f = np.arange(8.0)
    c = np.stack([2 + 0.5 * f, 3 - 0.25 * f], 1)
    c[3] = np.nan  # one untrackable frame does not matter on a line
    assert np.allclose(V.fitted_displacement(c), [3.5, -1.75])
    assert np.isnan(V.fitted_displacement(np.full((8, 2), np.nan))).all()


def test_frechet_clip_distance(real):
    g = torch.Generator().manual_seed(0)
    clf = ClipClassifier()
    with torch.no_grad():
        for p in clf.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    x = real["x"]
    assert abs(V.frechet_clip_distance(x, x, classifier=clf)) < 1e-9
    static = x[:, :, :1].expand_as(x).contiguous()  # even random features see that nothing moves
    assert V.frechet_clip_distance(x, static, classifier=clf) > 1e-5
    big = C.clips(4, size=32, seed=1)["x"]
    assert V.clip_features(big, clf).shape == (4, 64)
    with pytest.raises(ValueError, match="at least 2 clips"):
        V.frechet_clip_distance(x[:1], x, classifier=clf)


def test_noise_frames_are_flagged_and_real_frames_are_not(real):
    rows, s = V.evaluate_clips(real["x"], real["specs"])
    assert s["noise_frames"][0] == 0.0, "no real frame is noise"
    noisy = real["x"].clone()
    g = torch.Generator().manual_seed(0)
    noisy[0, :, 4:] = torch.rand(noisy[0, :, 4:].shape, generator=g) * 2 - 1   # the last half of clip 0: colour noise
    noisy[1] = (torch.rand(noisy[1].shape, generator=g) * 2 - 1)               # clip 1: noise, frame 0 included
    flags = V.noise_frames(noisy, real["x"])
    assert flags.shape == (60, 8)
    assert flags[0].tolist() == [False] * 4 + [True] * 4
    assert flags[1].all() and not flags[2:].any()
    rows, s = V.evaluate_clips(noisy, real["specs"])
    assert rows[0]["noise_frames"] == 0.5 and rows[1]["noise_frames"] == 1.0
    assert s["noise_frames"][0] == pytest.approx(1.5 / 60)


def test_roughness_is_the_mean_squared_laplacian():
    x = torch.zeros(1, 1, 1, 5, 5)
    x[..., 2, 2] = 1.0   # one bright pixel: Laplacian -4 there, +1 at its four neighbours
    assert V.roughness(x).item() == pytest.approx((16 + 4) / 25)
    assert V.roughness(torch.ones(2, 3, 4, 6, 6)).abs().max() == 0   # flat frames are smooth
    with pytest.raises(ValueError, match="real"):
        V.noise_frames(torch.zeros(1, 3, 8, 16, 16), torch.zeros(1, 3, 8, 32, 32))
