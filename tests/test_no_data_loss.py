"""Nothing a reader saved is lost (issue 24): student notebooks never overwrite a student's edited copy without
--force, and never the chapters themselves, whatever the flags; a checkpoint pair is written only inside its
folder; a sidecar edited away from its weights is refused, naming the field.

Each student-notebook path runs on a temporary copy of two chapters, and every byte is compared afterwards.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ddlearn import checkpoint, pretrained, teaching
from ddlearn.checkpoint import CheckpointError
from ddlearn.cli import main

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


@pytest.fixture
def chapters(tmp_path):
    """A copy of Chapters 01 and 02 (sources and stored notebooks) to run the repro paths on."""
    folder = tmp_path / "chapters"
    folder.mkdir()
    for number in ("01", "02"):
        for path in CHAPTERS.glob(f"{number}_*"):
            if path.suffix in (".py", ".ipynb"):
                shutil.copy(path, folder / path.name)
    return folder


def _bytes(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_student_out_into_a_folder_of_edited_notebooks_is_refused_without_force(chapters, tmp_path, capsys):
    out = tmp_path / "handouts"
    assert main(["student", "--out", str(out), "--chapters-dir", str(chapters), "--chapters", "01"]) == 0
    edited = next(out.glob("01_*.ipynb"))
    edited.write_text(edited.read_text().replace('"cells": [', '"cells": [ ', 1))  # the student's edits
    saved = _bytes(out)
    capsys.readouterr()
    assert main(["student", "--out", str(out), "--chapters-dir", str(chapters), "--chapters", "01"]) == 1
    err = capsys.readouterr().err
    assert "already holds" in err and "--force" in err and edited.name in err
    assert _bytes(out) == saved
    # with --force the copy is replaced, on purpose
    assert main(["student", "--out", str(out), "--chapters-dir", str(chapters), "--chapters", "01", "--force"]) == 0
    assert _bytes(out) != saved


@pytest.mark.parametrize("force", [False, True])
def test_student_out_equal_to_the_chapters_folder_is_refused_whatever_the_flags(chapters, capsys, force):
    saved = _bytes(chapters)
    argv = ["student", "--out", str(chapters), "--chapters-dir", str(chapters)] + (["--force"] if force else [])
    assert main(argv) == 1
    assert "chapters folder" in capsys.readouterr().err
    assert _bytes(chapters) == saved


@pytest.mark.parametrize("force", [False, True])
def test_write_student_notebooks_into_the_chapters_folder_is_refused(chapters, force):
    saved = _bytes(chapters)
    with pytest.raises(ValueError, match="out_dir .* is the chapters folder"):
        teaching.write_student_notebooks(chapters, chapters, force=force)
    with pytest.raises(ValueError, match="chapters folder"):  # the same folder by another spelling
        teaching.write_student_notebooks(chapters, chapters / ".." / chapters.name, force=force)
    assert _bytes(chapters) == saved


def test_a_link_to_a_chapter_is_never_written_through(chapters, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = next(chapters.glob("01_*.ipynb"))
    (out / target.name).symlink_to(target)
    saved = _bytes(chapters)
    with pytest.raises(ValueError, match="chapter"):
        teaching.write_student_notebooks(chapters, out, only=["01"], force=True)
    assert _bytes(chapters) == saved


def test_a_refused_write_writes_nothing(chapters, tmp_path):
    """Every check runs before the first file: with one of two notebooks already there, neither is written."""
    out = tmp_path / "out"
    out.mkdir()
    (out / next(chapters.glob("02_*.py")).with_suffix(".ipynb").name).write_text("{}")
    with pytest.raises(ValueError, match="already holds 1"):
        teaching.write_student_notebooks(chapters, out)
    assert [p.name for p in out.iterdir()] == [next(chapters.glob("02_*.py")).stem + ".ipynb"]


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden", "/abs"])
def test_write_pair_stays_inside_its_folder(tmp_path, name):
    folder = tmp_path / "inside"
    with pytest.raises(ValueError, match="name"):
        checkpoint.write_pair(folder, name, {}, {})
    assert not any(tmp_path.rglob("*.safetensors")) and not any(tmp_path.rglob("*.json"))


def test_write_pair_name_type(tmp_path):
    with pytest.raises(TypeError, match="name"):
        checkpoint.write_pair(tmp_path, 5, {}, {})


def _copy(tmp_path, name="toy2d"):
    for suffix in (".safetensors", ".json"):
        shutil.copy(pretrained.folder() / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.json"


@pytest.mark.parametrize("field, value", [("schedule", "cosine"), ("schedule_kwargs", {"T": 500}), ("steps", 1)])
def test_a_sidecar_edited_away_from_its_weights_is_refused_naming_the_field(tmp_path, field, value):
    side = _copy(tmp_path)
    info = json.loads(side.read_text())
    info["recipe"][field] = value  # the weights, and so their sha256, are unchanged
    side.write_text(json.dumps(info, indent=2))
    with pytest.raises(CheckpointError, match=f"recipe field '{field}'"):
        pretrained.load("toy2d", directory=tmp_path)


def test_a_sidecar_edited_to_another_storage_is_refused(tmp_path):
    side = _copy(tmp_path, "faces")
    info = json.loads(side.read_text())
    info["storage"] = "float32"
    side.write_text(json.dumps(info, indent=2))
    with pytest.raises(CheckpointError, match="storage"):
        pretrained.load("faces", directory=tmp_path)


def test_an_unedited_pair_loads(tmp_path):
    _copy(tmp_path)
    assert pretrained.load("toy2d", directory=tmp_path).recipe.name == "toy2d"
