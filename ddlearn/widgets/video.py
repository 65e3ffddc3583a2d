r"""Showing clips (Chapter 08): filmstrips, animations that survive the HTML book, and the animation explorer.

* :func:`filmstrip` draws clips ``(B, 3, F, H, W)`` as rows of frames (one
  Matplotlib image), the picture that works everywhere;
* :func:`animation` turns clips into an animated PNG (APNG) shown as an
  ``image/png`` output: Jupyter, nbconvert's HTML book and code hosts all
  display a PNG with an ``<img>`` tag, and browsers play the APNG's frames
  (a viewer that does not animate shows the first frame);
* :func:`video_explorer` - pick a held-out image, a motion prompt, a frame
  stride and the two guidance scales (image, prompt); the clip is sampled
  (and cached) and shown as a large current frame above its filmstrip; scrub
  the frame slider or press Play. The static fallback shows a few prompts.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch

from .. import _checks, viz
from ..data import clips as _clips
from ..video import sampling as _sampling
from ..video.sampling import animate
from ._base import Explorer


def _rgb(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) in [0, 1]."""
    return ((frame.detach().cpu().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def strip_array(clips: torch.Tensor, pad: int = 1) -> np.ndarray:
    """Clips ``(B, 3, F, H, W)`` as one RGB array: a row per clip, a column per frame, white gaps."""
    _checks.tensor("clips", clips, ndim=5)
    B, _, F, H, W = clips.shape
    out = np.ones((B * (H + pad) - pad, F * (W + pad) - pad, 3))
    for b in range(B):
        for f in range(F):
            out[b * (H + pad):b * (H + pad) + H, f * (W + pad):f * (W + pad) + W] = _rgb(clips[b, :, f])
    return out


def filmstrip(clips: torch.Tensor, ax=None, *, labels=None, title: str | None = None, figsize=None):
    """Draw clips as rows of frames on ``ax`` (a new figure if None); ``labels``: one per row. Returns the AxesImage."""
    _checks.tensor("clips", clips, ndim=5)
    B, _, F, H, W = clips.shape
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize or (0.55 * F + (1.2 if labels else 0.2), 0.55 * B + 0.4),
                             layout="constrained")
    im = ax.imshow(strip_array(clips), interpolation="nearest")
    ax.set_xticks([(W + 1) * f + W / 2 - 0.5 for f in range(F)], [str(f) for f in range(F)], fontsize="x-small")
    if labels is not None:
        ax.set_yticks([(H + 1) * b + H / 2 - 0.5 for b in range(B)], list(labels), fontsize="x-small")
    else:
        ax.set_yticks([])
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize="small")
    return im


class Animation:
    """An animated PNG of clips; displays as ``image/png`` (see the module docstring). ``.data`` holds the bytes."""

    def __init__(self, data: bytes, n_frames: int):
        self.data, self.n_frames = data, n_frames

    def _repr_png_(self):
        return self.data

    def __repr__(self):
        return f"Animation({self.n_frames} frames, {len(self.data)} bytes of APNG)"


def animation(clips: torch.Tensor, *, scale: int = 4, ms_per_frame: int = 250, pad: int = 1) -> Animation:
    """Clips ``(B, 3, F, H, W)`` side by side as a looping animated PNG, each pixel ``scale`` x ``scale``."""
    from PIL import Image

    _checks.tensor("clips", clips, ndim=5)
    _checks.positive_int("scale", scale)
    _checks.positive_int("ms_per_frame", ms_per_frame)
    B, _, F, H, W = clips.shape
    frames = []
    for f in range(F):
        row = strip_array(clips[:, :, f:f + 1].transpose(0, 2), pad)   # (1, 3, B, H, W): the clips side by side
        img = (row * 255).round().astype(np.uint8).repeat(scale, 0).repeat(scale, 1)
        frames.append(Image.fromarray(img))
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return Animation(buf.getvalue(), F)


