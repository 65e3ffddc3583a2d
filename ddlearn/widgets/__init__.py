"""Interactive explorers for the book, one module per topic, all built on :mod:`._base`.

Each explorer is an ``ipywidgets`` box whose display also carries a static PNG
fallback, so it shows in the HTML book and on code hosts. See
:mod:`ddlearn.widgets._base` for the pattern to follow when adding one.
"""
from ._base import Explorer
from .noising import NoisingExplorer, ScheduleExplorer, noising_explorer, schedule_explorer

__all__ = ["Explorer", "NoisingExplorer", "ScheduleExplorer", "noising_explorer", "schedule_explorer"]

from .samplers import SamplerExplorer, sampler_explorer  # noqa: E402  (Chapter 05)

__all__ += ["SamplerExplorer", "sampler_explorer"]

# Chapter 06: guidance and inverse problems
from .guidance import GuidanceExplorer, PosteriorExplorer, guidance_explorer, posterior_explorer  # noqa: E402

__all__ += ["GuidanceExplorer", "PosteriorExplorer", "guidance_explorer", "posterior_explorer"]

# Chapters 03-04: score fields with Langevin paths; reverse SDE vs PF-ODE trajectories
from .score import ScoreFieldExplorer, SDETrajectoryExplorer, score_field_explorer, sde_trajectory_explorer  # noqa: E402

__all__ += ["ScoreFieldExplorer", "SDETrajectoryExplorer", "score_field_explorer", "sde_trajectory_explorer"]

# Chapter 02: scrub the DDPM reverse process (x_t and the predicted x0)
from .reverse import Recorder, ReverseExplorer, reverse_explorer  # noqa: E402

__all__ += ["Recorder", "ReverseExplorer", "reverse_explorer"]

# Chapter 07: GDP restoration (task, guidance scale, steps)
from .restoration import RestorationExplorer, restoration_explorer  # noqa: E402

__all__ += ["RestorationExplorer", "restoration_explorer"]

# Chapter 09: medical imaging (case, views / acceleration / t0, step)
from .medical import MedicalExplorer, medical_explorer  # noqa: E402

__all__ += ["MedicalExplorer", "medical_explorer"]

# Chapter 08: animate an image by a prompt, a stride and two guidance scales; scrub the frames
from .video import VideoExplorer, video_explorer  # noqa: E402

__all__ += ["VideoExplorer", "video_explorer"]

# Chapter 10: flow matching (scrub u: the velocity field and the samples moving)
from .flow import FlowExplorer, flow_explorer  # noqa: E402

__all__ += ["FlowExplorer", "flow_explorer"]
