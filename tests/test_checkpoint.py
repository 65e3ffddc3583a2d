"""Checkpoint files: atomic writes, hashes, the training state and its refusals."""
import json
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file

from ddlearn import checkpoint
from ddlearn.recipe import Recipe


def test_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "w.safetensors"
    checkpoint.save_safetensors({"a": torch.ones(3)}, path)
    digest = checkpoint.sha256(path)

    def boom(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(path, boom)
    assert checkpoint.sha256(path) == digest and os.listdir(tmp_path) == ["w.safetensors"]


def test_saved_tensors_and_json_come_back(tmp_path):
    t = torch.arange(6.0).reshape(2, 3).t()  # not contiguous
    checkpoint.save_safetensors({"t": t}, tmp_path / "a.safetensors", metadata={"k": "v"})
    assert torch.equal(load_file(str(tmp_path / "a.safetensors"))["t"], t)
    checkpoint.save_json({"x": [1, 2]}, tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
    assert oct((tmp_path / "a.json").stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_sha256_is_the_file_hash(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert checkpoint.sha256(tmp_path / "f") == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_load_state_refuses_other_files(tmp_path):
    r = Recipe(name="r", data="swiss_roll", net="mlp", net_kwargs={}, steps=3, batch_size=2, lr=1e-3)
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters())
    with pytest.raises(FileNotFoundError, match="resume=.*none.safetensors: no such training state file"):
        checkpoint.load_state(tmp_path / "none.safetensors", r, net, net, opt, torch.Generator())
    checkpoint.save_safetensors({"a": torch.ones(1)}, tmp_path / "w.safetensors", metadata={"kind": "ddlearn-model"})
    with pytest.raises(ValueError, match="not a ddlearn training state"):
        checkpoint.load_state(tmp_path / "w.safetensors", r, net, net, opt, torch.Generator())


# --------------------------------------------------------------------------- the weights + sidecar pair
def _pair(folder, value, name="m"):
    return checkpoint.write_pair(folder, name, {"w": torch.full((4,), float(value))},
                                 {"name": name, "recipe": {"value": value}, "sha256": None, "bytes": None})


def _value(folder, name="m"):
    info, state = checkpoint.read_pair(folder / f"{name}.safetensors")
    assert info["recipe"]["value"] == state["w"][0].item()
    return info["recipe"]["value"]


def test_write_pair_records_the_hash_of_what_it_wrote(tmp_path):
    w = _pair(tmp_path, 1)
    info = json.loads((tmp_path / "m.json").read_text())
    assert info["sha256"] == checkpoint.sha256(w) and info["bytes"] == w.stat().st_size
    assert list(info)[:2] == ["name", "recipe"]  # the caller's key order is kept
    assert sorted(os.listdir(tmp_path)) == ["m.json", "m.safetensors"]
    _pair(tmp_path, 2)
    assert _value(tmp_path) == 2 and sorted(os.listdir(tmp_path)) == ["m.json", "m.safetensors"]


class Stop(BaseException):
    pass


@pytest.mark.parametrize("stage", checkpoint.SAVE_STAGES)
def test_a_save_stopped_at_any_stage_leaves_the_old_or_the_new_pair(tmp_path, monkeypatch, stage):
    _pair(tmp_path, 1)

    def pause(at):
        if at == stage:
            raise Stop(at)

    monkeypatch.setattr(checkpoint, "_pause", pause)
    with pytest.raises(Stop):
        _pair(tmp_path, 2)
    committed = stage == "cleanup"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert _value(tmp_path) == (2 if committed else 1)
    assert [str(w.message) for w in seen if "interrupted save" in str(w.message)] == (
        [] if stage != "sidecar" else [str(seen[0].message)])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # an exception cleans its temporaries up
    monkeypatch.undo()
    _pair(tmp_path, 3)
    assert _value(tmp_path) == 3 and sorted(os.listdir(tmp_path)) == ["m.json", "m.safetensors"]


def test_a_second_interrupted_save_does_not_lose_the_good_previous_pair(tmp_path, monkeypatch):
    _pair(tmp_path, 1)
    for stop_at in ("sidecar", "backup", "sidecar"):   # new weights beside the old sidecar, then again
        monkeypatch.setattr(checkpoint, "_pause", lambda at, s=stop_at: (_ for _ in ()).throw(Stop()) if at == s else None)
        with pytest.raises(Stop):
            _pair(tmp_path, 2)
        with pytest.warns(UserWarning, match="interrupted save"):
            assert _value(tmp_path) == 1
    monkeypatch.undo()
    _pair(tmp_path, 4)
    assert _value(tmp_path) == 4


def test_a_mismatched_pair_without_a_previous_one_is_an_error(tmp_path):
    _pair(tmp_path, 1)
    raw = bytearray((tmp_path / "m.safetensors").read_bytes())
    raw[-1] ^= 1
    (tmp_path / "m.safetensors").write_bytes(bytes(raw))
    with pytest.raises(checkpoint.CheckpointError, match=r"m.safetensors does not match the sha256 in .*m.json.*rebuild"):
        checkpoint.read_pair(tmp_path / "m.safetensors", hint="rebuild")


@pytest.mark.parametrize("text,match", [("[1, 2]", "expected a JSON object, got a list"),
                                        ('{"name": "m"}', 'no "recipe" object'),
                                        ("{nope", "not valid JSON")])
def test_a_sidecar_that_is_not_one_is_named(tmp_path, text, match):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(checkpoint.CheckpointError, match=match) as err:
        checkpoint.read_sidecar(tmp_path / "m.json")
    assert "m.json" in str(err.value)


def test_check_folder(tmp_path):
    assert checkpoint.check_folder(tmp_path / "new" / "sub").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"out_dir .*f is a file, not a folder"):
        checkpoint.check_folder(tmp_path / "f")
    with pytest.raises(ValueError, match=r"--out .*cannot be written to"):
        checkpoint.check_folder(tmp_path / "f" / "sub", what="--out")
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ValueError, match="cannot be written to"):
                checkpoint.check_folder(ro)
        finally:
            ro.chmod(0o700)


def test_resume_of_a_file_that_is_not_a_state_names_it(tmp_path):
    r = Recipe(name="r", data="swiss_roll", net="mlp", net_kwargs={}, steps=3, batch_size=2, lr=1e-3)
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters())
    junk = tmp_path / "notes.txt"
    junk.write_text("not a tensor file")
    with pytest.raises(ValueError, match=r"resume=.*notes.txt is not a safetensors file"):
        checkpoint.load_state(junk, r, net, net, opt, torch.Generator())
    with pytest.raises(TypeError, match="resume must be the path"):
        checkpoint.load_state(3, r, net, net, opt, torch.Generator())


