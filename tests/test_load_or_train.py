"""train.load_or_train: the shipped checkpoint when it is there; a quick stand-in when not, said loudly in full
mode (a StandInWarning naming the checkpoint and why) and once in fast mode; a damaged pair refused in full mode."""
import shutil
import warnings

import pytest
import torch

from ddlearn import pretrained, train
from ddlearn.checkpoint import CheckpointError
from ddlearn.schedules import Schedule


def test_shipped_checkpoint_comes_back_as_model_and_schedule():
    model, schedule = train.load_or_train("toy2d")
    want = pretrained.load("toy2d")
    assert isinstance(schedule, Schedule) and schedule.T == want.schedule.T
    for a, b in zip(model.state_dict().values(), want.model.state_dict().values()):
        assert torch.equal(a, b)


def test_missing_checkpoint_in_full_mode_warns_and_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DDLEARN_FAST", "0")
    with pytest.warns(train.StandInWarning, match=r"'toy2d' not found in .*stand-in.*not the shipped model"):
        model, schedule = train.load_or_train("toy2d", directory=tmp_path)
    assert "WARNING: checkpoint 'toy2d' not found" in capsys.readouterr().out  # seen in a notebook's output too
    x = torch.randn(5, 2)
    assert model(x, torch.full((5,), 10.0)).shape == (5, 2)
    assert schedule.T == 1000


def test_missing_checkpoint_in_fast_mode_is_said_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DDLEARN_FAST", "1")
    monkeypatch.setattr(train, "_STAND_INS_SAID", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error", train.StandInWarning)  # fast mode prints, it does not warn
        train.load_or_train("toy2d", directory=tmp_path)
        train.load_or_train("toy2d", directory=tmp_path)
    out = capsys.readouterr().out
    assert out.count("checkpoint 'toy2d' not found") == 1


def _copy_pair(tmp_path, name="toy2d"):
    for suffix in (".safetensors", ".json"):
        shutil.copy(pretrained.folder() / f"{name}{suffix}", tmp_path / f"{name}{suffix}")


def test_damaged_checkpoint_is_refused_in_full_mode_and_stood_in_for_in_fast_mode(tmp_path, monkeypatch, capsys):
    _copy_pair(tmp_path)
    weights = tmp_path / "toy2d.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])  # truncated
    monkeypatch.setenv("DDLEARN_FAST", "0")
    with pytest.raises(CheckpointError, match="toy2d"):
        train.load_or_train("toy2d", directory=tmp_path)
    monkeypatch.setenv("DDLEARN_FAST", "1")
    monkeypatch.setattr(train, "_STAND_INS_SAID", set())
    train.load_or_train("toy2d", directory=tmp_path)
    assert "'toy2d' refused" in capsys.readouterr().out


def test_half_a_pair_is_refused_in_full_mode(tmp_path, monkeypatch):
    _copy_pair(tmp_path)
    (tmp_path / "toy2d.json").unlink()
    monkeypatch.setenv("DDLEARN_FAST", "0")
    with pytest.raises(CheckpointError, match="incomplete.*toy2d.safetensors"):
        train.load_or_train("toy2d", directory=tmp_path)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name"):
        train.load_or_train(3)


def test_name_must_not_be_a_path():
    with pytest.raises(ValueError, match="name"):
        train.load_or_train("../toy2d")
