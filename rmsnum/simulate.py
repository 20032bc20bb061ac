"""simulate(): a whole trajectory in one compiled call."""

from __future__ import annotations

import dataclasses
import datetime
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validation as v
from .objectives import Objective, Quadratic, known_f_star
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
        Under a schedule it is the optimizer given, with its unscheduled values.
    objective : Quadratic or Objective
    diverged_at : int or None
        First step whose x or loss was not finite; None when the run stayed finite.
    provenance : dict
        rmsnum version, backend, dtype, seed, steps, date and ``schedule``
        (the sorted names of the scheduled hyperparameters, or None).
    schedule : dict or None
        The per-step hyperparameters the run used, name -> float64 array of
        length ``steps`` (entry t is the value of update t); None without a schedule.
    """

    x: np.ndarray
    loss: np.ndarray
    state: OptimizerState
    optimizer: Optimizer
    objective: Quadratic | Objective
    diverged_at: int | None
    provenance: dict = field(default_factory=dict)
    schedule: dict | None = None

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
        """loss - f*, the suboptimality at every step (a ValueError when f* is unknown)."""
        return self.loss - known_f_star(self.objective)


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


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _schedule_values(opt: Optimizer, schedule: dict, steps: int) -> dict[str, np.ndarray]:
    """The checked values of ``schedule``: name -> float64 array of one finite value per step."""
    numeric = [f.name for f in dataclasses.fields(opt) if _is_real(getattr(opt, f.name))]
    values = {}
    for name, spec in schedule.items():
        label = f"schedule[{name!r}]"
        if name not in numeric:
            raise ValueError(f"{label}: {type(opt).__name__} has no numeric hyperparameter {name!r}; "
                             f"its numeric fields are {', '.join(numeric)}")
        if callable(spec):
            column = np.empty(steps)
            for t in range(steps):
                value = spec(t)
                if not _is_real(value):
                    raise TypeError(f"{label} must return a real number for each step, got {value!r} of type "
                                    f"{type(value).__name__} at step {t}")
                column[t] = value
        else:
            try:
                arr = np.asarray(spec)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{label} must be a 1-D array_like of real numbers or a callable f(t), "
                                f"got {spec!r}") from err
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"{label} must be a 1-D array_like of real numbers or a callable f(t), "
                                f"got values of dtype {arr.dtype}")
            if arr.shape != (steps,):
                raise ValueError(f"{label} must hold one value per step, shape ({steps},), got shape {arr.shape}")
            column = arr.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            raise ValueError(f"{label} must be finite, got {column[bad[0]]} at step {bad[0]}")
        values[name] = column
    return values


def _per_step_optimizers(opt: Optimizer, values: dict[str, np.ndarray], dt: np.dtype) -> list[Optimizer]:
    """The optimizer of each update: ``dataclasses.replace(opt, **values at t)``, checked
    by the optimizer itself and against the working dtype ``dt``; its state slots,
    initial state and bias-correction decays may not change (the state is made once, by ``opt``)."""
    names = list(values)
    label = ", ".join(f"schedule[{name!r}]" for name in names)
    slots = opt.slots
    initial = [opt._initial(slot) for slot in slots]
    made: dict[tuple, Optimizer] = {}  # steps with equal values share one optimizer
    per_step = []
    for t, key in enumerate(zip(*(values[name].tolist() for name in names))):
        if key not in made:
            try:
                new = dataclasses.replace(opt, **dict(zip(names, key)))
                new.check_dtype(dt)
            except (TypeError, ValueError) as err:
                raise type(err)(f"{label} at step {t}: {err}") from err
            if new.slots != slots:
                raise ValueError(f"{label} at step {t} changes the optimizer's state slots from {slots} to "
                                 f"{new.slots}, which is not supported")
            if [new._initial(slot) for slot in slots] != initial:
                raise ValueError(f"{label} at step {t} changes the initial state, which is set once before the "
                                 "first update; give that value to the optimizer instead")
            if per_step and new.decays() != per_step[0].decays():
                raise ValueError(f"{label} at step {t} changes the bias-correction decays from "
                                 f"{per_step[0].decays()} to {new.decays()}; a schedule of the decay rates of a "
                                 "bias-corrected rule is not supported")
            made[key] = new
        per_step.append(made[key])
    return per_step


def simulate(
    opt: Optimizer,
    objective: Quadratic | Objective,
    x0: Any,
    steps: int,
    *,
    seed: int | None = None,
    dtype: Any = np.float64,
    backend: str = "cpu",
    schedule: dict[str, Any] | None = None,
) -> Trajectory:
    """Run ``steps`` updates of ``opt`` on ``objective`` from ``x0``.

    The whole loop runs inside one compiled call (``backend="cpu"``, or
    ``"cuda"`` on the GPU, where it agrees with the CPU within a few ulp per
    step); the ``"reference"`` backend runs the NumPy oracle step by step instead.
    A run whose iterate or loss stops being finite stops there and is
    reported through ``diverged_at``; it never raises. The CPU kernel of one
    trajectory is serial, so threads may call simulate at once under any of
    Numba's threading layers.

    Parameters
    ----------
    opt : Optimizer
        E.g. ``RMSProp(lr=0.4)``.
    objective : Quadratic or Objective
        E.g. :func:`quadratic_2d`, :func:`rmsnum.classics.rosenbrock`, or an
        :class:`Objective` of the user's own Numba functions.
    x0 : array_like of shape (d,)
        Finite starting point.
    steps : int
        Number of updates, >= 0 (and few enough for the trajectory to fit in one array).
    seed : int, optional
        Seed of the gradient noise (only used when ``objective.noise > 0``; 0 if None).
    dtype : float32 or float64
        Working precision of the whole run. A hyperparameter that rounds to 0 or
        overflows in it is a ``ValueError`` (see :meth:`Optimizer.check_dtype`).
    backend : {"cpu", "cuda", "reference"}
        ``"cuda"`` needs ``pip install "rmsnum[cuda]"`` and a GPU.
    schedule : dict, optional
        Per-step hyperparameters: maps numeric fields of ``opt`` (``"lr"``,
        ``"gamma"``, ``"eps"``, ``"momentum"``, ``"beta"``, ...) to a 1-D
        array_like of ``steps`` real numbers (entry t is used by update t,
        t = 0 .. steps - 1) or to a callable ``f(t) -> float`` called once
        with each int t. The other fields keep ``opt``'s values. Each step's
        values are checked by the optimizer itself, as if passed to its
        constructor. A schedule may not change the state slots (momentum
        between 0 and > 0), the initial state (``initial_s``) or the
        bias-correction decays (Adam's betas, gamma with
        ``bias_correction=True``). Runs on ``"cpu"`` and ``"reference"``.
        None or ``{}``: the hyperparameters of ``opt`` at every step.

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

    A schedule: with a constant lr the chapter's run ends on the period-2
    orbit ``x_i = +-lr/2`` around the optimum; with lr decaying as
    ``0.4 / sqrt(t + 1)`` x1 settles at the optimum and the x2 orbit shrinks
    with lr (to ``lr_t / 2``):

    >>> const = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=2000)
    >>> decay = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=2000,
    ...                     schedule={"lr": lambda t: 0.4 / (t + 1) ** 0.5})
    >>> abs(const.x[-1]).round(4), abs(decay.x[-1]).round(4)
    (array([0.1999, 0.2   ]), array([0.    , 0.0045]))
    >>> print(f"final loss {const.loss[-1]:.3f} constant, {decay.loss[-1]:.1e} scheduled")
    final loss 0.084 constant, 4.0e-05 scheduled
    >>> decay.schedule["lr"][:3].round(4)
    array([0.4   , 0.2828, 0.2309])
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an rmsnum optimizer such as RMSProp(lr=0.01), got {type(opt).__name__}")
    if not isinstance(objective, (Quadratic, Objective)):
        raise TypeError(f"objective must be a Quadratic or an Objective, got {type(objective).__name__}")
    steps = v.integer("steps", steps)
    seed_value = v.seed("seed", seed)
    dt = v.float_dtype("dtype", dtype)
    most = np.iinfo(np.intp).max // (objective.dim * dt.itemsize) - 1
    if steps > most:
        raise ValueError(f"steps must be at most {most} here, got {steps}: the trajectory of (steps + 1) x "
                         f"{objective.dim} {dt.name} values must fit in one array")
    opt.check_dtype(dt)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if schedule is not None and not isinstance(schedule, dict):
        raise TypeError(f"schedule must be a dict mapping hyperparameter names to per-step values, "
                        f"got {type(schedule).__name__}")
    if schedule and backend == "cuda":
        raise ValueError('schedule runs on backend="cpu" and "reference", not "cuda"')
    values = _schedule_values(opt, schedule, steps) if schedule else None
    per_step = _per_step_optimizers(opt, values, dt) if values else None
    start = _start(x0, objective.dim, dt)
    if backend == "cuda":
        from .backends import cuda

        cuda.require()

    state = opt.init_like((objective.dim,), dt)
    X = np.full((steps + 1, objective.dim), np.nan, dtype=dt)
    loss = np.full(steps + 1, np.nan, dtype=dt)
    X[0] = start
    if backend in ("cpu", "cuda"):
        diverged = _run_compiled(backend, opt, objective, X, loss, state, seed_value or 0, per_step or None)
    else:
        from .backends import reference

        diverged = reference.simulate(opt, objective, X, loss, state, seed_value or 0, per_step or None)
    from ._version import __version__

    provenance = {
        "rmsnum": __version__,
        "backend": backend,
        "dtype": dt.name,
        "seed": seed_value,
        "steps": steps,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "schedule": None if values is None else sorted(values),
    }
    return Trajectory(X, loss, state, opt, objective, None if diverged < 0 else diverged, provenance, values)


