r"""A small UNet eps-predictor for images (Ho et al. 2020; Dhariwal & Nichol 2021), CPU-sized.

``forward(x_t, t, *, y=None, x_cond=None, context=None)`` returns eps with
x_t's shape (B, C, H, W). Pieces, top to bottom:

* residual blocks (GroupNorm - SiLU - conv, twice) with the time embedding
  (plus a class embedding) added in between;
* stride-2 convolutions down, nearest-neighbour upsampling + conv up, skip
  connections concatenated at each resolution;
* self-attention at the resolutions listed in ``attn_res`` (low ones: attention
  is quadratic in the number of pixels);
* the last convolution starts at zero, so an untrained net predicts eps = 0
  (x0 = x_t / sqrt(alpha_bar)), a calm start.

Conditioning, for the later chapters:

* ``num_classes``: class label ``y`` (B,) of ints in 0..num_classes-1; the extra
  index ``num_classes`` (= ``net.null_class``) is "no label", which is what
  classifier-free guidance trains with (label dropout) and samples with. ``y``
  omitted means every item gets the null class.
* ``cond_channels``: images ``x_cond`` (B, cond_channels, H, W) concatenated to
  x_t at the input (e.g. a low-resolution or masked image, a video frame);
  omitted means zeros.
* ``context_dim``: tokens ``context`` (B, N, context_dim) that the attention
  layers also attend to (cross-attention, as in latent diffusion /
  DynamiCrafter); omitted means no cross-attention.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .embed import TimeEmbedding, check_inputs


def _norm(ch: int, groups: int) -> nn.GroupNorm:
    g = groups
    while ch % g:  # largest divisor of ch not above `groups`
        g -= 1
    return nn.GroupNorm(g, ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2, self.conv2 = _norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Self-attention over the H*W pixels, then (optionally) cross-attention to context tokens."""

    def __init__(self, ch: int, groups: int, heads: int, context_dim: int | None):
        super().__init__()
        self.heads = heads if ch % heads == 0 else 1
        self.norm = _norm(ch, groups)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        if context_dim:
            self.norm_x = nn.LayerNorm(ch)
            self.q = nn.Linear(ch, ch)
            self.kv = nn.Linear(context_dim, 2 * ch)
            self.proj_x = nn.Linear(ch, ch)
            nn.init.zeros_(self.proj_x.weight)
            nn.init.zeros_(self.proj_x.bias)

    def _split(self, z):  # (B, N, C) -> (B, heads, N, C/heads)
        B, N, C = z.shape
        return z.reshape(B, N, self.heads, C // self.heads).transpose(1, 2)

    def _merge(self, z):
        B, H, N, c = z.shape
        return z.transpose(1, 2).reshape(B, N, H * c)

    def forward(self, x, context=None):
        B, C, H, W = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        h = x.flatten(2).transpose(1, 2) + self.proj(
            self._merge(F.scaled_dot_product_attention(self._split(q), self._split(k), self._split(v))))
        if context is not None and hasattr(self, "kv"):
            k, v = self.kv(context).chunk(2, dim=-1)
            q = self.q(self.norm_x(h))
            h = h + self.proj_x(self._merge(
                F.scaled_dot_product_attention(self._split(q), self._split(k), self._split(v))))
        return h.transpose(1, 2).reshape(B, C, H, W)


class UNet(nn.Module):
    """Small UNet eps-predictor. See the module docstring for the conditioning inputs.

    ``image_size``: side of the (square) images it takes, divisible by
    2**(len(channel_mults) - 1). ``attn_res``: the sides at which to attend
    (e.g. (8, 4) for 16x16 inputs with mults (1, 2, 2)).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 16, base: int = 32,
                 channel_mults=(1, 2, 2), num_res: int = 1, attn_res=(4,), T: int = 1000,
                 out_channels: int | None = None, num_classes: int | None = None,
                 cond_channels: int = 0, context_dim: int | None = None, groups: int = 8,
                 heads: int = 4, dropout: float = 0.0):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("image_size", image_size), ("base", base),
                        ("num_res", num_res), ("T", T), ("groups", groups), ("heads", heads)):
            _checks.positive_int(name, v)
        _checks.positive_int("cond_channels", cond_channels, minimum=0)
        channel_mults = tuple(int(m) for m in channel_mults)
        if not channel_mults or any(m < 1 for m in channel_mults):
            raise ValueError(f"channel_mults must be positive ints, got {channel_mults}")
        if image_size % 2 ** (len(channel_mults) - 1):
            raise ValueError(f"image_size must be divisible by 2**(len(channel_mults)-1) = "
                             f"{2 ** (len(channel_mults) - 1)}, got {image_size}")
        if num_classes is not None:
            _checks.positive_int("num_classes", num_classes)
        if context_dim is not None:
            _checks.positive_int("context_dim", context_dim)
        self.in_channels, self.image_size, self.T = in_channels, image_size, T
        self.out_channels = out_channels or in_channels
        self.num_classes, self.cond_channels, self.context_dim = num_classes, cond_channels, context_dim
        emb_dim = 4 * base
        self.time_embed = TimeEmbedding(base, emb_dim)
        self.label_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        attn = lambda ch: AttnBlock(ch, groups, heads, context_dim)  # noqa: E731
        res = lambda a, b: ResBlock(a, b, emb_dim, groups, dropout)  # noqa: E731

        self.conv_in = nn.Conv2d(in_channels + cond_channels, base, 3, padding=1)
        self.down, skips, ch, side = nn.ModuleList(), [base], base, image_size
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res):
                self.down.append(nn.ModuleList([res(ch, base * mult)] + ([attn(base * mult)] if side in attn_res else [])))
                ch = base * mult
                skips.append(ch)
            if level < len(channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                side //= 2
        self.mid = nn.ModuleList([res(ch, ch), attn(ch), res(ch, ch)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res + 1):
                self.up.append(nn.ModuleList([res(ch + skips.pop(), base * mult)]
                                             + ([attn(base * mult)] if side in attn_res else [])))
                ch = base * mult
            if level > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(ch, ch, 3, padding=1)]))
                side *= 2
        self.out = nn.Sequential(_norm(ch, groups), nn.SiLU(), nn.Conv2d(ch, self.out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def null_class(self) -> int:
        """The label index meaning "no class" (classifier-free guidance)."""
        if not self.num_classes:
            raise AttributeError("this UNet has no class conditioning (num_classes=None)")
        return self.num_classes

    def _check_cond(self, x_t, y, x_cond, context):
        B, _, H, W = x_t.shape
        if y is not None:
            if not self.num_classes:
                raise ValueError("y was given but this UNet is unconditional (build it with num_classes=...)")
            if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32):
                raise TypeError(f"y must be an integer tensor of class labels, got {type(y).__name__}"
                                f"{'' if not isinstance(y, torch.Tensor) else ' of dtype ' + str(y.dtype)}")
            if y.shape != (B,):
                raise ValueError(f"y must have shape ({B},) (one label per item), got {tuple(y.shape)}")
            if y.numel() and (y.min() < 0 or y.max() > self.num_classes):
                raise ValueError(f"y must hold labels in 0..{self.num_classes - 1} (or {self.num_classes}, the null "
                                 f"class), got values from {int(y.min())} to {int(y.max())}")
        if x_cond is not None:
            if not self.cond_channels:
                raise ValueError("x_cond was given but this UNet takes no conditioning channels (cond_channels=0)")
            _checks.tensor("x_cond", x_cond, ndim=4)
            if x_cond.shape != (B, self.cond_channels, H, W):
                raise ValueError(f"x_cond must have shape {(B, self.cond_channels, H, W)}, got {tuple(x_cond.shape)}")
        if context is not None:
            if not self.context_dim:
                raise ValueError("context was given but this UNet has no cross-attention (context_dim=None)")
            _checks.tensor("context", context, ndim=3)
            if context.shape[0] != B or context.shape[2] != self.context_dim:
                raise ValueError(f"context must have shape ({B}, N, {self.context_dim}), got {tuple(context.shape)}")

    def forward(self, x_t: torch.Tensor, t, *, y=None, x_cond=None, context=None) -> torch.Tensor:
        tt = check_inputs(x_t, t, self.T, ndim=4, channels=self.in_channels, net=self)
        if x_t.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"x_t must be {self.image_size}x{self.image_size} images, got shape {tuple(x_t.shape)}")
        self._check_cond(x_t, y, x_cond, context)
        emb = self.time_embed(tt)
        if self.label_embed is not None:
            if y is None:
                y = torch.full((x_t.shape[0],), self.num_classes, dtype=torch.long, device=x_t.device)
            emb = emb + self.label_embed(y.long())
        if self.cond_channels:
            if x_cond is None:
                x_cond = x_t.new_zeros(x_t.shape[0], self.cond_channels, *x_t.shape[-2:])
            x_t = torch.cat([x_t, x_cond], dim=1)

        def run(layers, h):
            for layer in layers:
                if isinstance(layer, ResBlock):
                    h = layer(h, emb)
                elif isinstance(layer, AttnBlock):
                    h = layer(h, context)
                else:
                    h = layer(h)
            return h

        h = self.conv_in(x_t)
        hs = [h]
        for layers in self.down:
            h = run(layers, h)
            hs.append(h)
        h = run(self.mid, h)
        for layers in self.up:
            if isinstance(layers[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = run(layers, h)
        return self.out(h)
