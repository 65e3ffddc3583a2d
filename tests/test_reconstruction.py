"""Chapter 09's classical baselines against scikit-image and NumPy called directly on the same data.

Each reconstruction in :mod:`ddlearn.restoration.reconstruction` wraps a
scikit-image routine with the book's conventions (images in [-1, 1], the
attenuation mu = (x + 1) / 2, air outside the field of view). These tests
run scikit-image's own forward projection and inverse on a phantom's mu and
check that the wrappers give the same image, so a slip in the conventions
(sign, angle, offset, orientation) cannot hide behind a plausible PSNR.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlearn.data.medical import circle_mask, phantoms
from ddlearn.operators.medical import KSpace, Radon
from ddlearn.restoration import reconstruction as R

SIZE = 64


@pytest.fixture(scope="module")
def case():
    x = phantoms("val", SIZE, 2).double()
    op = Radon(SIZE, 12)
    return x, op, op(x)


def _skimage_mu(x, op):
    """Sinograms of mu = (x + 1) / 2 from scikit-image's own radon, one per image."""
    from skimage.transform import radon

    mu = ((x + 1) / 2).numpy()[:, 0]
    return [radon(m, theta=op.theta, circle=True) for m in mu]


def _to_x(mu_images):
    """scikit-image's mu estimates mapped to x = 2 mu - 1, air outside the circle, clipped (the book's range)."""
    x = torch.from_numpy(np.stack(mu_images))[:, None] * 2 - 1
    return torch.where(circle_mask(SIZE), x, torch.full_like(x, -1.0)).clamp(-1, 1)


def test_the_attenuation_sinogram_is_scikit_images(case):
    x, op, y = case
    ours = op.attenuation(y).numpy()[:, 0]
    for a, b in zip(ours, _skimage_mu(x, op)):
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_fbp_is_iradon(case):
    from skimage.transform import iradon

    x, op, y = case
    ref = _to_x([iradon(s, theta=op.theta, output_size=SIZE, filter_name="ramp", circle=True)
                 for s in _skimage_mu(x, op)])
    torch.testing.assert_close(R.fbp(op, y), ref.to(y.dtype), atol=1e-6, rtol=0)


@pytest.mark.parametrize("sweeps", [1, 3])
def test_sart_is_iradon_sart_repeated(case, sweeps):
    from skimage.transform import iradon_sart

    x, op, y = case
    ref = []
    for s in _skimage_mu(x, op):
        img = None
        for _ in range(sweeps):
            img = iradon_sart(s, theta=op.theta, image=img, relaxation=0.15, clip=(0.0, 1.0))
        ref.append(img)
    torch.testing.assert_close(R.sart(op, y, sweeps=sweeps), _to_x(ref).to(y.dtype), atol=1e-5, rtol=0)


def test_sart_tv_is_sart_then_chambolle(case):
    from skimage.restoration import denoise_tv_chambolle
    from skimage.transform import iradon_sart

    x, op, y = case
    ref = []
    for s in _skimage_mu(x, op):
        img = None
        for _ in range(2):
            img = denoise_tv_chambolle(iradon_sart(s, theta=op.theta, image=img, relaxation=0.15, clip=(0.0, 1.0)),
                                       weight=0.02)
        ref.append(img)
    torch.testing.assert_close(R.sart_tv(op, y, sweeps=2, weight=0.02), _to_x(ref).to(y.dtype), atol=1e-5, rtol=0)
    # weight 0 is plain SART
    torch.testing.assert_close(R.sart_tv(op, y, sweeps=2, weight=0.0), R.sart(op, y, sweeps=2))


def test_the_baselines_improve_on_nothing_and_rank_sensibly(case):
    """A sanity ordering on 12 views: every baseline is far better than an all-air guess."""
    from ddlearn.metrics import psnr

    x, op, y = case
    air = torch.full_like(x, -1.0)
    for name in ("FBP", "SART", "SART+TV"):
        assert psnr(R.baseline(name, op, y), x) > psnr(air, x) + 3, name


def test_zero_filled_is_numpys_inverse_fft():
    x = phantoms("val", SIZE, 2).double()
    op = KSpace.cartesian(SIZE, 4, generator=torch.Generator().manual_seed(0))
    y = op(x)
    mask = op.mask.numpy()
    ref = []
    for img in x.numpy()[:, 0]:
        k = np.fft.fftshift(np.fft.fft2(img, norm="ortho")) * mask
        ref.append(np.fft.ifft2(np.fft.ifftshift(k), norm="ortho").real)
    ref = torch.from_numpy(np.stack(ref))[:, None].clamp(-1, 1)
    torch.testing.assert_close(R.zero_filled(op, y), ref, atol=1e-10, rtol=0)


def test_tv_cs_without_tv_is_the_real_least_squares_image_and_with_tv_better():
    from ddlearn.metrics import psnr

    x = phantoms("val", SIZE, 2).double()
    op = KSpace.cartesian(SIZE, 4, generator=torch.Generator().manual_seed(0))
    y = op(x)
    # weight 0: FISTA on 1/2 |M F x - y|^2 over real images, started in A's row space, converges to the
    # minimum-norm real least-squares image: the operator's real pseudo-inverse (not the zero-filled image's
    # real part, which halves each line whose mirror was not sampled)
    ref = op.solve_real(y).clamp(-1, 1)
    torch.testing.assert_close(R.tv_cs(op, y, weight=0.0, iters=100), ref, atol=1e-10, rtol=0)
    assert (R.zero_filled(op, y) - ref).abs().max() > 0.1
    out = R.tv_cs(op, y)
    assert psnr(out, x) > psnr(R.zero_filled(op, y), x) + 1
    # one more gradient step re-inserts the lines: what TV-CS returns is close to data consistent
    assert (op(out) - y).abs().pow(2).mean().sqrt() < 0.1 * y.abs().pow(2).mean().sqrt()


def test_baselines_bad_input(case):
    x, op, y = case
    mri = KSpace.cartesian(SIZE, 4)
    with pytest.raises(TypeError, match="operator must be a ddlearn.operators.medical.Radon"):
        R.fbp(mri, y)
    with pytest.raises(TypeError, match="operator must be a ddlearn.operators.medical.KSpace"):
        R.tv_cs(op, y)
    with pytest.raises(ValueError, match="sweeps"):
        R.sart(op, y, sweeps=0)
    with pytest.raises(ValueError, match="baseline"):
        R.baseline("ART", op, y)
    y0 = y.clone()
    R.sart_tv(op, y, sweeps=1)
    assert torch.equal(y, y0)  # the caller's sinogram is untouched
