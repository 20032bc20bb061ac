"""simulate(): a whole trajectory in one compiled call."""

from __future__ import annotations

import dataclasses
import datetime
import json
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import _validation as v
from ._config import MAX_STEPS
from .objectives import Objective, Quadratic
from .backends import base
from .sweep.layout import lane_slots
from .optimizers import Optimizer, OptimizerState
from .results import (_FLOATS, Result, _Invalid, _integer, _objective_record, _typed, array_entry, check_diverged,
                      check_entries, check_provenance, meta_keys, objective_from_entries, optimizer_from_record,
                      optimizer_record, record_interval, state_entries, state_from_entries)

BACKENDS = ("cpu", "cuda", "reference")


@dataclass(eq=False)
class Trajectory(Result):
    """A run of an optimizer on an objective, with its labels (a :class:`~rmsnum.results.Result`).

    Attributes
    ----------
    x : numpy.ndarray or None, shape (len(loss_steps), d)
        The iterates at :attr:`loss_steps` (with the default ``record=1``, every
        step: ``x[0]`` is the start, ``x[t]`` the iterate after t updates).
        Rows after a divergence are NaN. None for ``record="final"`` and ``"loss"``.
    loss : numpy.ndarray or None, shape (len(loss_steps),)
        f at those steps (NaN after a divergence); None for ``record="final"``.
    loss_steps : numpy.ndarray of int64 or None
        The recorded step numbers 0, k, 2k, ... <= steps; None for ``record="final"``.
    final_x : numpy.ndarray, shape (d,)
        The last iterate; for a diverged run, the first iterate that was not
        finite (or whose loss was not), as in :class:`~rmsnum.SweepResult`.
    final_loss : numpy.floating
        f at ``final_x``, in the run's dtype.
    state : OptimizerState
        The optimizer's final state.
    optimizer : Optimizer
        The optimizer (its hyperparameters via :attr:`hyperparameters`).
        Under a schedule it is the optimizer given, with its unscheduled values.
    objective : Quadratic or Objective
    diverged_at : int or None
        First step whose x or loss was not finite; None when the run stayed
        finite (the convention of :class:`~rmsnum.results.Result`).
    steps : int
        Number of steps requested.
    record : "final", "loss" or int
        What was recorded (the ``record`` argument of :func:`simulate`).
    provenance : dict
        rmsnum version, backend, dtype, seed, steps, date and ``schedule``
        (the sorted names of the scheduled hyperparameters, or None).
    schedule : dict or None
        The per-step hyperparameters the run used, name -> float64 array of
        length ``steps`` (entry t is the value of update t); None without a schedule.

    Examples
    --------
    >>> import os, tempfile, numpy as np, rmsnum as rn
    >>> traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), (-5.0, -2.0), 20, record=5)
    >>> traj.loss_steps, traj.x.shape
    (array([ 0,  5, 10, 15, 20]), (5, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> traj.save(path)
    >>> back = rn.Trajectory.load(path)
    >>> bool(np.array_equal(back.x, traj.x)), back.optimizer == traj.optimizer, back.provenance == traj.provenance
    (True, True, True)
    >>> traj.to_xarray().loss.dims
    ('step',)
    """

    x: np.ndarray | None
    loss: np.ndarray | None
    state: OptimizerState
    optimizer: Optimizer
    objective: Quadratic | Objective
    diverged_at: int | None
    provenance: dict = field(default_factory=dict)
    schedule: dict | None = None
    final_x: np.ndarray | None = None
    final_loss: np.floating | None = None
    loss_steps: np.ndarray | None = None
    steps: int = 0
    record: str | int = 1

    FORMAT: ClassVar[str] = "rmsnum.Trajectory/1"

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The optimizer's arguments (unscheduled values under a schedule)."""
        return self.optimizer.hyperparameters()

    @property
    def gap(self) -> np.ndarray:
        """loss - f*, the suboptimality at the recorded steps (a ValueError when f* is unknown)."""
        return Result.gap.fget(self)

    def _entries(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays: dict[str, np.ndarray] = {"final_x": self.final_x, "final_loss": np.asarray(self.final_loss)}
        for name in ("x", "loss", "loss_steps"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        state_arrays, state_meta = state_entries(self.state)
        objective_arrays, objective_meta = _objective_record(self.objective)
        arrays.update(state_arrays)
        arrays.update(objective_arrays)
        for name, values in (self.schedule or {}).items():
            arrays[f"schedule_{name}"] = values
        meta = {"optimizer": optimizer_record(self.optimizer), "state": state_meta, "objective": objective_meta,
                "steps": self.steps, "record": self.record, "diverged_at": self.diverged_at,
                "provenance": self.provenance, "schedule": None if self.schedule is None else list(self.schedule)}
        return arrays, meta

    @classmethod
    def _from_entries(cls, entries: dict[str, np.ndarray], meta: dict, objective: Any) -> "Trajectory":
        meta_keys(meta, ("optimizer", "state", "objective", "steps", "record", "diverged_at", "provenance",
                         "schedule"))
        steps = _integer(meta["steps"], "meta['steps']", 0)
        try:
            every = record_interval(meta["record"])
        except (TypeError, ValueError) as err:
            raise _Invalid(f"meta['record'] is {meta['record']!r}, not 'final', 'loss' or an int >= 1") from err
        final_x = array_entry(entries, "final_x", _FLOATS)
        if final_x.ndim != 1 or final_x.size == 0:
            raise _Invalid(f"its 'final_x' array has shape {final_x.shape}, not that of a point (d,)")
        dt, dim = final_x.dtype, final_x.size
        used = ["final_x", "final_loss"]
        final_loss = array_entry(entries, "final_loss", (dt,), ())[()]
        x = loss = loss_steps = None
        if every is not None:
            loss_steps = array_entry(entries, "loss_steps", (np.dtype(np.int64),))
            if not np.array_equal(loss_steps, np.arange(0, steps + 1, every)):
                raise _Invalid(f"its 'loss_steps' array is not every {every}-th step of 0..{steps}")
            loss = array_entry(entries, "loss", (dt,), loss_steps.shape)
            used += ["loss_steps", "loss"]
            if not isinstance(meta["record"], str):
                x = array_entry(entries, "x", (dt,), (loss_steps.size, dim))
                used.append("x")
        opt = optimizer_from_record(meta["optimizer"])
        state, state_used = state_from_entries(entries, meta["state"], opt, dim, dt, steps)
        diverged = check_diverged(meta["diverged_at"], steps)
        if state.t != (steps if diverged is None else diverged):
            raise _Invalid(f"its state counts {state.t} steps, but the run did "
                           f"{steps if diverged is None else diverged}")
        if isinstance(meta["objective"], dict) and meta["objective"].get("kind") == "linear_regression":
            raise _Invalid("its objective is a linear regression, which simulate does not run")
        obj, objective_used = objective_from_entries(entries, meta["objective"], dim, dt, objective)
        schedule = None
        if meta["schedule"] is not None:
            names = _typed(meta["schedule"], (list,), "meta['schedule']", "a list of names or null")
            schedule = {}
            for name in names:
                if not isinstance(name, str):
                    raise _Invalid(f"meta['schedule'] has {name!r}, not a hyperparameter's name")
                values = array_entry(entries, f"schedule_{name}", (np.dtype(np.float64),), (steps,))
                if not np.all(np.isfinite(values)):
                    raise _Invalid(f"its 'schedule_{name}' array is not finite")
                schedule[name] = values
                used.append(f"schedule_{name}")
        provenance = check_provenance(meta["provenance"], dt)
        check_entries(entries, [*used, *state_used, *objective_used])
        return cls(x=x, loss=loss, state=state, optimizer=opt, objective=obj, diverged_at=diverged,
                   provenance=provenance, schedule=schedule, final_x=final_x, final_loss=final_loss,
                   loss_steps=loss_steps, steps=steps, record=meta["record"])

    def _xarray_parts(self) -> tuple[dict, dict, dict]:
        data: dict[str, Any] = {"final_x": (["coord"], self.final_x), "final_loss": ([], self.final_loss)}
        coords: dict[str, Any] = {"coord": np.arange(self.final_x.size)}
        if self.loss is not None:
            data["loss"] = (["step"], self.loss)
            coords["step"] = self.loss_steps
        if self.x is not None:
            data["x"] = (["step", "coord"], self.x)
        for name, values in (self.schedule or {}).items():
            data[f"schedule_{name}"] = (["update"], values)
        attrs = {"optimizer": type(self.optimizer).__name__, "hyperparameters": json.dumps(self.hyperparameters),
                 "objective": self.objective.name, "steps": self.steps, "record": str(self.record),
                 "diverged_at": -1 if self.diverged_at is None else self.diverged_at,
                 **{k: str(val) for k, val in self.provenance.items()}}
        return data, coords, attrs


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
    record: str | int = 1,
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
    record : "final", "loss" or int k, default 1
        What to keep besides the final values (``final_x``, ``final_loss``,
        the state): ``"final"`` nothing more (no trajectory is allocated, so a
        run of any length in any dimension costs the memory of one point);
        ``"loss"`` the loss at every step; ``k`` the iterate and the loss at
        steps 0, k, 2k, ... (the default 1: every step). The same meaning as
        in :func:`rmsnum.sweep` and :func:`rmsnum.train`.

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

    Only the end of a long run (no (steps + 1, d) array):

    >>> end = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=2000, record="final")
    >>> end.x is None and end.loss is None, bool(np.array_equal(end.final_x, const.x[-1]))
    (True, True)
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an rmsnum optimizer such as RMSProp(lr=0.01), got {type(opt).__name__}")
    if not isinstance(objective, (Quadratic, Objective)):
        raise TypeError(f"objective must be a Quadratic or an Objective, got {type(objective).__name__}")
    steps = v.integer("steps", steps)
    seed_value = v.seed("seed", seed)
    dt = v.float_dtype("dtype", dtype)
    every = record_interval(record)
    keep_x = every is not None and not isinstance(record, str)
    if every is not None:
        rows = np.iinfo(np.intp).max // ((objective.dim if keep_x else 1) * dt.itemsize) - 1
        if steps // every > rows:
            raise ValueError(f"steps must be at most {rows * every + every - 1} here, got {steps}: the recorded "
                             f"{'iterates' if keep_x else 'losses'} of {steps // every + 1} steps of "
                             f"{objective.dim if keep_x else 1} {dt.name} values must fit in one array "
                             '(record="final" keeps only the end)')
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS} (the kernels count steps in int64), got {steps}")
    opt.check_dtype(dt)
    if not isinstance(backend, str) or backend == "dask":
        raise ValueError(f"backend must be one of {BACKENDS} for one run, got {backend!r} (Dask runs sweeps of "
                         "many configurations: rn.sweep(..., backend='dask'))")
    if schedule is not None and not isinstance(schedule, dict):
        raise TypeError(f"schedule must be a dict mapping hyperparameter names to per-step values, "
                        f"got {type(schedule).__name__}")
    if schedule and backend == "cuda":
        raise ValueError('schedule runs on backend="cpu" and "reference", not "cuda"')
    values = _schedule_values(opt, schedule, steps) if schedule else None
    per_step = _per_step_optimizers(opt, values, dt) if values else None
    start = v.start_point("x0", x0, objective.dim, dt)
    kernels = base.get(backend, BACKENDS, "one run")
    state = opt.init_like((objective.dim,), dt)
    n_rec = 0 if every is None else steps // every + 1
    X = np.full((n_rec, objective.dim), np.nan, dtype=dt) if keep_x else None
    loss = np.full(n_rec, np.nan, dtype=dt) if every is not None else None
    diverged, final_x, final_loss = _run(kernels, opt, objective, start, steps, every, X, loss, state,
                                         seed_value or 0, per_step or None)
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
    return Trajectory(x=X, loss=loss, state=state, optimizer=opt, objective=objective,
                      diverged_at=None if diverged < 0 else diverged, provenance=provenance, schedule=values,
                      final_x=final_x, final_loss=final_loss,
                      loss_steps=None if every is None else np.arange(0, steps + 1, every), steps=steps,
                      record=record if isinstance(record, str) else int(record))


