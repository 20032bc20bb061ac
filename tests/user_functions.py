"""Objective functions defined at module level, as a user's module would, so that a
sweep saved on them can be loaded back by import path."""

import numba


@numba.njit
def rosen(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


@numba.njit
def rosen_grad(x, out):
    out[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2)
    out[1] = 200 * (x[1] - x[0] ** 2)


def chapter(x, h):
    """The chapter's quadratic, curvatures ``h``, as plain Python."""
    return 0.5 * (h[0] * x[0] * x[0] + h[1] * x[1] * x[1])


def chapter_grad(x, out, h):
    out[0] = h[0] * x[0]
    out[1] = h[1] * x[1]
