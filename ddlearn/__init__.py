"""ddlearn: the library beside the diffusion-models textbook.

Every chapter of the book imports what it needs from here; nothing in a
notebook copies library code. Conventions (see README, "Conventions"):

* images are ``(B, C, H, W)`` float tensors in [-1, 1]; point clouds ``(B, 2)``;
  clips ``(B, C, F, H, W)``;
* time follows :mod:`ddlearn.schedules` (integer index 0..T-1, 0 least noisy;
  fractional t allowed);
* networks predict eps; :mod:`ddlearn.param` converts;
* randomness is explicit (``torch.Generator`` arguments), never global.
"""

__version__ = "0.1.0"