def _lane_arguments(opt: Optimizer, state: OptimizerState, per_step: list[Optimizer] | None = None) -> tuple:
    """One configuration as a block of one lane of the multi-configuration
    kernels: ``(slots, d, dec, C, like)``; the slots are views of ``state``'s
    arrays (and arrays of zeros, see :func:`rmsnum.sweep.layout.lane_slots`). ``C`` is (1, k, 1), or (1, steps, k, 1) with the coefficients of
    each update's optimizer when ``per_step`` lists them (their decays are equal)."""
    from .backends import cpu

    dt = state.d1.dtype
    n = next((arr.size for arr in state.arrays.values()), 0)
    slots = lane_slots(opt.spec, tuple(state.arrays), (1, n, 1), dt, lambda slot: state.arrays[slot].reshape(1, n, 1))
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


def _hyperparameters(opt: Optimizer, per_step: list[Optimizer] | None = None) -> dict | list[dict]:
    """What the reference backend computes from: ``opt``'s fields, or under a
    schedule those of each update's optimizer (one dict per distinct optimizer)."""
    if not per_step:
        return opt.hyperparameters()
    fields = {id(step_opt): step_opt.hyperparameters() for step_opt in per_step}
    return [fields[id(step_opt)] for step_opt in per_step]


def _finish_lane(state: OptimizerState, d: np.ndarray | None, steps: int, diverged: int) -> None:
    """Bring ``state``'s step count and bias denominators up to date after a kernel run."""
    state.t = steps if diverged < 0 else diverged
    if d is not None:
        state.d1, state.d2 = state.d1.dtype.type(d[0, 0, 0]), state.d2.dtype.type(d[0, 1, 0])


