"""restoration.posterior: DPS, guidance on x0 and DDNM as hooks on the one DDIM loop."""
import pytest
import torch

from ddlearn import operators as ops
from ddlearn import oracles, schedules
from ddlearn.restoration import exact_posterior, posterior_bias, sample_ddnm, sample_dps, sample_guided
from ddlearn.samplers import sample_ddim, time_grid


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny_image_prior(side=4):
    """A 3-component Gaussian mixture over side x side images: an exact 'trained' diffusion prior."""
    g = gen(2)
    D = side * side
    means = torch.rand(3, D, generator=g, dtype=torch.float64) * 2 - 1
    return oracles.GaussianMixture(means, torch.full((3,), 0.05))


@pytest.mark.parametrize("op", [ops.Mask.box(4, 1, 1, 2, 2), ops.Downsample(2), ops.Blur(0.6, size=3)])
def test_ddnm_is_consistent_with_the_measurement(op):
    prior = tiny_image_prior()
    sch = schedules.cosine(200)
    x_true = prior.sample(3, generator=gen(3)).double().reshape(3, 1, 4, 4)
    y = op(x_true)
    x_T = torch.randn(3, 1, 4, 4, generator=gen(4), dtype=torch.float64)
    x = sample_ddnm(prior.eps_model(sch), x_T, sch, 20, operator=op, y=y, generator=gen(5), progress=False)
    assert (op(x) - y).abs().max() < 1e-6


def test_ddnm_on_a_mask_keeps_the_observed_pixels_and_fills_the_rest_from_the_prior():
    prior = tiny_image_prior()
    sch = schedules.cosine(200)
    op = ops.Mask.box(4, 0, 0, 2, 4)  # hide the top half
    x_true = prior.sample(4, generator=gen(6)).double().reshape(4, 1, 4, 4)
    x_T = torch.randn(4, 1, 4, 4, generator=gen(7), dtype=torch.float64)
    x = sample_ddnm(prior.eps_model(sch), x_T, sch, 50, operator=op, y=op(x_true), generator=gen(8), progress=False)
    assert torch.allclose(x[..., 2:, :], x_true[..., 2:, :])
    # the hidden half comes from the right component: components are far apart, the bottom half tells which
    assert (x - x_true).abs().max() < 1.0


def test_guidance_pulls_samples_towards_the_measurement():
    prior = oracles.named_mixture("ring8")
    sch = schedules.cosine(100)
    op = ops.Matrix([[1.0, 0.0]], noise=0.1)
    y = torch.full((150, 1), 0.7, dtype=torch.float64)
    x_T = torch.randn(150, 2, generator=gen(9), dtype=torch.float64)
    model = prior.eps_model(sch)
    free = sample_dps(model, x_T, sch, 25, operator=op, y=y, scale=0.0, generator=gen(10), progress=False)
    for on in ("xt", "x0"):
        x = sample_guided(model, x_T, sch, 25, operator=op, y=y, scale=0.5, on=on, generator=gen(10), progress=False)
        assert (op(x) - y).abs().mean() < 0.5 * (op(free) - y).abs().mean()
    post = exact_posterior(prior, op, y[0])
    x = sample_ddnm(model, x_T, sch, 25, operator=op, y=y, generator=gen(11), progress=False)
    # DDNM lands on the line x = 0.7 and in the two likely components (up to its mode-weight bias)
    assert posterior_bias(x, post)["weight_tv"] < 0.3

