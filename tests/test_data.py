"""Offline data sets: shapes, ranges, held-out splits, determinism, against their sources."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlearn import data


@pytest.mark.parametrize("name", list(data.TOY))
def test_toy_sets_shape_range_determinism_and_split(name):
    a = data.toy(name, 500, seed=1)
    assert a.shape == (500, 2) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert a.abs().max() < 3, "2-D sets are scaled to about [-1, 1]"
    assert a.std(0).min() > 0.2, "not collapsed"
    assert torch.equal(a, data.toy(name, 500, seed=1))
    assert not torch.equal(a, data.toy(name, 500, seed=2))
    held = data.toy(name, 500, seed=1, split="test")
    # the held-out draw shares no point with the training draw
    assert torch.cdist(a.double(), held.double()).min() > 0


def test_swiss_roll_is_sklearns():
    from sklearn.datasets import make_swiss_roll

    pts, _ = make_swiss_roll(300, noise=0.3, random_state=0)
    assert np.allclose(data.swiss_roll(300).numpy(), pts[:, [0, 2]] / 10, atol=1e-6)


def test_digits_split_sizes_range_and_disjointness():
    train, y_train = data.digits("train", return_labels=True)
    test, y_test = data.digits("test", return_labels=True)
    assert train.shape == (1438, 1, 16, 16) and test.shape == (359, 1, 16, 16)
    assert train.dtype == torch.float32
    for x in (train, test):
        assert x.min() == -1 and x.max() == 1
    assert set(y_train.tolist()) == set(range(10)) == set(y_test.tolist())
    # no held-out digit appears in the training split (load_digits has no duplicate images)
    tr = {tuple(r) for r in train.reshape(len(train), -1).tolist()}
    te = {tuple(r) for r in test.reshape(len(test), -1).tolist()}
    assert tr.isdisjoint(te)
    allx = data.digits("all")
    assert len(allx) == 1797 and torch.equal(allx[:1438], train) and torch.equal(allx[1438:], test)
    assert torch.equal(train, data.digits("train")), "deterministic"


def test_digits_at_8x8_are_sklearns_images():
    from sklearn.datasets import load_digits

    d = load_digits()
    ours, labels = data.digits("all", size=8, return_labels=True)
    theirs = torch.from_numpy(d.images / 16 * 2 - 1).float().unsqueeze(1)
    key = lambda x: sorted(map(tuple, x.reshape(len(x), -1).tolist()))  # noqa: E731
    assert key(ours) == key(theirs)
    assert sorted(labels.tolist()) == sorted(d.target.tolist())
    assert data.digits("test", size=32).shape == (359, 1, 32, 32)


def test_images_shape_range_and_source():
    import skimage.data

    cam = data.image("camera", None)
    assert cam.shape == (1, 1, 512, 512)
    assert torch.allclose(cam[0, 0], torch.from_numpy(skimage.data.camera() / 255 * 2 - 1).float(), atol=1e-6)
    small = data.image("camera", 64)
    assert small.shape == (1, 1, 64, 64) and small.min() >= -1 and small.max() <= 1
    astro = data.image("astronaut", 48)
    assert astro.shape == (1, 3, 48, 48)
    assert data.image("astronaut", 48, gray=True).shape == (1, 1, 48, 48)
    assert torch.equal(data.image("coffee", 32), data.image("coffee", 32))


def test_bad_input():
    with pytest.raises(ValueError, match="split"):
        data.digits("val")
    with pytest.raises(ValueError, match="size"):
        data.digits(size=4)
    with pytest.raises(ValueError, match="n must be >= 1"):
        data.swiss_roll(0)
    with pytest.raises(ValueError, match="unknown toy data set"):
        data.toy("spiral")
    with pytest.raises(ValueError, match="unknown image name 'brain'"):
        data.image("brain")  # downloads at run time in scikit-image: not allowed
    with pytest.raises(ValueError, match="split"):
        data.moons(10, split="all")
