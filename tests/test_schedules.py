"""Schedules against the papers' formulas (diffusers' DDPMScheduler: test_schedules_vs_diffusers.py)."""
from __future__ import annotations

import math

import pytest
import torch

from ddlearn import schedules
from ddlearn.schedules import Schedule

# ---- the papers' formulas, written independently of ddlearn -----------------

def paper_linear_betas(T):
    # Ho et al. 2020, Sec. 4: beta_1 = 1e-4 ... beta_T = 0.02, linear, T = 1000
    return [1e-4 + (0.02 - 1e-4) * i / (T - 1) for i in range(T)]


def paper_cosine_alpha_bar(u, s=0.008):
    # Nichol & Dhariwal 2021, eq. 17: abar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2)
    f = lambda v: math.cos((v + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return f(u) / f(0)


def paper_sigmoid_alpha_bar(u, start=-3.0, end=3.0, tau=1.0):
    # Chen 2023, Algorithm 1 (sigmoid_schedule), clip_min omitted
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    v_start, v_end = sig(start / tau), sig(end / tau)
    return (v_end - sig((u * (end - start) + start) / tau)) / (v_end - v_start)


def test_linear_matches_ho_et_al():
    s = schedules.linear()
    assert s.T == 1000
    assert torch.allclose(s.betas, torch.tensor(paper_linear_betas(1000), dtype=torch.float64), atol=1e-15)
    # alpha_bar is the running product of 1 - beta
    ab, prod = [], 1.0
    for b in paper_linear_betas(1000):
        prod *= 1 - b
        ab.append(prod)
    assert torch.allclose(s.alpha_bars, torch.tensor(ab, dtype=torch.float64), rtol=1e-12)


@pytest.mark.parametrize("name,formula", [("cosine", paper_cosine_alpha_bar), ("sigmoid", paper_sigmoid_alpha_bar)])
def test_alpha_bar_follows_the_paper_where_betas_are_not_clipped(name, formula):
    T = 1000
    s = schedules.get(name, T=T)
    # index t holds the paper's alpha_bar at continuous time (t + 1) / T
    expected = torch.tensor([formula((t + 1) / T) for t in range(T)], dtype=torch.float64)
    unclipped = torch.cumprod(s.betas < 0.999, 0).bool()  # every step up to t unclipped
    assert unclipped.sum() > 990
    assert torch.allclose(s.alpha_bars[unclipped], expected[unclipped], rtol=1e-10, atol=1e-14)
    # the clip keeps the last step finite and below 1
    assert s.betas.max() <= 0.999 and s.alpha_bars[-1] > 0


@pytest.mark.parametrize("name", schedules.NAMES)
def test_derived_quantities_are_consistent(name):
    s = schedules.get(name, T=200)
    ab = s.alpha_bars
    assert torch.all(ab[1:] < ab[:-1]) and ab[0] < 1
    assert torch.allclose(s.alpha_bars_prev[1:], ab[:-1]) and s.alpha_bars_prev[0] == 1
    assert torch.allclose(s.snr, 1 / s.sigmas ** 2, rtol=1e-10)
    assert torch.allclose(s.log_snr, torch.log(s.snr), rtol=1e-10, atol=1e-10)
    assert torch.allclose(s.sigmas, torch.sqrt((1 - ab) / ab))
    assert s.betas.dtype == torch.float64


@pytest.mark.parametrize("name", schedules.NAMES)
def test_alpha_bar_interpolation_is_exact_on_the_grid_and_monotone(name):
    s = schedules.get(name, T=100)
    grid = torch.arange(s.T, dtype=torch.float64)
    assert torch.allclose(s.alpha_bar(grid), s.alpha_bars, rtol=1e-12, atol=0)
    assert torch.allclose(s.alpha_bar(torch.arange(s.T)), s.alpha_bars, rtol=1e-12, atol=0)  # int tensor
    assert math.isclose(float(s.alpha_bar(37)), float(s.alpha_bars[37]), rel_tol=1e-12)
    fine = torch.linspace(0, s.T - 1, 5000, dtype=torch.float64)
    vals = s.alpha_bar(fine)
    assert torch.all(vals[1:] < vals[:-1]), "alpha_bar must decrease strictly in t"
    # between two grid points it stays between their values
    mid = s.alpha_bar(grid[:-1] + 0.5)
    assert torch.all(mid < s.alpha_bars[:-1]) and torch.all(mid > s.alpha_bars[1:])
    # sigma and log-SNR at fractional t agree with alpha_bar there
    ab = s.alpha_bar(fine)
    assert torch.allclose(s.sigma(fine), torch.sqrt((1 - ab) / ab))
    assert torch.allclose(s.log_snr_at(fine), torch.log(ab / (1 - ab)))
    # a 0-d tensor gives a 0-d answer
    assert s.alpha_bar(torch.tensor(3.5)).shape == ()


@pytest.mark.parametrize("name", schedules.NAMES)
def test_t_from_log_snr_inverts_log_snr_at(name):
    s = schedules.get(name, T=1000)
    g = torch.Generator().manual_seed(0)
    t = torch.rand(500, generator=g, dtype=torch.float64) * (s.T - 1)
    t = torch.cat([t, torch.tensor([0.0, 1.0, 500.0, 998.5, 999.0], dtype=torch.float64)])
    assert torch.allclose(s.t_from_log_snr(s.log_snr_at(t)), t, atol=1e-8, rtol=0)
    lam = torch.linspace(float(s.log_snr[-1]), float(s.log_snr[0]), 300, dtype=torch.float64)
    assert torch.allclose(s.log_snr_at(s.t_from_log_snr(lam)), lam, atol=1e-8, rtol=0)
    # outside the schedule's range: clamped to the ends
    assert float(s.t_from_log_snr(50.0)) == 0 and float(s.t_from_log_snr(-50.0)) == s.T - 1
    assert s.t_from_log_snr(torch.zeros(2, 3)).shape == (2, 3)


def test_karras_and_ve_sigmas_follow_their_formulas():
    sig = schedules.karras_sigmas(10, 0.002, 80.0, 7.0)
    i = torch.arange(10, dtype=torch.float64)
    expected = (80.0 ** (1 / 7) + i / 9 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7  # Karras et al. eq. 5
    assert torch.allclose(sig, expected) and math.isclose(sig[0], 80.0) and math.isclose(sig[-1], 0.002)
    ve = schedules.ve_sigmas(5, 0.01, 50.0)
    ratios = ve[1:] / ve[:-1]
    assert torch.allclose(ratios, ratios[0].expand(4)) and math.isclose(ve[0], 50.0) and math.isclose(ve[-1], 0.01)


# ---- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("name", schedules.NAMES)
@pytest.mark.parametrize("T,err", [(0, ValueError), (-5, ValueError), (1.5, TypeError), ("10", TypeError)])
def test_bad_T_is_rejected(name, T, err):
    with pytest.raises(err, match="T"):
        schedules.get(name, T=T)


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown schedule name 'cosin'.*'cosine'"):
        schedules.get("cosin")
    with pytest.raises(TypeError, match="name"):
        schedules.get(3)


@pytest.mark.parametrize("t", [-1, 1000, 999.5, -0.01, float("nan"), torch.tensor([0.0, 1000.0])])
def test_t_outside_the_grid_is_rejected(t):
    s = schedules.linear()
    with pytest.raises(ValueError, match="t "):
        s.alpha_bar(t)
    with pytest.raises(ValueError):
        s.log_snr_at(t)


def test_bad_betas_and_log_snr_are_rejected():
    with pytest.raises(ValueError, match="betas"):
        Schedule(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="betas"):
        Schedule(torch.tensor([], dtype=torch.float64))
    with pytest.raises(ValueError, match="lam"):
        schedules.cosine().t_from_log_snr(float("nan"))
    with pytest.raises(ValueError, match="end must be greater"):
        schedules.sigmoid(start=3, end=-3)
    with pytest.raises(TypeError, match="t"):
        schedules.linear().alpha_bar("3")
