"""Exercise checkers of Chapter 08 (animating still images), registered in :mod:`ddlearn.exercises`."""
from __future__ import annotations

import torch

from . import close, exercise, not_callable, whole


@exercise("08.1", "DynamiCrafter's two scales as one weighted sum",
          hint="expand the nested expression and collect the coefficient of each of the three "
               "predictions")
def _(answer):
    # weights of (eps(c, p), eps(c, 0), eps(0, 0)) at s_i = 1.5, s_p = 3
    s_i, s_p = 1.5, 3.0
    return close(answer, [s_p, s_i - s_p, 1 - s_i], rtol=1e-9, what="(weight of eps(c,p), of eps(c,0), of eps(0,0))")


@exercise("08.2", "where a bouncing sprite turns",
          hint="follow the sprite's free path from section 1, then fold it back at the wall (the "
               "floor sits one radius inside the clip)")
def _(answer):
    from ..data.clips import trajectory

    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return "give a pair (frame, y)"
    y = trajectory("bounce", (8.0, 10.5), 3, 16, 2.0)[:, 1]
    frame = int(y.argmax())
    if whole(answer[0]) != frame:
        return f"the lowest frame is not {answer[0]}"
    return close(answer[1], float(y[frame]), rtol=1e-6, what="y at the lowest frame")


@exercise("08.3", "the elastic bounce as a closed form",
          hint="motion between two walls is periodic with period twice the distance between "
               "them; on the way back the position mirrors the way out")
def _(answer):
    from ..data.clips import reflect

    problem = not_callable(answer, "reflect(p, lo, hi)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    p = (torch.rand(500, generator=g, dtype=torch.float64) - 0.3) * 60
    got = torch.as_tensor(answer(p, 2.0, 13.0), dtype=torch.float64)
    return close(got, torch.from_numpy(reflect(p.numpy(), 2.0, 13.0)), rtol=1e-9, atol=1e-9,
                 what="reflect(p, 2, 13) on 500 positions from -18 to 42")


@exercise("08.4", "two-scale guidance with the prompt's factor first",
          hint="factor p(z | c, p) the other way round with Bayes' rule, raise each classifier to its "
               "own scale, and write each classifier's score as a difference of two conditional scores")
def _(answer):
    from ..guidance import classifier_free
    from ..nets import VideoUNet

    problem = not_callable(answer, "prompt_first(eps_null, eps_prompt, eps_full, s_prompt, s_img)")
    if problem:
        return problem
    g = torch.Generator().manual_seed(0)
    net = VideoUNet(image_size=16, base=16, T=100)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    x = torch.randn(2, 3, 8, 16, 16, generator=g)
    image = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    prompt = torch.tensor([[3, 2], [6, 0]])
    t = torch.full((2,), 40.0)
    nulls = net.null_conditions(2)
    stride = torch.full((2,), 2)
    with torch.no_grad():
        e_full = net(x, t, image=image, prompt=prompt, stride=stride)
        e_prompt = net(x, t, image=nulls["image"], prompt=prompt, stride=stride)
        e_null = net(x, t, image=nulls["image"], prompt=nulls["prompt"], stride=stride)
        # the library's nested guidance applies its conditions in the order given: here the prompt first
        want = classifier_free(net, {"stride": (stride, stride), "prompt": (prompt, nulls["prompt"]),
                                     "image": (image, nulls["image"])},
                               {"stride": 1.0, "prompt": 4.0, "image": 1.5})(x, t)
    return close(answer(e_null, e_prompt, e_full, 4.0, 1.5), want, rtol=1e-4, atol=1e-5,
                 what="prompt_first(...) against ddlearn.guidance.classifier_free with the prompt first, "
                      "scales 4 (prompt) and 1.5 (image)")


@exercise("08.5", "the tracker on a clip played backwards",
          hint="played backwards, every displacement changes sign, and frame 0 of the reversed "
               "clip is the last frame of the original; apply each metric's definition in "
               "section 7 to that")
def _(answer):
    import numpy as np

    from ..video.evaluation import heldout_set
    from ..video.metrics import evaluate_clips

    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        return "give a triple (share with the direction right, error / commanded length, frame-0 PSNR >= 30 dB?)"
    share, ratio, above = answer
    if not isinstance(above, (bool, np.bool_)):
        return "the third entry is True or False (is the mean frame-0 PSNR at least 30 dB?)"
    evalset = heldout_set(16, per_cell=1, multi=0, still=0, bounce=0)     # the 32 one-sprite moving clips
    rows, summary = evaluate_clips(evalset["x"].flip(2), evalset["specs"])
    problem = close(share, summary["direction_right_1"][0], rtol=0, atol=0.05, what="the share with the direction right")
    if problem:
        return problem
    want = float(np.mean([r["displacement_error"] / r["commanded_length"] for r in rows]))
    problem = close(ratio, want, rtol=0.1, what="the displacement error in units of the commanded length")
    if problem:
        return problem
    if bool(above) != (summary["psnr0"][0] >= 30):
        return f"the mean frame-0 PSNR is {summary['psnr0'][0]:.1f} dB"
    return None


@exercise("08.6", "how fast the stochastic sampler forgets where it started",
          hint="the weight of the current state in one step is c_t = sqrt(1 - abar_s - varsigma^2) / sqrt(1 - abar_t); "
               "at eta = 1 it is DDPM's posterior-mean weight; multiply the first five")
def _(answer):
    from ..samplers.ddim import step_weights
    from ..schedules import linear

    want = float(step_weights(linear(T=1000), 25, eta=1.0)["memory"][4])
    return close(answer, want, rtol=0.02, what="the share of the starting state left after 5 of 25 steps at eta = 1")
