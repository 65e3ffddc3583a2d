"""GDP (restoration/gdp.py): the unguided limit, the guidance step, blind parameter estimates, bad input."""
from __future__ import annotations

import pytest
import torch

from ddlearn import schedules
from ddlearn.operators import Blur, Downsample, Grayscale, Mask
from ddlearn.operators.parametric import BlindBlur, LowLight
from ddlearn.restoration import gdp
from ddlearn.restoration.gdp import (Guide, colour_constancy_loss, exposure_loss, gdp_predict, sample_gdp,
                                     sample_gdp_x0, sample_gdp_xt, tv_loss)
from ddlearn.samplers import sample_ddim

SCHED = schedules.linear(1000)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def toy_model(x, t):
    """A stand-in eps-model: depends on x and t, cheap and deterministic."""
    return 0.3 * x + 1e-4 * t.reshape(-1, *([1] * (x.ndim - 1)))


def oracle(truth):
    """The exact eps-model of a prior that is a point mass at ``truth``: x0-hat is the truth at every t."""
    def model(x, t):
        ab = SCHED.alpha_bar(t).reshape(-1, 1, 1, 1).to(x.dtype)
        return (x - ab.sqrt() * truth) / (1 - ab).sqrt()
    return model


@pytest.mark.parametrize("on", ["x0", "xt"])
def test_scale_zero_is_the_unguided_sampler_bit_for_bit(on):
    x_T = torch.randn(2, 1, 16, 16, generator=gen(0))
    op = Downsample(4)
    y = op(torch.rand(2, 1, 16, 16, generator=gen(1)) * 2 - 1)
    a = sample_gdp(toy_model, x_T, SCHED, 12, operator=op, y=y, scale=0.0, on=on, clip=None,
                   generator=gen(2), progress=False)
    b = sample_ddim(toy_model, x_T, SCHED, 12, eta=1.0, spacing="linspace", generator=gen(2), progress=False)
    assert torch.equal(a, b)


def test_x0_hook_adds_scale_times_the_image_space_residual_to_the_mean():
    x = torch.randn(2, 1, 8, 8, generator=gen(0))
    m = Mask.random_pixels(8, 0.5, generator=gen(1))
    y = m(torch.rand(2, 1, 8, 8, generator=gen(2)))
    hook = gdp_predict(toy_model, [Guide(m, y)], scale=0.3, on="x0", clip=None)
    ab = float(SCHED.alpha_bars[500])
    x0, eps, shift = hook(x, 500.0, ab, 0)
    t = torch.full((2,), 500.0)
    want_x0 = (x - (1 - ab) ** 0.5 * toy_model(x, t)) / ab ** 0.5
    assert torch.allclose(x0, want_x0, atol=1e-5)
    assert torch.allclose(shift, 0.3 * m.mask * (x0 - y), atol=1e-6)  # P x0 - A^+ y for a mask


def test_measurement_space_for_blur_and_xt_gradient_at_x_t():
    x = torch.randn(1, 1, 16, 16, generator=gen(0))
    op = Blur(1.0)
    y = op(torch.rand(1, 1, 16, 16, generator=gen(1)))
    g = Guide(op, y)
    assert g.compare == "measurement"
    hook = gdp_predict(toy_model, [g], scale=0.5, on="xt", clip=None, normalize=False)
    _, _, shift = hook(x, 300.0, float(SCHED.alpha_bars[300]), 0)
    assert torch.allclose(shift, 0.5 * op.adjoint(op(x) - y), atol=1e-6)  # A^T (A x_t - y)
    # normalised (the default): the same step divided by the operator's squared gain, measured at x_t
    gain, _ = gdp.operator_gain(op, x, generator=gen(9))
    hook = gdp_predict(toy_model, [g], scale=0.5, on="xt", clip=None, generator=gen(9))
    _, _, shift = hook(x, 300.0, float(SCHED.alpha_bars[300]), 0)
    assert torch.allclose(shift, 0.5 * op.adjoint(op(x) - y) / gain.reshape(-1, 1, 1, 1), atol=1e-6)
    assert Guide(Downsample(2), torch.zeros(1, 1, 8, 8)).compare == "image"
    assert Guide(Grayscale(3), torch.zeros(1, 1, 8, 8)).compare == "image"


