"""Training loop: it learns, it repeats, it resumes exactly, it writes safely; recipes run end to end."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from ddlearn import checkpoint, pretrained, train
from ddlearn.recipe import Recipe

TINY = Recipe(name="tiny_test", data="swiss_roll", data_kwargs={"n": 1000}, net="mlp",
              net_kwargs={"dim": 2, "hidden": 32, "depth": 2, "emb_dim": 16, "T": 100},
              schedule_kwargs={"T": 100}, steps=150, batch_size=128, lr=3e-3, ema_decay=0.9, warmup=10)


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_short_run_lowers_the_loss():
    out = train.train(TINY, progress=False)
    first, last = sum(out.losses[:20]) / 20, sum(out.losses[-20:]) / 20
    assert last < 0.75 * first, (first, last)
    assert not out.model.training and out.step == TINY.steps


def test_same_seed_same_weights_and_global_rng_untouched():
    short = replace(TINY, steps=20)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = train.train(short, progress=False)
    after = torch.rand(1)
    assert torch.equal(before, after)  # training drew nothing from the global generator
    b = train.train(short, progress=False)
    assert _same(a.net, b.net) and _same(a.model, b.model)
    c = train.train(short, progress=False, seed=1)
    assert not _same(a.net, c.net)


def test_resume_continues_exactly(tmp_path):
    short = replace(TINY, steps=24)
    whole = train.train(short, progress=False)
    ckpt = tmp_path / "state.safetensors"
    half = train.train(short, progress=False, checkpoint=ckpt, stop_after=12)
    assert half.step == 12 and ckpt.exists()
    rest = train.train(short, progress=False, resume=ckpt)
    assert rest.step == 24 and len(rest.losses) == 24
    assert _same(whole.net, rest.net) and _same(whole.model, rest.model)
    assert rest.losses == pytest.approx(whole.losses)
    with pytest.raises(ValueError, match="different settings"):
        train.train(replace(short, lr=1e-2), progress=False, resume=ckpt)


def test_unknown_recipe_name():
    with pytest.raises(ValueError, match="unknown recipe"):
        train.train("nope", progress=False)
    with pytest.raises(TypeError, match="device must be"):
        train.train(TINY, progress=False, device=3)


def test_device_argument_cpu_is_the_default_on_a_cpu_machine(monkeypatch):
    short = replace(TINY, steps=5)
    monkeypatch.setenv("DDLEARN_DEVICE", "cpu")
    a = train.train(short, progress=False)
    b = train.train(short, progress=False, device="cpu")
    c = train.train(short, progress=False, device=torch.device("cpu"))
    assert _same(a.net, b.net) and _same(a.net, c.net)
    assert next(a.model.parameters()).device.type == "cpu"


def test_run_recipe_writes_a_loadable_checkpoint(tmp_path):
    path = train.run_recipe("digit_classifier", fast=True, out_dir=tmp_path, progress=False)
    side = json.loads((tmp_path / "digit_classifier.json").read_text())
    assert side["command"] == f"ddlearn train digit_classifier --fast --out {tmp_path}"
    assert side["sha256"] == checkpoint.sha256(path) and "heldout_accuracy" in side["metrics"]
    loaded = pretrained.load("digit_classifier", directory=tmp_path)
    assert loaded.schedule is None and not loaded.model.training


@pytest.mark.slow
def test_cli_train_toy2d_fast_end_to_end(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "ddlearn.cli", "train", "toy2d", "--fast", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    side = json.loads((tmp_path / "toy2d.json").read_text())
    assert side["command"].startswith("ddlearn train toy2d --fast")
    assert {"heldout_loss", "sw_samples_vs_heldout", "sw_data_vs_heldout"} <= set(side["metrics"])
    model, schedule = pretrained.load("toy2d", directory=tmp_path)
    assert schedule.T == 1000 and model(torch.zeros(3, 2), 5).shape == (3, 2)
