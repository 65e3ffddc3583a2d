"""The parametric operators own their parameters: fitting them (Adam, in-place edits) never writes into the
tensors (or arrays) the caller built them from, and their forward never modifies its input x."""
import inspect

import numpy as np
import pytest
import torch

from ddlearn.operators import parametric


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _low_light():
    g = _gen(0)
    f = torch.tensor([0.3, 0.5])
    mask = 0.05 * torch.rand(2, 1, 4, 4, generator=g)
    return parametric.LowLight(f, mask, mask_res=4, copies=2), {"f": f, "mask": mask}


def _low_light_one_copy():  # a (1,) f and a (mask_res, mask_res) mask: the shapes that are reshaped, not expanded
    f = torch.tensor([0.4])
    mask = 0.05 * torch.rand(3, 3, generator=_gen(1))
    return parametric.LowLight(f, mask, mask_res=3), {"f": f, "mask": mask}


def _low_light_numpy():  # torch.as_tensor shares a float32 array's memory
    f = np.array([0.3, 0.6], dtype=np.float32)
    mask = np.full((2, 1, 2, 2), 0.02, dtype=np.float32)
    return parametric.LowLight(f, mask, mask_res=2, copies=2), {"f": f, "mask": mask}


def _low_light_requires_grad():  # a caller's leaf that itself requires grad
    f = torch.tensor([0.3, 0.5], requires_grad=True)
    return parametric.LowLight(f, mask_res=0, copies=2), {"f": f}


def _gamma():
    gamma = torch.tensor([0.8, 1.3])
    return parametric.Gamma(gamma, copies=2), {"gamma": gamma}


def _gamma_numpy():
    gamma = np.array([0.9, 1.1, 1.2], dtype=np.float32)
    return parametric.Gamma(gamma, copies=3), {"gamma": gamma}


def _colour_matrix():
    w = torch.eye(3).repeat(2, 1, 1) + 0.1 * torch.rand(2, 3, 3, generator=_gen(2))
    return parametric.ColourMatrix(w, copies=2), {"weights": w}


def _colour_matrix_one():
    w = torch.eye(3) + 0.1 * torch.rand(3, 3, generator=_gen(3))
    return parametric.ColourMatrix(w), {"weights": w}


def _blind_blur():
    sigma = torch.tensor([1.0, 2.0])
    return parametric.BlindBlur(sigma, copies=2), {"sigma": sigma}


def _blind_blur_one():
    sigma = torch.tensor(1.5)
    return parametric.BlindBlur(sigma), {"sigma": sigma}


#: every way a test builds an operator from a caller's values, by the class it builds
CASES = {
    parametric.LowLight: [_low_light, _low_light_one_copy, _low_light_numpy, _low_light_requires_grad],
    parametric.Gamma: [_gamma, _gamma_numpy],
    parametric.ColourMatrix: [_colour_matrix, _colour_matrix_one],
    parametric.BlindBlur: [_blind_blur, _blind_blur_one],
}
ALL_CASES = [c for cases in CASES.values() for c in cases]


def test_every_parametric_operator_class_is_covered():
    """A new parametric operator must join CASES (the tests below then check that it owns its parameters)."""
    classes = {obj for _, obj in inspect.getmembers(parametric, inspect.isclass)
               if issubclass(obj, parametric.ParametricOperator) and obj is not parametric.ParametricOperator
               and obj.__module__ == parametric.__name__}
    assert classes == set(CASES)


def _snapshot(values: dict) -> dict:
    return {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v.copy()) for k, v in values.items()}


def _assert_unchanged(values: dict, before: dict, what: str):
    for k, v in values.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v.detach(), before[k]), f"{what}: the caller's {k} was changed"
        else:
            assert np.array_equal(v, before[k]), f"{what}: the caller's array {k} was changed"


def _storage(t):
    return t.untyped_storage().data_ptr() if isinstance(t, torch.Tensor) else t.__array_interface__["data"][0]


@pytest.mark.parametrize("build", ALL_CASES, ids=lambda c: c.__name__.lstrip("_"))
def test_parameters_share_no_memory_with_the_callers_values(build):
    op, values = build()
    caller = {_storage(v) for v in values.values()}
    for name, p in op.named_parameters():
        assert _storage(p) not in caller, f"{type(op).__name__}.{name} shares memory with a caller's value"


@pytest.mark.parametrize("build", ALL_CASES, ids=lambda c: c.__name__.lstrip("_"))
def test_fitting_the_parameters_leaves_the_callers_values_alone(build):
    op, values = build()
    before = _snapshot(values)
    start = {n: p.detach().clone() for n, p in op.named_parameters()}
    x = 2 * torch.rand(op.copies, 3, 8, 8, generator=_gen(4)) - 1
    target = 2 * torch.rand(op.copies, 3, 8, 8, generator=_gen(5)) - 1
    opt = torch.optim.Adam(op.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        (op(x) - target).pow(2).mean().backward()
        opt.step()
    for n, p in op.named_parameters():  # the optimiser did move every parameter
        assert not torch.equal(p.detach(), start[n]), f"Adam left {type(op).__name__}.{n} where it was"
    _assert_unchanged(values, before, "Adam steps")
    with torch.no_grad():
        for p in op.parameters():
            p.mul_(1.5).add_(0.25)
    _assert_unchanged(values, before, "an in-place edit of the parameters")


@pytest.mark.parametrize("build", ALL_CASES, ids=lambda c: c.__name__.lstrip("_"))
def test_changing_the_callers_values_afterwards_leaves_the_operator_alone(build):
    op, values = build()
    start = {n: p.detach().clone() for n, p in op.named_parameters()}
    with torch.no_grad():
        for v in values.values():
            v[...] = 7.0
    for n, p in op.named_parameters():
        assert torch.equal(p.detach(), start[n]), f"{type(op).__name__}.{n} followed the caller's edit"


@pytest.mark.parametrize("build", ALL_CASES, ids=lambda c: c.__name__.lstrip("_"))
def test_forward_adjoint_and_pinv_leave_their_input_alone(build):
    op, _ = build()
    x = 2 * torch.rand(op.copies, 3, 8, 8, generator=_gen(6)) - 1
    x0 = x.clone()
    y = op(x)
    assert torch.equal(x, x0)
    y0 = y.detach().clone()
    op.measure(x, generator=_gen(7))
    assert torch.equal(x, x0)
    if op.linear:
        op.adjoint(y.detach())
        op.pinv(y.detach())
        assert torch.equal(y.detach(), y0)
