"""make_task("lowlight", ..., f=, mask=): a reader's exposure and illumination offset, the defaults unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddlearn import metrics
from ddlearn.operators.parametric import LowLight
from ddlearn.restoration.tasks import LOWLIGHT_F, TASKS, make_task, score


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(b=3, c=3, side=16):
    return torch.rand(b, c, side, side, generator=gen(0)) * 1.6 - 0.8


def by_hand(x, f, mask):
    """y = 2 (f u + M) - 1, u = (x + 1) / 2, M the grid (B, 1, r, r) upsampled bilinearly (corners aligned)."""
    u = (x + 1) / 2
    M = F.interpolate(mask, size=x.shape[-2:], mode="bilinear", align_corners=True)
    return 2 * (f.reshape(-1, 1, 1, 1) * u + M) - 1


def old_draw(x, noise, seed):
    """What make_task("lowlight") did before f and mask could be chosen, draw for draw."""
    g = gen(seed)
    B = x.shape[0]
    lo, hi = LOWLIGHT_F
    f = lo + (hi - lo) * torch.rand(B, generator=g)
    mask = 0.05 * torch.rand(B, 1, 3, 3, generator=g)
    truth = LowLight(f, mask, mask_res=3, noise=noise, copies=B).requires_grad_(False)
    with torch.no_grad():
        y = truth.measure(x, generator=g)
    return f, mask, y


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_the_default_draws_are_unchanged(noise):
    x = images()
    f, mask, y = old_draw(x, noise, 3)
    tk = make_task("lowlight", x, noise=noise, generator=gen(3))
    assert torch.equal(tk.true_params["f"], f) and torch.equal(tk.true_params["mask"], mask)
    assert torch.equal(tk.y, y)
    assert tk.operator.mask_res == 3 and tk.truth.mask_res == 3


def test_a_chosen_f_and_mask_make_the_measurement():
    x = images()
    f = torch.tensor([0.2, 0.3, 0.5])
    mask = torch.rand(3, 1, 4, 4, generator=gen(1)) * 0.1
    tk = make_task("lowlight", x, f=f, mask=mask)
    torch.testing.assert_close(tk.y, by_hand(x, f, mask), rtol=0, atol=1e-6)
    assert torch.equal(tk.true_params["f"], f) and torch.equal(tk.true_params["mask"], mask)
    assert tk.operator.mask_res == 4 and tk.truth.mask_res == 4 and tk.fresh_operator(2).mask_res == 4
    torch.testing.assert_close(tk.true_operator(2)(x.repeat_interleave(2, 0)), tk.y.repeat_interleave(2, 0),
                               rtol=0, atol=1e-6)
    assert min(metrics.consistency_psnr(tk.truth, x, tk.y, reduction="none")) > 100  # the truth explains y
    err = tk.estimate_error(LowLight(torch.tensor([0.4, 0.3, 0.25]), mask_res=4, copies=3))["f"]
    torch.testing.assert_close(err, torch.tensor([1.0, 0.0, 0.5]), rtol=0, atol=1e-6)


def test_a_number_and_one_grid_for_all_images():
    x = images()
    grid = torch.tensor([[0.0, 0.02], [0.04, 0.01]])
    tk = make_task("lowlight", x, f=0.25, mask=grid)
    torch.testing.assert_close(tk.y, by_hand(x, torch.full((3,), 0.25), grid.expand(3, 1, 2, 2)), rtol=0, atol=1e-6)
    assert tk.true_params["f"].shape == (3,) and tk.true_params["mask"].shape == (3, 1, 2, 2)
    one = make_task("lowlight", x, f=torch.tensor([0.25]), mask=grid[None, None])
    assert torch.equal(one.y, tk.y)


def test_choosing_one_keeps_the_other_and_the_noise_of_the_default_draw():
    x = images()
    default = make_task("lowlight", x, noise=0.05, generator=gen(7))
    only_f = make_task("lowlight", x, noise=0.05, generator=gen(7), f=0.3)
    assert torch.equal(only_f.true_params["mask"], default.true_params["mask"])
    noise_default = default.y - default.truth(x)
    noise_f = only_f.y - only_f.truth(x)
    torch.testing.assert_close(noise_f, noise_default, rtol=0, atol=1e-6)
    only_mask = make_task("lowlight", x, noise=0.05, generator=gen(7), mask=default.true_params["mask"])
    assert torch.equal(only_mask.true_params["f"], default.true_params["f"])
    assert torch.equal(only_mask.y, default.y)


def test_the_callers_tensors_are_copied_and_never_modified():
    x = images()
    f = torch.tensor([0.2, 0.3, 0.5], requires_grad=True)
    mask = torch.rand(3, 1, 3, 3, generator=gen(2)) * 0.05
    keep = (x.clone(), f.detach().clone(), mask.clone())
    tk = make_task("lowlight", x, f=f, mask=mask)
    for name, v in tk.true_params.items():
        assert v.untyped_storage().data_ptr() not in (f.untyped_storage().data_ptr(),
                                                      mask.untyped_storage().data_ptr()), name
        assert not v.requires_grad, name
    op = tk.fresh_operator()
    opt = torch.optim.Adam(list(op.parameters()) + list(tk.truth.parameters()), lr=0.1)
    for p in tk.truth.parameters():
        p.requires_grad_(True)
    for _ in range(2):
        opt.zero_grad()
        ((op(x) - tk.y).pow(2).mean() + (tk.truth(x) - x).pow(2).mean()).backward()
        opt.step()
    with torch.no_grad():
        tk.true_params["f"].mul_(2.0)
        tk.true_params["mask"].add_(1.0)
    assert torch.equal(x, keep[0]) and torch.equal(f.detach(), keep[1]) and torch.equal(mask, keep[2])


def test_consistency_in_score_is_metrics_per_item():
    x = images()
    tk = make_task("lowlight", x, generator=gen(5))
    x_hat = x + 0.1 * torch.randn(x.shape, generator=gen(6)) * torch.arange(1, 4).reshape(3, 1, 1, 1)
    per = score(tk, x_hat)["consistency"]
    assert per == metrics.consistency_psnr(tk.truth, x_hat, tk.y, reduction="none")
    with torch.no_grad():  # each item's own mean squared error, in float64
        mse = (tk.truth(x_hat).double() - tk.y.double()).pow(2).reshape(3, -1).mean(1)
    assert per == pytest.approx([10 * np.log10(4.0 / m) for m in mse.tolist()], abs=1e-12)
    assert per[0] > per[1] > per[2]
    mse = (tk.truth(x_hat).double() - tk.y.double()).pow(2).mean().item()
    assert metrics.consistency_psnr(tk.truth, x_hat, tk.y) == pytest.approx(10 * np.log10(4.0 / mse), abs=1e-12)
    with pytest.raises(ValueError, match="unknown reduction"):
        metrics.consistency_psnr(tk.truth, x_hat, tk.y, reduction="mean")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"f": 0.0}, ValueError, "f must be > 0"),
    ({"f": -0.2}, ValueError, "f must be > 0"),
    ({"f": float("nan")}, ValueError, "f must be finite"),
    ({"f": float("inf")}, ValueError, "f must be finite"),
    ({"f": torch.tensor([0.2, -0.1, 0.3])}, ValueError, "f must be positive"),
    ({"f": torch.tensor([0.2, float("nan"), 0.3])}, ValueError, "f contains 1 non-finite"),
    ({"f": torch.tensor([0.2, 0.3])}, ValueError, r"f must be a number or a tensor of 1 or 3 values"),
    ({"f": torch.full((3, 1), 0.2)}, ValueError, "f must have 0 or 1 dimensions"),
    ({"f": "bright"}, TypeError, "f must be a number or a torch.Tensor"),
    ({"f": True}, TypeError, "f must be a number"),
    ({"f": torch.tensor([1, 2, 3])}, TypeError, "f must be a floating-point tensor"),
    ({"mask": torch.zeros(3, 3, 3)}, ValueError, "mask must have 2 or 4 dimensions"),
    ({"mask": torch.zeros(2, 1, 3, 3)}, ValueError, r"mask must be a square grid \(r, r\) or \(1 or 3, 1, r, r\)"),
    ({"mask": torch.zeros(3, 2, 3, 3)}, ValueError, "mask must be a square grid"),
    ({"mask": torch.zeros(3, 4)}, ValueError, "mask must be a square grid"),
    ({"mask": torch.full((3, 3), float("inf"))}, ValueError, "mask contains 9 non-finite"),
    ({"mask": [[0.0, 0.1], [0.0, 0.1]]}, TypeError, "mask must be a torch.Tensor"),
])
def test_bad_f_and_mask(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_task("lowlight", images(), generator=gen(0), **kwargs)


@pytest.mark.parametrize("name", [t for t in TASKS if t != "lowlight"])
@pytest.mark.parametrize("arg", ["f", "mask"])
def test_f_and_mask_are_for_lowlight_only(name, arg):
    value = 0.3 if arg == "f" else torch.zeros(3, 3)
    with pytest.raises(ValueError, match=f"{arg} is the lowlight task's.*{name}"):
        make_task(name, images(), **{arg: value})
