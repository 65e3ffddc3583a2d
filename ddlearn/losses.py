r"""Training objectives for eps-predicting networks (Ho et al. 2020, section 3).

The variational bound, in the papers' indices (steps t = 1..T, x_0 the data, x_T the
noisiest latent). With the reverse model
:math:`p_\theta(x_{t-1}\mid x_t) = \mathcal N(\mu_\theta(x_t, t), \sigma_t^2 I)`,

.. math::
    -\log p_\theta(x_0) \le \underbrace{D_{KL}(q(x_T\mid x_0)\,\|\,\mathcal N(0, I))}_{L_T}
      + \sum_{t=2}^{T} \underbrace{\mathbb E_q\, D_{KL}(q(x_{t-1}\mid x_t, x_0)\,\|\,p_\theta(x_{t-1}\mid x_t))}_{L_{t-1}}
      + \underbrace{\mathbb E_q[-\log p_\theta(x_0 \mid x_1)]}_{L_0}

(T + 1 terms, L_0 .. L_T). The code indexes steps from 0 (:mod:`ddlearn.schedules`):
paper step t is index t - 1, so ``schedule.alpha_bars[i]`` is the paper's
:math:`\bar\alpha_{i+1}`, and :func:`vlb_terms` at index i returns the paper's
:math:`L_i` (the KL at the step from index i to i - 1, the decoder at index 0);
:func:`prior_kl` is :math:`L_T`, :func:`vlb_breakdown` all of them.

Writing :math:`\mu_\theta` through the predicted noise,
:math:`\mu_\theta = (x_t - \beta_t/\sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\alpha_t}`,
the KL term of step t becomes a weighted noise-prediction error

.. math:: L_{t-1} = \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}\,\|\epsilon - \epsilon_\theta(x_t, t)\|^2 .

Dropping the weight gives the **simple loss** :math:`\mathbb E_{t,x_0,\epsilon}\|\epsilon-\epsilon_\theta\|^2`
(Ho et al. eq. 14), which trains better and is what every recipe uses.

Every loss here has the signature ``loss(model, x0, schedule, *, generator, cond=None, **options)``
and returns a scalar; ``cond`` is a dict of keyword arguments for the model
(e.g. ``{"y": labels}``). :data:`LOSSES` names them for training recipes.
"""
from __future__ import annotations

import math

import torch

from . import _checks, param
from .config import randn_like
from .forward import q_posterior, q_sample
from .param import per_item
from .schedules import check_schedule
from .schedules import Schedule
from .simplex import NOISES, draw_noise


def _model_eps(model, x_t, t, cond):
    return model(x_t, t, **(cond or {}))


def sample_t(batch: int, schedule: Schedule, *, continuous: bool = False, generator=None) -> torch.Tensor:
    """Training timesteps (batch,): uniform integers 0..T-1, or uniform floats in [0, T-1]."""
    if continuous:
        return torch.rand(batch, generator=generator, dtype=torch.float64) * (schedule.T - 1)
    return torch.randint(0, schedule.T, (batch,), generator=generator).to(torch.float64)


def drop_labels(cond: dict | None, p_uncond: float, null_class: int, *, generator=None) -> dict | None:
    """Replace each label ``cond["y"]`` by ``null_class`` with probability ``p_uncond``.

    This is classifier-free guidance's training trick (Ho & Salimans 2022): one
    network learns both p(x | y) and p(x).
    """
    if not cond or "y" not in cond or p_uncond <= 0:
        return cond
    y = cond["y"]
    drop = torch.rand(y.shape, generator=generator) < p_uncond
    return {**cond, "y": torch.where(drop.to(y.device), torch.full_like(y, null_class), y)}


def vlb_weights(schedule: Schedule, variance: str = "beta") -> torch.Tensor:
    r"""The weights :math:`\beta_t^2 / (2\sigma_t^2\alpha_t(1-\bar\alpha_t))` turning eps-MSE (summed over
    dimensions) into the KL terms, one per code index (T,): index i >= 1 weighs the paper's L_i
    (the step from index i to i - 1); index 0, the decoder step, holds the same formula for reference.

    ``variance``: the reverse variance sigma_t^2, "beta" (beta_t) or "beta_tilde" (the posterior's).
    """
    _checks.choice("variance", variance, ("beta", "beta_tilde"))
    b, a, ab = schedule.betas, schedule.alphas, schedule.alpha_bars
    var = reverse_variance(schedule, variance)
    return b ** 2 / (2 * var * a * (1 - ab))


