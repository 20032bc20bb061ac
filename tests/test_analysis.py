"""rmsnum.analysis against theory: leaky averages, rates, orbits, classes, thresholds, steps.

The reference numbers are those of the chapter (DESIGN.md): f = 0.1 x1^2 + 2 x2^2 (curvatures
h = 0.2 and 4, f* = 0) from (-5, -2). Gradient descent with step lr multiplies coordinate i's
error by 1 - lr h_i per step, so f - f* shrinks by max_i (1 - lr h_i)^2 once the transient
has passed. RMSProp (gamma < 1) turns into gradient descent with step lr / sqrt(eps) near the
optimum, which is unstable when lr h > 2 sqrt(eps); the run then ends on the period-2 orbit
x_i = +-a_i with lr h_i / sqrt(h_i^2 a_i^2 + eps) = 2.
"""

import dataclasses
import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

import rmsnum as rn
from rmsnum import analysis as an
from rmsnum.analysis import leaky_average_weights

X0 = (-5.0, -2.0)
H = np.array([0.2, 4.0])  # curvatures of quadratic_2d


def test_chapter_weights():
    gammas = [0.95, 0.9, 0.8, 0.7]
    w = leaky_average_weights(gammas, 40)
    assert w.shape == (4, 40)
    for row, gamma in zip(w, gammas):
        np.testing.assert_allclose(row, [(1 - gamma) * gamma**t for t in range(40)], rtol=1e-15)
        assert row.sum() == pytest.approx(1 - gamma**40)


@pytest.mark.parametrize("gamma, error", [(1.5, ValueError), (-0.1, ValueError), ("a", TypeError)])
def test_bad_gamma(gamma, error):
    with pytest.raises(error, match="gamma"):
        leaky_average_weights(gamma)


# --- shared runs ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def q():
    return rn.quadratic_2d()


@pytest.fixture(scope="module")
def sgd_run(q):
    return rn.simulate(rn.SGD(lr=0.1), q, X0, 500)


@pytest.fixture(scope="module")
def orbit_run(q):
    """The chapter's run, continued: it ends on the period-2 orbit."""
    return rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), q, X0, 1000)


@pytest.fixture(scope="module")
def overflow_run(q):
    """Gradient descent with lr h = 4 on the steep coordinate: |1 - 4| = 3 per step, overflows."""
    traj = rn.simulate(rn.SGD(lr=1.0), q, X0, 1000)
    assert traj.diverged
    return traj


# eps = 1e-2 puts the threshold 2 sqrt(eps) / h_max at 0.05, where runs settle within a few
# thousand steps on either side. The factors stay clear of 1: at the threshold itself the
# optimum is only marginally stable.
EPS = 1e-2
THRESHOLD = 2 * math.sqrt(EPS) / 4
FACTORS = np.array([1 / 8, 1 / 4, 1 / 2, 0.7, 1.4, 2, 4, 8])
LRS = THRESHOLD * FACTORS


@pytest.fixture(scope="module")
def threshold_sweep(q):
    return rn.sweep(rn.RMSProp, q, X0, 3000, grid={"lr": LRS}, fixed={"gamma": 0.9, "eps": EPS},
                    record=1, progress=False)


# Every SGD sweep here also asks the kernel for these tolerances: each combination of options is
# a kernel of its own, compiled in seconds on a cold cache, so the tests share one.
TOLS = [1e-2, 1e-6]


@pytest.fixture(scope="module")
def sgd_sweep(q):
    lrs = [0.05, 0.1, 0.2, 0.3, 0.4]
    return lrs, rn.sweep(rn.SGD, q, X0, 500, grid={"lr": lrs}, record=1, tol=TOLS, progress=False)


@pytest.fixture(scope="module")
def final_only(sgd_sweep):
    """A sweep that kept only the final values: what ``record="final"`` gives (no loss history)."""
    return dataclasses.replace(sgd_sweep[1], loss=None, loss_steps=None)


# --- 1. leaky averages and half-lives ------------------------------------------------------------------------------


