"""Metrics against closed forms and scikit-image; memorisation check on planted copies."""
import math

import numpy as np
import pytest
import torch

from ddlearn import data, metrics, oracles, pretrained, schedules


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sliced_wasserstein_of_shifted_gaussians_matches_closed_form():
    """N(0, I) vs N(m, I) in d dims: every projection is a shift by theta.m, so SW2^2 = E(theta.m)^2 = |m|^2 / d."""
    d, m = 3, torch.tensor([0.6, -0.3, 0.2])
    x = torch.randn(4000, d, generator=gen(0))
    y = torch.randn(4000, d, generator=gen(1)) + m
    sw = metrics.sliced_wasserstein(x, y, n_projections=500, generator=gen(2))
    assert sw == pytest.approx(m.norm().item() / math.sqrt(d), rel=0.08)
    assert metrics.sliced_wasserstein(x, x, generator=gen(3)) == 0.0
    assert metrics.sliced_wasserstein(x, y, generator=gen(4)) == metrics.sliced_wasserstein(x, y, generator=gen(4))
    # unequal sizes go through quantiles and give nearly the same number
    assert metrics.sliced_wasserstein(x[:1000], y, n_projections=500, generator=gen(2)) == pytest.approx(sw, rel=0.08)


def test_sliced_wasserstein_bad_input():
    with pytest.raises(ValueError, match="same dimension"):
        metrics.sliced_wasserstein(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        metrics.sliced_wasserstein(np.zeros((4, 2)), torch.zeros(4, 2))


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    """Commuting covariances: FD = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2."""
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-8)


@pytest.mark.skipif("digit_classifier" not in pretrained.available(), reason="digit classifier not shipped yet")
def test_frechet_digit_distance_ranks_real_digits_above_noise():
    train, test = data.digits("train"), data.digits("test")
    real = metrics.frechet_digit_distance(train[:359], test)
    blur = metrics.frechet_digit_distance(torch.nn.functional.avg_pool2d(train[:359], 3, 1, 1), test)
    noise = metrics.frechet_digit_distance(torch.rand(359, 1, 16, 16, generator=gen()) * 2 - 1, test)
    assert real < blur < noise
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_digit_distance(test[:1], test)


def test_nearest_neighbour_flags_planted_copies():
    train, test = data.digits("train"), data.digits("test")
    copies = metrics.nearest_neighbour(train[:50], train, test)
    assert copies["frac_closer_than_heldout_min"] == 1.0 and copies["sample_median"] == 0.0
    assert torch.equal(copies["sample_index"], torch.arange(50))
    fresh = metrics.nearest_neighbour(test[:100], train, test[100:])
    assert fresh["frac_closer_than_heldout_min"] < 0.05 and 0.7 < fresh["ratio_median"] < 1.4
    with pytest.raises(ValueError, match="same item size"):
        metrics.nearest_neighbour(torch.zeros(3, 1, 8, 8), train, test)


def test_psnr_and_ssim_against_scikit_image_and_the_formula():
    from skimage.metrics import structural_similarity

    x = data.digits("test")[:4]
    y = (x + 0.1 * torch.randn(x.shape, generator=gen())).clamp(-1, 1)
    mse = ((x - y) ** 2).flatten(1).mean(1).double()
    want = (10 * torch.log10(4.0 / mse)).mean().item()
    assert metrics.psnr(y, x) == pytest.approx(want, rel=1e-6)
    s = structural_similarity(x[0, 0].double().numpy(), y[0, 0].double().numpy(), data_range=2.0, win_size=7)
    assert metrics.ssim(y[:1], x[:1]) == pytest.approx(s, rel=1e-6)
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(x, x[:2])


def test_elbo_bpd_of_an_exact_gaussian_model():
    """x ~ N(0, 0.3^2 I) in D=4 with its exact eps-model: bound ~ true entropy, bpd = (nats - D log delta)/(D ln 2)."""
    s = schedules.linear(100, 1e-3, 0.2)
    gm = oracles.gaussian(torch.zeros(4), torch.full((4,), 0.09))
    x = gm.sample(1000, generator=gen(0)).clamp(-1, 1)
    out = metrics.elbo_bpd(gm.eps_model(s), x, s, n_t=None, generator=gen(1))
    delta = 2 / 255
    entropy_bits = (0.5 * math.log(2 * math.pi * math.e * 0.09) - math.log(delta)) / math.log(2)
    assert out["bpd"] == pytest.approx(entropy_bits, abs=0.1)
    assert out["nats"].shape == (1000,)


