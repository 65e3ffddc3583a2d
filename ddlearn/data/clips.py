r"""Generated clips of moving sprites, ``(B, 3, F, H, W)`` in [-1, 1] (Chapter 08).

Each clip shows one to three sprites (a shape, a saturated colour, a mild
texture that moves with it) on a dim textured background that stays still.
Every sprite follows the clip's **motion prompt** at a speed set by the
**frame stride** ``s``:

.. math:: p(f) = \operatorname{reflect}\big(p(0) + f\,s\,v\,d\big), \qquad f = 0, \dots, F-1,

with ``d`` the prompt's unit direction (``"up-left"`` is :math:`(-1, -1)/\sqrt2`),
``v = size / 40`` pixels per frame at stride 1 (0.4 px at 16x16, 0.8 px at
32x32), and :func:`reflect` folding a coordinate back into the range the
sprite's centre may take (an elastic bounce off the walls). For the
straight-line prompts the start is drawn so that no wall is reached
(the reflection is the identity); ``"bounce"`` moves down and starts close
enough to the floor that it bounces between frames 2 and F-3 (down, then up);
``"still"`` does not move.
The frame stride plays the role of DynamiCrafter's frame stride / fps
condition: the same motion sampled from the underlying video every ``s``-th frame.

Coordinates are ``(x, y)`` in pixels, x to the right, y down; pixel (i, j)
covers ``[j, j+1) x [i, i+1)``. Shapes are drawn from signed distance
functions with a one-pixel linear ramp at the edge (anti-aliased), so
sub-pixel positions render faithfully and a symmetric sprite's intensity
centroid is its position.

Held out (the ``"test"`` split; never in ``"train"``): the sprite shapes
:data:`HELDOUT_SHAPES`, sprite hues in :data:`HELDOUT_HUES` and the background
textures :data:`HELDOUT_BACKGROUNDS`. Every test clip has a held-out
background and every test sprite a held-out shape, a held-out colour or both.

Prompts are also token sequences (:func:`encode_prompt`): words
:data:`WORDS` are ids 1..6, 0 is padding, and the all-padding sequence is
the empty ("null") prompt that classifier-free guidance drops to.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import _checks

FRAMES = 8
SIZES = (16, 32)
STRIDES = (1, 2, 3, 4)
PROMPTS = ("still", "left", "right", "up", "down", "up-left", "up-right", "down-left", "down-right", "bounce")
MOVING = tuple(p for p in PROMPTS if p != "still")
WORDS = ("still", "left", "right", "up", "down", "bounce")   # token ids 1..6; 0 is padding / the null prompt
PROMPT_LEN = 2
TRAIN_SHAPES = ("circle", "square", "triangle", "diamond")
HELDOUT_SHAPES = ("plus", "ring")
SHAPES = TRAIN_SHAPES + HELDOUT_SHAPES
TEXTURES = ("flat", "stripes", "checker", "spot")
TRAIN_BACKGROUNDS = ("gradient", "stripes", "checker", "blobs")
HELDOUT_BACKGROUNDS = ("waves", "dots")
BACKGROUNDS = TRAIN_BACKGROUNDS + HELDOUT_BACKGROUNDS
HELDOUT_HUES = (0.42, 0.58)    # sprite hues (HSV, in [0, 1)) inside this band: held out (cyan-teal)
HELDOUT_OFFSET = 10_000        # the test split's seeds are the caller's seed + this
SPLITS = ("train", "test")
MIN_HUE_GAP = 0.12             # sprites of one clip differ in hue by at least this (the tracker tells them apart)


# --------------------------------------------------------------------------- motion (closed forms)
def speed(size: int) -> float:
    """Pixels per frame at frame stride 1: ``size / 40``."""
    return size / 40.0


def direction(prompt: str) -> tuple[float, float]:
    """The prompt's unit direction ``(dx, dy)`` (y down); ``"bounce"`` starts downwards, ``"still"`` is (0, 0)."""
    _checks.choice("prompt", prompt, PROMPTS)
    if prompt == "still":
        return (0.0, 0.0)
    if prompt == "bounce":
        return (0.0, 1.0)
    dx = dy = 0.0
    for word in prompt.split("-"):
        dx += {"left": -1.0, "right": 1.0}.get(word, 0.0)
        dy += {"up": -1.0, "down": 1.0}.get(word, 0.0)
    n = math.hypot(dx, dy)
    return (dx / n, dy / n)


