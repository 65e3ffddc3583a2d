"""Chapter 02's exercise checkers (ddlearn/exercises/ch02.py) accept right answers and refuse wrong ones."""
from ddlearn import losses, schedules


def test_chapter_02_exercise_checkers_accept_right_and_refuse_wrong_answers():
    from ddlearn import exercises as ex

    s = schedules.linear()

    def mu(x_t, eps, t, s):
        return (x_t - s.betas[t] / (1 - s.alpha_bars[t]).sqrt() * eps) / s.alphas[t].sqrt()

    def step(model, x, t, s, z):
        return mu(x, model(x, t), t, s) + (s.betas[t].sqrt() * z if t > 0 else 0)

    w = losses.vlb_weights(s)
    assert ex.evaluate("02.1", (s.betas[1] * (1 - s.alpha_bars[0]) / (1 - s.alpha_bars[1])).item()).ok
    assert not ex.evaluate("02.1", s.betas[1].item()).ok
    assert ex.evaluate("02.2", mu).ok and not ex.evaluate("02.2", lambda x, e, t, s: x).ok
    assert ex.evaluate("02.3", (w[1] / w[999]).item()).ok and not ex.evaluate("02.3", 1.0).ok
    assert ex.evaluate("02.4", step).ok and not ex.evaluate("02.4", lambda m, x, t, s, z: mu(x, m(x, t), t, s)).ok
