"""pyproject.toml and environment.yml name the same dependencies, with lower bounds only."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI
CONDA_TO_PYPI = {"pytorch": "torch"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(spec: str) -> str:
    return _norm(_NAME.match(spec).group(1))


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def pyproject_specs(pyproject):
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    return {"runtime": project["dependencies"], **{f"extra {k}": v for k, v in extras.items()}}


@pytest.fixture(scope="module")
def conda_specs():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += [d for d in dep.get("pip", []) if not d.startswith("-")]
        else:
            conda.append(dep)
    return conda, pip


def test_environment_names_every_pyproject_dependency(pyproject_specs, conda_specs):
    conda, pip = conda_specs
    in_env = {CONDA_TO_PYPI.get(_name(s), _name(s)) for s in conda} | {_name(s) for s in pip}
    for group, specs in pyproject_specs.items():
        missing = sorted({_name(s) for s in specs} - in_env)
        assert not missing, f"environment.yml lacks {missing} from pyproject's {group} dependencies"


def test_environment_has_python_and_pip(conda_specs):
    conda, _ = conda_specs
    names = {_name(s) for s in conda}
    assert {"python", "pip"} <= names
    python = next(s for s in conda if _name(s) == "python")
    assert ">=3.10" in python.replace(" ", "")


def test_lower_bounds_only(pyproject_specs, conda_specs):
    conda, pip = conda_specs
    every = [(g, s) for g, specs in pyproject_specs.items() for s in specs]
    every += [("environment.yml", s) for s in conda + pip]
    for where, spec in every:
        constraint = spec[len(_NAME.match(spec).group(0)):].split(";")[0]
        constraint = re.sub(r"\[.*?\]", "", constraint)  # extras such as pkg[foo]
        assert not re.search(r"==|<|~=|!=|\^", constraint), (
            f"{where}: {spec!r} pins an upper bound or exact version; use a lower bound (>=) only")
        assert re.fullmatch(r"\s*(>=\s*[0-9][0-9A-Za-z.]*)?\s*", constraint), (
            f"{where}: {spec!r}: expected `name>=version` or a bare name")


def test_python_requirement_matches(pyproject, conda_specs):
    conda, _ = conda_specs
    assert pyproject["project"]["requires-python"] == ">=3.10"
    assert any(s.replace(" ", "") == "python>=3.10" for s in conda)