def reflect(p, lo, hi):
    r"""Fold ``p`` into ``[lo, hi]`` as an elastic bounce between two walls (a triangle wave).

    With :math:`L = hi - lo` and :math:`u = (p - lo) \bmod 2L`: :math:`lo + u` if
    :math:`u \le L`, else :math:`lo + 2L - u`. Works on numbers and arrays.
    """
    p, lo, hi = np.asarray(p, dtype=np.float64), np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    L = hi - lo
    u = np.mod(p - lo, 2 * L)
    return lo + np.where(u <= L, u, 2 * L - u)


def trajectory(prompt: str, start, stride: int, size: int, radius: float, frames: int = FRAMES) -> np.ndarray:
    """Centre positions ``(frames, 2)`` of a sprite of ``radius`` starting at ``start`` = (x, y)."""
    _checks.positive_int("stride", stride)
    _checks.positive_int("frames", frames)
    d = np.asarray(direction(prompt))
    f = np.arange(frames, dtype=np.float64)[:, None]
    free = np.asarray(start, dtype=np.float64)[None, :] + f * stride * speed(size) * d[None, :]
    return reflect(free, radius, size - radius)


def commanded_displacement(prompt: str, stride: int, size: int, frames: int = FRAMES) -> np.ndarray:
    """The straight-line displacement ``(dx, dy)`` from the first to the last frame: direction x speed x stride x (F-1)."""
    return np.asarray(direction(prompt)) * speed(size) * stride * (frames - 1)


# --------------------------------------------------------------------------- prompts as tokens
def encode_prompt(prompt) -> torch.Tensor:
    """Token ids ``(PROMPT_LEN,)`` of one prompt, or ``(B, PROMPT_LEN)`` of a list of prompts.

    ``""`` (or ``None``) is the empty prompt, all padding. An unknown prompt is a ValueError.
    """
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise ValueError("prompt list is empty")
        return torch.stack([encode_prompt(p) for p in prompt])
    if prompt is None or prompt == "":
        return torch.zeros(PROMPT_LEN, dtype=torch.long)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string such as 'up-left' (or a list of them), got {type(prompt).__name__}")
    if prompt not in PROMPTS:
        raise ValueError(f"unknown prompt {prompt!r}; choose one of {', '.join(repr(p) for p in PROMPTS)}")
    ids = [WORDS.index(w) + 1 for w in prompt.split("-")]
    return torch.tensor(ids + [0] * (PROMPT_LEN - len(ids)), dtype=torch.long)


def decode_prompt(ids) -> str:
    """The prompt string of token ids ``(PROMPT_LEN,)`` ("" for the empty prompt)."""
    ids = torch.as_tensor(ids).reshape(-1).tolist()
    return "-".join(WORDS[i - 1] for i in ids if i > 0)


# --------------------------------------------------------------------------- clip descriptions
@dataclass
class Sprite:
    shape: str
    colour: tuple          # RGB in [0, 1]
    hue: float
    texture: str
    radius: float          # pixels
    angle: float           # texture orientation (radians)
    start: tuple           # (x, y) centre at frame 0, pixels


@dataclass
class ClipSpec:
    """Everything that determines one clip: :func:`render` draws it, the metrics read its truth."""

    prompt: str
    stride: int
    size: int
    background: dict
    sprites: list = field(default_factory=list)
    frames: int = FRAMES

    def positions(self) -> np.ndarray:
        """Centre of every sprite in every frame, ``(K, F, 2)``."""
        return np.stack([trajectory(self.prompt, s.start, self.stride, self.size, s.radius, self.frames)
                         for s in self.sprites])


