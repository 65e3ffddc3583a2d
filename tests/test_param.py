"""The eps / x0 / v / score conversions (ddlearn/param.py) against their definitions."""
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddlearn import param


@settings(max_examples=40, deadline=None)
@given(ab=st.floats(1e-4, 0.9999), seed=st.integers(0, 1000))
def test_param_conversions_agree_with_their_definitions(ab, seed):
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    xt = a * x0 + s * eps
    v = a * eps - s * x0  # Salimans & Ho 2022, definition
    for src, pred in (("eps", eps), ("x0", x0), ("v", v), ("score", -eps / s)):
        for dst, want in (("eps", eps), ("x0", x0), ("v", v), ("score", -eps / s)):
            torch.testing.assert_close(param.convert(pred, xt, ab, src=src, dst=dst), want, rtol=1e-6, atol=1e-6)
