"""Chapter 08's exercise checkers accept the right answers and reject wrong ones."""
from __future__ import annotations

import numpy as np
import torch

from ddlearn.exercises import evaluate


def test_08_1_weights():
    assert evaluate("08.1", (3.0, -1.5, -0.5)).ok
    assert not evaluate("08.1", (3.0, 1.5, -0.5)).ok
    assert not evaluate("08.1", None).ok


def test_08_2_bounce():
    assert evaluate("08.2", (3, 13.9)).ok
    assert evaluate("08.2", (3.0, torch.tensor(13.9))).ok
    assert not evaluate("08.2", (4, 13.9)).ok and not evaluate("08.2", (3, 14.0)).ok and not evaluate("08.2", 3).ok


def test_08_3_reflect():
    def reflect(p, lo, hi):
        L = hi - lo
        u = torch.remainder(torch.as_tensor(p) - lo, 2 * L)
        return lo + torch.where(u <= L, u, 2 * L - u)

    assert evaluate("08.3", reflect).ok
    assert not evaluate("08.3", lambda p, lo, hi: torch.clamp(torch.as_tensor(p), lo, hi)).ok
    assert not evaluate("08.3", 3).ok


def test_08_4_two_scale():
    def two_scale(e0, ei, ef, si, sp):
        return e0 + si * (ei - e0) + sp * (ef - ei)

    assert evaluate("08.4", two_scale).ok
    assert not evaluate("08.4", lambda e0, ei, ef, si, sp: e0 + sp * (ef - e0)).ok


def test_08_5_backwards():
    assert evaluate("08.5", (0.0, 2.0, False)).ok
    assert evaluate("08.5", [0, 2, np.False_]).ok
    assert not evaluate("08.5", (0.0, 1.0, False)).ok       # the error is twice the length, not once
    assert not evaluate("08.5", (0.5, 2.0, False)).ok
    assert not evaluate("08.5", (0.0, 2.0, True)).ok        # frame 0 is the last real frame: far below 30 dB
    assert not evaluate("08.5", (0.0, 2.0)).ok and not evaluate("08.5", (0.0, 2.0, "no")).ok
