"""ddlearn: the library beside the diffusion-models textbook.

Every chapter of the book imports what it needs from here; nothing in a
notebook copies library code. Conventions (see README, "Conventions"):

* images are ``(B, C, H, W)`` float tensors in [-1, 1]; point clouds ``(B, 2)``;
  clips ``(B, C, F, H, W)``;
* time follows :mod:`ddlearn.schedules` (integer index 0..T-1, 0 least noisy;
  fractional t allowed);
* networks predict eps; :mod:`ddlearn.param` converts;
* randomness is explicit (``torch.Generator`` arguments, noise drawn by
  :func:`ddlearn.config.randn_like`), never global.

Where new code goes (one room a kind; the README's library map shows them all):

* a measurement y = A(x)          -> ``operators/`` (a subclass of ``operators.Operator``, in its family's module)
* a posterior / restoration method -> a ``predict`` hook on ``samplers.ddim.ddim_loop``, in ``restoration/``
* a wrapper that keeps model(x_t, t) -> ``guidance.py`` (conditions) or ``restoration/`` (measurements)
* a sampler                       -> ``samplers/`` (the contract: ``samplers.base.Sampler``; declare its cost)
* a network                       -> ``nets/`` (registered in ``nets.NETS``)
* a data set                      -> ``data/`` (registered in ``data.DATASETS`` for recipes)
* a checkpoint's recipe           -> ``recipes/chNN.py``; its evaluations -> ``evals.py``
* a metric                        -> ``metrics.py``
* an exercise checker             -> ``exercises/chNN.py``
* an explorer widget              -> ``widgets/`` (an ``Explorer`` with a static picture)
* a speed or quality figure       -> ``benchmarks/NAME.py`` (a script printing a table), never a timed test

No module imports another module's private (underscore) names, and there are
no import cycles (``tests/test_imports.py`` checks both).
"""

__version__ = "0.1.0"

import importlib.util as _util

if _util.find_spec("torch") is not None:   # ``ddlearn book`` and ``ddlearn student`` work without torch
    from . import config as _config  # noqa: F401  (applies the thread policy: config.set_threads)
