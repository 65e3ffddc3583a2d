"""`ddlearn train` as a user runs it: real processes, killed at every point of the save, interrupted and resumed.

Each test starts ``python -m ddlearn.cli train toy2d --fast`` (about 10 s of
work on the 2-core machine) in a subprocess. The save is paused at one step
through the test hook of :func:`ddlearn.checkpoint.write_pair`
(``DDLEARN_SAVE_PAUSE``), the process is killed there, and the folder must
then load as the old checkpoint or the new one, never as an error.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ddlearn import checkpoint, pretrained, train

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _env(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DDLEARN_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("DDLEARN_SAVE_PAUSE", None)
    env.update(extra)
    return env


def _default_sigint():
    """A child that gets Ctrl-C as a user's terminal sends it: a shell running a background job (nohup ... &)
    passes SIGINT on as ignored, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cmd(out, *args):
    return [sys.executable, "-m", "ddlearn.cli", "train", "toy2d", "--fast", "--out", str(out), *args]


def _run(out, *args, **env):
    return subprocess.run(_cmd(out, *args), capture_output=True, text=True, env=_env(**env), cwd=ROOT, timeout=600)


def _wait_for(path: Path, proc: subprocess.Popen, timeout=300):
    start = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended ({proc.returncode}) before {path.name} appeared:\n"
                                 + proc.stderr.read()[-2000:])
        if time.monotonic() - start > timeout:
            proc.kill()
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


@pytest.fixture()
def old(tmp_path):
    """A folder holding a good toy2d checkpoint (a copy of the shipped, full-mode one)."""
    out = tmp_path / "out"
    out.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(pretrained.HERE / f"toy2d{suffix}", out / f"toy2d{suffix}")
    return out


KILLS = [(stage, signal.SIGKILL) for stage in checkpoint.SAVE_STAGES] + [("sidecar", signal.SIGINT)]


@pytest.mark.parametrize("stage,how", KILLS, ids=[f"{s}-{h.name}" for s, h in KILLS])
def test_killed_at_any_point_of_the_save_leaves_the_old_or_the_new_checkpoint(old, tmp_path, stage, how):
    """SIGKILL (nothing runs after it) at each step of the save; SIGINT (the except clauses run) in the
    window the old code lost checkpoints in: new weights in place, the sidecar not yet. Each stage with
    the exception path is covered in-process by tests/test_checkpoint.py."""
    old_sha = json.loads((old / "toy2d.json").read_text())["sha256"]
    mark = tmp_path / "paused"
    proc = subprocess.Popen(_cmd(old, "--force"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=_env(DDLEARN_SAVE_PAUSE=stage, DDLEARN_SAVE_PAUSE_FILE=str(mark)),
                            preexec_fn=_default_sigint)
    _wait_for(mark, proc)
    proc.send_signal(how)
    proc.communicate(timeout=60)   # the pause would last 120 s: the signal ended it
    assert proc.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL)
    with _maybe_warns():
        ck = pretrained.load("toy2d", directory=old)
    if stage == "cleanup":   # killed after the sidecar's rename: the new (fast-mode) checkpoint
        assert ck.info["fast"] is True and ck.info["sha256"] != old_sha
    else:                    # killed before it: the old one, weights and all
        assert ck.info["fast"] is False and ck.info["sha256"] == old_sha
        shipped = pretrained.load("toy2d")
        assert all(torch.equal(a, b) for a, b in zip(ck.model.state_dict().values(), shipped.model.state_dict().values()))
    assert pretrained.available(old) == ["toy2d"]


class _maybe_warns:
    """Loading after a kill between the two renames warns that the previous pair was used; elsewhere it is silent."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.seen = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        for w in self.seen:
            assert "interrupted save" in str(w.message), w.message


def test_interrupted_run_resumes_bit_for_bit(tmp_path):
    whole = tmp_path / "whole"
    assert _run(whole, "--checkpoint-every", "0").returncode == 0
    out = tmp_path / "parts"
    state = train.state_path(out, "toy2d")
    # a state every step (slower, but the interrupt lands well inside the 200 steps, whatever the machine's load)
    proc = subprocess.Popen(_cmd(out, "--checkpoint-every", "1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=ROOT, preexec_fn=_default_sigint)
    _wait_for(state, proc)        # training is under way: interrupt as a user would
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and not (out / "toy2d.safetensors").exists()
    stopped = int(load_file(str(state))["step"][0])
    assert 1 <= stopped < 200   # the state of the step it stopped at (saved on Ctrl-C)
    # a plain rerun does not throw the interrupted run away
    rerun = _run(out)
    assert rerun.returncode == 1 and "--resume" in rerun.stderr and state.exists()
    done = _run(out, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not state.exists()
    a, b = pretrained.load("toy2d", directory=whole), pretrained.load("toy2d", directory=out)
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert a.info["metrics"] == b.info["metrics"] and a.info["final_loss_ema"] == b.info["final_loss_ema"]
    assert b.info["resumed"] is True and b.info["steps"] == 200


def test_existing_checkpoint_is_not_overwritten_without_force(old):
    before = (old / "toy2d.safetensors").read_bytes()
    start = time.monotonic()
    res = _run(old)
    assert res.returncode == 1
    assert "toy2d.safetensors exists already" in res.stderr and "--force" in res.stderr
    assert "train toy2d" not in res.stderr   # refused before any training step (no progress bar)
    assert (old / "toy2d.safetensors").read_bytes() == before
    assert time.monotonic() - start < 60


def test_unusable_out_is_refused_before_training(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    res = _run(a_file)
    assert res.returncode == 1 and "is a file, not a folder" in res.stderr and "train toy2d" not in res.stderr
    res = _run(a_file / "sub")
    assert res.returncode == 1 and "cannot be written to" in res.stderr and "train toy2d" not in res.stderr


def test_help_states_the_defaults():
    res = subprocess.run([sys.executable, "-m", "ddlearn.cli", "train", "--help"], capture_output=True, text=True,
                         env=_env(), cwd=ROOT, timeout=120)
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "default: ./runs" in text and "--resume" in text and "--force" in text
    assert f"default {train.DEFAULT_CHECKPOINT_EVERY}" in text
