r"""Generative Diffusion Prior (GDP; Fei et al., CVPR 2023): one unconditional prior, many degradations,
unknown degradation parameters learnt while sampling.

GDP samples :math:`p(x \mid y)` for :math:`y = \mathcal A_\phi(x) + n` with an
unconditional eps-model by adding the gradient of a degradation loss to the
mean of every reverse step,

.. math:: x_{t-1} \sim \mathcal N\big(\mu_\theta(x_t) - s\,\nabla\mathcal L,\ \Sigma_t\big),

and differs from classifier guidance (Dhariwal & Nichol 2021) and DPS (Chung
et al. 2023) in three choices, each read from the paper and its released code
(github.com/Fayeben/GenerativeDiffusionPrior, ``scripts/guided_diffusion/``):

* **where the gradient is taken.** GDP-x0 evaluates the loss on the model's
  clean estimate :math:`\hat x_0` (clipped to [-1, 1]) and differentiates with
  respect to :math:`\hat x_0` itself, *not* through the network: one model call
  a step, no backward pass (DPS differentiates through the network: about
  three times the cost). GDP-xt evaluates the loss on the noisy state
  :math:`x_t` and differentiates with respect to :math:`x_t` (again no
  backward pass through the network); the released code compares the
  degraded :math:`x_t` with the clean y by default (``--sample_noisy_x_lr``
  noises y to level t first: ``noisy_y=True`` here).
* **variance.** Classifier guidance scales the gradient by the step's
  covariance :math:`\Sigma_t`, which vanishes as t -> 0 and switches the
  guidance off where the details are made; GDP drops :math:`\Sigma_t` and adds
  :math:`s\,\nabla\mathcal L` to the mean directly, the same step size at every t.
* **the loss.** For masks, downsampling and colour-to-gray the released code
  compares in image space, :math:`\lVert A^+\!A\hat x_0 - A^+y\rVert^2`
  (``compare="image"``: the gradient is then the residual itself, whatever the
  operator's gain), for blur and the non-linear operators in measurement space,
  :math:`\lVert \mathcal A(\hat x_0) - y\rVert^2` (``compare="measurement"``). For
  enhancement the paper adds quality losses on :math:`\hat x_0` (exposure
  control and colour constancy, from Zero-DCE, Guo et al. 2020) and a total
  variation penalty on the illumination mask M.

Unknown parameters (the :class:`~ddlearn.operators.parametric.ParametricOperator` s'
``nn.Parameter`` s: exposure f and mask M, blur width, colour matrix) are fitted
jointly: at every timestep, ``param_steps`` Adam steps on
:math:`\tfrac{1}{n}\lVert\mathcal A_\phi(\hat x_0) - y\rVert^2` (+ TV of M) with
:math:`\hat x_0` held fixed, then the guidance gradient at the updated
parameters. The operator is changed in place: read ``op.estimates()`` after
sampling (or in a ``callback`` to watch them converge).

Where ours differs from the released code (said again in Chapter 07):

* the step is the book's one DDIM-family loop (:func:`ddlearn.samplers.ddim.ddim_loop`)
  with ``eta=1`` on an evenly spaced grid: that *is* DDPM's ancestral step on the
  respaced chain with the posterior variance :math:`\tilde\beta` (our nets learn
  no variance), and the guidance enters as the hook's ``shift`` (subtracted
  after the step, i.e. added to the mean);
* scale units: the code's loss is ``scale_code * mean(((a+1)/2 - (b+1)/2)**2)``
  over the N pixels of an item in [0, 1] units, whose gradient is
  ``scale_code / (2N) * (a - b)``; ours is ``scale * (a - b)`` (a sum over pixels
  in the book's [-1, 1] units), so ``scale = scale_code / (2N)`` (the code's 2000 on
  256x256x3 images is 0.0051 here, for 1000 steps) and does not depend on the
  image size, which patch-wise restoration needs;
* parameters are fitted by Adam (the code takes plain gradient steps). The
  code's ``condition_mean`` also builds an Adam optimiser over the mean and
  steps it, but the mean it returns is computed before that step (and the
  mean, made under ``no_grad``, has no gradient for Adam to use): a no-op,
  left out here. The quality losses, computed but unused in the released
  low-light script, are used as the paper writes them;
* M is a coarse grid upsampled bilinearly (smooth by construction) instead
  of a full-resolution map.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import _checks, param
from ..config import randn_like
from ..operators import Downsample, Grayscale, Mask, Operator
from ..operators.parametric import LowLight
from ..samplers.base import check_inputs, eval_eps
from ..samplers.ddim import check_clip, ddim_loop
from ..schedules import Schedule
from ._common import check_measurement

#: operators compared in image space (through their pseudo-inverse) by ``compare="auto"``, as the released code does
IMAGE_SPACE = (Mask, Downsample, Grayscale)

#: Defaults of :func:`sample_gdp`, chosen by measurement on validation patches (see benchmarks/restoration.py).
DEFAULT_SCALE = 0.3
DEFAULT_PARAM_LR = 0.02
#: Power-iteration steps of :func:`operator_gain` (the first estimate; later steps warm-start with fewer).
GAIN_ITERS = 20


# ---- the operator's gain: what makes one scale fit every operator --------------------------------------
def operator_gain(operator: Operator, x: torch.Tensor, *, iters: int = GAIN_ITERS, v: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per item, the squared gain :math:`\lVert J\rVert^2` of ``operator`` at ``x``: the largest eigenvalue of
    :math:`J^\top J`, J the Jacobian of :math:`\mathcal A` at x (for a linear A, :math:`A^\top A`).

    A gradient step on :math:`\tfrac12\lVert\mathcal A(z) - y\rVert^2` is :math:`J^\top(\mathcal A(z) - y)`:
    an operator of gain g (exposure f: g = f; nearest 4x upsampling: g^2 = 16) makes it g^2 times the step
    in image units. Dividing by :math:`\lVert J\rVert^2` puts every operator's step on one scale.
    Power iteration on :math:`J^\top J` (``iters`` products, each one forward and two backward passes of
    the operator; the network is not involved); ``v`` warm-starts it (the vector a previous call returned).
    Returns ``(gain_sq of shape (B,), v)``; ``x`` is not modified.
    """
    _checks.positive_int("iters", iters)
    x = x.detach()
    B = x.shape[0]
    view = (B,) + (1,) * (x.ndim - 1)
    v = randn_like(x, generator) if v is None else v.detach().clone()
    lam = x.new_zeros(B)
    with torch.enable_grad():
        z = x.clone().requires_grad_(True)
        az = operator(z)
        u = torch.zeros_like(az, requires_grad=True)
        (jt_u,) = torch.autograd.grad(az, z, grad_outputs=u, create_graph=True)  # J^T u, linear in u
        for _ in range(iters):
            v = v / v.flatten(1).norm(dim=1).clamp_min(1e-30).reshape(view)
            (jv,) = torch.autograd.grad(jt_u, u, grad_outputs=v, retain_graph=True)   # J v
            (jtjv,) = torch.autograd.grad(az, z, grad_outputs=jv.detach(), retain_graph=True)
            lam = (v * jtjv).flatten(1).sum(1)
            v = jtjv.detach()
    return lam.detach().clamp_min(0), v