def _hsv(h, s, v):
    return tuple(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _in_band(h):
    return HELDOUT_HUES[0] <= h % 1.0 < HELDOUT_HUES[1]


def _hue_gap(a, b):
    d = abs(a - b) % 1.0
    return min(d, 1 - d)


def _sample_hue(rng, heldout: bool):
    lo, hi = HELDOUT_HUES
    if heldout:
        return rng.uniform(lo, hi)
    h = rng.uniform(0, 1 - (hi - lo))   # the complement of the band, then shifted past it
    return h if h < lo else h + (hi - lo)


def _start_box(prompt, stride, size, radius, frames):
    """The box of start positions from which the straight path stays inside the frame (bounce: bounces in the clip)."""
    lo, hi = radius, size - radius
    travel = commanded_displacement(prompt, stride, size, frames)
    box = [[lo - min(0.0, travel[0]), hi - max(0.0, travel[0])], [lo - min(0.0, travel[1]), hi - max(0.0, travel[1])]]
    if prompt == "bounce":  # hit the floor between frames 2 and F-3: down, then visibly up again
        step = speed(size) * stride
        box[1] = [max(lo, hi - (frames - 3) * step), max(lo, hi - 2 * step)]
    return box


def _sample_background(rng, size, heldout: bool):
    kind = rng.choice(HELDOUT_BACKGROUNDS if heldout else TRAIN_BACKGROUNDS)
    h1 = rng.uniform()
    h2 = (h1 + rng.uniform(-0.15, 0.15)) % 1.0
    v1 = rng.uniform(0.12, 0.42)
    v2 = np.clip(v1 + rng.choice([-1, 1]) * rng.uniform(0.05, 0.12), 0.05, 0.5)
    s1, s2 = rng.uniform(0.0, 0.35), rng.uniform(0.0, 0.35)
    u = size / 16.0
    bg = {"kind": str(kind), "c1": _hsv(h1, s1, v1), "c2": _hsv(h2, s2, v2), "angle": rng.uniform(0, np.pi),
          "period": rng.uniform(3.0, 6.0) * u, "offset": rng.uniform(0, 8) * u,
          "centre": tuple(rng.uniform(0, size, 2)),
          "blobs": [(*rng.uniform(0, size, 2), rng.uniform(2.0, 5.0) * u, rng.uniform(-1, 1)) for _ in range(4)]}
    return bg


def _sample_sprite_look(rng, heldout: bool, taken_hues, size):
    """Shape, hue, texture, radius of one sprite; ``heldout``: novel in shape, colour or both."""
    if heldout:
        novelty = rng.choice(["shape", "colour", "both"])
        if any(_in_band(h) for h in taken_hues) and novelty != "shape":
            novelty = "shape"  # at most one held-out hue per clip (the band is narrow)
        shape = rng.choice(HELDOUT_SHAPES) if novelty in ("shape", "both") else rng.choice(TRAIN_SHAPES)
        hue_heldout = novelty in ("colour", "both")
    else:
        shape, hue_heldout = rng.choice(TRAIN_SHAPES), False
    for _ in range(100):
        hue = _sample_hue(rng, hue_heldout)
        if all(_hue_gap(hue, h) >= MIN_HUE_GAP for h in taken_hues):
            break
    else:
        return None
    colour = _hsv(hue, rng.uniform(0.55, 1.0), rng.uniform(0.75, 1.0))
    radius = rng.uniform(1.8, 2.4) * size / 16.0
    return dict(shape=str(shape), colour=colour, hue=float(hue), texture=str(rng.choice(TEXTURES)),
                radius=float(radius), angle=float(rng.uniform(0, np.pi)))


def _collide(spec_prompt, stride, size, frames, placed, cand):
    """True if sprite ``cand`` comes closer than touching (+0.5 px) to a placed sprite in any frame."""
    if not placed:
        return False
    if spec_prompt != "bounce":  # every sprite moves by the same shift: frame 0 decides
        return any(math.dist(cand["start"], s.start) < cand["radius"] + s.radius + 0.5 for s in placed)
    pc = trajectory(spec_prompt, cand["start"], stride, size, cand["radius"], frames)
    for s in placed:
        ps = trajectory(spec_prompt, s.start, stride, size, s.radius, frames)
        if (np.linalg.norm(pc - ps, axis=1) < cand["radius"] + s.radius + 0.5).any():
            return True
    return False


def sample_specs(n: int, *, size: int = 16, split: str = "train", seed: int = 0, n_sprites=None,
                 prompts=None, strides=None, frames: int = FRAMES) -> list:
    """``n`` random :class:`ClipSpec` s (deterministic in ``seed`` and ``split``).

    ``n_sprites``: an int (1-3) for every clip, or None for 1 (half the clips),
    2 or 3 (a quarter each). A sprite that cannot be placed without touching
    another (after 60 tries) is left out, so a clip may hold fewer. ``prompts``
    / ``strides``: the choices drawn from (default: all, uniformly); a single
    string / int fixes it.
    """
    _checks.positive_int("n", n)
    _checks.choice("size", size, SIZES)
    _checks.choice("split", split, SPLITS)
    _checks.positive_int("frames", frames, minimum=2)
    _checks.seed("seed", seed)
    _checks.not_empty("prompts", prompts, what="PROMPTS")
    _checks.not_empty("strides", strides, what="STRIDES")
    prompts = (prompts,) if isinstance(prompts, str) else tuple(PROMPTS if prompts is None else prompts)
    strides = (strides,) if isinstance(strides, int) else tuple(STRIDES if strides is None else strides)
    for p in prompts:
        _checks.choice("prompt", p, PROMPTS)
    for s in strides:
        _checks.positive_int("stride", s)
        if s > max(STRIDES):
            raise ValueError(f"stride must be at most {max(STRIDES)} (faster sprites leave the frame), got {s}")
    if n_sprites is not None:
        _checks.positive_int("n_sprites", n_sprites)
        if n_sprites > 3:
            raise ValueError(f"n_sprites must be 1, 2 or 3, got {n_sprites}")
    heldout = split == "test"
    rng = np.random.default_rng(seed + (HELDOUT_OFFSET if heldout else 0))
    specs = []
    for _ in range(n):
        prompt = str(rng.choice(prompts))
        stride = int(rng.choice(strides))
        k = n_sprites or int(rng.choice([1, 1, 2, 3]))
        spec = ClipSpec(prompt, stride, size, _sample_background(rng, size, heldout), frames=frames)
        for _ in range(k):
            look = _sample_sprite_look(rng, heldout, [s.hue for s in spec.sprites], size)
            if look is None:
                continue
            box = _start_box(prompt, stride, size, look["radius"], frames)
            for _ in range(60):
                look["start"] = (float(rng.uniform(*box[0])), float(rng.uniform(*box[1])))
                if not _collide(prompt, stride, size, frames, spec.sprites, look):
                    spec.sprites.append(Sprite(**look))
                    break
        specs.append(spec)
    return specs


# --------------------------------------------------------------------------- rendering (numpy: no thread start-up per tiny op)
def _sdf(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed distance (pixels, negative inside) of a shape of size ``r`` centred at the origin."""
    if shape == "circle":
        return np.sqrt(x * x + y * y) - r
    if shape == "square":
        return _box(x, y, 0.85 * r, 0.85 * r)
    if shape == "diamond":
        return (np.abs(x) + np.abs(y) - 1.2 * r) / math.sqrt(2)
    if shape == "triangle":  # pointing up (y down): three half-planes of an equilateral triangle
        h = math.sqrt(3) / 2
        return np.maximum(np.maximum(y, h * x - 0.5 * y), -h * x - 0.5 * y) - 0.6 * r
    if shape == "plus":
        w = 0.38 * r
        return np.minimum(_box(x, y, r, w), _box(x, y, w, r))
    if shape == "ring":
        return np.abs(np.sqrt(x * x + y * y) - 0.68 * r) - 0.36 * r
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


def _box(x, y, hx, hy):
    qx, qy = np.abs(x) - hx, np.abs(y) - hy
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0)


def coverage(shape: str, x, y, r: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1]: 1 inside, 0 outside, a one-pixel linear ramp across the edge."""
    return np.clip(0.5 - _sdf(shape, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), r), 0, 1)


def _grid(size):
    c = np.arange(size, dtype=np.float64) + 0.5
    return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))  # X, Y


