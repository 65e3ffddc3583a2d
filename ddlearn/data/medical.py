r"""Medical images, all offline: random-ellipse phantoms, lesions for anomaly detection, real DICOM slices.

**Phantoms** (Shepp & Logan 1974, randomised). A phantom is a "head": a bright
rim (skull) around soft tissue, a few medium ellipses of other tissue classes
(ventricles, grey matter) and some small, low-contrast ellipses. Intensities
are attenuation-like values :math:`\mu \in [0, 1]` (air 0, soft tissue
0.15-0.3, skull 0.8-1), stored as images :math:`x = 2\mu - 1` in [-1, 1]
(``(N, 1, S, S)``, S = 64 or 128), as every image in the book. Everything
lies inside the inscribed circle of the square, the field of view of the CT
operator (:class:`ddlearn.operators.medical.Radon`).

Each phantom is drawn from its own random stream ``(seed, split, index)``,
so phantom ``i`` of a split is the same whatever ``n`` asks for, and the
splits never share one:

* ``"train"``  what priors are trained on;
* ``"val"``    the validation split on which the chapter's defaults (steps,
  data-consistency weight, t0, samples averaged) are chosen;
* ``"test"``   the held-out evaluation set (benchmarks report on it only).

scikit-image's :func:`shepp_logan_phantom` (:func:`shepp_logan`) is a test
image no prior saw.

**Lesions** (:func:`lesions`): held-out phantoms with irregular blobs
inserted in the soft tissue (varied size and contrast, brighter or darker),
with the ground-truth mask, for anomaly detection (Chapter 09, case 3). A
healthy phantom never has them: its small features are regular ellipses of
low contrast.

**DICOM** (:func:`read_dicom`): pydicom's bundled test files ``CT_small.dcm``
(a 128x128 CT slice) and ``MR_small.dcm`` (a 64x64 MR slice), found through
``pydicom.data.get_testdata_file(name, download=False)`` (never a download),
or any DICOM path. :func:`to_hu` applies the file's own RescaleSlope and
RescaleIntercept (Hounsfield units for CT), :func:`window` maps a window
(:data:`WINDOWS`: soft tissue, lung, bone) to [0, 1], :func:`metadata` lists
the tags a reader wants to see. Teaching data, not clinical data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from struct import error as struct_error

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks

SIZES = (64, 128)
SPLITS = ("train", "val", "test")
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}
#: default number of phantoms per split and size (train: enough for a small prior; val/test: fixed sets)
DEFAULT_N = {("train", 64): 6000, ("train", 128): 2500, ("val", 64): 64, ("val", 128): 32,
             ("test", 64): 64, ("test", 128): 32}


# --------------------------------------------------------------------------- ellipses
@dataclass(frozen=True)
class Ellipse:
    """An ellipse in normalised coordinates (the image spans [-1, 1]^2, y down): centre, semi-axes,
    rotation (radians), and how it paints: ``mode`` "set" replaces the value, "add" adds to it."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float
    value: float
    mode: str = "set"

    def quad(self, X, Y):
        """The ellipse's quadratic form at points (X, Y): < 1 inside."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = (X - self.cx) * c + (Y - self.cy) * s, -(X - self.cx) * s + (Y - self.cy) * c
        return (u / self.a) ** 2 + (v / self.b) ** 2

    def boundary(self, n: int = 24):
        th = np.linspace(0, 2 * np.pi, n, endpoint=False)
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = self.a * np.cos(th), self.b * np.sin(th)
        return self.cx + u * c - v * s, self.cy + u * s + v * c

    def inside(self, other: "Ellipse", margin: float = 1.0) -> bool:
        """Whether this ellipse lies inside ``other`` (boundary points within ``margin`` of its form)."""
        X, Y = self.boundary()
        return bool(np.all(other.quad(X, Y) < margin))

    def extent(self) -> float:
        return math.hypot(self.cx, self.cy) + max(self.a, self.b)


def render(ellipses: list[Ellipse], size: int, *, supersample: int | None = None) -> np.ndarray:
    """Paint ``ellipses`` in order on a ``size`` x ``size`` grid of zeros; anti-aliased by averaging
    ``supersample`` x ``supersample`` points per pixel (default: enough for 256 points across)."""
    s = supersample or max(2, 256 // size)
    n = size * s
    grid = (np.arange(n) + 0.5) / n * 2 - 1  # point centres in [-1, 1]
    img = np.zeros((n, n))
    for e in ellipses:
        r = max(e.a, e.b)
        lo = lambda c: max(0, int(math.floor((c - r + 1) / 2 * n)) - 1)  # noqa: E731  bounding box only
        hi = lambda c: min(n, int(math.ceil((c + r + 1) / 2 * n)) + 1)  # noqa: E731
        r0, r1, c0, c1 = lo(e.cy), hi(e.cy), lo(e.cx), hi(e.cx)
        if r0 >= r1 or c0 >= c1:
            continue
        Y, X = np.meshgrid(grid[r0:r1], grid[c0:c1], indexing="ij")
        inside = e.quad(X, Y) < 1
        patch = img[r0:r1, c0:c1]
        if e.mode == "set":
            patch[inside] = e.value
        else:
            patch[inside] += e.value
    return img.reshape(size, s, size, s).mean(axis=(1, 3))


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _SPLIT_ID[split], int(index)])


def _inner_ellipse(rng, outer: Ellipse, a_range, b_range, value, mode="set", tries: int = 50):
    """A random ellipse inside ``outer`` (rejection sampling of centre and size)."""
    for _ in range(tries):
        a, b = rng.uniform(*a_range), rng.uniform(*b_range)
        r = rng.uniform(0, 1) ** 0.5
        th = rng.uniform(0, 2 * np.pi)
        # a point inside outer: scale its axes by r
        c, s = math.cos(outer.angle), math.sin(outer.angle)
        u, v = r * outer.a * math.cos(th), r * outer.b * math.sin(th)
        e = Ellipse(outer.cx + u * c - v * s, outer.cy + u * s + v * c, a, b, rng.uniform(0, np.pi), value, mode)
        if e.inside(outer, margin=0.92):
            return e
    return None


def phantom_ellipses(rng: np.random.Generator) -> tuple[list[Ellipse], Ellipse]:
    """One random head phantom: its ellipses in painting order, and the soft-tissue (brain) ellipse."""
    a, b = rng.uniform(0.62, 0.8), rng.uniform(0.72, 0.88)
    ang = rng.uniform(-0.3, 0.3)
    cx, cy = rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)
    skull = Ellipse(cx, cy, a, b, ang, rng.uniform(0.8, 1.0))
    thick = rng.uniform(0.06, 0.11)
    tissue = rng.uniform(0.15, 0.3)
    brain = Ellipse(cx, cy, a - thick, b - thick * rng.uniform(0.8, 1.2), ang, tissue)
    out = [skull, brain]
    for _ in range(rng.integers(2, 5)):  # other tissue classes: ventricles (darker), grey matter (brighter)
        delta = rng.choice([-1, 1]) * rng.uniform(0.06, 0.18)
        e = _inner_ellipse(rng, brain, (0.08, 0.28), (0.04, 0.16), float(np.clip(tissue + delta, 0.02, 0.6)))
        if e is not None:
            out.append(e)
    for _ in range(rng.integers(3, 9)):  # small, low-contrast details
        e = _inner_ellipse(rng, brain, (0.02, 0.07), (0.02, 0.06),
                           float(rng.choice([-1, 1]) * rng.uniform(0.015, 0.05)), mode="add")
        if e is not None:
            out.append(e)
    return out, brain


def _check_size(size):
    _checks.positive_int("size", size, minimum=8)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES} (the phantom sizes of Chapter 09), got {size}")
    return size


def _n(split, size, n):
    if n is None:
        return DEFAULT_N[(split, size)]
    return _checks.positive_int("n", n)


@lru_cache(maxsize=8)
def _phantoms_cached(split: str, size: int, n: int, seed: int) -> torch.Tensor:
    imgs = np.stack([render(phantom_ellipses(_rng(seed, split, i))[0], size) for i in range(n)])
    x = torch.from_numpy(np.clip(imgs, 0, 1).astype(np.float32)) * 2 - 1
    return x.unsqueeze(1).contiguous()


def phantoms(split: str = "train", size: int = 64, n: int | None = None, *, seed: int = 0) -> torch.Tensor:
    """``n`` random head phantoms ``(n, 1, size, size)`` in [-1, 1] from ``split`` ("train", "val", "test").

    Phantom ``i`` of a split depends only on ``(seed, split, i)``. ``n`` defaults to
    :data:`DEFAULT_N` (6000 train / 64 val / 64 test at 64x64; 2500 / 32 / 32 at 128x128).
    """
    _checks.choice("split", split, SPLITS)
    _check_size(size)
    n = _n(split, size, n)
    _checks.seed("seed", seed)
    return _phantoms_cached(split, size, n, seed).clone()


def shepp_logan(size: int = 64) -> torch.Tensor:
    """scikit-image's (modified) Shepp-Logan phantom, area-resized to ``(1, 1, size, size)`` in [-1, 1].

    No prior in the book was trained on it: a test image of the same family as the phantoms.
    """
    from skimage.data import shepp_logan_phantom

    _checks.positive_int("size", size, minimum=8)
    p = torch.from_numpy(shepp_logan_phantom().astype(np.float32))[None, None]
    p = F.interpolate(p, size=(size, size), mode="area")
    return (p.clamp(0, 1) * 2 - 1).contiguous()


def circle_mask(size: int) -> torch.Tensor:
    """``(size, size)`` boolean: the CT field of view, scikit-image's reconstruction circle
    (pixels within ``size // 2`` of pixel ``(size // 2, size // 2)``, as ``skimage.transform.radon`` defines it)."""
    _checks.positive_int("size", size)
    c = torch.arange(size) - size // 2
    return (c[:, None] ** 2 + c[None, :] ** 2) <= (size // 2) ** 2


# --------------------------------------------------------------------------- lesions
def _lesion(rng, brain: Ellipse, radius, contrast, bright_prob):
    """An irregular blob: 2-3 overlapping ellipses around one centre, one additive contrast."""
    r = rng.uniform(*radius)
    sign = 1.0 if rng.uniform() < bright_prob else -1.0
    c = sign * rng.uniform(*contrast)
    core = _inner_ellipse(rng, brain, (r, r), (0.6 * r, r), c, mode="add", tries=200)
    if core is None:
        return []
    parts = [core]
    for _ in range(rng.integers(1, 3)):
        off = rng.uniform(0.3, 0.8) * r
        th = rng.uniform(0, 2 * np.pi)
        e = Ellipse(core.cx + off * math.cos(th), core.cy + off * math.sin(th), rng.uniform(0.4, 0.8) * r,
                    rng.uniform(0.3, 0.6) * r, rng.uniform(0, np.pi), c, "add")
        if e.inside(brain, margin=0.92):
            parts.append(e)
    return parts


@lru_cache(maxsize=8)
def _lesions_cached(split, size, n, seed, radius, contrast, bright_prob):
    healthy, sick, masks = [], [], []
    for i in range(n):
        rng = _rng(seed, split, i)
        ells, brain = phantom_ellipses(rng)
        lrng = np.random.default_rng([int(seed), _SPLIT_ID[split], int(i), 7])  # its own stream
        parts = _lesion(lrng, brain, radius, contrast, bright_prob)
        h = render(ells, size)
        # the lesion replaces the tissue it covers by tissue + contrast: paint its support on the healthy image
        support = render([Ellipse(e.cx, e.cy, e.a, e.b, e.angle, 1.0) for e in parts], size) if parts else \
            np.zeros((size, size))
        support = np.clip(support, 0, 1)
        value = parts[0].value if parts else 0.0
        s = h + value * support
        healthy.append(h)
        sick.append(s)
        masks.append(support >= 0.5)
    to = lambda a: (torch.from_numpy(np.clip(np.stack(a), 0, 1).astype(np.float32)) * 2 - 1).unsqueeze(1)  # noqa: E731
    return to(healthy), to(sick), torch.from_numpy(np.stack(masks)).unsqueeze(1)


def lesions(split: str = "test", size: int = 64, n: int | None = None, *, seed: int = 0,
            radius=(0.05, 0.2), contrast=(0.1, 0.4), bright_prob: float = 0.7) -> dict:
    """Phantoms of ``split`` with one inserted lesion each, for anomaly detection.

    Returns ``{"x": with lesions, "healthy": the same phantoms without, "mask": (n, 1, S, S) bool}``.
    A lesion is an irregular blob (2-3 overlapping ellipses) inside the soft
    tissue, of radius ``radius`` (fraction of the half-width: 0.05-0.2 is
    1.6-6.4 pixels at 64x64) and additive contrast ``contrast`` in attenuation
    units (tissue is 0.15-0.3), brighter with probability ``bright_prob``.
    Never use the "train" split for evaluation: priors saw those phantoms.
    """
    _checks.choice("split", split, SPLITS)
    _check_size(size)
    n = _n(split, size, n)
    for name, rg in (("radius", radius), ("contrast", contrast)):
        if len(tuple(rg)) != 2 or not 0 < rg[0] <= rg[1]:
            raise ValueError(f"{name} must be a (low, high) pair with 0 < low <= high, got {rg}")
    _checks.number("bright_prob", bright_prob, low=0, high=1)
    h, s, m = _lesions_cached(split, size, n, int(seed), tuple(map(float, radius)), tuple(map(float, contrast)),
                              float(bright_prob))
    return {"x": s.clone(), "healthy": h.clone(), "mask": m.clone()}


# --------------------------------------------------------------------------- DICOM
#: Display windows (centre, width) in Hounsfield units, as radiology workstations name them.
WINDOWS = {"soft tissue": (40.0, 400.0), "lung": (-600.0, 1500.0), "bone": (400.0, 1800.0)}
#: pydicom's bundled test slices used in the book.
DICOM_FILES = ("CT_small.dcm", "MR_small.dcm")


def dicom_path(name: str = "CT_small.dcm") -> Path:
    """The local path of one of pydicom's bundled test files (``download=False``: never fetched)."""
    from pydicom.data import get_testdata_file

    if not isinstance(name, str):
        raise TypeError(f"name must be a file name such as 'CT_small.dcm', got {type(name).__name__}")
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(f"{name!r} is not among pydicom's bundled test files (nothing is downloaded); "
                                f"the book uses {', '.join(DICOM_FILES)}")
    return Path(path)


def read_dicom(source="CT_small.dcm"):
    """Read a DICOM data set: a bundled test file's name, a path, or a ``pydicom.Dataset``.

    A file that is not DICOM, or one without pixel data, is a ``ValueError`` saying which.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    if isinstance(source, pydicom.Dataset):
        ds = source
    else:
        if not isinstance(source, (str, Path)):
            raise TypeError(f"source must be a file name, a path or a pydicom.Dataset, got {type(source).__name__}")
        path = Path(source)
        if not path.exists():
            if isinstance(source, str) and "/" not in source and source.lower().endswith(".dcm"):
                path = dicom_path(source)
            else:
                raise FileNotFoundError(f"no DICOM file at {path}")
        if path.is_dir():
            raise ValueError(f"source {str(path)!r} is a folder; give one DICOM file (a slice) in it")
        try:
            ds = pydicom.dcmread(str(path))
        except InvalidDicomError as err:
            raise ValueError(f"{path} is not a DICOM file (no 'DICM' preamble and no DICOM header: {err})") from err
        except (OSError, EOFError, struct_error) as err:
            raise ValueError(f"source {str(path)!r} could not be read as DICOM (truncated or damaged? {err})") from err
    if "PixelData" not in ds:
        raise ValueError("the DICOM data set has no pixel data (tag (7FE0,0010) PixelData is missing): "
                         "nothing to display or reconstruct (a truncated file loses it first)")
    try:  # a truncated file keeps its header but not all its pixels: found now, not in a later figure
        ds.pixel_array
    except Exception as err:  # pydicom's decoders raise ValueError, AttributeError, RuntimeError...
        raise ValueError(f"source: the DICOM pixel data cannot be decoded (truncated or damaged? {err})") from err
    return ds


def to_hu(source="CT_small.dcm") -> np.ndarray:
    """The slice's stored values rescaled with its own tags: ``pixel * RescaleSlope + RescaleIntercept``.

    For CT this is Hounsfield units (air -1000, water 0, bone several hundred
    and up). A file without the tags (most MR) keeps its stored values
    (slope 1, intercept 0: MR intensities have no physical unit). float64 (H, W).
    """
    ds = read_dicom(source)
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    return ds.pixel_array.astype(np.float64) * slope + intercept


def window(values, center: float | str = "soft tissue", width: float | None = None) -> np.ndarray:
    """Map ``[center - width/2, center + width/2]`` linearly to [0, 1], clipping outside (a display window).

    ``center`` may name one of :data:`WINDOWS` ("soft tissue", "lung", "bone").
    """
    if isinstance(center, str):
        _checks.choice("window", center, tuple(WINDOWS))
        center, width = WINDOWS[center]
    _checks.number("center", center)
    if width is None:
        raise ValueError("width must be given with a numeric center (or name a window: "
                         f"{', '.join(WINDOWS)})")
    _checks.number("width", width, low=0, low_open=True)
    v = np.asarray(values, dtype=np.float64)
    return np.clip((v - (center - width / 2)) / width, 0.0, 1.0)


def metadata(source="CT_small.dcm") -> dict:
    """The tags a reader looks at first (modality, size, spacing, rescale, scanner), as a plain dict."""
    ds = read_dicom(source)

    def get(tag, default=None):
        v = ds.get(tag, default)
        if v is None:
            return None
        if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
            return [float(u) for u in v]
        try:
            return float(v) if tag in ("RescaleSlope", "RescaleIntercept", "SliceThickness", "KVP") else str(v)
        except (TypeError, ValueError):
            return str(v)

    out = {"Modality": get("Modality"), "Rows": int(ds.Rows), "Columns": int(ds.Columns),
           "PixelSpacing (mm)": get("PixelSpacing"), "SliceThickness (mm)": get("SliceThickness"),
           "RescaleSlope": get("RescaleSlope"), "RescaleIntercept": get("RescaleIntercept"),
           "BitsStored": int(ds.get("BitsStored", 0)), "PhotometricInterpretation": get("PhotometricInterpretation"),
           "Manufacturer": get("Manufacturer"), "KVP": get("KVP"), "StudyDate": get("StudyDate")}
    return {k: v for k, v in out.items() if v is not None}


def ct_image(source="CT_small.dcm", size: int | None = None, *, low: float = -1000.0,
             high: float = 1000.0) -> torch.Tensor:
    """A CT slice as a book image ``(1, 1, S, S)`` in [-1, 1]: HU ``low`` -> -1, ``high`` -> 1 (clipped),
    outside the inscribed circle set to -1 (air: the CT field of view), area-resized to ``size``."""
    ds = read_dicom(source)
    modality = str(ds.get("Modality", ""))
    if modality != "CT":  # MR intensities have no unit: windowing them as Hounsfield units means nothing
        raise ValueError(f"source must be a CT slice (Modality 'CT') to be windowed in Hounsfield units, got "
                         f"Modality {modality!r}; to_hu() shows another modality's stored values")
    hu = to_hu(ds)
    if hu.ndim != 2 or hu.shape[0] != hu.shape[1]:
        raise ValueError(f"ct_image needs a square 2-D slice, got pixel array of shape {hu.shape}")
    _checks.number("low", low)
    _checks.number("high", high)
    if not high > low:
        raise ValueError(f"high must be above low, got low={low}, high={high}")
    x = torch.from_numpy(np.clip((hu - low) / (high - low), 0, 1).astype(np.float32))[None, None]
    if size is not None and size != x.shape[-1]:
        _checks.positive_int("size", size, minimum=8)
        x = F.interpolate(x, size=(size, size), mode="area")
    x = x * circle_mask(x.shape[-1]).to(x.dtype)
    return (x * 2 - 1).contiguous()


__all__ = ["SIZES", "SPLITS", "DEFAULT_N", "Ellipse", "render", "phantom_ellipses", "phantoms", "shepp_logan",
           "circle_mask", "lesions", "WINDOWS", "DICOM_FILES", "dicom_path", "read_dicom", "to_hu", "window",
           "metadata", "ct_image"]
