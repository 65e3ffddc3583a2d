r"""Anomaly detection by partial noising and denoising (AnoDDPM, Wyatt, Leach, Schmon & Willcocks, CVPR-W 2022).

A diffusion model trained only on *healthy* images knows what healthy looks
like. Noise a test image part of the way, to a level :math:`t_0`,

.. math:: x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,x + \sqrt{1-\bar\alpha_{t_0}}\,n,

and run the reverse process from :math:`t_0` back to 0. The noise has drowned
the fine detail of whatever was there, and the model fills it back in with
what it has seen: healthy tissue. The anomaly map is
:math:`|x - \hat x|`: large where the image is not what the model expects.
:math:`t_0` trades the two errors: too small and the lesion survives the
noising (the model "restores" it), too large and healthy anatomy is not
reproduced either.

The noise :math:`n` is Gaussian, or **simplex noise** (:func:`simplex_noise`;
Perlin 2002's successor, as AnoDDPM uses): a sum of smooth random fields at
a few octaves, normalised to unit variance per image. Low-frequency noise
hides large structures that white noise of the same variance leaves
visible, which is AnoDDPM's argument for it; AnoDDPM also *trains* with it.
:func:`anomaly_map` takes either, and uses it in the reverse steps too (with
eta > 0). A prior trained on Gaussian noise (``phantom64``) meets simplex
noise as something it never saw; ``phantom64_simplex`` is the same network
trained on it (:func:`ddlearn.losses.simple_loss` with ``noise="simplex"``).
:data:`SETTINGS` holds the three variants Chapter 09 compares.

Baselines and scores: :func:`threshold_score` (distance of each pixel from the
typical soft-tissue value: classical intensity thresholding) and
:func:`reconstruction_score` (an autoencoder's :math:`|x - \mathrm{AE}(x)|`);
:func:`pixel_auroc` and :func:`best_dice` evaluate a score map against the
ground-truth lesion mask (scikit-learn's ROC AUC; Dice at the best threshold,
as AnoDDPM reports it); :func:`bootstrap` gives either a 95% interval by
resampling images, alone or as a paired difference between two methods.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import _checks, param
from ..samplers.base import check_inputs
from ..samplers.ddim import ddim_loop, model_predict
from ..simplex import draw_noise, simplex_noise

NOISES = ("gaussian", "simplex")
#: The three AnoDDPM variants Chapter 09 compares, as :func:`anomaly_map` options: Gaussian noise with the
#: Gaussian prior (``phantom64``); simplex noise at t0 only with that prior (the paper's weak ablation: the
#: reverse steps are deterministic, so no simplex noise enters them); and simplex noise at t0 and in every
#: reverse step (eta = 1) with the prior trained on simplex noise (``phantom64_simplex``), as the paper does.
#: Chosen on 16 validation phantoms with lesions by pixel AUROC over the head (``python benchmarks/medical.py
#: --tune --parts anomaly``, t0 50-450, octaves 2/4/6, eta 0/1; every row stored in ``medical_results.json``
#: under "tune:anomaly", tied to these values by tests/test_medical_settings.py): Gaussian 0.878 at t0 = 350;
#: simplex at t0 only 0.642 at t0 = 50 (the smallest t0 tried: with deterministic reverse steps the Gaussian
#: prior does best when the simplex noise is weakest); simplex everywhere with the simplex prior 0.963 at
#: t0 = 100, eta 1, 4 octaves (the octaves it was trained with). The autoencoder scored 0.866.
SETTINGS = {
    "gaussian": {"t0": 350, "steps": 25, "noise": "gaussian", "eta": 0.0, "octaves": None, "samples": 1},
    "simplex_t0_only": {"t0": 50, "steps": 25, "noise": "simplex", "eta": 0.0, "octaves": 4, "samples": 1},
    "simplex": {"t0": 100, "steps": 25, "noise": "simplex", "eta": 1.0, "octaves": 4, "samples": 1},
}
#: the noise level t0 of the Gaussian and the simplex variants (``SETTINGS``' values)
T0 = {"gaussian": SETTINGS["gaussian"]["t0"], "simplex": SETTINGS["simplex"]["t0"]}
STEPS = 25
SAMPLES = 1

# --------------------------------------------------------------------------- AnoDDPM
def partial_noise(x: torch.Tensor, t0: int, schedule, *, noise: str = "gaussian",
                  generator: torch.Generator | None = None, octaves: int | None = None) -> torch.Tensor:
    r""":math:`x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,x + \sqrt{1-\bar\alpha_{t_0}}\,n` with Gaussian or simplex ``n``
    (``octaves``: simplex noise's, default :func:`ddlearn.simplex.simplex_noise`'s)."""
    _checks.tensor("x", x, ndim=4)
    _checks.choice("noise", noise, NOISES)
    _checks.positive_int("t0", t0, minimum=0)
    if t0 > schedule.T - 1:
        raise ValueError(f"t0 must be in 0..{schedule.T - 1} (the schedule's timesteps), got {t0}")
    n = draw_noise(x, noise, generator, **_simplex_options(noise, octaves))
    ab = float(schedule.alpha_bars[t0])
    return math.sqrt(ab) * x + math.sqrt(1 - ab) * n


def _simplex_options(noise, octaves):
    if octaves is None:
        return {}
    if noise != "simplex":
        raise ValueError(f"octaves applies to simplex noise only, got noise={noise!r}")
    return {"octaves": _checks.positive_int("octaves", octaves)}


@torch.no_grad()
def anomaly_map(model, schedule, x: torch.Tensor, *, t0: int = 250, steps: int = 25, noise: str = "gaussian",
                samples: int = 1, eta: float = 0.0, octaves: int | None = None,
                generator: torch.Generator | None = None, callback=None,
                progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """AnoDDPM: noise ``x`` to ``t0``, denoise with ``steps`` DDIM steps back to 0; return ``(map, x_hat)``.

    ``map`` = mean over ``samples`` draws of :math:`|x - \\hat x|` (B, 1, H, W)
    (channels averaged), ``x_hat`` the mean healthy reconstruction. The steps
    are evenly spaced whole timesteps from t0 down to 0. ``noise`` is the noise
    of the partial noising *and* of every reverse step (with ``eta`` > 0; eta = 1
    is DDPM's ancestral step, as AnoDDPM samples), so ``noise="simplex"`` with
    ``eta=1`` is AnoDDPM's method, meant for a prior trained on simplex noise
    (``ddlearn train phantom64_simplex``); ``octaves`` sets the simplex noise's.
    """
    check_inputs(model, x, schedule)
    _checks.tensor("x", x, ndim=4)
    _checks.in_range("x", x)  # images in [-1, 1]: the prior's data range (its reconstruction is clamped to it)
    _checks.positive_int("steps", steps)
    _checks.positive_int("samples", samples)
    _checks.positive_int("t0", t0)
    if steps > t0 + 1:
        raise ValueError(f"steps must be at most t0 + 1 = {t0 + 1} (whole timesteps from t0 to 0), got {steps}")
    grid = torch.linspace(t0, 0, steps, dtype=torch.float64).round()
    if steps > 1 and not (grid[1:] < grid[:-1]).all():
        raise ValueError(f"steps={steps} gives repeated timesteps between t0={t0} and 0")
    xs = x.repeat(samples, 1, 1, 1)
    x_t = partial_noise(xs, t0, schedule, noise=noise, generator=generator, octaves=octaves)
    x_hat = ddim_loop(model_predict(model), x_t, schedule, steps, eta=eta, spacing=grid, clip=(-1.0, 1.0),
                      generator=generator, callback=callback, progress=progress, desc=f"AnoDDPM t0={t0}",
                      noise=noise, noise_options=_simplex_options(noise, octaves))
    x_hat = x_hat.clamp(-1, 1).reshape(samples, *x.shape)
    err = (x_hat - x.unsqueeze(0)).abs().mean(dim=2, keepdim=True)  # (samples, B, 1, H, W)
    return err.mean(0), x_hat.mean(0)


# --------------------------------------------------------------------------- baselines and scores
def threshold_score(x: torch.Tensor, *, background: float = -0.95) -> torch.Tensor:
    """Intensity thresholding's score: each pixel's distance from the image's median tissue value.

    The median is over the pixels brighter than ``background`` (the head);
    air scores 0. Thresholding this map is the classical detector: anything
    far from typical tissue is flagged (the skull and darker tissue classes too).
    """
    _checks.tensor("x", x, ndim=4)
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        head = x[b] > background
        if head.any():
            med = x[b][head].median()
            out[b] = torch.where(head, (x[b] - med).abs(), torch.zeros_like(x[b]))
    return out.mean(dim=1, keepdim=True)


@torch.no_grad()
def reconstruction_score(autoencoder, x: torch.Tensor) -> torch.Tensor:
    """An autoencoder's anomaly map :math:`|x - \\mathrm{AE}(x)|` (channels averaged)."""
    _checks.tensor("x", x, ndim=4)
    if not callable(autoencoder):
        raise TypeError(f"autoencoder must be callable as autoencoder(x), got {type(autoencoder).__name__}")
    out = _checks.model_output(autoencoder(x), x, where="reconstruction", what="autoencoder")
    return (out.clamp(-1, 1) - x).abs().mean(dim=1, keepdim=True)


def _flat_pairs(score, mask, region):
    _checks.tensor("score", score, ndim=4)
    if not isinstance(mask, torch.Tensor) or mask.shape != score.shape:
        raise ValueError(f"mask must be a tensor of the score's shape {tuple(score.shape)}, "
                         f"got {getattr(mask, 'shape', type(mask).__name__)}")
    s = score.detach().double().cpu().reshape(-1).numpy()
    m = mask.detach().cpu().reshape(-1).numpy().astype(bool)
    if region is not None:
        if not isinstance(region, torch.Tensor) or region.shape != score.shape:
            raise ValueError(f"region must be a boolean tensor of the score's shape {tuple(score.shape)}")
        keep = region.detach().cpu().reshape(-1).numpy().astype(bool)
        s, m = s[keep], m[keep]
    if m.all() or not m.any():
        raise ValueError("mask must hold both anomalous (True) and normal (False) pixels in the evaluated region")
    return s, m


def pixel_auroc(score: torch.Tensor, mask: torch.Tensor, *, region: torch.Tensor | None = None) -> float:
    """Area under the ROC curve of ``score`` against the boolean ``mask``, over all pixels (pooled) of
    ``region`` (default: every pixel). 0.5 is chance, 1 a perfect ranking."""
    from sklearn.metrics import roc_auc_score

    s, m = _flat_pairs(score, mask, region)
    return float(roc_auc_score(m, s))


def best_dice(score: torch.Tensor, mask: torch.Tensor, *, region: torch.Tensor | None = None) -> tuple[float, float]:
    """The best Dice :math:`2|P \\cap M| / (|P| + |M|)` over every threshold of ``score`` (pooled pixels); returns
    ``(dice, threshold)``, the pixels flagged being ``score > threshold``. The threshold is picked on the same
    data: an optimistic, AnoDDPM-style figure. Exact: the pixels sorted by score, Dice at each distinct value."""
    img = torch.zeros(score.shape, dtype=torch.long)  # one weight for every pixel: the plain pooled Dice
    return _Pooled(score, mask, region, img).best_dice(np.ones(1))


class _Pooled:
    """One score map's pixels sorted once, with their image index: a resample of images is then a weight per
    pixel (how often its image was drawn), and the pooled AUROC and best Dice are weighted sums over the
    sorted pixels, O(pixels) per resample (the same values as scikit-learn's on the repeated pixels)."""

    def __init__(self, score, mask, region, img):
        s, m = _flat_pairs(score, mask, region)
        i = img.reshape(-1).numpy()
        if region is not None:
            i = i[region.detach().cpu().reshape(-1).numpy().astype(bool)]
        order = np.argsort(s, kind="stable")
        s, self.m, self.img = s[order], m[order], i[order]
        self.starts = np.flatnonzero(np.append(True, s[1:] != s[:-1]))  # tie groups, ascending
        self.values = s[self.starts]

    def metric(self, counts, metric):
        w = counts[self.img].astype(np.float64)
        pos = np.add.reduceat(w * self.m, self.starts)
        neg = np.add.reduceat(w * ~self.m, self.starts)
        P, N = pos.sum(), neg.sum()
        if P == 0 or N == 0:
            return None
        if metric == "auroc":
            below = np.cumsum(neg) - neg
            return float((pos * (below + 0.5 * neg)).sum() / (P * N))
        return self.best_dice(counts)[0]

    def best_dice(self, counts) -> tuple[float, float]:
        """(best Dice, threshold): flag the top tie groups, the pixels with score > threshold."""
        w = counts[self.img].astype(np.float64)
        pos = np.add.reduceat(w * self.m, self.starts)[::-1]  # descending groups
        flagged = np.cumsum(np.add.reduceat(w, self.starts)[::-1])
        dice = 2 * np.cumsum(pos) / (flagged + pos.sum())
        j = int(np.argmax(dice))
        below = len(self.values) - 2 - j  # the highest group left unflagged
        return float(dice[j]), float(self.values[below]) if below >= 0 else float(self.values[0]) - 1.0


def bootstrap(score: torch.Tensor, mask: torch.Tensor, *, region: torch.Tensor | None = None,
              baseline: torch.Tensor | None = None, metric: str = "auroc", n: int = 1000, level: float = 0.95,
              seed: int = 0) -> dict:
    """A percentile bootstrap over *images*: resample the B images (dim 0) with replacement ``n`` times and
    recompute the pooled ``metric`` ("auroc" or "dice", the best Dice) on each resample.

    Returns ``{"value", "low", "high", "sd"}``: the metric on all images, the ``level`` interval and the
    bootstrap sd. With ``baseline`` (another score map of the same images) the statistic is the paired
    difference metric(score) - metric(baseline), both on the same resampled images. Images, not pixels,
    are the independent cases: pixels of one image are correlated, so resampling pixels would make the
    interval far too narrow.
    """
    _checks.choice("metric", metric, ("auroc", "dice"))
    _checks.positive_int("n", n)
    _checks.number("level", level, low=0, high=1, low_open=True)
    if level >= 1:
        raise ValueError(f"level must be below 1, got {level}")
    B = score.shape[0]
    img = torch.arange(B).reshape(B, *([1] * (score.ndim - 1))).expand(score.shape)
    maps = [_Pooled(score, mask, region, img)]
    if baseline is not None:
        maps.append(_Pooled(baseline, mask, region, img))

    def stat(counts):
        vals = [mp.metric(counts, metric) for mp in maps]
        return None if any(v is None for v in vals) else (vals[0] - vals[1] if len(vals) == 2 else vals[0])

    rng = np.random.default_rng(seed)
    value = stat(np.ones(B))
    boots = [v for v in (stat(np.bincount(rng.integers(0, B, B), minlength=B)) for _ in range(n)) if v is not None]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"value": value, "low": float(lo), "high": float(hi), "sd": float(np.std(boots, ddof=1))}


__all__ = ["simplex_noise", "partial_noise", "anomaly_map", "threshold_score", "reconstruction_score",
           "pixel_auroc", "best_dice", "bootstrap", "NOISES", "SETTINGS", "T0", "STEPS", "SAMPLES"]