def _run(kernels: base.Backend, opt: Optimizer, objective: Quadratic | Objective, start: np.ndarray, steps: int,
         every: int | None, X: np.ndarray | None, loss: np.ndarray | None, state: OptimizerState, seed: int,
         per_step: list[Optimizer] | None = None) -> tuple[int, np.ndarray, np.floating]:
    """The trajectory as a sweep of one configuration on the backend ``kernels``, so
    that both run the same kernel; ``per_step`` lists the
    optimizer of each update under a schedule. ``X`` and ``loss`` (None: not
    recorded) are filled every ``every`` steps. Returns the diverged step or -1,
    the final x and its loss."""
    dt = start.dtype
    n = start.size
    x = start.reshape(1, n, 1).copy()
    slots, d, dec, C, like = _lane_arguments(opt, state, per_step)
    seeds = np.full((1, 1), seed, dtype=np.uint64) if objective.noise > 0 else None
    final_loss = np.empty((1, 1), dt)
    diverged = np.empty((1, 1), np.int64)
    functions, P = kernels.kernel_form(objective, dt)
    kernels.run_objective(opt.rule, functions, x, slots, d, dec, C, like, P, objective.noise, seeds,
                          0.0, np.empty(0, dt), steps, every or 1,  # f* is read only with tol
                          None if loss is None else loss.reshape(1, loss.size, 1),
                          None if X is None else X.reshape(1, X.shape[0], n, 1), final_loss, diverged, None,
                          hyper=(_hyperparameters(opt, per_step),))()
    _finish_lane(state, d, steps, int(diverged[0, 0]))
    return int(diverged[0, 0]), x.reshape(n), final_loss[0, 0]
