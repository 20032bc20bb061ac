"""Convergence analysis with SciPy: rates, orbits, classification, thresholds.

Every function takes a :class:`~rmsnum.Trajectory` (one run) or a
:class:`~rmsnum.SweepResult` (vectorised over its grid; for the functions that
read the loss history, run the sweep with ``record=k``). Results for a sweep
have the grid's shape; for a trajectory they are scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validation as v
from ._config import ROWS_PER_CHUNK
from .objectives import Objective, Quadratic, known_f_star
from .optimizers import Optimizer, RMSProp
from .simulate import Trajectory
from .results import SweepResult

CONVERGED, ORBIT, STALLED, DIVERGED = 0, 1, 2, 3
LABELS = ("converged", "orbit", "stalled", "diverged")
"""The names of the classes of :func:`classify`, indexed by their codes."""


def leaky_average_weights(gamma: Any, steps: int = 40) -> np.ndarray:
    """Weights ``(1 - gamma) * gamma**t`` of the gradient from ``t`` steps ago in ``s``.

    Parameters
    ----------
    gamma : float or sequence of float
        Leaky-average factor(s) in [0, 1].
    steps : int, default 40
        Number of weights, t = 0 .. steps - 1.

    Returns
    -------
    numpy.ndarray
        Shape (steps,) for one gamma, (len(gamma), steps) for several.

    Examples
    --------
    >>> leaky_average_weights(0.9, 3)
    array([0.1  , 0.09 , 0.081])
    """
    values = _gammas(gamma)
    steps = v.integer("steps", steps)
    t = np.arange(steps)
    weights = (1 - values[:, None]) * values[:, None] ** t
    return weights[0] if np.ndim(gamma) == 0 else weights


def _gammas(gamma: Any) -> np.ndarray:
    gammas = np.atleast_1d(np.asarray(gamma, dtype=object))
    return np.array([v.real("gamma", g, low=0.0, high=1.0) for g in gammas.ravel()]).reshape(gammas.shape)


def half_life(gamma: Any) -> Any:
    """Steps after which a gradient's weight in the leaky average has halved: ``ln 2 / -ln gamma``.

    The weights ``(1 - gamma) gamma**t`` halve every ``half_life`` steps; the
    average remembers about ``1 / (1 - gamma)`` steps in all.

    Parameters
    ----------
    gamma : float, array_like or SweepResult
        Factor(s) in [0, 1] (0 gives 0, 1 gives inf). For a sweep of an
        RMSProp-family optimizer, each configuration's ``gamma`` (grid shape).

    Examples
    --------
    >>> round(half_life(0.9), 3), half_life(0.5)
    (6.579, 1.0)
    """
    values = _hyperparameter_grid(gamma, "gamma") if isinstance(gamma, SweepResult) else _gammas(gamma)
    inside = (values > 0) & (values < 1)
    out = np.where(values == 0, 0.0, np.inf)  # -ln 1 is -0.0: spell gamma = 1 out, or ln 2 / -0.0 gives -inf
    out[inside] = math.log(2) / -np.log(values[inside])
    return float(out.ravel()[0]) if np.ndim(gamma) == 0 and not isinstance(gamma, SweepResult) else out


# --- the runs as gap series ---------------------------------------------------------------------------------------


@dataclass
class _Series:
    """A run or a sweep as rows of optimality gaps: ``gap`` (N, T) at ``steps`` (T,)."""

    steps: np.ndarray
    gap: np.ndarray
    final_gap: np.ndarray
    diverged_at: np.ndarray
    shape: tuple[int, ...]
    floor: float

    def shaped(self, values: np.ndarray) -> Any:
        """Per-run values in the result's shape; a scalar for one trajectory."""
        values = values.reshape(self.shape + values.shape[1:])
        return values.item() if values.ndim == 0 else values


def _series(run: Any, where: str, history: bool = True) -> _Series:
    if isinstance(run, Trajectory):
        if run.loss is None:
            raise ValueError(f'{where} needs the trajectory\'s loss: run simulate with record=1, k or "loss", '
                             f"got record={run.record!r}")
        gap = run.gap.astype(np.float64)[None]
        steps = run.loss_steps
        final = (np.asarray(run.final_loss) - known_f_star(run.objective)).astype(np.float64).reshape(1)
        diverged = np.array([-1 if run.diverged_at is None else run.diverged_at])
        shape: tuple[int, ...] = ()
        dtype, f_star = run.loss.dtype, run.objective.f_star
    elif isinstance(run, SweepResult):
        if history and run.loss is None:
            raise ValueError(f"{where} needs the sweep's loss history: run the sweep with record=k (e.g. record=1)")
        shape = run.shape
        final = run.gap.astype(np.float64).ravel()
        gap = None if run.loss is None else (run.loss.astype(np.float64) - run.objective.f_star).reshape(-1, run.loss.shape[-1])
        steps = run.loss_steps
        diverged = run.diverged_at.ravel()
        dtype, f_star = run.final_loss.dtype, run.objective.f_star
    else:
        raise TypeError(f"run must be a Trajectory or a SweepResult, got {type(run).__name__}")
    # A gap within a few ulp of f*, or subnormal in the run's dtype, is rounding, not progress.
    floor = max(4 * float(np.finfo(dtype).eps) * abs(f_star), float(np.finfo(dtype).tiny))
    return _Series(steps, gap, final, diverged, shape, floor)


