"""AnoDDPM-style anomaly detection: partial noising, simplex noise, scores and their evaluation."""
from __future__ import annotations

import math

import pytest
import torch

from ddlearn import schedules
from ddlearn.restoration.anomaly import (anomaly_map, best_dice, partial_noise, pixel_auroc, reconstruction_score,
                                         simplex_noise, threshold_score)

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
    assert d == pytest.approx(2 * 1 / (1 + 2))  # best: flag only 0.8 -> Dice 2/3 (flagging 0.4 too gives 0.5)
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
