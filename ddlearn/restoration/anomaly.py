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
:func:`anomaly_map` takes either; the book's prior was trained with Gaussian
noise only, so simplex noise at test time is a mismatch the chapter measures.

Baselines and scores: :func:`threshold_score` (distance of each pixel from the
typical soft-tissue value: classical intensity thresholding) and
:func:`reconstruction_score` (an autoencoder's :math:`|x - \mathrm{AE}(x)|`);
:func:`pixel_auroc` and :func:`best_dice` evaluate a score map against the
ground-truth lesion mask (scikit-learn's ROC AUC; Dice at the best threshold,
as AnoDDPM reports it).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import _checks, param
from ..config import randn_like
from ..samplers.base import check_inputs
from ..samplers.ddim import ddim_loop, model_predict

NOISES = ("gaussian", "simplex")
#: Defaults: the noise level t0 for each noise, the DDIM steps from t0 to 0, the draws averaged per map.
#: Gaussian t0 = 300: on 16 validation phantoms with lesions (25 steps, 1 draw) pixel AUROC over the head was
#: 0.887 at t0 = 300 against 0.819 at t0 = 150 (only these two were measured). The simplex t0 is untuned
#: (``python benchmarks/medical.py --tune --parts anomaly`` sweeps both).
T0 = {"gaussian": 300, "simplex": 250}
STEPS = 25
SAMPLES = 1

# --------------------------------------------------------------------------- simplex noise
_F2 = 0.5 * (math.sqrt(3.0) - 1.0)  # skew of the square grid onto the simplex (triangle) grid
_G2 = (3.0 - math.sqrt(3.0)) / 6.0  # and back
_GRADS = torch.tensor([[math.cos(a), math.sin(a)] for a in np.arange(12) * 2 * math.pi / 12], dtype=torch.float64)


def _simplex2d(X: torch.Tensor, Y: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """2-D simplex noise (Perlin 2002; Gustavson's formulation) at points (X, Y) of shape (N, H, W);
    gradients hashed by ``perm`` (N, 512), one permutation per field."""
    N = X.shape[0]
    s = (X + Y) * _F2
    i, j = torch.floor(X + s), torch.floor(Y + s)
    t = (i + j) * _G2
    x0, y0 = X - (i - t), Y - (j - t)  # offsets from the cell's first corner
    i1 = (x0 > y0).to(X.dtype)  # which triangle: the middle corner is (1, 0) or (0, 1)
    j1 = 1.0 - i1
    ii, jj = i.long() & 255, j.long() & 255
    i1l, j1l = i1.long(), j1.long()
    corners = ((x0, y0, 0, 0), (x0 - i1 + _G2, y0 - j1 + _G2, i1l, j1l), (x0 - 1 + 2 * _G2, y0 - 1 + 2 * _G2, 1, 1))

    def lookup(idx):  # perm[idx] per field
        return torch.gather(perm, 1, idx.reshape(N, -1)).reshape(idx.shape)

    out = torch.zeros_like(X)
    for dx, dy, oi, oj in corners:
        h = lookup((ii + oi + lookup((jj + oj) & 255)) & 511) % 12
        fall = (0.5 - dx * dx - dy * dy).clamp_min(0)
        out = out + fall ** 4 * (_GRADS[h, 0] * dx + _GRADS[h, 1] * dy)
    return 70.0 * out  # roughly [-1, 1]


def simplex_noise(shape, *, generator: torch.Generator | None = None, scale: float | None = None,
                  octaves: int = 4, persistence: float = 0.8, dtype=torch.float32) -> torch.Tensor:
    """Multi-octave simplex noise of ``shape`` (B, C, H, W), zero mean and unit variance per image.

    ``scale``: the feature size of the first octave in pixels (default H / 4);
    each further octave halves it and weighs ``persistence`` times the last
    (AnoDDPM: 6 octaves, persistence 0.8, at 256 px). Each image gets its own
    gradient permutation and offset from ``generator``.
    """
    if len(shape) != 4:
        raise ValueError(f"shape must be (B, C, H, W), got {tuple(shape)}")
    B, C, H, W = (int(s) for s in shape)
    _checks.positive_int("octaves", octaves)
    _checks.number("persistence", persistence, low=0, low_open=True)
    scale = H / 4 if scale is None else _checks.number("scale", scale, low=0, low_open=True)
    N = B * C
    perm = torch.stack([torch.randperm(256, generator=generator) for _ in range(N)])
    perm = torch.cat([perm, perm], dim=1)
    off = torch.rand(N, 2, 1, 1, generator=generator, dtype=torch.float64) * 256
    rows = torch.arange(H, dtype=torch.float64)[None, :, None].expand(N, H, W)
    cols = torch.arange(W, dtype=torch.float64)[None, None, :].expand(N, H, W)
    field, amp, s = torch.zeros(N, H, W, dtype=torch.float64), 1.0, scale
    for _ in range(octaves):
        field = field + amp * _simplex2d(cols / s + off[:, 0], rows / s + off[:, 1], perm)
        amp, s = amp * persistence, s / 2
    flat = field.reshape(N, -1)
    flat = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-12)
    return flat.reshape(B, C, H, W).to(dtype)


# --------------------------------------------------------------------------- AnoDDPM
def partial_noise(x: torch.Tensor, t0: int, schedule, *, noise: str = "gaussian",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,x + \sqrt{1-\bar\alpha_{t_0}}\,n` with Gaussian or simplex ``n``."""
    _checks.tensor("x", x, ndim=4)
    _checks.choice("noise", noise, NOISES)
    _checks.positive_int("t0", t0, minimum=0)
    if t0 > schedule.T - 1:
        raise ValueError(f"t0 must be in 0..{schedule.T - 1} (the schedule's timesteps), got {t0}")
    n = randn_like(x, generator) if noise == "gaussian" else \
        simplex_noise(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    ab = float(schedule.alpha_bars[t0])
    return math.sqrt(ab) * x + math.sqrt(1 - ab) * n


@torch.no_grad()
def anomaly_map(model, schedule, x: torch.Tensor, *, t0: int = 250, steps: int = 25, noise: str = "gaussian",
                samples: int = 1, eta: float = 0.0, generator: torch.Generator | None = None, callback=None,
                progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """AnoDDPM: noise ``x`` to ``t0``, denoise with ``steps`` DDIM steps back to 0; return ``(map, x_hat)``.

    ``map`` = mean over ``samples`` draws of :math:`|x - \\hat x|` (B, 1, H, W)
    (channels averaged), ``x_hat`` the mean healthy reconstruction. The steps
    are evenly spaced whole timesteps from t0 down to 0.
    """
    check_inputs(model, x, schedule)
    _checks.tensor("x", x, ndim=4)
    _checks.positive_int("steps", steps)
    _checks.positive_int("samples", samples)
    _checks.positive_int("t0", t0)
    if steps > t0 + 1:
        raise ValueError(f"steps must be at most t0 + 1 = {t0 + 1} (whole timesteps from t0 to 0), got {steps}")
    grid = torch.linspace(t0, 0, steps, dtype=torch.float64).round()
    if steps > 1 and not (grid[1:] < grid[:-1]).all():
        raise ValueError(f"steps={steps} gives repeated timesteps between t0={t0} and 0")
    xs = x.repeat(samples, 1, 1, 1)
    x_t = partial_noise(xs, t0, schedule, noise=noise, generator=generator)
    x_hat = ddim_loop(model_predict(model), x_t, schedule, steps, eta=eta, spacing=grid, clip=(-1.0, 1.0),
                      generator=generator, callback=callback, progress=progress, desc=f"AnoDDPM t0={t0}")
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


def best_dice(score: torch.Tensor, mask: torch.Tensor, *, region: torch.Tensor | None = None,
              n_thresholds: int = 200) -> tuple[float, float]:
    """The best Dice :math:`2|P \\cap M| / (|P| + |M|)` over thresholds of ``score`` (pooled pixels); returns
    ``(dice, threshold)``. The threshold is picked on the same data: an optimistic, AnoDDPM-style figure."""
    s, m = _flat_pairs(score, mask, region)
    _checks.positive_int("n_thresholds", n_thresholds)
    qs = np.unique(np.quantile(s, np.linspace(0.5, 1.0, n_thresholds, endpoint=False)))
    best, thr = 0.0, float(qs[0]) if len(qs) else 0.0
    n_m = m.sum()
    for q in qs:
        p = s > q
        d = 2 * (p & m).sum() / max(p.sum() + n_m, 1)
        if d > best:
            best, thr = float(d), float(q)
    return best, thr


__all__ = ["simplex_noise", "partial_noise", "anomaly_map", "threshold_score", "reconstruction_score",
           "pixel_auroc", "best_dice", "NOISES", "T0", "STEPS", "SAMPLES"]
