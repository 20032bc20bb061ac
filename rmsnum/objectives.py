"""Objectives: quadratics f(x) = 1/2 x^T A x - b^T x, diagonal or dense SPD, the
chapter's minibatch linear regression, and users' own objectives (:class:`Objective`)."""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import numbers
import os
import re
import sys
import sysconfig
import types
from typing import Any

import numpy as np

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
        name = v.optional_str("name", name)
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
        if self.is_diagonal:
            return np.sort(self.A)
        import scipy.linalg  # imported on first use: SciPy takes a third of a second to import

        return scipy.linalg.eigvalsh(self.A)

    @property
    def minimizer(self) -> np.ndarray:
        """x* = A^{-1} b."""
        if self.is_diagonal:
            return self.b / self.A
        import scipy.linalg

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

    def _kernel_args(self, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` in ``dtype``: what the kernels' built-in evaluation of a quadratic reads."""
        return self.A.astype(dtype), self.b.astype(dtype)

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
        import scipy.linalg

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


def known_f_star(objective: Any) -> float:
    """The objective's f*, or a ValueError saying how to give it."""
    if objective.f_star is None:
        raise ValueError(f"the objective {objective.name!r} has no known minimum value f*: "
                         "give Objective(f_star=...) or Objective(minimum=...)")
    return objective.f_star


def _kind(fn: Any) -> str:
    """"cpu" for an ``@numba.njit`` function, "cuda" for a ``@numba.cuda.jit`` one,
    "python" for a plain function, "" for anything else."""
    module = type(fn).__module__
    if "cuda" in module and hasattr(fn, "py_func") or module.startswith("numba.cuda.simulator"):
        return "cuda"
    if module.startswith("numba") and hasattr(fn, "py_func"):
        return "cpu"
    return "python" if inspect.isfunction(fn) else ""


def _source(fn: Any) -> Any:
    """The Python function behind a plain, ``@njit`` or ``@cuda.jit`` function."""
    return getattr(fn, "py_func", None) or getattr(fn, "fn", None) or fn


def _describe(fn: Any) -> str:
    """``'name' (file:line)`` for error messages."""
    source = _source(fn)
    name = getattr(source, "__qualname__", None) or repr(fn)
    code = getattr(source, "__code__", None)
    return f"{name!r}" if code is None else f"{name!r} ({code.co_filename}:{code.co_firstlineno})"


def _numba_failure(err: Exception) -> str:
    """The informative lines of a Numba compilation error."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Failed in nopython mode", "During:", "File "))]
    return " ".join(lines[:4])[:600]


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NAMED_PACKAGES = frozenset({"numpy", "numba", "scipy", "llvmlite"})
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"])


def _is_library(module_name: str) -> bool:
    """Whether ``module_name`` is NumPy, Numba, SciPy or a module of the standard
    library (by its location, so a user's ``test.py`` is not)."""
    top = module_name.partition(".")[0]
    if top in _NAMED_PACKAGES:
        return True
    if top not in sys.stdlib_module_names:
        return False
    path = getattr(sys.modules.get(module_name), "__file__", None)
    if path is None:
        return top in sys.builtin_module_names
    return os.path.realpath(path).startswith(_STDLIB + os.sep)


def _python_function(obj: Any) -> Any:
    """The Python function behind a plain function, an ``@njit`` dispatcher or a
    CUDA device function; None for anything else."""
    source = _source(obj) if _kind(obj) else None
    return source if inspect.isfunction(source) else None


def _global_names(code: types.CodeType) -> list[str]:
    """The names ``code`` and the code nested in it look up (globals and attributes)."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return names


class _CodeHasher:
    """A SHA-256 of what functions compute, the same in every process.

    It takes a function's bytecode, constants (nested code too) and names, and
    the values of the globals, closure cells and default arguments it uses:
    numbers, strings, arrays (dtype, shape, bytes), containers of them and,
    recursively, the functions and Numba dispatchers it calls (each once, so
    recursion ends). Modules, and the functions of the standard library, NumPy,
    Numba and SciPy, count by name; other objects by type and repr without
    addresses. Line numbers and file names are left out.
    """

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self._seen: dict[int, tuple[int, Any]] = {}  # id -> (visit number, the object, kept alive)

    def hexdigest(self) -> str:
        return self.sha.hexdigest()

    def _feed(self, tag: str, data: bytes = b"") -> None:
        self.sha.update(f"{tag}:{len(data)}:".encode())
        self.sha.update(data)

    def _again(self, obj: Any) -> bool:
        """True (feeding a back-reference) when ``obj`` was fed before; else marks it fed."""
        seen = self._seen.get(id(obj))
        if seen is not None:
            self._feed("again", str(seen[0]).encode())
            return True
        self._seen[id(obj)] = (len(self._seen), obj)
        return False

    def value(self, obj: Any) -> None:
        """Feed a value a function uses."""
        fn = _python_function(obj)
        if fn is not None:
            self.function(fn)
        elif isinstance(obj, types.ModuleType):
            self._feed("module", obj.__name__.encode())
        elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            self._feed(type(obj).__name__, repr(obj).encode())
        elif isinstance(obj, (np.ndarray, np.generic)) and not obj.dtype.hasobject:
            self._feed(f"{type(obj).__name__} {obj.dtype.str} {obj.shape}", np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, (tuple, list, dict, set, frozenset)):
            if self._again(obj):
                return
            items = (list(obj.items()) if isinstance(obj, dict)
                     else sorted(obj, key=lambda item: (type(item).__name__, _ADDRESS.sub("", repr(item))))
                     if isinstance(obj, (set, frozenset)) else obj)
            self._feed(f"{type(obj).__name__} {len(items)}")
            for item in items:
                self.value(item)
        else:
            self._feed(f"{type(obj).__module__}.{type(obj).__qualname__}", _ADDRESS.sub("", repr(obj)).encode())

    def function(self, fn: types.FunctionType) -> None:
        """Feed a Python function: its code and everything it uses."""
        if self._again(fn):
            return
        module = fn.__module__ or ""
        if _is_library(module):
            self._feed("library function", f"{module}:{fn.__qualname__}".encode())
            return
        code = fn.__code__
        self._code(code)
        for name in dict.fromkeys(_global_names(code)):
            if name in fn.__globals__:
                self._feed("global", name.encode())
                self.value(fn.__globals__[name])
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            self._feed("closure", name.encode())
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                self._feed("empty")
                continue
            self.value(contents)
        self._feed("defaults")
        self.value(fn.__defaults__)
        self.value(fn.__kwdefaults__)

    def _code(self, code: types.CodeType) -> None:
        self._feed("code", code.co_code)
        self._feed("arguments", f"{code.co_argcount} {code.co_posonlyargcount} {code.co_kwonlyargcount} "
                                f"{code.co_flags}".encode())
        for label, names in (("names", code.co_names), ("locals", code.co_varnames),
                             ("free", code.co_freevars), ("cells", code.co_cellvars)):
            self._feed(label, "\0".join(names).encode())
        self._feed("exceptions", getattr(code, "co_exceptiontable", b""))
        self._feed(f"constants {len(code.co_consts)}")
        for const in code.co_consts:
            self._constant(const)

    def _constant(self, const: Any) -> None:
        if isinstance(const, types.CodeType):
            self._code(const)
        elif isinstance(const, (tuple, frozenset)):
            items = sorted(const, key=lambda item: (type(item).__name__, repr(item))) if isinstance(
                const, frozenset) else const
            self._feed(f"{type(const).__name__} {len(items)}")
            for item in items:
                self._constant(item)
        else:
            self._feed(type(const).__name__, repr(const).encode())


class Objective:
    r"""A user's objective: Numba-compiled functions ``value(x, *args)`` and ``grad(x, out, *args)``.

    :func:`rmsnum.simulate` and :func:`rmsnum.sweep` run it inside their compiled
    kernels, on every backend: the functions are called once per step and
    configuration with ``x`` a 1-D array of ``dim`` coordinates in the
    working dtype; ``grad`` writes the gradient into ``out`` (same shape and
    dtype) and ``value`` returns f(x) as a number.

    Parameters
    ----------
    value, grad : function
        Plain Python functions, ``@numba.njit`` functions or, for
        ``backend="cuda"`` only, ``@numba.cuda.jit(device=True)`` functions.
        rmsnum compiles their Python source for each backend it runs them on
        (``@njit``'s own options are kept, with ``error_model="numpy"`` so that a
        division by zero gives inf, reported as a divergence, not an exception).
        For the CPU this happens here, in float64, so a function Numba cannot
        compile is a ``TypeError`` naming it, before any run.
    dim : int
        Number of coordinates, >= 1.
    minimum : array_like of shape (dim,), optional
        A minimiser x*, used by the analysis (limit cycles, distances).
    f_star : float, optional
        The minimum value f(x*), used for gaps and tolerances; by default
        ``value(minimum)`` when ``minimum`` is given, else unknown (None).
    args : tuple, optional
        Extra arguments passed to both functions after the point (like SciPy's
        ``args``): NumPy arrays (kept as read-only views, never copied or cast)
        and real numbers, which every run passes in its working dtype (so a
        constant of the objective does not promote float32 arithmetic).
    noise : float, default 0.0
        Standard deviation of Gaussian noise added to every gradient
        coordinate, from the seeded counter-based generator (as :class:`Quadratic`).
    name : str, optional
        A label for results and figures; default the name of ``value``.

    Notes
    -----
    The functions compute in the arithmetic they are written in: a Python
    float literal in a float32 run makes Numba compute that expression in
    float64 (the optimizer's state stays float32). A coordinate of x that is
    not finite ends a run as diverged, whatever ``value`` returns there.

    Examples
    --------
    >>> import numba, rmsnum as rn
    >>> @numba.njit
    ... def booth(x):
    ...     return (x[0] + 2 * x[1] - 7) ** 2 + (2 * x[0] + x[1] - 5) ** 2
    >>> @numba.njit
    ... def booth_grad(x, out):
    ...     u, v = x[0] + 2 * x[1] - 7, 2 * x[0] + x[1] - 5
    ...     out[0] = 2 * u + 4 * v
    ...     out[1] = 4 * u + 2 * v
    >>> obj = rn.Objective(booth, booth_grad, dim=2, minimum=(1.0, 3.0))
    >>> obj.f_star, float(obj.value([0.0, 0.0])), obj.grad([0.0, 0.0])
    (0.0, 74.0, array([-34., -38.]))
    >>> traj = rn.simulate(rn.Adam(lr=0.1), obj, x0=(0.0, 0.0), steps=2000)
    >>> traj.x[-1].round(6), bool(traj.gap[-1] < 1e-10)
    (array([1., 3.]), True)
    """

    def __init__(self, value: Any, grad: Any, dim: int, minimum: Any = None, f_star: Any = None, *,
                 args: tuple = (), noise: float = 0.0, name: str | None = None) -> None:
        kinds = {}
        for label, fn in (("value", value), ("grad", grad)):
            kinds[label] = _kind(fn)
            if not kinds[label]:
                raise TypeError(f"{label} must be a Python function, an @numba.njit function or a "
                                f"@numba.cuda.jit(device=True) function that Numba can compile, got {fn!r} "
                                f"of type {type(fn).__name__}")
        self.dim = v.integer("dim", dim, low=1)
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple of NumPy arrays and real numbers, got {type(args).__name__}")
        self.args = tuple(self._argument(k, arg) for k, arg in enumerate(args))
        self.noise = v.real("noise", noise, low=0.0)
        self.name = name if name is not None else getattr(_source(value), "__name__", "objective")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        self.minimum = None if minimum is None else self._minimum(minimum)
        if f_star is not None:
            f_star = v.real("f_star", f_star)
            if not math.isfinite(f_star):
                raise ValueError(f"f_star must be finite, got {f_star}")
        self._functions = {"value": value, "grad": grad}
        self._compiled: tuple | None = None
        if "cuda" not in kinds.values():
            self.compiled()  # a function Numba cannot compile fails here, named
        if f_star is None and self.minimum is not None:
            f_star = float(self.value(self.minimum))
        self.f_star = f_star

    @staticmethod
    def _argument(k: int, arg: Any) -> Any:
        if isinstance(arg, np.ndarray):
            if arg.dtype.kind not in "iuf":
                raise TypeError(f"args[{k}] must be a numeric array, got dtype {arg.dtype}")
            view = arg.view()
            view.flags.writeable = False
            return view
        if isinstance(arg, numbers.Real) and not isinstance(arg, (bool, np.bool_)):
            return float(arg)
        raise TypeError(f"args[{k}] must be a NumPy array or a real number, got {type(arg).__name__}")

    def _minimum(self, minimum: Any) -> np.ndarray:
        try:
            arr = np.array(minimum, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"minimum must be a sequence of {self.dim} real numbers, got {minimum!r}") from err
        if arr.shape != (self.dim,):
            raise ValueError(f"minimum must have shape ({self.dim},), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"minimum must be finite, got {arr}")
        arr.flags.writeable = False
        return arr

    def __repr__(self) -> str:
        return (f"Objective(value={_describe(self._functions['value'])}, grad={_describe(self._functions['grad'])}, "
                f"dim={self.dim}, f_star={self.f_star!r}, name={self.name!r})")

    @property
    def minimizer(self) -> np.ndarray:
        """x*, as :attr:`Quadratic.minimizer` (a ValueError when no ``minimum`` was given)."""
        if self.minimum is None:
            raise ValueError(f"the objective {self.name!r} has no known minimum: give Objective(minimum=...)")
        return self.minimum.copy()

    @property
    def functions(self) -> tuple[Any, Any]:
        """``(value, grad)`` as given."""
        return self._functions["value"], self._functions["grad"]

    def _digest(self) -> str:
        """A hex SHA-256 of what this objective computes, the same in every process.

        It covers the code of ``value`` and ``grad`` (the Python function behind
        an ``@njit`` or CUDA device function: bytecode, constants, names), the
        values of the globals, closure cells and default arguments they use
        (numbers, strings, arrays and, recursively, the functions and Numba
        dispatchers they call), ``dim``, ``args``, ``noise`` and ``f_star``; modules
        and the functions of the standard library, NumPy, Numba and SciPy count
        by name. A checkpointed sweep compares it, so a function whose body was
        edited under the same name does not resume from the old numbers.
        """
        hasher = _CodeHasher()
        for fn in self.functions:
            hasher.value(fn)
        hasher.value((self.dim, self.args, self.noise, self.f_star))
        return hasher.hexdigest()

    def compiled(self) -> tuple[Any, Any]:
        """``(value, grad)`` compiled for the CPU (``numba.njit`` dispatchers); made once.
        The CUDA backend compiles :attr:`functions` into device functions itself."""
        if self._compiled is None:
            self._compiled = tuple(self._compile(label) for label in ("value", "grad"))
        return self._compiled

    def _compile(self, label: str) -> Any:
        import numba

        fn = self._functions[label]
        kind = _kind(fn)
        if kind == "cpu" and fn.targetoptions.get("error_model") == "numpy":
            dispatcher = fn
        else:
            options = dict(fn.targetoptions) if kind == "cpu" else {}
            options.pop("nopython", None)
            options["error_model"] = "numpy"
            dispatcher = numba.njit(**options)(_source(fn))
        self._check_compiles(label, dispatcher, kind)
        return dispatcher

    def _check_compiles(self, label: str, dispatcher: Any, kind: str) -> None:
        """Compile ``dispatcher`` for float64 points (as the kernels pass them) or
        raise a TypeError that names the function."""
        import numba
        from numba.core.errors import NumbaError

        point = numba.types.Array(numba.types.float64, 1, "A")
        signature = (point,) * (1 if label == "value" else 2) + tuple(
            numba.typeof(self._run_argument(arg, np.float64)) for arg in self.args)
        what = "a CUDA device function, which" if kind == "cuda" else "it"
        name = _describe(self._functions[label])
        call = f"{label}(x{', out' if label == 'grad' else ''}, *args) with {len(self.args)} extra argument(s)"
        try:
            dispatcher.compile(signature)
        except NumbaError as err:
            raise TypeError(f"{label} function {name} cannot run inside rmsnum's kernels: Numba cannot compile "
                            f"{what} in nopython mode for a float64 point{' and args' if self.args else ''}: "
                            f"{_numba_failure(err)}") from err
        except TypeError as err:  # the signature does not fit the call
            raise TypeError(f"{label} function {name} cannot run inside rmsnum's kernels, which call it as "
                            f"{call}: {err}") from err
        if label == "value":
            returns = dispatcher.overloads[signature].signature.return_type
            if not isinstance(returns, (numba.types.Float, numba.types.Integer)):
                raise TypeError(f"value function {_describe(self._functions['value'])} must return a real number, "
                                f"it returns {returns}")

    @staticmethod
    def _run_argument(arg: Any, dtype: Any) -> Any:
        """An extra argument as a run in ``dtype`` passes it: numbers in that dtype, arrays as they are."""
        return arg if isinstance(arg, np.ndarray) else np.dtype(dtype).type(arg)

    def _kernel_args(self, dtype: Any) -> tuple:
        """What the kernels pass the functions after the point: a placeholder, then the
        extra arguments in the working dtype (``dtype``)."""
        dt = np.dtype(dtype)
        return (dt.type(0), *(self._run_argument(arg, dt) for arg in self.args))

    def _points(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"x must have last dimension {self.dim}, got shape {x.shape}")
        return x

    def value(self, x: Any) -> np.ndarray:
        """f at x of shape (..., d), with the CPU-compiled ``value`` (float64 results)."""
        x = self._points(x)
        fn = self.compiled()[0]
        args = [self._run_argument(arg, x.dtype) for arg in self.args]
        rows = np.ascontiguousarray(x.reshape(-1, self.dim))
        return np.array([fn(row, *args) for row in rows], dtype=np.float64).reshape(x.shape[:-1])

    def grad(self, x: Any) -> np.ndarray:
        """The gradient at x of shape (..., d), with the CPU-compiled ``grad``, in x's dtype."""
        x = self._points(x)
        fn = self.compiled()[1]
        args = [self._run_argument(arg, x.dtype) for arg in self.args]
        rows = np.ascontiguousarray(x.reshape(-1, self.dim))
        out = np.zeros_like(rows)
        for row, g in zip(rows, out):
            fn(row, g, *args)
        return out.reshape(x.shape)
