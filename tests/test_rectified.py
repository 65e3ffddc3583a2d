"""Rectified flow: straightness measures what it says, reflow straightens a flow and leaves the caller's model alone."""
import pytest
import torch

from ddlearn import flow, oracles
from ddlearn.losses import flow_matching_loss
from ddlearn.nets import MLP
from ddlearn.rectified import reflow, reflow_pairs, straightness


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Constant(torch.nn.Module):
    """v(x, u) = c: every path a straight line at constant speed."""

    def __init__(self, c):
        super().__init__()
        self.c = torch.nn.Parameter(torch.as_tensor(c, dtype=torch.float32))

    def forward(self, x, t):
        return self.c.expand_as(x)


def test_straightness_is_zero_for_straight_paths_and_positive_for_a_mixture():
    path = flow.FlowPath()
    x = torch.randn(100, 2, generator=gen(1))
    assert straightness(Constant([0.3, -0.2]), path, x) < 1e-10
    curved = straightness(oracles.named_mixture("two").velocity_model(path), path, x.double())
    assert curved > 0.05


def _trained_mlp(steps=400):
    torch.manual_seed(0)
    net = MLP(dim=2, hidden=32, depth=2, emb_dim=16, T=1000)
    path = flow.FlowPath()
    data = oracles.named_mixture("two").sample(4000, generator=gen(2))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = gen(3)
    for _ in range(steps):
        loss = flow_matching_loss(net, data[torch.randint(0, 4000, (256,), generator=g)], path, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval(), path


def test_one_reflow_straightens_the_flow_and_keeps_the_callers_model():
    net, path = _trained_mlp()
    before_weights = [p.detach().clone() for p in net.parameters()]
    noise = torch.randn(4000, 2, generator=gen(4))
    x0 = reflow_pairs(net, path, noise, steps=50)
    noise_copy, x0_copy = noise.clone(), x0.clone()
    rf = reflow(net, path, x0, noise, steps=400, lr=1e-3, generator=gen(5))
    assert all(torch.equal(a, p) for a, p in zip(before_weights, net.parameters()))
    assert torch.equal(noise, noise_copy) and torch.equal(x0, x0_copy)
    probe = torch.randn(500, 2, generator=gen(6))
    s0, s1 = straightness(net, path, probe), straightness(rf, path, probe)
    assert s1 < 0.5 * s0, (s0, s1)
    # one Euler step of the reflowed flow lands nearer to where its own fine ODE goes than the original's does
    with torch.no_grad():
        from ddlearn.samplers import sample_flow
        gap = [(sample_flow(m, probe, path, 1, progress=False) - sample_flow(m, probe, path, 50, progress=False))
               .norm(dim=1).mean() for m in (net, rf)]
    assert gap[1] < 0.5 * gap[0]


def test_bad_inputs():
    net, path = Constant([0.0, 0.0]), flow.FlowPath()
    x = torch.zeros(4, 2)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        reflow(lambda x, t: x, path, x, x, steps=1)
    with pytest.raises(ValueError, match="noise"):
        reflow(net, path, x, torch.zeros(3, 2), steps=1)
    with pytest.raises(ValueError, match="steps"):
        reflow(net, path, x, x, steps=0)
    with pytest.raises(ValueError, match="steps"):
        straightness(net, path, x, steps=0)