def reverse_variance(schedule: Schedule, variance: str = "beta") -> torch.Tensor:
    """sigma_t^2 of p(x_{t-1} | x_t) for every code index (T,): beta, or tilde-beta with index 0 (where the
    posterior variance is 0) set to index 1's."""
    _checks.choice("variance", variance, ("beta", "beta_tilde"))
    if variance == "beta":
        return schedule.betas.clone()
    v = schedule.betas * (1 - schedule.alpha_bars_prev) / (1 - schedule.alpha_bars)
    if schedule.T > 1:
        v[0] = v[1]
    else:
        v[0] = schedule.betas[0]
    return v


def simple_loss(model, x0: torch.Tensor, schedule: Schedule, *, generator=None, cond=None,
                continuous: bool = False, p_uncond: float = 0.0, weighting: str = "simple",
                variance: str = "beta", pixel_weight: torch.Tensor | None = None,
                noise: str = "gaussian") -> torch.Tensor:
    r"""Noise-prediction loss :math:`\mathbb E_{t,\epsilon}\,w_t\,\|\epsilon-\epsilon_\theta(x_t,t)\|^2`.

    ``weighting="simple"``: w_t = 1, mean over dimensions (Ho et al. eq. 14).
    ``weighting="vlb"``: w_t = T * :func:`vlb_weights` summed over dimensions, an
    unbiased estimate of sum_{t>=1} L_t (t = 0 drawn uniformly too but weighted as its KL form).
    ``continuous``: draw t uniformly in [0, T-1] rather than on the integers
    (for networks used by continuous-time samplers). ``p_uncond``: label
    dropout for classifier-free guidance (needs ``model.null_class``). ``pixel_weight`` (``"simple"``
    only): non-negative weights broadcastable to x0; the loss is then
    :math:`\sum w\,(\epsilon-\epsilon_\theta)^2 / \sum w` over the broadcast shape (a weighted mean).
    ``noise``: the forward process's :math:`\epsilon`, ``"gaussian"`` (Ho et al.) or ``"simplex"``
    (:func:`ddlearn.simplex.simplex_noise`, unit variance per image, as AnoDDPM trains; the network then
    learns to predict smooth noise, and the samplers that use it must add simplex noise too).
    """
    check_schedule(schedule)
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    _checks.choice("weighting", weighting, ("simple", "vlb"))
    _checks.choice("noise", noise, NOISES)
    if pixel_weight is not None:
        _checks.tensor("pixel_weight", pixel_weight)
        if weighting != "simple":
            raise ValueError("pixel_weight works with weighting='simple' only")
        if (pixel_weight < 0).any():
            raise ValueError("pixel_weight must be non-negative")
        try:
            pixel_weight = torch.broadcast_to(pixel_weight.to(x0), x0.shape)
        except RuntimeError:
            raise ValueError(f"pixel_weight of shape {tuple(pixel_weight.shape)} does not broadcast to x0's "
                             f"{tuple(x0.shape)}") from None
        if float(pixel_weight.sum()) <= 0:
            raise ValueError("pixel_weight must have a positive sum")
    if weighting == "vlb" and continuous:
        raise ValueError("weighting='vlb' is defined on the integer timesteps; use continuous=False")
    B = x0.shape[0]
    t = sample_t(B, schedule, continuous=continuous, generator=generator)
    eps = draw_noise(x0, noise, generator)
    x_t = q_sample(x0, t, eps, schedule)
    if p_uncond:
        cond = drop_labels(cond, p_uncond, model.null_class, generator=generator)
    err = (_model_eps(model, x_t, t.to(x0), cond) - eps) ** 2
    if weighting == "simple":
        return err.mean() if pixel_weight is None else (pixel_weight * err).sum() / pixel_weight.sum()
    w = vlb_weights(schedule, variance)[t.long()].to(x0)
    return (schedule.T * w * err.flatten(1).sum(1)).mean()


def _gauss_kl(mean_q, logvar_q, mean_p, logvar_p):
    """KL(N(mean_q, e^logvar_q) || N(mean_p, e^logvar_p)) per element (nats)."""
    return 0.5 * (logvar_p - logvar_q + torch.exp(logvar_q - logvar_p)
                  + (mean_q - mean_p) ** 2 * torch.exp(-logvar_p) - 1.0)