def test_leaky_weights_single_gamma_and_sum():
    w = leaky_average_weights(0.5, 10)
    assert w.shape == (10,)
    np.testing.assert_allclose(w, 0.5 ** np.arange(1, 11), rtol=1e-15)
    # Weights of the whole (infinite) history sum to 1; gamma = 0 keeps only the last gradient.
    assert leaky_average_weights(0.9, 2000).sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(leaky_average_weights(0.0, 4), [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(leaky_average_weights(1.0, 4), np.zeros(4))


def test_half_life_values():
    assert an.half_life(0.9) == pytest.approx(math.log(2) / -math.log(0.9), rel=1e-15)
    assert an.half_life(0.5) == pytest.approx(1.0, rel=1e-15)
    assert an.half_life(0.0) == 0.0
    assert an.half_life(1.0) == math.inf
    assert an.half_life(1) == math.inf and an.half_life(0) == 0.0
    assert isinstance(an.half_life(0.9), float)
    # The leaky weights halve every half-life: 5 steps for gamma = 2^(-1/5).
    gamma = 0.5 ** (1 / 5)
    assert an.half_life(gamma) == pytest.approx(5.0, rel=1e-13)
    w = leaky_average_weights(gamma, 16)
    np.testing.assert_allclose(w[[5, 10, 15]] / w[0], [0.5, 0.25, 0.125], rtol=1e-13)


def test_half_life_arrays():
    gammas = np.array([[0.0, 0.5, 0.9], [0.99, 0.999, 1.0]])
    out = an.half_life(gammas)
    assert out.shape == (2, 3)
    expected = np.array([[0.0, 1.0, math.log(2) / -math.log(0.9)],
                         [math.log(2) / -math.log(0.99), math.log(2) / -math.log(0.999), math.inf]])
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert np.isposinf(out[1, 2])  # not -inf from ln 2 / -0.0
    assert an.half_life([0.5]).shape == (1,)


def test_half_life_of_a_sweep(q, final_only):
    gammas = [0.5, 0.9, 0.99]
    res = rn.sweep(rn.RMSProp, q, X0, 2, grid={"lr": [0.1, 0.4], "gamma": gammas}, record=1, progress=False)
    out = an.half_life(res)
    assert out.shape == res.shape == (2, 3)
    for row in out:
        np.testing.assert_allclose(row, [math.log(2) / -math.log(g) for g in gammas], rtol=1e-14)
    fixed = rn.sweep(rn.RMSProp, q, X0, 2, grid={"lr": [0.1, 0.4]}, fixed={"gamma": 0.5}, record=1,
                     progress=False)
    np.testing.assert_allclose(an.half_life(fixed), [1.0, 1.0], rtol=1e-14)
    with pytest.raises(ValueError, match="gamma"):
        an.half_life(final_only)  # SGD has no gamma


@pytest.mark.parametrize("gamma, error", [(1.0001, ValueError), (-1e-9, ValueError), (math.nan, ValueError),
                                          ("0.9", TypeError), ([0.5, 2.0], ValueError), ([0.5, "x"], TypeError),
                                          (True, TypeError)])
def test_half_life_bad_gamma(gamma, error):
    with pytest.raises(error, match="gamma"):
        an.half_life(gamma)


@settings(max_examples=20, deadline=None)
@given(st.floats(0.01, 0.999))
def test_half_life_halves_the_weight(gamma):
    hl = an.half_life(gamma)
    assert gamma**hl == pytest.approx(0.5, rel=1e-12)
    assert an.half_life(gamma**2) == pytest.approx(hl / 2, rel=1e-12)  # squaring gamma halves the memory


# --- 2. fit_rate ---------------------------------------------------------------------------------------------------


def test_fit_rate_sgd(sgd_run):
    fit = an.fit_rate(sgd_run)
    theory = (1 - 0.1 * 0.2) ** 2
    assert fit.found
    assert fit.rate == pytest.approx(theory, abs=1e-6)
    # The interval is the fit's precision (residuals of a deterministic run are correlated): the tail
    # of the fast coordinate's transient left in the window biases the slope by about one width.
    width = fit.rate_high - fit.rate_low
    assert 0 < width < 1e-6
    assert fit.rate_low - width <= theory <= fit.rate_high + width
    assert fit.slope == pytest.approx(math.log(theory), abs=1e-6)
    assert fit.r2 > 1 - 1e-6
    # The fast coordinate's error shrinks by |1 - 0.4| = 0.6 per step: its share 8 * 0.36^t of the gap
    # is below 1% of the slow one's 2.5 * 0.9604^t after a handful of steps; the line runs to the end.
    assert 0 < fit.start <= 20
    assert fit.stop >= 490
    assert fit.points == pytest.approx(fit.stop - fit.start + 1, abs=3)
    assert fit.confidence == 0.95
    _check_decades(fit, sgd_run.gap)


def test_fit_rate_interval_is_the_t_interval(sgd_run):
    for confidence in (0.5, 0.95, 0.999):
        fit = an.fit_rate(sgd_run, confidence=confidence)
        q = stats.t.ppf(0.5 + confidence / 2, fit.points - 2)
        assert math.log(fit.rate_high) - fit.slope == pytest.approx(q * fit.stderr, rel=1e-9)
        assert fit.slope - math.log(fit.rate_low) == pytest.approx(q * fit.stderr, rel=1e-9)
        assert fit.rate_low < fit.rate < fit.rate_high
    narrow, wide = an.fit_rate(sgd_run, confidence=0.5), an.fit_rate(sgd_run, confidence=0.999)
    assert wide.rate_low < narrow.rate_low and narrow.rate_high < wide.rate_high


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_rate_stops_at_underflow(q, dtype):
    """f* = 0: in float32 the gap underflows within the run, and the fit stops before it."""
    traj = rn.simulate(rn.SGD(lr=0.4), q, X0, 2000, dtype=dtype)
    fit = an.fit_rate(traj)
    theory = (1 - 0.4 * 0.2) ** 2  # the slow coordinate: 0.92 per step; the fast one's |1 - 1.6| = 0.6 is faster
    assert fit.rate == pytest.approx(theory, abs=2e-6)
    width = fit.rate_high - fit.rate_low  # the fit's precision; the transient's tail biases it by about that
    assert 0 < width < 1e-6 and fit.rate_low - width <= theory <= fit.rate_high + width
    gap = traj.gap.astype(np.float64)
    assert gap[fit.stop] > 0 and np.all(gap[fit.start:fit.stop + 1] >= np.finfo(dtype).tiny)
    if dtype == "float32":
        floor = int(np.argmax(gap < np.finfo(np.float32).tiny))
        assert 0 < floor < 2000 and fit.stop < floor


def test_fit_rate_stops_at_subnormal_float64():
    """Both coordinates shrink by |1 - 0.4| = 0.6 per step: the gap 0.36^t turns subnormal at t ~ 690."""
    objective = rn.Quadratic([1.0, 4.0])
    traj = rn.simulate(rn.SGD(lr=0.4), objective, X0, 1000)
    fit = an.fit_rate(traj)
    assert fit.rate == pytest.approx(0.36, abs=1e-6)
    tiny = np.finfo(np.float64).tiny
    first_subnormal = int(np.argmax(traj.gap < tiny))
    assert 600 < first_subnormal < 800
    assert fit.stop < first_subnormal and traj.gap[fit.stop] >= tiny
    assert fit.start <= 5


@pytest.mark.parametrize("dtype, rel", [("float64", 1e-4), ("float32", 3e-4)])
def test_fit_rate_stops_at_rounding_floor(dtype, rel):
    """f* = -2.625: the gap bottoms out at a few ulp of f*, and the fit stops before that floor."""
    objective = rn.Quadratic([0.2, 4.0], b=[1.0, 1.0])
    traj = rn.simulate(rn.SGD(lr=0.4), objective, objective.minimizer + np.array(X0), 2000, dtype=dtype)
    fit = an.fit_rate(traj)
    theory = (1 - 0.4 * 0.2) ** 2
    assert fit.rate == pytest.approx(theory, rel=rel)
    assert fit.rate_low <= theory <= fit.rate_high
    gap = traj.gap.astype(np.float64)
    floor = 4 * np.finfo(dtype).eps * abs(objective.f_star)
    first_floor = int(np.argmax(gap <= floor))
    assert 0 < first_floor < 1000  # the run does reach the floor, long before its end
    assert fit.stop < first_floor and gap[fit.stop] > floor
    assert np.all(gap[fit.stop + 1:] < 1e3 * floor)  # nothing after the fit is still on the line


def test_fit_rate_excludes_the_orbit(orbit_run):
    """RMSProp(0.4): the gap falls, then climbs back to the orbit's 0.084; the fit may not reach into that."""
    fit = an.fit_rate(orbit_run)
    gap = orbit_run.gap
    bottom = int(np.argmin(gap))
    assert 10 < bottom < 200 and gap[-1] == pytest.approx(0.084, rel=1e-3)
    if fit.found:
        assert fit.stop <= bottom
        assert fit.rate < 1
        _check_decades(fit, gap)
    else:
        assert math.isnan(fit.rate) and fit.start == fit.stop == -1 and fit.points == 0


def _check_decades(fit, gap, min_decades=1.0):
    """The linear phase falls by min_decades along the fitted line (and about as much in the data)."""
    assert -fit.slope * (fit.stop - fit.start) >= min_decades * math.log(10)
    assert math.log10(gap[fit.start] / gap[fit.stop]) >= 0.9 * min_decades


@pytest.mark.parametrize("min_decades", [0.5, 1.0, 2.0, 5.0])
def test_fit_rate_phase_falls_min_decades(orbit_run, sgd_run, min_decades):
    """The returned phase, after trimming, still spans min_decades (RMSProp's accelerating descent
    has no long straight stretch: its short candidate windows must not shrink below that)."""
    for traj in (orbit_run, sgd_run):
        fit = an.fit_rate(traj, min_decades=min_decades)
        if fit.found:
            _check_decades(fit, traj.gap, min_decades)
    assert an.fit_rate(sgd_run, min_decades=5.0).found  # 2.5 * 0.9604^t falls 8.7 decades in 500 steps
    assert not an.fit_rate(sgd_run, min_decades=10.0).found
    assert not an.fit_rate(sgd_run, min_points=502).found  # the run has 501 points
    assert an.fit_rate(sgd_run, min_points=400).points >= 400


def test_fit_rate_not_found(q, overflow_run):
    for traj in (overflow_run, rn.simulate(rn.SGD(lr=0.6), q, X0, 300),  # diverging (overflowing or not)
                 rn.simulate(rn.SGD(lr=1e-4), q, X0, 200)):  # the gap falls by far less than a decade
        fit = an.fit_rate(traj)
        assert not fit.found
        assert math.isnan(fit.rate) and math.isnan(fit.rate_low) and math.isnan(fit.slope)
        assert fit.start == -1 and fit.stop == -1 and fit.points == 0


def test_fit_rate_sweep_matches_trajectories(q, sgd_sweep):
    lrs, res = sgd_sweep
    fit = an.fit_rate(res)
    assert np.shape(fit.rate) == res.shape == (len(lrs),)
    np.testing.assert_allclose(fit.rate, [(1 - lr * 0.2) ** 2 for lr in lrs], atol=1e-6)
    assert np.all(fit.found)
    for k, lr in enumerate(lrs):
        one = an.fit_rate(rn.simulate(rn.SGD(lr=lr), q, X0, 500))
        for name in ("rate", "rate_low", "rate_high", "slope", "stderr", "r2"):
            assert getattr(fit, name)[k] == pytest.approx(getattr(one, name), rel=1e-12), name
        assert (fit.start[k], fit.stop[k], fit.points[k]) == (one.start, one.stop, one.points)


def test_fit_rate_rmsprop_sweep_matches_trajectories(q, threshold_sweep):
    """The vectorised fit (converging and orbiting rows together) equals the fit of each run."""
    fit = an.fit_rate(threshold_sweep)
    for k in (0, 3, 4, 7):
        one = an.fit_rate(rn.simulate(rn.RMSProp(lr=LRS[k], gamma=0.9, eps=EPS), q, X0, 3000))
        assert bool(fit.found[k]) == bool(one.found)
        assert (fit.start[k], fit.stop[k], fit.points[k]) == (one.start, one.stop, one.points)
        if one.found:
            assert fit.rate[k] == pytest.approx(one.rate, rel=1e-12)
            _check_decades(one, threshold_sweep.loss[k] - q.f_star)
    # Converging rows end as gradient descent with step lr / sqrt(eps) = 10 lr: the slow coordinate's
    # gap shrinks by (1 - 10 lr * 0.2)^2 per step once s has decayed.
    stable = FACTORS < 1
    assert np.all(fit.found[stable])
    np.testing.assert_allclose(fit.rate[stable], (1 - 10 * LRS[stable] * 0.2) ** 2, rtol=1e-4)


def test_fit_rate_sweep_recorded_every_k_steps(q):
    """Rates are per step whatever the recording interval; the rate does not depend on the start."""
    lrs = [0.05, 0.1, 0.4]
    res = rn.sweep(rn.SGD, q, None, 500, grid={"lr": lrs, "x0": [list(X0), [3.0, 1.0]]}, record=10,
                   tol=TOLS, progress=False)
    fit = an.fit_rate(res)
    assert fit.rate.shape == res.shape == (3, 2)
    theory = np.array([(1 - lr * 0.2) ** 2 for lr in lrs])
    np.testing.assert_allclose(fit.rate, np.repeat(theory[:, None], 2, axis=1), atol=1e-6)
    assert np.all(fit.start % 10 == 0) and np.all(fit.stop % 10 == 0)
    assert np.all(fit.stop == 500)


def test_fit_rate_needs_record(final_only):
    with pytest.raises(ValueError, match="record"):
        an.fit_rate(final_only)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"tolerance": 0.0}, ValueError, "tolerance"),
    ({"tolerance": -0.1}, ValueError, "tolerance"),
    ({"tolerance": "big"}, TypeError, "tolerance"),
    ({"min_points": 2}, ValueError, "min_points"),
    ({"min_points": 5.0}, TypeError, "min_points"),
    ({"min_decades": -1.0}, ValueError, "min_decades"),
    ({"confidence": 0.0}, ValueError, "confidence"),
    ({"confidence": 1.0}, ValueError, "confidence"),
    ({"confidence": 95}, ValueError, "confidence"),
])
def test_fit_rate_bad_arguments(sgd_run, kwargs, error, name):
    with pytest.raises(error, match=name):
        an.fit_rate(sgd_run, **kwargs)


