"""The caller's tensors are the caller's (issue 24): no operator and no sampler modifies a tensor it is given,
and an operator built from a caller's tensor keeps its own copy (editing the caller's tensor afterwards leaves
the operator alone; stepping the operator's parameters leaves the caller's tensor alone).

Every call below gets tensors that are snapshotted first and compared bit for bit afterwards.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from ddlearn import schedules
from ddlearn.operators import (BlindBlur, ColourMatrix, Compose, Convolution, Downsample, Gamma, Grayscale, Identity,
                               KSpace, LowLight, Mask, Matrix, Radon, kspace_mask)
from ddlearn.restoration import patches

SCHED = schedules.linear(T=1000)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def img(b=2, c=1, s=8, seed=0):
    return torch.rand(b, c, s, s, generator=gen(seed)) * 2 - 1


def toy(x, t, **_):
    """A cheap eps-model that depends on x and t (every sampler accepts it)."""
    return 0.3 * x + 1e-4 * t.float().reshape(-1, *([1] * (x.ndim - 1)))


def _snapshot(values):
    return [v.detach().clone() if isinstance(v, torch.Tensor) else np.array(v, copy=True) for v in values]


def _unchanged(values, before):
    for v, b in zip(values, before):
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b), "a caller's tensor was modified"
        else:
            assert np.array_equal(v, b), "a caller's array was modified"


# --------------------------------------------------------------------------- operators
def _values():
    """Fresh caller's tensors for each build (a test edits them)."""
    return dict(m=(torch.rand(8, 8, generator=gen(1)) > 0.5).float(), kernel=torch.ones(3, 3, dtype=torch.float64) / 9,
                A=torch.randn(3, 5, generator=gen(2), dtype=torch.float64), kmask=kspace_mask(8, 2),
                angles=np.array([0.0, 45.0, 90.0, 135.0]), f=torch.tensor([0.3, 0.5]),
                lmask=0.05 * torch.rand(2, 1, 3, 3, generator=gen(3)), g=torch.tensor([0.8, 1.2]),
                w=torch.eye(3) * 0.9, s=torch.tensor([0.7, 1.5]))


def _operators():
    """(id, build) where build() -> (operator, x, the caller's tensors it was built from)."""
    def case(make):
        def build():
            v = _values()
            op, x, names = make(v)
            return op, x, [v[n] for n in names]
        return build

    return [
        ("Identity", case(lambda v: (Identity(), img(), []))),
        ("Mask", case(lambda v: (Mask(v["m"]), img(), ["m"]))),
        ("Downsample", case(lambda v: (Downsample(2), img(), []))),
        ("Grayscale", case(lambda v: (Grayscale(3), img(c=3), []))),
        ("Convolution", case(lambda v: (Convolution(v["kernel"]), img(), ["kernel"]))),
        ("Matrix", case(lambda v: (Matrix(v["A"]), torch.randn(2, 5, generator=gen(4), dtype=torch.float64), ["A"]))),
        ("Compose", case(lambda v: (Compose(Downsample(2), Mask(v["m"])), img(), ["m"]))),
        ("Radon", case(lambda v: (Radon(8, angles=v["angles"]), img(), ["angles"]))),
        ("KSpace", case(lambda v: (KSpace(v["kmask"]), img(), ["kmask"]))),
        ("Upsample", case(lambda v: (patches.Upsample(2), img(s=4), []))),
        ("LowLight", case(lambda v: (LowLight(v["f"], v["lmask"], mask_res=3, copies=2), img(), ["f", "lmask"]))),
        ("Gamma", case(lambda v: (Gamma(v["g"], copies=2), img(), ["g"]))),
        ("ColourMatrix", case(lambda v: (ColourMatrix(v["w"]), img(c=3), ["w"]))),
        ("BlindBlur", case(lambda v: (BlindBlur(v["s"], copies=2), img(), ["s"]))),
    ]


OPERATORS = _operators()


@pytest.mark.parametrize("build", [b for _, b in OPERATORS], ids=[i for i, _ in OPERATORS])
def test_an_operator_never_modifies_what_it_is_given(build):
    op, x, built_from = build()
    before = _snapshot(built_from)
    y = op.measure(x, generator=gen(5))
    calls = [lambda: op(x), lambda: op.measure(x, generator=gen(6))]
    if op.linear:
        calls += [lambda: op.adjoint(y), lambda: op.pinv(y), lambda: op.project(x, y)]
    inputs = [x, y]
    seen = _snapshot(inputs)
    for call in calls:
        out = call()
        out.add_(1.0) if not out.is_complex() else out.mul_(2)  # a caller editing the result in place ...
    _unchanged(inputs, seen)                                      # ... never edits x or y
    _unchanged(built_from, before)


@pytest.mark.parametrize("build", [b for _, b in OPERATORS], ids=[i for i, _ in OPERATORS])
def test_an_operator_keeps_its_own_copy_of_the_callers_tensors(build):
    op, x, built_from = build()
    out = op(x).detach().clone()
    for v in built_from:  # the caller edits what they built the operator from (a 0/1 mask stays 0/1)
        if isinstance(v, np.ndarray):
            v += 7.0
        elif set(v.unique().tolist()) <= {0.0, 1.0}:
            v.copy_(1 - v)
        else:
            v.mul_(0.5)
    assert torch.equal(op(x), out), "the operator changed with the caller's tensor"


# --------------------------------------------------------------------------- samplers
@functools.lru_cache(maxsize=None)
def _video_net():
    from ddlearn.nets import VideoUNet

    return VideoUNet(image_size=8, frames=4, base=8, channel_mults=(1, 2), attn_res=(), temporal_attn_res=(),
                     cross_res=(), context_dim=8, num_queries=2, qformer_depth=1)