def test_operator_gain_is_the_squared_gain_of_known_operators():
    from ddlearn.operators import Compose
    from ddlearn.restoration.patches import Upsample

    x = torch.rand(3, 1, 16, 16, generator=gen(0)) * 2 - 1
    x_copy = x.clone()
    f = torch.tensor([0.2, 0.3, 0.5])
    cases = [(LowLight(f, mask_res=2, copies=3), f ** 2),          # u_y = f u + M: gain f
             (Downsample(4), torch.full((3,), 1 / 16)),            # a block mean: gain 1/4
             (Mask.box(16, 4, 4, 8, 8), torch.ones(3)),
             (Compose(Mask.box(64, 16, 16, 32, 32), Upsample(4)), torch.full((3,), 16.0))]  # 16 copies of a pixel
    for op, want in cases:
        gain, v = gdp.operator_gain(op, x, generator=gen(1))
        assert torch.allclose(gain, want, rtol=1e-3), (type(op).__name__, gain)
        again, _ = gdp.operator_gain(op, x, iters=2, v=v)  # warm start: already converged
        assert torch.allclose(again, want, rtol=1e-3)
    assert torch.equal(x, x_copy)
    with pytest.raises(ValueError, match="iters"):
        gdp.operator_gain(Downsample(4), x, iters=0)


def test_normalised_guidance_does_not_depend_on_the_operators_gain():
    """Low light with a known exposure: the normalised step is the image-space step x0 - x_true, whatever f."""
    truth = torch.rand(2, 1, 8, 8, generator=gen(0)) * 1.6 - 0.8
    x = torch.randn(2, 1, 8, 8, generator=gen(1))
    ab = float(SCHED.alpha_bars[400])
    shifts = []
    for f in (0.1, 0.4):
        op = LowLight(f, mask_res=0).requires_grad_(False)
        hook = gdp_predict(toy_model, [Guide(op, op(truth))], scale=0.3, on="x0", clip=None)
        x0, _, shift = hook(x, 400.0, ab, 0)
        assert torch.allclose(shift, 0.3 * (x0 - truth), atol=1e-5)
        shifts.append(shift)
        raw = gdp_predict(toy_model, [Guide(op, op(truth))], scale=0.3, on="x0", clip=None, normalize=False)
        assert torch.allclose(raw(x, 400.0, ab, 0)[2], 0.3 * f ** 2 * (x0 - truth), atol=1e-5)  # f^2 smaller
    assert torch.allclose(shifts[0], shifts[1], atol=1e-5)


def test_guidance_makes_samples_consistent_with_the_measurement():
    x_T = torch.randn(3, 1, 16, 16, generator=gen(0))
    op = Downsample(4)
    truth = torch.rand(3, 1, 16, 16, generator=gen(1)) * 2 - 1
    y = op(truth)
    err = {}
    for on, scale in (("x0", 0.0), ("x0", 0.5), ("xt", 0.5)):
        out = sample_gdp(toy_model, x_T, SCHED, 30, operator=op, y=y, scale=scale, on=on, generator=gen(2),
                         progress=False)
        err[(on, scale)] = (op(out) - y).pow(2).mean().item()
    assert err[("x0", 0.5)] < 0.1 * err[("x0", 0.0)]
    assert err[("xt", 0.5)] < 0.5 * err[("x0", 0.0)]
    assert sample_gdp_x0(toy_model, x_T, SCHED, 5, operator=op, y=y, generator=gen(2), progress=False).shape == x_T.shape
    assert torch.equal(sample_gdp_xt(toy_model, x_T, SCHED, 5, operator=op, y=y, generator=gen(3), progress=False),
                       sample_gdp(toy_model, x_T, SCHED, 5, operator=op, y=y, on="xt", generator=gen(3),
                                  progress=False))