# --------------------------------------------------------------------------- storage dtype
def test_storage_tensors_round_the_model_and_restore_dtypes_gives_float32_back():
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.1, 1 / 3, 1e-3], [2.0, -0.7, 5e-8]]))
    original = {k: v.clone() for k, v in net.state_dict().items()}
    stored = checkpoint.storage_tensors(net, "float16")
    assert {v.dtype for v in stored.values()} == {torch.float16}
    for k, v in net.state_dict().items():  # the model now holds exactly the rounded values, as float32
        assert v.dtype == torch.float32 and torch.equal(v, original[k].half().float())
    assert not torch.equal(net.weight, original["weight"])  # 1/3 is not a float16 number
    back = checkpoint.restore_dtypes(stored, torch.nn.Linear(3, 2).state_dict())
    assert all(back[k].dtype == torch.float32 and torch.equal(back[k], net.state_dict()[k]) for k in back)
    same = checkpoint.storage_tensors(net, "float32")
    assert all(v.dtype == torch.float32 for v in same.values())


def test_storage_refuses_values_float16_cannot_hold():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(1e5)
    with pytest.raises(ValueError, match=r"storage='float16': weight holds values beyond float16's range"):
        checkpoint.storage_tensors(net, "float16")
    assert net.weight[0, 0].item() == 1e5   # left as it was
    with pytest.raises(ValueError, match="storage must be one of"):
        checkpoint.storage_tensors(net, "half")
