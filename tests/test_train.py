"""Training loop: it learns, it repeats, it resumes exactly, it writes safely; recipes run end to end."""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

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


def test_resume_of_something_else_names_the_file(tmp_path):
    junk = tmp_path / "weights.bin"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"resume=.*weights.bin is not a safetensors file"):
        train.train(TINY, progress=False, resume=junk)
    with pytest.raises(TypeError, match="resume must be the path"):
        train.train(TINY, progress=False, resume=12)


@pytest.fixture()
def no_training(monkeypatch):
    """Fails the test if run_recipe gets as far as the first training step."""
    def refuse(*a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(train, "train", refuse)


def test_run_recipe_checks_its_folder_before_training(tmp_path, no_training):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        train.run_recipe(TINY, out_dir=tmp_path / "file", progress=False)
    with pytest.raises(ValueError, match="cannot be written to"):
        train.run_recipe(TINY, out_dir=tmp_path / "file" / "sub", progress=False)
    checkpoint.save_json({}, tmp_path / "tiny_test.json")
    with pytest.raises(FileExistsError, match=r"tiny_test.safetensors exists already .*force=True"):
        train.run_recipe(TINY, out_dir=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train.run_recipe(TINY, out_dir=tmp_path / "new", progress=False, resume=True)
    checkpoint.save_json({}, train.state_path(tmp_path / "new", "tiny_test"))
    with pytest.raises(FileExistsError, match="holds an interrupted run.*resume=True"):
        train.run_recipe(TINY, out_dir=tmp_path / "new", progress=False)
    with pytest.raises(ValueError, match="checkpoint_every must be"):
        train.run_recipe(TINY, out_dir=tmp_path / "new", progress=False, checkpoint_every=-1)


def test_run_recipe_resumes_bit_for_bit_and_cleans_up(tmp_path):
    short = replace(TINY, steps=30)
    whole = train.run_recipe(short, out_dir=tmp_path / "whole", progress=False, checkpoint_every=0)
    out = tmp_path / "parts"
    state = train.state_path(out, short.name)
    train.train(short, progress=False, checkpoint=state, checkpoint_every=7, stop_after=17)  # as if stopped at 17
    assert not (out / f"{short.name}.safetensors").exists()
    resumed = train.run_recipe(short, out_dir=out, progress=False, resume=True)
    assert not state.exists() and sorted(p.name for p in out.iterdir()) == ["tiny_test.json", "tiny_test.safetensors"]
    a, b = pretrained.load_file(whole), pretrained.load_file(resumed)
    assert _same(a.model, b.model) and a.info["metrics"] == b.info["metrics"]
    assert b.info["resumed"] is True and b.info["steps"] == 30 and b.info["device"] == "cpu"
    with pytest.raises(FileExistsError, match="exists already"):
        train.run_recipe(short, out_dir=out, progress=False)
    train.run_recipe(short, out_dir=out, progress=False, force=True, seed=3)
    assert pretrained.load_file(resumed).info["seed"] == 3


def test_a_checkpoint_that_appears_while_training_is_not_overwritten(tmp_path, monkeypatch):
    short = replace(TINY, steps=10)
    real = train.evaluate

    def meanwhile(*a, **k):  # someone writes the same checkpoint while we train
        checkpoint.save_json({"theirs": True}, tmp_path / "tiny_test.json")
        return real(*a, **k)

    monkeypatch.setattr(train, "evaluate", meanwhile)
    with pytest.raises(FileExistsError, match=r"appeared while training.*--resume --force"):
        train.run_recipe(short, out_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / "tiny_test.json").read_text()) == {"theirs": True}
    assert train.state_path(tmp_path, "tiny_test").exists()
    monkeypatch.setattr(train, "evaluate", real)
    path = train.run_recipe(short, out_dir=tmp_path, progress=False, resume=True, force=True)
    assert pretrained.load_file(path).info["steps"] == 10


@pytest.mark.slow
def test_cli_train_toy2d_fast_end_to_end(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([sys.executable, "-m", "ddlearn.cli", "train", "toy2d", "--fast", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    side = json.loads((tmp_path / "toy2d.json").read_text())
    assert side["command"].startswith("ddlearn train toy2d --fast")
    assert {"heldout_loss", "sw_samples_vs_heldout", "sw_data_vs_heldout"} <= set(side["metrics"])
    model, schedule = pretrained.load("toy2d", directory=tmp_path)
    assert schedule.T == 1000 and model(torch.zeros(3, 2), 5).shape == (3, 2)


# --------------------------------------------------------------------------- float16 storage and converting a checkpoint
def test_float16_storage_halves_the_file_and_its_metrics_are_the_files(tmp_path):
    short = replace(TINY, steps=20)
    w32 = train.run_recipe(short, out_dir=tmp_path / "a", progress=False)
    w16 = train.run_recipe(replace(short, storage="float16"), out_dir=tmp_path / "b", progress=False)
    from safetensors.torch import load_file
    raw = load_file(str(w16))
    assert {v.dtype for v in raw.values()} == {torch.float16}
    assert w16.stat().st_size < 0.6 * w32.stat().st_size
    a, b = pretrained.load_file(w32), pretrained.load_file(w16)
    assert b.info["storage"] == "float16" and b.recipe.storage == "float16" and a.info["storage"] == "float32"
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert y.dtype == torch.float32 and torch.equal(y, x.half().float()), k   # the loader restores float32
    # the sidecar's metrics are those of the rounded weights, and they come back from the loaded model
    assert b.info["metrics"] == train.evaluate(b.model, b.schedule, b.recipe)
    assert b.info["metrics"] != a.info["metrics"]


def test_a_recipe_with_an_unknown_storage_is_refused_before_training(tmp_path, no_training):
    with pytest.raises(ValueError, match=r"storage must be one of \('float32', 'float16'\), got 'int8'"):
        train.run_recipe(replace(TINY, storage="int8"), out_dir=tmp_path, progress=False)


def test_convert_restores_a_trained_pair_as_float16_and_says_so(tmp_path):
    from ddlearn import cli

    short = replace(TINY, steps=20)
    w = train.run_recipe(short, out_dir=tmp_path, progress=False)
    before = pretrained.load_file(w)
    assert cli.main(["convert", "tiny_test", "--dir", str(tmp_path)]) == 0
    after = pretrained.load_file(w)
    info = after.info
    assert info["storage"] == "float16" and info["recipe"]["storage"] == "float16"
    assert info["sha256"] == checkpoint.sha256(w) != before.info["sha256"] and info["bytes"] == w.stat().st_size
    assert info["converted"]["command"] == f"ddlearn convert tiny_test --storage float16 --dir {tmp_path}"
    assert info["converted"]["metrics_before"] == before.info["metrics"]
    assert info["converted"]["from"] == "float32" and info["converted"]["sha256_before"] == before.info["sha256"]
    assert info["command"] == before.info["command"] and info["seed"] == before.info["seed"]  # how it was trained
    for x, y in zip(before.model.state_dict().values(), after.model.state_dict().values()):
        assert torch.equal(y, x.half().float())
    assert info["metrics"] == train.evaluate(after.model, after.schedule, after.recipe)
    # the same as training with storage="float16" in the first place (same weights, same metrics)
    direct = pretrained.load_file(train.run_recipe(replace(short, storage="float16"), out_dir=tmp_path / "d",
                                                   progress=False))
    assert _same(direct.model, after.model) and direct.info["metrics"] == info["metrics"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["tiny_test.json", "tiny_test.safetensors"]
    with pytest.raises(ValueError, match="stored as float16 already"):
        train.convert_storage("tiny_test", "float16", directory=tmp_path)
    with pytest.raises(ValueError, match="storage must be one of"):
        train.convert_storage("tiny_test", "bfloat16", directory=tmp_path)


def test_convert_refuses_a_checkpoint_whose_training_is_running(tmp_path):
    short = replace(TINY, steps=5)
    train.run_recipe(short, out_dir=tmp_path, progress=False)
    checkpoint.save_json({}, train.state_path(tmp_path, "tiny_test"))
    sha = json.loads((tmp_path / "tiny_test.json").read_text())["sha256"]
    with pytest.raises(FileExistsError, match="is running or was interrupted"):
        train.convert_storage("tiny_test", directory=tmp_path)
    assert json.loads((tmp_path / "tiny_test.json").read_text())["sha256"] == sha
    with pytest.raises(ValueError, match="name must be a checkpoint name"):
        train.convert_storage("../tiny_test", directory=tmp_path)


def test_resuming_ignores_the_storage_field(tmp_path):
    short = replace(TINY, steps=12)
    state = tmp_path / "s.safetensors"
    train.train(short, progress=False, checkpoint=state, stop_after=5)
    whole = train.train(short, progress=False)
    resumed = train.train(replace(short, storage="float16"), progress=False, resume=state)
    assert _same(whole.model, resumed.model)


# --------------------------------------------------------------------------- switches: bf16 autocast, torch.compile
def test_amp_switch_changes_the_arithmetic_and_still_learns():
    short = replace(TINY, steps=40)
    plain = train.train(short, progress=False)
    amp = train.train(short, progress=False, amp=True)
    assert not _same(plain.net, amp.net)   # bf16 autocast did run
    assert all(torch.isfinite(torch.tensor(amp.losses)))
    first, last = sum(amp.losses[:10]) / 10, sum(amp.losses[-10:]) / 10
    assert last < first, (first, last)
    off = train.train(short, progress=False, amp=False, compile=False)   # the switches off: the plain run, bit for bit
    assert _same(plain.net, off.net) and plain.losses == off.losses


def test_compile_switch_wraps_the_net():
    short = replace(TINY, steps=5)
    plain = train.train(short, progress=False)
    compiled = train.train(short, progress=False, compile="eager")   # dynamo's tracing, no code generation
    for a, b in zip(plain.net.state_dict().values(), compiled.net.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()
