r"""Classifier guidance and classifier-free guidance, as plain ``model(x_t, t)`` wrappers.

Both steer an eps-predictor towards a class ``y`` by tilting the score,
:math:`\nabla \log p_\gamma(x_t \mid y) = \nabla \log p(x_t) + \gamma\,\nabla \log p(y \mid x_t)`,
which targets (up to normalisation) :math:`p(x_t)\,p(y \mid x_t)^\gamma`.
Since :math:`\epsilon = -\sqrt{1-\bar\alpha_t}\,\nabla \log p_t`
(:mod:`ddlearn.param`), adding to the score is subtracting from eps.
The result is again a model ``model(x_t, t) -> eps``, so every sampler of
Chapters 02-05 runs it unchanged.

Classifier guidance (Dhariwal & Nichol 2021)
    A noise-aware classifier :math:`p_\phi(y \mid x_t, t)` supplies the tilt:

    .. math:: \tilde\epsilon = \epsilon_\theta(x_t, t) - \gamma \sqrt{1-\bar\alpha_t}\,\nabla_{x_t} \log p_\phi(y \mid x_t, t).

Classifier-free guidance (Ho & Salimans 2022)
    One network, trained with the label dropped to a null class part of the
    time, predicts both :math:`\epsilon(x_t, t, y)` and :math:`\epsilon(x_t, t, \varnothing)`.
    Since :math:`\nabla\log p(y \mid x_t) = \nabla\log p(x_t\mid y) - \nabla\log p(x_t)`,

    .. math:: \tilde\epsilon = \epsilon(x_t, t, \varnothing) + \gamma\,\big(\epsilon(x_t, t, y) - \epsilon(x_t, t, \varnothing)\big).

Classifier-free guidance over any conditions
    The condition need not be a label: a conditioning image concatenated to
    the input (``x_cond`` of :class:`ddlearn.nets.UNet`), context tokens for
    cross-attention (``context``), a video model's ``image`` and ``prompt``,
    each with its own null. Several conditions applied in a fixed order
    :math:`c_1, \dots, c_n`, one scale each (DynamiCrafter's image and text
    scales, Xing et al. 2023), with :math:`\epsilon_k` conditioned on
    :math:`c_1..c_k` and null in the rest:

    .. math:: \tilde\epsilon = \epsilon_0 + \textstyle\sum_{k=1}^{n} s_k\,(\epsilon_k - \epsilon_{k-1}),

    e.g. :math:`\epsilon(\varnothing,\varnothing) + s_1\,(\epsilon(c_1,\varnothing)-\epsilon(\varnothing,\varnothing))
    + s_2\,(\epsilon(c_1,c_2)-\epsilon(c_1,\varnothing))`. Class labels stay the one-line
    case, ``classifier_free(net, y, scale)``; several conditions:
    ``classifier_free(net, {"image": (frame, blank), "prompt": (ids, null_ids)}, {"image": 1.5, "prompt": 3.0})``.

**The scale convention (one for both methods):** ``scale`` is the exponent
:math:`\gamma` on :math:`p(y \mid x_t)`. ``scale=0`` is the unconditional
model, ``scale=1`` the plain conditional model (exactly, for classifier-free
guidance; for classifier guidance, as exact as the classifier), ``scale>1``
sharpens towards the class at the price of diversity. This is diffusers'
``guidance_scale``; Ho & Salimans' paper writes :math:`(1+w)\epsilon_c - w\epsilon_u`,
which is ``scale = 1 + w``. Negative scales are refused. With several
conditions, scales all 1 are the fully conditional model and all 0 the null
model, exactly.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from . import _checks, param
from .oracles import GaussianMixture
from .schedules import Schedule


def _check_scale(scale) -> float:
    return _checks.number("scale", scale, low=0)


def _labels(y, batch: int, device, num_classes: int | None) -> torch.Tensor:
    """Class labels as a long tensor (batch,): an int, or a tensor (batch,) / (1,)."""
    if isinstance(y, bool):
        raise TypeError("y must be a class label (int) or an integer tensor of labels, got bool")
    if isinstance(y, int):
        y = torch.tensor([y])
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"y must be a class label (int) or an integer tensor of labels, got "
                        f"{type(y).__name__}{' of dtype ' + str(y.dtype) if isinstance(y, torch.Tensor) else ''}")
    y = y.reshape(-1).long().to(device)
    if y.numel() == 1:
        y = y.expand(batch)
    if y.numel() != batch:
        raise ValueError(f"y must hold one label or one per item ({batch}), got {y.numel()}")
    if num_classes is not None and y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y must hold classes in 0..{num_classes - 1}, got values from {int(y.min())} to {int(y.max())}")
    if num_classes is None and y.numel() and y.min() < 0:
        raise ValueError(f"y must hold non-negative class labels, got {int(y.min())}")
    return y


def _n_labels(y) -> int:
    return y.numel() if isinstance(y, torch.Tensor) else 1


def classifier_grad(classifier, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\nabla_{x_t} \log p_\phi(y \mid x_t, t)` for a classifier ``classifier(x_t, t) -> logits (B, K)``.

    Items are independent, so the gradient of the batch sum gives each
    item's own gradient.
    """
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        logits = classifier(x, t)
        if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"classifier must return logits of shape ({x.shape[0]}, K), got {tuple(logits.shape)}")
        if y.numel() and int(y.max()) >= logits.shape[1]:
            raise ValueError(f"y must hold classes in 0..{logits.shape[1] - 1} (the classifier's {logits.shape[1]} "
                             f"logits), got {int(y.max())}")
        logp = torch.log_softmax(logits, dim=1).gather(1, y.reshape(-1, 1)).sum()
        (g,) = torch.autograd.grad(logp, x)
    return g.detach()


