"""A small convolutional autoencoder: the classical baseline of reconstruction-based anomaly detection.

``forward(x) -> x_hat`` with x's shape (B, C, S, S). The encoder halves the
side ``levels`` times (stride-2 convolutions, GroupNorm, SiLU) down to a
``latent_channels`` x (S / 2**levels)^2 bottleneck; the decoder mirrors it
(nearest upsampling + convolutions) and ends in tanh, so outputs lie in
(-1, 1) like the images. The bottleneck is what makes it a detector: too
narrow to copy what it never saw in training (a lesion), it reproduces
healthy anatomy instead, and :math:`|x - \\hat x|` lights up where they differ
(Baur et al. 2021 survey this family for brain MRI).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import _checks


def _block(cin, cout, stride=1):
    g = 8 if cout % 8 == 0 else 1
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(g, cout), nn.SiLU())


class AutoEncoder(nn.Module):
    """Convolutional autoencoder for (B, in_channels, image_size, image_size) images in [-1, 1]."""

    def __init__(self, in_channels: int = 1, image_size: int = 64, base: int = 32, levels: int = 3,
                 latent_channels: int = 4):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("image_size", image_size), ("base", base),
                        ("levels", levels), ("latent_channels", latent_channels)):
            _checks.positive_int(name, v)
        if image_size % 2 ** levels:
            raise ValueError(f"image_size must be divisible by 2**levels = {2 ** levels}, got {image_size}")
        self.in_channels, self.image_size = in_channels, image_size
        chans = [base * min(2 ** i, 4) for i in range(levels + 1)]
        enc = [_block(in_channels, chans[0])]
        for i in range(levels):
            enc += [_block(chans[i], chans[i + 1], stride=2), _block(chans[i + 1], chans[i + 1])]
        enc += [nn.Conv2d(chans[-1], latent_channels, 1)]
        self.encoder = nn.Sequential(*enc)
        dec = [_block(latent_channels, chans[-1])]
        for i in reversed(range(levels)):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), _block(chans[i + 1], chans[i]), _block(chans[i], chans[i])]
        dec += [nn.Conv2d(chans[0], in_channels, 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _checks.tensor("x", x, ndim=4)
        want = (self.in_channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"x must have shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}")
        return self.decoder(self.encoder(x))