@pytest.mark.parametrize("method", ["dps", "x0", "ddnm_identity"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_posterior_samplers_at_scale_0_are_exactly_sample_ddim(method, eta):
    """One loop: with no guidance a posterior sampler is sample_ddim on the same grid, eta and generator."""
    prior = tiny_image_prior()
    sch = schedules.linear(200)
    model = prior.eps_model(sch)
    x_T = torch.randn(3, 1, 4, 4, generator=gen(20), dtype=torch.float64)
    op = ops.Downsample(2)
    y = op(x_T)
    ref = sample_ddim(model, x_T, sch, 12, eta=eta, spacing="linspace", generator=gen(21), progress=False)
    if method == "dps":
        x = sample_dps(model, x_T, sch, 12, operator=op, y=y, scale=0.0, eta=eta, generator=gen(21), progress=False)
    elif method == "x0":
        x = sample_guided(model, x_T, sch, 12, operator=op, y=y, scale=0.0, on="x0", eta=eta, generator=gen(21),
                          progress=False)
    else:  # DDNM with a measurement that sees nothing keeps the prior's x0; eps is re-derived from it (rounding)
        blind = ops.Mask(torch.zeros(1, 1, 4, 4, dtype=torch.float64))
        x = sample_ddnm(model, x_T, sch, 12, operator=blind, y=blind(x_T), eta=eta, generator=gen(21),
                        progress=False)
        assert torch.allclose(x, ref, rtol=0, atol=1e-12)
        return
    assert torch.equal(x, ref)


def test_posterior_samplers_default_to_the_linspace_grid():
    prior = tiny_image_prior()
    sch = schedules.linear(100)
    x_T = torch.randn(2, 1, 4, 4, generator=gen(22), dtype=torch.float64)
    op = ops.Downsample(2)
    seen = []
    sample_dps(prior.eps_model(sch), x_T, sch, 7, operator=op, y=op(x_T), generator=gen(23), progress=False,
               callback=lambda s: seen.append(s.t))
    assert seen == time_grid(sch, 7, "linspace").tolist() == [99.0, 82.0, 66.0, 50.0, 33.0, 16.0, 0.0]


def test_bad_inputs():
    prior = tiny_image_prior()
    sch = schedules.cosine(100)
    model = prior.eps_model(sch)
    x_T = torch.randn(2, 1, 4, 4, generator=gen(13), dtype=torch.float64)
    op = ops.Downsample(2)
    with pytest.raises(ValueError, match=r"y must have the shape of operator\(x\) \(2, 1, 2, 2\)"):
        sample_ddnm(model, x_T, sch, 5, operator=op, y=torch.zeros(2, 1, 4, 4), progress=False)
    with pytest.raises(ValueError, match="match the mask"):
        sample_dps(model, x_T, sch, 5, operator=ops.Mask.box(8, 0, 0, 2, 2), y=torch.zeros(2, 1, 8, 8),
                   progress=False)
    with pytest.raises(ValueError, match="scale"):
        sample_dps(model, x_T, sch, 5, operator=op, y=op(x_T), scale=-1.0, progress=False)
    with pytest.raises(ValueError, match="unknown on"):
        sample_guided(model, x_T, sch, 5, operator=op, y=op(x_T), on="x1", progress=False)
    with pytest.raises(ValueError, match="noise"):
        ops.Mask.box(4, 0, 0, 2, 2, noise=-0.01)
    with pytest.raises(TypeError, match="Operator"):
        sample_ddnm(model, x_T, sch, 5, operator=lambda x: x, y=x_T, progress=False)
    with pytest.raises(ValueError, match="steps"):
        sample_ddnm(model, x_T, sch, 500, operator=op, y=op(x_T), progress=False)
    with pytest.raises(ValueError, match="one measurement of 1 values"):
        exact_posterior(oracles.named_mixture("two"), ops.Matrix([[1.0, 0.0]], noise=0.1), torch.zeros(3))
    with pytest.raises(ValueError, match="2-vectors"):
        exact_posterior(prior, ops.Matrix([[1.0, 0.0]], noise=0.1), torch.zeros(1))


def test_guidance_works_through_a_nonlinear_parametrised_operator():
    class Gain(ops.Operator):
        """y = tanh(g x) with a learnable gain: non-linear, no adjoint."""

        linear = False
        x_ndim = 2

        def __init__(self):
            super().__init__(noise=0.05)
            self.g = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))

        def forward(self, x):
            return torch.tanh(self.g * x[:, :1])

        def input_shape(self, y_shape):
            return (y_shape[0], 2)

    prior = oracles.named_mixture("ring8")
    sch = schedules.cosine(100)
    op = Gain()
    y = torch.full((100, 1), 0.6, dtype=torch.float64)
    x_T = torch.randn(100, 2, generator=gen(14), dtype=torch.float64)
    free = sample_dps(prior.eps_model(sch), x_T, sch, 20, operator=op, y=y, scale=0.0, generator=gen(15), progress=False)
    for on in ("xt", "x0"):
        x = sample_guided(prior.eps_model(sch), x_T, sch, 20, operator=op, y=y, scale=0.5, on=on, generator=gen(15),
                          progress=False)
        assert (op(x) - y).abs().mean() < 0.5 * (op(free) - y).abs().mean()
    with pytest.raises(TypeError, match="non-linear"):
        sample_ddnm(prior.eps_model(sch), x_T, sch, 5, operator=op, y=y, progress=False)


def test_the_one_measurement_check_of_the_samplers():
    """restoration._common.check_measurement (DPS, x0 guidance, DDNM, data consistency, GDP): the argument's
    name, the shape expected, x_T's shape, what came, and the operator's reason when no image gives such a y."""
    from ddlearn.operators import KSpace, Radon, kspace_mask
    from ddlearn.restoration._common import check_measurement

    class Square(ops.Operator):
        """Forward only (no input_shape): allowed for a non-linear operator that is guided by gradient."""

        linear = False

        def forward(self, x):
            return x ** 2

    x_T = torch.zeros(2, 1, 16, 16)
    radon, sq = Radon(16, 4), Square()
    check_measurement(radon, radon(x_T), x_T)
    check_measurement(sq, sq(x_T), x_T)
    ks = KSpace(kspace_mask(16, 4))
    check_measurement(ks, ks(x_T), x_T)  # complex k-space data is a measurement too
    with pytest.raises(ValueError, match=r"^y\[1\] must have the shape of operator\(x\) \(2, 1, 16, 4\) for x_T of "
                                         r"shape \(2, 1, 16, 16\), got \(2, 1, 16, 5\) \(Radon: y must have shape"):
        check_measurement(radon, torch.zeros(2, 1, 16, 5), x_T, "y[1]")
    with pytest.raises(ValueError, match=r"got \(3, 1, 16, 4\)$"):  # a measurement of 3 images: nothing to add
        check_measurement(radon, torch.zeros(3, 1, 16, 4), x_T)
    with pytest.raises(ValueError, match=r"^y must have the shape of operator\(x\) \(2, 1, 16, 16\) .*got "
                                         r"\(2, 1, 8, 8\)$"):
        check_measurement(sq, torch.zeros(2, 1, 8, 8), x_T)
    with pytest.raises(TypeError, match="sample_ddnm needs a linear operator with a pseudo-inverse; Square"):
        check_measurement(sq, sq(x_T), x_T, linear_for="sample_ddnm")
    with pytest.raises(TypeError, match="operator must be a ddlearn.operators.Operator, got function"):
        check_measurement(lambda x: x, x_T, x_T)
    bad = radon(x_T)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y contains 1 non-finite"):
        check_measurement(radon, bad, x_T)
