"""Chapter 07's parametrised operators: closed forms, adjoints, gradients in their parameters, bad input."""
from __future__ import annotations

import pytest
import torch

from ddlearn.operators import Blur, gaussian_kernel
from ddlearn.operators.parametric import BlindBlur, ColourMatrix, Gamma, LowLight, gaussian_kernel_1d


def _x(shape=(2, 3, 16, 16), seed=0, dtype=torch.float64):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def test_low_light_is_f_u_plus_m_in_intensity_units():
    x = _x()
    mask = torch.tensor([[0.0, 0.1], [0.2, 0.3]]).reshape(1, 1, 2, 2)
    op = LowLight(0.3, mask, mask_res=2)
    u = (x + 1) / 2
    # bilinear with align_corners: the corners of the image carry the grid's corner values
    M = torch.nn.functional.interpolate(mask.double(), size=(16, 16), mode="bilinear", align_corners=True)
    assert torch.allclose(op(x), 2 * (0.3 * u + M) - 1, atol=1e-6)
    assert op.offset(16, 16)[0, 0, 0, 0] == 0 and abs(op.offset(16, 16)[0, 0, -1, -1] - 0.3) < 1e-6
    assert not op.linear
    assert op.estimates()["f"] == pytest.approx(0.3)


def test_low_light_per_item_copies_and_gradients():
    x = _x((3, 1, 8, 8))
    op = LowLight(torch.tensor([0.2, 0.4, 0.6]), mask_res=0, copies=3)
    y = op(x)
    for b, f in enumerate((0.2, 0.4, 0.6)):
        assert torch.allclose(y[b], 2 * f * (x[b] + 1) / 2 - 1, atol=1e-6)
    # d/df of sum(y) = 2 * sum(u) per copy
    y.sum().backward()
    assert torch.allclose(op.f.grad.reshape(-1), (2 * (x + 1) / 2).sum((1, 2, 3)).float(), rtol=1e-5)


def test_gamma_closed_form():
    x = _x()
    op = Gamma(2.2)
    u = ((x + 1) / 2).clamp(1e-4, 1)
    assert torch.allclose(op(x), 2 * u ** 2.2 - 1, atol=1e-5)


def test_colour_matrix_closed_form_and_adjoint():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(3, 3, generator=g)
    op = ColourMatrix(W)
    x, y = _x(dtype=torch.float32), _x(seed=2, dtype=torch.float32)
    want = torch.einsum("cd,bdhw->bchw", W, x)
    assert torch.allclose(op(x), want, atol=1e-6)
    lhs = (op(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-5)
    # generic (autograd) adjoint of the base class agrees with the closed form
    base = super(ColourMatrix, op).adjoint(y)
    assert torch.allclose(base, op.adjoint(y), atol=1e-5)


def test_blind_blur_equals_blur_and_is_self_adjoint():
    x, y = _x(), _x(seed=3)
    op = BlindBlur(1.5, sigma_max=1.5)
    ref = Blur(1.5)  # same kernel: 2 ceil(4.5) + 1 = 11 taps
    assert torch.allclose(op(x), ref(x), atol=1e-12)
    assert torch.allclose((op(x) * y).sum(), (x * op.adjoint(y)).sum(), rtol=1e-10)
    assert torch.allclose(op.adjoint(y), op(y), atol=1e-12)  # a symmetric kernel
    assert op.estimates()["sigma"] == pytest.approx(1.5)


def test_blind_blur_pinv_equals_blurs():
    y = _x(seed=4)
    assert torch.allclose(BlindBlur(1.5, sigma_max=1.5).pinv(y), Blur(1.5).pinv(y), atol=1e-9)


def test_blind_blur_kernel_is_separable_gaussian_and_differentiable():
    k1 = gaussian_kernel_1d(torch.tensor([1.3], dtype=torch.float64), 4)[0]
    assert torch.allclose(k1[:, None] * k1[None, :], gaussian_kernel(1.3, 9), atol=1e-12)
    op = BlindBlur(1.0)
    x = _x((1, 1, 32, 32))
    loss = (op(x) - x).pow(2).sum()  # wider blur, larger change: d loss / d sigma > 0
    loss.backward()
    assert op.log_sigma.grad.item() > 0


def test_blind_blur_wraps_a_kernel_wider_than_the_image():
    x = _x((1, 1, 8, 8))
    op = BlindBlur(3.0)  # 25 taps on an 8x8 image
    out = op(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert torch.allclose(out.mean(), x.mean(), atol=1e-12)  # a normalised kernel keeps the mean


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="f must be positive"):
        LowLight(-0.5)
    with pytest.raises(ValueError, match="mask must have shape"):
        LowLight(0.5, torch.zeros(1, 1, 3, 3), mask_res=4)
    with pytest.raises(ValueError, match="channels"):
        LowLight(0.5, channels=3)(_x((1, 1, 8, 8)))
    with pytest.raises(ValueError, match="copies"):
        LowLight(torch.tensor([0.2, 0.3]), copies=2)(_x((3, 1, 8, 8)))
    with pytest.raises(ValueError, match="sigma must be at most"):
        BlindBlur(5.0, sigma_max=4.0)
    with pytest.raises(ValueError, match="weights must have shape"):
        ColourMatrix(torch.eye(2))
    with pytest.raises(TypeError, match="non-linear"):
        LowLight(0.5).adjoint(_x((1, 1, 8, 8)))