# ---- low light's parameters in closed form ---------------------------------------------------------------
#: Ridge weight on M's grid in :func:`fit_low_light` (per pixel, intensity units): keeps M small where the image
#: alone could explain the light.
LOWLIGHT_RIDGE = 1e-3


@torch.no_grad()
def fit_low_light(operator: LowLight, x: torch.Tensor, y: torch.Tensor, *, ridge: float = LOWLIGHT_RIDGE) -> None:
    r"""Set ``operator``'s f and M to the least-squares fit of :math:`u_y = f\,u + M` given the image ``x``.

    In intensities :math:`u = (x+1)/2`, :math:`u_y = (y+1)/2`, the model is linear in the unknowns: f and
    the ``mask_res x mask_res`` grid m of M (:math:`M = B m`, B the bilinear upsampling), so
    :math:`\min_{f, m} \lVert f u + B m - u_y\rVert^2 + \lambda N \lVert m\rVert^2` is a
    :math:`(1 + r^2)`-unknown linear system per copy of the parameters (N its pixels; ``ridge`` = λ keeps
    M small). One copy shared by the batch (``copies=1``) pools every item; f is kept >= 1e-3.
    The operator is changed in place; ``x`` and ``y`` are not.
    """
    if not isinstance(operator, LowLight):
        raise TypeError(f"operator must be a LowLight, got {type(operator).__name__}")
    _checks.number("ridge", ridge, low=0)
    B, C, H, W = x.shape
    u, uy = ((x + 1) / 2).double(), ((y + 1) / 2).double()
    P = operator.copies
    r = operator.mask_res
    cols = [u.reshape(B, C, H * W)]
    if r:
        basis = F.interpolate(torch.eye(r * r, dtype=torch.float64).reshape(r * r, 1, r, r), size=(H, W),
                              mode="bilinear", align_corners=True).reshape(1, r * r, 1, H * W)
        cols = [u.reshape(B, 1, C, H * W), basis.expand(B, -1, C, -1)]
        X = torch.cat(cols, 1).reshape(B, 1 + r * r, C * H * W)
    else:
        X = u.reshape(B, 1, C * H * W)
    Y = uy.reshape(B, 1, C * H * W)
    if P == 1:  # one degradation for the whole batch: pool the items
        X, Y = X.transpose(0, 1).reshape(1, X.shape[1], -1), Y.transpose(0, 1).reshape(1, 1, -1)
    G = X @ X.transpose(1, 2)                       # (P, k, k)
    b = (X @ Y.transpose(1, 2)).squeeze(-1)          # (P, k)
    reg = torch.full((G.shape[-1],), ridge * X.shape[-1], dtype=G.dtype)
    reg[0] = 1e-9 * X.shape[-1]                       # f is not shrunk
    theta = torch.linalg.solve(G + torch.diag(reg), b)
    operator.f.copy_(theta[:, :1].clamp_min(1e-3).reshape_as(operator.f).to(operator.f))
    if r:
        operator.mask.copy_(theta[:, 1:].reshape_as(operator.mask).to(operator.mask))