def render_background(bg: dict, size: int) -> np.ndarray:
    """The background ``(3, size, size)`` in [0, 1] (numpy)."""
    X, Y = _grid(size)
    c1, c2 = np.asarray(bg["c1"], dtype=np.float64), np.asarray(bg["c2"], dtype=np.float64)
    a = bg["angle"]
    u = X * math.cos(a) + Y * math.sin(a)
    kind = bg["kind"]
    if kind == "gradient":
        w = (u - u.min()) / (u.max() - u.min())
    elif kind == "stripes":
        w = 0.5 + 0.5 * np.sin(2 * math.pi * u / bg["period"])
    elif kind == "checker":
        q = bg["period"]
        w = (np.floor((X + bg["offset"]) / q) + np.floor((Y + bg["offset"]) / q)) % 2
    elif kind == "blobs":
        w = np.zeros((size, size))
        for bx, by, s, amp in bg["blobs"]:
            w = w + amp * np.exp(-((X - bx) ** 2 + (Y - by) ** 2) / (2 * s * s))
        w = (w - w.min()) / max(float(w.max() - w.min()), 1e-8)
    elif kind == "waves":  # held out: concentric rings around a point
        cx, cy = bg["centre"]
        w = 0.5 + 0.5 * np.cos(2 * math.pi * np.sqrt((X - cx) ** 2 + (Y - cy) ** 2) / bg["period"])
    elif kind == "dots":  # held out: a lattice of soft dots
        q = bg["period"]
        dx = np.mod(X + bg["offset"], q) - q / 2
        dy = np.mod(Y + bg["offset"], q) - q / 2
        w = np.clip(0.5 + q / 5 - np.sqrt(dx * dx + dy * dy), 0, 1)
    else:
        raise ValueError(f"unknown background {kind!r}; choose one of {', '.join(BACKGROUNDS)}")
    return (1 - w)[None] * c1[:, None, None] + w[None] * c2[:, None, None]


