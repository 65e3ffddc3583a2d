r"""A space-time UNet that animates one image (Chapter 08; after DynamiCrafter, Xing et al. 2023).

``forward(x_t, t, *, image=None, prompt=None, stride=None)`` returns eps with
x_t's shape ``(B, C, F, H, W)``. The clip being denoised is, by ``target``,
either the frames themselves (``"frames"``) or their change from the
conditioning image, :math:`z = s\,(x - c)` (``"change"``, :math:`s` = ``change_scale``;
:meth:`VideoUNet.encode` / :meth:`VideoUNet.decode` convert). ``s = 1/2`` keeps z in [-1, 1]; but most
pixels of a clip do not change, so the change's standard deviation is far below an image's and, at
every noise level, its signal-to-noise ratio is lower by :math:`\text{sd}(z)^2`: a larger ``s`` moves
the training back to the noise levels where the motion is decided (Chapter 08, Section 7). The pieces, as in DynamiCrafter:

* **Spatial layers per frame**: Chapter 02's residual blocks and
  self-attention (:class:`ddlearn.nets.unet.ResBlock`, :class:`~ddlearn.nets.unet.AttnBlock`)
  run on every frame, frames folded into the batch.
* **First-frame attention** (``spatial_attn="first_frame"``, in place of the
  per-frame self-attention at the ``attn_res`` resolutions): every frame's pixels
  attend to frame 0's pixels and their own, with a 2-D sinusoidal position added
  to queries and keys, so a pixel can fetch the pattern from a *displaced* place
  in the first frame (Tune-A-Video's sparse-causal attention, Wu et al. 2023,
  without the previous frame). Self-attention without positions can match only
  by content: it cannot say "the pixel two to the left", which is what moving
  a shape needs.
* **Temporal layers across frames**: a temporal convolution (kernel 3 along
  the frame axis) and temporal self-attention over the F frames at each
  pixel, with a learned frame-position embedding (frame-index information);
  with ``frame_embed`` each frame's residual blocks also receive a learned
  embedding of its index.
* **Detail stream** (``detail``): the conditioning image concatenated to every
  noisy frame at the input (DynamiCrafter concatenates its latent).
* **Context stream** (``context``): a small image encoder (three convolutions)
  turns the image into tokens; a query transformer (Perceiver-style, a few
  learned queries *per frame*) reshapes them into image tokens; the UNet's
  cross-attention attends to the prompt tokens and, beside them, to the image
  tokens, mixed as :math:`\text{attn}(q, \text{prompt}) + \lambda\,\text{attn}(q, \text{image})`
  with a learnable gate :math:`\lambda = 1 + \tanh\alpha` (``gate="learned"``,
  :math:`\alpha` starts at 0, as in DynamiCrafter) or :math:`\lambda = 1` (``"fixed"``).
* **Prompt** ``prompt`` (token ids ``(B, L)`` of :func:`ddlearn.data.clips.encode_prompt`):
  word + position embeddings; ``prompt_place`` says where it enters: the
  cross-attention (``"cross"``, as text does in DynamiCrafter), the time
  embedding (``"time"``: the tokens' mean, through a linear layer), or both.
* **Frame stride** ``stride`` (B,): a sinusoidal embedding through an MLP
  (last layer zero at start) added to the time embedding, as DynamiCrafter's
  fps / frame-stride condition.
* **Guidance dropout**: the conditions have nulls (:meth:`VideoUNet.null_conditions`:
  a zero image, the all-padding prompt); training drops them
  (:func:`ddlearn.losses.drop_conditions`), so one network also predicts
  without the image and/or without the prompt, for two-scale
  classifier-free guidance.

``patch=2`` makes the first layer strided: the input (noisy clip and
conditioning image) is cut into 2x2 pixel blocks stacked as channels
(space-to-depth) and the output is reassembled (depth-to-space), so a 32x32
clip costs about what a 16x16 one does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .embed import TimeEmbedding, check_inputs, timestep_embedding
from .unet import AttnBlock, ResBlock

TARGETS = ("change", "frames")
SPATIAL_ATTN = ("self", "first_frame")
PROMPT_PLACES = ("time", "cross", "both")
GATES = ("learned", "fixed")


def _groups(ch: int, groups: int) -> int:
    while ch % groups:
        groups -= 1
    return groups


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head scaled dot-product attention of queries ``q`` (B, N, C) over keys/values ``k``, ``v`` (B, M, C)."""
    B, N, C = q.shape
    split = lambda z: z.reshape(B, z.shape[1], heads, C // heads).transpose(1, 2)  # noqa: E731
    return F.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(B, N, C)


def _qkv_and_zero_proj(ch: int) -> tuple[nn.Linear, nn.Linear]:
    """An attention's joint query-key-value projection and its output projection, the latter zero at start
    (so a residual attention block begins as the identity)."""
    qkv, proj = nn.Linear(ch, 3 * ch), nn.Linear(ch, ch)
    nn.init.zeros_(proj.weight)
    nn.init.zeros_(proj.bias)
    return qkv, proj


class TemporalBlock(nn.Module):
    """Temporal convolution, then (optionally) temporal self-attention over frames, each residual.

    Works on ``(B*F, C, H, W)`` (frames folded into the batch, frame-major inside each clip).
    """

    def __init__(self, ch: int, frames: int, groups: int, heads: int, attention: bool):
        super().__init__()
        self.frames = frames
        self.norm_conv = nn.GroupNorm(_groups(ch, groups), ch)
        # kernel 3 along frames, 1 in space: a (3, 1) Conv2d over (frames, pixels) is the same map
        # as Conv3d((3, 1, 1)) and runs on the fast 2-D kernels
        self.conv = nn.Conv2d(ch, ch, (3, 1), padding=(1, 0))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.attention = attention
        if attention:
            self.heads = heads if ch % heads == 0 else 1
            self.norm_attn = nn.LayerNorm(ch)
            self.pos = nn.Parameter(torch.randn(frames, ch) * 0.02)   # frame-index information
            self.qkv, self.proj = _qkv_and_zero_proj(ch)

    def forward(self, h):
        BF, C, H, W = h.shape
        B, Fr = BF // self.frames, self.frames
        x = h.reshape(B, Fr, C, H * W).transpose(1, 2)                      # (B, C, F, H*W)
        x = x + self.conv(F.silu(self.norm_conv(x)))
        x = x.reshape(B, C, Fr, H, W)
        if self.attention:
            seq = x.permute(0, 3, 4, 2, 1).reshape(B * H * W, Fr, C)        # one sequence of F frames per pixel
            q, k, v = self.qkv(self.norm_attn(seq) + self.pos).chunk(3, dim=-1)
            seq = seq + self.proj(_attend(q, k, v, self.heads))
            x = seq.reshape(B, H, W, Fr, C).permute(0, 4, 3, 1, 2)
        return x.transpose(1, 2).reshape(BF, C, H, W)


def position_embedding_2d(side: int, ch: int) -> torch.Tensor:
    """Fixed 2-D sinusoidal positions ``(side*side, ch)``: the first half of the channels encode x, the second y.

    Each half holds (sin, cos) pairs at periods from 2 pixels to 2*side pixels (geometric); a shift by d pixels
    is then a rotation of every pair, a linear map that a learned projection can compose with the conditions.
    Channels beyond the largest multiple of 4 are zero.
    """
    _checks.positive_int("side", side)
    _checks.positive_int("ch", ch)
    n = ch // 4                                                         # frequencies per axis
    pe = torch.zeros(side * side, ch)
    if n == 0:
        return pe
    # periods 2 ... 2*side pixels, geometric (one frequency: the longest)
    exponent = torch.arange(n, dtype=torch.float64) / (n - 1) if n > 1 else torch.ones(1, dtype=torch.float64)
    periods = 2.0 * side ** exponent
    omega = 2 * math.pi / periods
    c = torch.arange(side, dtype=torch.float64) + 0.5
    y, x = torch.meshgrid(c, c, indexing="ij")
    for axis, coord in enumerate((x.reshape(-1), y.reshape(-1))):
        ang = coord[:, None] * omega[None]
        pe[:, axis * 2 * n: axis * 2 * n + n] = torch.sin(ang).float()
        pe[:, axis * 2 * n + n: axis * 2 * n + 2 * n] = torch.cos(ang).float()
    return pe


class FirstFrameAttention(nn.Module):
    """Each frame's pixels attend to frame 0's pixels and their own, positions added to queries and keys.

    Works on ``(B*F, C, H, W)`` (frames folded into the batch, frame-major inside each clip); residual, output
    projection zero at start. Frame 0 of the clip is the one the conditioning image is (``cond_frame="first"``).
    """

    def __init__(self, ch: int, frames: int, side: int, groups: int, heads: int):
        super().__init__()
        self.frames = frames
        self.heads = heads if ch % heads == 0 else 1
        self.norm = nn.GroupNorm(_groups(ch, groups), ch)
        self.register_buffer("pos", position_embedding_2d(side, ch), persistent=False)
        self.qkv, self.proj = _qkv_and_zero_proj(ch)

    def forward(self, h):
        BF, C, H, W = h.shape
        B, Fr, N = BF // self.frames, self.frames, H * W
        tokens = self.norm(h).flatten(2).transpose(1, 2) + self.pos         # (BF, N, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        first = lambda z: z.reshape(B, Fr, N, C)[:, :1].expand(B, Fr, N, C).reshape(BF, N, C)  # noqa: E731
        k, v = torch.cat([first(k), k], dim=1), torch.cat([first(v), v], dim=1)   # (BF, 2N, C)
        out = h.flatten(2).transpose(1, 2) + self.proj(_attend(q, k, v, self.heads))
        return out.transpose(1, 2).reshape(BF, C, H, W)


class DualCrossAttention(nn.Module):
    r"""Cross-attention to prompt tokens and, beside it, to image tokens: :math:`o_p + \lambda\,o_i`.

    ``gate="learned"``: :math:`\lambda = 1 + \tanh\alpha`, :math:`\alpha` a learnable scalar starting at 0
    (DynamiCrafter); ``"fixed"``: :math:`\lambda = 1`. Either stream can be absent.
    """

    def __init__(self, ch: int, context_dim: int, heads: int, prompt: bool, image: bool, gate: str):
        super().__init__()
        self.heads = heads if ch % heads == 0 else 1
        self.norm = nn.LayerNorm(ch)
        self.q = nn.Linear(ch, ch)
        self.kv_prompt = nn.Linear(context_dim, 2 * ch) if prompt else None
        self.kv_image = nn.Linear(context_dim, 2 * ch) if image else None
        self.alpha = nn.Parameter(torch.zeros(())) if (image and gate == "learned") else None
        self.proj = nn.Linear(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def gate(self) -> torch.Tensor:
        """The image stream's weight :math:`\\lambda` (1 when fixed)."""
        return 1 + torch.tanh(self.alpha) if self.alpha is not None else torch.ones(())

    def _attend(self, q, kv):
        k, v = kv.chunk(2, dim=-1)
        return _attend(q, k, v, self.heads)

    def forward(self, h, prompt_tokens, image_tokens):
        BF, C, H, W = h.shape
        x = h.flatten(2).transpose(1, 2)                                     # (BF, HW, C)
        q = self.q(self.norm(x))
        out = 0
        if self.kv_prompt is not None:
            out = out + self._attend(q, self.kv_prompt(prompt_tokens))
        if self.kv_image is not None:
            out = out + self.gate() * self._attend(q, self.kv_image(image_tokens))
        x = x + self.proj(out)
        return x.transpose(1, 2).reshape(BF, C, H, W)


class QueryTransformer(nn.Module):
    """A few learned queries per frame attend to the image tokens (and themselves): ``(B, N, D) -> (B, F*Q, D)``.

    Perceiver-style, as DynamiCrafter's resampler: each layer is
    ``queries += attn(norm(queries), norm([tokens; queries]))`` then a feed-forward.
    """

    def __init__(self, dim: int, frames: int, num_queries: int, depth: int, heads: int):
        super().__init__()
        self.frames, self.num_queries = frames, num_queries
        self.queries = nn.Parameter(torch.randn(frames * num_queries, dim) / math.sqrt(dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([nn.LayerNorm(dim), nn.LayerNorm(dim), nn.MultiheadAttention(dim, heads, batch_first=True),
                           nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))])
            for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, tokens):
        q = self.queries.expand(tokens.shape[0], -1, -1)
        for norm_t, norm_q, attn, ff in self.layers:
            qn = norm_q(q)
            kv = torch.cat([norm_t(tokens), qn], dim=1)
            q = q + attn(qn, kv, kv, need_weights=False)[0]
            q = q + ff(q)
        return self.norm_out(q)


class ImageEncoder(nn.Module):
    """Three convolutions (the last two strided) and a position embedding: image ``(B, C, H, W)`` -> tokens ``(B, HW/16, D)``."""

    def __init__(self, in_channels: int, image_size: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, dim // 2, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1), nn.SiLU(),
                                 nn.Conv2d(dim, dim, 3, stride=2, padding=1))
        self.pos = nn.Parameter(torch.randn((image_size // 4) ** 2, dim) * 0.02)

    def forward(self, image):
        return self.net(image).flatten(2).transpose(1, 2) + self.pos


class VideoUNet(nn.Module):
    """Space-time UNet eps-predictor conditioned on an image, a motion prompt and a frame stride.

    See the module docstring. ``image_size`` and ``frames`` fix the clips it
    takes; ``image_size / patch`` must be divisible by ``2**(len(channel_mults)-1)``
    and by 4 (the image encoder's two strides). Resolutions in ``attn_res``
    (spatial attention, of the kind ``spatial_attn`` says), ``temporal_attn_res`` and ``cross_res`` are those
    of the UNet's feature maps (after the patch step).
    """

    def __init__(self, in_channels: int = 3, image_size: int = 16, frames: int = 8, base: int = 32,
                 channel_mults=(1, 2, 2), num_res: int = 1, attn_res=(4,), temporal_attn_res=(16, 8, 4),
                 cross_res=(8, 4), T: int = 1000, patch: int = 1, target: str = "change",
                 detail: bool = True, context: bool = True, gate: str = "learned", prompt_place: str = "both",
                 vocab: int = 7, prompt_len: int = 2, max_stride: int = 4, context_dim: int = 64,
                 num_queries: int = 4, qformer_depth: int = 2, frame_embed: bool = True,
                 groups: int = 8, heads: int = 4, dropout: float = 0.0, change_scale: float = 0.5,
                 spatial_attn: str = "self"):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("image_size", image_size), ("frames", frames),
                        ("base", base), ("num_res", num_res), ("T", T), ("patch", patch), ("vocab", vocab),
                        ("prompt_len", prompt_len), ("max_stride", max_stride), ("context_dim", context_dim),
                        ("num_queries", num_queries), ("qformer_depth", qformer_depth), ("groups", groups),
                        ("heads", heads)):
            _checks.positive_int(name, v)
        for name, v in (("detail", detail), ("context", context), ("frame_embed", frame_embed)):
            _checks.boolean(name, v)
        _checks.choice("target", target, TARGETS)
        _checks.choice("spatial_attn", spatial_attn, SPATIAL_ATTN)
        self.spatial_attn = spatial_attn
        self.change_scale = _checks.number("change_scale", change_scale, low=0, low_open=True)
        _checks.choice("gate", gate, GATES)
        _checks.choice("prompt_place", prompt_place, PROMPT_PLACES)
        channel_mults = tuple(int(m) for m in channel_mults)
        if not channel_mults or any(m < 1 for m in channel_mults):
            raise ValueError(f"channel_mults must be positive ints, got {channel_mults}")
        inner = image_size // patch
        if image_size % patch or inner % 2 ** (len(channel_mults) - 1) or inner % 4:
            raise ValueError(f"image_size / patch = {image_size}/{patch} must be a whole number divisible by 4 and "
                             f"by 2**(len(channel_mults)-1) = {2 ** (len(channel_mults) - 1)}")
        self.in_channels, self.image_size, self.frames, self.T = in_channels, image_size, frames, T
        self.patch, self.target, self.detail, self.context = patch, target, bool(detail), bool(context)
        self.gate_kind, self.prompt_place, self.vocab, self.prompt_len = gate, prompt_place, vocab, prompt_len
        self.max_stride = max_stride
        emb_dim = 4 * base
        self.time_embed = TimeEmbedding(base, emb_dim)
        self.stride_embed = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        nn.init.zeros_(self.stride_embed[-1].weight)
        nn.init.zeros_(self.stride_embed[-1].bias)
        self.frame_embed = nn.Embedding(frames, emb_dim) if frame_embed else None
        # the prompt: word + position embeddings (our "text encoder")
        self.word_embed = nn.Embedding(vocab, context_dim)
        self.word_pos = nn.Parameter(torch.randn(prompt_len, context_dim) * 0.02)
        self.prompt_to_time = nn.Linear(context_dim, emb_dim) if prompt_place in ("time", "both") else None
        prompt_cross = prompt_place in ("cross", "both")
        # the context stream: image encoder + query transformer
        if self.context:
            self.image_encoder = ImageEncoder(in_channels, image_size, context_dim)
            self.qformer = QueryTransformer(context_dim, frames, num_queries, qformer_depth, heads)
        self.num_queries = num_queries

        res = lambda a, b: ResBlock(a, b, emb_dim, groups, dropout)  # noqa: E731
        tmp = lambda ch, side: TemporalBlock(ch, frames, groups, heads, side in temporal_attn_res)  # noqa: E731

        def extras(ch, side):
            mods = [tmp(ch, side)]
            if side in attn_res:
                mods.append(AttnBlock(ch, groups, heads, None) if spatial_attn == "self"
                            else FirstFrameAttention(ch, frames, side, groups, heads))
            if side in cross_res and (prompt_cross or self.context):
                mods.append(DualCrossAttention(ch, context_dim, heads, prompt_cross, self.context, gate))
            return mods

        cin = (in_channels * (2 if self.detail else 1)) * patch * patch
        self.conv_in = nn.Conv2d(cin, base, 3, padding=1)
        self.down, skips, ch, side = nn.ModuleList(), [base], base, inner
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res):
                self.down.append(nn.ModuleList([res(ch, base * mult)] + extras(base * mult, side)))
                ch = base * mult
                skips.append(ch)
            if level < len(channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                side //= 2
        self.mid = nn.ModuleList([res(ch, ch)] + extras(ch, side) + [res(ch, ch)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res + 1):
                self.up.append(nn.ModuleList([res(ch + skips.pop(), base * mult)] + extras(base * mult, side)))
                ch = base * mult
            if level > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(ch, ch, 3, padding=1)]))
                side *= 2
        self.out = nn.Sequential(nn.GroupNorm(_groups(ch, groups), ch), nn.SiLU(),
                                 nn.Conv2d(ch, in_channels * patch * patch, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    # ---- what is diffused ---------------------------------------------------------------
    def encode(self, clip: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The diffused clip ``z`` of frames ``clip`` (B, C, F, H, W) given the conditioning image (B, C, H, W)."""
        return (clip - image[:, :, None]) * self.change_scale if self.target == "change" else clip

    @property
    def z_bound(self) -> float:
        """The largest |z| a clip in [-1, 1] can encode to: ``2 * change_scale`` for the change, 1 for frames."""
        return 2 * self.change_scale if self.target == "change" else 1.0

    def decode(self, z: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Frames from the diffused clip ``z`` (the inverse of :meth:`encode`), clamped to [-1, 1]."""
        clip = image[:, :, None] + z / self.change_scale if self.target == "change" else z
        return clip.clamp(-1, 1)

    # ---- conditions -------------------------------------------------------------------
    def null_conditions(self, batch: int, device=None) -> dict:
        """The "no condition" value of each droppable condition: a zero image and the empty prompt."""
        return {"image": torch.zeros(batch, self.in_channels, self.image_size, self.image_size, device=device),
                "prompt": torch.zeros(batch, self.prompt_len, dtype=torch.long, device=device)}

    def gates(self) -> list[float]:
        """The image stream's gate :math:`\\lambda` in every cross-attention layer, input side first."""
        return [float(m.gate().detach()) for m in self.modules() if isinstance(m, DualCrossAttention) and m.kv_image is not None]

    def _check(self, x_t, image, prompt, stride, image_name: str = "image"):
        B = x_t.shape[0]
        shape = tuple(x_t.shape)
        if x_t.shape[2] != self.frames:
            raise ValueError(f"x_t must have {self.frames} frames (dim 2 of (B, C, F, H, W)), got shape {shape}")
        if x_t.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"x_t must have {self.image_size}x{self.image_size} frames, got shape {shape}")
        if image is not None:
            _checks.tensor(image_name, image, ndim=4)
            want = (B, self.in_channels, self.image_size, self.image_size)
            if tuple(image.shape) != want:
                raise ValueError(f"{image_name} must have shape {want} (one conditioning frame per clip), "
                                 f"got {tuple(image.shape)}")
        if prompt is not None:
            if not isinstance(prompt, torch.Tensor) or prompt.is_floating_point() or prompt.dtype == torch.bool:
                raise TypeError("prompt must be an integer tensor of token ids (ddlearn.data.clips.encode_prompt), "
                                f"got {type(prompt).__name__}{' of dtype ' + str(prompt.dtype) if isinstance(prompt, torch.Tensor) else ''}")
            if tuple(prompt.shape) != (B, self.prompt_len):
                raise ValueError(f"prompt must have shape ({B}, {self.prompt_len}), got {tuple(prompt.shape)}")
            if prompt.numel() and (prompt.min() < 0 or prompt.max() >= self.vocab):
                raise ValueError(f"prompt must hold token ids in 0..{self.vocab - 1}, got values from "
                                 f"{int(prompt.min())} to {int(prompt.max())}")
        if stride is not None:
            s = torch.as_tensor(stride)
            if s.reshape(-1).numel() not in (1, B):
                raise ValueError(f"stride must be a number or hold one value per clip ({B}), got shape {tuple(s.shape)}")
            if not torch.isfinite(s.double()).all() or s.min() < 1 or s.max() > self.max_stride:
                raise ValueError(f"stride must lie in [1, {self.max_stride}], got values from {float(s.min()):g} "
                                 f"to {float(s.max()):g}")

    # ---- the network ------------------------------------------------------------------
    def forward(self, x_t: torch.Tensor, t, *, image=None, prompt=None, stride=None,
                context_image=None) -> torch.Tensor:
        """eps ``(B, C, F, H, W)``. ``image`` feeds both streams; ``context_image`` (default: ``image``)
        replaces it in the context stream only, e.g. a zero image to blank the image tokens."""
        tt = check_inputs(x_t, t, self.T, ndim=5, channels=self.in_channels, net=self)
        self._check(x_t, image, prompt, stride)
        if context_image is not None:
            self._check(x_t, context_image, None, None, image_name="context_image")
        B, C, Fr, H, W = x_t.shape
        nulls = self.null_conditions(B, x_t.device)
        image = nulls["image"].to(x_t.dtype) if image is None else image
        prompt = nulls["prompt"] if prompt is None else prompt.long()
        stride = torch.ones(B, device=x_t.device) if stride is None else torch.as_tensor(stride, device=x_t.device)
        stride = stride.reshape(-1).to(torch.float32).expand(B)

        emb = self.time_embed(tt) + self.stride_embed(timestep_embedding(stride, self.stride_embed[0].in_features))
        words = self.word_embed(prompt) + self.word_pos                        # (B, L, D)
        if self.prompt_to_time is not None:
            emb = emb + self.prompt_to_time(words.mean(1))
        emb = emb.repeat_interleave(Fr, 0)                                     # (B*F, E), frame-major per clip
        if self.frame_embed is not None:
            emb = emb + self.frame_embed.weight.repeat(B, 1)
        prompt_tokens = words.repeat_interleave(Fr, 0)                         # (B*F, L, D)
        image_tokens = None
        if self.context:
            ctx = image if context_image is None else context_image.to(image)
            q = self.qformer(self.image_encoder(ctx))                          # (B, F*Q, D): per-frame queries
            image_tokens = q.reshape(B * Fr, self.num_queries, -1)

        h = x_t.transpose(1, 2).reshape(B * Fr, C, H, W)
        if self.detail:
            h = torch.cat([h, image.repeat_interleave(Fr, 0)], dim=1)
        if self.patch > 1:
            h = F.pixel_unshuffle(h, self.patch)

        def run(layers, h):
            for layer in layers:
                if isinstance(layer, ResBlock):
                    h = layer(h, emb)
                elif isinstance(layer, DualCrossAttention):
                    h = layer(h, prompt_tokens, image_tokens)
                elif isinstance(layer, AttnBlock):
                    h = layer(h)
                else:
                    h = layer(h)
            return h

        h = self.conv_in(h)
        hs = [h]
        for layers in self.down:
            h = run(layers, h)
            hs.append(h)
        h = run(self.mid, h)
        for layers in self.up:
            if isinstance(layers[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = run(layers, h)
        h = self.out(h)
        if self.patch > 1:
            h = F.pixel_shuffle(h, self.patch)
        return h.reshape(B, Fr, C, H, W).transpose(1, 2)
