"""animate()'s defaults are the choices benchmarks/video.py stored (sampler, then scales), for the shipped video16."""
from __future__ import annotations

import inspect
import json

import pytest

from ddlearn import pretrained
from ddlearn.video import evaluation, sampling

RESULTS = pretrained.HERE / "video_results.json"


@pytest.fixture(scope="module")
def results():
    if "video16" not in pretrained.available():
        pytest.skip("video16 is not shipped in this checkout")
    return json.loads(RESULTS.read_text())


def test_the_sampler_default_is_the_one_chosen_on_validation_clips(results, ):
    sm = results["sampler"]
    assert sm["model_sha256"] == pretrained.info("video16")["sha256"], "the sampler table is of another checkpoint"
    chosen = sm["rows"][sm["chosen"]]
    assert chosen["summary"]["noise_frames"][0] < 0.01, "the rule: under 1% noise frames"
    kw = chosen["kwargs"]
    assert (sampling.ETA, sampling.STEPS) == (kw["eta"], kw["steps"])
    assert sampling.CLIP == (tuple(kw["clip"]) if kw.get("clip") is not None else None)


def test_the_scale_defaults_are_the_ones_chosen_with_that_sampler(results):
    sc = results["scales"]
    assert sc["model_sha256"] == pretrained.info("video16")["sha256"]
    assert sc["sampler"] == {**results["sampler"]["rows"][results["sampler"]["chosen"]]["kwargs"]}
    assert [sampling.IMAGE_SCALE, sampling.PROMPT_SCALE] == sc["chosen"]


def test_every_caller_defaults_to_animates_defaults():
    a = inspect.signature(sampling.animate).parameters
    m = inspect.signature(evaluation.measure_model).parameters
    for name in ("image_scale", "prompt_scale", "steps", "eta", "clip"):
        assert m[name].default == a[name].default, name
    assert a["eta"].default == sampling.ETA and a["clip"].default == sampling.CLIP
