"""Chapter 09's exercise checkers (ddlearn/exercises/ch09.py) accept the solutions and reject wrong answers."""
import math

import torch

from ddlearn.exercises import evaluate
from ddlearn.schedules import get


def _dc(x, y, mask):  # score-MRI's hard data consistency, by hand
    k = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
    k = k * (1 - mask) + y * mask
    return torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho").real


def test_checkers_09():
    assert evaluate("09.1", (0.8, 0.6)).ok
    assert not evaluate("09.1", (0.64, 0.36)).ok and not evaluate("09.1", 0.8).ok
    amp = get("linear", T=1000).alpha_bars[250].sqrt().item()
    assert evaluate("09.2", amp).ok and not evaluate("09.2", amp ** 2).ok
    # the closed-form approximation exp(-sum beta / 2) is within the checker's tolerance? (it should not need to be)
    approx = math.exp(-0.5 * sum(1e-4 + (0.02 - 1e-4) * s / 999 for s in range(251)))
    assert abs(approx - amp) < 0.01
    assert evaluate("09.3", 1.0).ok and evaluate("09.3", 1).ok and not evaluate("09.3", 0.5).ok
    assert evaluate("09.4", _dc).ok
    assert not evaluate("09.4", lambda x, y, m: x).ok
    assert not evaluate("09.4", lambda x, y, m: torch.fft.ifft2(y)).ok  # complex: rejected with a message
    assert not evaluate("09.4", None).ok