def _lane_arguments(opt: Optimizer, state: OptimizerState, per_step: list[Optimizer] | None = None) -> tuple:
    """One configuration as a block of one lane of the multi-configuration
    kernels: ``(slots, d, dec, C, like)``; the slots are views of ``state``'s
    arrays. ``C`` is (1, k, 1), or (1, steps, k, 1) with the coefficients of
    each update's optimizer when ``per_step`` lists them (their decays are equal)."""
    from .backends import cpu

    dt = state.d1.dtype
    slots = tuple(None if arr is None else arr.reshape(1, arr.size, 1)
                  for arr in (state.arrays.get(name) for name in opt.spec.slots))
    decays = (per_step[0] if per_step else opt).decays(dt)
    d = None if decays is None else np.array([state.d1, state.d2], dtype=dt).reshape(1, 2, 1)
    dec = None if decays is None else np.array(decays, dtype=dt).reshape(1, 4, 1)
    if not per_step:
        C, like = cpu.coefficient_table([opt.coefficients(dt)], dt)
        return slots, d, dec, C[np.newaxis], like
    unique = {id(step_opt): step_opt for step_opt in per_step}
    rows = {key: step_opt.coefficients(dt) for key, step_opt in unique.items()}
    C, like = cpu.coefficient_table([rows[id(step_opt)] for step_opt in per_step], dt)
    return slots, d, dec, np.ascontiguousarray(C.T)[np.newaxis, :, :, np.newaxis], like


