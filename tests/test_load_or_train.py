"""train.load_or_train: the shipped checkpoint when it is there, a quick stand-in when not."""
import pytest
import torch

from ddlearn import pretrained, train
from ddlearn.schedules import Schedule


def test_shipped_checkpoint_comes_back_as_model_and_schedule():
    model, schedule = train.load_or_train("toy2d")
    want = pretrained.load("toy2d")
    assert isinstance(schedule, Schedule) and schedule.T == want.schedule.T
    for a, b in zip(model.state_dict().values(), want.model.state_dict().values()):
        assert torch.equal(a, b)


def test_missing_checkpoint_trains_a_stand_in(tmp_path, capsys):
    model, schedule = train.load_or_train("toy2d", directory=tmp_path)
    assert "training a quick stand-in" in capsys.readouterr().out
    x = torch.randn(5, 2)
    assert model(x, torch.full((5,), 10.0)).shape == (5, 2)
    assert schedule.T == 1000


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name"):
        train.load_or_train(3)