def test_fit_rate_wrong_type(sgd_run):
    for run in (sgd_run.gap, "traj", None):
        with pytest.raises(TypeError, match="Trajectory or a SweepResult"):
            an.fit_rate(run)


@settings(max_examples=20, deadline=None)
@given(h=st.floats(0.1, 10.0), c=st.floats(0.05, 1.5).filter(lambda c: abs(1 - c) >= 0.3))
def test_fit_rate_is_gradient_descent_contraction(h, c):
    """Gradient descent on f = h |x|^2 / 2: the error shrinks by |1 - lr h| per step, the gap by its square."""
    lr = c / h
    traj = rn.simulate(rn.SGD(lr=lr), rn.Quadratic([h, h]), (1.0, -0.5), 400)
    fit = an.fit_rate(traj)
    assert fit.found
    assert fit.rate == pytest.approx((1 - lr * h) ** 2, abs=1e-6)


# --- 3. limit_cycle and 4. orbit_amplitude --------------------------------------------------------------------------


def test_limit_cycle_chapter_orbit(orbit_run):
    cyc = an.limit_cycle(orbit_run)
    assert cyc.found is True  # a plain bool for a trajectory
    assert cyc.period == 2
    theory = an.orbit_amplitude(0.4, H)  # eps 1e-6
    np.testing.assert_allclose(cyc.amplitude, theory, rtol=1e-6)
    np.testing.assert_allclose(cyc.amplitude, [0.2, 0.2], rtol=1e-3)  # about lr / 2
    np.testing.assert_allclose(cyc.center, [0.0, 0.0], atol=1e-9)
    # On the orbit x_i = +-a_i, f - f* = sum h_i a_i^2 / 2 at every step.
    assert cyc.gap == pytest.approx(float(np.sum(H * theory**2 / 2)), rel=1e-6)
    # The iterates do alternate between the two corners.
    np.testing.assert_allclose(orbit_run.x[-1], -orbit_run.x[-2], rtol=1e-6)
    np.testing.assert_allclose(np.abs(orbit_run.x[-1]), theory, rtol=1e-6)


