r"""Sample-quality metrics, each with the number it should be compared against.

* :func:`sliced_wasserstein` - point clouds: the average 1-D Wasserstein-2
  distance over random projections (Rabin et al. 2011; Bonneel et al. 2015).
  Compare samples-vs-held-out with two independent draws of the data.
* :func:`frechet_digit_distance` - digits: the Frechet distance (Heusel et
  al. 2017, "FID") between Gaussians fitted to the penultimate features of the
  shipped digit classifier. Compare with the train-vs-held-out floor.
* :func:`nearest_neighbour` - memorisation check (as in Carlini et al. 2023 /
  Somepalli et al. 2023, much simplified): each sample's distance to its
  nearest training digit, against held-out digits' distance to the training
  set. Copies show up as samples much closer than any held-out digit.
* :func:`elbo_bpd` - the variational bound in bits per dimension on held-out
  digits, with uniform dequantisation (below).
* :func:`psnr`, :func:`ssim` - restoration quality, wrapping scikit-image on
  images in [-1, 1] (data range 2).
* :func:`consistency_psnr` - data consistency of a restoration: PSNR of
  A(x_hat) against the measurement y.
* :func:`sharpness`, :func:`colour_error` - restoration (Chapter 07): gradient
  energy relative to the truth's (1 = as sharp); CIELAB chroma distance.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import _checks


def _flat(name, x):
    _checks.tensor(name, x, ndim=(2, 3, 4, 5))
    return x.detach().reshape(x.shape[0], -1).to(torch.float64).cpu()


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, *, n_projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    r"""Sliced Wasserstein-2 distance :math:`\big(\mathbb E_\theta W_2^2(\theta^\top x, \theta^\top y)\big)^{1/2}`.

    Directions are uniform on the sphere, drawn from ``generator`` (pass one
    for a repeatable number). Different sample sizes are compared through
    their quantile functions on a common grid.
    """
    fx, fy = _flat("x", x), _flat("y", y)
    if fx.shape[1] != fy.shape[1]:
        raise ValueError(f"x and y must have the same dimension per item, got {fx.shape[1]} and {fy.shape[1]}")
    _checks.positive_int("n_projections", n_projections)
    theta = torch.randn(fx.shape[1], n_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = (fx @ theta).sort(dim=0).values, (fy @ theta).sort(dim=0).values
    if px.shape[0] != py.shape[0]:
        n = max(px.shape[0], py.shape[0])
        q = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        px = torch.quantile(px, q, dim=0)
        py = torch.quantile(py, q, dim=0)
    return float(((px - py) ** 2).mean().sqrt())


# --------------------------------------------------------------------------- Frechet digit distance
def _classifier(classifier=None):
    if classifier is not None:
        return classifier
    from . import pretrained

    return pretrained.load("digit_classifier").model


@torch.no_grad()
def digit_features(x: torch.Tensor, classifier=None, *, batch: int = 500) -> torch.Tensor:
    """Penultimate features of the shipped digit classifier for digits (B, 1, 16, 16) in [-1, 1]."""
    _checks.tensor("x", x, ndim=4)
    clf = _classifier(classifier)
    return torch.cat([clf.features(x[i:i + batch].float()) for i in range(0, x.shape[0], batch)]).double()


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    r""":math:`\|\mu_1-\mu_2\|^2 + \operatorname{tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})`."""
    from scipy import linalg

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():  # nearly singular product: regularise, as in the FID reference code
        eye = np.eye(cov1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov1 + eye) @ (cov2 + eye))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def frechet_digit_distance(x: torch.Tensor, y: torch.Tensor, *, classifier=None) -> float:
    """Frechet distance between digit sets ``x`` and ``y`` in the digit classifier's feature space.

    Like FID it is biased upwards for small sets: compare numbers computed
    with the same set sizes (e.g. samples vs held-out against train subset vs held-out).
    """
    for name, v in (("x", x), ("y", y)):
        _checks.tensor(name, v, ndim=4)
        if v.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 digits to fit a covariance, got {v.shape[0]}")
    clf = _classifier(classifier)
    fx, fy = digit_features(x, clf).numpy(), digit_features(y, clf).numpy()
    return frechet_distance(fx.mean(0), np.cov(fx, rowvar=False), fy.mean(0), np.cov(fy, rowvar=False))


# --------------------------------------------------------------------------- memorisation
def nearest_neighbour(samples: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor) -> dict:
    """Nearest-training-neighbour distances of samples, with held-out digits as the yardstick.

    Returns a dict with (L2 distances in pixel space, per item):
    ``sample_dist`` (n,), ``sample_index`` (n,) the nearest training item,
    ``heldout_dist`` (m,), and the summary numbers ``sample_median``,
    ``heldout_median``, ``frac_closer_than_heldout_min`` (the fraction of
    samples nearer to a training digit than the nearest held-out digit ever
    gets: near 0 means no copying) and ``ratio_median`` = sample_median / heldout_median.
    """
    fs, ft, fh = _flat("samples", samples), _flat("train", train), _flat("heldout", heldout)
    if not (fs.shape[1] == ft.shape[1] == fh.shape[1]):
        raise ValueError(f"samples, train and heldout must have the same item size, got "
                         f"{fs.shape[1]}, {ft.shape[1]} and {fh.shape[1]}")
    ds, idx = torch.cdist(fs, ft).min(dim=1)
    dh = torch.cdist(fh, ft).min(dim=1).values
    return {"sample_dist": ds, "sample_index": idx, "heldout_dist": dh,
            "sample_median": float(ds.median()), "heldout_median": float(dh.median()),
            "frac_closer_than_heldout_min": float((ds < dh.min()).double().mean()),
            "ratio_median": float(ds.median() / dh.median())}


# --------------------------------------------------------------------------- likelihood
def elbo_bpd(model, x: torch.Tensor, schedule, *, n_t: int | None = 100, bits: int = 8,
             generator: torch.Generator | None = None, cond=None, variance: str = "beta") -> dict:
    r"""The variational bound in bits per dimension on images ``x`` in [-1, 1].

    Dequantisation, stated plainly: the images are first quantised to
    ``bits``-bit values (2^bits levels spanning [-1, 1], bin width
    :math:`\Delta = 2/(2^{bits}-1)`), then uniform noise inside each bin is
    added (Theis et al. 2016). For the discrete images,
    :math:`\log P(x) \ge \mathbb E_u[\log p(x+u)] + D\log\Delta`, and the
    diffusion bound lower-bounds :math:`\log p(x+u)`; so

    .. math:: \text{bpd} = \frac{\text{NLL bound (nats)} - D\log\Delta}{D\,\ln 2}

    is an upper bound on the discrete negative log-likelihood in bits per
    dimension. ``n_t`` timesteps per image are drawn stratified (None: all T).
    Returns ``{"bpd": mean, "bpd_std_err": standard error over images, "nats": per-image bounds}``.
    """
    from .losses import nll_bound

    _checks.tensor("x", x, ndim=(2, 3, 4, 5))
    _checks.positive_int("bits", bits)
    levels = 2 ** bits - 1
    delta = 2.0 / levels
    xq = torch.round((x.clamp(-1, 1) + 1) / delta) * delta - 1
    u = (torch.rand(x.shape, generator=generator, dtype=x.dtype) - 0.5) * delta
    nats = nll_bound(model, xq + u, schedule, n_t=n_t, generator=generator, cond=cond, variance=variance).double()
    D = x[0].numel()
    bpd = (nats - D * math.log(delta)) / (D * math.log(2))
    return {"bpd": float(bpd.mean()), "bpd_std_err": float(bpd.std() / math.sqrt(max(1, bpd.numel() - 1))),
            "nats": nats.float()}


# --------------------------------------------------------------------------- restoration
def _to_numpy_images(name, x):
    _checks.tensor(name, x, ndim=(2, 3, 4))
    a = x.detach().cpu().double().numpy()
    if a.ndim == 2:
        a = a[None, None]
    elif a.ndim == 3:
        a = a[None]
    return a


def psnr(x: torch.Tensor, ref: torch.Tensor, *, data_range: float = 2.0, reduction: str = "mean"):
    """Peak signal-to-noise ratio in dB (scikit-image), images in [-1, 1] (``data_range`` 2).

    (B, C, H, W), (C, H, W) or (H, W). ``reduction="none"`` gives one value per image.
    """
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _to_numpy_images("x", x), _to_numpy_images("ref", ref)
    if a.shape != b.shape:
        raise ValueError(f"ref must have the same shape as x {a.shape}, got {b.shape}")
    _checks.choice("reduction", reduction, ("mean", "none"))
    vals = [peak_signal_noise_ratio(r, i, data_range=data_range) for i, r in zip(a, b)]
    return float(np.mean(vals)) if reduction == "mean" else vals


def ssim(x: torch.Tensor, ref: torch.Tensor, *, data_range: float = 2.0, reduction: str = "mean"):
    """Structural similarity (scikit-image, Wang et al. 2004), channels averaged; images in [-1, 1]."""
    from skimage.metrics import structural_similarity

    a, b = _to_numpy_images("x", x), _to_numpy_images("ref", ref)
    if a.shape != b.shape:
        raise ValueError(f"ref must have the same shape as x {a.shape}, got {b.shape}")
    _checks.choice("reduction", reduction, ("mean", "none"))
    win = min(7, a.shape[-1], a.shape[-2])
    win = win if win % 2 else win - 1
    vals = [structural_similarity(r, i, data_range=data_range, channel_axis=0, win_size=win) for i, r in zip(a, b)]
    return float(np.mean(vals)) if reduction == "mean" else vals


def consistency_psnr(operator, x: torch.Tensor, y: torch.Tensor, *, data_range: float = 2.0,
                     cap: float = 200.0) -> float:
    """How well ``x`` explains ``y``: PSNR (dB) of A(x) against y, over the whole batch, capped at ``cap``
    (an exact fit would be infinite). Compute it on a sampler's raw output: clipping changes A(x)."""
    from .operators import Operator

    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(operator).__name__}")
    operator.check_y(y)
    with torch.no_grad():
        ax = operator(x)
        if ax.is_complex() or y.is_complex():  # k-space (Chapter 09's MRI): mean of |A(x) - y|^2
            mse = (ax.to(torch.complex128) - y.to(torch.complex128)).abs().pow(2).mean().item()
        else:
            mse = (ax.double() - y.double()).pow(2).mean().item()
    return min(cap, 10 * math.log10(data_range ** 2 / mse)) if mse > 0 else cap


