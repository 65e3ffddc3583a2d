"""Patch-wise restoration (restoration/patches.py): one patch is the plain model, overlaps are averaged."""
from __future__ import annotations

import pytest
import torch

from ddlearn import schedules
from ddlearn.operators import Downsample, Mask
from ddlearn.operators.parametric import LowLight
from ddlearn.restoration.gdp import sample_gdp
from ddlearn.restoration.patches import ChannelModel, PatchModel, Upsample, grid, sample_hierarchical
from ddlearn.samplers import sample_ddim

SCHED = schedules.linear(1000)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def content_model(x, t):
    """eps depends on the whole patch it sees (its mean), so patches disagree where they overlap."""
    return 0.5 * x + x.mean((1, 2, 3), keepdim=True) + 1e-4 * t.reshape(-1, 1, 1, 1)


def test_grid_covers_the_image_flush_with_the_border():
    assert grid(32, 16, 8) == [0, 8, 16]
    assert grid(40, 16, 16) == [0, 16, 24]
    assert grid(16, 16, 8) == [0]
    pm = PatchModel(content_model, 16, 12)
    assert pm.coverage(40, 28).min() >= 1


def test_an_image_that_is_one_patch_is_the_plain_model():
    x = torch.randn(3, 2, 16, 16, generator=gen(0))
    t = torch.full((3,), 400.0)
    assert torch.equal(PatchModel(content_model, 16)(x, t), content_model(x, t))


def test_one_patch_restoration_equals_the_plain_restoration():
    x_T = torch.randn(2, 1, 16, 16, generator=gen(0))
    op = LowLight(0.5, mask_res=2, copies=2)
    op2 = LowLight(0.5, mask_res=2, copies=2)
    y = LowLight(torch.tensor([0.3, 0.25]), mask_res=0, copies=2)(torch.rand(2, 1, 16, 16, generator=gen(1))).detach()
    kw = dict(y=y, scale=0.3, generator=None, progress=False)
    a = sample_gdp(content_model, x_T, SCHED, 10, operator=op, **{**kw, "generator": gen(2)})
    b = sample_gdp(PatchModel(content_model, 16), x_T, SCHED, 10, operator=op2, **{**kw, "generator": gen(2)})
    assert torch.equal(a, b)
    assert torch.equal(op.f, op2.f)
    c = sample_ddim(PatchModel(content_model, 16), x_T, SCHED, 5, progress=False)
    assert torch.equal(c, sample_ddim(content_model, x_T, SCHED, 5, progress=False))


def test_overlapping_estimates_are_averaged():
    x = torch.randn(1, 1, 24, 24, generator=gen(0))
    t = torch.tensor([100.0])
    pm = PatchModel(content_model, 16, 8)
    out = pm(x, t)
    want = torch.zeros_like(x)
    count = torch.zeros_like(x)
    for i in (0, 8):
        for j in (0, 8):
            want[..., i:i + 16, j:j + 16] += content_model(x[..., i:i + 16, j:j + 16], t)
            count[..., i:i + 16, j:j + 16] += 1
    assert torch.allclose(out, want / count, atol=1e-6)
    # a model that acts pixel by pixel is unchanged by the patching, whatever the overlap
    assert torch.allclose(PatchModel(lambda z, s: 0.7 * z, 16, 5)(x, t), 0.7 * x, atol=1e-6)


def test_patch_model_batches_and_bad_input():
    x = torch.randn(2, 1, 32, 32, generator=gen(0))
    t = torch.tensor([10.0, 20.0])
    assert torch.allclose(PatchModel(content_model, 16, 8, batch=3)(x, t), PatchModel(content_model, 16, 8)(x, t))
    with pytest.raises(ValueError, match="stride must be at most"):
        PatchModel(content_model, 16, 20)
    with pytest.raises(ValueError, match="at least 16x16"):
        PatchModel(content_model, 16)(torch.randn(1, 1, 8, 8), 5.0)
    with pytest.raises(TypeError, match="callable"):
        PatchModel("unet", 16)


def test_upsample_operator_adjoint_and_pinv():
    up = Upsample(2)
    x = torch.randn(1, 1, 4, 4, generator=gen(0), dtype=torch.float64)
    y = torch.randn(1, 1, 8, 8, generator=gen(1), dtype=torch.float64)
    assert torch.allclose((up(x) * y).sum(), (x * up.adjoint(y)).sum())
    assert torch.allclose(up.pinv(up(x)), x)


def test_hierarchical_restoration_runs_and_is_plain_for_one_patch():
    x_T = torch.randn(1, 1, 32, 32, generator=gen(0))
    op = Mask.box(32, 8, 8, 16, 16)
    y = op(torch.rand(1, 1, 32, 32, generator=gen(1)) * 2 - 1)
    out = sample_hierarchical(content_model, x_T, SCHED, 8, operator=op, y=y, patch=16, scale=0.5,
                              generator=gen(2), progress=False)
    assert out.shape == x_T.shape and torch.isfinite(out).all()
    small = x_T[..., :16, :16]
    d = Downsample(2)
    ys = d(torch.rand(1, 1, 16, 16, generator=gen(3)))
    a = sample_hierarchical(content_model, small, SCHED, 6, operator=d, y=ys, patch=16, generator=gen(4),
                            progress=False)
    b = sample_gdp(content_model, small, SCHED, 6, operator=d, y=ys, generator=gen(4), progress=False)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="multiple of patch"):
        sample_hierarchical(content_model, torch.randn(1, 1, 24, 24), SCHED, 4, operator=Mask.box(24, 2, 2, 4, 4),
                            y=torch.zeros(1, 1, 24, 24), patch=16, progress=False)


def test_channel_model_is_the_gray_model_on_each_channel_and_the_model_itself_for_one_channel():
    x = torch.randn(2, 3, 8, 8, generator=gen(0))
    t = torch.tensor([10.0, 700.0])
    cm = ChannelModel(content_model)
    out = cm(x, t)
    for c in range(3):  # content_model uses each item's mean: channels must be separate items
        assert torch.allclose(out[:, c:c + 1], content_model(x[:, c:c + 1], t), atol=1e-6)
    assert not torch.allclose(out, content_model(x, t), atol=1e-3)
    one = torch.randn(2, 1, 8, 8, generator=gen(1))
    assert torch.equal(cm(one, t), content_model(one, t))
    assert torch.equal(cm(one, 5.0), content_model(one, torch.full((2,), 5.0)))


def test_channel_model_refuses_bad_input():
    with pytest.raises(TypeError, match="model"):
        ChannelModel(3)
    with pytest.raises(ValueError, match="t must"):
        ChannelModel(content_model)(torch.zeros(2, 3, 8, 8), torch.zeros(3))
    with pytest.raises(ValueError, match="x"):
        ChannelModel(content_model)(torch.zeros(2, 3, 8), 1.0)