def test_limit_cycle_none(q, sgd_run, overflow_run):
    diverging = rn.simulate(rn.SGD(lr=0.6), q, X0, 300)  # grows by 1.4 per step, still finite
    assert not diverging.diverged
    for traj in (sgd_run, overflow_run, diverging):
        cyc = an.limit_cycle(traj)
        assert not cyc.found
        assert cyc.period == 0
        assert np.all(np.isnan(cyc.amplitude)) and cyc.amplitude.shape == (2,)
        assert np.all(np.isnan(cyc.center)) and math.isnan(cyc.gap)


def test_limit_cycle_converged_to_optimum_exactly():
    # lr h = 1: one step lands on the optimum, which is no orbit.
    traj = rn.simulate(rn.SGD(lr=0.25), rn.Quadratic([4.0, 4.0], b=[4.0, 8.0]), X0, 50)
    np.testing.assert_array_equal(traj.x[-1], [1.0, 2.0])
    assert not an.limit_cycle(traj).found


def test_limit_cycle_sweep_matches_theory(q, threshold_sweep):
    res = threshold_sweep
    cyc = an.limit_cycle(res)
    unstable = FACTORS > 1
    np.testing.assert_array_equal(cyc.found, unstable)
    # The symmetric orbit has a constant loss: period 1 in the recorded loss (record=1).
    np.testing.assert_array_equal(cyc.period, np.where(unstable, 1, 0))
    theory = an.orbit_amplitude(LRS[:, None], H, eps=EPS)
    assert np.all(theory[unstable, 1] > 0.02) and np.all(theory[:, 0] == 0)  # only the steep coordinate orbits
    np.testing.assert_allclose(cyc.amplitude[unstable], theory[unstable], rtol=1e-9, atol=1e-12)
    assert np.all(np.isnan(cyc.amplitude[~unstable]))
    np.testing.assert_allclose(cyc.center[unstable], 0.0, atol=0)
    np.testing.assert_allclose(cyc.gap[unstable], (4 * theory[unstable, 1] ** 2 / 2), rtol=1e-9)
    assert np.all(np.isnan(cyc.gap[~unstable]))
    # The same runs one by one.
    for k in np.flatnonzero(unstable)[[0, -1]]:
        traj = rn.simulate(rn.RMSProp(lr=LRS[k], gamma=0.9, eps=EPS), q, X0, 3000)
        one = an.limit_cycle(traj)
        assert one.found and one.period == 2
        np.testing.assert_allclose(one.amplitude, cyc.amplitude[k], rtol=1e-9, atol=1e-12)


def test_limit_cycle_sweep_diverged(q):
    res = rn.sweep(rn.SGD, q, X0, 1000, grid={"lr": [0.1, 0.6, 1.0]}, record=1, tol=TOLS, progress=False)
    assert res.diverged_at[2] >= 0
    cyc = an.limit_cycle(res)
    np.testing.assert_array_equal(cyc.found, [False, False, False])
    np.testing.assert_array_equal(cyc.period, [0, 0, 0])
    assert np.all(np.isnan(cyc.amplitude))


def test_limit_cycle_needs_record(final_only):
    with pytest.raises(ValueError, match="record"):
        an.limit_cycle(final_only)
    with pytest.raises(TypeError, match="Trajectory or a SweepResult"):
        an.limit_cycle([1, 2, 3])


