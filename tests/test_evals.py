"""Evaluations for the sidecar: a registry by name, deterministic, and each recipe's names exist."""
from dataclasses import replace

import pytest
import torch

from ddlearn import evals, recipes, train
from ddlearn.recipe import Recipe, build_schedule

TINY = Recipe(name="tiny_evals", data="swiss_roll", data_kwargs={"n": 300}, net="mlp",
              net_kwargs={"dim": 2, "hidden": 16, "depth": 1, "emb_dim": 8, "T": 50},
              schedule_kwargs={"T": 50}, steps=5, batch_size=32, lr=1e-3, warmup=1,
              evaluate=("heldout_loss", "toy_sw"), eval_samples=100)


@pytest.fixture(scope="module")
def tiny():
    return train.train(TINY, progress=False)


def test_every_recipe_names_registered_evaluations():
    assert {"heldout_loss", "accuracy", "toy_sw", "noisy_accuracy", "sde_sw"} <= set(evals.EVALS)
    for name in recipes.names():
        assert set(recipes.get(name).evaluate) <= set(evals.EVALS), name


def test_evaluate_is_deterministic_and_seeded(tiny):
    a = evals.evaluate(tiny.model, tiny.schedule, TINY)
    b = evals.evaluate(tiny.model, tiny.schedule, TINY)
    assert a == b and set(a) == {"heldout_loss", "sw_samples_vs_heldout", "sw_data_vs_heldout"}
    assert all(v > 0 for v in a.values())
    c = evals.evaluate(tiny.model, tiny.schedule, TINY, seed=1)
    assert c["heldout_loss"] != a["heldout_loss"]


def test_unknown_evaluation_is_named(tiny):
    with pytest.raises(ValueError, match="unknown evaluation 'fid'"):
        evals.evaluate(tiny.model, tiny.schedule, replace(TINY, evaluate=("fid",)))


def test_heldout_loss_of_a_perfect_and_a_useless_model_differ():
    """The held-out loss is the recipe's loss on the test split: a zero predictor scores E|eps|^2 = 1."""
    zero = lambda x, t, **kw: torch.zeros_like(x)  # noqa: E731
    out = evals.heldout_loss(zero, build_schedule(TINY), TINY, repeats=8)
    assert out["heldout_loss"] == pytest.approx(1.0, abs=0.05)


def test_accuracy_counts_correct_labels():
    r = recipes.get("digit_classifier")

    class Const(torch.nn.Module):
        def forward(self, x):
            out = torch.zeros(x.shape[0], 10)
            out[:, 3] = 1
            return out

    acc = evals.accuracy(Const(), None, r)["heldout_accuracy"]
    assert 0.05 < acc < 0.15  # about one digit in ten is a 3