def test_mixture_fit_against_closed_forms_and_smeared_points():
    """Samples of ring8 itself: the share within 2 sd is 1 - e^-2 (chi-square with 2 degrees of freedom), the mean
    log-density is minus the entropy, log 8 minus the component's entropy log(2 pi e s^2) (the components barely
    overlap); points spread uniformly around the circle have the same radius but score far lower on both."""
    ring = oracles.named_mixture("ring8")
    x = ring.sample(40000, generator=gen(0))
    fit = metrics.mixture_fit(x, ring)
    share = 1 - math.exp(-2)
    assert fit["within"] == pytest.approx(share, abs=4 * math.sqrt(share * (1 - share) / len(x)))
    entropy = math.log(2 * math.pi * math.e * 0.08 ** 2) + math.log(8)
    assert fit["log_prob"] == pytest.approx(-entropy, abs=0.02)
    assert fit["weights"].sum().item() == pytest.approx(1.0) and (fit["weights"] - 0.125).abs().max() < 0.01
    angle = torch.rand(40000, generator=gen(1)) * 2 * math.pi
    smeared = torch.stack([angle.cos(), angle.sin()], 1)
    bad = metrics.mixture_fit(smeared, ring)
    assert bad["within"] < 0.6 * fit["within"] and bad["log_prob"] < fit["log_prob"] - 2
    with pytest.raises(TypeError, match="GaussianMixture"):
        metrics.mixture_fit(x, "ring8")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        metrics.mixture_fit(torch.zeros(5, 3), ring)


def test_mmd_unbiased_for_exact_samples_and_equal_to_the_direct_kernel_sum():
    """metrics.mmd against a mixture: samples of the mixture itself average 0 (unbiased); for other points it
    equals the O(N^2) sum with exact Gaussian kernels (the kernel's closed-form mean under each component) up
    to the error of 256 random frequencies a width; against many reference points it agrees with the exact form."""
    ring = oracles.named_mixture("ring8")
    exact = [metrics.mmd(ring.sample(500, generator=gen(10 + k)), ring) for k in range(12)]
    assert abs(np.mean(exact)) < 3 * np.std(exact) / math.sqrt(len(exact))
    x = ring.sample(800, generator=gen(1)).double()
    x = x + 0.04 * torch.randn(x.shape, generator=gen(2), dtype=torch.float64)
    direct = 0.0
    widths = (0.01, 0.03, 0.1, 0.3, 1.0)
    for w in widths:  # k(x, y) = exp(-|x - y|^2 / (2 w^2)), D = 2
        d2 = torch.cdist(x, x) ** 2
        xx = (torch.exp(-d2 / (2 * w * w)).sum() - len(x)) / (len(x) * (len(x) - 1))
        var = w * w + ring.covs[:, 0, 0]  # isotropic components
        r2 = ((x[:, None] - ring.means[None]) ** 2).sum(-1)
        xp = (ring.weights * w * w / var * torch.exp(-r2 / (2 * var))).sum(1).mean()
        var2 = w * w + 2 * ring.covs[:, 0, 0]
        m2 = ((ring.means[:, None] - ring.means[None]) ** 2).sum(-1)
        pp = (ring.weights[:, None] * ring.weights[None] * w * w / var2[:, None] * torch.exp(-m2 / (2 * var2[:, None]))).sum()
        direct += float(xx - 2 * xp + pp) / len(widths)
    assert metrics.mmd(x, ring) == pytest.approx(direct, rel=0.1)
    # a reference sample of M points adds its own noise, a bias of at most 1/M
    assert metrics.mmd(x, ring.sample(50000, generator=gen(3))) == pytest.approx(metrics.mmd(x, ring), abs=2 / 50000)
    angle = torch.rand(500, generator=gen(4)) * 2 * math.pi  # mass smeared around the circle, 500 points
    assert metrics.mmd(torch.stack([angle.cos(), angle.sin()], 1), ring) > 10 * np.std(exact)
    with pytest.raises(ValueError, match="2 values per point"):
        metrics.mmd(torch.zeros(5, 3), ring)
    with pytest.raises(TypeError, match="widths"):
        metrics.mmd(x, ring, widths=())
