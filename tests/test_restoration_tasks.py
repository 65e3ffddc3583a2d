"""Chapter 07's tasks (restoration/tasks.py) and baselines (restoration/classical.py additions)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlearn import schedules
from ddlearn.operators import Blur
from ddlearn.restoration import classical as classical_fn
from ddlearn.restoration.classical import clahe, gamma_correction, max_stretch, richardson_lucy
from ddlearn.restoration.tasks import BLIND, TASKS, make_task, restore, score, text_mask

SCHED = schedules.linear(1000)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(c=1, b=3, side=16):
    return torch.rand(b, c, side, side, generator=gen(0)) * 1.6 - 0.8


@pytest.mark.filterwarnings("ignore:divide by zero")  # the truth's PSNR against itself is infinite
@pytest.mark.parametrize("name", TASKS)
def test_every_task_measures_and_has_baselines(name):
    x = images(3 if name == "colorize" else 1)
    tk = make_task(name, x, generator=gen(1))
    assert torch.isfinite(tk.y).all()
    for label, out in tk.baselines().items():
        assert out.shape == x.shape, label
        assert torch.isfinite(out).all(), label
    s = score(tk, x)  # the truth scores perfectly
    assert np.allclose(s["sharpness"], 1.0) and min(s["consistency"]) > 100
    if name in BLIND:
        key = "f" if name == "lowlight" else "sigma"
        assert tk.true_params[key].shape == (3,)
        fresh = tk.fresh_operator(2)
        assert fresh.copies == 6 and tk.true_operator(2).copies == 6
        assert torch.allclose(tk.true_operator(2)(x.repeat_interleave(2, 0)), tk.y.repeat_interleave(2, 0), atol=1e-6)


def test_noise_and_masks():
    x = images()
    clean, noisy = make_task("sr4", x), make_task("sr4", x, noise=0.1, generator=gen(2))
    assert 0.05 < (noisy.y - clean.y).std() < 0.15
    box = make_task("inpaint_box", x).operator.mask
    assert box.mean() == pytest.approx(0.75)
    m = text_mask(32)
    assert m.shape == (32, 32) and 0.1 < 1 - m.mean() < 0.4
    with pytest.raises(ValueError, match="colour"):
        make_task("colorize", images(1))
    with pytest.raises(ValueError, match="unknown task"):
        make_task("sr3", x)


def test_restore_shapes_and_ddnm_refuses_lowlight():
    x = images()
    tk = make_task("sr4", x)
    model = lambda z, t: 0.3 * z  # noqa: E731
    out, op = restore("GDP-x0", model, SCHED, tk, steps=4, k=2, generator=gen(3))
    assert out.shape == (3, 2, 1, 16, 16) and op is tk.operator
    out2, _ = restore("GDP-x0", model, SCHED, tk, steps=4, k=2, generator=gen(3))
    assert torch.equal(out, out2)
    ll = make_task("lowlight", x, generator=gen(4))
    assert restore("DDNM", model, SCHED, ll, steps=2) == (None, None)
    out, op = restore("GDP-x0", model, SCHED, ll, steps=3, k=2, generator=gen(5))
    assert op.copies == 6 and not torch.equal(op.f, torch.full_like(op.f, 0.5))  # the guess was updated


def test_restore_without_settings_starts_from_the_methods_defaults():
    from ddlearn.restoration.tasks import settings

    x = images()
    tk = make_task("sr4", x)
    model = lambda z, t: 0.3 * z  # noqa: E731
    # sr4's settings are scale 1, eta 1; without them sample_gdp's own defaults apply (scale 0.3)
    assert settings("sr4", "GDP-x0") and settings("sr4", "GDP-x0")["scale"] != 0.3
    bare, _ = restore("GDP-x0", model, SCHED, tk, steps=4, generator=gen(3), use_settings=False)
    explicit, _ = restore("GDP-x0", model, SCHED, tk, steps=4, generator=gen(3), use_settings=False,
                          **settings("sr4", "GDP-x0"))
    with_settings, _ = restore("GDP-x0", model, SCHED, tk, steps=4, generator=gen(3))
    assert torch.equal(explicit, with_settings) and not torch.equal(bare, with_settings)
    with pytest.raises(TypeError, match="use_settings"):
        restore("GDP-x0", model, SCHED, tk, steps=2, use_settings="no")


def test_classical_baselines_against_scikit_image():
    from skimage.exposure import equalize_adapthist, rescale_intensity

    x = images(1, 1, 32)
    u = ((x + 1) / 2).double().numpy()[0, 0]
    assert np.allclose((max_stretch(x)[0, 0].double().numpy() + 1) / 2,
                       rescale_intensity(u, in_range=(0, u.max()), out_range=(0, 1)), atol=1e-6)
    assert np.allclose((clahe(x)[0, 0].double().numpy() + 1) / 2, equalize_adapthist(u, clip_limit=0.01), atol=1e-6)
    g = gamma_correction(x)  # mean intensity goes to about 0.5
    assert abs(((g + 1) / 2).mean() - 0.5) < 0.15
    blur = Blur(1.5)
    y = blur(x)
    rl = richardson_lucy(blur, y, num_iter=30)
    assert ((rl - x).pow(2).mean() < (y - x).pow(2).mean())
    assert torch.allclose(classical_fn(blur, y), blur.wiener(y))
    with pytest.raises(TypeError, match="blur"):
        richardson_lucy(make_task("sr4", images()).operator, y)
