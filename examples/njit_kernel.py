"""The rules inside your own @numba.njit code: the chapter's RMSProp and the general form.

Run: python examples/njit_kernel.py
"""

import numba
import numpy as np

import rmsnum as rn
from rmsnum import kernels as rk


@numba.njit
def chapter_run(x, s, h, lr, gamma, eps, steps):
    """The chapter's 2-D run, f = 0.1 x1^2 + 2 x2^2, with the chapter's update."""
    for _ in range(steps):
        for i in range(x.size):
            x[i], s[i] = rk.rmsprop_update(x[i], h[i] * x[i], s[i], lr, gamma, eps)


@numba.njit
def general_run(x, s, m, a, h, c, steps):
    """Any variant: the coefficients of an optimizer (here PyTorch's centered RMSprop with momentum)."""
    for _ in range(steps):
        for i in range(x.size):
            x[i], s[i], m[i], a[i] = rk.rmsprop(x[i], h[i] * x[i], s[i], m[i], a[i], rk.ONE, rk.ONE, c)


def main() -> None:
    h = np.array([0.2, 4.0])
    x, s = np.array([-5.0, -2.0]), np.zeros(2)
    chapter_run(x, s, h, 0.4, 0.9, 1e-6, 20)
    print(f"chapter: epoch 20, x1: {x[0]:f}, x2: {x[1]:f}")  # the book prints -0.010599, 0.000000

    opt = rn.RMSProp.torch(lr=0.01, momentum=0.9, centered=True)
    x, s, m, a = np.array([-5.0, -2.0]), np.zeros(2), np.zeros(2), np.zeros(2)
    general_run(x, s, m, a, h, opt.coefficients(np.float64), 200)
    traj = rn.simulate(opt, rn.quadratic_2d(), (-5.0, -2.0), 200)
    print(f"torch centered momentum after 200 steps: {x}, rn.simulate gives {traj.x[-1]}")
    assert np.array_equal(x, traj.x[-1])


if __name__ == "__main__":
    main()
