"""Chapter 07 (GDP): the priors restorations run on. 32x32 patches of scikit-image's photographs, gray and
colour (camera, astronaut and coffee held out), and lfw_subset's aligned faces (70 training faces and their
mirror images; 20 held out)."""
from __future__ import annotations

from ..recipe import Recipe, register

#: The patch priors' UNet (the face prior uses the same): 32x32 in, channels 16 / 32 / 64 at 32 / 16 / 8 px,
#: self-attention at 8 px. Sized to train within issue 13's 30 minutes on 2 cores: measured quiet, 0.16-0.17 s a
#: step at batch 32, so 6000 steps take about 17 minutes (the lead's queue, /tmp/q).
PATCH_UNET = {"image_size": 32, "base": 16, "channel_mults": [1, 2, 4], "num_res": 1, "attn_res": [8], "T": 1000}

register(Recipe(
    name="photo_patches_gray", description="32x32 gray patches of scikit-image's photographs (camera, astronaut, "
                                           "coffee held out), small UNet eps-predictor, linear schedule (Chapter 07)",
    data="photo_patches", data_kwargs={"channels": 1},
    net="unet", net_kwargs={"in_channels": 1, **PATCH_UNET},
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=6000, batch_size=32, lr=2e-3, ema_decay=0.999, seed=0, warmup=200, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 30, "batch_size": 8, "data_kwargs": {"channels": 1, "stride": 32}}))

register(Recipe(
    name="photo_patches_rgb", description="32x32 colour patches of scikit-image's colour photographs (astronaut, "
                                          "coffee held out), small UNet eps-predictor, linear schedule (Chapter 07)",
    data="photo_patches", data_kwargs={"channels": 3},
    net="unet", net_kwargs={"in_channels": 3, **PATCH_UNET},
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=6000, batch_size=32, lr=2e-3, ema_decay=0.999, seed=0, warmup=200, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 30, "batch_size": 8, "data_kwargs": {"channels": 3, "stride": 32}}))

register(Recipe(
    name="faces", description="lfw_subset's aligned faces at 32x32 (70 faces and their mirror images; 20 held "
                              "out), small UNet eps-predictor, linear schedule (Chapter 07)",
    data="faces", data_kwargs={"size": 32, "flips": True},
    net="unet", net_kwargs={"in_channels": 1, **PATCH_UNET},
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=4000, batch_size=32, lr=2e-3, ema_decay=0.999, seed=0, warmup=200, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 30, "batch_size": 8}))
