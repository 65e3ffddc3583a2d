"""Data-consistency samplers (Song et al. 2022's projection, score-MRI, x0 consistency) on the one DDIM loop."""
from __future__ import annotations

import math

import pytest
import torch

from ddlearn import schedules
from ddlearn.metrics import consistency_psnr
from ddlearn.operators import Blur
from ddlearn.operators.medical import KSpace, Radon, kspace_mask
from ddlearn.restoration.consistency import (data_consistency, reconstruct, sample_consistency, sample_projection,
                                             sample_score_mri)
from ddlearn.samplers import sample_ddim

SCH = schedules.get("linear", T=1000)


class GaussianEps(torch.nn.Module):
    """The exact eps-model of x0 ~ N(0, s^2 I): eps_hat = sqrt(1-ab) x_t / (ab s^2 + 1 - ab)."""

    def __init__(self, schedule, s=0.5):
        super().__init__()
        self.ab, self.s2 = schedule.alpha_bars, s * s

    def forward(self, x, t):
        ab = self.ab[t.round().long()].to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return (1 - ab).sqrt() * x / (ab * self.s2 + 1 - ab)


def _truth(size, n=2, seed=0):
    from ddlearn.data.medical import circle_mask

    g = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(n, 1, size, size, generator=g)) * circle_mask(size)


@pytest.mark.parametrize("make_op", [lambda: Radon(32, 6), lambda: KSpace(kspace_mask(32, 4))], ids=["radon", "kspace"])
@pytest.mark.parametrize("method", ["projection", "score_mri", "x0"])
def test_data_consistency_holds(make_op, method):
    op = make_op()
    x = _truth(32)
    y = op(x)
    model = GaussianEps(SCH)
    g = torch.Generator().manual_seed(1)
    x_T = torch.randn(x.shape, generator=g)
    if method == "projection":
        out = sample_projection(model, x_T, SCH, 10, operator=op, y=y, generator=g, progress=False)
    elif method == "score_mri":
        out = sample_score_mri(model, x_T, SCH, 10, operator=op, y=y, generator=g, progress=False)
    else:
        out = sample_consistency(model, x_T, SCH, 10, operator=op, y=y, on="x0", generator=g, progress=False)
    assert not out.is_complex() and out.shape == x.shape
    scale = y.abs().max().item()
    assert consistency_psnr(op, out, y, data_range=scale) > 60  # A(out) = y to float precision
    # and the prior filled the rest: not the zero image, not wildly off
    assert consistency_psnr(op, torch.zeros_like(x), y, data_range=scale) < 30


def test_without_consistency_it_is_plain_ddim():
    model = GaussianEps(SCH)
    op = Radon(16, 4)
    x_T = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    y = op(_truth(16))
    a = sample_consistency(model, x_T, SCH, 8, operator=op, y=y, weight=0.0, final=False, noisy_y=False,
                           progress=False)
    b = sample_ddim(model, x_T, SCH, 8, spacing="linspace", progress=False)
    torch.testing.assert_close(a, b)


def test_data_consistency_is_a_projection():
    op = Radon(24, 5)
    x, other = _truth(24, seed=0).double(), _truth(24, seed=1).double()
    y = op(x)
    p = data_consistency(op, other, y)
    assert (op(p) - y).abs().max() < 1e-6 * y.abs().max()
    torch.testing.assert_close(data_consistency(op, p, y), p, atol=1e-7, rtol=0)  # idempotent
    half = data_consistency(op, other, y, weight=0.5)
    torch.testing.assert_close(half, (other + p) / 2, atol=1e-9, rtol=0)
    # k-space: the sampled lines of the result are the measured ones
    ks = KSpace(kspace_mask(24, 4))
    yk = ks(x)
    q = data_consistency(ks, other, yk)
    assert not q.is_complex()
    assert (ks(q) - yk).abs().max() < 1e-10  # exact over real images (Hermitian symmetry), not just Re(A^H y)
    assert (ks(ks.adjoint(yk).real) - yk).abs().max() > 1e-3  # which the real part of the zero-filled is not


def test_damping_trusts_noisy_data_less():
    op = Radon(24, 5)
    x = _truth(24).double()
    y = op(x) + 0.5 * torch.randn(op(x).shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    start = torch.zeros_like(x)
    exact = data_consistency(op, start, y)
    damped = data_consistency(op, start, y, damping=50.0)
    assert damped.norm() < exact.norm()


def test_reconstruct_averages_draws():
    op = KSpace(kspace_mask(16, 4))
    x = _truth(16, n=3)
    y = op(x)
    mean, draws = reconstruct(GaussianEps(SCH), SCH, op, y, method="score_mri", steps=5, samples=4,
                              generator=torch.Generator().manual_seed(0))
    assert draws.shape == (4, 3, 1, 16, 16) and mean.shape == (3, 1, 16, 16)
    torch.testing.assert_close(mean, draws.mean(0))
    assert not torch.allclose(draws[0], draws[1])  # independent draws


def test_bad_input():
    model = GaussianEps(SCH)
    op = Radon(16, 4)
    x_T = torch.randn(1, 1, 16, 16)
    with pytest.raises(ValueError, match="y must have shape"):
        sample_projection(model, x_T, SCH, 4, operator=op, y=torch.zeros(1, 1, 16, 5), progress=False)
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, 16, 16\)"):
        sample_projection(model, torch.randn(1, 1, 8, 8), SCH, 4, operator=op, y=torch.zeros(1, 1, 16, 4),
                          progress=False)
    with pytest.raises(ValueError, match="unknown on"):
        sample_consistency(model, x_T, SCH, 4, operator=op, y=op(x_T), on="y", progress=False)
    with pytest.raises(TypeError, match="no damped solve"):
        data_consistency(Blur(1.0), torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), damping=1.0)
    with pytest.raises(ValueError, match="unknown method"):
        reconstruct(model, SCH, op, op(x_T), method="magic")
    assert math.isfinite(consistency_psnr(op, x_T, op(x_T)))