# --- linear convergence -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateFit:
    """A fit of ``ln(f - f*) = c + slope * t`` over the linear phase of a run.

    Attributes
    ----------
    rate : float or numpy.ndarray
        ``exp(slope)``: the factor by which ``f - f*`` shrinks per step (for a
        quadratic, the iterate's error shrinks by ``sqrt(rate)``). NaN where no
        linear phase was found.
    rate_low, rate_high
        The confidence interval of ``rate``.
    slope, stderr
        The fitted slope of ``ln(f - f*)`` per step and its standard error.
    r2
        Coefficient of determination of the fit.
    start, stop
        First and last step of the linear phase (-1 where none was found).
    points
        Number of points in the fit.
    confidence : float
        Level of the interval.

    The interval comes from the t distribution with ``points - 2`` degrees of
    freedom. Residuals of a deterministic run are correlated, so read it as
    the fit's precision, not as a sampling statement.
    """

    rate: Any
    rate_low: Any
    rate_high: Any
    slope: Any
    stderr: Any
    r2: Any
    start: Any
    stop: Any
    points: Any
    confidence: float

    @property
    def found(self) -> Any:
        """Where a linear phase was found."""
        return np.asarray(self.start) >= 0 if np.ndim(self.start) else self.start >= 0


def fit_rate(run: Trajectory | SweepResult, *, tolerance: float = 0.01, min_points: int = 5,
             min_decades: float = 1.0, confidence: float = 0.95) -> RateFit:
    """The rate of linear convergence of ``f - f*``, with its confidence interval.

    The linear phase is the longest stretch of the run over which
    ``ln(f - f*)`` stays on a straight line: among windows whose ends lie on a
    grid of about 50 candidate steps (dense early, even later), the longest
    whose root-mean-square residual is at most ``tolerance`` times the
    line's drop over the window and over which the gap falls by at least
    ``min_decades`` decades. Leading and trailing points further than
    ``tolerance`` times the drop from the line are then trimmed and the
    line refitted (ordinary least squares, as ``scipy.stats.linregress``).
    Points where the gap is within a few ulp of ``f*`` (rounding), not
    finite or not positive are left out, and a floor (rounding, or an orbit
    whose gap stops falling) ends the line, so it never enters the fit.

    Parameters
    ----------
    run : Trajectory or SweepResult
        A sweep must have been run with ``record=k``; its rates come from the
        loss recorded every ``k`` steps, vectorised over the grid.
    tolerance : float, default 0.01
        Allowed residual, as a fraction of the line's drop over the window.
    min_points : int, default 5
        Fewest points of a linear phase.
    min_decades : float, default 1
        Fewest decades the gap must fall over the linear phase.
    confidence : float, default 0.95
        Level of the confidence interval, in (0, 1).

    Returns
    -------
    RateFit
        Scalars for a trajectory, arrays of the grid's shape for a sweep.

    Examples
    --------
    Gradient descent on f = 0.1 x1^2 + 2 x2^2 ends dominated by the slow
    coordinate, whose error shrinks by 1 - lr * 0.2 per step:

    >>> import rmsnum as rn
    >>> traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), x0=(-5, -2), steps=500)
    >>> fit = fit_rate(traj)
    >>> round(fit.rate, 6), round((1 - 0.1 * 0.2) ** 2, 6)
    (0.9604, 0.9604)
    >>> int(fit.start), int(fit.stop)   # after the fast coordinate's transient, to the end
    (7, 500)
    """
    tolerance = v.real("tolerance", tolerance, low=0.0, low_open=True)
    min_points = v.integer("min_points", min_points, low=3)
    min_decades = v.real("min_decades", min_decades, low=0.0)
    confidence = v.real("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    series = _series(run, "fit_rate")
    from scipy import stats

    t = series.steps.astype(np.float64)
    n_rows = series.gap.shape[0]
    out = {name: np.full(n_rows, np.nan) for name in ("slope", "stderr", "r2", "low", "high")}
    start = np.full(n_rows, -1, np.int64)
    stop = np.full(n_rows, -1, np.int64)
    points = np.zeros(n_rows, np.int64)
    candidates = _candidate_ends(t.size)
    pairs = np.triu_indices(candidates.size, 1)
    chunk = max(1, ROWS_PER_CHUNK // max(1, pairs[0].size))
    for lo in range(0, n_rows, chunk):
        rows = slice(lo, lo + chunk)
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = series.gap[rows]
            valid = np.isfinite(gap) & (gap > series.floor)
            y = np.where(valid, np.log(np.where(valid, gap, 1.0)), 0.0)
        first, last = _longest_linear_window(t, y, valid, candidates, pairs, tolerance, min_points,
                                             min_decades * math.log(10))
        fit = _window_fit(t, y, valid, first, last, tolerance, min_points, min_decades * math.log(10))
        for name in ("slope", "stderr", "r2"):
            out[name][rows] = fit[name]
        n = fit["points"]
        ok = n >= 3
        q = np.full(n.shape, np.nan)
        q[ok] = stats.t.ppf(0.5 + confidence / 2, n[ok] - 2)
        out["low"][rows] = fit["slope"] - q * fit["stderr"]
        out["high"][rows] = fit["slope"] + q * fit["stderr"]
        start[rows] = np.where(ok, series.steps[np.maximum(fit["first"], 0)], -1)
        stop[rows] = np.where(ok, series.steps[np.maximum(fit["last"], 0)], -1)
        points[rows] = np.where(ok, n, 0)
    return RateFit(rate=series.shaped(np.exp(out["slope"])), rate_low=series.shaped(np.exp(out["low"])),
                   rate_high=series.shaped(np.exp(out["high"])), slope=series.shaped(out["slope"]),
                   stderr=series.shaped(out["stderr"]), r2=series.shaped(out["r2"]), start=series.shaped(start),
                   stop=series.shaped(stop), points=series.shaped(points), confidence=confidence)


def _candidate_ends(size: int) -> np.ndarray:
    """About 50 indices in [0, size): geometric near the start (transients are short), even after."""
    if size <= 48:
        return np.arange(size)
    return np.unique(np.concatenate([np.geomspace(1, size, 24).astype(np.int64) - 1,
                                     np.linspace(0, size - 1, 25).astype(np.int64)]))


def _window_sums(values: list[np.ndarray]) -> list[np.ndarray]:
    return [np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, axis=1)], axis=1) for a in values]


