"""The book's training recipes, one module a chapter; ``ddlearn train NAME`` runs one.

    from ddlearn import recipes
    recipes.names()              # ['digit_classifier', 'digits', ...]
    recipes.get("digits")        # the Recipe (a Recipe passes through)
    recipes.RECIPES["digits"]    # the same, from the registry

Adding a chapter's recipes: add a module ``chNN.py`` here that builds
:class:`ddlearn.recipe.Recipe` objects and passes each to
:func:`ddlearn.recipe.register`, then list it in the import line below
(``from . import ch02, ch04, ch06, chNN``). A recipe is plain data: it names
its data set, net, objective and evaluations by string, so a recipe module
imports only :mod:`ddlearn.recipe` (never evals, metrics or samplers; that
is what keeps the import graph free of cycles). A new data set goes to
:data:`ddlearn.data.DATASETS`, a new evaluation to :data:`ddlearn.evals.EVALS`.
"""
from __future__ import annotations

from .. import _checks
from ..recipe import RECIPES, Recipe, register
from . import ch02, ch04, ch06  # noqa: F401  (each registers its chapter's recipes)
from . import ch09  # noqa: F401  (Chapter 09: phantom priors and the anomaly autoencoder)
from . import ch08  # noqa: F401  (Chapter 08: the video models, the clip classifier, the ablation)
from . import ch07  # noqa: F401  (Chapter 07: the photograph-patch and face priors of GDP)
from . import ch10  # noqa: F401  (Chapter 10: flow matching's models and panel)


def names() -> list[str]:
    """The recipe names, sorted."""
    return sorted(RECIPES)


def get(recipe) -> Recipe:
    """The :class:`~ddlearn.recipe.Recipe` called ``recipe`` (a Recipe passes through)."""
    if isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, str):
        raise TypeError(f"recipe must be a Recipe or a recipe name, got {type(recipe).__name__}")
    _checks.choice("recipe", recipe, tuple(names()))
    return RECIPES[recipe]


__all__ = ["RECIPES", "Recipe", "register", "names", "get"]
