"""simulate(): a whole trajectory in one compiled call."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validation as v
from .objectives import Quadratic
from .optimizers import Optimizer, OptimizerState

BACKENDS = ("cpu", "cuda", "reference")


@dataclass(eq=False)
class Trajectory:
    """A run of an optimizer on an objective, with its labels.

    Attributes
    ----------
    x : numpy.ndarray, shape (steps + 1, d)
        Iterates; ``x[0]`` is the start. Rows after a divergence are NaN.
    loss : numpy.ndarray, shape (steps + 1,)
        f at every iterate (NaN after a divergence).
    state : OptimizerState
        The optimizer's final state.
    optimizer : Optimizer
        The optimizer (its hyperparameters via ``optimizer.hyperparameters()``).
    objective : Quadratic
    diverged_at : int or None
        First step whose x or loss was not finite; None when the run stayed finite.
    provenance : dict
        rmsnum version, backend, dtype, seed, steps and date.
    """

    x: np.ndarray
    loss: np.ndarray
    state: OptimizerState
    optimizer: Optimizer
    objective: Quadratic
    diverged_at: int | None
    provenance: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Number of steps requested."""
        return self.x.shape[0] - 1

    @property
    def diverged(self) -> bool:
        """True when the run stopped on a non-finite value."""
        return self.diverged_at is not None

    @property
    def gap(self) -> np.ndarray:
        """loss - f*, the suboptimality at every step."""
        return self.loss - self.objective.f_star


def _start(x0: Any, dim: int, dtype: np.dtype) -> np.ndarray:
    try:
        arr = np.asarray(x0, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"x0 must be a sequence of {dim} real numbers, got {x0!r}") from err
    if arr.shape != (dim,):
        raise ValueError(f"x0 must have shape ({dim},) to match the objective, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"x0 must be finite, got {arr}")
    with np.errstate(over="ignore"):
        cast = arr.astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(f"x0 overflows {dtype}: {arr}")
    return cast


def simulate(
    opt: Optimizer,
    objective: Quadratic,
    x0: Any,
    steps: int,
    *,
    seed: int | None = None,
    dtype: Any = np.float64,
    backend: str = "cpu",
) -> Trajectory:
    """Run ``steps`` updates of ``opt`` on ``objective`` from ``x0``.

    The whole loop runs inside one compiled call (``backend="cpu"``, or
    ``"cuda"`` on the GPU, where it agrees with the CPU within a few ulp per
    step); the ``"reference"`` backend runs the NumPy oracle step by step instead.
    A run whose iterate or loss stops being finite stops there and is
    reported through ``diverged_at``; it never raises.

    Parameters
    ----------
    opt : Optimizer
        E.g. ``RMSProp(lr=0.4)``.
    objective : Quadratic
        E.g. :func:`quadratic_2d`.
    x0 : array_like of shape (d,)
        Finite starting point.
    steps : int
        Number of updates, >= 0.
    seed : int, optional
        Seed of the gradient noise (only used when ``objective.noise > 0``; 0 if None).
    dtype : float32 or float64
        Working precision of the whole run.
    backend : {"cpu", "cuda", "reference"}
        ``"cuda"`` needs ``pip install "rmsnum[cuda]"`` and a GPU.

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> import rmsnum as rn
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4, gamma=0.9), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=20)
    >>> traj.x[-1].round(8)
    array([-0.01059867,  0.        ])
    >>> traj.loss.shape, traj.diverged_at
    ((21,), None)
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an rmsnum optimizer such as RMSProp(lr=0.01), got {type(opt).__name__}")
    if not isinstance(objective, Quadratic):
        raise TypeError(f"objective must be a Quadratic, got {type(objective).__name__}")
    steps = v.integer("steps", steps)
    seed_value = v.seed("seed", seed)
    dt = v.float_dtype("dtype", dtype)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    start = _start(x0, objective.dim, dt)
    if backend == "cuda":
        from .backends import cuda

        cuda.require()

    state = opt.init_like((objective.dim,), dt)
    X = np.full((steps + 1, objective.dim), np.nan, dtype=dt)
    loss = np.full(steps + 1, np.nan, dtype=dt)
    X[0] = start
    if backend in ("cpu", "cuda"):
        diverged = _run_compiled(backend, opt, objective, X, loss, state, seed_value or 0)
    else:
        from .backends import reference

        diverged = reference.simulate(opt, objective, X, loss, state, seed_value or 0)
    from . import __version__

    provenance = {
        "rmsnum": __version__,
        "backend": backend,
        "dtype": dt.name,
        "seed": seed_value,
        "steps": steps,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return Trajectory(X, loss, state, opt, objective, None if diverged < 0 else diverged, provenance)


def _lane_arguments(opt: Optimizer, state: OptimizerState) -> tuple:
    """One configuration as a block of one lane of the multi-configuration
    kernels: ``(slots, d, dec, C, like)``; the slots are views of ``state``'s arrays."""
    from .backends import cpu

    dt = state.d1.dtype
    slots = [None if arr is None else arr.reshape(1, arr.size, 1) for arr in (state.s, state.m, state.g_avg)]
    decays = opt.decays(dt)
    d = None if decays is None else np.array([state.d1, state.d2], dtype=dt).reshape(1, 2, 1)
    dec = None if decays is None else np.array(decays, dtype=dt).reshape(1, 4, 1)
    C, like = cpu.coefficient_table([opt.coefficients(dt)], dt)
    return slots, d, dec, C[np.newaxis], like


def _finish_lane(state: OptimizerState, d: np.ndarray | None, steps: int, diverged: int) -> None:
    """Bring ``state``'s step count and bias denominators up to date after a kernel run."""
    state.t = steps if diverged < 0 else diverged
    if d is not None:
        state.d1, state.d2 = state.d1.dtype.type(d[0, 0, 0]), state.d2.dtype.type(d[0, 1, 0])


def _run_compiled(backend: str, opt: Optimizer, objective: Quadratic, X: np.ndarray, loss: np.ndarray,
                  state: OptimizerState, seed: int) -> int:
    """The trajectory as a sweep of one configuration, so that both run the same kernel."""
    import importlib

    kernels = importlib.import_module(f".backends.{backend}", __package__)
    dt = X.dtype
    steps, n = X.shape[0] - 1, X.shape[1]
    x = X[0].reshape(1, n, 1).copy()
    slots, d, dec, C, like = _lane_arguments(opt, state)
    seeds = np.full((1, 1), seed, dtype=np.uint64) if objective.noise > 0 else None
    final_loss = np.empty((1, 1), dt)
    diverged = np.empty((1, 1), np.int64)
    kernels.run_quadratic(opt.rule, x, *slots, d, dec, C, like, objective.A.astype(dt),
                          objective.b.astype(dt), objective.noise, seeds, objective.f_star, np.empty(0, dt), steps,
                          1, loss.reshape(1, steps + 1, 1), X.reshape(1, steps + 1, n, 1), final_loss, diverged,
                          None)
    _finish_lane(state, d, steps, int(diverged[0, 0]))
    return int(diverged[0, 0])
