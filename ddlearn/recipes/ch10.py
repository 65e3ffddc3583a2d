"""Chapter 10 (flow matching and rectified flow): the flow-matching twins of Chapter 02's models, and the panel.

* ``flow_mixture``: the ring of 8 Gaussians, Chapter 02's ``mixture`` recipe (same MLP, steps, batch, learning
  rate, EMA) trained by conditional flow matching on the straight path (:class:`ddlearn.flow.FlowPath`);
* ``flow_digits``: Chapter 02's ``digits`` UNet and recipe trained by flow matching (the velocity of the
  straight path instead of the noise), its weights stored in float16 (half the bytes of the shipped set's
  budget, tests/test_pretrained.py);
* ``flow_panel_NAME`` / ``ddpm_panel_NAME``: one flow-matching and one DDPM model of the same size and training
  budget (:data:`PANEL_STEPS`) for each 2-D mixture of ``benchmarks/samplers.py``'s exact panel
  (:data:`PANEL_MIXTURES`); ``benchmarks/flow.py`` trains them (or reads them from its ``--dir``) and compares
  them at 4, 10 and 20 evaluations against the exact mixture.
"""
from __future__ import annotations

from dataclasses import replace

from ..recipe import Recipe, register
from .ch02 import TOY_MLP

#: What flow matching changes in a recipe: the time frame is the straight path, the loss regresses the velocity.
FLOW = {"schedule": "flow", "schedule_kwargs": {"T": 1000}, "loss": "flow"}

_MIXTURE = Recipe(
    name="flow_mixture", description="2-D ring of 8 Gaussians, Chapter 02's mixture MLP trained by flow matching "
                                     "on the straight path (Chapter 10)",
    data="mixture", data_kwargs={"n": 10000, "name": "ring8"}, net="mlp", net_kwargs=dict(TOY_MLP),
    steps=20000, batch_size=512, lr=2e-3, ema_decay=0.995, seed=0, warmup=200,
    evaluate=("heldout_loss", "flow_sw"), fast={"steps": 200, "eval_samples": 200}, **FLOW)
register(_MIXTURE)

register(Recipe(
    name="flow_digits", description="scikit-learn digits at 16x16, Chapter 02's digits UNet trained by flow "
                                    "matching on the straight path (Chapter 10)",
    data="digits", data_kwargs={"size": 16},
    net="unet", net_kwargs={"in_channels": 1, "image_size": 16, "base": 24, "channel_mults": [1, 2, 2],
                            "num_res": 1, "attn_res": [4], "T": 1000},
    steps=5000, batch_size=64, lr=1.5e-3, ema_decay=0.999, seed=0, warmup=200, storage="float16",
    evaluate=("heldout_loss",), fast={"steps": 60, "batch_size": 16}, **FLOW))

#: The 2-D mixtures of benchmarks/samplers.py's exact panel (hd16 and the swiss roll are not mixtures of
#: ddlearn.oracles.named_mixture; the @cosine rows differ only in the DDPM model's schedule).
PANEL_MIXTURES = ("ring8", "two", "grid9", "tight", "broad", "multiscale", "cross")
#: Half the shipped mixture model's budget (Chapter 02 measured ring8 at 10,000 steps as good as at 20,000).
PANEL_STEPS = 10000
for _name in PANEL_MIXTURES:
    _common = dict(data_kwargs={"n": 10000, "name": _name}, steps=PANEL_STEPS, evaluate=("heldout_loss",))
    register(replace(_MIXTURE, name=f"flow_panel_{_name}", description=f"Chapter 10's panel: {_name}, flow "
                     f"matching, {PANEL_STEPS} steps of the 2-D MLP", **_common))
    register(replace(_MIXTURE, name=f"ddpm_panel_{_name}", schedule="linear", loss="simple",
                     description=f"Chapter 10's panel: {_name}, DDPM (eps, linear schedule), {PANEL_STEPS} steps "
                                 f"of the same 2-D MLP", **_common))
