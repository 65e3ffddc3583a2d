"""benchmarks/samplers.py's own machinery: diffusers run with the model at exact times, the converged-ODE scores.

The panel compares our samplers with diffusers' schedulers (Chapter 05, issue 26). Two of its columns
explain results that would otherwise mislead: diffusers' sigma grids call the model at whole timesteps
(*rounded down* on the "exp" grid) while the solver uses the exact sigmas (the ``-exact-t`` twins call it
where the sigmas say), and the score of the converged ODE solution itself (a few-step sampler far below it has its
errors cancel the ODE's own, it has not solved the ODE better).
"""
import importlib.util
import math
import pathlib
import sys

import pytest
import torch

pytest.importorskip("diffusers")

from ddlearn.oracles import named_mixture  # noqa: E402
from ddlearn.schedules import linear  # noqa: E402

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "samplers.py"
_spec = importlib.util.spec_from_file_location("bench_samplers", _PATH)
B = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = B  # its dataclasses look their module up there
_spec.loader.exec_module(B)

SCHEDULE = linear(1000)


class Recording:
    """An eps model that remembers the timesteps it was asked at."""

    def __init__(self, model):
        self.model, self.ts = model, []

    def __call__(self, x, t):
        self.ts.append(float(t.reshape(-1)[0]))
        return self.model(x, t)


def test_every_exact_time_twin_has_its_base():
    twins = [n for n in B.DIFFUSERS if "-exact-t[" in n]
    assert len(twins) >= 5
    for n in twins:
        base = n.replace("-exact-t[", "[")
        assert base in B.DIFFUSERS
        cls, cfg = B.DIFFUSERS[n]
        assert cls == B.DIFFUSERS[base][0] and cfg == {**B.DIFFUSERS[base][1], "_exact_t": True}


def test_exact_times_match_the_solvers_sigmas_and_rounded_ones_do_not():
    model = named_mixture("ring8").eps_model(SCHEDULE)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    rounded, exact = Recording(model), Recording(model)
    a, _ = B.run_diffusers("DEIS-3[exp]", rounded, x_T, SCHEDULE, 10)
    b, _ = B.run_diffusers("DEIS-3-exact-t[exp]", exact, x_T, SCHEDULE, 10)
    assert all(t == round(t) for t in rounded.ts)
    assert any(t != round(t) for t in exact.ts)
    # diffusers truncates: the model is always told a little less noise than the solver assumes
    assert all(0 <= e - r < 1 for r, e in zip(rounded.ts, exact.ts))
    # at the exact times the model's noise level is the solver's: log-SNR = -2 log sigma (VE sigma)
    import diffusers

    sched = diffusers.DEISMultistepScheduler(num_train_timesteps=1000, trained_betas=SCHEDULE.betas.numpy(),
                                             solver_order=3, use_exponential_sigmas=True)
    sched.set_timesteps(10)
    for t, sigma in zip(exact.ts, sched.sigmas[:-1]):
        want = -2 * math.log(float(sigma))
        assert float(SCHEDULE.log_snr_at(torch.tensor(t, dtype=torch.float64))) == pytest.approx(want, abs=1e-6)
    assert torch.isfinite(a).all() and torch.isfinite(b).all() and not torch.equal(a, b)


def test_exact_times_change_nothing_on_an_integer_grid():
    """On a grid of whole timesteps (DDIM-style "trailing"), the sigmas' own timesteps are the rounded ones."""
    model = named_mixture("tight").eps_model(SCHEDULE)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    cls, cfg = B.DIFFUSERS["DPMMultistep-dpmsolver++-2M[trailing]"]
    B.DIFFUSERS["_test_exact"] = (cls, {**cfg, "_exact_t": True})
    try:
        rounded, exact = Recording(model), Recording(model)
        a, _ = B.run_diffusers("DPMMultistep-dpmsolver++-2M[trailing]", rounded, x_T, SCHEDULE, 8)
        b, _ = B.run_diffusers("_test_exact", exact, x_T, SCHEDULE, 8)
    finally:
        del B.DIFFUSERS["_test_exact"]
    assert exact.ts == pytest.approx(rounded.ts, abs=1e-3)
    assert torch.allclose(a, b, atol=1e-4)


