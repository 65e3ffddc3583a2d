r"""Measuring generated sprite clips against the truth that made their conditioning frame (Chapter 08).

The clips come from :mod:`ddlearn.data.clips`, so for each one we know the
background, every sprite's colour, shape and start, and the commanded
motion. A clip generated from frame 0 is judged on

* **appearance**: PSNR / SSIM of its frame 0 against the conditioning image;
  the sprites' colour drift and texture drift across frames; background drift
  (how much the still background "boils");
* **motion**: a centroid tracker follows every sprite; its displacement
  (a least-squares line through the tracked centres, first to last frame) is
  compared with the commanded one, direction x speed x stride x (F-1); a clip's
  direction is *right* when every sprite moved within 45 degrees of the
  command and at least half its length; the share of frames where each sprite
  is *trackable*; the *length ratio*, how far along the commanded direction the
  sprites went as a share of the commanded length; whether its *shape is kept* (IoU of its mask with frame 0's,
  after aligning the centroids); still clips must stay still; bounces are
  scored by their distance to the reflected path;
* **noise frames**: a frame whose roughness (mean squared Laplacian,
  :func:`roughness`) exceeds 1.5 times the roughest real frame of the
  evaluated clips is colour noise, not a picture (:func:`noise_frames`);
  the share of such frames is the first thing to check of a sampler;
* **distribution**: a Frechet distance between features of a small clip
  classifier on generated and real held-out clips (:func:`frechet_clip_distance`,
  FVD's idea at this scale).

The held-out clips these figures are measured on, and a model animating them,
are in :mod:`ddlearn.video.evaluation`.

The tracker
    With ``b`` the true background and ``r_k`` sprite k's mean colour in the
    conditioning frame, a pixel ``p`` of a frame is explained as
    ``b + a (r_k - b)`` with ``a`` the least-squares coverage, clipped to
    [0, 1]; the pixel belongs to sprite k if k fits it best and the fit's
    residual is small. The coverage-weighted mean position is the centroid,
    the coverage the soft mask. A sprite is trackable in a frame when its
    mask's area is between 0.4 and 2.5 times its true area. On real clips
    the tracker is exact to about a tenth of a pixel (``tests/test_video_metrics.py``).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .. import _checks, metrics
from ..data import clips as _clips

RESIDUAL = 0.35           # a pixel's colour may miss the sprite/background fit by this much ([-1, 1] units, L2 over RGB)
AREA_RANGE = (0.4, 2.5)   # trackable: mask area / true area inside this range
ANGLE = 45.0              # direction right: within this many degrees of the command ...
MIN_LENGTH = 0.5          # ... and at least this share of the commanded length
STILL_PX = 1.0            # a still clip stays still: tracked displacement below this many pixels (at 16x16; scaled)
NOISE_FACTOR = 1.5        # a noise frame: rougher than this many times the roughest real frame


def roughness(clips) -> torch.Tensor:
    """Mean squared Laplacian of every frame of ``clips`` (B, C, F, H, W): (B, F).

    The 4-neighbour Laplacian with replicated borders, over pixels and channels. On real 16x16
    sprite clips it stays below 0.62 (1,000 held-out clips); i.i.d. colour noise in [-1, 1] is
    above 8.
    """
    _checks.tensor("clips", clips, ndim=5)
    B, C, Fr, H, W = clips.shape
    frames = clips.detach().float().transpose(1, 2).reshape(B * Fr, C, H, W)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).expand(C, 1, 3, 3)
    lap = torch.nn.functional.conv2d(torch.nn.functional.pad(frames, (1, 1, 1, 1), mode="replicate"), kernel,
                                     groups=C)
    return lap.pow(2).mean(dim=(1, 2, 3)).reshape(B, Fr)


def noise_frames(generated, real, *, factor: float = NOISE_FACTOR) -> torch.Tensor:
    """Which frames of ``generated`` (B, C, F, H, W) are noise: (B, F) booleans.

    A frame is noise when its :func:`roughness` exceeds ``factor`` times the largest roughness of
    any frame of ``real`` (real clips of the same size: the evaluated clips' truth).
    """
    _checks.tensor("generated", generated, ndim=5)
    _checks.tensor("real", real, ndim=5)
    _checks.number("factor", factor, low=1)
    if generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"real must be clips of generated's size {tuple(generated.shape[1:])}, "
                         f"got {tuple(real.shape[1:])}")
    return roughness(generated) > factor * roughness(real).max()


def _np(x):
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def sprite_colours(spec, image) -> np.ndarray:
    """Each sprite's mean colour ``(K, 3)`` in the conditioning image, over its fully covered pixels."""
    _, masks = _clips.render_clip(spec, return_masks=True)
    img = _np(image)
    out = []
    for k in range(len(spec.sprites)):
        m = masks[k, 0].numpy()
        # pixels this sprite covers fully and no later sprite covers
        vis = m * np.prod([1 - masks[j, 0].numpy() for j in range(k + 1, len(spec.sprites))], axis=0)
        sel = vis > 0.9 if (vis > 0.9).any() else vis > 0.5 * vis.max()
        out.append(img[:, sel].mean(1))
    return np.array(out).reshape(-1, 3)


def track(clip, spec, image=None) -> dict:
    """Track every sprite of ``spec`` through ``clip`` (3, F, H, W) in [-1, 1].

    ``image``: the conditioning frame the sprites' reference colours come from
    (default: the real frame 0 of ``spec``). Returns numpy arrays:
    ``centres`` (K, F, 2) (NaN where untrackable), ``masks`` (K, F, H, W) soft,
    ``area`` (K, F), ``true_area`` (K,), ``trackable`` (K, F) bool, ``colours``
    (K, F, 3) mean colour under each mask, ``texture`` (K, F) luminance std under it.
    """
    x = _np(clip)
    C, F, H, W = x.shape
    bg = _clips.render_background(spec.background, spec.size) * 2 - 1                # (3, H, W)
    if image is None:
        image = _clips.render_clip(spec)[:, 0]
    ref = sprite_colours(spec, image)                                                  # (K, 3)
    K = len(ref)
    _, true_masks = _clips.render_clip(spec, return_masks=True)
    true_area = true_masks[:, 0].sum((1, 2)).numpy()
    d = x - bg[:, None]                                                                 # (3, F, H, W)
    cover, resid = np.zeros((K, F, H, W)), np.zeros((K, F, H, W))
    for k in range(K):
        v = ref[k][:, None, None] - bg                                                  # (3, H, W)
        a = (d * v[:, None]).sum(0) / np.maximum((v * v).sum(0), 1e-6)[None]
        a = np.clip(a, 0, 1)
        cover[k] = a
        resid[k] = np.sqrt(((d - a[None] * v[:, None]) ** 2).sum(0))
    best = resid.argmin(0) if K else np.zeros((F, H, W), dtype=int)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    masks = np.zeros((K, F, H, W))
    centres = np.full((K, F, 2), np.nan)
    area = np.zeros((K, F))
    colours = np.full((K, F, 3), np.nan)
    texture = np.full((K, F), np.nan)
    lum = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    for k in range(K):
        m = cover[k] * (best == k) * (resid[k] < RESIDUAL)
        masks[k] = m
        area[k] = m.sum((1, 2))
        for f in range(F):
            if area[k, f] > 1e-6:
                centres[k, f] = ((m[f] * xs).sum() / area[k, f], (m[f] * ys).sum() / area[k, f])
                full = m[f] > 0.9
                if full.any():
                    colours[k, f] = x[:, f][:, full].mean(1)
                    texture[k, f] = lum[f][full].std()
    trackable = (area >= AREA_RANGE[0] * true_area[:, None]) & (area <= AREA_RANGE[1] * true_area[:, None])
    centres[~trackable] = np.nan
    return {"centres": centres, "masks": masks, "area": area, "true_area": true_area, "trackable": trackable,
            "colours": colours, "texture": texture, "reference": ref}


def fitted_displacement(centres: np.ndarray) -> np.ndarray:
    """First-to-last-frame displacement ``(..., 2)`` of a least-squares line through the trackable centres ``(..., F, 2)``.

    NaN where fewer than two frames are trackable.
    """
    c = np.asarray(centres, dtype=np.float64)
    F = c.shape[-2]
    f = np.arange(F, dtype=np.float64)
    ok = np.isfinite(c[..., 0])
    out = np.full(c.shape[:-2] + (2,), np.nan)
    for idx in np.ndindex(*c.shape[:-2]):
        sel = ok[idx]
        if sel.sum() >= 2:
            ff = f[sel]
            for j in range(2):
                slope = np.polyfit(ff, c[idx][sel, j], 1)[0]
                out[idx + (j,)] = slope * (F - 1)
    return out


def _soft_iou(a, b):
    return float(np.minimum(a, b).sum() / max(np.maximum(a, b).sum(), 1e-9))


def _shift(m, dx, dy):
    from scipy.ndimage import shift

    return shift(m, (dy, dx), order=1, mode="constant", cval=0.0)


def direction_right(d, D, *, angle: float = ANGLE, min_length: float = MIN_LENGTH) -> bool:
    """Is displacement ``d`` within ``angle`` degrees of the commanded ``D`` and at least ``min_length`` x its length?"""
    d, D = np.asarray(d, dtype=np.float64), np.asarray(D, dtype=np.float64)
    nD, nd = np.linalg.norm(D), np.linalg.norm(d)
    if not np.isfinite(d).all() or nD == 0 or nd == 0:
        return False
    cos = float(d @ D) / (nd * nD)
    return cos >= math.cos(math.radians(angle)) and nd >= min_length * nD


#: How far past [-1, 1] a generated clip may stray (the sampler's x0 is clamped, its last step may overshoot a
#: little); a clip in [0, 255] is a mistake, not a sample.
CLIP_RANGE_SLACK = 0.5


def check_spec_clip(clip: torch.Tensor, spec, image: torch.Tensor | None = None) -> None:
    """``clip`` (3, F, H, W) must be a clip of ``spec``: its frames, its size, values in [-1, 1] (a [0, 1] clip,
    told by a frame 0 closer to the image mapped to [0, 1] than to the image, is refused: its colours would be
    read as other colours)."""
    if not isinstance(spec, _clips.ClipSpec):
        raise TypeError(f"spec must be a ddlearn.data.clips.ClipSpec (clips(..., return_specs=True)['specs']), got "
                        f"{type(spec).__name__}")
    want = (3, spec.frames, spec.size, spec.size)
    if tuple(clip.shape) != want:
        raise ValueError(f"clip must have shape {want} (3, frames, size, size) to match its spec, got "
                         f"{tuple(clip.shape)}")
    if image is not None and tuple(image.shape) != want[:1] + want[2:]:
        raise ValueError(f"image must have shape {(3, spec.size, spec.size)}, got {tuple(image.shape)}")
    _checks.in_range("clip", clip, slack=CLIP_RANGE_SLACK)
    if clip.min() >= 0:  # all non-negative: a [0, 1] clip, or a bright one? frame 0 tells (it is the image)
        first = image if image is not None else _clips.render_clip(spec)[:, 0]
        as_is = float((clip[:, 0] - first).abs().mean())
        as_unit = float((clip[:, 0] - (first + 1) / 2).abs().mean())
        if as_unit < as_is:
            raise ValueError(f"clip must hold values in [-1, 1], got values from {float(clip.min()):g} to "
                             f"{float(clip.max()):g}, and its frame 0 matches the image mapped to [0, 1] "
                             f"(mean error {as_unit:.3f}) better than the image ({as_is:.3f}): pass 2 * clip - 1")


def clip_metrics(clip, spec, image=None) -> dict:
    """Every per-clip figure for one generated ``clip`` (3, F, H, W) of ``spec`` (see the module docstring).

    Figures that cannot be computed (an untrackable sprite) are NaN; :func:`summarize` skips them.
    """
    clip = _checks.as_tensor("clip", clip)
    _checks.tensor("clip", clip, ndim=4)
    image = None if image is None else _checks.tensor("image", _checks.as_tensor("image", image), ndim=3)
    check_spec_clip(clip, spec, image)
    with warnings.catch_warnings():  # means over untrackable (empty) frames are NaN by design
        warnings.simplefilter("ignore", RuntimeWarning)
        return _clip_metrics(clip, spec, image)


def _clip_metrics(clip, spec, image):
    real = _clips.render_clip(spec)
    image = real[:, 0] if image is None else image
    tr = track(clip, spec, image)
    F, size = spec.frames, spec.size
    scale = size / 16.0
    D = _clips.commanded_displacement(spec.prompt, spec.stride, size, F)
    d = fitted_displacement(tr["centres"])                                          # (K, 2)
    out = {"prompt": spec.prompt, "stride": spec.stride, "n_sprites": len(spec.sprites),
           "psnr0": metrics.psnr(torch.as_tensor(clip)[:, 0], torch.as_tensor(image)),
           "ssim0": metrics.ssim(torch.as_tensor(clip)[:, 0], torch.as_tensor(image)),
           "trackable": float(tr["trackable"].mean()) if tr["trackable"].size else float("nan"),
           "speed": float(np.nanmean(np.linalg.norm(d, axis=1))) / (F - 1) if len(d) else float("nan")}
    # appearance across frames: colour / texture against the conditioning image's sprite, background against it
    col = [np.nanmean(np.linalg.norm(tr["colours"][k, 1:] - tr["reference"][k], axis=1)) / 2 for k in range(len(d))]
    tex = [np.nanmean(np.abs(tr["texture"][k, 1:] - tr["texture"][k, :1])) / 2 for k in range(len(d))]
    out["colour_drift"] = float(np.nanmean(col)) if len(col) and np.isfinite(col).any() else float("nan")
    out["texture_drift"] = float(np.nanmean(tex)) if len(tex) and np.isfinite(tex).any() else float("nan")
    _, true_masks = _clips.render_clip(spec, return_masks=True)
    never = (true_masks.sum((0, 1)) < 1e-3).numpy() if len(true_masks) else np.ones((size, size), bool)
    gen = _np(clip)
    out["background_drift"] = float(np.abs(gen[:, 1:] - _np(image)[:, None])[:, :, never].mean() / 2)
    # shape kept: soft IoU of each frame's mask, moved back by the tracked shift, with frame 0's
    ious = []
    for k in range(len(d)):
        c = tr["centres"][k]
        if not np.isfinite(c[0]).all():
            continue
        for f in range(1, F):
            if np.isfinite(c[f]).all():
                back = _shift(tr["masks"][k, f], *(c[0] - c[f]))
                ious.append(_soft_iou(back, tr["masks"][k, 0]))
    out["iou"] = float(np.mean(ious)) if ious else float("nan")
    # motion
    if spec.prompt == "still":
        moved = np.linalg.norm(d, axis=1)
        out["still_kept"] = bool(len(d) and np.isfinite(moved).all() and (moved < STILL_PX * scale).all())
        out["displacement_error"] = float(np.nanmean(moved)) if len(d) else float("nan")
    elif spec.prompt == "bounce":
        true = spec.positions()                                                      # (K, F, 2)
        c = tr["centres"]
        rel = (c - c[:, :1]) - (true - true[:, :1])
        out["bounce_error"] = float(np.nanmean(np.linalg.norm(rel, axis=2))) if np.isfinite(rel).any() else float("nan")
        yy = c[..., 1]
        turned = []
        for k in range(len(d)):
            ok = np.isfinite(yy[k])
            if ok.sum() >= 3:
                low = int(np.nanargmax(yy[k]))
                turned.append(0 < low < F - 1 and yy[k, low] - yy[k, 0] > 0.5 * scale and yy[k, low] - yy[k, -1] > 0.5 * scale)
            else:
                turned.append(False)
        out["bounced"] = bool(turned and all(turned))
    else:
        rights = [direction_right(d[k], D) for k in range(len(d))]
        out["direction_right"] = bool(rights and all(rights))
        errs = np.linalg.norm(d - D[None], axis=1)
        out["displacement_error"] = float(np.nanmean(errs)) if np.isfinite(errs).any() else float(np.linalg.norm(D))
        out["commanded_length"] = float(np.linalg.norm(D))
        # how far along the command the sprites went, as a share of the commanded length (1: the commanded speed)
        along = d @ D / float(D @ D)
        out["length_ratio"] = float(np.nanmean(along)) if np.isfinite(along).any() else float("nan")
    return out


def summarize(rows: list[dict]) -> dict:
    """Means (and sds) of per-clip figures, by group: moving clips with one sprite / several, still, bounce."""
    def stat(vals):
        v = np.asarray([x for x in vals if x is not None and np.isfinite(x)], dtype=np.float64)
        return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)) if len(v) else (float("nan"), 0.0, 0)

    moving = [r for r in rows if "direction_right" in r]
    one = [r for r in moving if r["n_sprites"] == 1]
    multi = [r for r in moving if r["n_sprites"] > 1]
    out = {
        "direction_right_1": stat([float(r["direction_right"]) for r in one]),
        "direction_right_multi": stat([float(r["direction_right"]) for r in multi]),
        "displacement_error": stat([r["displacement_error"] for r in moving]),
        "displacement_error_1": stat([r["displacement_error"] for r in one]),
        "length_ratio_1": stat([r["length_ratio"] for r in one]),
        "static_copy_error": stat([r["commanded_length"] for r in moving]),
        "still_kept": stat([float(r["still_kept"]) for r in rows if "still_kept" in r]),
        "bounce_error": stat([r["bounce_error"] for r in rows if "bounce_error" in r]),
        "bounced": stat([float(r["bounced"]) for r in rows if "bounced" in r]),
    }
    for key in ("psnr0", "ssim0", "trackable", "iou", "colour_drift", "texture_drift", "background_drift",
                "noise_frames"):
        out[key] = stat([r[key] for r in rows])
    return out