@pytest.mark.parametrize("kwargs, error, name", [
    ({"max_period": 0}, ValueError, "max_period"),
    ({"max_period": 2.0}, TypeError, "max_period"),
    ({"tail": 1}, ValueError, "tail"),
    ({"tail": "all"}, TypeError, "tail"),
    ({"rtol": -1e-6}, ValueError, "rtol"),
    ({"rtol": math.inf}, ValueError, "rtol"),
])
def test_limit_cycle_bad_arguments(orbit_run, kwargs, error, name):
    with pytest.raises(error, match=name):
        an.limit_cycle(orbit_run, **kwargs)


@settings(max_examples=15, deadline=None)
@given(h=st.floats(0.1, 10.0), ratio=st.floats(5.0, 500.0), centre=st.floats(-3.0, 3.0))
def test_limit_cycle_seeded_on_the_orbit(h, ratio, centre):
    """Start RMSProp on the theoretical orbit (x* + a, s = h^2 a^2): it stays there with period 2."""
    eps = 1e-6
    lr = ratio * 2 * math.sqrt(eps) / h  # lr h / (2 sqrt(eps)) = ratio > 1: unstable optimum
    a = an.orbit_amplitude(lr, h, eps)
    assert lr * h / math.sqrt(h * h * a * a + eps) == pytest.approx(2.0, rel=1e-12)
    objective = rn.Quadratic([h, h], b=[h * centre, h * centre])
    opt = rn.RMSProp(lr=lr, gamma=0.9, eps=eps, initial_s=(h * a) ** 2)
    traj = rn.simulate(opt, objective, (centre + a, centre - a), 200)  # the two corners, in opposite phase
    cyc = an.limit_cycle(traj)
    assert cyc.found and cyc.period == 2
    np.testing.assert_allclose(cyc.amplitude, [a, a], rtol=1e-6)
    np.testing.assert_allclose(cyc.center, [centre, centre], rtol=0, atol=1e-6 * a + 1e-12)
    assert cyc.gap == pytest.approx(2 * h * a * a / 2, rel=1e-5)


def test_orbit_amplitude_formula():
    assert an.orbit_amplitude(0.4, 4.0) == pytest.approx(math.sqrt(0.8**2 - 1e-6) / 4, rel=1e-15)
    assert an.orbit_amplitude(0.4, 0.2) == pytest.approx(math.sqrt(0.04**2 - 1e-6) / 0.2, rel=1e-15)
    assert isinstance(an.orbit_amplitude(0.4, 4.0), float)
    # eps = 0: exactly lr / 2; large lr h: about lr / 2.
    assert an.orbit_amplitude(0.3, 7.0, eps=0.0) == pytest.approx(0.15, rel=1e-15)
    assert an.orbit_amplitude(1.0, 4.0) == pytest.approx(0.5, rel=1e-6)
    # The defining property: the step lr h / sqrt(h^2 a^2 + eps) is 2.
    for lr, h, eps in [(0.4, 4.0, 1e-6), (0.07, 4.0, 1e-2), (0.02, 0.2, 1e-6), (3.0, 0.01, 1e-4)]:
        a = an.orbit_amplitude(lr, h, eps)
        assert a > 0
        assert lr * h / math.sqrt(h * h * a * a + eps) == pytest.approx(2.0, rel=1e-12)


def test_orbit_amplitude_zero_when_stable():
    # lr h <= 2 sqrt(eps): 5e-4 * 4 = 2e-3 is the threshold for eps = 1e-6.
    assert an.orbit_amplitude(4e-4, 4.0) == 0.0
    assert an.orbit_amplitude(1e-3, 0.2) == 0.0
    assert an.orbit_amplitude(0.049, 4.0, eps=1e-2) == 0.0
    assert an.orbit_amplitude(5e-4, 4.0) == pytest.approx(0.0, abs=1e-10)  # at the threshold
    assert an.orbit_amplitude(5.1e-4, 4.0) > 0


def test_orbit_amplitude_vectorised():
    lr = np.array([1e-4, 1e-3, 0.1, 0.4])
    out = an.orbit_amplitude(lr[:, None], H)
    assert out.shape == (4, 2)
    for i, l in enumerate(lr):
        for j, h in enumerate(H):
            expected = math.sqrt((l * h / 2) ** 2 - 1e-6) / h if l * h > 2e-3 else 0.0
            assert out[i, j] == pytest.approx(expected, rel=1e-14, abs=1e-300)
    np.testing.assert_array_equal(out[0], 0.0)
    assert out[1, 0] == 0.0 and out[1, 1] > 0  # between the coordinates' thresholds
    with pytest.raises(ValueError, match="eps"):
        an.orbit_amplitude(0.4, 4.0, eps=-1.0)


# --- 5. classify ----------------------------------------------------------------------------------------------------


def test_classify_doctest_cases(q, orbit_run):
    assert an.classify(rn.simulate(rn.SGD(lr=0.4), q, X0, 300)) == "converged"
    assert an.classify(orbit_run) == "orbit"
    assert an.classify(rn.simulate(rn.SGD(lr=0.6), q, X0, 1000)) == "diverged"
    assert an.classify(rn.simulate(rn.SGD(lr=1e-4), q, X0, 1000)) == "stalled"


def test_classify_more_trajectories(q, overflow_run):
    assert an.classify(overflow_run) == "diverged"
    # gamma = 1 keeps s = 0, so the step is lr / sqrt(eps) = 0.5 and lr h / sqrt(eps) = 2 exactly:
    # x -> -x, a period-2 orbit on the stability boundary (no fixed point away from the optimum).
    flip = rn.simulate(rn.RMSProp(lr=5e-4, gamma=1.0), rn.Quadratic([4.0, 4.0]), (1.0, -1.0), 200)
    np.testing.assert_array_equal(np.abs(flip.x[-4:]), 1.0)
    assert an.limit_cycle(flip).period == 2
    assert an.classify(flip) == "orbit"


def test_classify_tolerance_against_the_orbit_gap(orbit_run):
    """The orbit's gap is sum h a^2 / 2 = 0.084: a tolerance above it calls the run converged."""
    orbit_gap = float(np.sum(H * an.orbit_amplitude(0.4, H) ** 2 / 2))
    assert an.classify(orbit_run, tol=orbit_gap * 1.01) == "converged"
    assert an.classify(orbit_run, tol=orbit_gap * 0.99) == "orbit"


