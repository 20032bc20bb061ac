"""Objectives: quadratics f(x) = 1/2 x^T A x - b^T x, diagonal or dense SPD, and the
chapter's minibatch linear regression."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import scipy.linalg

from . import _validation as v


class Quadratic:
    r"""The quadratic :math:`f(x) = \tfrac12 x^\top A x - b^\top x` with A symmetric positive definite.

    Parameters
    ----------
    A : array_like
        Either a 1-D vector of positive numbers (the diagonal of A) or a dense
        symmetric positive definite matrix of shape (d, d).
    b : array_like, optional
        Linear term of shape (d,); zero by default.
    noise : float, default 0.0
        Standard deviation of Gaussian noise added to every gradient
        coordinate in :func:`rmsnum.simulate` (drawn from the seeded
        counter-based generator, so runs are reproducible).
    name : str, optional
        A label carried into trajectories and figures.

    Examples
    --------
    >>> q = Quadratic([0.2, 4.0])            # f = 0.1 x1**2 + 2 x2**2
    >>> float(q.value([1.0, 1.0]))
    2.1
    >>> q.grad([1.0, 1.0])
    array([0.2, 4. ])
    >>> q.minimizer, q.f_star
    (array([0., 0.]), 0.0)
    """

    def __init__(self, A: Any, b: Any = None, *, noise: float = 0.0, name: str | None = None) -> None:
        A = np.array(A, dtype=np.float64)
        if A.ndim not in (1, 2) or A.size == 0:
            raise ValueError(f"A must be a non-empty vector (diagonal) or a square matrix, got shape {A.shape}")
        d = A.shape[0]
        if A.ndim == 2 and A.shape != (d, d):
            raise ValueError(f"A must be square, got shape {A.shape}")
        if not np.all(np.isfinite(A)):
            raise ValueError("A must be finite")
        if A.ndim == 1:
            if np.any(A <= 0):
                raise ValueError(f"the diagonal A must be > 0 (positive definite), got {A}")
        else:
            if not np.allclose(A, A.T, rtol=1e-12, atol=1e-14 * np.abs(A).max()):
                raise ValueError("A must be symmetric")
            try:
                np.linalg.cholesky(A)
            except np.linalg.LinAlgError as err:
                raise ValueError("A must be positive definite") from err
        b = np.zeros(d) if b is None else np.array(b, dtype=np.float64)
        if b.shape != (d,):
            raise ValueError(f"b must have shape ({d},) to match A, got {b.shape}")
        if not np.all(np.isfinite(b)):
            raise ValueError("b must be finite")
        self.A = A
        self.b = b
        self.noise = v.real("noise", noise, low=0.0)
        self.name = name if name is not None else ("diagonal quadratic" if A.ndim == 1 else "quadratic")
        self.A.flags.writeable = False
        self.b.flags.writeable = False

    def __repr__(self) -> str:
        return f"Quadratic(A={self.A.tolist()!r}, b={self.b.tolist()!r}, noise={self.noise!r}, name={self.name!r})"

    @property
    def dim(self) -> int:
        """Number of coordinates d."""
        return self.A.shape[0]

    @property
    def is_diagonal(self) -> bool:
        """True when A is stored as its diagonal."""
        return self.A.ndim == 1

    @property
    def matrix(self) -> np.ndarray:
        """A as a dense (d, d) matrix."""
        return np.diag(self.A) if self.is_diagonal else self.A.copy()

    @property
    def curvatures(self) -> np.ndarray:
        """Eigenvalues of A, ascending."""
        return np.sort(self.A) if self.is_diagonal else scipy.linalg.eigvalsh(self.A)

    @property
    def minimizer(self) -> np.ndarray:
        """x* = A^{-1} b."""
        if self.is_diagonal:
            return self.b / self.A
        return scipy.linalg.solve(self.A, self.b, assume_a="pos")

    @property
    def f_star(self) -> float:
        """f(x*) = -1/2 b^T x*."""
        return float(-0.5 * self.b @ self.minimizer)

    def _point(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"x must have last dimension {self.dim}, got shape {x.shape}")
        return x

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return x * self.A if self.is_diagonal else x @ self.A

    def value(self, x: Any) -> np.ndarray:
        """f(x); x of shape (..., d)."""
        x = self._point(x)
        return 0.5 * np.sum(x * self._apply(x), axis=-1) - x @ self.b

    def grad(self, x: Any) -> np.ndarray:
        """A x - b; x of shape (..., d)."""
        x = self._point(x)
        return self._apply(x) - self.b

    def with_noise(self, sigma: float) -> "Quadratic":
        """The same quadratic with gradient noise of standard deviation ``sigma``."""
        return Quadratic(self.A, self.b, noise=sigma, name=self.name)

    def rotated(self, angle: float) -> "Quadratic":
        """This 2-D quadratic rotated by ``angle`` radians: A -> R A R^T, b -> R b.

        >>> q = quadratic_2d().rotated(math.pi / 2)
        >>> q.matrix.round(12)
        array([[ 4. , -0. ],
               [-0. ,  0.2]])
        """
        angle = v.real("angle", angle)
        if self.dim != 2:
            raise ValueError(f"rotated() needs a 2-D quadratic, this one has dimension {self.dim}")
        c, s = math.cos(angle), math.sin(angle)
        R = np.array([[c, -s], [s, c]])
        A = R @ self.matrix @ R.T
        A = 0.5 * (A + A.T)  # exactly symmetric despite rounding
        return Quadratic(A, R @ self.b, noise=self.noise, name=f"{self.name} rotated by {angle:g} rad")


def quadratic_2d(noise: float = 0.0) -> Quadratic:
    """The chapter's objective f(x) = 0.1 x1**2 + 2 x2**2 (A = diag(0.2, 4)).

    >>> float(quadratic_2d().value([-5.0, -2.0]))
    10.5
    """
    return Quadratic([0.2, 4.0], noise=noise, name="f(x) = 0.1 x1^2 + 2 x2^2")


def rotated_quadratic_2d(noise: float = 0.0) -> Quadratic:
    """The chapter's exercise 2: f(x) = 0.1 (x1 + x2)**2 + 2 (x1 - x2)**2.

    Expanded, A = [[4.2, -3.8], [-3.8, 4.2]]: eigenvalues 0.4 along (1, 1) and
    8 along (1, -1), so the axes of the chapter's objective turned by 45 degrees
    (and its curvatures doubled, as the exercise writes it).

    >>> float(rotated_quadratic_2d().value([1.0, 0.0]))
    2.1
    """
    return Quadratic([[4.2, -3.8], [-3.8, 4.2]], noise=noise, name="f(x) = 0.1 (x1+x2)^2 + 2 (x1-x2)^2")


class LinearRegression:
    r"""The chapter's minibatch linear regression: model :math:`\hat y = Xw + b`, loss
    :math:`(\hat y - y)^2 / 2` averaged over a minibatch.

    The parameters are the ``d`` weights and the bias, handled by optimizers as
    one vector ``(w_1, ..., w_d, b)`` of :attr:`dim` = d + 1 coordinates.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d), or a dataset
        Features: C-contiguous float32 or float64, finite. A dataset from
        :mod:`rmsnum.data` (anything with ``X``, ``y`` and ``name``) may be
        passed alone instead of ``X, y``.
    y : numpy.ndarray of shape (n,)
        Targets, the dtype of ``X``, finite.
    name : str, optional
        A label carried into results and figures.

    Notes
    -----
    The arrays are used as given, never copied or cast: their dtype is the
    working dtype of :func:`rmsnum.train`. They are exposed as read-only views.
    The full-data loss, the least-squares optimum and its Hessian are computed
    in float64 (SciPy), whatever the working dtype.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0]]); y = np.array([1.0, 3.0, 5.0])   # y = 2x + 1
    >>> problem = LinearRegression(X, y)
    >>> problem.dim, float(problem.loss(np.array([0.0]), 0.0))
    (2, 5.833333333333333)
    >>> w, b = problem.optimum
    >>> w.round(12), round(b, 12), round(problem.f_star, 12)
    (array([2.]), 1.0, 0.0)
    """

    def __init__(self, X: Any, y: Any = None, *, name: str | None = None) -> None:
        if y is None and hasattr(X, "X") and hasattr(X, "y"):
            name = getattr(X, "name", None) if name is None else name
            X, y = X.X, X.y
        X = v.float_array("X", X)
        y = v.float_array("y", y)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must be a non-empty matrix of shape (n, d), got shape {X.shape}")
        if y.ndim != 1:
            raise ValueError(f"y must be a vector of shape (n,), got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have one target per row of X ({X.shape[0]}), got {y.shape[0]}")
        if y.dtype != X.dtype:
            raise TypeError(f"y must have the dtype of X ({X.dtype}), got {y.dtype}")
        for label, arr in (("X", X), ("y", y)):
            bad = np.argwhere(~np.isfinite(arr))
            if bad.size:
                raise ValueError(f"{label} must be finite, got {arr[tuple(bad[0])]} at index {tuple(bad[0].tolist())}")
        self.X = X.view()
        self.y = y.view()
        self.X.flags.writeable = False
        self.y.flags.writeable = False
        self.name = name if name is not None else "linear regression"

    def __repr__(self) -> str:
        return f"LinearRegression(n={self.n}, d={self.features}, dtype={self.dtype}, name={self.name!r})"

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.X.shape[0]

    @property
    def features(self) -> int:
        """Number of features d."""
        return self.X.shape[1]

    @property
    def dim(self) -> int:
        """Number of parameters, d + 1 (the weights, then the bias)."""
        return self.X.shape[1] + 1

    @property
    def dtype(self) -> np.dtype:
        """The data's dtype (the working dtype of training)."""
        return self.X.dtype

    def _design(self) -> np.ndarray:
        """``[X, 1]`` in float64."""
        return np.hstack([self.X.astype(np.float64), np.ones((self.n, 1))])

    @functools.cached_property
    def _solution(self) -> tuple[np.ndarray, float, np.ndarray]:
        Z = self._design()
        y = self.y.astype(np.float64)
        params = scipy.linalg.lstsq(Z, y)[0]
        residual = Z @ params - y
        params.flags.writeable = False
        hessian = Z.T @ Z / self.n
        hessian.flags.writeable = False
        return params, float(residual @ residual / (2 * self.n)), hessian

    @property
    def optimum(self) -> tuple[np.ndarray, float]:
        """The least-squares ``(w*, b*)`` (float64, SciPy; minimum-norm when not unique)."""
        params = self._solution[0]
        return params[:-1].copy(), float(params[-1])

    @property
    def f_star(self) -> float:
        """The smallest full-data loss, at :attr:`optimum`."""
        return self._solution[1]

    @property
    def hessian(self) -> np.ndarray:
        """The full-data loss's Hessian ``[X, 1]^T [X, 1] / n`` (float64, read-only)."""
        return self._solution[2]

    def _params(self, w: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(w)
        if w.shape[-1:] != (self.features,):
            raise ValueError(f"w must have last dimension {self.features}, got shape {w.shape}")
        b = np.asarray(b)
        return w, b

    def predict(self, w: Any, b: Any) -> np.ndarray:
        """``X @ w + b`` for one parameter set (w of shape (d,))."""
        w, b = self._params(w, b)
        return self.X @ w + b

    def loss(self, w: Any, b: Any) -> np.ndarray:
        """The full-data loss ``mean((X w + b - y)**2) / 2``, summed directly.

        ``w`` may carry leading batch dimensions, ``(..., d)`` with ``b`` of
        shape ``(...)``; the result has that shape.
        """
        w, b = self._params(w, b)
        residual = np.einsum("nd,...d->...n", self.X, w) + b[..., None] - self.y
        return 0.5 * np.mean(residual * residual, axis=-1)

    def grad(self, w: Any, b: Any, rows: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The gradient ``(dL/dw, dL/db)`` of the loss averaged over ``rows`` (all by default)."""
        w, b = self._params(w, b)
        X, y = (self.X, self.y) if rows is None else (self.X[rows], self.y[rows])
        residual = X @ w + b - y
        return X.T @ residual / len(y), np.sum(residual) / len(y)