def test_converged_ode_scores_round_trip_through_the_csv(tmp_path):
    quality = lambda x, k: {"MMD": float(x.mean()) + k, "ODE": 0.0}  # noqa: E731
    refs = [torch.full((4, 2), 1.0), torch.full((4, 2), 3.0)]
    conv = B._converged(quality, refs)
    assert conv == {"MMD": pytest.approx((1.0 + 4.0) / 2)}  # the ODE column is a distance to refs: left out
    path = tmp_path / "runs.csv"
    path.write_text("problem,library,configuration,budget,nfe,seed,measure,value,wall_s\n"
                    "p,ddlearn,DDIM[quadratic] (default),10,10,0,MMD,7.0,0.1\n"
                    "p,floor,exact samples,10,,,MMD,0.1,\n"
                    f"p,floor,converged ODE,10,,,MMD,{conv['MMD']},\n")
    got = {}
    results = B.load_csv([str(path)], got)
    assert got == {("p", "MMD"): pytest.approx(2.5)}
    assert len(results) == 1 and results[0].config.startswith("DDIM[quadratic]")
    assert results[0].runs == [{"MMD": 7.0}]


def test_ours_filter_runs_only_the_named_sampler_and_a_later_csv_replaces_its_rows(tmp_path):
    mix = named_mixture("ring8")
    quality = lambda x, k: {"MMD": float(x.pow(2).mean())}  # noqa: E731
    problem = B.Problem("ring8", mix.eps_model(SCHEDULE), SCHEDULE, [torch.randn(16, 2)], quality, "MMD")
    res = B.evaluate(problem, 6, libraries=("ddlearn",), ours=["DPM-Solver-3M"])
    assert {r.config.split("[")[0] for r in res} == {"DPM-Solver-3M"}
    assert len(res) == len(B.SPACINGS)
    header = "problem,library,configuration,budget,nfe,seed,measure,value,wall_s\n"
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text(header + "p,ddlearn,DPM-Solver-3M[logsnr] (default),10,10,0,MMD,5.0,0.1\n"
                            "p,ddlearn,DDIM[quadratic] (default),10,10,0,MMD,7.0,0.1\n")
    new.write_text(header + "p,ddlearn,DPM-Solver-3M[logsnr] (default),10,10,0,MMD,2.0,0.1\n")
    got = {r.config.replace(" (default)", ""): r.runs for r in B.load_csv([str(old), str(new)])}
    assert got == {"DPM-Solver-3M[logsnr]": [{"MMD": 2.0}], "DDIM[quadratic]": [{"MMD": 7.0}]}
    with pytest.raises(SystemExit):
        B.main(["--ours", "DPM-Solver-9M", "--problems", "ring8"])


def test_ending_twins_skip_trailing_and_one_of_each_family_is_the_default():
    """The final="trapezoid" and "sigma_min" twins run on every grid that ends at t = 0 (not "trailing"), each
    spends the budget it is given, and "(default)" marks, among a sampler's endings, only the one its
    signature's final= gives on its default grid."""
    import inspect
    labels = {label for *_, label in B.ours_configs()}
    for suffix in ("-sigmamin", "-trapezoid"):
        assert f"DPM-Solver-3M{suffix}[trailing]" not in labels
    assert "DPM-Solver-3M[trailing]" in labels
    assert B.family_of("DPM-Solver-3M") == {"DPM-Solver-3M", "DPM-Solver-3M-trapezoid", "DPM-Solver-3M-sigmamin"}
    assert B.family_of("DPM-Solver-2M-sigmamin") == {"DPM-Solver-2M", "DPM-Solver-2M-trapezoid",
                                                     "DPM-Solver-2M-sigmamin"}
    for base in ("DPM-Solver++(2M)", "DPM-Solver-2M", "DPM-Solver-3M"):
        fn = B.OURS[base][0]
        grid = inspect.signature(fn).parameters["spacing"].default
        want = B.final_grid(SCHEDULE, 10, grid, inspect.signature(fn).parameters["final"].default)[2]
        marked = [n for n in B.family_of(base) if f"{n}[{grid}] (default)" in labels]
        assert marked == [n for n in B.family_of(base) if B.final_of(n) == want], (base, marked, want)
    mix = named_mixture("ring8")
    for name in ("DPM-Solver-3M-sigmamin", "DPM-Solver++(2M)-sigmamin"):
        rec = Recording(mix.eps_model(SCHEDULE))
        x, nfe = B.run_ours(name, "logsnr", rec, torch.randn(16, 2, dtype=torch.float64), SCHEDULE, 10)
        assert nfe == 10 and len(rec.ts) == 10 and min(rec.ts) > 0  # the 10th evaluation is not at t = 0
