"""Chapter 06 (guidance): a class-conditional UNet for classifier-free guidance, and a noise-aware
classifier p(y | x_t, t) for classifier guidance (evaluation ``"noisy_accuracy"``)."""
from __future__ import annotations

from ..recipe import Recipe, register

register(Recipe(
    name="digits_cfg", description="class-conditional digits UNet with label dropout (p=0.15) for classifier-free "
                                   "guidance; the null class is its unconditional model (Chapter 06)",
    data="digits_labelled", data_kwargs={"size": 16},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 16, "base": 16, "channel_mults": [1, 2, 2],
                            "num_res": 1, "attn_res": [], "T": 1000, "num_classes": 10},
    schedule="linear", schedule_kwargs={"T": 1000}, cond=("y",), loss_kwargs={"p_uncond": 0.15},
    steps=3000, batch_size=48, lr=2e-3, ema_decay=0.998, seed=0, warmup=200,
    evaluate=("heldout_loss",), fast={"steps": 40, "batch_size": 16}))

register(Recipe(
    name="digit_classifier_noisy", description="noise-aware digit classifier p(y | x_t, t) trained on x_t of the "
                                               "linear T=1000 schedule, for classifier guidance (Chapter 06)",
    data="digits_labelled", data_kwargs={"size": 16},
    net="classifier", net_kwargs={"in_channels": 1, "num_classes": 10, "width": 16, "feature_dim": 64, "T": 1000},
    schedule="linear", schedule_kwargs={"T": 1000}, loss="cross_entropy", loss_kwargs={"noisy": True}, cond=("y",),
    steps=2500, batch_size=64, lr=2e-3, ema_decay=0.995, seed=0, warmup=50,
    evaluate=("noisy_accuracy",), fast={"steps": 40}))