def _longest_linear_window(t, y, valid, candidates, pairs, tolerance, min_points, min_drop):
    """Per row, the first and last index of the longest candidate window on a line (-1, -1: none)."""
    span = max(t[-1] - t[0], 1.0)
    tn = (t - t[0]) / span  # normalised time keeps the sums well conditioned
    w = valid.astype(np.float64)
    s0, s1, s2, sy, syy, sty = _window_sums([w, w * tn, w * tn * tn, y, y * y, y * tn])
    a, e = candidates[pairs[0]], candidates[pairs[1]]

    def window(s: np.ndarray) -> np.ndarray:
        return s[:, e + 1] - s[:, a]

    n, t1, t2, y1, y2, ty = (window(s) for s in (s0, s1, s2, sy, syy, sty))
    with np.errstate(divide="ignore", invalid="ignore"):
        sxx = t2 - t1 * t1 / n
        sxy = ty - t1 * y1 / n
        slope = sxy / sxx
        sse = np.maximum(y2 - y1 * y1 / n - slope * sxy, 0.0)
        drop = -slope * (tn[e] - tn[a])
        ok = (n >= min_points) & (drop >= min_drop) & (np.sqrt(sse / n) <= tolerance * drop)
    length = np.where(ok, (e - a)[None, :], -1)
    best = np.argmax(length, axis=1)
    found = length[np.arange(length.shape[0]), best] >= 0
    return np.where(found, a[best], -1), np.where(found, e[best], -1)


def _line(t, y, mask):
    """Least squares of y on t over ``mask`` per row: slope, intercept, n, sxx, sxy, syy and the
    residual sum of squares (summed directly: ``syy - slope * sxy`` cancels on near-exact lines)."""
    w = mask.astype(np.float64)
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tm = (w * t).sum(axis=1) / n
        ym = (w * y).sum(axis=1) / n
        dt = np.where(mask, t - tm[:, None], 0.0)
        dy = np.where(mask, y - ym[:, None], 0.0)
        sxx, sxy, syy = (dt * dt).sum(axis=1), (dt * dy).sum(axis=1), (dy * dy).sum(axis=1)
        slope = sxy / sxx
        sse = np.square(dy - slope[:, None] * dt).sum(axis=1)
    return slope, ym - slope * tm, n, sxx, sxy, syy, sse