class ClassifierGuidance(torch.nn.Module):
    r"""``model(x_t, t) -> eps - scale * sqrt(1 - alpha_bar_t) * grad log p(y | x_t, t)`` (Dhariwal & Nichol 2021).

    ``model(x_t, t)`` is an unconditional eps-predictor, ``classifier(x_t, t)``
    returns logits, ``y`` is one class (int) or one per item, ``scale`` >= 0.
    """

    def __init__(self, model, classifier, y, scale: float, schedule: Schedule, *, num_classes: int | None = None):
        super().__init__()
        for name, f in (("model", model), ("classifier", classifier)):
            if not callable(f):
                raise TypeError(f"{name} must be callable, got {type(f).__name__}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a ddlearn.schedules.Schedule, got {type(schedule).__name__}")
        self.model, self.classifier, self.schedule = model, classifier, schedule
        self.scale = _check_scale(scale)
        self.num_classes = num_classes if num_classes is not None else getattr(classifier, "num_classes", None)
        self.y = _labels(y, _n_labels(y), "cpu", self.num_classes)  # fail early on a bad label

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        tt = _checks.timesteps("t", t, self.schedule.T, batch=x_t.shape[0]).to(x_t.device)
        y = _labels(self.y, x_t.shape[0], x_t.device, self.num_classes)
        eps = self.model(x_t, tt.to(x_t.dtype))
        if self.scale == 0:
            return eps
        grad = classifier_grad(self.classifier, x_t, tt.to(x_t.dtype), y)
        # score += scale * grad  <=>  eps -= scale * sqrt(1 - alpha_bar) * grad
        return eps + param.score_to_eps(self.scale * grad, self.schedule.alpha_bar(tt))


class Condition(NamedTuple):
    """One input a model is conditioned on, as ``model(x_t, t, name=value)``, and its ``null`` ("no condition").

    ``value``: a tensor holding one item (leading dimension 1) or one per
    item of the batch (an int is one class label). ``null``: what the model
    was trained to read as "no condition" (the null class, a blank image,
    empty-prompt tokens), with value's shape past the first dimension and
    value's dtype, one item or one per item; ``None`` leaves the keyword out
    (the model's own default), which costs the batching.
    """

    value: Any
    null: Any