def test_blind_low_light_recovers_f_and_the_image():
    truth = torch.rand(2, 3, 16, 16, generator=gen(0)) * 1.6 - 0.8
    f_true = torch.tensor([0.2, 0.3])
    y = LowLight(f_true, mask_res=0, copies=2)(truth).detach()
    op = LowLight(0.5, mask_res=0, copies=2)
    out = sample_gdp(oracle(truth), torch.randn(2, 3, 16, 16, generator=gen(1)), SCHED, 60, operator=op, y=y,
                     scale=0.3, param_lr=0.02, generator=gen(2), progress=False)
    f = op.estimates()["f"].reshape(-1)
    assert torch.allclose(f, f_true, rtol=0.05), f
    assert (out - truth).abs().max() < 0.05


def test_blind_deblurring_recovers_the_kernel_width():
    truth = torch.rand(1, 1, 24, 24, generator=gen(3)) * 2 - 1
    y = BlindBlur(2.0)(truth).detach()
    op = BlindBlur(1.0)
    sample_gdp(oracle(truth), torch.randn(1, 1, 24, 24, generator=gen(4)), SCHED, 60, operator=op, y=y, scale=0.3,
               param_lr=0.02, generator=gen(5), progress=False)
    assert op.estimates()["sigma"] == pytest.approx(2.0, rel=0.05)


def test_known_operator_parameters_stay_put():
    truth = torch.rand(1, 1, 16, 16, generator=gen(0)) * 2 - 1
    op = LowLight(0.4, mask_res=0).requires_grad_(False)
    y = op(truth)
    sample_gdp(oracle(truth), torch.randn(1, 1, 16, 16, generator=gen(1)), SCHED, 10, operator=op, y=y,
               generator=gen(2), progress=False)
    assert op.estimates()["f"] == pytest.approx(0.4)


def test_a_restoration_never_modifies_its_inputs():
    x_T = torch.randn(2, 1, 16, 16, generator=gen(0))
    op = Mask.box(16, 4, 4, 8, 8)
    y = op(torch.rand(2, 1, 16, 16, generator=gen(1)))
    x_copy, y_copy = x_T.clone(), y.clone()
    for on in ("x0", "xt"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator=op, y=y, on=on, noisy_y=True, generator=gen(2), progress=False)
    assert torch.equal(x_T, x_copy) and torch.equal(y, y_copy)


def test_quality_losses_closed_forms():
    x = torch.full((2, 3, 16, 16), 0.2)  # intensity 0.6 everywhere
    assert torch.allclose(exposure_loss(x, level=0.6), torch.zeros(2), atol=1e-12)
    assert torch.allclose(exposure_loss(x, level=0.5), torch.full((2,), 0.01), atol=1e-7)
    c = torch.zeros(1, 3, 4, 4)
    c[:, 0] = 1.0  # channel means 1, 0.5, 0.5: (rg, rb, gb) differences 0.5, 0.5, 0
    assert colour_constancy_loss(c).item() == pytest.approx(0.5)
    assert colour_constancy_loss(torch.zeros(1, 1, 4, 4)).item() == 0
    ramp = torch.arange(4.0).reshape(1, 4).expand(4, 4)
    assert tv_loss(ramp).item() == pytest.approx(1.0)


def test_quality_losses_steer_low_light_exposure():
    x_T = torch.randn(1, 3, 16, 16, generator=gen(0))
    op = LowLight(0.5, mask_res=0).requires_grad_(False)
    y = op(torch.zeros(1, 3, 16, 16))
    dark = sample_gdp(toy_model, x_T, SCHED, 20, operator=op, y=y, scale=0.0, quality={"exposure": 1.0},
                      generator=gen(1), progress=False)
    bright = sample_gdp(toy_model, x_T, SCHED, 20, operator=op, y=y, scale=0.2,
                        quality={"exposure": 5.0, "level": 0.9}, generator=gen(1), progress=False)
    assert bright.mean() > dark.mean() + 0.1


