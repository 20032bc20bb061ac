"""Grids of hyperparameters as fused kernels: ``rmsnum.sweep`` of RMSProp on the chapter's objective.

``SweepCPU`` / ``SweepCUDA``: 10**4 and 10**5 configurations (lr x gamma) of
1000 steps each; the CUDA variant is skipped where no GPU is present.
``SweepResults``: what a sweep finds (so that a speed change that changes
results shows up) and its speed-up over the same sweep vectorised over
configurations with NumPy, measured in the same run.
"""

import numpy as np

import rmsnum as rn

from .common import ratio, require_gpu, warm_up
from .sweep_speed import EPS, X0, numpy_sweep, square_grid

STEPS = 1000
SIDES = {10**4: 100, 10**5: 316}  # square lr x gamma grids of about that many configurations


def _sweep(side: int, steps: int, backend: str = "cpu", **options) -> rn.SweepResult:
    grid = square_grid(side)
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=X0, steps=steps, grid={"lr": grid.lrs, "gamma": grid.gammas},
                    fixed={"eps": EPS}, backend=backend, progress=False, **options)


class SweepCPU:
    params = [list(SIDES)]
    param_names = ["configs"]
    timeout = 300

    def setup(self, configs):
        warm_up(lambda: _sweep(16, 10))

    def time_sweep(self, configs):
        _sweep(SIDES[configs], STEPS)


class SweepCUDA:
    params = [list(SIDES)]
    param_names = ["configs"]
    timeout = 300

    def setup(self, configs):
        require_gpu()
        warm_up(lambda: _sweep(16, 10, backend="cuda"))

    def time_sweep(self, configs):
        _sweep(SIDES[configs], STEPS, backend="cuda")


class SweepResults:
    timeout = 300

    def setup(self):
        self.res = _sweep(SIDES[10**4], STEPS, tol=[1e-6])
        self.steps = self.res.steps_to_tol[..., 0]

    def track_converged_fraction(self):
        """Fraction of the 10**4 configurations with f - f* < 1e-6 within 1000 steps."""
        return float(np.mean(self.steps >= 0))

    track_converged_fraction.unit = "fraction"

    def track_median_steps_to_tolerance(self):
        """Median steps to f - f* < 1e-6 over the configurations that get there."""
        return float(np.median(self.steps[self.steps >= 0]))

    track_median_steps_to_tolerance.unit = "steps"

    def track_diverged(self):
        """How many configurations diverge."""
        return int(np.sum(self.res.diverged))

    track_diverged.unit = "configurations"

    def track_speedup_over_numpy(self):
        """Per configuration-step speed over NumPy vectorised over configurations (higher is better)."""
        grid, numpy_steps = square_grid(SIDES[10**4]), 50
        return ratio(lambda: numpy_sweep(grid, numpy_steps), lambda: _sweep(SIDES[10**4], STEPS), reps=3,
                     per_call=(numpy_steps, STEPS))

    track_speedup_over_numpy.unit = "times faster"


class _Terminal:
    """A stderr that says it is a terminal and throws the bar away (so the bar is drawn as for a user)."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class SweepProgress:
    """The cost of the progress bar on a README-sized sweep (one chunk of 10**5 configurations),
    which runs in slices of blocks of about ``SLICE_SECONDS`` so that the bar moves."""

    timeout = 300

    def setup(self):
        warm_up(lambda: _sweep(16, 10))

    def _with_bar(self):
        import sys

        stderr, sys.stderr = sys.stderr, _Terminal()
        try:
            grid = square_grid(SIDES[10**5])
            rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=X0, steps=STEPS, grid={"lr": grid.lrs, "gamma": grid.gammas},
                     fixed={"eps": EPS}, progress=True)
        finally:
            sys.stderr = stderr

    def time_sweep_with_progress(self):
        self._with_bar()

    def track_progress_over_quiet(self):
        """Time with the bar over time without, in the same run (1.0: free)."""
        return ratio(self._with_bar, lambda: _sweep(SIDES[10**5], STEPS), reps=5)

    track_progress_over_quiet.unit = "ratio"