# ---- the quality losses of the paper (Zero-DCE's, Guo et al. 2020), on images in [-1, 1] -----------------
def exposure_loss(x: torch.Tensor, level: float = 0.6, patch: int = 8) -> torch.Tensor:
    r"""Exposure control: :math:`\frac1P\sum_p (\bar u_p - E)^2` per item, :math:`\bar u_p` the mean intensity
    (channels and a ``patch x patch`` block averaged, :math:`u = (x+1)/2`) of block p, E = ``level``. Shape (B,)."""
    _checks.tensor("x", x, ndim=4)
    _checks.number("level", level, low=0, high=1)
    _checks.positive_int("patch", patch)
    u = ((x + 1) / 2).mean(1, keepdim=True)
    k = max(1, min(patch, u.shape[-1], u.shape[-2]))
    means = F.avg_pool2d(u, k)
    return (means - level).pow(2).mean((1, 2, 3))


def colour_constancy_loss(x: torch.Tensor) -> torch.Tensor:
    r"""Colour constancy (gray world): :math:`\sum_{(p,q)} (\bar u_p - \bar u_q)^2` over the channel pairs
    (rg, rb, gb) of the channel means per item. Shape (B,); 0 for a gray-world image or one channel."""
    _checks.tensor("x", x, ndim=4)
    if x.shape[1] < 2:
        return x.new_zeros(x.shape[0])
    m = ((x + 1) / 2).mean((2, 3))  # (B, C)
    d = m[:, :, None] - m[:, None, :]
    return d.pow(2).triu(1).sum((1, 2))


def tv_loss(m: torch.Tensor) -> torch.Tensor:
    r"""Total variation of a map (..., H, W): mean squared horizontal plus vertical differences (scalar)."""
    _checks.tensor("m", m, ndim=(2, 3, 4, 5))
    dh = (m[..., 1:, :] - m[..., :-1, :]).pow(2).mean() if m.shape[-2] > 1 else m.new_zeros(())
    dw = (m[..., :, 1:] - m[..., :, :-1]).pow(2).mean() if m.shape[-1] > 1 else m.new_zeros(())
    return dh + dw


