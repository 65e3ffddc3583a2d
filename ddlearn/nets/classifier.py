"""A small convolutional digit classifier.

Two uses: its penultimate features define the Frechet digit distance
(:func:`ddlearn.metrics.frechet_digit_distance`, the digits' stand-in for the
Inception features of FID), and, built with ``T``, it is a noise-aware
classifier p(y | x_t, t) for classifier guidance (Chapter 06).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks
from .embed import TimeEmbedding, check_inputs


class Classifier(nn.Module):
    """conv(32) - pool - conv(64) - pool - conv(64) - global mean -> features (feature_dim) -> logits.

    ``T=None``: a plain classifier ``net(x)``; with ``T`` it also takes ``t``
    (``net(x_t, t)``), added as a learned embedding after the first conv.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32,
                 feature_dim: int = 64, T: int | None = None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("width", width),
                        ("feature_dim", feature_dim)):
            _checks.positive_int(name, v)
        if T is not None:
            _checks.positive_int("T", T)
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.norm1, self.norm2, self.norm3 = (nn.GroupNorm(8, width), nn.GroupNorm(8, 2 * width),
                                              nn.GroupNorm(8, 2 * width))
        self.time_embed = TimeEmbedding(width, width) if T is not None else None
        self.feat = nn.Linear(2 * width, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """Penultimate features (B, feature_dim)."""
        if self.T is None:
            if t is not None:
                raise ValueError("t was given but this classifier is not noise-aware (built with T=None)")
            _checks.tensor("x", x, ndim=4)
            if x.shape[1] != self.in_channels:
                raise ValueError(f"x must have {self.in_channels} channels (dim 1), got shape {tuple(x.shape)}")
        else:
            if t is None:
                raise ValueError("this classifier is noise-aware: call it as net(x_t, t)")
            tt = check_inputs(x, t, self.T, ndim=4, channels=self.in_channels, name="x", net=self)
        h = F.silu(self.norm1(self.conv1(x)))
        if self.time_embed is not None:
            h = h + self.time_embed(tt)[:, :, None, None]
        h = F.avg_pool2d(h, 2)
        h = F.silu(self.norm2(self.conv2(h)))
        h = F.avg_pool2d(h, 2)
        h = F.silu(self.norm3(self.conv3(h)))
        return F.silu(self.feat(h.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.features(x, t))
