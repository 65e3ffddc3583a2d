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
  digits, term by term, with a discretised decoder (or dequantisation; below).
* :func:`mixture_fit` - point clouds from a known Gaussian mixture: the mean
  true log-density of the points and the share within 2 standard deviations
  of a centre, which see mass smeared between components.
* :func:`mmd` - point clouds: the maximum mean discrepancy with a multi-scale
  Gaussian kernel, against a known mixture exactly (no reference-sample noise)
  or against reference points; unbiased, so exact samples score 0 +- noise.
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
    _checks.generator("generator", generator)
    theta = torch.randn(fx.shape[1], n_projections, generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = (fx @ theta).sort(dim=0).values, (fy @ theta).sort(dim=0).values
    if px.shape[0] != py.shape[0]:
        n = max(px.shape[0], py.shape[0])
        q = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        px = torch.quantile(px, q, dim=0)
        py = torch.quantile(py, q, dim=0)
    return float(((px - py) ** 2).mean().sqrt())


def mixture_fit(x: torch.Tensor, mixture, *, radius: float = 2.0) -> dict:
    r"""How well points ``x`` (N, D) sit on a known Gaussian mixture (:class:`ddlearn.oracles.GaussianMixture`).

    Sliced Wasserstein and component counts are blind to mass smeared *between*
    the components of a tight mixture; these two numbers are not:

    * ``log_prob``: the mean true log-density :math:`\frac1N\sum_i\log p(x_i)` (nats; higher is
      better; for samples of the mixture itself it estimates minus its entropy);
    * ``within``: the share of points within ``radius`` standard deviations of a component
      centre (Mahalanobis distance to the nearest centre; for an isolated 2-D Gaussian
      component and radius 2 the exact share is :math:`1 - e^{-2} = 0.865`);

    and ``weights`` (K,), the share of points whose most responsible component is k.
    Compare every number with the same computed on samples of the mixture.
    """
    from .oracles import GaussianMixture

    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a ddlearn.oracles.GaussianMixture, got {type(mixture).__name__}")
    _checks.tensor("x", x, ndim=2)
    if x.shape[1] != mixture.D:
        raise ValueError(f"x must have shape (N, {mixture.D}) (the mixture's dimension), got {tuple(x.shape)}")
    _checks.number("radius", radius, low=0)
    flat = x.detach().to(torch.float64).cpu()
    L = torch.linalg.cholesky(mixture.covs)  # (K, D, D)
    resid = (flat[:, None, :] - mixture.means[None]).unsqueeze(-1)  # (N, K, D, 1)
    z = torch.linalg.solve_triangular(L.expand(flat.shape[0], -1, -1, -1), resid, upper=False).squeeze(-1)
    maha = z.norm(dim=-1)  # (N, K)
    resp = mixture.responsibilities(flat).argmax(1)
    return {"log_prob": float(mixture.log_prob(flat).mean()),
            "within": float((maha.min(1).values < radius).double().mean()),
            "weights": torch.bincount(resp, minlength=mixture.K).double() / flat.shape[0]}


def mmd(x: torch.Tensor, target, *, widths=(0.01, 0.03, 0.1, 0.3, 1.0), n_frequencies: int = 256,
        seed: int = 0) -> float:
    r"""Squared maximum mean discrepancy (Gretton et al. 2012) between points ``x`` (N, D) and ``target``.

    ``target``: a :class:`ddlearn.oracles.GaussianMixture` (its exact characteristic
    function, so no reference sample adds noise) or reference points (M, D). The kernel
    is the mean of Gaussian kernels of the given ``widths`` (times :math:`\sqrt{D/2}`),
    so structure at every scale from the tightest mode to the whole cloud counts.
    Written through the kernel's spectrum,
    :math:`\mathrm{MMD}^2 = \mathbb E_\omega\,|\varphi_x(\omega) - \varphi_{target}(\omega)|^2`
    (:math:`\varphi` the characteristic functions), estimated with ``n_frequencies`` fixed
    random frequencies a width (from ``seed``: the same for every call) and, for the
    points, without bias (the i = j terms dropped): samples of ``target`` itself score 0
    +- noise, and a negative value is noise. Reference points (M of them) add their own
    noise, a bias of at most 1/M. O((N + M) n_frequencies), not O(N^2).
    """
    from .oracles import GaussianMixture

    fx = _flat("x", x).to(torch.float64)
    if fx.shape[0] < 2:
        raise ValueError(f"x needs at least 2 points, got {fx.shape[0]}")
    D = fx.shape[1]
    _checks.positive_int("n_frequencies", n_frequencies)
    if not isinstance(widths, (tuple, list)) or not widths:
        raise TypeError(f"widths must be a non-empty tuple of positive numbers, got {widths!r}")
    for w in widths:
        _checks.number("widths[i]", w, low=0, low_open=True)
    g = torch.Generator().manual_seed(int(seed))
    freqs = torch.cat([torch.randn(n_frequencies, D, generator=g, dtype=torch.float64) / (w * math.sqrt(D / 2))
                       for w in widths])  # a Gaussian kernel of width w has frequencies N(0, 1/w^2)

    def features(pts):  # cos and sin of the phases (reduced mod 2 pi in float64, then float32: fast, exact enough)
        ph = torch.remainder(pts @ freqs.T, 2 * math.pi).float()
        return ph.cos(), ph.sin()

    if isinstance(target, GaussianMixture):
        if target.D != D:
            raise ValueError(f"x must have {target.D} values per point (the mixture's D), got {D}")
        quad = torch.einsum("md,kde,me->mk", freqs, target.covs, freqs)
        phi = (target.weights * torch.exp(1j * (freqs @ target.means.T) - 0.5 * quad)).sum(1)
    else:
        fy = _flat("target", target).to(torch.float64)
        if fy.shape[1] != D:
            raise ValueError(f"x and target must have the same dimension per item, got {D} and {fy.shape[1]}")
        c, s = features(fy)
        phi = torch.complex(c.double().mean(0), s.double().mean(0))
    c, s = features(fx)
    n = fx.shape[0]
    S = torch.complex(c.sum(0, dtype=torch.float64), s.sum(0, dtype=torch.float64))
    within = (S.abs() ** 2 - n) / (n * (n - 1))  # unbiased E cos(w.(x - x')) over pairs i != j
    return float((within - 2 * (S.conj() * phi).real / n + phi.abs() ** 2).mean())


# --------------------------------------------------------------------------- Frechet digit distance
def _classifier(classifier=None):
    if classifier is not None:
        return classifier
    from . import pretrained

    return pretrained.load("digit_classifier").model


#: The shipped digit classifier's input: (B, 1, 16, 16) digits in [-1, 1].
DIGIT_SIZE = 16
#: How far past [-1, 1] digits may stray (a sampler's unclipped output overshoots by a few hundredths;
#: data in [0, 255] or far outside is a mistake, not a sample).
DIGIT_RANGE_SLACK = 0.5


def check_digits(name: str, x, classifier=None) -> torch.Tensor:
    """Digits for the digit classifier: (B, 1, 16, 16) (the size the classifier was trained on; an
    8x8 digit runs through its pooling too, but its features mean nothing) with values in [-1, 1]."""
    _checks.tensor(name, x, ndim=4)
    size = getattr(classifier, "image_size", None) if classifier is not None else DIGIT_SIZE
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name} must be {size}x{size} digits (B, 1, {size}, {size}), the classifier's input size, "
                         f"got shape {tuple(x.shape)}; load them with ddlearn.data.digits(size={size})")
    return _checks.in_range(name, x, slack=DIGIT_RANGE_SLACK,
                            hint="rescale [0, 255] data with x / 127.5 - 1; clamp samples with x.clamp(-1, 1)")