#: The decoder p(x_0 | x_1) of the bound's last term L_0 (:func:`vlb_terms` at index 0).
DECODERS = ("gaussian", "discretised")


def discretised_gaussian_log_likelihood(x0: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, *,
                                        levels: int = 256) -> torch.Tensor:
    r"""Log-probability (nats, per element) of data on ``levels`` grey levels under a discretised Gaussian.

    Ho et al. (2020, eq. 13): the data take ``levels`` evenly spaced values spanning [-1, 1]
    (bin half-width :math:`\delta = 1/(\text{levels}-1)`), and the decoder gives each value the
    mass of :math:`\mathcal N(\text{mean}, e^{\text{log\_var}})` over its bin
    :math:`[x_0-\delta, x_0+\delta]`, the two outer bins extended to :math:`\mp\infty`. It is a
    probability (at most 1), so the bound built on it bounds the *discrete* negative
    log-likelihood directly, without dequantisation. Computed in float64 with log-CDFs
    (stable far in the tails).
    """
    _checks.positive_int("levels", levels, minimum=2)
    x, m = x0.double(), mean.double()
    inv_std = torch.exp(-0.5 * log_var.double())
    d = 1.0 / (levels - 1)
    upper, lower = (x + d - m) * inv_std, (x - d - m) * inv_std
    log_cdf_upper = torch.special.log_ndtr(upper)          # log P(z < upper): the bottom bin
    log_sf_lower = torch.special.log_ndtr(-lower)          # log P(z > lower): the top bin
    # log(Phi(upper) - Phi(lower)), taken on the side of zero where the difference does not cancel
    flip = lower > 0
    a = torch.where(flip, -lower, upper)
    b = torch.where(flip, -upper, lower)
    la, lb = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    log_mid = la + torch.log1p(-torch.exp((lb - la).clamp(max=0.0)).clamp(max=1 - 1e-16))
    edge = 0.5 * d  # values within half a level of an end are the end levels
    return torch.where(x < -1 + edge, log_cdf_upper, torch.where(x > 1 - edge, log_sf_lower, log_mid))


@torch.no_grad()
def vlb_terms(model, x0: torch.Tensor, schedule: Schedule, t, *, generator=None, cond=None,
              variance: str = "beta", noise: torch.Tensor | None = None, decoder: str = "gaussian",
              levels: int = 256) -> torch.Tensor:
    r"""One-sample estimates of the bound's terms at integer indices ``t`` (B,), in nats per item (B,).

    Index ``t`` (the code's 0..T-1) holds the paper's term :math:`L_t` (see the module docstring):

    * t >= 1: :math:`D_{KL}(q(x_t\mid x_{t+1},x_0)\,\|\,p_\theta(x_t\mid x_{t+1}))` in paper indices,
      in closed form (both Gaussian), with the latent drawn from q given x_0 (one noise draw);
    * t = 0: the decoder term :math:`L_0 = -\log p_\theta(x_0\mid x_1)` with mean :math:`\hat x_0(x_1)`
      and variance :math:`\sigma_1^2`: ``decoder="gaussian"`` a continuous density (for
      dequantised data, see :func:`ddlearn.metrics.elbo_bpd`), ``"discretised"`` the mass of
      the data's bin (:func:`discretised_gaussian_log_likelihood`, data on ``levels`` levels).
    """
    check_schedule(schedule)
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    _checks.choice("decoder", decoder, DECODERS)
    tt = _checks.timesteps("t", t, schedule.T, batch=x0.shape[0], integer=True)
    if noise is None:
        noise = randn_like(x0, generator)
    x0d, noised = x0.double(), noise.double()
    x_t = q_sample(x0d, tt, noised, schedule)
    eps = _model_eps(model, x_t.to(x0.dtype), tt.to(x0.dtype), cond)
    eps = _checks.model_output(eps, x_t, where="vlb_terms").double()
    ab = schedule.alpha_bars[tt.long()]
    x0_hat = param.eps_to_x0(x_t, eps, ab)
    logvar_p = per_item(torch.log(reverse_variance(schedule, variance))[tt.long()], x_t)
    # mu_theta = posterior mean with x0 replaced by the prediction (equivalent to the eps form)
    mean_p, _, _ = q_posterior(x0_hat, x_t, tt, schedule)
    mean_q, _, logvar_q = q_posterior(x0d, x_t, tt, schedule)
    kl = _gauss_kl(mean_q, logvar_q, mean_p, logvar_p).flatten(1).sum(1)
    # decoder at index 0: mean_p there is x0_hat (alpha_bar_prev = 1)
    if decoder == "gaussian":
        nll = 0.5 * ((x0d - mean_p) ** 2 * torch.exp(-logvar_p) + logvar_p + math.log(2 * math.pi))
    else:
        nll = -discretised_gaussian_log_likelihood(x0d, mean_p, logvar_p.expand_as(mean_p), levels=levels)
    return torch.where(tt == 0, nll.flatten(1).sum(1), kl).float()


