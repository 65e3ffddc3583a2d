"""Recipes: plain data that round-trips through JSON, one registry, and the net/schedule/data they name."""
import json
from dataclasses import replace

import pytest
import torch

from ddlearn import recipes
from ddlearn.recipe import RECIPES, Recipe, build_net, build_schedule, load_data, register
from ddlearn.schedules import Schedule

TINY = Recipe(name="tiny_recipe", data="swiss_roll", data_kwargs={"n": 300}, net="mlp",
              net_kwargs={"dim": 2, "hidden": 16, "depth": 1, "emb_dim": 8, "T": 50},
              schedule_kwargs={"T": 50}, steps=5, batch_size=32, lr=1e-3, warmup=1)


def test_recipe_registry_and_bad_names():
    assert {"toy2d", "digits", "digit_classifier", "mixture", "sde_vp_ring8", "digits_cfg"} <= set(recipes.names())
    assert recipes.RECIPES is RECIPES and recipes.get("digits") is RECIPES["digits"]
    assert recipes.get(TINY) is TINY and recipes.get("toy2d") is RECIPES["toy2d"]
    with pytest.raises(ValueError, match="unknown recipe"):
        recipes.get("nope")
    with pytest.raises(TypeError, match="recipe must be"):
        recipes.get(3)
    with pytest.raises(ValueError, match="exists already"):
        register(RECIPES["toy2d"])
    with pytest.raises(TypeError, match="recipe must be a ddlearn.recipe.Recipe"):
        register({"name": "x"})


def test_every_recipe_round_trips_through_json_and_has_a_faster_fast_mode():
    for name in recipes.names():
        r = RECIPES[name]
        assert Recipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r, name
        assert r.resolved(fast=True).steps < r.steps, name
        assert r.resolved(seed=7).seed == 7


def test_from_dict_refuses_unknown_and_missing_fields():
    d = TINY.to_dict()
    with pytest.raises(ValueError, match=r"unknown recipe field\(s\) \['colour'\]"):
        Recipe.from_dict({**d, "colour": "red"})
    del d["steps"]
    with pytest.raises(ValueError, match="incomplete recipe.*steps"):
        Recipe.from_dict(d)
    with pytest.raises(TypeError, match="dict"):
        Recipe.from_dict([1, 2])


def test_build_net_is_seeded_and_records_T():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a, b = build_net(TINY), build_net(TINY)
    assert torch.equal(before, torch.rand(1))  # the global RNG is untouched
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(next(iter(a.state_dict().values())), next(iter(build_net(TINY, seed=1).state_dict().values())))
    assert a.T == 50 == build_schedule(TINY).T
    with pytest.raises(ValueError, match="T=1000 differs from the schedule's T=50"):
        build_net(replace(TINY, net_kwargs={**TINY.net_kwargs, "T": 1000}))


def test_build_schedule_names_an_sde_or_a_discrete_schedule():
    from ddlearn import sde

    assert isinstance(build_schedule(TINY), Schedule)
    assert isinstance(build_schedule(RECIPES["sde_vp_ring8"]), sde.VPSDE)
    assert build_schedule(RECIPES["digit_classifier"]) is None


def test_load_data_checks_the_conditioning_keys():
    out = load_data(TINY, "test")
    assert out["x"].shape == (300, 2)
    with pytest.raises(ValueError, match=r"has no \['y'\] for recipe 'tiny_recipe'"):
        load_data(replace(TINY, cond=("y",)), "train")
    with pytest.raises(ValueError, match="unknown data set"):
        load_data(replace(TINY, data="nowhere"))
    # a data set's own keyword "name" (the mixture's) does not clash with the registry's lookup
    assert load_data(RECIPES["mixture"], "test")["x"].shape[1] == 2


def test_the_affordable_video_ablation_changes_one_thing_at_a_time():
    """Chapter 08's video16s_* variants: each differs from the reference in one setting, and each trains."""
    from dataclasses import asdict

    from ddlearn import recipes, train
    from ddlearn.recipes.ch08 import SMALL_ABLATIONS

    ref = asdict(recipes.get("video16s_reference"))
    for short in SMALL_ABLATIONS:
        r = recipes.get(f"video16s_{short}")
        d = asdict(r)
        changed = {k for k in ("net_kwargs", "loss_kwargs", "cond") if d[k] != ref[k]}
        inner = ({k for k in d["net_kwargs"] if d["net_kwargs"][k] != ref["net_kwargs"].get(k)} |
                 {k for k in d["loss_kwargs"] if d["loss_kwargs"][k] != ref["loss_kwargs"].get(k)})
        n_changes = len(inner) + (1 if "cond" in changed else 0)
        assert n_changes == (0 if short == "reference" else 1), (short, changed, inner)
        assert (r.steps, r.seed, r.batch_size, r.lr) == (ref["steps"], ref["seed"], ref["batch_size"], ref["lr"])
        t = train.train(r, fast=True, progress=False)
        assert t.step == r.resolved(fast=True).steps