# --------------------------------------------------------------------------- Chapter 07: sharpness, colour
def gradient_energy(x: torch.Tensor) -> list[float]:
    """Mean squared Sobel gradient magnitude (scikit-image) of each image (B, C, H, W), channels averaged."""
    from skimage.filters import sobel

    a = _to_numpy_images("x", x)
    return [float(np.mean([np.mean(sobel(ch) ** 2) for ch in img])) for img in a]


def sharpness(x: torch.Tensor, ref: torch.Tensor, *, reduction: str = "mean"):
    """Gradient energy of ``x`` relative to the ground truth's, per image (1 = as sharp as the truth;
    below 1 blurrier, above 1 noisier or over-sharpened)."""
    _checks.choice("reduction", reduction, ("mean", "none"))
    gx, gr = gradient_energy(x), gradient_energy(ref)
    if len(gx) != len(gr):
        raise ValueError(f"ref must hold as many images as x ({len(gx)}), got {len(gr)}")
    vals = [a / max(b, 1e-12) for a, b in zip(gx, gr)]
    return float(np.mean(vals)) if reduction == "mean" else vals


def colour_error(x: torch.Tensor, ref: torch.Tensor, *, reduction: str = "mean"):
    """Colour error of RGB images in [-1, 1]: the mean CIELAB chroma distance sqrt(da^2 + db^2) per image
    (scikit-image's ``rgb2lab``; lightness ignored, so it measures colour only; about 0-100)."""
    from skimage.color import rgb2lab

    a, b = _to_numpy_images("x", x), _to_numpy_images("ref", ref)
    if a.shape != b.shape or a.shape[1] != 3:
        raise ValueError(f"x and ref must be RGB images of one shape (B, 3, H, W), got {a.shape} and {b.shape}")
    _checks.choice("reduction", reduction, ("mean", "none"))
    vals = []
    for i, r in zip(a, b):
        li = rgb2lab(np.clip((i.transpose(1, 2, 0) + 1) / 2, 0, 1))
        lr = rgb2lab(np.clip((r.transpose(1, 2, 0) + 1) / 2, 0, 1))
        vals.append(float(np.sqrt(((li[..., 1:] - lr[..., 1:]) ** 2).sum(-1)).mean()))
    return float(np.mean(vals)) if reduction == "mean" else vals
