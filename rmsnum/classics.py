"""Classic test objectives on the :class:`~rmsnum.Objective` interface: Rosenbrock,
Beale, Booth and a logistic-regression loss.

They are written as a user would write an objective, as Numba functions
``value(x, *args)`` and ``grad(x, out, *args)``, and run through the same
kernels. Their constants are converted to the dtype of x (:func:`_const`), so
a float32 run computes them in float32, and their compiled kernels are cached
on disk like rmsnum's own (see :mod:`rmsnum.backends._cache`).

Examples
--------
>>> import rmsnum as rn
>>> from rmsnum import classics
>>> f = classics.rosenbrock()
>>> float(f.value([1.0, 1.0])), float(f.value([0.0, 0.0])), f.grad([0.0, 0.0])
(0.0, 1.0, array([-2.,  0.]))
>>> traj = rn.simulate(rn.RMSProp(lr=1e-3), f, x0=(-1.5, 2.0), steps=20_000)
>>> print(f"{traj.gap[-1]:.1e}")
2.3e-04
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from . import _validation as v
from ._config import CACHE, JIT_FASTMATH
from .kernels import _callable_from_jitted_code
from .objectives import Objective

_jit = numba.njit(cache=CACHE, error_model="numpy", fastmath=JIT_FASTMATH)


def _const(x, c):
    """The constant ``c`` in the dtype of the array ``x`` (a literal would
    make Numba promote float32 arithmetic to float64)."""
    return x.dtype.type(c)


@overload(_const)
def _const_impl(x, c):
    kind = as_dtype(x.dtype).type
    return lambda x, c: kind(c)


# --------------------------------------------------------------------------- Rosenbrock


@_jit
def rosenbrock_value(x, a, b):
    """sum_i b (x[i+1] - x[i]^2)^2 + (a - x[i])^2."""
    total = a - a
    for i in range(x.size - 1):
        u = x[i + 1] - x[i] * x[i]
        w = a - x[i]
        total += b * u * u + w * w
    return total


@_jit
def rosenbrock_grad(x, out, a, b):
    """The gradient of :func:`rosenbrock_value`."""
    two = _const(x, 2.0)
    n = x.size
    for i in range(n):
        out[i] = a - a
    for i in range(n - 1):
        u = x[i + 1] - x[i] * x[i]
        out[i] += -two * (a - x[i]) - two * two * b * x[i] * u
        out[i + 1] += two * b * u


def rosenbrock(dim: int = 2, *, a: float = 1.0, b: float = 100.0, noise: float = 0.0) -> Objective:
    r"""The Rosenbrock function :math:`\sum_{i<d} b (x_{i+1} - x_i^2)^2 + (a - x_i)^2`.

    With the defaults ``a=1``, ``b=100`` it is SciPy's ``scipy.optimize.rosen``;
    the minimum is ``x* = (a, a^2, a^4, ...)`` for d = 2 (``(1, ..., 1)`` when a = 1), f* = 0.

    >>> rosenbrock(3).minimum
    array([1., 1., 1.])
    """
    dim = v.integer("dim", dim, low=2)
    a = v.real("a", a)
    b = v.real("b", b, low=0.0)
    minimum = None
    if a == 1.0:
        minimum = np.ones(dim)
    elif dim == 2:
        minimum = np.array([a, a * a])
    return Objective(rosenbrock_value, rosenbrock_grad, dim, minimum, 0.0 if minimum is not None else None,
                     args=(a, b), noise=noise, name=f"Rosenbrock (d={dim}, a={a:g}, b={b:g})")


# --------------------------------------------------------------------------- Beale and Booth


@_jit
def beale_value(x):
    """(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2."""
    p, q = x[0], x[1]
    u1 = _const(x, 1.5) - p + p * q
    u2 = _const(x, 2.25) - p + p * q * q
    u3 = _const(x, 2.625) - p + p * q * q * q
    return u1 * u1 + u2 * u2 + u3 * u3


@_jit
def beale_grad(x, out):
    """The gradient of :func:`beale_value`."""
    p, q = x[0], x[1]
    one, two, three = _const(x, 1.0), _const(x, 2.0), _const(x, 3.0)
    u1 = _const(x, 1.5) - p + p * q
    u2 = _const(x, 2.25) - p + p * q * q
    u3 = _const(x, 2.625) - p + p * q * q * q
    out[0] = two * (u1 * (q - one) + u2 * (q * q - one) + u3 * (q * q * q - one))
    out[1] = two * p * (u1 + two * u2 * q + three * u3 * q * q)


def beale(*, noise: float = 0.0) -> Objective:
    r"""Beale's function :math:`(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2`.

    Minimum at (3, 0.5), f* = 0; steep walls and a flat valley.

    >>> float(beale().value([3.0, 0.5]))
    0.0
    """
    return Objective(beale_value, beale_grad, 2, (3.0, 0.5), 0.0, noise=noise, name="Beale")


@_jit
def booth_value(x):
    """(x + 2y - 7)^2 + (2x + y - 5)^2."""
    two = _const(x, 2.0)
    u = x[0] + two * x[1] - _const(x, 7.0)
    w = two * x[0] + x[1] - _const(x, 5.0)
    return u * u + w * w


@_jit
def booth_grad(x, out):
    """The gradient of :func:`booth_value`."""
    two = _const(x, 2.0)
    u = x[0] + two * x[1] - _const(x, 7.0)
    w = two * x[0] + x[1] - _const(x, 5.0)
    out[0] = two * u + two * two * w
    out[1] = two * two * u + two * w


def booth(*, noise: float = 0.0) -> Objective:
    r"""Booth's function :math:`(x + 2y - 7)^2 + (2x + y - 5)^2`: a quadratic with
    curvatures 2 and 18 along rotated axes. Minimum at (1, 3), f* = 0.

    >>> booth().grad([1.0, 3.0])
    array([0., 0.])
    """
    return Objective(booth_value, booth_grad, 2, (1.0, 3.0), 0.0, noise=noise, name="Booth")


# --------------------------------------------------------------------------- logistic regression


def _softplus(z):
    """log(1 + exp(z)) without overflow."""
    if z > 0:
        return z + math.log1p(math.exp(-z))
    return math.log1p(math.exp(z))


def _sigmoid(z, one):
    """1 / (1 + exp(-z)) without overflow."""
    if z >= 0:
        return one / (one + math.exp(-z))
    e = math.exp(z)
    return e / (one + e)


# Plain functions that Numba compiles for whichever target calls them (CPU or CUDA).
_callable_from_jitted_code(_softplus)
_callable_from_jitted_code(_sigmoid)


@_jit
def logistic_value(p, X, y, l2):
    """mean_i [softplus(z_i) - y_i z_i] + l2/2 |w|^2 with z = X w + b, p = (w, b)."""
    n, d = X.shape
    total = l2 - l2
    for i in range(n):
        z = p[d]
        for k in range(d):
            z += X[i, k] * p[k]
        total += _softplus(z) - y[i] * z
    penalty = l2 - l2
    for k in range(d):
        penalty += p[k] * p[k]
    return total / _const(p, n) + l2 * penalty / _const(p, 2.0)


@_jit
def logistic_grad(p, out, X, y, l2):
    """The gradient of :func:`logistic_value`: (X^T r / n + l2 w, mean r), r = sigmoid(z) - y."""
    n, d = X.shape
    one, count = _const(p, 1.0), _const(p, n)
    for k in range(d + 1):
        out[k] = l2 - l2
    for i in range(n):
        z = p[d]
        for k in range(d):
            z += X[i, k] * p[k]
        r = _sigmoid(z, one) - y[i]
        for k in range(d):
            out[k] += r * X[i, k]
        out[d] += r
    for k in range(d):
        out[k] = out[k] / count + l2 * p[k]
    out[d] = out[d] / count


def logistic_regression(X: Any, y: Any, *, l2: float = 0.0, noise: float = 0.0, name: str | None = None) -> Objective:
    r"""The mean logistic loss of a linear classifier, :math:`\frac1n \sum_i \log(1 + e^{z_i}) - y_i z_i
    + \frac{l_2}{2}|w|^2` with :math:`z = Xw + b`, parameters ``(w_1, ..., w_d, b)``.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Features, float32 or float64, finite: the loss is computed in X's dtype
        (give float32 data for a float32 run), never copied or cast.
    y : numpy.ndarray of shape (n,)
        Labels 0 or 1, X's dtype.
    l2 : float, default 0
        Ridge penalty on the weights (not the bias).
    noise : float, default 0
        Gradient noise, as :class:`~rmsnum.Objective`.
    name : str, optional

    Notes
    -----
    The minimum is found with SciPy (L-BFGS-B, float64). On separable data
    without a penalty the loss has no minimum: then ``minimum`` and ``f_star``
    are None and a sweep cannot use ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0.0, 1.0, 0.0, 1.0])
    >>> f = logistic_regression(X, y)
    >>> f.dim, round(float(f.value([0.0, 0.0])), 6)   # log 2 at w = 0, b = 0
    (2, 0.693147)
    >>> f.minimum.round(4), round(f.f_star, 6)
    (array([ 0.9082, -1.3623]), 0.586872)
    """
    X = v.float_array("X", X)
    y = v.float_array("y", y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty matrix of shape (n, d), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), one label per row of X, got {y.shape}")
    if y.dtype != X.dtype:
        raise TypeError(f"y must have the dtype of X ({X.dtype}), got {y.dtype}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y must hold labels 0 and 1, got {np.unique(y)[:5]}")
    l2 = v.real("l2", l2, low=0.0)
    d = X.shape[1]
    objective = Objective(logistic_value, logistic_grad, d + 1, args=(X, y, l2), noise=noise,
                          name=name if name is not None else f"logistic regression (n={X.shape[0]}, d={d})")
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    args = (X64, y64, l2)
    gradient = _gradient_of(args)
    import scipy.optimize  # imported on first use: SciPy takes a third of a second to import

    found = scipy.optimize.minimize(logistic_value, np.zeros(d + 1), args=args, jac=gradient, method="L-BFGS-B",
                                    options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 10_000})
    # On separable data without a penalty the loss keeps falling as the weights
    # grow, so the point found is no minimum: the loss still falls along its ray.
    falls_further = l2 == 0 and logistic_value(2 * found.x, *args) < found.fun
    if np.max(np.abs(gradient(found.x))) < 1e-8 and not falls_further:
        objective.minimum = objective._minimum(found.x)
        objective.f_star = float(found.fun)
    return objective


def _gradient_of(args: tuple) -> Any:
    def grad(p: np.ndarray, *_: Any) -> np.ndarray:
        out = np.empty_like(p)
        logistic_grad(p, out, *args)
        return out
    return grad
