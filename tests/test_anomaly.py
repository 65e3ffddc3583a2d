"""AnoDDPM-style anomaly detection: partial noising, simplex noise, scores and their evaluation."""
from __future__ import annotations

import math

import pytest
import torch

from ddlearn import schedules
from ddlearn.restoration.anomaly import (anomaly_map, best_dice, bootstrap, partial_noise, pixel_auroc,
                                         reconstruction_score, simplex_noise, threshold_score)

SCH = schedules.get("linear", T=1000)


class ConstantPrior(torch.nn.Module):
    """The exact eps-model of a point mass at the image ``c``: eps = (x_t - sqrt(ab) c) / sqrt(1 - ab)."""

    def __init__(self, c):
        super().__init__()
        self.c, self.ab = c, SCH.alpha_bars

    def forward(self, x, t):
        ab = self.ab[t.round().long()].to(x.dtype).reshape(-1, 1, 1, 1)
        return (x - ab.sqrt() * self.c) / (1 - ab).sqrt()


def test_simplex_noise_is_smooth_standardised_and_reproducible():
    g = torch.Generator().manual_seed(0)
    n = simplex_noise((3, 1, 32, 32), generator=g)
    assert n.shape == (3, 1, 32, 32)
    torch.testing.assert_close(n.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(n.std(dim=(1, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(simplex_noise((3, 1, 32, 32), generator=torch.Generator().manual_seed(0)), n)
    assert not torch.equal(n[0], n[1])

    def lag1(z):  # neighbour correlation: white noise ~0, smooth noise well above
        a, b = z[..., :, :-1].reshape(-1), z[..., :, 1:].reshape(-1)
        return torch.corrcoef(torch.stack([a, b]))[0, 1].item()

    assert lag1(n) > 0.3
    assert abs(lag1(torch.randn(3, 1, 32, 32, generator=g))) < 0.1


def test_partial_noise_levels():
    x = torch.zeros(2000, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    for noise in ("gaussian", "simplex"):
        xt = partial_noise(x[:200] if noise == "simplex" else x, 300, SCH, noise=noise, generator=g)
        assert abs(xt.std().item() - math.sqrt(1 - SCH.alpha_bars[300].item())) < 0.03
    with pytest.raises(ValueError, match="t0 must be in"):
        partial_noise(x, 1000, SCH)
    with pytest.raises(ValueError, match="unknown noise"):
        partial_noise(x, 10, SCH, noise="pink")


def test_anomaly_map_finds_what_the_prior_does_not_know():
    healthy = torch.full((1, 1, 16, 16), -0.5)
    sick = healthy.clone()
    sick[..., 5:9, 6:10] = 0.5  # a bright square the prior has never seen
    mask = torch.zeros_like(sick, dtype=torch.bool)
    mask[..., 5:9, 6:10] = True
    model = ConstantPrior(healthy)
    amap, x_hat = anomaly_map(model, SCH, sick, t0=300, steps=10, samples=2, generator=torch.Generator().manual_seed(0))
    assert amap.shape == (1, 1, 16, 16)
    torch.testing.assert_close(x_hat, healthy, atol=1e-3, rtol=0)  # the exact prior restores the healthy image
    assert pixel_auroc(amap, mask) == 1.0
    assert best_dice(amap, mask)[0] == pytest.approx(1.0)


def test_scores_and_baselines():
    x = torch.full((2, 1, 8, 8), -1.0)
    x[..., 2:6, 2:6] = -0.4
    x[0, 0, 3, 3] = 0.6
    s = threshold_score(x)
    assert s[0, 0, 3, 3] == s.max() and s[0, 0, 0, 0] == 0  # far from the tissue median; air scores 0
    ae = lambda z: torch.zeros_like(z)  # noqa: E731
    torch.testing.assert_close(reconstruction_score(ae, x), x.abs())
    with pytest.raises(ValueError, match="autoencoder returned shape"):
        reconstruction_score(lambda z: z[..., :4], x)


def test_auroc_and_dice_against_hand_computed_values():
    score = torch.tensor([0.1, 0.4, 0.35, 0.8]).reshape(1, 1, 2, 2)
    mask = torch.tensor([False, False, True, True]).reshape(1, 1, 2, 2)
    assert pixel_auroc(score, mask) == pytest.approx(0.75)  # sklearn's example
    d, thr = best_dice(score, mask)
    # flag 0.8 alone: 2/3; 0.8 and 0.4: 1/2; 0.8, 0.4 and 0.35: 2*2/(3+2) = 0.8, the best; all four: 2/3
    assert d == pytest.approx(0.8)
    assert ((score > thr) == (score >= 0.35)).all()
    with pytest.raises(ValueError, match="both anomalous"):
        pixel_auroc(score, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="mask must be a tensor"):
        pixel_auroc(score, mask[..., :1])
    region = torch.tensor([True, True, True, False]).reshape(1, 1, 2, 2)
    assert pixel_auroc(score, mask, region=region) == pytest.approx(0.5)


def test_anomaly_map_bad_input():
    model = ConstantPrior(torch.zeros(1, 1, 8, 8))
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="steps must be at most"):
        anomaly_map(model, SCH, x, t0=5, steps=10)
    with pytest.raises(ValueError, match="unknown noise"):
        anomaly_map(model, SCH, x, t0=50, steps=5, noise="uniform")


def lag1(z):  # neighbour correlation: white noise ~0, smooth noise well above
    a, b = z[..., :, :-1].reshape(-1), z[..., :, 1:].reshape(-1)
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()


def test_bootstrap_resamples_images_and_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(12, 1, 16, 16, dtype=torch.bool)
    mask[..., 4:8, 4:8] = True
    score = (torch.rand(12, 1, 16, 16, generator=g) * 4).round() / 4 + 0.3 * mask  # many ties
    region = torch.rand(12, 1, 16, 16, generator=g) > 0.2
    r = bootstrap(score, mask, region=region, n=300)
    assert r["value"] == pytest.approx(pixel_auroc(score, mask, region=region))
    assert r["low"] < r["value"] < r["high"] and r["sd"] > 0
    # one resample = the same images repeated: the weighted computation equals scikit-learn on the repeats
    from ddlearn.restoration.anomaly import _Pooled
    idx = torch.tensor([0, 0, 3, 5, 5, 5, 7, 11, 2, 2, 1, 9])
    pooled = _Pooled(score, mask, region, torch.arange(12).reshape(12, 1, 1, 1).expand(score.shape))
    counts = torch.bincount(idx, minlength=12).numpy()
    keep = region[idx]
    expected = roc_auc_score(mask[idx][keep].numpy(), score[idx][keep].numpy())
    assert pooled.metric(counts, "auroc") == pytest.approx(expected)
    assert pooled.metric(counts, "dice") == pytest.approx(best_dice(score[idx], mask[idx], region=keep)[0])
    # paired: a method against itself differs by exactly 0; against a worse one, by a positive amount
    same = bootstrap(score, mask, baseline=score.clone(), n=50, metric="dice")
    assert same["value"] == same["low"] == same["high"] == 0
    worse = bootstrap(score, mask, baseline=torch.rand(12, 1, 16, 16, generator=g), n=200)
    assert worse["low"] > 0
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap(score, mask, metric="f1")
    with pytest.raises(ValueError, match="level"):
        bootstrap(score, mask, level=1.0)


def test_simplex_noise_in_every_reverse_step():
    model = ConstantPrior(torch.zeros(1, 1, 32, 32))
    x = torch.zeros(2, 1, 32, 32)
    kw = dict(t0=200, steps=5, noise="simplex", eta=1.0)
    a, xa = anomaly_map(model, SCH, x, generator=torch.Generator().manual_seed(1), **kw)
    b, _ = anomaly_map(model, SCH, x, generator=torch.Generator().manual_seed(1), **kw)
    torch.testing.assert_close(a, b)  # reproducible
    c, _ = anomaly_map(model, SCH, x, generator=torch.Generator().manual_seed(1), octaves=2, **kw)
    assert not torch.equal(a, c)
    with pytest.raises(ValueError, match="octaves applies to simplex"):
        anomaly_map(model, SCH, x, t0=50, steps=5, octaves=2)


def test_ddim_step_adds_the_named_noise():
    from ddlearn.samplers.ddim import ddim_loop, ddim_step

    z = torch.zeros(4, 1, 32, 32)
    for noise, smooth in (("gaussian", False), ("simplex", True)):
        x = ddim_step(z, z, 0.5, 0.9, 1.0, torch.Generator().manual_seed(0), noise)
        assert (lag1(x) > 0.3) == smooth
    with pytest.raises(ValueError, match="unknown noise"):
        ddim_loop(lambda x, t, ab, i: (x, x, None), z, SCH, 2, noise="pink", progress=False)


def test_simple_loss_trains_on_the_named_noise():
    from ddlearn.losses import simple_loss

    x0 = torch.zeros(4, 1, 32, 32)
    seen = {}

    def model(x_t, t):
        seen["x_t"], seen["t"] = x_t, t
        return torch.zeros_like(x_t)

    for noise, smooth in (("gaussian", False), ("simplex", True)):
        loss = simple_loss(model, x0, SCH, generator=torch.Generator().manual_seed(0), noise=noise)
        ab = SCH.alpha_bars[seen["t"].long()].reshape(-1, 1, 1, 1)
        eps = seen["x_t"] / (1 - ab).sqrt()  # x0 = 0: x_t = sqrt(1 - ab) eps
        assert (lag1(eps) > 0.3) == smooth
        assert loss.item() == pytest.approx(eps.pow(2).mean().item(), rel=1e-4)
    with pytest.raises(ValueError, match="simplex noise needs images"):
        simple_loss(model, torch.zeros(4, 2), SCH, noise="simplex")
