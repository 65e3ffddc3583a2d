"""Evaluations written to a checkpoint's sidecar: :data:`EVALS` by name, run by :func:`evaluate`.

Each evaluation is ``fn(model, schedule, recipe, *, seed=0) -> {metric: float}``
and is deterministic (fixed generators, the held-out split), so the metrics a
sidecar records come back when a test re-runs them on the loaded checkpoint.
A recipe lists its evaluations by name (``Recipe.evaluate``); a chapter that
needs a new one adds ``EVALS["mine"] = fn`` here.

Evaluations run on the CPU (the model is expected there; :func:`ddlearn.train.run_recipe`
evaluates a CPU copy), so the recorded numbers do not depend on the device
that trained the model.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from . import _checks, recipes
from .forward import q_sample
from .losses import LOSSES
from .metrics import sliced_wasserstein
from .recipe import Recipe, load_data
from .samplers.ancestral import sample_ancestral
from .samplers.flow import sample_flow
from .samplers.ode import sample_pf_ode


def heldout_loss(model, schedule, recipe: Recipe, *, seed: int = 0, repeats: int = 4) -> dict:
    """The recipe's loss on the held-out split with a fixed generator: deterministic, cheap, comparable."""
    test = load_data(recipe, "test")
    g = torch.Generator().manual_seed(seed)
    kwargs = {k: v for k, v in recipe.loss_kwargs.items() if k != "p_uncond"}
    with torch.no_grad():
        vals = [LOSSES[recipe.loss](model, test["x"], schedule, generator=g,
                                    cond={k: test[k] for k in recipe.cond} or None, **kwargs).item()
                for _ in range(repeats)]
    return {"heldout_loss": sum(vals) / len(vals)}


def accuracy(model, schedule, recipe: Recipe, *, seed: int = 0) -> dict:
    """Held-out accuracy of a clean-image classifier."""
    test = load_data(recipe, "test")
    with torch.no_grad():
        pred = model(test["x"]).argmax(1)
    return {"heldout_accuracy": (pred == test["y"]).float().mean().item()}


def toy_sw(model, schedule, recipe: Recipe, *, seed: int = 0) -> dict:
    """Sliced Wasserstein distance of n ancestral samples to n held-out points (and the data-vs-data floor)."""
    n = recipe.eval_samples
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, model.dim, generator=g)
    samples = sample_ancestral(model, x_T, schedule, generator=g, progress=False)
    held = load_data(replace(recipe, data_kwargs={**recipe.data_kwargs, "n": n}), "test")["x"]
    other = load_data(replace(recipe, data_kwargs={**recipe.data_kwargs, "n": n, "seed": 12345}), "train")["x"]
    return {"sw_samples_vs_heldout": sliced_wasserstein(samples, held, generator=torch.Generator().manual_seed(seed)),
            "sw_data_vs_heldout": sliced_wasserstein(other, held, generator=torch.Generator().manual_seed(seed))}


def noisy_accuracy(model, schedule, recipe: Recipe, *, seed: int = 0) -> dict:
    """Held-out accuracy of a noise-aware classifier on x_t ~ q(x_t | x_0) at a few timesteps (fixed noise)."""
    test = load_data(recipe, "test")
    g = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for t in (0, 250, 500, 750):
            x_t = q_sample(test["x"], t, None, schedule, generator=g)
            pred = model(x_t, torch.full((x_t.shape[0],), float(t))).argmax(1)
            out[f"heldout_accuracy_t{t}"] = (pred == test["y"]).float().mean().item()
    return out


def sde_sw(model, sde, recipe: Recipe, *, seed: int = 0) -> dict:
    """Sliced Wasserstein distance of n PF-ODE samples (Heun, 50 steps) to n held-out points."""
    n = recipe.eval_samples
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, model.dim, generator=g)
    samples = sample_pf_ode(model, x_T, sde, 50, solver="heun", progress=False)
    held = load_data(replace(recipe, data_kwargs={**recipe.data_kwargs, "n": n}), "test")["x"]
    return {"sw_pf_ode_samples_vs_heldout": sliced_wasserstein(samples, held, generator=torch.Generator().manual_seed(seed))}


def flow_sw(model, path, recipe: Recipe, *, seed: int = 0) -> dict:
    """Sliced Wasserstein distance of n flow-ODE samples (Heun, 50 steps) to n held-out points (Chapter 10)."""
    n = recipe.eval_samples
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, model.dim, generator=g)
    with torch.no_grad():
        samples = sample_flow(model, x_T, path, 50, solver="heun", progress=False)
    held = load_data(replace(recipe, data_kwargs={**recipe.data_kwargs, "n": n}), "test")["x"]
    return {"sw_flow_samples_vs_heldout": sliced_wasserstein(samples, held,
                                                              generator=torch.Generator().manual_seed(seed))}


def video_motion(model, schedule, recipe: Recipe, *, seed: int = 0) -> dict:
    """Chapter 08: animate held-out sprite images and track the sprites
    (:func:`ddlearn.video.evaluation.sidecar_metrics`)."""
    from .video.evaluation import sidecar_metrics

    return sidecar_metrics(model, schedule, seed=seed)


#: Evaluations by name: ``fn(model, schedule, recipe, *, seed) -> {metric: float}``.
EVALS = {"heldout_loss": heldout_loss, "accuracy": accuracy, "toy_sw": toy_sw,
         "noisy_accuracy": noisy_accuracy, "sde_sw": sde_sw, "flow_sw": flow_sw, "video_motion": video_motion}


def evaluate(model, schedule, recipe, *, seed: int = 0) -> dict:
    """Run the recipe's evaluations (a Recipe or a recipe name); this is what the sidecar's ``metrics`` hold."""
    recipe = recipes.get(recipe)
    out = {}
    for name in recipe.evaluate:
        _checks.choice("evaluation", name, tuple(EVALS))
        out.update(EVALS[name](model, schedule, recipe, seed=seed))
    return out


__all__ = ["EVALS", "evaluate", "heldout_loss", "accuracy", "toy_sw", "noisy_accuracy", "sde_sw"]
