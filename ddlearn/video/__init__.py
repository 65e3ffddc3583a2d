"""Animating still images (Chapter 08, after DynamiCrafter), one job a module.

* :mod:`.sampling`    :func:`animate` turns a conditioning image, a motion prompt and a frame stride
  into a clip (DDIM with two classifier-free guidance scales, image then prompt); :func:`guided` is
  the guided ``model(z_t, t)`` it samples;
* :mod:`.metrics`     a sprite tracker against the truth that made the clip (:func:`track`), every
  per-clip figure (:func:`clip_metrics`: direction, displacement, trackable frames, shape IoU,
  still/bounce, appearance drift, noise frames: :func:`noise_frames`), their :func:`summarize` by group, and the Frechet clip distance
  (:func:`frechet_clip_distance`); the thresholds are the module's constants;
* :mod:`.evaluation`  the held-out clips every figure is measured on (:func:`heldout_set`, a validation
  set with :data:`VALIDATION_SEED`), a model animating and measured on them (:func:`measure_model`),
  and the figures a checkpoint's sidecar records (:func:`sidecar_metrics`).

The network is :class:`ddlearn.nets.VideoUNet`, the clips :mod:`ddlearn.data.clips`, the explorer
:mod:`ddlearn.widgets.video`. Everything public is re-exported here: ``video.animate``,
``video.track``, ``video.heldout_set``.
"""
from .sampling import animate, guided
from .metrics import (ANGLE, AREA_RANGE, MIN_LENGTH, NOISE_FACTOR, RESIDUAL, STILL_PX, clip_features, clip_metrics,
                      direction_right, evaluate_clips, fitted_displacement, frechet_clip_distance, noise_frames,
                      roughness, sprite_colours, summarize, track)
from .evaluation import STRAIGHT, VALIDATION_SEED, heldout_set, measure_model, sidecar_metrics, subset

__all__ = ["animate", "guided",
           "track", "sprite_colours", "fitted_displacement", "direction_right", "clip_metrics", "summarize",
           "evaluate_clips", "clip_features", "frechet_clip_distance", "roughness", "noise_frames",
           "RESIDUAL", "AREA_RANGE", "ANGLE", "MIN_LENGTH", "STILL_PX", "NOISE_FACTOR",
           "STRAIGHT", "VALIDATION_SEED", "heldout_set", "subset", "measure_model", "sidecar_metrics"]