@torch.no_grad()
def digit_features(x: torch.Tensor, classifier=None, *, batch: int = 500) -> torch.Tensor:
    """Penultimate features of the shipped digit classifier for digits (B, 1, 16, 16) in [-1, 1]."""
    check_digits("x", x, classifier)
    _checks.positive_int("batch", batch)
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
        check_digits(name, v, classifier)
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
def elbo_bpd(model, x: torch.Tensor, schedule, *, n_t: int | None = None, bits: int = 8,
             decoder: str = "discretised", generator: torch.Generator | None = None, cond=None,
             variance: str = "beta", max_batch: int = 1024) -> dict:
    r"""The variational bound in bits per dimension on images ``x`` in [-1, 1], term by term.

    The images are first quantised to ``bits``-bit values (2^bits levels spanning [-1, 1],
    spacing :math:`\Delta = 2/(2^{bits}-1)`). Then, stated plainly:

    * ``decoder="discretised"`` (default; Ho et al. 2020, eq. 13): the last term :math:`L_0` is
      the probability of each value's bin under the Gaussian decoder, so the bound is an
      upper bound on the *discrete* negative log-likelihood as it stands:
      bpd = bound (nats) / (D ln 2);
    * ``decoder="gaussian"``: a continuous Gaussian decoder on dequantised data (uniform noise
      inside each bin, Theis et al. 2016); :math:`\log P(x) \ge \mathbb E_u[\log p(x+u)] + D\log\Delta`
      gives bpd = (bound (nats) - D log Delta) / (D ln 2), again an upper bound on the discrete NLL.

    ``n_t=None`` (default) computes all T terms (T model calls per image, batched; see
    :func:`ddlearn.losses.vlb_breakdown`); an int samples ``n_t`` stratified timesteps.
    Returns ``{"bpd": mean, "bpd_std_err": standard error over images, "nats": per-image bounds,
    "prior_bpd", "diffusion_bpd", "decoder_bpd": the means of L_T, sum_{t=1}^{T-1} L_t and L_0
    (with the -D log Delta of dequantisation counted in L_0; the three add up to "bpd"),
    "per_t_bpd": (T,) the mean of each L_t (index 0: L_0) or None when timesteps are sampled}``.
    """
    from .losses import DECODERS, vlb_breakdown

    _checks.tensor("x", x, ndim=(2, 3, 4, 5))
    _checks.same_T(model, schedule.T)  # a bound on the wrong noise levels would still be a number
    _checks.positive_int("bits", bits)
    _checks.choice("decoder", decoder, DECODERS)
    levels = 2 ** bits - 1
    delta = 2.0 / levels
    xq = torch.round((x.clamp(-1, 1) + 1) / delta) * delta - 1
    if decoder == "gaussian":
        xq = xq + (torch.rand(x.shape, generator=generator, dtype=x.dtype) - 0.5) * delta
        shift = -x[0].numel() * math.log(delta)
    else:
        shift = 0.0
    parts = vlb_breakdown(model, xq, schedule, n_t=n_t, generator=generator, cond=cond, variance=variance,
                          decoder=decoder, levels=levels + 1, max_batch=max_batch)
    D = x[0].numel()
    scale = 1.0 / (D * math.log(2))
    bpd = (parts["total"] + shift) * scale
    per_t = None
    if parts["per_t"] is not None:
        per_t = parts["per_t"].mean(0) * scale
        per_t[0] += shift * scale
    return {"bpd": float(bpd.mean()), "bpd_std_err": float(bpd.std() / math.sqrt(max(1, bpd.numel() - 1))),
            "nats": parts["total"].float(), "prior_bpd": float(parts["prior"].mean() * scale),
            "diffusion_bpd": float(parts["diffusion"].mean() * scale),
            "decoder_bpd": float((parts["decoder"].mean() + shift) * scale), "per_t_bpd": per_t}


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
    _checks.number("data_range", data_range, low=0, low_open=True)
    vals = [peak_signal_noise_ratio(r, i, data_range=data_range) for i, r in zip(a, b)]
    return float(np.mean(vals)) if reduction == "mean" else vals


