"""Chapter 07's data: photograph patches (held-out photographs never in train/val) and lfw faces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlearn import data
from ddlearn.data import photos


@pytest.fixture(scope="module")
def gray_train():
    return photos.patches("train", 16, channels=1, stride=16)


def test_patch_splits_shapes_range_and_determinism(gray_train):
    x = gray_train
    assert x.ndim == 4 and x.shape[1:] == (1, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert (x.reshape(len(x), -1).std(1) >= 0.04).all(), "flat patches are dropped"
    assert torch.equal(x, photos.patches("train", 16, channels=1, stride=16))
    test = photos.patches("test", 16, channels=3, n=20)
    assert test.shape == (20, 3, 16, 16)
    assert torch.equal(test, photos.patches("test", 16, channels=3, n=20))
    assert photos.patches("train", 16, channels=1, stride=16, n=50).shape[0] == 50


def test_train_and_val_never_overlap_and_held_out_photos_never_used(gray_train):
    assert not set(photos.HELDOUT) & set(photos.TRAIN_COLOUR + photos.TRAIN_GRAY)
    val = photos.patches("val", 16, channels=1, stride=16)
    tr = {tuple(np.round(r, 5)) for r in gray_train.reshape(len(gray_train), -1).numpy()}
    assert not any(tuple(np.round(r, 5)) in tr for r in val.reshape(len(val), -1).numpy())
    # no training patch is a crop of a held-out photograph at the test scales
    for name in photos.HELDOUT:
        for side in photos.TEST_SCALES:
            img = photos._luminance(photos.image(name, side)) if name != "camera" else photos.image(name, side)
            crops = torch.nn.functional.unfold(img, 16, stride=8)[0].T  # (L, 256)
            d = torch.cdist(crops.double(), gray_train.reshape(len(gray_train), -1).double()).min()
            assert d > 1e-3


def test_patch_bad_input():
    with pytest.raises(ValueError, match="split"):
        photos.patches("validation")
    with pytest.raises(ValueError, match="channels"):
        photos.patches("train", channels=2)
    with pytest.raises(TypeError, match="size"):
        photos.patches("train", 16.0)


def test_motorcycle_is_the_left_stereo_view():
    import skimage.data

    left = skimage.data.stereo_motorcycle()[0]
    x = data.image("motorcycle", None)
    assert x.shape == (1, 3, *left.shape[:2])
    assert np.allclose((x[0].permute(1, 2, 0).numpy() + 1) / 2 * 255, left, atol=1e-3)


def test_faces_splits_are_disjoint_faces_from_lfw():
    import skimage.data

    raw = skimage.data.lfw_subset()[:100]
    tr, va, te = (data.faces(s, 25) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (70, 10, 20)
    allf = torch.cat([te, va, tr])
    assert torch.equal(allf, data.faces("all", 25))
    # every face is one of lfw_subset's first 100 images, each used once
    flat = (allf.reshape(100, -1).double() + 1) / 2
    d = torch.cdist(flat, torch.from_numpy(raw.reshape(100, -1)))
    assert (d.min(1).values < 1e-5).all() and len(set(d.argmin(1).tolist())) == 100


def test_faces_flips_and_size():
    x = data.faces("train", 32, flips=True)
    assert x.shape == (140, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x[70:], x[:70].flip(-1))
    assert data.load("faces", "test")["x"].shape == (20, 1, 32, 32)  # no flips outside "train"
    with pytest.raises(TypeError, match="flips"):
        data.faces("train", flips=1)


def test_val_photos_are_squares_of_the_unseen_strips():
    from ddlearn.data import photos

    x = photos.val_photos(96)
    assert x.shape[1:] == (3, 96, 96) and x.shape[0] >= 3
    assert x.min() >= -1 and x.max() <= 1 and torch.isfinite(x).all()
    assert torch.equal(x, photos.val_photos(96))
    gray = photos.val_photos(64, channels=1)
    assert gray.shape[1:] == (1, 64, 64)
    # every crop is one of the validation patches' sources: its columns lie right of the training cut
    for name in photos.TRAIN_COLOUR:
        for side in photos.SCALES:
            full = photos._scaled(name, side)
            if full is None:
                continue
            W = full.shape[-1]
            cut = int(round(W * (1 - photos.VAL_FRACTION)))
            if W - cut >= 96 and full.shape[-2] >= 96:
                top = (full.shape[-2] - 96) // 2
                crop = full[:, :, top:top + 96, cut:cut + 96]
                assert any(torch.equal(crop[0], xi) for xi in x), name
                break
    with pytest.raises(ValueError, match="channels"):
        photos.val_photos(96, channels=2)


def test_gray_source_marks_images_with_equal_channels():
    from ddlearn import data

    x = data.patches("test", 32, channels=3, n=24, seed=0)
    gray = data.gray_source(x)
    assert gray.dtype == torch.bool and gray.shape == (24,) and gray.any() and not gray.all()
    assert torch.equal(x[gray][:, 0], x[gray][:, 1]) and torch.equal(x[gray][:, 1], x[gray][:, 2])
    assert not data.gray_source(torch.tensor([0.0, 0.1, 0.0]).reshape(1, 3, 1, 1)).item()
    with pytest.raises(ValueError, match="3 channels"):
        data.gray_source(torch.zeros(1, 1, 4, 4))