def _window_fit(t, y, valid, first, last, tolerance, min_points, min_drop):
    """The line over each row's window, as ``scipy.stats.linregress``, after trimming runs of
    points at either end that stray from it (further than 4 rms residuals, or than ``tolerance``
    times the drop): the tail of a transient, the bend into a floor. The trimmed window must
    still hold ``min_points`` points and fall by ``min_drop`` along the line."""
    idx = np.arange(t.size)
    mask = valid & (idx >= first[:, None]) & (idx <= last[:, None]) & (first[:, None] >= 0)
    has_near = mask.any(axis=1)
    for _ in range(3):
        slope, intercept, n, sxx, sxy, syy, sse = _line(t, y, mask)
        with np.errstate(invalid="ignore", divide="ignore"):
            rms = np.sqrt(sse / n)
            drop = -slope * (t[np.maximum(last, 0)] - t[np.maximum(first, 0)])
            limit = np.maximum(np.minimum(tolerance * drop, 4 * rms), 1e-9 * drop)
            near = mask & ~(np.abs(y - intercept[:, None] - slope[:, None] * t) > limit[:, None])
        has_near = near.any(axis=1)
        lo = np.where(has_near, np.argmax(near, axis=1), -1)
        hi = np.where(has_near, t.size - 1 - np.argmax(near[:, ::-1], axis=1), -1)
        mask &= (idx >= lo[:, None]) & (idx <= hi[:, None])
    slope, _, n, sxx, sxy, syy, sse = _line(t, y, mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        stderr = np.sqrt(sse / (n - 2) / sxx)
        r2 = np.where(syy > 0, sxy * sxy / (sxx * syy), 1.0)
    lo, hi = np.argmax(mask, axis=1), t.size - 1 - np.argmax(mask[:, ::-1], axis=1)
    with np.errstate(invalid="ignore"):
        ok = (n >= min_points) & has_near & (-slope * (t[hi] - t[lo]) >= min_drop)
    nan = np.full(n.shape, np.nan)
    first_kept = np.where(ok, lo, -1)
    last_kept = np.where(ok, hi, -1)
    return {"slope": np.where(ok, slope, nan), "stderr": np.where(ok, stderr, nan), "r2": np.where(ok, r2, nan),
            "points": np.where(ok, n, 0).astype(np.int64), "first": first_kept, "last": last_kept}


# --- orbits -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitCycle:
    """The terminal orbit of a run, if it ends on one.

    Attributes
    ----------
    found : bool or numpy.ndarray of bool
        Whether the run ends on an orbit around the optimum (finite, not at
        the optimum, repeating).
    period : int or numpy.ndarray
        Steps per cycle (0 where none). For a trajectory, the period of the
        iterates. For a sweep, which keeps no iterates, the period of the
        recorded loss: the symmetric period-2 orbits of RMSProp have a
        constant loss, reported as period 1.
    amplitude : numpy.ndarray, shape (..., d)
        Per coordinate, half the peak-to-peak range over one cycle (NaN
        where none). For a sweep, the distance of the final iterate from the
        optimum, which equals it for symmetric orbits (``x* +- a``).
    center : numpy.ndarray, shape (..., d)
        Mid-range of each coordinate over the cycle (for a sweep, the optimum).
    gap : float or numpy.ndarray
        Mean ``f - f*`` over the cycle (NaN where none).
    """

    found: Any
    period: Any
    amplitude: np.ndarray
    center: np.ndarray
    gap: Any


def orbit_amplitude(lr: Any, curvature: Any, eps: float = 1e-6) -> Any:
    """The theoretical amplitude of RMSProp's period-2 orbit on a coordinate of curvature ``h``.

    On ``x -> -x`` the gradient squared is constant, so ``s = h^2 a^2`` and the
    step ``lr h / sqrt(s + eps) = 2`` gives ``a = sqrt((lr h / 2)^2 - eps) / h``
    (about ``lr / 2`` when ``lr h >> sqrt(eps)``); 0 where the optimum is
    stable, ``lr h <= 2 sqrt(eps)``. For eps inside the square root.

    >>> round(orbit_amplitude(0.4, 4.0), 8)
    0.19999984
    """
    lr, h = np.asarray(lr, dtype=np.float64), np.asarray(curvature, dtype=np.float64)
    eps = v.real("eps", eps, low=0.0)
    excess = np.maximum((lr * h / 2) ** 2 - eps, 0.0)
    out = np.sqrt(excess) / h
    return float(out) if out.ndim == 0 else out


def limit_cycle(run: Trajectory | SweepResult, *, max_period: int = 64, tail: int | None = None,
                rtol: float = 1e-6) -> LimitCycle:
    """Detect the orbit a run ends on: its period and per-coordinate amplitude.

    For a trajectory, the smallest period ``p <= max_period`` such that the
    last ``tail`` iterates repeat with period ``p`` within ``rtol`` times
    their distance from the optimum; an orbit needs that distance to be
    non-zero. For a sweep (vectorised; needs ``record=k``), a finite run
    whose recorded loss over the last quarter stays within ``rtol`` (relative)
    of a repeating pattern above the rounding floor.

    Parameters
    ----------
    run : Trajectory or SweepResult
    max_period : int, default 64
    tail : int, optional
        Iterates (or recorded losses) examined; default ``4 * max_period``
        (a quarter of the recorded losses for a sweep), at most the run.
    rtol : float, default 1e-6
        Relative tolerance of the repetition.

    Examples
    --------
    The chapter's run, continued, ends on the period-2 orbit ``x_i = +-lr/2``:

    >>> import rmsnum as rn
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), x0=(-5, -2), steps=1000)
    >>> cyc = limit_cycle(traj)
    >>> cyc.found, cyc.period, cyc.amplitude.round(4)
    (True, 2, array([0.1999, 0.2   ]))
    """
    max_period = v.integer("max_period", max_period, low=1)
    if tail is not None:
        tail = v.integer("tail", tail, low=2)
    rtol = v.real("rtol", rtol, low=0.0)
    if isinstance(run, Trajectory):
        return _trajectory_cycle(run, max_period, tail, rtol)
    series = _series(run, "limit_cycle")
    return _sweep_cycle(run, series, max_period, tail, rtol)


def _every_step(traj: Trajectory, where: str) -> None:
    """Raise a ValueError unless ``traj`` kept its iterates at every step (``record=1``)."""
    if traj.x is None or traj.record != 1:
        raise ValueError(f"{where} needs the iterates of every step: run simulate with record=1 (the default), "
                         f"got record={traj.record!r}")


def _trajectory_cycle(traj: Trajectory, max_period: int, tail: int | None, rtol: float) -> LimitCycle:
    _every_step(traj, "limit_cycle")
    d = traj.objective.dim
    none = LimitCycle(False, 0, np.full(d, np.nan), np.full(d, np.nan), math.nan)
    length = min(traj.steps + 1, tail if tail is not None else 4 * max_period)
    if traj.diverged or length < 2:
        return none
    x = traj.x[-length:].astype(np.float64)
    offset = np.abs(x - traj.objective.minimizer).max()
    ulp = 16 * np.finfo(traj.x.dtype).eps * max(np.abs(x).max(), 1e-300)
    if offset <= ulp:
        return none
    for p in range(1, min(max_period, length - 1) + 1):
        if np.abs(x[p:] - x[:-p]).max() <= rtol * offset + ulp:
            if p == 1:
                return none  # a fixed point away from the optimum: stalled, not an orbit
            cycle = x[-p:]
            hi, lo = cycle.max(axis=0), cycle.min(axis=0)
            return LimitCycle(True, p, (hi - lo) / 2, (hi + lo) / 2, float(np.mean(traj.gap[-p:])))
    return none


def _sweep_cycle(res: SweepResult, series: _Series, max_period: int, tail: int | None, rtol: float) -> LimitCycle:
    gap = series.gap
    T = gap.shape[1]
    length = min(T, tail if tail is not None else max(2, T // 4))
    recent = gap[:, -length:]
    n_rows = gap.shape[0]
    period = np.zeros(n_rows, np.int64)
    with np.errstate(invalid="ignore"):
        alive = (series.diverged_at < 0) & np.all(np.isfinite(recent), axis=1) & np.all(recent > series.floor, axis=1)
        scale = np.abs(recent).max(axis=1)
        for p in range(min(max_period, length - 1), 0, -1):  # the smallest period wins
            repeats = np.abs(recent[:, p:] - recent[:, :-p]).max(axis=1) <= rtol * scale
            period = np.where(alive & repeats, p, period)
    every = int(series.steps[1] - series.steps[0]) if T > 1 else 1
    found = period > 0
    d = res.final_x.shape[-1]
    x_star = res.objective.minimizer if isinstance(res.objective, Quadratic) else np.append(*res.objective.optimum)
    final = res.final_x.reshape(-1, d).astype(np.float64)
    amplitude = np.where(found[:, None], np.abs(final - x_star), np.nan)
    center = np.where(found[:, None], x_star, np.nan)
    level = np.where(found, recent.mean(axis=1), np.nan)
    return LimitCycle(series.shaped(found), series.shaped(period * every), amplitude.reshape(series.shape + (d,)),
                      center.reshape(series.shape + (d,)), series.shaped(level))


# --- classification -----------------------------------------------------------------------------------------------


def _default_tol(series: _Series) -> np.ndarray:
    """1e-10 times the starting gap (at least the rounding floor)."""
    first = series.gap[:, 0] if series.gap is not None else np.ones(series.final_gap.shape)
    return np.maximum(1e-10 * np.abs(first), series.floor)


def _stationary(series: _Series, rtol: float) -> np.ndarray:
    """Rows whose mean gap over the last eighth of the record equals that over the eighth before."""
    T = series.gap.shape[1]
    w = max(1, T // 8)
    if T < 2 * w or T < 4:
        return np.zeros(series.gap.shape[0], bool)
    with np.errstate(invalid="ignore"):
        late, early = series.gap[:, -w:].mean(axis=1), series.gap[:, -2 * w:-w].mean(axis=1)
        return np.abs(late - early) <= rtol * np.abs(early)


def classify(run: Trajectory | SweepResult, tol: Any = None, *, rtol: float = 1e-3) -> Any:
    """Classify each run as converged, orbit, stalled or diverged.

    - ``diverged``: the run stopped on a non-finite value, or its gap is still
      growing and more than ``1e3`` times its start (finite, not yet overflowed);
    - ``converged``: the final ``f - f*`` is below ``tol``;
    - ``orbit``: above ``tol``, and the gap has stopped changing (the mean over
      the last eighth of the record within ``rtol`` of the eighth before)
      while the iterate keeps moving: a trajectory must end on a
      :func:`limit_cycle`; a sweep keeps no iterates, so a stationary gap
      above ``tol`` counts as an orbit;
    - ``stalled``: above ``tol`` and still descending too slowly to reach it
      within the steps run, or stuck at a point that is not the optimum.

    Parameters
    ----------
    run : Trajectory or SweepResult
        A sweep needs ``record=k``.
    tol : float or array_like, optional
        Gap below which a run counts as converged; default ``1e-10`` times
        the starting gap (at least the rounding floor).
    rtol : float, default 1e-3

    Returns
    -------
    str for a trajectory; for a sweep an int8 array of codes (grid shape):
    ``CONVERGED`` 0, ``ORBIT`` 1, ``STALLED`` 2, ``DIVERGED`` 3 (names in ``LABELS``).

    Examples
    --------
    >>> import rmsnum as rn
    >>> q, x0 = rn.quadratic_2d(), (-5, -2)
    >>> classify(rn.simulate(rn.SGD(lr=0.4), q, x0, 300))
    'converged'
    >>> classify(rn.simulate(rn.RMSProp(lr=0.4), q, x0, 1000))
    'orbit'
    >>> classify(rn.simulate(rn.SGD(lr=0.6), q, x0, 1000))
    'diverged'
    >>> classify(rn.simulate(rn.SGD(lr=1e-4), q, x0, 1000))
    'stalled'
    """
    rtol = v.real("rtol", rtol, low=0.0)
    series = _series(run, "classify")
    limit = _default_tol(series) if tol is None else _tolerance(tol, series)
    stationary = _stationary(series, rtol)
    if isinstance(run, Trajectory) and run.record == 1:  # with fewer iterates, as for a sweep: the loss alone
        stationary &= bool(limit_cycle(run).found)
    codes = np.full(series.final_gap.shape, STALLED, np.int8)
    with np.errstate(invalid="ignore"):
        codes[stationary] = ORBIT
        codes[series.final_gap < limit] = CONVERGED
    with np.errstate(invalid="ignore"):
        growing = ~stationary & (series.final_gap > 1e3 * np.abs(series.gap[:, 0]))
    codes[(series.diverged_at >= 0) | growing] = DIVERGED
    return LABELS[codes[0]] if isinstance(run, Trajectory) else codes.reshape(series.shape)


def _tolerance(tol: Any, series: _Series) -> np.ndarray:
    if np.ndim(tol) == 0:
        return np.full(series.final_gap.shape, v.real("tol", tol, low=0.0, low_open=True))
    arr = np.asarray(tol, dtype=np.float64)
    if arr.shape != series.shape:
        raise ValueError(f"tol must be a number or an array of the grid's shape {series.shape}, got shape {arr.shape}")
    if not np.all(arr > 0):
        raise ValueError("tol must be > 0 everywhere")
    return arr.ravel()


@dataclass(frozen=True)
class StabilityMap:
    """:func:`classify` over a sweep's grid.

    Attributes
    ----------
    codes : numpy.ndarray of int8, grid shape
        ``CONVERGED`` 0, ``ORBIT`` 1, ``STALLED`` 2, ``DIVERGED`` 3.
    axes : dict of str to numpy.ndarray
        The sweep's grid axes.
    labels : tuple of str
        Names of the codes.
    """

    codes: np.ndarray
    axes: dict
    labels: tuple = LABELS

    def counts(self) -> dict[str, int]:
        """How many configurations fall in each class."""
        return {label: int(np.sum(self.codes == k)) for k, label in enumerate(self.labels)}

    def mask(self, label: str) -> np.ndarray:
        """Boolean grid of the configurations in class ``label``."""
        if label not in self.labels:
            raise ValueError(f"label must be one of {self.labels}, got {label!r}")
        return self.codes == self.labels.index(label)


def stability_map(res: SweepResult, tol: Any = None, *, rtol: float = 1e-3) -> StabilityMap:
    """Converged / orbit / stalled / diverged for every configuration of a sweep (see :func:`classify`).

    Examples
    --------
    >>> import numpy as np, rmsnum as rn
    >>> res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=(-5, -2), steps=3000, record=10,
    ...                grid={"lr": [1e-3, 0.4, 2.0], "gamma": [0.9, 1.0]}, fixed={"eps": 1.0}, progress=False)
    >>> stability_map(res).codes   # threshold 2 sqrt(eps) / 4 = 0.5; gamma = 1 is gradient descent with step lr
    array([[2, 2],
           [0, 0],
           [1, 3]], dtype=int8)
    """
    if not isinstance(res, SweepResult):
        raise TypeError(f"res must be a SweepResult, got {type(res).__name__}")
    return StabilityMap(classify(res, tol, rtol=rtol), dict(res.axes))


def steps_to_tolerance(run: Trajectory | SweepResult, tol: float) -> Any:
    """The first step at which ``f - f*`` is below ``tol``; -1 where never.

    For a sweep run with ``tol=`` containing this value, the exact step the
    kernel recorded; otherwise the first recorded step (``record=k``: a
    resolution of k steps, an upper bound of the exact step).

    Examples
    --------
    >>> import rmsnum as rn
    >>> traj = rn.simulate(rn.SGD(lr=0.1), rn.quadratic_2d(), x0=(-5, -2), steps=500)
    >>> steps_to_tolerance(traj, 1e-6)   # 2.5 * 0.9604**t + 8 * 0.36**t < 1e-6
    365
    """
    tol = v.real("tol", tol, low=0.0, low_open=True)
    if isinstance(run, SweepResult) and run.tol is not None and np.any(run.tol == tol):
        return run.steps_to_tol[..., int(np.argmax(run.tol == tol))]
    series = _series(run, "steps_to_tolerance")
    with np.errstate(invalid="ignore"):
        below = series.gap < tol
    hit = np.where(below.any(axis=1), series.steps[np.argmax(below, axis=1)], -1)
    return series.shaped(hit)


# --- the effective step and the stability threshold ---------------------------------------------------------------


def effective_step(traj: Trajectory) -> np.ndarray:
    """The per-coordinate step size ``lr / den`` at every update of a trajectory.

    ``den`` is the rule's denominator after update t: ``sqrt(s + eps)`` (eps
    inside) or ``sqrt(s) + eps``, with ``s`` bias-corrected and centred as the
    optimizer is; Adagrad ``sqrt(s + eps)``; Adam ``sqrt(v_hat) + eps``; SGD and
    Momentum ``lr``. The state is replayed from the trajectory's iterates and
    gradients (noise included), so this needs the whole trajectory, which a
    sweep does not keep. The replay and ``den`` use the arithmetic of the
    compiled kernels in the trajectory's dtype, so for a ``"cpu"`` run the
    replayed state equals ``traj.state`` bit for bit and the last row is
    ``lr / den`` of the final state (other backends agree within a few ulp).

    Returns
    -------
    numpy.ndarray, shape (steps, d), float64

    Examples
    --------
    >>> import rmsnum as rn
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), x0=(-5, -2), steps=1000)
    >>> step = effective_step(traj)
    >>> (step[-1] * traj.objective.curvatures).round(3)   # lr h / den = 2 on the period-2 orbit
    array([2., 2.])
    """
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj must be a Trajectory (a sweep keeps no iterates), got {type(traj).__name__}")
    _every_step(traj, "effective_step")
    if traj.schedule:
        raise ValueError("effective_step does not replay scheduled runs yet; the schedule is in traj.schedule")
    opt, steps = traj.optimizer, traj.steps if traj.diverged_at is None else traj.diverged_at
    state = opt.init_like((traj.objective.dim,), traj.x.dtype)
    seed = traj.provenance.get("seed") or 0
    out = np.empty((steps, traj.objective.dim))
    with np.errstate(all="ignore"):
        for t in range(steps):
            x = traj.x[t].copy()
            opt.step(x, _kernel_gradient(traj.objective, x, t, seed), state)  # the compiled rule, as the kernels
            out[t] = _step_size(opt, state)
    return out


def _kernel_gradient(objective: Quadratic | Objective, x: np.ndarray, t: int, seed: int) -> np.ndarray:
    """The gradient of update ``t`` as the compiled kernels form it, in ``x``'s dtype: ``(A x)_i``
    summed over coordinates in order, minus ``b``, plus the noise of update ``t``."""
    from .backends import reference

    if isinstance(objective, Objective):
        g = objective.grad(x)  # the objective's own grad, as the kernels call it
    else:
        A, b = objective.A.astype(x.dtype), objective.b.astype(x.dtype)
        if A.ndim == 1:
            ax = A * x
        else:
            ax = A[:, 0] * x[0]
            for k in range(1, x.size):
                ax = ax + A[:, k] * x[k]
        g = ax - b
    if objective.noise:
        g = g + x.dtype.type(objective.noise) * reference.gradient_noise(seed, t, x.size, x.dtype)
    return g


def _step_size(opt: Optimizer, state: Any) -> np.ndarray:
    """``lr / den`` (float64) of a state made by ``opt.step``, from the rule's registry entry: ``den`` in the
    state's dtype as the rules form it (bias corrections as products with ``1 / d``; a float64 recomputation
    from float32 state could differ, e.g. turn a centred variance of 0 into a negative one)."""
    dt = np.dtype(type(state.d1)).type
    r1, r2 = (dt(1) / state.d1, dt(1) / state.d2) if opt.decays() is not None else (dt(1), dt(1))
    slots = {name: getattr(state, name) for name in opt.spec.slots}
    shape = next(arr.shape for arr in state.arrays.values()) if state.arrays else ()
    return np.broadcast_to(opt.spec.step_size(slots, r1, r2, opt.coefficients(np.float64)), shape)


def instability_threshold(objective: Quadratic, eps: float = 1e-6, *, eps_in_sqrt: bool = True,
                          momentum: float = 0.0) -> float:
    """The learning rate above which RMSProp's optimum is unstable on a quadratic.

    Near the optimum ``s -> 0`` (for ``gamma < 1``), so the denominator
    becomes ``sqrt(eps)`` (eps inside) or ``eps`` (outside) for every
    coordinate and the update is gradient descent with step
    ``alpha = lr / den`` (heavy ball with ``momentum``). It is stable when
    ``alpha h_max < 2 (1 + momentum)``: so the optimum is unstable when
    ``lr h > 2 sqrt(eps) (1 + momentum)`` for the largest curvature ``h``
    (eigenvalue of A). The run then ends on an orbit, see :func:`orbit_amplitude`.

    Examples
    --------
    >>> import rmsnum as rn
    >>> instability_threshold(rn.quadratic_2d())   # 2 sqrt(1e-6) / 4
    0.0005
    """
    if not isinstance(objective, Quadratic):
        raise TypeError(f"objective must be a Quadratic, got {type(objective).__name__}")
    eps = v.real("eps", eps, low=0.0, low_open=True)
    eps_in_sqrt = v.boolean("eps_in_sqrt", eps_in_sqrt)
    momentum = v.real("momentum", momentum, low=0.0, high=1.0, high_open=True)
    h = float(np.max(np.linalg.eigvalsh(objective.matrix)))
    den = math.sqrt(eps) if eps_in_sqrt else eps
    return 2 * den * (1 + momentum) / h


def predicted_stable(res: SweepResult) -> np.ndarray:
    """For a sweep of RMSProp on a quadratic: whether theory says each configuration's optimum is stable.

    ``lr < instability_threshold(objective, eps, eps_in_sqrt, momentum)``
    per configuration (grid shape). Compare with :func:`stability_map`:
    stable configurations converge, unstable ones end on an orbit (or diverge
    when the orbit is beyond float range).

    Raises
    ------
    ValueError
        For other optimizers, gamma = 1 (s never shrinks), Nesterov momentum,
        weight decay, maximize, a rescaled or clipped gradient or clipped
        weights, which the threshold does not cover.
    """
    if not isinstance(res, SweepResult):
        raise TypeError(f"res must be a SweepResult, got {type(res).__name__}")
    if not isinstance(res.objective, Quadratic):
        raise ValueError("predicted_stable needs a sweep on a Quadratic")
    opts = _optimizers(res)
    stable = np.empty(len(opts), bool)
    for k, opt in enumerate(opts):
        if (not isinstance(opt, RMSProp) or opt.gamma >= 1 or opt.nesterov or opt.weight_decay or opt.maximize
                or opt.rescale_grad is not None or opt.clip_gradient or opt.clip_weights or opt.clip_norm):
            raise ValueError("the threshold covers RMSProp with gamma < 1, without Nesterov momentum, weight decay, "
                             f"maximize, rescaling or clipping; configuration {k} is {opt}")
        stable[k] = opt.lr < instability_threshold(res.objective, opt.eps, eps_in_sqrt=opt.eps_in_sqrt,
                                                   momentum=opt.momentum)
    return stable.reshape(res.shape)


def _factory(res: SweepResult) -> Any:
    import rmsnum

    owner, _, preset = res.optimizer.partition(".")
    factory = getattr(rmsnum, owner)
    return getattr(factory, preset) if preset else factory


def _optimizers(res: SweepResult) -> list[Optimizer]:
    """Every configuration's optimizer, in C order."""
    from .sweep.plan import build_optimizer, hyper_kwargs

    factory = _factory(res)
    return [build_optimizer(factory, hyper_kwargs(res.fixed, res.axes, index), f"configuration {index}")
            for index in np.ndindex(*res.shape)]


def _hyperparameter_grid(res: SweepResult, name: str) -> np.ndarray:
    """The value of optimizer field ``name`` for every configuration (grid shape)."""
    opts = _optimizers(res)
    if not all(hasattr(opt, name) for opt in opts):
        raise ValueError(f"the sweep's optimizer {res.optimizer} has no {name!r}")
    return np.array([float(getattr(opt, name)) for opt in opts]).reshape(res.shape)