def _as_items(what: str, v) -> torch.Tensor:
    if isinstance(v, int) and not isinstance(v, bool):
        v = torch.tensor([v])
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{what} must be a tensor (or an int label), got {type(v).__name__}")
    return v.reshape(1) if v.ndim == 0 else v


def _condition(name, spec) -> Condition:
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"condition names must be the model's keyword arguments (str), got {name!r}")
    if not isinstance(spec, (tuple, list)) or len(spec) != 2:
        raise TypeError(f"condition {name!r} must be a pair (value, null), got {type(spec).__name__}")
    value = _as_items(f"the value of condition {name!r}", spec[0])
    if spec[1] is None:
        return Condition(value, None)
    null = _as_items(f"the null of condition {name!r}", spec[1])
    if null.shape[1:] != value.shape[1:] or null.shape[0] not in (1, value.shape[0]):
        raise ValueError(f"the null of condition {name!r} must have its value's shape {tuple(value.shape)} "
                         f"(or 1 item of shape {(1, *value.shape[1:])}), got {tuple(null.shape)}")
    if null.dtype != value.dtype:
        raise TypeError(f"the null of condition {name!r} must have its value's dtype {value.dtype}, got {null.dtype}")
    return Condition(value, null)


def _scales(scales, names: tuple[str, ...]) -> dict[str, float]:
    if isinstance(scales, Mapping):
        unknown = [k for k in scales if k not in names]
        if unknown:
            raise ValueError(f"unknown condition {unknown[0]!r} in scales; the conditions are "
                             f"{', '.join(repr(n) for n in names)}")
        missing = [n for n in names if n not in scales]
        if missing:
            raise ValueError(f"scales has no scale for condition(s) {', '.join(repr(n) for n in missing)}; "
                             f"give one per condition, or one number for all")
        return {n: _checks.number(f"scales[{n!r}]", scales[n], low=0) for n in names}
    if isinstance(scales, bool) or not isinstance(scales, (int, float)):
        raise TypeError(f"scale must be a number, or a mapping condition name -> number, got {type(scales).__name__}")
    return dict.fromkeys(names, _check_scale(scales))


def _chain(scales: list[float]) -> list[tuple[int, float]]:
    r"""The predictions the guided eps needs, and the scale of each step: [(k0, 1.0), (k1, s_k1), ...].

    Prediction k conditions on the first k conditions. With s_0 = 1 and
    s_{n+1} = 0 the guided eps is sum_k (s_k - s_{k+1}) eps_k, so prediction k
    is needed only where s_k != s_{k+1}; a run of equal scales telescopes into
    one step. Scales all 1 leave eps_n alone, all 0 eps_0 alone, exactly.
    """
    s = [1.0, *scales, 0.0]
    keep = [k for k in range(len(scales) + 1) if s[k] != s[k + 1]]
    return [(k, s[k]) for k in keep]


