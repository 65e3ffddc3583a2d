"""Chapter 04's exercise checkers (ddlearn/exercises/ch04.py): right answers, from the formulas written here, pass;
wrong ones do not."""
import math

from ddlearn.exercises import evaluate


def B(u, beta_min=0.1, beta_max=20.0):  # integral of VP's linear beta(u) from 0 to u (Song et al. 2021)
    return beta_min * u + 0.5 * (beta_max - beta_min) * u ** 2


def test_checkers_04():
    assert evaluate("04.1", lambda u: 1 - math.exp(-B(u))).ok
    assert not evaluate("04.1", lambda u: math.sqrt(1 - math.exp(-B(u)))).ok  # VP's std, not sub-VP's

    def g2(u, lo=0.01, hi=50.0):  # VE: sigma(u) = lo (hi/lo)^u, g^2 = d sigma^2 / du
        return 2 * math.log(hi / lo) * (lo * (hi / lo) ** u) ** 2

    assert evaluate("04.2", lambda x, u, score: -0.5 * g2(u) * score).ok
    assert not evaluate("04.2", lambda x, u, score: -g2(u) * score).ok  # the reverse SDE's drift
    assert evaluate("04.3", math.log2(17)).ok and not evaluate("04.3", 4.0).ok


def test_checker_04_4_gaussian_pf_velocity_under_ve():
    # written from the formulas, not the library: VE's s(u) = sigma(u) = lo (hi/lo)^u, g^2 = d s^2/du, f = 0;
    # Gaussian data N(mu, sd^2) has p_u = N(mu, sd^2 + s(u)^2), so v = -1/2 g^2 score = 1/2 g^2 (x - mu) / var
    def velocity(x, u, mu=0.5, sd=0.3, lo=0.01, hi=50.0):
        s2 = (lo * (hi / lo) ** u) ** 2
        return 0.5 * 2 * math.log(hi / lo) * s2 * (x - mu) / (sd ** 2 + s2)

    assert evaluate("04.4", velocity).ok
    assert not evaluate("04.4", lambda x, u: 2 * velocity(x, u)).ok  # the reverse SDE's pull, not the ODE's
    assert not evaluate("04.4", lambda x, u: velocity(x, u, sd=1.0)).ok  # the wrong data variance
