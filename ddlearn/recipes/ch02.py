"""Chapter 02 (DDPM): the swiss roll and ring-of-8 MLPs, the 16x16 digits UNet, the clean digit classifier."""
from __future__ import annotations

from ..recipe import Recipe, register

#: The 2-D MLP every point-cloud recipe trains (toy2d, mixture, the SDE rings of Chapter 04): one definition.
TOY_MLP = {"dim": 2, "hidden": 128, "depth": 3, "emb_dim": 64, "T": 1000}

register(Recipe(
    name="toy2d", description="2-D swiss roll, residual MLP eps-predictor, linear schedule T=1000 (Chapter 02)",
    data="swiss_roll", data_kwargs={"n": 10000},
    net="mlp", net_kwargs=dict(TOY_MLP),
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=4000, batch_size=512, lr=2e-3, ema_decay=0.995, seed=0, warmup=200,
    evaluate=("heldout_loss", "toy_sw"), fast={"steps": 200, "eval_samples": 200}))

#: mixture: 20,000 steps, chosen by measurement (Chapter 02, issue 11). At 3,000 steps the samples smeared the
#: eight clusters into a continuous ring (mean true log-density -3.06 against the exact oracle's +0.08, 38% of the
#: samples within 2 sd of a centre against 85%); 10,000 steps reached +0.00 / 84%, 20,000 steps +0.03 / 84%; a
#: 256-wide, 4-block MLP or lr 1e-3 did not beat the longer run (3 sampling seeds, 2000 points, 1000 ancestral steps:
#: see the report of issue 11 and benchmarks/ddpm.py table 2b).
register(Recipe(
    name="mixture", description="2-D ring of 8 Gaussians (exact oracle known), same MLP as toy2d (Chapter 02)",
    data="mixture", data_kwargs={"n": 10000, "name": "ring8"},
    net="mlp", net_kwargs=dict(TOY_MLP),
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=20000, batch_size=512, lr=2e-3, ema_decay=0.995, seed=0, warmup=200,
    evaluate=("heldout_loss", "toy_sw"), fast={"steps": 200, "eval_samples": 200}))

register(Recipe(
    name="digits", description="scikit-learn digits at 16x16, small UNet eps-predictor, linear schedule T=1000 (Chapter 02)",
    data="digits", data_kwargs={"size": 16},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 16, "base": 24, "channel_mults": [1, 2, 2],
                            "num_res": 1, "attn_res": [4], "T": 1000},
    schedule="linear", schedule_kwargs={"T": 1000},
    steps=5000, batch_size=64, lr=1.5e-3, ema_decay=0.999, seed=0, warmup=200,
    evaluate=("heldout_loss",), fast={"steps": 60, "batch_size": 16}))

register(Recipe(
    name="digit_classifier", description="clean-digit CNN classifier; its features define the Frechet digit distance",
    data="digits_labelled", data_kwargs={"size": 16},
    net="classifier", net_kwargs={"in_channels": 1, "num_classes": 10, "width": 32, "feature_dim": 64},
    schedule=None, loss="cross_entropy", cond=("y",),
    steps=1500, batch_size=128, lr=2e-3, ema_decay=0.99, seed=0, warmup=50,
    evaluate=("accuracy",), fast={"steps": 50}))