class ClassifierFreeGuidance(torch.nn.Module):
    r"""``model(x_t, t)``: classifier-free guidance over one or several conditions, one scale each.

    ``cond_model(x_t, t, **{name: value})`` is an eps-predictor trained with
    each condition dropped to its null part of the time. ``conditions`` maps
    each keyword to a :class:`Condition` ``(value, null)``, in the order they
    are applied, c_1 .. c_n (e.g. ``{"image": ..., "prompt": ...}``: image
    first); ``scales`` gives one scale per name, or one number for all.
    With :math:`\epsilon_k = \epsilon(x_t, t, c_1..c_k, \varnothing..\varnothing)`,

    .. math:: \tilde\epsilon = \epsilon_0 + \sum_{k=1}^{n} s_k\,(\epsilon_k - \epsilon_{k-1}),

    e.g. :math:`\epsilon(\varnothing,\varnothing) + s_1(\epsilon(c_1,\varnothing) - \epsilon(\varnothing,\varnothing))
    + s_2(\epsilon(c_1,c_2) - \epsilon(c_1,\varnothing))` for image and prompt
    (DynamiCrafter's two scales). One condition is Ho & Salimans' formula.
    Scales all 1 return the fully conditional model's output exactly, all 0
    the null model's; equal neighbouring scales share one step (one number for
    all guides the conditions jointly: :math:`\epsilon_0 + s(\epsilon_n - \epsilon_0)`).
    Only the predictions with a non-zero weight are evaluated, in one batched
    call (``batched=False``, or a ``None`` null: one call each).
    """

    def __init__(self, cond_model, conditions: Mapping, scales=1.0, *, batched: bool = True):
        super().__init__()
        if not callable(cond_model):
            raise TypeError(f"cond_model must be callable as cond_model(x_t, t, **conditions), "
                            f"got {type(cond_model).__name__}")
        if not isinstance(conditions, Mapping):
            raise TypeError(f"conditions must be a mapping name -> (value, null), got {type(conditions).__name__}")
        if not conditions:
            raise ValueError("conditions must name at least one condition, got an empty mapping")
        self.model, self.batched = cond_model, bool(batched)
        self.conditions = {name: _condition(name, spec) for name, spec in conditions.items()}
        self.scales = _scales(scales, tuple(self.conditions))
        self.steps = _chain(list(self.scales.values()))  # [(prediction k, scale of the step to it)]

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        eps = self.predictions(x_t, t, [k for k, _ in self.steps])
        out = eps[self.steps[0][0]]
        for (prev, _), (k, s) in zip(self.steps, self.steps[1:]):
            out = out + s * (eps[k] - eps[prev])  # eps_prev + s (eps_k - eps_prev), telescoped
        return out

    def inputs(self, k: int, batch: int, device) -> dict:
        """The keyword arguments of prediction ``k``: the first ``k`` conditions at their values, the rest null."""
        kw = {}
        for i, (name, c) in enumerate(self.conditions.items()):
            v = c.value if i < k else c.null
            if v is None:
                continue
            if v.shape[0] not in (1, batch):
                raise ValueError(f"condition {name!r} must hold one item or one per item ({batch}), got {v.shape[0]}")
            kw[name] = v.expand(batch, *v.shape[1:]).to(device)
        return kw

    def predictions(self, x_t: torch.Tensor, t, ks) -> dict[int, torch.Tensor]:
        """``{k: eps_k}`` for the predictions ``ks``: one call, in one batch (most conditioned first) where it can."""
        B = x_t.shape[0]
        kws = {k: self.inputs(k, B, x_t.device) for k in ks}
        if len(ks) == 1 or not self.batched or any(c.null is None for c in self.conditions.values()):
            return {k: self._call(x_t, t, kws[k]) for k in ks}
        order = sorted(ks, reverse=True)
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device).reshape(-1).expand(B)
        both = self._call(torch.cat([x_t] * len(order)), torch.cat([t] * len(order)),
                          {name: torch.cat([kws[k][name] for k in order]) for name in kws[order[0]]})
        return dict(zip(order, both.split(B)))

    def _call(self, x, t, kw):
        where = f"classifier-free guidance with {', '.join(kw) or 'no conditions'}"
        return _checks.model_output(self.model(x, t, **kw), x, where=where, what="cond_model")


def classifier_guidance(model, classifier, y, scale: float, schedule: Schedule, **kw) -> ClassifierGuidance:
    """Wrap ``model`` with classifier guidance towards ``y`` (see :class:`ClassifierGuidance`)."""
    return ClassifierGuidance(model, classifier, y, scale, schedule, **kw)