def ssim(x: torch.Tensor, ref: torch.Tensor, *, data_range: float = 2.0, reduction: str = "mean"):
    """Structural similarity (scikit-image, Wang et al. 2004), channels averaged; images in [-1, 1]."""
    from skimage.metrics import structural_similarity

    a, b = _to_numpy_images("x", x), _to_numpy_images("ref", ref)
    if a.shape != b.shape:
        raise ValueError(f"ref must have the same shape as x {a.shape}, got {b.shape}")
    _checks.choice("reduction", reduction, ("mean", "none"))
    _checks.number("data_range", data_range, low=0, low_open=True)
    win = min(7, a.shape[-1], a.shape[-2])
    win = win if win % 2 else win - 1
    vals = [structural_similarity(r, i, data_range=data_range, channel_axis=0, win_size=win) for i, r in zip(a, b)]
    return float(np.mean(vals)) if reduction == "mean" else vals


def consistency_psnr(operator, x: torch.Tensor, y: torch.Tensor, *, data_range: float = 2.0,
                     cap: float = 200.0, reduction: str = "batch"):
    """How well ``x`` explains ``y``: PSNR (dB) of A(x) against y, capped at ``cap`` (an exact fit would be
    infinite). Compute it on a sampler's raw output: clipping changes A(x).

    ``reduction="batch"`` (default): one number, from the mean squared error over
    the whole batch; ``"none"``: a list with one PSNR per item (its own mean
    squared error). A non-finite error (A(x) overflowed) gives NaN, never the cap.
    """
    from .operators import Operator

    if not isinstance(operator, Operator):
        raise TypeError(f"operator must be a ddlearn.operators.Operator, got {type(operator).__name__}")
    _checks.tensor("x", x)  # finite: a NaN reconstruction must not score the cap
    operator.check_y(y)
    _checks.number("data_range", data_range, low=0, low_open=True)
    _checks.number("cap", cap, low=0, low_open=True)
    _checks.choice("reduction", reduction, ("batch", "none"))
    with torch.no_grad():
        ax = operator(x)
    if ax.shape != y.shape:  # no broadcasting: one measurement per reconstruction
        raise ValueError(f"y must have the shape of operator(x) {tuple(ax.shape)} (x of shape {tuple(x.shape)}), "
                         f"got {tuple(y.shape)}")
    with torch.no_grad():
        if ax.is_complex() or y.is_complex():  # k-space (Chapter 09's MRI): mean of |A(x) - y|^2
            sq = (ax.to(torch.complex128) - y.to(torch.complex128)).abs().pow(2)
        else:
            sq = (ax.double() - y.double()).pow(2)
        mse = sq.mean().item() if reduction == "batch" else sq.reshape(len(sq), -1).mean(1).tolist()

    def to_db(m):
        if not math.isfinite(m):
            return float("nan")
        return min(cap, 10 * math.log10(data_range ** 2 / m)) if m > 0 else cap

    return to_db(mse) if reduction == "batch" else [to_db(m) for m in mse]


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