def _samplers():
    """(id, make, call): make() -> the caller's tensors (a dict), call(d) runs the sampler on them."""
    from ddlearn import langevin, samplers
    from ddlearn.restoration import anomaly, consistency, gdp, posterior
    from ddlearn.video import sampling

    def plain(f, **kw):
        return (lambda: {"x_T": img(b=2, s=4)},
                lambda d: f(toy, d["x_T"], SCHED, 3, generator=gen(1), progress=False, **kw))

    def measured(f, op_build, **kw):
        def make():
            op, truth = op_build()
            return {"x_T": img(b=truth.shape[0], c=truth.shape[1], s=truth.shape[-1], seed=3),
                    "y": op.measure(truth, generator=gen(2)), "op": op}

        def call(d):
            op = d["op"]
            state = {k: v.detach().clone() for k, v in op.state_dict().items()}
            f(toy, d["x_T"], SCHED, 3, operator=op, y=d["y"], generator=gen(4), progress=False, **kw)
            if not any(p.requires_grad for p in op.parameters()):  # a known operator stays put
                for k, v in op.state_dict().items():
                    assert torch.equal(v, state[k]), f"the operator's {k} moved"
        return make, call

    mask_op = lambda: (Mask.box(8, 2, 2, 4, 4), img())  # noqa: E731
    radon_op = lambda: (Radon(8, 4), img())  # noqa: E731
    kspace_op = lambda: (KSpace(kspace_mask(8, 2)), img())  # noqa: E731
    lowlight_known = lambda: (LowLight(torch.tensor([0.4, 0.6]), mask_res=0, copies=2).requires_grad_(False),  # noqa
                              img(c=3))
    lowlight_blind = lambda: (LowLight(1.0, mask_res=2, copies=2), img(c=3))  # noqa: E731

    def hierarchical(d):
        patches.sample_hierarchical(toy, d["x_T"], SCHED, 2, operator=Downsample(2), y=d["y"], patch=4,
                                    generator=gen(6), progress=False)

    def reconstruct(d):
        consistency.reconstruct(toy, SCHED, Radon(8, 4), d["y"], steps=2, samples=2, generator=gen(7))

    def anomaly_map(d):
        for noise in ("gaussian", "simplex"):
            anomaly.anomaly_map(toy, SCHED, d["x"], t0=20, steps=2, noise=noise, generator=gen(8))

    def animate(d):
        sampling.animate(_video_net(), SCHED, d["image"], "right", d["stride"], steps=2, generator=gen(9),
                         progress=False)

    return [
        ("ddim", *plain(samplers.sample_ddim)),
        ("ddim-eta1", *plain(samplers.sample_ddim, eta=1.0)),
        ("euler", *plain(samplers.sample_euler)),
        ("heun", *plain(samplers.sample_heun)),
        ("dpm_solver", *plain(samplers.sample_dpm_solver)),
        ("dpm_solver_pp", *plain(samplers.sample_dpm_solver_pp)),
        ("dpm_solver_multistep", *plain(samplers.sample_dpm_solver_multistep)),
        ("euler_maruyama", *plain(samplers.sample_euler_maruyama)),
        ("pc", *plain(samplers.sample_pc)),
        ("pf_ode", *plain(samplers.sample_pf_ode)),
        ("annealed_langevin", *plain(langevin.sample_annealed_langevin, n_steps_each=1)),
        ("dps", *measured(posterior.sample_dps, mask_op)),
        ("ddnm", *measured(posterior.sample_ddnm, mask_op)),
        ("guided", *measured(posterior.sample_guided, mask_op)),
        ("gdp-x0", *measured(gdp.sample_gdp, mask_op, on="x0")),
        ("gdp-xt", *measured(gdp.sample_gdp, mask_op, on="xt", noisy_y=True)),
        ("gdp-known-lowlight", *measured(gdp.sample_gdp, lowlight_known)),
        ("gdp-blind-lowlight", *measured(gdp.sample_gdp, lowlight_blind)),
        ("consistency", *measured(consistency.sample_consistency, radon_op)),
        ("projection", *measured(consistency.sample_projection, radon_op)),
        ("score_mri", *measured(consistency.sample_score_mri, kspace_op)),
        ("hierarchical", lambda: {"x_T": img(b=1, s=8, seed=5), "y": Downsample(2)(img(b=1, s=8))}, hierarchical),
        ("reconstruct", lambda: {"y": Radon(8, 4)(img())}, reconstruct),
        ("anomaly_map", lambda: {"x": img()}, anomaly_map),
        ("animate", lambda: {"image": img(b=1, c=3), "stride": torch.tensor([2.0])}, animate),
    ]


SAMPLERS = _samplers()


@pytest.mark.parametrize("make, call", [(m, c) for _, m, c in SAMPLERS], ids=[i for i, _, _ in SAMPLERS])
def test_a_sampler_never_modifies_what_it_is_given(make, call, one_thread):
    d = make()
    tensors = [v for v in d.values() if isinstance(v, torch.Tensor)]
    before = _snapshot(tensors)
    call(d)
    _unchanged(tensors, before)


def test_the_check_can_fail():
    """The comparison above catches an in-place edit (a sampler that did ``x_T.mul_(2)`` would fail it)."""
    x = img()
    before = _snapshot([x])
    x.mul_(2)
    with pytest.raises(AssertionError, match="modified"):
        _unchanged([x], before)
