"""Checkpoint files: atomic writes, hashes, the training state and its refusals."""
import json
import os

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
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.load_state(tmp_path / "none.safetensors", r, net, net, opt, torch.Generator())
    checkpoint.save_safetensors({"a": torch.ones(1)}, tmp_path / "w.safetensors", metadata={"kind": "ddlearn-model"})
    with pytest.raises(ValueError, match="not a ddlearn training state"):
        checkpoint.load_state(tmp_path / "w.safetensors", r, net, net, opt, torch.Generator())