def prior_kl(x0: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per item (B,), nats (paper's x_T; the code's index T-1):
    how much signal the schedule leaves at the end."""
    check_schedule(schedule)
    ab = schedule.alpha_bars[-1]
    mean = ab.sqrt() * x0.double()
    logvar = torch.log1p(-ab) * torch.ones_like(mean)
    return _gauss_kl(mean, logvar, torch.zeros_like(mean), torch.zeros_like(mean)).flatten(1).sum(1).float()


@torch.no_grad()
def vlb_breakdown(model, x0: torch.Tensor, schedule: Schedule, *, n_t: int | None = None, generator=None,
                  cond=None, variance: str = "beta", decoder: str = "gaussian", levels: int = 256,
                  max_batch: int = 1024) -> dict:
    r"""The bound on -log p(x0) term by term, in nats per item: L_T, the sum of L_1..L_{T-1}, and L_0.

    Returns ``{"prior": L_T, "diffusion": sum_{t=1}^{T-1} L_t, "decoder": L_0, "total": their sum}``
    (each (B,), float64) and ``"per_t"`` (B, T): index t holds L_t (index 0 the decoder), or None
    when timesteps are sampled. L_T is exact; L_0 is always computed (one model call per item:
    it is the largest single term, and leaving it to chance is what makes a sampled bound noisy);
    ``n_t=None`` computes every L_t (T - 1 calls per item, several timesteps batched into one
    call of at most ``max_batch`` items), an int draws ``n_t`` stratified timesteps from 1..T-1
    per item and rescales each by its stratum's width (unbiased, cheaper, noisier).
    Every term uses one noise draw per item from ``generator``.
    """
    check_schedule(schedule)
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    _checks.choice("decoder", decoder, DECODERS)
    _checks.positive_int("max_batch", max_batch)
    T, B = schedule.T, x0.shape[0]
    prior = prior_kl(x0, schedule).double()
    kw = dict(generator=generator, variance=variance, decoder=decoder, levels=levels)
    dec = vlb_terms(model, x0, schedule, 0, cond=cond, **kw).double()
    if T == 1:
        return {"prior": prior, "diffusion": torch.zeros_like(prior), "decoder": dec, "total": prior + dec,
                "per_t": dec[:, None] if n_t is None else None}
    if n_t is None:  # every index 1..T-1, weight 1
        ts = torch.arange(1, T, dtype=torch.float64)[None].expand(B, -1)
        weights = torch.ones(T - 1, dtype=torch.float64)
    else:  # stratified over 1..T-1: one uniform index inside each of n_t equal bins, weighted by the bin width
        _checks.positive_int("n_t", n_t)
        edges = torch.linspace(1, T, min(n_t, T - 1) + 1, dtype=torch.float64).round()
        cols, weights = [], []
        for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist()):
            if hi > lo:
                cols.append(torch.randint(int(lo), int(hi), (B,), generator=generator).to(torch.float64))
                weights.append(hi - lo)
        ts, weights = torch.stack(cols, 1), torch.tensor(weights, dtype=torch.float64)
    per = max(1, max_batch // B)  # timesteps per model call
    terms = []
    for j in range(0, ts.shape[1], per):
        cols = ts[:, j:j + per]  # (B, k)
        k = cols.shape[1]
        rep = x0.repeat(k, *([1] * (x0.ndim - 1)))  # column-major: all items at cols[:, 0], then cols[:, 1], ...
        c = None if cond is None else {name: v.repeat(k, *([1] * (v.ndim - 1))) for name, v in cond.items()}
        out = vlb_terms(model, rep, schedule, cols.T.reshape(-1), cond=c, **kw).double()
        terms.append(out.reshape(k, B).T)
    terms = torch.cat(terms, 1)  # (B, number of timesteps)
    diffusion = (terms * weights).sum(1)
    per_t = torch.cat([dec[:, None], terms], 1) if n_t is None else None
    return {"prior": prior, "diffusion": diffusion, "decoder": dec, "total": prior + diffusion + dec, "per_t": per_t}


@torch.no_grad()
def nll_bound(model, x0: torch.Tensor, schedule: Schedule, *, n_t: int | None = None, generator=None,
              cond=None, variance: str = "beta", decoder: str = "gaussian", levels: int = 256,
              max_batch: int = 1024) -> torch.Tensor:
    r"""Upper bound on -log p(x0) in nats per item (B,): L_T + sum_{t=1}^{T-1} L_t + L_0.

    ``n_t=None`` sums every term (T model calls per item); an int draws ``n_t``
    stratified timesteps for the middle sum (see :func:`vlb_breakdown`, which also
    returns the terms separately).
    """
    return vlb_breakdown(model, x0, schedule, n_t=n_t, generator=generator, cond=cond, variance=variance,
                         decoder=decoder, levels=levels, max_batch=max_batch)["total"].float()


def cross_entropy(model, x0: torch.Tensor, schedule: Schedule | None = None, *, generator=None, cond=None,
                  noisy: bool = False) -> torch.Tensor:
    """Classifier loss: cross-entropy of ``model(x)`` against ``cond["y"]``.

    ``noisy=True`` trains a noise-aware classifier p(y | x_t, t) on x_t ~ q(x_t | x0)
    with uniform t (for classifier guidance).
    """
    if not cond or "y" not in cond:
        raise ValueError("cross_entropy needs the labels as cond={'y': labels}")
    if noisy:
        t = sample_t(x0.shape[0], schedule, generator=generator)
        x_t = q_sample(x0, t, None, schedule, generator=generator)
        logits = model(x_t, t.to(x0))
    else:
        logits = model(x0)
    return torch.nn.functional.cross_entropy(logits, cond["y"])


#: Objectives by name, for training recipes (:mod:`ddlearn.train`). Add one with ``LOSSES["mine"] = fn``.
LOSSES = {"simple": simple_loss, "cross_entropy": cross_entropy}


# ---- score matching (Chapter 03) and continuous-time SDE training (Chapter 04) ----------------------

def dsm_loss(score, x0: torch.Tensor, sigma, *, generator=None) -> torch.Tensor:
    r"""Denoising score matching (Vincent 2011), weighted by sigma^2 (Song & Ermon 2019).

    With :math:`\tilde x = x_0 + \sigma z`, the score of the noising kernel is
    :math:`\nabla_{\tilde x}\log q(\tilde x\mid x_0) = -(\tilde x - x_0)/\sigma^2 = -z/\sigma`, and
    :math:`\mathbb E\|s(\tilde x,\sigma) + z/\sigma\|^2` equals (up to a constant) the explicit
    score-matching error against the score of the noised data. Weighting by
    :math:`\sigma^2` gives :math:`\mathbb E\|\sigma s(\tilde x,\sigma) + z\|^2`, the same size at
    every level. ``score(x_tilde, sigma)`` takes sigma as a float64 tensor (B,); ``sigma`` is a
    number or a tensor (B,) (one level per item). Mean over items and dimensions.
    """
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    sig = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1)
    if sig.numel() == 1:
        sig = sig.expand(x0.shape[0])
    if sig.numel() != x0.shape[0] or not torch.isfinite(sig).all() or (sig <= 0).any():
        raise ValueError(f"sigma must be positive and finite, a number or one value per item ({x0.shape[0]})")
    z = randn_like(x0, generator)
    s_col = per_item(sig, x0)
    x_tilde = x0 + s_col * z
    return ((s_col * score(x_tilde, sig) + z) ** 2).mean()


def dequantize(x: torch.Tensor, levels: int, *, generator=None) -> torch.Tensor:
    r"""Uniform dequantisation of data on ``levels`` evenly spaced grey levels spanning [-1, 1].

    Level k (x = -1 + 2k/(levels-1)) becomes :math:`-1 + 2(k + U)/\text{levels}`, U ~ U(0, 1): the
    interval [-1, 1] is cut into ``levels`` bins of width 2/levels and each value is spread over its
    bin (Theis et al. 2016). scikit-learn's digits have 17 levels (0..16) at 8x8.
    """
    _checks.positive_int("levels", levels, minimum=2)
    k = torch.round((x.clamp(-1, 1) + 1) / 2 * (levels - 1))
    return (k + torch.rand(x.shape, generator=generator).to(x)) * (2.0 / levels) - 1


def sde_loss(model, x0: torch.Tensor, schedule, *, generator=None, cond=None, u_min: float = 1e-5,
             dequantize: int | None = None) -> torch.Tensor:
    r"""Continuous-time training of an eps-model for an SDE (``schedule`` is a :class:`ddlearn.sde.SDE`).

    :math:`u \sim U(u_{min}, 1)`, :math:`x_u = m(u) x_0 + s(u)\epsilon`, loss
    :math:`\|\epsilon_\theta(\text{model\_input}(x_u, u)) - \epsilon\|^2`: the DSM objective with
    weight :math:`\lambda(u) = s(u)^2` (Song et al. 2021, eq. 7), since :math:`s_\theta = -\epsilon_\theta/s`.
    The model sees what :meth:`ddlearn.sde.SDE.model_input` gives (VP-scaled state, t = u (T-1)), the
    same as the samplers feed it. ``dequantize``: a number of grey levels; the data are
    dequantised (:func:`dequantize`) before noising, for likelihoods in bits/dim.
    """
    from .sde import SDE

    if not isinstance(schedule, SDE):
        raise TypeError(f"sde_loss needs a ddlearn.sde.SDE as its schedule, got {type(schedule).__name__}")
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    _checks.number("u_min", u_min, low=0, high=1)
    if dequantize is not None:  # fresh uniform noise in every batch: the model learns the dequantised density
        x0 = globals()["dequantize"](x0, dequantize, generator=generator)
    u = u_min + (1 - u_min) * torch.rand(x0.shape[0], generator=generator, dtype=torch.float64)
    noise = randn_like(x0, generator)
    x_u, _ = schedule.marginal_sample(x0, u, noise=noise)
    x_in, t = schedule.model_input(x_u, u)
    return ((_model_eps(model, x_in, t, cond) - noise) ** 2).mean()


LOSSES["sde"] = sde_loss


# ---- flow matching (Chapter 10) --------------------------------------------------------------------------
FLOW_TIMES = ("uniform", "logit_normal")


def flow_matching_loss(model, x0: torch.Tensor, schedule, *, generator=None, cond=None, time: str = "uniform",
                       p_uncond: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    r"""Conditional flow matching (Lipman et al. 2023): :math:`\mathbb E\,\|v_	heta(x_u, u) - (lpha' x_0 + \sigma'\epsilon)\|^2`.

    ``schedule`` is the path (:class:`ddlearn.flow.FlowPath`); :math:`x_u = lpha x_0 + \sigma\epsilon` and the
    target is the *conditional* velocity, :math:`\epsilon - x_0` on the straight path. Its minimiser is the
    conditional mean given :math:`x_u`, the marginal velocity that carries the noise to the data
    (:class:`ddlearn.oracles.MixtureVelocity` for a mixture). The model sees ``(x_u, t = u (T - 1))``.
    ``time``: how u is drawn, ``"uniform"`` on [0, 1] or ``"logit_normal"`` (u = sigmoid(n), n ~ N(0, 1):
    more weight in the middle, as Stable Diffusion 3 trains; Esser et al. 2024). ``p_uncond``: label dropout.
    ``noise``: the eps paired with each x0 (default: fresh independent draws); rectified flow's reflow passes the
    noise its model carried to each x0 (:func:`ddlearn.rectified.reflow`).
    """
    if not callable(getattr(schedule, "coef_derivs", None)) or not callable(getattr(schedule, "sample", None)):
        raise TypeError(f"flow_matching_loss needs a flow path (ddlearn.flow.FlowPath) as its schedule, got "
                        f"{type(schedule).__name__}")
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    _checks.choice("time", time, FLOW_TIMES)
    B = x0.shape[0]
    if time == "uniform":
        u = torch.rand(B, generator=generator, dtype=torch.float64)
    else:
        u = torch.sigmoid(torch.randn(B, generator=generator, dtype=torch.float64))
    t = u * (schedule.T - 1)
    if noise is None:
        noise = randn_like(x0, generator)
    else:
        _checks.tensor("noise", noise)
        _checks.same_shape("x0", x0, "noise", noise)
    x_u, target = schedule.sample(x0, t, noise)
    if p_uncond:
        cond = drop_labels(cond, p_uncond, model.null_class, generator=generator)
    return ((_model_eps(model, x_u, t.to(x0), cond) - target) ** 2).mean()


LOSSES["flow"] = flow_matching_loss


# ---- image-to-video (Chapter 08): condition on one frame, drop the conditions for two-scale guidance ----------
def drop_conditions(cond: dict, nulls: dict, p_uncond: float, *, first: str = "prompt", second: str = "image",
                    generator=None) -> tuple[dict, dict]:
    """DynamiCrafter's joint condition dropout: with u ~ U(0, 1) per item, ``first`` is replaced by its null
    when u < 2p, ``second`` when p <= u < 3p; so p of the items lose only ``first``, p both, p only ``second``.

    Returns the new condition dict and the boolean drop masks ``{first: (B,), second: (B,)}``.
    """
    _checks.number("p_uncond", p_uncond, low=0, high=1 / 3)
    B = cond[second].shape[0]
    u = torch.rand(B, generator=generator)
    masks = {first: u < 2 * p_uncond, second: (u >= p_uncond) & (u < 3 * p_uncond)}
    out = dict(cond)
    for name, m in masks.items():
        keep = ~m.to(cond[name].device)
        out[name] = torch.where(keep.reshape(-1, *[1] * (cond[name].ndim - 1)), cond[name], nulls[name].to(cond[name]))
    return out, masks


def image_to_video_loss(model, x0: torch.Tensor, schedule: Schedule, *, generator=None, cond=None,
                        cond_frame: str = "first", p_uncond: float = 0.0, motion_weight: float = 0.0) -> torch.Tensor:
    r"""Simple loss of a clip model conditioned on one of its frames (Chapter 08, after DynamiCrafter).

    ``x0``: clips (B, C, F, H, W). The conditioning image is frame 0 (``cond_frame="first"``)
    or a frame drawn per clip (``"random"``, as DynamiCrafter trains); the model
    diffuses ``model.encode(x0, image)`` (the frames, or their change from the image)
    and is called as ``model(z_t, t, image=..., **cond)``. ``p_uncond``: the share
    of items that lose only the prompt, both, or only the image
    (:func:`drop_conditions`, nulls from ``model.null_conditions``). ``motion_weight`` w >= 0: the
    pixels where a frame differs from the conditioning image (any channel; the sprites' old and new
    places) weigh 1 + w in the mean squared error, the rest 1 (0: the plain loss). On sprite clips
    those pixels are a few percent of the clip, so the plain loss is mostly about a background that
    the image already gives.
    """
    _checks.tensor("x0", x0, ndim=5)
    _checks.choice("cond_frame", cond_frame, ("first", "random"))
    _checks.number("motion_weight", motion_weight, low=0)
    B, F = x0.shape[0], x0.shape[2]
    k = (torch.zeros(B, dtype=torch.long) if cond_frame == "first"
         else torch.randint(0, F, (B,), generator=generator))
    image = x0[torch.arange(B), :, k.to(x0.device)]
    cond = {**(cond or {}), "image": image}
    if p_uncond:
        cond, _ = drop_conditions(cond, model.null_conditions(B, x0.device), p_uncond, generator=generator)
    weight = None
    if motion_weight:
        moving = ((x0 - image[:, :, None]).abs().amax(1, keepdim=True) > MOTION_TOL).to(x0.dtype)
        weight = 1 + motion_weight * moving
    return simple_loss(model, model.encode(x0, image), schedule, generator=generator, cond=cond,
                       pixel_weight=weight)


#: A pixel "moves" (image_to_video_loss's motion_weight) where a frame differs from the image by more than this
#: ([-1, 1] units; the clips are rendered without noise, so anything above float error is a change).
MOTION_TOL = 1e-3

LOSSES["image_to_video"] = image_to_video_loss


def reconstruction(model, x0: torch.Tensor, schedule=None, *, generator=None, cond=None) -> torch.Tensor:
    """Mean squared error of ``model(x0)`` against x0: an autoencoder's objective (Chapter 09's anomaly baseline)."""
    _checks.tensor("x0", x0, ndim=tuple(range(2, 6)))
    out = _checks.model_output(model(x0), x0, where="reconstruction", what="autoencoder")
    return ((out - x0) ** 2).mean()


LOSSES["reconstruction"] = reconstruction
