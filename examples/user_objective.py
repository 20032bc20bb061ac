"""Your own objective in simulate and sweep: Rosenbrock written by hand, then the built-in classics.

Run: python examples/user_objective.py
"""

import numba
import numpy as np

import rmsnum as rn
from rmsnum import classics


@numba.njit
def rosen_grad(x, out):  # the user's own gradient
    out[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2)
    out[1] = 200 * (x[1] - x[0] ** 2)


@numba.njit
def rosen(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def main() -> None:
    obj = rn.Objective(value=rosen, grad=rosen_grad, dim=2, minimum=(1.0, 1.0))
    traj = rn.simulate(rn.RMSProp(lr=1e-3), obj, x0=(-1.5, 2.0), steps=20_000)
    print(f"simulate: x = {traj.x[-1].round(4)}, f - f* = {traj.gap[-1]:.2e}")

    grid = {"lr": np.geomspace(1e-4, 1e-1, 13), "gamma": [0.9, 0.99, 0.999]}
    res = rn.sweep(rn.RMSProp, obj, x0=(-1.5, 2.0), steps=5000, grid=grid, tol=1e-3, progress=False)
    best = np.unravel_index(np.nanargmin(res.final_loss), res.shape)
    print(f"sweep of {res.final_loss.size} configurations: best {res.config(best)}, "
          f"f - f* = {res.gap[best]:.2e}, {int(res.diverged.sum())} diverged")

    for f, x0 in ((classics.rosenbrock(), (-1.5, 2.0)), (classics.beale(), (1.0, 1.0)),
                  (classics.booth(), (0.0, 0.0))):
        run = rn.simulate(rn.Adam(lr=0.01), f, x0, 5000)
        print(f"Adam on {f.name}: x = {run.x[-1].round(3)}, f - f* = {run.gap[-1]:.1e}")


if __name__ == "__main__":
    main()
