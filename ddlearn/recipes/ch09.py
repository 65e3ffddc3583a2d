"""Chapter 09 (medical imaging): diffusion priors trained only on healthy random-ellipse phantoms
(:func:`ddlearn.data.medical.phantoms`), one at 64x64 that serves CT, MRI and anomaly detection, a cheaper
one at 128x128 for CT (registered, not shipped), and the autoencoder baseline of anomaly detection, trained on the same phantoms.
Their sidecars record the training time: the shipped phantom64 (1600 steps) took 55 minutes on the
project's 2-core machine while other jobs were running, so its time is an upper bound, not a quiet
measurement. phantom128 is registered but not shipped (not trained for this edition): Chapter 09 works at
64x64."""
from __future__ import annotations

from ..recipe import Recipe, register

#: the 64x64 phantom UNet, shared by the Gaussian prior and the simplex one
PHANTOM64_NET = {"in_channels": 1, "image_size": 64, "base": 32, "channel_mults": [1, 2, 2, 2], "num_res": 1,
                 "attn_res": [8], "T": 1000}

register(Recipe(
    name="phantom64", description="64x64 random-ellipse head phantoms (healthy), UNet eps-predictor, linear "
                                  "schedule T=1000: the prior of Chapter 09's CT, MRI and anomaly cases",
    data="phantoms", data_kwargs={"size": 64},
    net="unet", net_kwargs=dict(PHANTOM64_NET),
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=1600, batch_size=16, lr=2e-3, ema_decay=0.999, seed=0, warmup=200, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 30, "batch_size": 8, "data_kwargs": {"size": 64, "n": 64}}))

register(Recipe(
    name="phantom64_simplex", description="the phantom64 network trained with simplex noise in the forward "
                                          "process (AnoDDPM, Wyatt et al. 2022): Chapter 09's anomaly prior",
    data="phantoms", data_kwargs={"size": 64},
    net="unet", net_kwargs=dict(PHANTOM64_NET),
    schedule="linear", schedule_kwargs={"T": 1000}, loss_kwargs={"noise": "simplex"},
    steps=800, batch_size=16, lr=2e-3, ema_decay=0.998, seed=0, warmup=100, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 30, "batch_size": 8, "data_kwargs": {"size": 64, "n": 64}}))

register(Recipe(
    name="phantom128", description="128x128 random-ellipse head phantoms (healthy), a cheaper UNet (base 16, "
                                   "five levels), linear schedule T=1000: the 128x128 CT prior of Chapter 09",
    data="phantoms", data_kwargs={"size": 128},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 128, "base": 16, "channel_mults": [1, 1, 2, 2, 4],
                            "num_res": 1, "attn_res": [8], "T": 1000},
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=2000, batch_size=8, lr=2e-3, ema_decay=0.999, seed=0, warmup=200, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 20, "batch_size": 4, "data_kwargs": {"size": 128, "n": 32}}))

register(Recipe(
    name="phantom_ae64", description="convolutional autoencoder (8x8x4 bottleneck) on the same healthy 64x64 "
                                     "phantoms: the reconstruction baseline of anomaly detection (Chapter 09)",
    data="phantoms", data_kwargs={"size": 64},
    net="autoencoder", net_kwargs={"in_channels": 1, "image_size": 64, "base": 16, "levels": 3,
                                   "latent_channels": 4},
    schedule=None, loss="reconstruction",
    steps=1500, batch_size=32, lr=2e-3, ema_decay=0.999, seed=0, warmup=100, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 30, "batch_size": 8, "data_kwargs": {"size": 64, "n": 64}}))
