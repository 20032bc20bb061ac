"""Users' objectives (``rmsnum.Objective``) against the built-in quadratics, and the classics.

``UserObjective``: the same diagonal quadratic (curvatures 0.1 to 10; the
chapter's 0.2 and 4 in 2-D) as a built-in :class:`rmsnum.Quadratic` and as an
:class:`rmsnum.Objective` of plain Python functions, in ``simulate`` and in a
``sweep``. A user writes a 2-D objective coordinate by coordinate ("user")
or, like a d-dimensional one, as a loop over ``x.size`` ("user-loop").
``UserObjectiveRatios``: time ratios user / built-in measured in the same run
(the target is at most 1.5). ``Classics``: a run on each built-in classic
objective, and where it ends.
"""

import numpy as np

import rmsnum as rn
from rmsnum import classics

from .common import SEEDS, ratio, warm_up


def diagonal_value(x, h):
    """1/2 sum h_i x_i^2, as a user writes it."""
    total = 0.0
    for i in range(x.size):
        total += h[i] * x[i] * x[i]
    return 0.5 * total


def diagonal_grad(x, out, h):
    for i in range(x.size):
        out[i] = h[i] * x[i]


def chapter_value(x, h):
    """The chapter's 2-D objective written out, as in the README's example."""
    return 0.5 * (h[0] * x[0] * x[0] + h[1] * x[1] * x[1])


def chapter_grad(x, out, h):
    out[0] = h[0] * x[0]
    out[1] = h[1] * x[1]


def curvatures(dim: int) -> np.ndarray:
    return np.array([0.2, 4.0]) if dim == 2 else np.geomspace(0.1, 10.0, dim)


def objective(kind: str, dim: int):
    """The diagonal quadratic as "builtin", "user" (written out in 2-D, a loop
    otherwise) or "user-loop" (a loop)."""
    h = curvatures(dim)
    if kind == "builtin":
        return rn.Quadratic(h)
    if kind == "user" and dim == 2:
        return rn.Objective(chapter_value, chapter_grad, dim, minimum=np.zeros(dim), args=(h,))
    return rn.Objective(diagonal_value, diagonal_grad, dim, minimum=np.zeros(dim), args=(h,))


SIMULATE_STEPS = 10**5
SWEEP_GRID = {"lr": np.geomspace(1e-3, 0.5, 64), "gamma": np.linspace(0.5, 0.99, 64)}
SWEEP_STEPS = {2: 1000, 100: 20}


def simulate(obj, dim: int) -> rn.Trajectory:
    return rn.simulate(rn.RMSProp(lr=0.01), obj, np.ones(dim), SIMULATE_STEPS)


def sweep(obj, dim: int) -> rn.SweepResult:
    return rn.sweep(rn.RMSProp, obj, np.ones(dim), SWEEP_STEPS[dim], grid=SWEEP_GRID, progress=False)


class UserObjective:
    params = (["builtin", "user", "user-loop"], [2, 100])
    param_names = ["objective", "dim"]

    def setup(self, kind, dim):
        self.objective = objective(kind, dim)
        warm_up(lambda: simulate(self.objective, dim))
        warm_up(lambda: sweep(self.objective, dim))

    def time_simulate(self, kind, dim):
        simulate(self.objective, dim)

    def time_sweep(self, kind, dim):
        sweep(self.objective, dim)


class UserObjectiveRatios:
    params = (["user", "user-loop"], [2, 100])
    param_names = ["objective", "dim"]

    def setup(self, kind, dim):
        self.user, self.builtin = objective(kind, dim), objective("builtin", dim)

    def track_user_over_builtin_simulate(self, kind, dim):
        """Time of simulate on the user's objective over the built-in quadratic (lower is better; target <= 1.5)."""
        return ratio(lambda: simulate(self.user, dim), lambda: simulate(self.builtin, dim), reps=5)

    track_user_over_builtin_simulate.unit = "ratio"

    def track_user_over_builtin_sweep(self, kind, dim):
        """Time of a 4096-configuration sweep on the user's objective over the built-in quadratic (target <= 1.5)."""
        return ratio(lambda: sweep(self.user, dim), lambda: sweep(self.builtin, dim), reps=5)

    track_user_over_builtin_sweep.unit = "ratio"


def logistic():
    rng = np.random.default_rng(SEEDS["logistic-data-v1"])
    X = rng.standard_normal((500, 5))
    y = (X @ np.linspace(-1.0, 1.0, 5) + 0.5 * rng.standard_normal(500) > 0).astype(np.float64)
    return classics.logistic_regression(X, y, l2=1e-3)


CLASSICS = {
    "rosenbrock": (classics.rosenbrock, (-1.5, 2.0), 1e-3),
    "beale": (classics.beale, (1.0, 1.0), 1e-2),
    "booth": (classics.booth, (0.0, 0.0), 1e-2),
    "logistic": (logistic, np.zeros(6), 1e-2),
}


class Classics:
    params = [list(CLASSICS)]
    param_names = ["objective"]
    steps = 10**4

    def setup(self, name):
        make, self.x0, lr = CLASSICS[name]
        self.objective, self.opt = make(), rn.RMSProp(lr=lr)
        warm_up(lambda: rn.simulate(self.opt, self.objective, self.x0, 10))

    def time_simulate(self, name):
        rn.simulate(self.opt, self.objective, self.x0, self.steps)

    def track_final_gap(self, name):
        """f - f* after 10**4 RMSProp steps."""
        return float(rn.simulate(self.opt, self.objective, self.x0, self.steps).gap[-1])

    track_final_gap.unit = "f - f*"
