"""Whole trajectories inside one compiled call: ``rmsnum.simulate``.

``Simulate2D``: the chapter's objective for 10**6 steps, per rule family.
``SimulateQuadratic``: diagonal and dense quadratics of 10 to 1000 coordinates.
``SimulateResults``: what the runs compute (so that a speed change that
changes results shows up) and the speed-up over the NumPy reference backend
measured in the same run.
"""

import numpy as np

import rmsnum as rn
from rmsnum import analysis

from .common import SEEDS, ratio, warm_up

X0 = (-5.0, -2.0)
RULES = {
    "rmsprop": lambda: rn.RMSProp(lr=0.4, gamma=0.9),  # the chapter's run, ends on its period-2 orbit
    "rmsprop-centered-momentum": lambda: rn.RMSProp(lr=0.01, centered=True, momentum=0.9),
    "sgd": lambda: rn.SGD(lr=0.1),
    "adam": lambda: rn.Adam(lr=0.1),
}


def quadratic(dim: int, kind: str) -> rn.Quadratic:
    """Curvatures from 0.1 to 10; ``dense``: the same spectrum in seeded random eigenvectors."""
    h = np.geomspace(0.1, 10.0, dim)
    if kind == "diagonal":
        return rn.Quadratic(h)
    rng = np.random.default_rng([SEEDS["quadratic-dense-v1"], dim])
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return rn.Quadratic((q * h) @ q.T)


class Simulate2D:
    params = [list(RULES)]
    param_names = ["rule"]

    def setup(self, rule):
        self.opt, self.objective = RULES[rule](), rn.quadratic_2d()
        warm_up(lambda: rn.simulate(self.opt, self.objective, X0, 10))

    def time_million_steps(self, rule):
        rn.simulate(self.opt, self.objective, X0, 10**6)


class SimulateQuadratic:
    params = ([10, 100, 1000], ["diagonal", "dense"])
    param_names = ["dim", "kind"]

    def setup(self, dim, kind):
        self.objective = quadratic(dim, kind)
        self.x0 = np.ones(dim)
        self.opt = rn.RMSProp(lr=0.01)
        warm_up(lambda: rn.simulate(self.opt, self.objective, self.x0, 10))

    def time_thousand_steps(self, dim, kind):
        rn.simulate(self.opt, self.objective, self.x0, 1000)


class SimulateResults:
    def setup(self):
        self.chapter = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), X0, 10**4)

    def track_chapter_orbit_gap(self):
        """f - f* on the chapter's terminal orbit (theory: 0.0840 for lr 0.4)."""
        return float(self.chapter.gap[-1])

    track_chapter_orbit_gap.unit = "f - f*"

    def track_steps_to_tolerance(self):
        """Steps of a converging RMSProp run (eps 1e-2, below the instability threshold) to f - f* < 1e-10."""
        traj = rn.simulate(rn.RMSProp(lr=0.04, eps=1e-2), rn.quadratic_2d(), X0, 5000)
        return int(analysis.steps_to_tolerance(traj, 1e-10))

    track_steps_to_tolerance.unit = "steps"

    def track_speedup_over_reference(self):
        """Per-step speed of the compiled loop over the NumPy reference backend (higher is better)."""
        opt, q = rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d()
        steps, ref_steps = 10**5, 10**3
        return ratio(lambda: rn.simulate(opt, q, X0, ref_steps, backend="reference"),
                     lambda: rn.simulate(opt, q, X0, steps), reps=3, per_call=(ref_steps, steps))

    track_speedup_over_reference.unit = "times faster"