def test_classify_sweep_matches_trajectories(q):
    """All four classes in one 2 x 2 sweep. gamma = 1 keeps s = 0: gradient descent with step lr / sqrt(eps)
    = 1000 lr (0.1: converges; 400: diverges)."""
    lrs, gammas = [1e-4, 0.4], [0.9, 1.0]
    res = rn.sweep(rn.RMSProp, q, X0, 1000, grid={"lr": lrs, "gamma": gammas}, record=1, progress=False)
    codes = an.classify(res)
    assert codes.dtype == np.int8 and codes.shape == (2, 2)
    np.testing.assert_array_equal(codes, [[an.STALLED, an.CONVERGED], [an.ORBIT, an.DIVERGED]])
    for i, lr in enumerate(lrs):
        for j, gamma in enumerate(gammas):
            traj = rn.simulate(rn.RMSProp(lr=lr, gamma=gamma), q, X0, 1000)
            assert an.LABELS[codes[i, j]] == an.classify(traj)
    # Per-configuration tolerances: the orbit's 0.084 is under a tolerance of 1.
    tol = np.full((2, 2), 1e-9)
    tol[1, 0] = 1.0
    np.testing.assert_array_equal(an.classify(res, tol), [[an.STALLED, an.CONVERGED], [an.CONVERGED, an.DIVERGED]])


def test_classify_bad_tolerances(q, sgd_run):
    res = rn.sweep(rn.SGD, q, X0, 100, grid={"lr": [0.1, 0.2, 0.3]}, record=1, tol=TOLS, progress=False)
    with pytest.raises(ValueError, match="tol"):
        an.classify(res, tol=np.ones(2))
    with pytest.raises(ValueError, match="tol"):
        an.classify(res, tol=np.ones((3, 1)))
    with pytest.raises(ValueError, match="tol"):
        an.classify(res, tol=[1e-9, 0.0, 1e-9])
    with pytest.raises(ValueError, match="tol"):
        an.classify(res, tol=[1e-9, math.nan, 1e-9])
    for tol in (0.0, -1e-9):
        with pytest.raises(ValueError, match="tol"):
            an.classify(sgd_run, tol=tol)
        with pytest.raises(ValueError, match="tol"):
            an.classify(res, tol=tol)
    with pytest.raises(ValueError, match="rtol"):
        an.classify(sgd_run, rtol=-1.0)


def test_classify_needs_record(final_only):
    with pytest.raises(ValueError, match="record"):
        an.classify(final_only)
    with pytest.raises(ValueError, match="record"):
        an.stability_map(final_only)


# --- 6. stability_map and 7. thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize("record", [1, 10])
def test_stability_map_follows_threshold(q, threshold_sweep, record):
    res = threshold_sweep if record == 1 else rn.sweep(rn.RMSProp, q, X0, 3000, grid={"lr": LRS},
                                                       fixed={"gamma": 0.9, "eps": EPS}, record=10, progress=False)
    stable = an.predicted_stable(res)
    np.testing.assert_array_equal(stable, FACTORS < 1)
    smap = an.stability_map(res)
    np.testing.assert_array_equal(smap.codes, np.where(stable, an.CONVERGED, an.ORBIT))
    assert smap.codes.dtype == np.int8
    counts = smap.counts()
    assert sum(counts.values()) == res.final_loss.size == LRS.size
    assert counts == {"converged": int(stable.sum()), "orbit": int((~stable).sum()), "stalled": 0, "diverged": 0}
    np.testing.assert_array_equal(smap.mask("orbit"), ~stable)
    np.testing.assert_array_equal(smap.mask("stalled"), np.zeros(LRS.size, bool))
    assert list(smap.axes) == ["lr"] and np.array_equal(smap.axes["lr"], res.axes["lr"])
    assert smap.labels == an.LABELS
    with pytest.raises(ValueError, match="label"):
        smap.mask("chaos")


def test_stability_map_eps_outside_sqrt(q):
    """eps outside the square root (PyTorch's preset): the step near the optimum is lr / eps, threshold
    2 eps / h_max = 0.005."""
    thr = an.instability_threshold(q, EPS, eps_in_sqrt=False)
    assert thr == pytest.approx(0.005, rel=1e-12)
    factors = np.array([0.5, 0.7, 1.4, 2.0, 4.0])
    res = rn.sweep(rn.RMSProp.torch, q, X0, 3000, grid={"lr": thr * factors}, fixed={"alpha": 0.9, "eps": EPS},
                   record=10, progress=False)
    # The preset's own name for the decay (alpha) is the rule's gamma.
    np.testing.assert_allclose(an.half_life(res), an.half_life(0.9), rtol=1e-14)
    stable = an.predicted_stable(res)
    np.testing.assert_array_equal(stable, factors < 1)
    np.testing.assert_array_equal(an.stability_map(res).codes, np.where(stable, an.CONVERGED, an.ORBIT))


def test_predicted_stable_with_momentum(threshold_sweep):
    """Heavy ball with step alpha is stable for alpha h < 2 (1 + mu): the threshold 0.05 becomes 0.075.
    (Only the configurations are rebuilt from the sweep's spec; running a momentum kernel would cost
    seconds of compilation.)"""
    res = dataclasses.replace(threshold_sweep, fixed={"gamma": 0.9, "eps": EPS, "momentum": 0.5})
    np.testing.assert_array_equal(an.predicted_stable(res), LRS < THRESHOLD * 1.5)
    assert np.sum(an.predicted_stable(res)) == np.sum(an.predicted_stable(threshold_sweep)) + 1  # 1.4 x 0.05


def test_stability_map_wrong_type(orbit_run):
    with pytest.raises(TypeError, match="SweepResult"):
        an.stability_map(orbit_run)


