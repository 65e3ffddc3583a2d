"""Networks. Every denoiser has ``forward(x_t, t, **cond) -> eps`` with x_t's shape,
``t`` a float tensor (B,) (or a number) in timestep units 0..T-1 of the
schedule it was built for (``net.T``), and checks its inputs.

* :class:`MLP`: 2-D point clouds (B, D).
* :class:`UNet`: images (B, C, H, W); optional class label ``y``, extra input
  channels ``x_cond``, context tokens ``context``.
* :class:`Classifier`: digit classifier (features for the Frechet digit
  distance; noise-aware with ``T`` for classifier guidance).

:data:`NETS` maps a name to a class, so a training recipe can name its net;
:func:`build` makes one. Add a net with ``NETS["mine"] = MyNet``.
"""
from __future__ import annotations

from .. import _checks
from .classifier import Classifier
from .embed import TimeEmbedding, timestep_embedding
from .mlp import MLP
from .unet import UNet

NETS = {"mlp": MLP, "unet": UNet, "classifier": Classifier}

from .autoencoder import AutoEncoder  # noqa: E402  (Chapter 09: the anomaly-detection baseline)

NETS["autoencoder"] = AutoEncoder

from .clip_classifier import ClipClassifier  # noqa: E402  (Chapter 08: features of the Frechet clip distance)
from .video_unet import VideoUNet  # noqa: E402  (Chapter 08: a space-time UNet animating one image)

NETS["video_unet"] = VideoUNet
NETS["clip_classifier"] = ClipClassifier


def build(name: str, **kwargs):
    """A network by registry name: ``build("unet", base=32, T=1000)``."""
    _checks.choice("net name", name, tuple(NETS))
    return NETS[name](**kwargs)


def n_params(net) -> int:
    """Number of parameters (frozen ones included, e.g. an EMA copy)."""
    return sum(p.numel() for p in net.parameters())


__all__ = ["MLP", "UNet", "Classifier", "AutoEncoder", "TimeEmbedding", "timestep_embedding", "NETS", "build", "n_params"]
