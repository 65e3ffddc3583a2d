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

**The scale convention (one for both methods):** ``scale`` is the exponent
:math:`\gamma` on :math:`p(y \mid x_t)`. ``scale=0`` is the unconditional
model, ``scale=1`` the plain conditional model (exactly, for classifier-free
guidance; for classifier guidance, as exact as the classifier), ``scale>1``
sharpens towards the class at the price of diversity. This is diffusers'
``guidance_scale``; Ho & Salimans' paper writes :math:`(1+w)\epsilon_c - w\epsilon_u`,
which is ``scale = 1 + w``. Negative scales are refused.
"""
from __future__ import annotations

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


class ClassifierFreeGuidance(torch.nn.Module):
    r"""``model(x_t, t) -> eps_u + scale * (eps_c - eps_u)`` (Ho & Salimans 2022).

    ``cond_model(x_t, t, y=labels)`` is a class-conditional eps-predictor
    that reads the label ``null_class`` as "no label" (a
    :class:`ddlearn.nets.UNet` built with ``num_classes``: its
    ``null_class`` and ``num_classes`` are picked up). Scale 0 and 1 call the
    network once (unconditional / conditional); other scales evaluate both
    predictions in one doubled batch.
    """

    def __init__(self, cond_model, y, scale: float, *, null_class: int | None = None,
                 num_classes: int | None = None):
        super().__init__()
        if not callable(cond_model):
            raise TypeError(f"cond_model must be callable as cond_model(x_t, t, y=labels), got {type(cond_model).__name__}")
        self.model = cond_model
        self.scale = _check_scale(scale)
        if null_class is None:
            null_class = getattr(cond_model, "null_class", None)
        if null_class is None:
            raise ValueError("null_class is needed: the label the model reads as 'no class' "
                             "(a UNet built with num_classes has it as .null_class)")
        self.null_class = _checks.positive_int("null_class", null_class, minimum=0)
        self.num_classes = num_classes if num_classes is not None else getattr(cond_model, "num_classes", None)
        if self.num_classes is None:
            self.num_classes = self.null_class  # labels 0..null_class-1
        self.y = _labels(y, _n_labels(y), "cpu", self.num_classes)  # fail early on a bad label

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        B = x_t.shape[0]
        y = _labels(self.y, B, x_t.device, self.num_classes)
        null = torch.full_like(y, self.null_class)
        if self.scale == 0:
            return self.model(x_t, t, y=null)
        if self.scale == 1:
            return self.model(x_t, t, y=y)
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device).reshape(-1).expand(B)
        both = self.model(torch.cat([x_t, x_t]), torch.cat([t, t]), y=torch.cat([y, null]))
        eps_c, eps_u = both[:B], both[B:]
        return eps_u + self.scale * (eps_c - eps_u)


def classifier_guidance(model, classifier, y, scale: float, schedule: Schedule, **kw) -> ClassifierGuidance:
    """Wrap ``model`` with classifier guidance towards ``y`` (see :class:`ClassifierGuidance`)."""
    return ClassifierGuidance(model, classifier, y, scale, schedule, **kw)


def classifier_free(cond_model, y, scale: float, **kw) -> ClassifierFreeGuidance:
    """Wrap a class-conditional ``cond_model`` with classifier-free guidance (see :class:`ClassifierFreeGuidance`)."""
    return ClassifierFreeGuidance(cond_model, y, scale, **kw)


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
