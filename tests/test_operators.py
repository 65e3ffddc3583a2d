"""Measurement operators: adjoints, pseudo-inverses, against scipy / scikit-image and dense linear algebra."""
import numpy as np
import pytest
import torch

from ddlearn import operators as ops


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def image_ops(size=8):
    g = gen(1)
    return {
        "identity": ops.Identity(),
        "mask_random": ops.Mask.random_pixels(size, 0.4, generator=g),
        "mask_box": ops.Mask.box(size, 2, 1, 3, 4),
        "down2": ops.Downsample(2),
        "down4": ops.Downsample(4),
        "blur": ops.Blur(1.0),
        "gray": ops.Grayscale(3),
        "blur_then_down": ops.Downsample(2) @ ops.Blur(0.8),
    }


def x_for(name, size=8, b=2):
    c = 3 if name == "gray" else 2
    return torch.randn(b, c, size, size, generator=gen(2), dtype=torch.float64)


def dense(op, x_shape):
    """The operator as a dense matrix, one basis vector at a time (tiny sizes only)."""
    n = int(np.prod(x_shape[1:]))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *x_shape[1:])
    return op(basis).reshape(n, -1).T  # (m, n)


@pytest.mark.parametrize("name", list(image_ops()))
def test_adjoint_identity(name):
    op = image_ops()[name]
    x = x_for(name)
    Ax = op(x)
    y = torch.randn(Ax.shape, generator=gen(3), dtype=torch.float64)
    lhs = (Ax * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert abs(lhs - rhs) <= 1e-5 * max(1.0, abs(lhs.item()))


@pytest.mark.parametrize("name", list(image_ops()))
def test_pinv_is_a_generalised_inverse(name):
    op = image_ops()[name]
    x = x_for(name)
    Ax = op(x)
    rel = (op(op.pinv(Ax)) - Ax).norm() / Ax.norm()
    # Blur's pinv truncates frequencies whose gain is below rcond*max: A A^+ A = A up to those.
    assert rel < (2e-3 if "blur" in name else 1e-6)


@pytest.mark.parametrize("name", ["mask_random", "down2", "gray", "blur_then_down", "blur"])
def test_pinv_against_dense_lstsq(name):
    size = 8 if "blur" in name else 4
    op = image_ops(size)[name]
    if name == "blur":
        op = ops.Blur(0.7, rcond=1e-6)
    x = x_for(name, size=size, b=1)
    y = op(x) + 0.1 * torch.randn(op(x).shape, generator=gen(5), dtype=torch.float64)  # y off A's range
    M = dense(op, tuple(x.shape))
    ref = (torch.linalg.pinv(M, rtol=1e-6 if name == "blur" else 1e-10) @ y.reshape(-1)).reshape(x.shape)
    assert torch.allclose(op.pinv(y), ref, atol=1e-6)


def test_generic_adjoint_and_pinv_match_closed_forms():
    """The base class's autograd adjoint and CGLS pinv agree with Downsample's closed forms."""
    op = ops.Downsample(2)
    y = torch.randn(2, 1, 4, 4, generator=gen(6), dtype=torch.float64)
    assert torch.allclose(ops.Operator.adjoint(op, y), op.adjoint(y), atol=1e-12)
    assert torch.allclose(ops.Operator.pinv(op, y), op.pinv(y), atol=1e-8)


def test_blur_matches_scipy_wrap_convolution():
    from scipy import ndimage

    op = ops.Blur(1.2)
    x = torch.randn(1, 1, 12, 12, generator=gen(7), dtype=torch.float64)
    ref = ndimage.convolve(x[0, 0].numpy(), op.kernel.numpy(), mode="wrap")
    assert np.allclose(op(x)[0, 0].numpy(), ref, atol=1e-10)


def test_downsample_matches_skimage():
    from skimage.transform import downscale_local_mean

    x = torch.randn(1, 1, 12, 12, generator=gen(8), dtype=torch.float64)
    for f in (2, 3, 4):
        ref = downscale_local_mean(x[0, 0].numpy(), (f, f))
        assert np.allclose(ops.Downsample(f)(x)[0, 0].numpy(), ref)


def test_matrix_operator_and_projection():
    A = torch.tensor([[1.0, 0.5]])
    op = ops.Matrix(A, noise=0.1)
    x = torch.randn(5, 2, generator=gen(9), dtype=torch.float64)
    y = op(x)
    # the range-null-space projection is consistent: A(project(z, y)) = y
    z = torch.randn(5, 2, generator=gen(10), dtype=torch.float64)
    assert torch.allclose(op(op.project(z, y)), y, atol=1e-10)
    assert torch.allclose(op.pinv(y), y @ torch.linalg.pinv(A.double()).T)


def test_measure_adds_noise_of_the_right_size():
    op = ops.Downsample(2, noise=0.3)
    x = torch.zeros(64, 1, 16, 16)
    y = op.measure(x, generator=gen(11))
    assert abs(y.std().item() - 0.3) < 0.02
    assert torch.equal(op.measure(x, generator=gen(1)), op.measure(x, generator=gen(1)))


def test_wiener_recovers_a_mildly_blurred_image():
    op = ops.Blur(0.8)
    x = torch.rand(1, 1, 16, 16, generator=gen(12), dtype=torch.float64) * 2 - 1
    y = op(x)
    assert (op.wiener(y, nsr=1e-6) - x).abs().max() < 1e-2


# ---- shape and value errors -------------------------------------------------
def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="multiples of factor=3"):
        ops.Downsample(3)(torch.zeros(1, 1, 8, 8))
    m = ops.Mask.box(8, 0, 0, 2, 2)
    with pytest.raises(ValueError, match="match the mask"):
        m(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="match the mask"):
        m.adjoint(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ops.Blur(1.0)(torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        ops.Matrix([[1.0, 0.0]])(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="Grayscale"):
        ops.Grayscale(3)(torch.zeros(1, 1, 4, 4))


def test_bad_arguments():
    with pytest.raises(ValueError, match="noise"):
        ops.Blur(1.0, noise=-0.1)
    with pytest.raises(ValueError, match="0 and 1"):
        ops.Mask(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="factor"):
        ops.Downsample(0)
    with pytest.raises(ValueError, match="sigma"):
        ops.Blur(0.0)
    with pytest.raises(ValueError, match="unknown operator name"):
        ops.get("zoom")
    with pytest.raises(TypeError, match="Tensor"):
        ops.Blur(1.0)([[1.0]])


def test_nonlinear_operator_has_no_adjoint():
    class Gamma(ops.Operator):
        linear = False

        def __init__(self):
            super().__init__()
            self.g = torch.nn.Parameter(torch.tensor(1.5))

        def forward(self, x):
            return ((x + 1) / 2).clamp_min(0) ** self.g * 2 - 1

        def input_shape(self, y_shape):
            return y_shape

    op = Gamma()
    x = torch.rand(1, 1, 4, 4)
    op(x).sum().backward()  # parameters are learnable by gradient
    assert op.g.grad is not None
    with pytest.raises(TypeError, match="non-linear"):
        op.adjoint(x)
    with pytest.raises(TypeError, match="non-linear"):
        op.pinv(x)


def test_base_class_serves_a_complex_fourier_operator():
    """Chapter 09's undersampled MRI operator needs only forward/input_shape: the generic adjoint
    (real inner product Re<Ax, y>) and CGLS pinv work for real images and complex k-space."""
    class Fourier(ops.Operator):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("m", mask)

        def forward(self, x):
            return torch.fft.fft2(x, norm="ortho") * self.m

        def input_shape(self, y_shape):
            return tuple(y_shape)

    g = gen(20)
    op = Fourier((torch.rand(8, 8, generator=g) < 0.4).to(torch.complex128))
    x = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.complex128)
    assert abs((op(x).conj() * y).real.sum() - (x * op.adjoint(y)).sum()) < 1e-10
    xp = op.pinv(op(x))
    assert xp.dtype == torch.float64 and (op(xp) - op(x)).abs().max() < 1e-8


def test_project_with_a_precomputed_pinv_y():
    """DDNM projects onto one y at every step and passes A^+ y once: the same result, bit for bit."""
    op = ops.Downsample(2)
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(2, 1, 8, 8, generator=g), torch.randn(2, 1, 8, 8, generator=g)
    y = op(x)
    y0, z0 = y.clone(), z.clone()
    assert torch.equal(op.project(z, y, pinv_y=op.pinv(y)), op.project(z, y))
    assert torch.equal(y, y0) and torch.equal(z, z0)
    with pytest.raises(ValueError, match=r"pinv_y must have the same shape as x \(2, 1, 8, 8\), got \(2, 1, 4, 4\)"):
        op.project(z, y, pinv_y=y)
    bad = op.pinv(y)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="pinv_y contains 1 non-finite"):
        op.project(z, y, pinv_y=bad)
