"""restoration.classical: the prior-free baselines run and fit the measurement."""
import torch

from ddlearn import operators as ops
from ddlearn.restoration import classical


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_classical_baselines_run_and_fit_the_measurement():
    x = torch.rand(2, 1, 8, 8, generator=gen(12), dtype=torch.float64) * 2 - 1
    for op in (ops.Mask.box(8, 2, 2, 3, 3), ops.Downsample(2), ops.Blur(1.0)):
        out = classical(op, op(x))
        assert out.shape == x.shape
    m = ops.Mask.box(8, 2, 2, 3, 3)
    assert torch.allclose(m(classical(m, m(x))), m(x))