def _texture(sprite: Sprite, lx: np.ndarray, ly: np.ndarray, size: int) -> np.ndarray:
    """Brightness factor of the sprite's texture in its own (moving) coordinates."""
    u = size / 16.0
    ca, sa = math.cos(sprite.angle), math.sin(sprite.angle)
    if sprite.texture == "flat":
        return np.ones_like(lx)
    if sprite.texture == "stripes":
        return 1 + 0.18 * np.sin(2 * math.pi * (lx * ca + ly * sa) / (2.5 * u))
    if sprite.texture == "checker":
        q = 1.5 * u
        return 1 + 0.15 * (2 * ((np.floor(lx / q) + np.floor(ly / q)) % 2) - 1)
    if sprite.texture == "spot":
        return 1.12 - 0.3 * np.minimum((lx * lx + ly * ly) / sprite.radius ** 2, 1)
    raise ValueError(f"unknown texture {sprite.texture!r}; choose one of {', '.join(TEXTURES)}")


def _render(spec: ClipSpec):
    size, F = spec.size, spec.frames
    X, Y = _grid(size)
    frame = np.repeat(render_background(spec.background, size)[:, None], F, axis=1)   # (3, F, H, W)
    masks = np.zeros((len(spec.sprites), F, size, size))
    if spec.sprites:
        for k, (s, p) in enumerate(zip(spec.sprites, spec.positions())):
            lx, ly = X[None] - p[:, 0, None, None], Y[None] - p[:, 1, None, None]   # (F, H, W), sprite frame
            alpha = coverage(s.shape, lx, ly, s.radius)
            look = np.clip(np.asarray(s.colour)[:, None, None, None] * _texture(s, lx, ly, size)[None], 0, 1)
            frame = (1 - alpha[None]) * frame + alpha[None] * look
            masks[k] = alpha
    return frame * 2 - 1, masks