#: The parts of DynamiCrafter (Xing et al. 2023, the 512 training config of Doubiiu/DynamiCrafter) and of
#: ours: name -> (where in the diagram (x, y), DynamiCrafter's version, ours).
PARTS = {
    "conditioning image": ((0.3, 0.92), "a 320x512 frame; a random frame\nof the clip in training",
                           "a 16x16 (or 32x32) frame;\nframe 0 (measured choice)"),
    "prompt": ((0.62, 0.92), "a caption", "a motion prompt, 'up-left'"),
    "detail stream": ((0.12, 0.58), "its VAE latent (4x40x64)\nconcatenated to every frame",
                      "the frame itself\nconcatenated to every frame"),
    "image encoder": ((0.36, 0.75), "CLIP ViT-H/14, frozen:\n257 tokens", "3 convolutions, trained:\n16 tokens"),
    "query transformer": ((0.36, 0.58), "16 learned queries per frame,\n4 layers", "4 learned queries per frame,\n2 layers"),
    "prompt encoder": ((0.62, 0.75), "CLIP text encoder, frozen:\n77 tokens",
                       "word + position embeddings:\n2 tokens (+ their mean)"),
    "frame stride": ((0.88, 0.75), "fps / frame stride:\nsinusoid + MLP", "stride 1-4:\nsinusoid + MLP"),
    "time embedding": ((0.88, 0.58), "t + stride", "t + stride + prompt mean\n+ frame index"),
    "dual cross-attention": ((0.49, 0.41), "attn(text) + (1 + tanh a) attn(image)", "the same, a learned per layer"),
    "space-time UNet": ((0.5, 0.23), "3-D UNet, 320-1280 channels, spatial + temporal\ntransformers, 16 frames",
                        "32-64 channels: Ch. 02's ResBlocks + temporal conv\n+ temporal attention, 8 frames"),
    "output": ((0.5, 0.06), "v of the video latent -> VAE decoder;\nDDIM, image scale then text scale",
               "eps of the change z = x - c -> x = c + z;\nDDIM, image scale then prompt scale"),
}
_ARROWS = [("conditioning image", "detail stream"), ("conditioning image", "image encoder"),
           ("image encoder", "query transformer"), ("query transformer", "dual cross-attention"),
           ("prompt", "prompt encoder"), ("prompt encoder", "dual cross-attention"),
           ("prompt encoder", "time embedding"), ("frame stride", "time embedding"),
           ("detail stream", "space-time UNet"), ("dual cross-attention", "space-time UNet"),
           ("time embedding", "space-time UNet"), ("space-time UNet", "output")]