def _finish_lane(state: OptimizerState, d: np.ndarray | None, steps: int, diverged: int) -> None:
    """Bring ``state``'s step count and bias denominators up to date after a kernel run."""
    state.t = steps if diverged < 0 else diverged
    if d is not None:
        state.d1, state.d2 = state.d1.dtype.type(d[0, 0, 0]), state.d2.dtype.type(d[0, 1, 0])


def _run_compiled(backend: str, opt: Optimizer, objective: Quadratic | Objective, X: np.ndarray, loss: np.ndarray,
                  state: OptimizerState, seed: int, per_step: list[Optimizer] | None = None) -> int:
    """The trajectory as a sweep of one configuration, so that both run the same
    kernel; ``per_step`` lists the optimizer of each update under a schedule."""
    import importlib

    kernels = importlib.import_module(f".backends.{backend}", __package__)
    dt = X.dtype
    steps, n = X.shape[0] - 1, X.shape[1]
    x = X[0].reshape(1, n, 1).copy()
    slots, d, dec, C, like = _lane_arguments(opt, state, per_step)
    seeds = np.full((1, 1), seed, dtype=np.uint64) if objective.noise > 0 else None
    final_loss = np.empty((1, 1), dt)
    diverged = np.empty((1, 1), np.int64)
    functions, P = objective._kernel_form(dt, backend)
    kernels.run_objective(opt.rule, functions, x, slots, d, dec, C, like, P, objective.noise, seeds,
                          objective.f_star or 0.0, np.empty(0, dt), steps, 1, loss.reshape(1, steps + 1, 1),
                          X.reshape(1, steps + 1, n, 1), final_loss, diverged, None)
    _finish_lane(state, d, steps, int(diverged[0, 0]))
    return int(diverged[0, 0])
