"""Chapter 09's operators: the Radon transform against scikit-image, exact adjoints, k-space masks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ddlearn.data.medical import circle_mask
from ddlearn.operators.medical import CENTER_FRACTION, KSpace, Radon, kspace_mask


def _disk_image(size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (size, size)) * circle_mask(size).numpy()


@pytest.mark.parametrize("size,views", [(64, 23), (64, 8), (33, 5), (32, 1)])
def test_radon_matches_skimage(size, views):
    from skimage.transform import radon

    img = _disk_image(size, seed=size + views)
    theta = np.linspace(0, 180, views, endpoint=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = radon(img, theta, circle=True)
    y = Radon(size, views)(torch.from_numpy(img)[None, None])[0, 0].numpy()
    assert y.shape == ref.shape == (size, views)
    np.testing.assert_allclose(y, ref, atol=1e-10 * np.abs(ref).max())


def test_radon_arbitrary_angles_match_skimage():
    from skimage.transform import radon

    img = _disk_image(40, seed=3)
    angles = [3.0, 47.5, 91.0, 170.25]
    y = Radon(40, angles=angles)(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(y, radon(img, angles, circle=True), atol=1e-10)


def test_radon_ignores_pixels_outside_the_field_of_view():
    op = Radon(32, 6)
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    x[..., 0, 0] = 5.0  # a corner, outside the reconstruction circle
    assert op(x).abs().max() == 0


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_radon_adjoint_pair(dtype, tol):
    op = Radon(48, 11)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 48, 48, generator=g, dtype=dtype)
    y = torch.randn(3, 2, 48, 11, generator=g, dtype=dtype)
    lhs, rhs = (op(x) * y).sum().item(), (x * op.adjoint(y)).sum().item()
    assert abs(lhs - rhs) <= tol * max(abs(lhs), 1.0)


def test_radon_autograd_is_the_adjoint():
    op = Radon(32, 7)
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 1, 32, 7, dtype=torch.float64)
    (op(x) * y).sum().backward()
    torch.testing.assert_close(x.grad, op.adjoint(y))


def test_radon_pinv_is_consistent_and_minimum_norm():
    op = Radon(32, 6)
    x = torch.from_numpy(_disk_image(32, 1))[None, None]
    y = op(x)
    xp = op.pinv(y, rcond=1e-12)
    assert (op(xp) - y).abs().max() < 1e-6 * y.abs().max()
    assert xp.norm() <= x.norm() + 1e-9  # the minimum-norm solution of A x = y
    # the damped solve approaches the pseudo-inverse as damping -> 0 and shrinks as damping grows
    assert (op.solve(y, 1e-9) - op.pinv(y, rcond=0.0)).abs().max() < 1e-3
    assert op.solve(y, 100.0).norm() < xp.norm()


def test_radon_bad_input():
    with pytest.raises(ValueError, match="at least one view"):
        Radon(32, angles=[])
    with pytest.raises(ValueError, match="views must be >= 1"):
        Radon(32, 0)
    with pytest.raises(ValueError, match="give views"):
        Radon(32)
    op = Radon(32, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, 32, 32\)"):
        op(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"y must have shape \(B, C, 32, 4\)"):
        op.adjoint(torch.zeros(1, 1, 32, 5))
    with pytest.raises(TypeError, match="real image"):
        op(torch.zeros(1, 1, 32, 32, dtype=torch.complex64))


# --------------------------------------------------------------------------- k-space
@pytest.mark.parametrize("acc", [4, 8])
@pytest.mark.parametrize("kind", ["equispaced", "random", "variable_density"])
def test_kspace_mask_sampling_rate_and_centre(acc, kind):
    size = 64
    m = kspace_mask(size, acc, kind=kind, generator=torch.Generator().manual_seed(1))
    assert m.shape == (size, size)
    rows = m[:, 0]
    assert torch.all(m == rows[:, None])  # whole phase-encoding lines
    assert int(rows.sum()) == round(size / acc)
    assert abs(m.mean().item() - 1 / acc) <= 1 / size
    n_center = max(1, round(size * CENTER_FRACTION[acc]))
    c = size // 2
    assert rows[c - n_center // 2: c - n_center // 2 + n_center].all()  # the fully sampled centre


def test_variable_density_mask_is_denser_near_the_centre():
    g = torch.Generator().manual_seed(0)
    near = far = 0.0
    for _ in range(40):
        rows = kspace_mask(128, 4, kind="variable_density", center_fraction=0.0, generator=g)[:, 0]
        k = (torch.arange(128) - 64).abs()
        near += rows[k < 32].sum().item()
        far += rows[k >= 32].sum().item()
    assert near > 2 * far


def test_kspace_adjoint_pair_complex_and_pinv():
    g = torch.Generator().manual_seed(0)
    op = KSpace.cartesian(32, 4, kind="random", generator=g)
    x = torch.randn(2, 1, 32, 32, generator=g, dtype=torch.complex128)
    y = torch.randn(2, 1, 32, 32, generator=g, dtype=torch.complex128)
    lhs = torch.vdot(op(x).reshape(-1), y.reshape(-1))  # <A x, y> = sum conj(Ax) y
    rhs = torch.vdot(x.reshape(-1), op.adjoint(y).reshape(-1))
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    # A A^H = M (a projection), so the adjoint is the pseudo-inverse and A pinv(y) = M y
    torch.testing.assert_close(op(op.pinv(y)), y * op.mask)
    # a fully sampled mask is unitary: the adjoint inverts it
    full = KSpace(torch.ones(32, 32))
    xr = torch.randn(1, 1, 32, 32, generator=g, dtype=torch.float64)
    torch.testing.assert_close(full.adjoint(full(xr)).real, xr)


def test_kspace_measurement_noise_only_on_sampled_entries():
    op = KSpace(kspace_mask(32, 4), noise=0.1)
    y = op.measure(torch.zeros(4, 1, 32, 32), generator=torch.Generator().manual_seed(0))
    assert y.is_complex()
    assert (y[..., op.mask == 0] == 0).all()
    s = y[..., op.mask == 1].abs().pow(2).mean().sqrt().item()
    assert 0.08 < s < 0.12


def test_kspace_bad_input():
    with pytest.raises(ValueError, match="samples nothing"):
        KSpace(torch.zeros(16, 16))
    with pytest.raises(ValueError, match="only 0 and 1"):
        KSpace(torch.full((16, 16), 0.5))
    op = KSpace(kspace_mask(16, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, 16, 16\)"):
        op(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="acceleration must be >= 1"):
        kspace_mask(16, 0.5)
    with pytest.raises(ValueError, match="unknown mask kind"):
        kspace_mask(16, 4, kind="radial")