def architecture_figure(figsize=(12, 8.2)):
    """DynamiCrafter's architecture and ours in one diagram: each box holds a part, theirs above (blue), ours below (orange)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.0)
    ax.set_axis_off()
    w, h = 0.225, 0.115
    for name, ((x, y), theirs, ours) in PARTS.items():
        bw = 0.5 if name in ("space-time UNet", "output") else (0.3 if name == "dual cross-attention" else w)
        ax.add_patch(FancyBboxPatch((x - bw / 2, y - h / 2), bw, h, boxstyle="round,pad=0.005", fc="#f7f7f7",
                                    ec="#555", lw=0.8))
        ax.text(x, y + h / 2 - 0.012, name, ha="center", va="top", fontsize=8.5, weight="bold")
        ax.text(x, y + 0.012, theirs, ha="center", va="center", fontsize=7, color="#1f5fa8")
        ax.text(x, y - h / 2 + 0.008, ours, ha="center", va="bottom", fontsize=7, color="#c05a00")
    for a, b in _ARROWS:
        (xa, ya), (xb, yb) = PARTS[a][0], PARTS[b][0]
        ax.add_patch(FancyArrowPatch((xa, ya - h / 2), (xb, yb + h / 2), arrowstyle="-|>", mutation_scale=9,
                                     color="#777", lw=0.8, shrinkA=1, shrinkB=1))
    # the key sits bottom left, clear of every box (the output box spans x 0.25-0.75)
    ax.text(0.01, 0.10, "DynamiCrafter (Xing et al. 2023)", color="#1f5fa8", fontsize=9, va="top")
    ax.text(0.01, 0.075, "ours (ddlearn.nets.VideoUNet)", color="#c05a00", fontsize=9, va="top")
    ax.text(0.75, 0.41, "context stream: image tokens\nbeside the prompt tokens", fontsize=7, style="italic",
            color="#555", va="center")
    ax.text(0.02, 0.47, "detail stream:\npixel-exact appearance", fontsize=7, style="italic", color="#555")
    fig.tight_layout()
    return fig


class VideoExplorer(Explorer):
    """Image / prompt / stride / two guidance scales -> a sampled clip, scrubbed frame by frame."""

    def __init__(self, model, schedule, images: torch.Tensor, *, names=None, steps: int = 25, seed: int = 0,
                 prompts=_clips.PROMPTS, image_scales=(0.0, 1.0, 1.5, 2.0, 3.0),
                 prompt_scales=(0.0, 1.0, 2.0, 3.0, 5.0), image_scale: float = _sampling.IMAGE_SCALE,
                 prompt_scale: float = _sampling.PROMPT_SCALE):
        _checks.tensor("images", images, ndim=4)
        _checks.positive_int("steps", steps)
        self.model, self.schedule, self.images, self.steps = model, schedule, images, steps
        self.seed, self.cache = seed, {}
        names = list(names) if names is not None else [f"held-out image {i}" for i in range(len(images))]
        if len(names) != len(images):
            raise ValueError(f"names must name every image ({len(images)}), got {len(names)}")
        for p in prompts:
            _clips.encode_prompt(p)  # an unknown prompt fails here, by name
        frames = model.frames
        controls = {
            "image": widgets.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=0, description="image"),
            "prompt": widgets.Dropdown(options=list(prompts), value=prompts[min(2, len(prompts) - 1)],
                                       description="prompt"),
            "stride": widgets.IntSlider(value=2, min=1, max=model.max_stride, description="stride"),
            "image_scale": widgets.SelectionSlider(options=[float(s) for s in image_scales],
                                                   value=float(image_scale), description="image scale"),
            "prompt_scale": widgets.SelectionSlider(options=[float(s) for s in prompt_scales],
                                                    value=float(prompt_scale), description="prompt scale"),
            "frame": widgets.IntSlider(value=0, min=0, max=frames - 1, description="frame"),
        }
        self.play = widgets.Play(value=0, min=0, max=frames - 1, interval=300, description="play")
        widgets.jslink((self.play, "value"), (controls["frame"], "value"))
        super().__init__(controls, figsize=(5.6, 3.6), extra=[self.play])

    def clip(self, image: int, prompt: str, stride: int, image_scale: float, prompt_scale: float) -> torch.Tensor:
        """The sampled clip (3, F, H, W) for these settings (same starting noise for every setting)."""
        key = (image, prompt, stride, image_scale, prompt_scale)
        if key not in self.cache:
            g = torch.Generator().manual_seed(self.seed)
            self.cache[key] = animate(self.model, self.schedule, self.images[image:image + 1], prompt, stride,
                                      image_scale=image_scale, prompt_scale=prompt_scale, steps=self.steps,
                                      generator=g, progress=False)[0]
        return self.cache[key]

    def build(self, fig):
        gs = fig.add_gridspec(2, 2, height_ratios=[3, 1], width_ratios=[1, 1])
        self.ax_in, self.ax_frame = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
        self.ax_strip = fig.add_subplot(gs[1, :])
        blank = np.zeros((self.model.image_size, self.model.image_size, 3))
        self.im_in = self.ax_in.imshow(blank, interpolation="nearest")
        self.im_frame = self.ax_frame.imshow(blank, interpolation="nearest")
        self.ax_in.set_title("conditioning image", fontsize="small")
        self.title = self.ax_frame.set_title("", fontsize="small")
        for ax in (self.ax_in, self.ax_frame):
            ax.set_axis_off()
        F, S = self.model.frames, self.model.image_size
        self.im_strip = self.ax_strip.imshow(np.ones((S, F * (S + 1) - 1, 3)), interpolation="nearest")
        self.ax_strip.set_axis_off()
        from matplotlib.patches import Rectangle

        self.marker = Rectangle((-0.5, -0.5), S, S, fill=False, edgecolor="red", linewidth=1.5)
        self.ax_strip.add_patch(self.marker)

    def update(self, image, prompt, stride, image_scale, prompt_scale, frame):
        clip = self.clip(image, prompt, stride, image_scale, prompt_scale)
        S = self.model.image_size
        self.im_in.set_data(_rgb(self.images[image]))
        self.im_frame.set_data(_rgb(clip[:, frame]))
        self.im_strip.set_data(strip_array(clip[None]))
        self.marker.set_x((S + 1) * frame - 0.5)
        self.title.set_text(f'"{prompt}", stride {stride}, frame {frame}\nscales: image {image_scale:g}, '
                            f"prompt {prompt_scale:g}")

    def static_states(self):
        last = self.model.frames - 1
        opts = list(self.controls["prompt"].options)
        return [{"prompt": p, "frame": last} for p in opts[1:4]]


def video_explorer(model, schedule, images: torch.Tensor, **kw) -> VideoExplorer:
    """An explorer animating ``images`` (N, 3, H, W) with ``model`` (see :class:`VideoExplorer`)."""
    return VideoExplorer(model, schedule, images, **kw)