def classifier_free(cond_model, y, scale, *, null_class: int | None = None, num_classes: int | None = None,
                    batched: bool = True) -> ClassifierFreeGuidance:
    """Wrap ``cond_model`` with classifier-free guidance (see :class:`ClassifierFreeGuidance`).

    The one-line case, class labels: ``classifier_free(net, y, scale)`` calls
    ``net(x_t, t, y=labels)``; ``y`` is one class (int) or one per item, the
    null label is ``null_class`` (a :class:`ddlearn.nets.UNet` built with
    ``num_classes`` supplies it and ``num_classes``). Scales 0 and 1 call the
    network once (null / conditional); others evaluate both in one doubled batch.

    Any conditions: ``y`` a mapping keyword -> ``(value, null)`` in the order
    they apply, ``scale`` one number or one per keyword::

        classifier_free(video_net, {"image": (frame, blank), "prompt": (ids, null_ids)},
                        {"image": 1.5, "prompt": 3.0})
    """
    if isinstance(y, Mapping):
        if null_class is not None or num_classes is not None:
            raise TypeError("null_class and num_classes are for class labels; give each condition's null in y")
        return ClassifierFreeGuidance(cond_model, y, scale, batched=batched)
    if not callable(cond_model):
        raise TypeError(f"cond_model must be callable as cond_model(x_t, t, y=labels), got {type(cond_model).__name__}")
    _check_scale(scale)
    if null_class is None:
        null_class = getattr(cond_model, "null_class", None)
    if null_class is None:
        raise ValueError("null_class is needed: the label the model reads as 'no class' "
                         "(a UNet built with num_classes has it as .null_class)")
    null_class = _checks.positive_int("null_class", null_class, minimum=0)
    if num_classes is None:
        num_classes = getattr(cond_model, "num_classes", None)
    labels = _labels(y, _n_labels(y), "cpu", null_class if num_classes is None else num_classes)  # fail early
    return ClassifierFreeGuidance(cond_model, {"y": Condition(labels, torch.tensor([null_class]))}, scale,
                                  batched=batched)


# ---- exact oracles on Gaussian mixtures (each component is one class) ---------
class MixtureClassifier(torch.nn.Module):
    r"""The Bayes classifier of a mixture under noise: logits :math:`\log w_k + \log \mathcal N_k(x_t)` at alpha_bar(t).

    Class k = component k; ``softmax(logits)`` are the exact responsibilities
    :math:`p(k \mid x_t)`, so classifier guidance with it is exact.
    """

    def __init__(self, mixture: GaussianMixture, schedule: Schedule):
        super().__init__()
        self.mixture, self.schedule, self.num_classes = mixture, schedule, mixture.K

    def forward(self, x_t, t):
        tt = _checks.timesteps("t", t, self.schedule.T, batch=x_t.shape[0])
        # log-responsibilities are valid logits (softmax is shift-invariant); differentiable in x_t
        flat = x_t.reshape(x_t.shape[0], -1).to(torch.float64)
        logp, _ = self.mixture._component_terms(flat, self.schedule.alpha_bar(tt))
        return logp.to(x_t.dtype)


class MixtureConditionalEps(torch.nn.Module):
    """Exact class-conditional eps of a mixture: ``model(x_t, t, y=k)`` is component k's eps, ``y=K`` (null) the mixture's."""

    def __init__(self, mixture: GaussianMixture, schedule: Schedule):
        super().__init__()
        self.mixture, self.schedule = mixture, schedule
        self.num_classes, self.null_class = mixture.K, mixture.K
        self.components = [GaussianMixture(mixture.means[k:k + 1], mixture.covs[k:k + 1]) for k in range(mixture.K)]

    def forward(self, x_t, t, *, y):
        tt = _checks.timesteps("t", t, self.schedule.T, batch=x_t.shape[0])
        ab = self.schedule.alpha_bar(tt)
        y = _labels(y, x_t.shape[0], "cpu", self.num_classes + 1)
        out = torch.empty_like(x_t)
        for k in y.unique().tolist():
            sel = y == k
            oracle = self.mixture if k == self.null_class else self.components[k]
            out[sel] = oracle.eps(x_t[sel], ab[sel])
        return out
