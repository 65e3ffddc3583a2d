"""A small 3-D convolutional clip classifier (Chapter 08).

It learns to name a sprite clip's motion prompt; its penultimate features
define the Frechet clip distance (:func:`ddlearn.video.metrics.frechet_clip_distance`),
FVD's idea (Unterthiner et al. 2018, with an I3D action-recognition network)
at the scale of this book: a network that must see motion to do its job,
trained by the project on generated clips.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks


class ClipClassifier(nn.Module):
    """conv3d(w) - conv3d(2w, stride 1x2x2) - conv3d(2w, stride 2x2x2) - global mean -> features -> logits.

    Takes clips ``(B, in_channels, frames, H, W)`` in [-1, 1] (any H = W divisible by 4).
    """

    def __init__(self, in_channels: int = 3, frames: int = 8, num_classes: int = 10, width: int = 24,
                 feature_dim: int = 64):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("frames", frames), ("num_classes", num_classes),
                        ("width", width), ("feature_dim", feature_dim)):
            _checks.positive_int(name, v)
        self.in_channels, self.frames, self.num_classes = in_channels, frames, num_classes
        w = width
        self.convs = nn.ModuleList([nn.Conv3d(in_channels, w, 3, padding=1),
                                    nn.Conv3d(w, 2 * w, 3, stride=(1, 2, 2), padding=1),
                                    nn.Conv3d(2 * w, 2 * w, 3, stride=2, padding=1)])
        self.norms = nn.ModuleList([nn.GroupNorm(8, w), nn.GroupNorm(8, 2 * w), nn.GroupNorm(8, 2 * w)])
        self.feat = nn.Linear(2 * w, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, feature_dim)``."""
        _checks.tensor("x", x, ndim=5)
        if x.shape[1] != self.in_channels or x.shape[2] != self.frames:
            raise ValueError(f"x must be clips (B, {self.in_channels}, {self.frames}, H, W), got shape {tuple(x.shape)}")
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = F.silu(norm(conv(h)))
        return F.silu(self.feat(h.mean(dim=(2, 3, 4))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` over the motion prompts."""
        return self.head(self.features(x))