def test_bad_input_is_named():
    x_T = torch.randn(1, 1, 16, 16)
    op = Downsample(4)
    y = torch.zeros(1, 1, 4, 4)
    kw = dict(operator=op, y=y, progress=False)
    with pytest.raises(ValueError, match="scale must be >= 0"):
        sample_gdp(toy_model, x_T, SCHED, 5, scale=-1.0, **kw)
    with pytest.raises(ValueError, match="y must have the shape"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator=op, y=torch.zeros(1, 1, 8, 8), progress=False)
    with pytest.raises(ValueError, match="Mask"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator=Mask.box(8, 2, 2, 4, 4), y=torch.zeros(1, 1, 8, 8),
                   progress=False)
    with pytest.raises(ValueError, match="channels"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator=Grayscale(3), y=torch.zeros(1, 1, 16, 16), progress=False)
    with pytest.raises(ValueError, match="unknown on"):
        sample_gdp(toy_model, x_T, SCHED, 5, on="x1", **kw)
    with pytest.raises(ValueError, match="unknown quality loss"):
        sample_gdp(toy_model, x_T, SCHED, 5, quality={"sharpness": 1.0}, **kw)
    with pytest.raises(ValueError, match="pair up"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator=[op, op], y=[y], progress=False)
    with pytest.raises(ValueError, match="non-linear"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator=LowLight(0.5), y=torch.zeros(1, 1, 16, 16),
                   compare="image", progress=False)
    with pytest.raises(TypeError, match="operator must be"):
        sample_gdp(toy_model, x_T, SCHED, 5, operator="sr4", y=y, progress=False)
    with pytest.raises(ValueError, match="clip"):
        sample_gdp(toy_model, x_T, SCHED, 5, clip=(1.0, -1.0), **kw)
    with pytest.raises(TypeError, match="normalize must be a bool"):
        sample_gdp(toy_model, x_T, SCHED, 5, normalize="yes", **kw)


def test_defaults_are_documented_numbers():
    assert gdp.DEFAULT_SCALE > 0 and gdp.DEFAULT_PARAM_LR > 0


def test_fit_low_light_solves_for_f_and_m_exactly_and_leaves_its_inputs():
    x = torch.rand(2, 3, 16, 16, generator=gen(0)) * 2 - 1
    f, m = torch.tensor([0.2, 0.3]), 0.05 * torch.rand(2, 1, 3, 3, generator=gen(1))
    y = LowLight(f, m, mask_res=3, copies=2)(x).detach()
    x_copy, y_copy = x.clone(), y.clone()
    op = LowLight(0.5, mask_res=3, copies=2)
    gdp.fit_low_light(op, x, y, ridge=0.0)
    assert torch.allclose(op.f.detach().reshape(-1), f, atol=1e-5)
    assert torch.allclose(op.mask.detach(), m, atol=1e-5)
    shared = LowLight(0.5, mask_res=3)  # one copy for the batch: pooled over the items
    gdp.fit_low_light(shared, x, LowLight(0.25, m[:1], mask_res=3)(x).detach(), ridge=0.0)
    assert shared.f.item() == pytest.approx(0.25, abs=1e-5)
    assert torch.equal(x, x_copy) and torch.equal(y, y_copy)
    small = LowLight(0.5, mask_res=3, copies=2)
    gdp.fit_low_light(small, x, y, ridge=1.0)  # a strong ridge shrinks M
    assert small.mask.abs().max() < m.abs().max()
    with pytest.raises(TypeError, match="operator must be a LowLight"):
        gdp.fit_low_light(Blur(1.0), x, y)
    with pytest.raises(ValueError, match="ridge"):
        gdp.fit_low_light(op, x, y, ridge=-1.0)


def test_closed_form_refit_recovers_low_light_with_an_exact_prior():
    truth = torch.rand(2, 3, 16, 16, generator=gen(0)) * 1.6 - 0.8
    f_true, m = torch.tensor([0.2, 0.3]), 0.05 * torch.rand(2, 1, 2, 2, generator=gen(1))
    y = LowLight(f_true, m, mask_res=2, copies=2)(truth).detach()
    op = LowLight(0.5, mask_res=2, copies=2)
    out = sample_gdp(oracle(truth), torch.randn(2, 3, 16, 16, generator=gen(2)), SCHED, 30, operator=op, y=y,
                     scale=0.3, param_fit="closed_form", ridge=0.0, generator=gen(3), progress=False)
    assert torch.allclose(op.f.detach().reshape(-1), f_true, rtol=1e-3)
    assert (out - truth).abs().max() < 0.01
    with pytest.raises(ValueError, match="param_fit"):
        sample_gdp(oracle(truth), torch.randn(2, 3, 16, 16), SCHED, 3, operator=op, y=y, param_fit="newton",
                   progress=False)
