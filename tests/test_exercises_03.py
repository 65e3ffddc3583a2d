"""Chapter 03's exercise checkers (ddlearn/exercises/ch03.py): right answers, from the formulas written here, pass;
wrong ones do not."""
import math

import torch

from ddlearn.exercises import evaluate


def test_checkers_03():
    assert evaluate("03.1", 3.2).ok and not evaluate("03.1", -3.2).ok  # -(0.7 - 1.5) / 0.5^2
    assert evaluate("03.2", lambda xt, x0, ab: -(xt - math.sqrt(ab) * x0) / (1 - ab)).ok
    assert not evaluate("03.2", lambda xt, x0, ab: -(xt - x0) / (1 - ab)).ok  # the sigma-view target, mean not scaled
    assert evaluate("03.3", lambda s2, eps: s2 / (1 - eps / (2 * s2))).ok
    assert not evaluate("03.3", lambda s2, eps: s2).ok  # the target variance, not the chain's
    assert not evaluate("03.2", 1.0).ok and not evaluate("03.3", None).ok


def test_tweedie_and_langevin_prediction_03():
    assert evaluate("03.4", lambda xt, s, ab: (xt + (1 - ab) * s) / math.sqrt(ab)).ok
    assert not evaluate("03.4", lambda xt, s, ab: xt + (1 - ab) * s).ok  # forgot to undo the signal scale
    assert not evaluate("03.4", lambda xt, s, ab: (xt - (1 - ab) * s) / math.sqrt(ab)).ok  # sign
    assert evaluate("03.5", 2 * 0.01).ok  # eps = s^2: x' = sqrt(2 eps) z
    assert not evaluate("03.5", 0.01).ok  # the target's variance


def _log_space(x, means, weights, var):
    diff = x[:, None, :] - means[None]
    r = torch.softmax(torch.log(weights)[None] - 0.5 * (diff ** 2).sum(-1) / var, 1)
    return -(r[:, :, None] * diff).sum(1) / var


def _naive(x, means, weights, var):  # right formula, but 0/0 far from every mean
    diff = x[:, None, :] - means[None]
    p = weights[None] * torch.exp(-0.5 * (diff ** 2).sum(-1) / var)
    return -((p / p.sum(1, keepdim=True))[:, :, None] * diff).sum(1) / var


def test_mixture_score_03():
    assert evaluate("03.6", _log_space).ok
    assert not evaluate("03.6", _naive).ok
    assert not evaluate("03.6", lambda x, m, w, v: -(x - m.mean(0)) / v).ok  # one Gaussian at the mean of means
