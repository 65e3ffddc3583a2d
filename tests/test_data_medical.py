"""Chapter 09's data: phantoms, lesions, and DICOM read offline with the file's own rescale tags."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlearn import data
from ddlearn.data import medical as M


def test_phantoms_are_reproducible_images_in_range_inside_the_field_of_view():
    a = M.phantoms("val", 64, 6)
    b = M.phantoms("val", 64, 10)[:6]  # phantom i does not depend on n
    assert a.shape == (6, 1, 64, 64) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    assert a.min() >= -1 and a.max() <= 1
    outside = ~M.circle_mask(64)
    assert (a[..., outside] == -1).all()  # air outside the CT field of view
    # not constant: skull, tissue and air all present
    assert (a > 0.4).any() and ((a > -0.8) & (a < -0.2)).any()


def test_splits_and_seeds_differ():
    tr, va, te = (M.phantoms(s, 64, 4) for s in ("train", "val", "test"))
    assert not torch.equal(tr, va) and not torch.equal(va, te) and not torch.equal(tr, te)
    assert not torch.equal(M.phantoms("test", 64, 4, seed=1), te)


def test_phantoms_128_and_registry():
    x = M.phantoms("test", 128, 2)
    assert x.shape == (2, 1, 128, 128)
    out = data.load("phantoms", "test", size=64, n=3)
    assert out["x"].shape == (3, 1, 64, 64)


def test_lesions_have_masks_and_change_only_the_lesion():
    d = M.lesions("val", 64, 8)
    x, h, m = d["x"], d["healthy"], d["mask"]
    assert x.shape == h.shape == m.shape == (8, 1, 64, 64) and m.dtype == torch.bool
    torch.testing.assert_close(h, M.phantoms("val", 64, 8))  # the healthy versions are the split's phantoms
    assert all(m[i].any() for i in range(8))
    diff = (x - h).abs() > 1e-6
    assert not (diff & ~_dilate(m)).any()  # changes only at (the anti-aliased edge of) the lesion
    assert (diff & m).sum() >= 0.9 * m.sum()


def _dilate(m):
    return torch.nn.functional.max_pool2d(m.float(), 3, stride=1, padding=1) > 0


def test_lesions_vary_in_size_and_sign():
    d = M.lesions("test", 64, 40)
    sizes = d["mask"].sum(dim=(1, 2, 3)).float()
    assert sizes.max() > 4 * sizes.min()
    delta = ((d["x"] - d["healthy"]) * d["mask"]).sum(dim=(1, 2, 3))
    assert (delta > 0).any() and (delta < 0).any()


def test_shepp_logan_is_the_skimage_phantom():
    from skimage.data import shepp_logan_phantom

    p = M.shepp_logan(400)
    np.testing.assert_allclose(p[0, 0].numpy(), shepp_logan_phantom() * 2 - 1, atol=1e-5)
    assert M.shepp_logan(64).shape == (1, 1, 64, 64)


def test_bad_phantom_arguments():
    with pytest.raises(ValueError, match="size must be one of"):
        M.phantoms("train", 100, 2)
    with pytest.raises(ValueError, match="unknown split"):
        M.phantoms("holdout", 64, 2)
    with pytest.raises(ValueError, match="radius"):
        M.lesions("test", 64, 2, radius=(0.2, 0.1))


# --------------------------------------------------------------------------- DICOM
def test_bundled_dicom_is_local_and_never_downloaded(monkeypatch):
    import pydicom.data.data_manager as dm

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    for name in ("fetch_data_files", "data_path_with_download"):
        monkeypatch.setattr(dm, name, no_download)
    for f in M.DICOM_FILES:
        assert M.dicom_path(f).is_file()


def test_hounsfield_units_follow_the_files_own_tags():
    import pydicom

    ds = pydicom.dcmread(str(M.dicom_path("CT_small.dcm")))
    hu = M.to_hu("CT_small.dcm")
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(hu, expected)
    assert float(ds.RescaleIntercept) == -1024.0  # this file's tag: the conversion is not a no-op
    # a changed tag changes the result: the function reads it, it does not assume it
    ds.RescaleIntercept = -1000
    ds.RescaleSlope = 2
    np.testing.assert_array_equal(M.to_hu(ds), ds.pixel_array.astype(np.float64) * 2 - 1000)
    assert hu.min() > -1100 and hu.max() < 3000
    meta = M.metadata("CT_small.dcm")
    assert meta["Modality"] == "CT" and meta["Rows"] == 128 and meta["RescaleIntercept"] == -1024.0


def test_mr_without_rescale_tags_keeps_stored_values():
    import pydicom

    ds = pydicom.dcmread(str(M.dicom_path("MR_small.dcm")))
    assert "RescaleSlope" not in ds
    np.testing.assert_array_equal(M.to_hu(ds), ds.pixel_array.astype(np.float64))


def test_windows():
    hu = np.array([-2000.0, -160.0, 40.0, 240.0, 3000.0])
    np.testing.assert_allclose(M.window(hu, "soft tissue"), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(M.window(hu, 0.0, 100.0), [0, 0, 0.9, 1, 1])
    with pytest.raises(ValueError, match="unknown window"):
        M.window(hu, "brain")
    with pytest.raises(ValueError, match="width"):
        M.window(hu, 0.0, -5.0)


def test_ct_image_is_a_book_image():
    x = M.ct_image("CT_small.dcm", 64)
    assert x.shape == (1, 1, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert (x[..., ~M.circle_mask(64)] == -1).all()


def test_dicom_without_pixel_data_is_a_clear_error(tmp_path):
    import pydicom

    ds = pydicom.dcmread(str(M.dicom_path("CT_small.dcm")))
    del ds.PixelData
    with pytest.raises(ValueError, match="no pixel data"):
        M.to_hu(ds)
    path = tmp_path / "nopixels.dcm"
    ds.save_as(str(path))
    with pytest.raises(ValueError, match="no pixel data"):
        M.read_dicom(path)


def test_a_file_that_is_not_dicom_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("this is not a DICOM file\n" * 20)
    with pytest.raises(ValueError, match="not a DICOM file"):
        M.read_dicom(path)
    with pytest.raises(FileNotFoundError):
        M.read_dicom(tmp_path / "missing.dcm")
    with pytest.raises(FileNotFoundError, match="bundled"):
        M.dicom_path("nonexistent_file.dcm")