def render_clip(spec: ClipSpec, *, return_masks: bool = False):
    """One clip ``(3, F, H, W)`` in [-1, 1]; with ``return_masks`` also each sprite's coverage ``(K, F, H, W)``.

    Sprites are drawn in order (later ones on top) with alpha = coverage.
    """
    clip, masks = _render(spec)
    clip = torch.from_numpy(clip).float()
    return (clip, torch.from_numpy(masks).float()) if return_masks else clip


def render(specs) -> torch.Tensor:
    """Clips ``(B, 3, F, H, W)`` in [-1, 1] of a list of :class:`ClipSpec`."""
    if isinstance(specs, ClipSpec):
        specs = [specs]
    return torch.from_numpy(np.stack([_render(s)[0] for s in specs]).astype(np.float32))


def clips(n: int = 1000, *, size: int = 16, split: str = "train", seed: int = 0, n_sprites=None,
          prompts=None, strides=None, return_specs: bool = False) -> dict:
    """``n`` generated clips as a dict of tensors.

    ``"x"``: clips ``(n, 3, F, size, size)`` in [-1, 1]; ``"prompt"``: token ids
    ``(n, PROMPT_LEN)``; ``"stride"``: ``(n,)``; ``"y"``: the prompt's index in
    :data:`PROMPTS` (labels for the clip classifier); ``"n_sprites"``: ``(n,)``.
    ``return_specs``: also ``"specs"``, the :class:`ClipSpec` list (ground truth
    for the metrics). Arguments as :func:`sample_specs`.
    """
    _checks.boolean("return_specs", return_specs)
    specs = sample_specs(n, size=size, split=split, seed=seed, n_sprites=n_sprites, prompts=prompts,
                         strides=strides)
    out = {"x": render(specs),
           "prompt": encode_prompt([s.prompt for s in specs]),
           "stride": torch.tensor([s.stride for s in specs], dtype=torch.long),
           "y": torch.tensor([PROMPTS.index(s.prompt) for s in specs], dtype=torch.long),
           "n_sprites": torch.tensor([len(s.sprites) for s in specs], dtype=torch.long)}
    if return_specs:
        out["specs"] = specs
    return out


def check_clip(name: str, x, *, channels: int = 3, frames: int = FRAMES, size: int | None = None) -> torch.Tensor:
    """Check a clip tensor ``(B, C, F, H, W)``: a ValueError naming what is wrong (frames, size, channels)."""
    _checks.tensor(name, x, ndim=5)
    B, C, F, H, W = x.shape
    if C != channels:
        raise ValueError(f"{name} must have {channels} channels (dim 1 of (B, C, F, H, W)), got shape {tuple(x.shape)}")
    if F != frames:
        raise ValueError(f"{name} must have {frames} frames (dim 2 of (B, C, F, H, W)), got shape {tuple(x.shape)}")
    if H != W or (size is not None and H != size):
        want = f"{size}x{size}" if size is not None else "square"
        raise ValueError(f"{name} must have {want} frames (dims 3-4 of (B, C, F, H, W)), got shape {tuple(x.shape)}")
    return x