def test_instability_threshold_values(q):
    assert an.instability_threshold(q) == pytest.approx(2 * math.sqrt(1e-6) / 4, rel=1e-15)
    assert an.instability_threshold(q) == pytest.approx(0.0005, rel=1e-12)
    assert an.instability_threshold(q, 1e-2) == pytest.approx(0.05, rel=1e-12)
    assert an.instability_threshold(q, 1e-6, eps_in_sqrt=False) == pytest.approx(2 * 1e-6 / 4, rel=1e-15)
    for mu in (0.5, 0.9):
        assert an.instability_threshold(q, momentum=mu) == pytest.approx(0.0005 * (1 + mu), rel=1e-12)
    # Just below the threshold the steep coordinate has no orbit.
    assert an.orbit_amplitude(an.instability_threshold(q, 1e-2) * 0.999, 4.0, eps=1e-2) == 0.0


def test_instability_threshold_rotated():
    # Rotation keeps the eigenvalues 0.2 and 4.
    assert an.instability_threshold(rn.quadratic_2d().rotated(0.7)) == pytest.approx(0.0005, rel=1e-12)
    # The module's rotated twin has Hessian [[4.2, -3.8], [-3.8, 4.2]]: eigenvalues 0.4 and 8.
    twin = rn.rotated_quadratic_2d()
    h_max = float(np.max(np.linalg.eigvalsh(twin.matrix)))
    assert h_max == pytest.approx(8.0, rel=1e-12)
    assert an.instability_threshold(twin) == pytest.approx(2 * math.sqrt(1e-6) / h_max, rel=1e-12)
    assert an.instability_threshold(twin, 1e-2, momentum=0.5) == pytest.approx(2 * 0.1 * 1.5 / 8, rel=1e-12)


def test_instability_threshold_bad_arguments(q):
    for objective in (object(), "quadratic", None):
        with pytest.raises(TypeError, match="Quadratic"):
            an.instability_threshold(objective)
    with pytest.raises(ValueError, match="eps"):
        an.instability_threshold(q, 0.0)
    with pytest.raises(TypeError, match="eps_in_sqrt"):
        an.instability_threshold(q, eps_in_sqrt=1)
    with pytest.raises(ValueError, match="momentum"):
        an.instability_threshold(q, momentum=1.0)


def test_predicted_stable_refuses(q, orbit_run, final_only):
    with pytest.raises(ValueError, match="RMSProp"):
        an.predicted_stable(final_only)  # SGD
    gamma_one = rn.sweep(rn.RMSProp, q, X0, 1, grid={"lr": [0.1], "gamma": [0.9, 1.0]}, record=1, progress=False)
    with pytest.raises(ValueError, match="gamma"):
        an.predicted_stable(gamma_one)
    # The configurations are rebuilt from the sweep's optimizer, fixed and axes (no run needed, and
    # none made here: a Nesterov kernel would cost seconds of compilation).
    nesterov = dataclasses.replace(gamma_one, axes={"lr": np.array([0.1])}, final_loss=gamma_one.final_loss[:, 0],
                                   fixed={"gamma": 0.9, "momentum": 0.5, "nesterov": True})
    with pytest.raises(ValueError, match="Nesterov"):
        an.predicted_stable(nesterov)
    decay = dataclasses.replace(nesterov, fixed={"gamma": 0.9, "weight_decay": 0.1})
    with pytest.raises(ValueError, match="weight decay"):
        an.predicted_stable(decay)
    np.testing.assert_array_equal(an.predicted_stable(dataclasses.replace(nesterov, fixed={"gamma": 0.9})), [False])
    with pytest.raises(TypeError, match="SweepResult"):
        an.predicted_stable(orbit_run)


def test_predicted_stable_grid(q):
    lrs, eps = [0.04, 0.06, 0.2], [1e-2, 1e-1]
    res = rn.sweep(rn.RMSProp, q, X0, 1, grid={"lr": lrs, "eps": eps}, record=1, progress=False)
    expected = np.array([[lr < 2 * math.sqrt(e) / 4 for e in eps] for lr in lrs])
    np.testing.assert_array_equal(an.predicted_stable(res), expected)
    assert an.predicted_stable(res).shape == (3, 2)


# --- 8. steps_to_tolerance ------------------------------------------------------------------------------------------


def test_steps_to_tolerance_trajectory(q, sgd_run):
    hit = an.steps_to_tolerance(sgd_run, 1e-6)
    assert hit == 365
    assert hit == int(np.argmax(sgd_run.gap < 1e-6))
    assert sgd_run.gap[hit] < 1e-6 <= sgd_run.gap[hit - 1]
    # Theory: f - f* = 0.1 * 25 * 0.9604^t + 2 * 4 * 0.36^t.
    t = np.arange(501)
    assert hit == int(np.argmax(2.5 * 0.9604**t + 8 * 0.36**t < 1e-6))
    assert an.steps_to_tolerance(sgd_run, 100.0) == 0  # the start: 10.5 < 100
    assert an.steps_to_tolerance(sgd_run, 1e-300) == -1
    assert an.steps_to_tolerance(rn.simulate(rn.SGD(lr=0.6), q, X0, 300), 1e-6) == -1