QUALITY = ("exposure", "colour", "tv", "level")


# ---- one guidance term --------------------------------------------------------------------------------
@dataclass
class Guide:
    """One measurement guiding the sampler: ``operator``, its ``y``, a ``weight`` and how it is compared."""

    operator: Operator
    y: torch.Tensor
    weight: float = 1.0
    compare: str = "auto"

    def __post_init__(self):
        if not isinstance(self.operator, Operator):
            raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(self.operator).__name__}")
        _checks.tensor("y", self.y)
        # the data are constants: a y measured through an operator whose parameters require grad carries that
        # graph, and stepping the parameters would backpropagate into it (a second backward through a freed graph)
        self.y = self.y.detach()
        self.weight = _checks.number("weight", self.weight, low=0)
        _checks.choice("compare", self.compare, ("auto", "image", "measurement"))
        if self.compare == "auto":
            self.compare = "image" if isinstance(self.operator, IMAGE_SPACE) else "measurement"
        if self.compare == "image" and not self.operator.linear:
            raise ValueError(f"compare='image' needs a linear operator with a pseudo-inverse; "
                             f"{type(self.operator).__name__} is non-linear (use compare='measurement')")
        self.target = self.operator.pinv(self.y).detach() if self.compare == "image" else self.y

    def residual(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """A^+A z - A^+y (image space) or A(z) - y (measurement space); ``target`` replaces A^+y / y."""
        target = self.target if target is None else target
        if self.compare == "image":
            return self.operator.pinv(self.operator(z)) - target
        return self.operator(z) - target


def _guides(operator, y, weights, compare) -> list[Guide]:
    ops = list(operator) if isinstance(operator, (list, tuple)) else [operator]
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    if len(ops) != len(ys):
        raise ValueError(f"operator and y must pair up: got {len(ops)} operators and {len(ys)} measurements")
    if weights is None:
        weights = [1.0] * len(ops)
    weights = list(weights) if isinstance(weights, (list, tuple)) else [weights]
    if len(weights) != len(ops):
        raise ValueError(f"weights must give one weight per operator ({len(ops)}), got {len(weights)}")
    return [Guide(o, v, w, compare) for o, v, w in zip(ops, ys, weights)]


def _check_guides(guides: list[Guide], x_T: torch.Tensor) -> None:
    for k, g in enumerate(guides):
        check_measurement(g.operator, g.y, x_T, "y" if len(guides) == 1 else f"y[{k}]")


def _check_quality(quality) -> dict:
    if quality is None:
        return {}
    if not isinstance(quality, dict):
        raise TypeError(f"quality must be a dict of loss weights ({', '.join(QUALITY)}), got {type(quality).__name__}")
    for k, v in quality.items():
        _checks.choice("quality loss", k, QUALITY)
        # 'level' is the exposure loss's target intensity, in [0, 1]; the others are weights >= 0
        _checks.number(f"quality[{k!r}]", v, low=0, high=1 if k == "level" else None)
    return dict(quality)


# ---- the hook ----------------------------------------------------------------------------------------
def gdp_predict(model, guides: list[Guide], *, scale: float, on: str = "x0", quality: dict | None = None,
                param_lr: float = DEFAULT_PARAM_LR, param_steps: int = 1, noisy_y: bool = False,
                clip: tuple[float, float] | None = (-1.0, 1.0), normalize: bool = True, param_fit: str = "adam",
                ridge: float = LOWLIGHT_RIDGE, param_from: float = 0.0, generator: torch.Generator | None = None):
    r"""GDP's hook on :func:`ddlearn.samplers.ddim.ddim_loop`: ``predict(x, t, alpha_bar, i) -> (x0, eps, shift)``.

    x0 is the model's clean estimate (clipped to ``clip``), eps the noise it
    implies; before the guidance, the guides' operator parameters that require
    grad take ``param_steps`` Adam steps (learning rate ``param_lr``) on the
    measurement misfit at x0; ``shift`` is ``scale`` times the gradient of
    :math:`\sum_k w_k\tfrac12\lVert r_k\rVert^2` (+ quality terms) with respect to
    x0 (``on="x0"``) or to x_t (``on="xt"``), subtracted from the DDIM step,
    i.e. added to the mean of :math:`x_{t-1}` without the variance factor.

    ``normalize``: each guide compared in measurement space has its term divided, per item, by the
    operator's squared gain (:func:`operator_gain`), so that ``scale`` means the same for every
    operator (image-space guides already have gain 1). Operators with unknown parameters are
    re-measured at every step (warm-started); fixed ones once.

    ``param_fit="closed_form"``: a :class:`LowLight` guide's f and M are refitted by least squares at
    every step (:func:`fit_low_light`, ``ridge``) instead of Adam steps; other operators keep Adam.
    ``param_from``: parameters are learnt only at steps whose :math:`\bar\alpha_t` is at least this (0:
    every step); early clean estimates are blurred means, whose contrast misleads an exposure fit.
    """
    quality = _check_quality(quality)
    _checks.choice("param_fit", param_fit, ("adam", "closed_form"))
    _checks.number("param_from", param_from, low=0, high=1)
    closed = [g for g in guides if param_fit == "closed_form" and isinstance(g.operator, LowLight)
              and any(p.requires_grad for p in g.operator.parameters())]
    params = [p for g in guides if g not in closed for p in g.operator.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=param_lr) if params and param_lr > 0 and param_steps > 0 else None
    low_lights = [g.operator for g in guides if isinstance(g.operator, LowLight) and g.operator.mask_res]
    level = quality.get("level", 0.6)
    gains: dict = {}  # guide index -> (gain_sq (B,), power-iteration vector)

    def gain_weights(z):
        out = []
        for k, g in enumerate(guides):
            if not normalize or g.compare == "image":
                out.append(None)
                continue
            learnt = any(p.requires_grad for p in g.operator.parameters())
            if k not in gains or learnt:
                prev = gains.get(k)
                gains[k] = operator_gain(g.operator, z, iters=GAIN_ITERS if prev is None else 3,
                                         v=None if prev is None else prev[1], generator=generator)
            out.append(1.0 / gains[k][0].clamp_min(1e-6))
        return out

    def param_loss(z):
        loss = sum(g.weight * (g.operator(z) - g.y).pow(2).mean() for g in guides)
        if quality.get("tv", 0) > 0:
            for op in low_lights:
                loss = loss + quality["tv"] * tv_loss(op.offset(*z.shape[-2:]))
        return loss

    def guidance_loss(z, targets, per_item):
        loss = 0
        for g, tgt, w in zip(guides, targets, per_item):
            r2 = g.residual(z, tgt).pow(2).flatten(1).sum(1)
            loss = loss + g.weight * 0.5 * (r2 if w is None else r2 * w).sum()
        n_pix = z.shape[-1] * z.shape[-2]  # quality losses are means per item: x n_pix puts them in per-pixel units
        if on == "x0" and quality.get("exposure", 0) > 0:
            loss = loss + quality["exposure"] * n_pix * exposure_loss(z, level).sum()
        if on == "x0" and quality.get("colour", 0) > 0:
            loss = loss + quality["colour"] * n_pix * colour_constancy_loss(z).sum()
        return loss

    def predict(x, t, alpha_bar, i):
        eps = eval_eps(model, x, t, step=i)
        x0 = param.eps_to_x0(x, eps, alpha_bar)
        if clip is not None:
            x0 = x0.clamp(*clip)
            eps = param.x0_to_eps(x, x0, alpha_bar)
        learn = float(alpha_bar) >= param_from
        for g in closed if learn else ():
            fit_low_light(g.operator, x0.detach(), g.y, ridge=ridge)
        if opt is not None and learn:
            with torch.enable_grad():
                z = x0.detach()
                for _ in range(param_steps):
                    opt.zero_grad(set_to_none=True)
                    param_loss(z).backward()
                    opt.step()
        if scale == 0:
            return x0, eps, None
        targets = [None] * len(guides)
        if on == "xt" and noisy_y:  # the measurement noised to level t: sqrt(ab) y + sqrt(1 - ab) n
            targets = [alpha_bar ** 0.5 * g.target + (1 - alpha_bar) ** 0.5 * randn_like(g.target, generator)
                       for g in guides]
        per_item = gain_weights((x0 if on == "x0" else x).detach())
        with torch.enable_grad():
            z = (x0 if on == "x0" else x).detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(guidance_loss(z, targets, per_item), z)
        return x0, eps, scale * grad
    return predict


def sample_gdp(model, x_T: torch.Tensor, schedule: Schedule, steps: int, *, operator, y, scale: float = DEFAULT_SCALE,
               on: str = "x0", weights=None, compare: str = "auto", quality: dict | None = None,
               param_lr: float = DEFAULT_PARAM_LR, param_steps: int = 1, noisy_y: bool = False, eta: float = 1.0,
               spacing="linspace", clip: tuple[float, float] | None = (-1.0, 1.0), normalize: bool = True,
               param_fit: str = "adam", ridge: float = LOWLIGHT_RIDGE, param_from: float = 0.0, generator: torch.Generator | None = None, callback=None, progress: bool = True) -> torch.Tensor:
    r"""GDP posterior sampling (GDP-x0 with ``on="x0"``, GDP-xt with ``on="xt"``); see the module docstring.

    ``operator`` / ``y``: one measurement, or lists of them (multi-guidance:
    several measurements of one image, each with a weight in ``weights``;
    hierarchical restoration adds a coarse image as one). ``scale`` >= 0: the
    guidance step (0 gives the unguided sampler, bit for bit). ``quality``:
    weights of the enhancement losses, e.g. ``{"exposure": 1.0, "colour": 1.0,
    "tv": 10.0, "level": 0.6}`` (exposure target level E in [0, 1] intensity).
    ``param_lr``, ``param_steps``: Adam on the operators' unknown parameters at
    every step (those with ``requires_grad``; call ``op.requires_grad_(False)``
    for a known operator). ``eta=1`` on the ``"linspace"`` grid is the paper's
    ancestral sampler. ``normalize`` (default): a measurement-space guide's step is divided by its
    operator's squared gain, so one ``scale`` fits every operator (see :func:`gdp_predict`).
    ``param_fit="closed_form"``: low light's f and M refitted by least squares at every step;
    ``param_from``: parameters learnt only once :math:`\bar\alpha_t` reaches it.
    Returns the restored x; ``x_T`` and ``y`` are never modified.
    """
    check_inputs(model, x_T, schedule)
    _checks.number("scale", scale, low=0)
    _checks.choice("on", on, ("x0", "xt"))
    _checks.number("param_lr", param_lr, low=0)
    _checks.positive_int("param_steps", param_steps, minimum=0)
    for name, flag in (("noisy_y", noisy_y), ("normalize", normalize)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    clip = check_clip(clip)
    guides = _guides(operator, y, weights, compare)
    _check_guides(guides, x_T)
    hook = gdp_predict(model, guides, scale=scale, on=on, quality=quality, param_lr=param_lr,
                       param_steps=param_steps, noisy_y=noisy_y, clip=clip, normalize=normalize,
                       param_fit=param_fit, ridge=ridge, param_from=param_from, generator=generator)
    return ddim_loop(hook, x_T, schedule, steps, eta=eta, spacing=spacing, clip=None, generator=generator,
                     callback=callback, progress=progress, desc=f"GDP-{on}")


def sample_gdp_x0(model, x_T, schedule, steps, **kw) -> torch.Tensor:
    """GDP-x0: :func:`sample_gdp` with the guidance gradient taken at the predicted clean image."""
    return sample_gdp(model, x_T, schedule, steps, on="x0", **kw)


def sample_gdp_xt(model, x_T, schedule, steps, **kw) -> torch.Tensor:
    """GDP-xt: :func:`sample_gdp` with the guidance gradient taken at the noisy state x_t."""
    return sample_gdp(model, x_T, schedule, steps, on="xt", **kw)


__all__ = ["sample_gdp", "sample_gdp_x0", "sample_gdp_xt", "gdp_predict", "Guide", "operator_gain", "fit_low_light", "exposure_loss",
           "colour_constancy_loss", "tv_loss", "DEFAULT_SCALE", "DEFAULT_PARAM_LR", "IMAGE_SPACE"]
