r"""Explorers for score-based models (Chapters 03 and 04).

* :func:`score_field_explorer` - the score :math:`\nabla_x\log p_\sigma(x)` of
  2-D data noised to level sigma, drawn as a vector field over the plane: the
  exact field of a Gaussian mixture and/or a learned one side by side, a
  slider over sigma, and Langevin trajectories at that sigma drawn on top.
* :func:`sde_trajectory_explorer` - the reverse SDE and the probability-flow
  ODE started from the *same* x_T, scrubbed over time: the SDE's particles
  jitter, the ODE's glide, and both arrive at the same distribution.

Everything is computed once when the explorer is made (fields on a grid,
trajectories through the samplers' ``callback``); the slider only swaps the
arrays shown, so it stays responsive.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from .. import _checks
from ..langevin import langevin, noise_conditional_score
from ._base import Explorer


def _field(score, sigma: float, grid: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return score(grid.float(), torch.full((grid.shape[0],), sigma, dtype=torch.float64)).double().numpy()


class ScoreFieldExplorer(Explorer):
    """Vector fields of exact / learned scores at a chosen noise level, with Langevin paths."""

    def __init__(self, scores: dict, sigmas, *, lim: float = 2.0, n_grid: int = 21, n_paths: int = 12,
                 langevin_steps: int = 60, step_scale: float = 0.05, min_step_sigma: float = 0.1, seed: int = 0,
                 data=None):
        if not scores:
            raise ValueError("give at least one score: exact= (a GaussianMixture) and/or model= with frame=")
        sig = [float(s) for s in sigmas]
        if not sig or any(not (s > 0) for s in sig):
            raise ValueError(f"sigmas must be positive numbers, got {sigmas}")
        _checks.number("lim", lim, low=0, low_open=True)
        _checks.positive_int("n_grid", n_grid, minimum=2)
        self.names, self.sigmas, self.lim, self.data = list(scores), sig, lim, data
        ax1 = torch.linspace(-lim, lim, n_grid, dtype=torch.float64)
        gx, gy = torch.meshgrid(ax1, ax1, indexing="xy")
        grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
        self.gx, self.gy = gx.numpy(), gy.numpy()
        self.fields = {n: [_field(f, s, grid) for s in sig] for n, f in scores.items()}
        # Langevin at fixed sigma from the same starts, step proportional to sigma^2 (the score's scale), but
        # not below step_scale * min_step_sigma^2, or at tiny sigma the paths would not visibly move
        g = torch.Generator().manual_seed(seed)
        starts = (torch.rand(n_paths, 2, generator=g) * 2 - 1) * lim  # float32, as networks expect
        self.paths = {}
        for n, f in scores.items():
            per = []
            for s in sig:
                states = [starts]

                def keep(step, states=states):
                    states.append(step.x)

                sc = (lambda x, f=f, s=s: f(x, torch.full((x.shape[0],), s, dtype=torch.float64)))
                langevin(sc, starts, step_scale * max(s, min_step_sigma) ** 2, langevin_steps, generator=torch.Generator().manual_seed(seed),
                         callback=keep, progress=False)
                per.append(torch.stack(states, 1).double().numpy())  # (n_paths, steps + 1, 2)
            self.paths[n] = per
        slider = widgets.SelectionSlider(options=[(f"{s:.3g}", i) for i, s in enumerate(sig)], value=0,
                                         description="sigma")
        super().__init__({"level": slider}, figsize=(4.2 * len(scores), 4.0))

    def build(self, fig):
        self.quivers, self.lines, self.titles = {}, {}, {}
        axes = fig.subplots(1, len(self.names), squeeze=False)[0]
        for ax, name in zip(axes, self.names):
            if self.data is not None:
                d = self.data.detach().double().numpy()
                ax.plot(d[:, 0], d[:, 1], ".", ms=1.5, color="0.75", zorder=0)
            self.quivers[name] = ax.quiver(self.gx, self.gy, np.zeros_like(self.gx), np.zeros_like(self.gy),
                                           np.zeros_like(self.gx), cmap="viridis", scale=28, width=0.004,
                                           clim=(-1, 3))
            self.lines[name] = [ax.plot([], [], "-", lw=0.6, color="tab:red", alpha=0.45)[0]
                                for _ in range(self.paths[name][0].shape[0])]
            self.lines[name] += [ax.plot([], [], "o", ms=3, color="tab:red")[0]]
            ax.set_xlim(-self.lim, self.lim)
            ax.set_ylim(-self.lim, self.lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize="x-small")
            self.titles[name] = ax.set_title(name, fontsize="small")

    def update(self, level):
        s = self.sigmas[level]
        for name in self.names:
            f = self.fields[name][level]
            mag = np.linalg.norm(f, axis=1) + 1e-12
            # unit arrows (direction), colour = log10 |score| (the size spans decades across sigma)
            u, v = (f[:, 0] / mag).reshape(self.gx.shape), (f[:, 1] / mag).reshape(self.gx.shape)
            self.quivers[name].set_UVC(u, v, np.log10(mag).reshape(self.gx.shape))
            paths = self.paths[name][level]
            for line, p in zip(self.lines[name][:-1], paths):
                line.set_data(p[:, 0], p[:, 1])
            self.lines[name][-1].set_data(paths[:, -1, 0], paths[:, -1, 1])
            self.titles[name].set_text(f"{name}: score at sigma={s:.3g} (colour: log10 |score|)")

    def static_states(self):
        n = len(self.sigmas)
        return [{"level": i} for i in sorted({0, n // 2, n - 1})]


def score_field_explorer(exact=None, model=None, frame=None, *, sigmas=(2.0, 1.0, 0.5, 0.25, 0.1, 0.05),
                         lim: float = 2.0, n_grid: int = 21, n_paths: int = 8, langevin_steps: int = 60,
                         step_scale: float = 0.05, min_step_sigma: float = 0.1, seed: int = 0,
                         data=None) -> ScoreFieldExplorer:
    """The score field of 2-D data noised to each sigma (VE view ``x_0 + sigma * eps``).

    ``exact``: a :class:`~ddlearn.oracles.GaussianMixture`; ``model`` + ``frame``: an
    eps-model and the Schedule or SDE it was trained in (:func:`ddlearn.langevin.noise_conditional_score`).
    Red: Langevin trajectories at the chosen sigma (step ``step_scale * max(sigma, min_step_sigma)^2``).
    ``data``: points drawn grey.
    """
    scores = {}
    if exact is not None:
        scores["exact"] = noise_conditional_score(exact)
    if model is not None:
        if frame is None:
            raise ValueError("model needs frame= (the Schedule or SDE it was trained in)")
        scores["learned"] = noise_conditional_score(model, frame)
    return ScoreFieldExplorer(scores, sigmas, lim=lim, n_grid=n_grid, n_paths=n_paths,
                              langevin_steps=langevin_steps, step_scale=step_scale, min_step_sigma=min_step_sigma,
                              seed=seed, data=data)


class SDETrajectoryExplorer(Explorer):
    """Reverse SDE and PF-ODE from the same x_T, side by side, scrubbed over the steps."""

    def __init__(self, runs: dict, *, lim: float = 2.5, n_trails: int = 4):
        self.runs, self.lim, self.n_trails = runs, lim, n_trails
        self.n = min(len(v) for v in runs.values())
        step = widgets.IntSlider(value=self.n - 1, min=0, max=self.n - 1, description="step")
        play = widgets.Play(value=self.n - 1, min=0, max=self.n - 1, interval=120)
        widgets.jslink((play, "value"), (step, "value"))
        super().__init__({"step": step}, figsize=(4.2 * len(runs), 4.0), extra=[play])

    def build(self, fig):
        axes = fig.subplots(1, len(self.runs), squeeze=False)[0]
        self.artists = {}
        for ax, (name, states) in zip(axes, self.runs.items()):
            pts = ax.plot([], [], ".", ms=3, alpha=0.6, mew=0)[0]
            trails = [ax.plot([], [], "-", lw=0.7, color="tab:red", alpha=0.6)[0] for _ in range(self.n_trails)]
            title = ax.set_title(name, fontsize="small")
            ax.set_xlim(-self.lim, self.lim)
            ax.set_ylim(-self.lim, self.lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize="x-small")
            self.artists[name] = (pts, trails, title)

    def update(self, step):
        for name, states in self.runs.items():
            pts, trails, title = self.artists[name]
            x = states[step]["x"]
            pts.set_data(x[:, 0], x[:, 1])
            for k, line in enumerate(trails):
                path = np.stack([s["x"][k] for s in states[:step + 1]])
                line.set_data(path[:, 0], path[:, 1])
            title.set_text(f"{name}: after step {step + 1}/{self.n} (from u={states[step]['u']:.3f})")

    def static_states(self):
        return [{"step": s} for s in sorted({0, self.n // 4, self.n - 1})]


def sde_trajectory_explorer(model, frame, x_T, *, sde=None, steps: int = 100, seed: int = 0, lim: float = 2.5,
                            n_trails: int = 4) -> SDETrajectoryExplorer:
    """Run the reverse SDE (Euler-Maruyama) and the PF-ODE (Heun) from the same 2-D ``x_T``; scrub over steps.

    ``model``/``frame`` as for every SDE sampler (:mod:`ddlearn.samplers.reverse_sde`). The SDE panel shows the
    state after each step, the ODE panel likewise; red lines follow the first ``n_trails`` particles.
    """
    from ..samplers.ode import sample_pf_ode
    from ..samplers.reverse_sde import sample_euler_maruyama, setup

    _checks.tensor("x_T", x_T, ndim=2)
    if x_T.shape[1] != 2:
        raise ValueError(f"x_T must be 2-D points (B, 2), got shape {tuple(x_T.shape)}")
    sde_obj = setup(model, x_T, frame, steps, sde, 1e-3)[0]
    runs = {}
    for name, fn, kw in (("reverse SDE", sample_euler_maruyama, {"generator": torch.Generator().manual_seed(seed)}),
                         ("probability-flow ODE", sample_pf_ode, {"solver": "heun"})):
        states = []

        def keep(s, states=states):
            states.append({"x": s.x.detach().double().numpy(), "u": s.t / (sde_obj.T - 1)})

        fn(model, x_T, frame, steps, sde=sde_obj, callback=keep, progress=False, **kw)
        runs[name] = states
    return SDETrajectoryExplorer(runs, lim=lim, n_trails=n_trails)
