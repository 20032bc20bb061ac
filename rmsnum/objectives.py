"""Objectives: quadratics f(x) = 1/2 x^T A x - b^T x, diagonal or dense SPD."""

from __future__ import annotations

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