def evaluate_clips(generated, specs, images=None, *, progress: bool = False) -> tuple[list, dict]:
    """Per-clip figures (:func:`clip_metrics`) of generated clips ``(B, 3, F, H, W)`` and their :func:`summarize`.

    Each row also has ``"noise_frames"``: the share of the clip's frames that :func:`noise_frames`
    flags against the real clips of ``specs``.
    """
    _checks.tensor("generated", generated, ndim=5)
    if len(specs) != generated.shape[0]:
        raise ValueError(f"specs must describe every clip ({generated.shape[0]}), got {len(specs)}")
    it = range(len(specs))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="metrics", leave=False)
    rows = [clip_metrics(generated[i], specs[i], None if images is None else images[i]) for i in it]
    generated = torch.as_tensor(generated)
    real = torch.stack([torch.as_tensor(_clips.render_clip(spec)) for spec in specs]).to(generated.dtype)
    for row, flags in zip(rows, noise_frames(generated, real)):
        row["noise_frames"] = float(flags.float().mean())
    return rows, summarize(rows)


# --------------------------------------------------------------------------- Frechet clip distance
def _clip_classifier(classifier=None):
    if classifier is not None:
        return classifier
    from .. import pretrained

    return pretrained.load("clip_classifier").model


@torch.no_grad()
def clip_features(x: torch.Tensor, classifier=None, *, batch: int = 256) -> torch.Tensor:
    """Penultimate features of the clip classifier for clips ``(B, 3, F, S, S)`` in [-1, 1].

    The classifier was trained at 16x16; larger clips are area-averaged down to 16x16 first
    (the sprites' sizes and speeds scale with the frame, so a shrunk 32x32 clip looks like a 16x16 one).
    """
    _checks.tensor("x", x, ndim=5)
    clf = _clip_classifier(classifier)
    if x.shape[-1] != 16:
        if x.shape[-1] % 16 or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"x must hold square clips whose side is a multiple of 16, got shape {tuple(x.shape)}")
        k = x.shape[-1] // 16
        x = torch.nn.functional.avg_pool3d(x, (1, k, k))
    return torch.cat([clf.features(x[i:i + batch].float()) for i in range(0, x.shape[0], batch)]).double()


def frechet_clip_distance(x: torch.Tensor, y: torch.Tensor, *, classifier=None) -> float:
    """Frechet distance between clip sets ``x`` and ``y`` in the clip classifier's feature space (FVD's idea).

    Biased upwards for small sets, like FID: compare numbers computed with the same set sizes.
    """
    for name, v in (("x", x), ("y", y)):
        _checks.tensor(name, v, ndim=5)
        if v.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 clips to fit a covariance, got {v.shape[0]}")
    clf = _clip_classifier(classifier)
    fx, fy = clip_features(x, clf).numpy(), clip_features(y, clf).numpy()
    return metrics.frechet_distance(fx.mean(0), np.cov(fx, rowvar=False), fy.mean(0), np.cov(fy, rowvar=False))