def test_steps_to_tolerance_sweep(q, sgd_sweep, final_only):
    lrs, recorded = sgd_sweep  # record=1, tol=TOLS
    # Asked of the kernel: its exact steps.
    hits = an.steps_to_tolerance(recorded, 1e-6)
    np.testing.assert_array_equal(hits, recorded.steps_to_tol[:, 1])
    np.testing.assert_array_equal(an.steps_to_tolerance(recorded, 1e-2), recorded.steps_to_tol[:, 0])
    # lr 0.05: 2.5 * 0.98^(2t) < 1e-6 needs t > 730 > 500 steps.
    assert hits.shape == (5,) and hits[1] == 365 and hits[0] == -1 and np.all(hits[1:] > 0)
    # From the history (record=1) the same steps, for any tol.
    history = dataclasses.replace(recorded, tol=None, steps_to_tol=None)
    np.testing.assert_array_equal(an.steps_to_tolerance(history, 1e-6), hits)
    fine = an.steps_to_tolerance(recorded, 1e-3)  # not one of the kernel's: from the history
    assert np.all(fine >= 0)
    t = np.arange(501)
    for k, lr in enumerate(lrs):
        traj = rn.simulate(rn.SGD(lr=lr), q, X0, 500)
        assert hits[k] == an.steps_to_tolerance(traj, 1e-6)
        assert fine[k] == an.steps_to_tolerance(traj, 1e-3) == int(np.argmax(traj.gap < 1e-3))
        theory = 0.5 * 0.2 * 25 * (1 - lr * 0.2) ** (2 * t) + 0.5 * 4 * 4 * (1 - lr * 4) ** (2 * t)
        for tol, got in ((1e-6, hits[k]), (1e-3, fine[k])):
            assert got == (int(np.argmax(theory < tol)) if np.any(theory < tol) else -1)
    # Recorded every 10 steps: the first recorded step below tol, within 10 steps above the exact one.
    coarse = rn.sweep(rn.SGD, q, X0, 500, grid={"lr": lrs}, tol=TOLS, record=10, progress=False)
    np.testing.assert_array_equal(an.steps_to_tolerance(coarse, 1e-6), hits)  # the kernel's, still exact
    approx = an.steps_to_tolerance(coarse, 1e-3)
    assert np.all(approx % 10 == 0) and np.all((approx >= fine) & (approx < fine + 10))
    # Without a history only the kernel's own tolerances can be answered.
    np.testing.assert_array_equal(an.steps_to_tolerance(final_only, 1e-6), hits)
    with pytest.raises(ValueError, match="record"):
        an.steps_to_tolerance(final_only, 1e-3)


@pytest.mark.parametrize("tol, error", [(0.0, ValueError), (-1.0, ValueError), (math.inf, ValueError),
                                        ("1e-6", TypeError), (None, TypeError)])
def test_steps_to_tolerance_bad_tol(sgd_run, tol, error):
    with pytest.raises(error, match="tol"):
        an.steps_to_tolerance(sgd_run, tol)


# --- 9. effective_step ----------------------------------------------------------------------------------------------


def test_effective_step_rmsprop(orbit_run):
    step = an.effective_step(orbit_run)
    assert step.shape == (1000, 2) and step.dtype == np.float64
    assert step[-1] == pytest.approx(0.4 / np.sqrt(orbit_run.state.s + 1e-6), rel=0)  # bit for bit
    np.testing.assert_array_equal(step[-1], 0.4 / np.sqrt(orbit_run.state.s + 1e-6))
    # On the orbit lr h / den = 2 for both coordinates.
    np.testing.assert_allclose(step[-1] * H, [2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(step[-50:] * H, 2.0, rtol=1e-6)
    # Against a NumPy replay of s <- 0.9 s + 0.1 g^2 from the iterates.
    g = orbit_run.x[:-1] * H
    s, ref = np.zeros(2), []
    for gt in g:
        s = 0.9 * s + 0.1 * gt * gt
        ref.append(0.4 / np.sqrt(s + 1e-6))
    np.testing.assert_allclose(step, ref, rtol=1e-12)


def test_effective_step_float32(q):
    traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), q, X0, 1000, dtype="float32")
    step = an.effective_step(traj)
    assert step.shape == (1000, 2) and step.dtype == np.float64
    assert traj.state.s.dtype == np.float32
    den = np.sqrt(traj.state.s + np.float32(1e-6))
    np.testing.assert_array_equal(step[-1], 0.4 / den.astype(np.float64))
    np.testing.assert_allclose(step[-1] * H, [2.0, 2.0], rtol=1e-4)


def test_effective_step_sgd(sgd_run, overflow_run):
    step = an.effective_step(sgd_run)
    assert step.shape == (500, 2)
    np.testing.assert_array_equal(step, 0.1)
    # A diverged run is replayed up to its divergence.
    assert an.effective_step(overflow_run).shape == (overflow_run.diverged_at, 2)
    np.testing.assert_array_equal(an.effective_step(overflow_run), 1.0)


def test_effective_step_other_rules(q):
    # Adagrad: s is the running sum of g^2.
    traj = rn.simulate(rn.Adagrad(lr=0.3), q, X0, 300)
    s = np.cumsum((traj.x[:-1] * H) ** 2, axis=0)
    np.testing.assert_allclose(an.effective_step(traj), 0.3 / np.sqrt(s + 1e-6), rtol=1e-12)
    # eps outside the square root, and a noisy rotated run: the last row is lr / den of the final state.
    noisy = rn.simulate(rn.RMSProp(lr=0.05, eps=1e-3, eps_in_sqrt=False), rn.rotated_quadratic_2d(noise=0.5),
                        X0, 300, seed=3)
    np.testing.assert_array_equal(an.effective_step(noisy)[-1], 0.05 / (np.sqrt(noisy.state.s) + 1e-3))


def test_effective_step_refuses(q, sgd_sweep):
    _, res = sgd_sweep
    with pytest.raises(TypeError, match="Trajectory"):
        an.effective_step(res)
    scheduled = rn.simulate(rn.RMSProp(lr=0.4), q, X0, 10, schedule={"lr": np.full(10, 0.4)})
    with pytest.raises(ValueError, match="schedule"):
        an.effective_step(scheduled)


def test_analysis_of_a_trajectory_that_kept_less_than_every_step():
    """A run kept with record="final" has no loss history; one with record=k has no iterate
    at every step: the analyses that need them say so, the others use what was kept."""
    opt, q = rn.RMSProp(lr=0.4), rn.quadratic_2d()
    final = rn.simulate(opt, q, (-5.0, -2.0), 2000, record="final")
    sparse = rn.simulate(opt, q, (-5.0, -2.0), 2000, record=4)
    full = rn.simulate(opt, q, (-5.0, -2.0), 2000)
    with pytest.raises(ValueError, match="record=1, k or \"loss\", got record='final'"):
        an.classify(final)
    for name in ("limit_cycle", "effective_step"):
        with pytest.raises(ValueError, match=f"{name} needs the iterates of every step.*got record=4"):
            getattr(an, name)(sparse)
    assert an.classify(full) == an.classify(sparse) == "orbit"
    assert np.array_equal(sparse.loss, full.loss[::4]) and sparse.loss_steps[-1] == 2000
