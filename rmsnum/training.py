"""train() and train_sweep(): the chapter's minibatch training loop as one compiled kernel.

A training run is the loop of the chapter's ``train_ch11``: every epoch visits
the examples in a fresh random order, in minibatches of ``batch_size`` (the
last one smaller when the size does not divide the data, as the chapter's
data loader keeps it); each minibatch gives the gradient of the loss
(y_hat - y)**2 / 2 averaged over it, and one update of the optimizer. The
loss over the whole data is recorded whenever the number of examples seen
reaches a multiple of ``record_every``.

Randomness: ``seed`` seeds a ``numpy.random.SeedSequence`` whose two children
drive the initial weights and the per-epoch shuffles, so the minibatch order
of a seed does not depend on how the weights are initialised.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from . import _validation as v
from ._config import MAX_CHUNK_SIZE, MAX_CUDA_CHUNK_SIZE
from .results import (_FLOATS, Result, SweepResult, _Invalid, _integer, _item, _objective_record, array_entry,
                      check_diverged, check_entries, check_provenance, deprecated, meta_keys, objective_from_entries,
                      optimizer_from_record, optimizer_record, record_interval, state_entries, state_from_entries)
from .checkpoint import check_path
from .sweep.chunk import in_slices
from .sweep.executors import check_backend, execute_plan, provenance
from .sweep.layout import blocks, default_chunk_size, pack, unpacker
from .sweep.plan import grid_axes, make_plan, optimizer_and_fixed
from .backends import base
from .objectives import LinearRegression
from .optimizers import Optimizer, OptimizerState

BACKENDS = ("cpu", "cuda", "reference")
DEFAULT_INIT = "normal(0, 0.01)"
_NORMAL = re.compile(r"^\s*normal\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")


@dataclass(eq=False)
class TrainResult(Result):
    """A training run of an optimizer on a :class:`~rmsnum.LinearRegression`
    (a :class:`~rmsnum.results.Result`).

    Attributes
    ----------
    final_x : numpy.ndarray, shape (d + 1,)
        Final parameters: the weights, then the bias, in the data's dtype
        (also as :attr:`w` and :attr:`b`).
    loss : numpy.ndarray of float64 or None
        The full-data loss at the recorded points (NaN after a divergence);
        None for ``record="final"``.
    loss_steps : numpy.ndarray of int64 or None
        The updates done at each recorded point.
    loss_epochs : numpy.ndarray of float64 or None
        Where those points are, in epochs (examples seen / examples).
    final_loss : float
        Full-data loss at the end (not finite for a diverged run).
    diverged_at : int or None
        Updates done when a minibatch loss was first not finite (the run
        stopped there and ``final_x`` holds its parameters then); None when the
        run stayed finite (the convention of :class:`~rmsnum.results.Result`).
    sec_per_epoch : float
        Wall time of the compiled training loop divided by the epochs
        (argument checks, set-up and compilation excluded).
    initial : numpy.ndarray, shape (d + 1,)
        The starting parameters ``(w, b)``.
    state : OptimizerState
        The optimizer's final state, for the d + 1 parameters.
    optimizer : Optimizer
    problem : LinearRegression
        Also as :attr:`objective`.
    batch_size, epochs : int
    record : "final", "loss", int or None
        What was recorded, in updates (the ``record`` argument of :func:`train`);
        None when it was given in examples (``record_every``).
    record_every : int or None
        The recording interval in examples, when given so (the chapter's 200).
    provenance : dict
        rmsnum version, backend, dtype, seed, init and date.

    Examples
    --------
    >>> import os, tempfile, numpy as np, rmsnum as rn
    >>> problem = rn.LinearRegression(rn.data.synthetic_regression(n=100, d=2, seed=0))
    >>> run = rn.train(rn.RMSProp(lr=0.01), problem, batch_size=10, epochs=2, record=5)
    >>> run.loss_steps, run.loss_epochs
    (array([ 5, 10, 15, 20]), array([0.5, 1. , 1.5, 2. ]))
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> run.save(path)
    >>> back = rn.TrainResult.load(path)
    >>> bool(np.array_equal(back.final_x, run.final_x)), back.final_loss == run.final_loss
    (True, True)
    >>> run.to_xarray().final_x.coords["param"].values.tolist()
    ['w0', 'w1', 'b']
    """

    final_x: np.ndarray
    loss: np.ndarray | None
    loss_steps: np.ndarray | None
    loss_epochs: np.ndarray | None
    final_loss: float
    diverged_at: int | None
    sec_per_epoch: float
    initial: np.ndarray
    state: OptimizerState
    optimizer: Optimizer
    problem: LinearRegression
    batch_size: int
    epochs: int
    record: str | int | None = None
    record_every: int | None = 200
    provenance: dict = field(default_factory=dict)

    FORMAT: ClassVar[str] = "rmsnum.TrainResult/1"

    @property
    def w(self) -> np.ndarray:
        """Final weights, shape (d,): ``final_x[:-1]``."""
        return self.final_x[:-1]

    @property
    def b(self) -> np.floating:
        """Final bias: ``final_x[-1]``."""
        return self.final_x[-1]

    @property
    def loss_curve(self) -> np.ndarray | None:
        """Deprecated name of :attr:`loss` (the name every result uses)."""
        deprecated("TrainResult.loss_curve", "TrainResult.loss")
        return self.loss

    @property
    def objective(self) -> LinearRegression:
        """The problem (the name every result uses)."""
        return self.problem

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The optimizer's arguments."""
        return self.optimizer.hyperparameters()

    @property
    def steps(self) -> int:
        """Updates requested: epochs x minibatches per epoch."""
        return self.epochs * -(-self.problem.n // self.batch_size)

    @property
    def gap(self) -> np.ndarray:
        """loss - f*, the distance to the least-squares optimum's loss at the recorded points."""
        if self.loss is None:
            raise ValueError('gap needs the recorded loss; this run kept only its final values (record="final")')
        return self.loss - self.problem.f_star

    def _entries(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays: dict[str, np.ndarray] = {"final_x": self.final_x, "final_loss": np.asarray(self.final_loss,
                                                                                           np.float64),
                                         "initial": self.initial}
        if self.loss is not None:
            arrays["loss"], arrays["loss_steps"] = self.loss, self.loss_steps
        state_arrays, state_meta = state_entries(self.state)
        objective_arrays, objective_meta = _objective_record(self.problem)
        arrays.update(state_arrays)
        arrays.update(objective_arrays)
        meta = {"optimizer": optimizer_record(self.optimizer), "state": state_meta, "objective": objective_meta,
                "steps": self.steps, "batch_size": self.batch_size, "epochs": self.epochs, "record": self.record,
                "record_every": self.record_every, "sec_per_epoch": self.sec_per_epoch,
                "diverged_at": self.diverged_at, "provenance": self.provenance}
        return arrays, meta

    @classmethod
    def _from_entries(cls, entries: dict[str, np.ndarray], meta: dict, objective: Any) -> "TrainResult":
        meta_keys(meta, ("optimizer", "state", "objective", "steps", "batch_size", "epochs", "record",
                         "record_every", "sec_per_epoch", "diverged_at", "provenance"))
        final_x = array_entry(entries, "final_x", _FLOATS)
        if final_x.ndim != 1 or final_x.size < 2:
            raise _Invalid(f"its 'final_x' array has shape {final_x.shape}, not that of parameters (w..., b)")
        dt, dim = final_x.dtype, final_x.size
        if not (isinstance(meta["objective"], dict) and meta["objective"].get("kind") == "linear_regression"):
            raise _Invalid("its objective is not a linear regression, which train runs on")
        if objective is not None:
            raise TypeError("objective= is for a run saved on an Objective; a training run's data is in its file")
        problem, objective_used = objective_from_entries(entries, meta["objective"], dim, dt, None)
        try:
            schedule, _ = _check_common(problem, meta["batch_size"], meta["epochs"], meta["record"],
                                        meta["record_every"], "zeros")
        except (TypeError, ValueError) as err:
            raise _Invalid(f"its training schedule is not valid: {err}") from err
        steps = _integer(meta["steps"], "meta['steps']", 0)
        if steps != schedule.steps:
            raise _Invalid(f"meta['steps'] is {steps}, not the {schedule.steps} updates of {schedule.epochs} epochs "
                           f"of {problem.n} examples in batches of {schedule.batch_size}")
        used = ["final_x", "final_loss", "initial"]
        final_loss = float(array_entry(entries, "final_loss", (np.dtype(np.float64),), ())[()])
        initial = array_entry(entries, "initial", (dt,), (dim,))
        loss = loss_steps = loss_epochs = None
        if not schedule.final:
            loss_steps = array_entry(entries, "loss_steps", (np.dtype(np.int64),))
            if not np.array_equal(loss_steps, schedule.record_steps):
                raise _Invalid("its 'loss_steps' array is not the recorded updates of its schedule")
            loss = array_entry(entries, "loss", (np.dtype(np.float64),), loss_steps.shape)
            loss_epochs = schedule.record_examples / problem.n
            used += ["loss", "loss_steps"]
        opt = optimizer_from_record(meta["optimizer"])
        state, state_used = state_from_entries(entries, meta["state"], opt, dim, dt, steps)
        diverged = check_diverged(meta["diverged_at"], steps)
        if state.t != (steps if diverged is None else diverged):
            raise _Invalid(f"its state counts {state.t} updates, but the run did {steps if diverged is None else diverged}")
        sec = meta["sec_per_epoch"]
        if isinstance(sec, bool) or not isinstance(sec, (int, float)) or not sec >= 0:
            raise _Invalid(f"meta['sec_per_epoch'] is {sec!r}, not a number >= 0")
        provenance = check_provenance(meta["provenance"], dt)
        check_entries(entries, [*used, *state_used, *objective_used])
        initial.flags.writeable = False
        return cls(final_x=final_x, loss=loss, loss_steps=loss_steps, loss_epochs=loss_epochs, final_loss=final_loss,
                   diverged_at=diverged, sec_per_epoch=sec, initial=initial, state=state, optimizer=opt,
                   problem=problem, batch_size=schedule.batch_size, epochs=schedule.epochs, record=meta["record"],
                   record_every=meta["record_every"], provenance=provenance)

    def _xarray_parts(self) -> tuple[dict, dict, dict]:
        names = [f"w{k}" for k in range(self.final_x.size - 1)] + ["b"]
        data: dict[str, Any] = {"final_x": (["param"], self.final_x), "initial": (["param"], self.initial),
                                "final_loss": ([], self.final_loss)}
        coords: dict[str, Any] = {"param": names}
        if self.loss is not None:
            data["loss"] = (["step"], self.loss)
            coords["step"] = self.loss_steps
            coords["epoch"] = (["step"], self.loss_epochs)
        attrs = {"optimizer": type(self.optimizer).__name__, "hyperparameters": json.dumps(self.hyperparameters),
                 "objective": self.problem.name, "steps": self.steps, "batch_size": self.batch_size,
                 "epochs": self.epochs, "record": str(self.record), "record_every": str(self.record_every),
                 "diverged_at": -1 if self.diverged_at is None else self.diverged_at,
                 "sec_per_epoch": self.sec_per_epoch, **{k: str(val) for k, val in self.provenance.items()}}
        return data, coords, attrs


@dataclass(frozen=True)
class _Schedule:
    """The minibatch schedule: sizes, update count and the recorded points.

    The kernels record the full-data loss whenever the examples seen reach a
    multiple of ``record_every`` (the chapter's rule). ``record=k`` in updates
    becomes ``record_every = k * batch_size`` examples when the minibatches
    are all full (``batch_size`` divides n): exactly every k updates;
    otherwise the kernel records after every update (``record_every = 1``)
    and every k-th of those is kept (:attr:`selection`)."""

    n: int
    batch_size: int
    epochs: int
    record_every: int
    updates: int | None = None  # record every k updates; None: record_every is the user's, in examples
    final: bool = False  # record="final": nothing recorded

    @property
    def per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    @property
    def steps(self) -> int:
        return self.epochs * self.per_epoch

    def examples_seen(self) -> np.ndarray:
        """Examples seen after each update 1..steps."""
        t = np.arange(self.steps)
        return (t // self.per_epoch) * self.n + np.minimum((t % self.per_epoch + 1) * self.batch_size, self.n)

    @property
    def kernel_steps(self) -> np.ndarray:
        """Updates done at each point the kernel records."""
        seen = self.examples_seen()
        return np.flatnonzero(seen % self.record_every == 0) + 1

    @property
    def record_steps(self) -> np.ndarray:
        """Updates done at each recorded point."""
        if self.final:
            return np.empty(0, np.int64)
        if self.updates is not None:
            return np.arange(self.updates, self.steps + 1, self.updates, dtype=np.int64)
        return self.kernel_steps

    @property
    def record_examples(self) -> np.ndarray:
        return self.examples_seen()[self.record_steps - 1]

    @property
    def n_kernel(self) -> int:
        """Points the kernel records (0 for record="final")."""
        return 0 if self.final else int(self.kernel_steps.size)

    @property
    def selection(self) -> np.ndarray | None:
        """Which of the kernel's points are kept (None: all of them)."""
        if self.final or self.updates is None or self.record_every == self.updates * self.batch_size:
            return None
        return np.searchsorted(self.kernel_steps, self.record_steps)

    @property
    def n_recorded(self) -> int:
        return int(self.record_steps.size)


def minibatch_order(n: int, epochs: int, seed: int | None = None) -> np.ndarray:
    """The example order of every epoch for ``seed``: shape (epochs, n), int64.

    >>> minibatch_order(5, 2, seed=0).shape
    (2, 5)
    """
    n = v.integer("n", n, low=1)
    epochs = v.integer("epochs", epochs, low=0)
    rng = np.random.default_rng(np.random.SeedSequence(v.seed("seed", seed) or 0).spawn(2)[1])
    return np.array([rng.permutation(n) for _ in range(epochs)], dtype=np.int64).reshape(epochs, n)


def _init_spec(init: Any, dim: int) -> tuple | np.ndarray:
    """``("normal", mean, std)``, ``("zeros",)`` or explicit parameters (float64, shape (dim,))."""
    if isinstance(init, str):
        if init.strip() == "zeros":
            return ("zeros",)
        match = _NORMAL.match(init)
        if match:
            try:
                mean, std = float(match.group(1)), float(match.group(2))
            except ValueError:
                match = None
        if not match or not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
            raise ValueError(f"init must be 'normal(mean, std)' with finite mean and std >= 0, 'zeros', or the "
                             f"{dim} starting parameters (w..., b); got {init!r}")
        return ("normal", mean, std)
    try:
        params = np.array(init, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"init must be a string such as {DEFAULT_INIT!r} or {dim} numbers (w..., b), "
                        f"got {init!r}") from err
    if params.shape != (dim,):
        raise ValueError(f"init must have shape ({dim},): the {dim - 1} weights, then the bias; "
                         f"got shape {params.shape}")
    if not np.all(np.isfinite(params)):
        raise ValueError(f"init must be finite, got {params}")
    params.flags.writeable = False
    return params


def initial_parameters(problem: LinearRegression, init: Any = DEFAULT_INIT, seed: int | None = None) -> np.ndarray:
    """The starting parameters ``(w..., b)`` that :func:`train` uses, in the data's dtype.

    ``"normal(mean, std)"`` draws the weights from that normal distribution
    (the generator is seeded by ``seed``) and sets the bias to 0, as the
    chapter does; ``"zeros"`` starts at 0; an array gives them explicitly.

    >>> import numpy as np, rmsnum as rn
    >>> problem = rn.LinearRegression(np.eye(3), np.ones(3))
    >>> initial_parameters(problem, "zeros")
    array([0., 0., 0., 0.])
    """
    return _initial(_init_spec(init, problem.dim), v.seed("seed", seed) or 0, problem)


def _initial(spec: tuple | np.ndarray, seed: int, problem: LinearRegression) -> np.ndarray:
    if isinstance(spec, np.ndarray):
        params = spec
    elif spec[0] == "zeros":
        params = np.zeros(problem.dim)
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
        params = np.append(rng.normal(spec[1], spec[2], problem.features), 0.0)
    with np.errstate(over="ignore"):
        cast = params.astype(problem.dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(f"init overflows {problem.dtype}: {params}")
    return cast


CHAPTER_RECORD_EVERY = 200
"""The chapter's recording interval, in examples: ``train_ch11`` records the loss
whenever the examples seen reach a multiple of 200."""


def _check_common(problem: Any, batch_size: Any, epochs: Any, record: Any, record_every: Any, init: Any) -> tuple:
    if not isinstance(problem, LinearRegression):
        raise TypeError(f"problem must be a LinearRegression, got {type(problem).__name__}")
    batch_size = v.integer("batch_size", batch_size, low=1)
    if batch_size > problem.n:
        raise ValueError(f"batch_size must be in [1, {problem.n}] (the number of examples), got {batch_size}")
    epochs = v.integer("epochs", epochs, low=1)
    if record is not None and record_every is not None:
        raise ValueError(f"give record (in updates) or record_every (in examples), not both; got record={record!r} "
                         f"and record_every={record_every!r}")
    if record is None:
        every = v.integer("record_every", CHAPTER_RECORD_EVERY if record_every is None else record_every, low=1)
        schedule = _Schedule(problem.n, batch_size, epochs, every)
    else:
        k = record_interval(record, unit="update")
        if k is None:
            schedule = _Schedule(problem.n, batch_size, epochs, 1, final=True)
        else:
            every = k * batch_size if problem.n % batch_size == 0 else 1
            schedule = _Schedule(problem.n, batch_size, epochs, every, updates=k)
    return schedule, _init_spec(init, problem.dim)


def _kernel_inputs(problem: LinearRegression) -> tuple:
    """X, y and the exact expansion of the full-data loss at the optimum (H, p*, f*)."""
    w_star, b_star = problem.optimum
    return problem.X, problem.y, problem.hessian, np.append(w_star, b_star), problem.f_star


def train(
    opt: Optimizer,
    problem: LinearRegression,
    batch_size: int,
    epochs: int,
    *,
    seed: int | None = None,
    record: str | int | None = None,
    record_every: int | None = None,
    init: Any = DEFAULT_INIT,
    backend: str = "cpu",
) -> TrainResult:
    """Train a linear regression with minibatches, as the chapter's ``train_ch11``.

    The whole run (every epoch, every minibatch, the recorded losses) is one
    call of a compiled kernel, on the CPU or (``backend="cuda"``) on the GPU;
    ``backend="reference"`` runs a plain NumPy loop instead (the oracle of the
    tests). Any optimizer works: every rule, option and framework preset. A
    run whose minibatch loss stops being finite stops there and is reported
    through ``diverged_at``; it never raises.

    Parameters
    ----------
    opt : Optimizer
        E.g. ``RMSProp(lr=0.01, gamma=0.9)``, the chapter's setting.
    problem : LinearRegression
        Its dtype (float32 or float64) is the working dtype.
    batch_size : int
        Examples per minibatch, in [1, n].
    epochs : int
        Passes over the data, >= 1; each visits the examples in a new order.
    seed : int, optional
        Fixes the initial weights and the shuffles (0 if None).
    record : "final", "loss" or int k, optional
        What to record besides the final values, counted in updates as
        everywhere (see :class:`rmsnum.results.Result`): ``"final"`` nothing,
        ``"loss"`` the full-data loss after every update, ``k`` after updates
        k, 2k, ... (the loss before the first update is not recorded, as in the
        chapter). Give ``record`` or ``record_every``, not both.
    record_every : int, optional
        The chapter's form, in examples: record each time the examples seen
        reach a multiple of ``record_every`` (``train_ch11``'s ``n % 200 == 0``);
        the default when ``record`` is not given is 200. The conversion: when
        ``batch_size`` divides both n and ``record_every``,
        ``record_every=200`` is ``record=200 // batch_size`` (every 20 updates
        for the chapter's batches of 10); with a smaller last minibatch the
        examples seen are not a multiple of the updates and only
        ``record_every`` gives the chapter's points.
    init : str or array_like, default "normal(0, 0.01)"
        ``"normal(mean, std)"`` weights with bias 0 (the chapter), ``"zeros"``,
        or the d + 1 starting parameters (w..., b).
    backend : {"cpu", "cuda", "reference"}
        ``"cuda"`` runs the same kernel on the GPU (``pip install "rmsnum[cuda]"``
        and a GPU), with the CPU's minibatch order, starting parameters and
        arithmetic order; fused multiply-adds make it agree with ``"cpu"`` within
        a few ulp per update rather than bit for bit. ``sec_per_epoch`` then
        includes the copies of the results back to the host.

    Returns
    -------
    TrainResult

    Notes
    -----
    The recorded and final losses use the exact expansion of the full-data
    loss around the least-squares optimum, ``f* + (p - p*)^T H (p - p*) / 2``
    with ``H = [X, 1]^T [X, 1] / n``, computed in float64: the same number as
    the sum over the data (to rounding), at a cost independent of n.

    Examples
    --------
    >>> import rmsnum as rn
    >>> data = rn.data.synthetic_regression(n=1500, d=5, noise=0.1, seed=0)
    >>> run = rn.train(rn.RMSProp(lr=0.01, gamma=0.9), rn.LinearRegression(data), batch_size=10, epochs=2, seed=0)
    >>> run.loss_epochs[:3].round(4), run.loss.shape
    (array([0.1333, 0.2667, 0.4   ]), (15,))
    >>> bool(run.final_loss < 0.01)
    True

    The same points in updates (every 200 examples = every 20 minibatches of 10):

    >>> same = rn.train(rn.RMSProp(lr=0.01, gamma=0.9), rn.LinearRegression(data), batch_size=10, epochs=2, seed=0,
    ...                 record=20)
    >>> bool(np.array_equal(same.loss, run.loss)), same.loss_steps[:3]
    (True, array([20, 40, 60]))
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be an rmsnum optimizer such as RMSProp(lr=0.01), got {type(opt).__name__}")
    schedule, spec = _check_common(problem, batch_size, epochs, record, record_every, init)
    seed_value = v.seed("seed", seed) or 0
    if not isinstance(backend, str) or backend == "dask":
        raise ValueError(f"backend must be one of {BACKENDS} for one run, got {backend!r} (Dask runs sweeps of "
                         "many configurations: rn.train_sweep(..., backend='dask'))")
    kernels = base.get(backend, BACKENDS, "one run")
    dt = problem.dtype
    opt.check_dtype(dt)
    initial = _initial(spec, seed_value, problem)
    order = minibatch_order(problem.n, schedule.epochs, seed_value)
    state = opt.init_like((problem.dim,), dt)
    params = initial.copy()
    kernel_loss = None if schedule.final else np.full(schedule.n_kernel, np.nan)
    diverged, final_loss, elapsed = _train_one(kernels, opt, problem, schedule, params, state, order, kernel_loss)
    from ._version import __version__

    provenance = {
        "rmsnum": __version__,
        "backend": backend,
        "dtype": dt.name,
        "seed": seed_value,
        "init": init if isinstance(init, str) else initial.tolist(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    initial.flags.writeable = False
    selection = schedule.selection
    loss = kernel_loss if kernel_loss is None or selection is None else kernel_loss[selection]
    return TrainResult(
        final_x=params, loss=loss, loss_steps=None if schedule.final else schedule.record_steps,
        loss_epochs=None if schedule.final else schedule.record_examples / problem.n,
        final_loss=final_loss, diverged_at=None if diverged < 0 else diverged,
        sec_per_epoch=elapsed / schedule.epochs, initial=initial, state=state, optimizer=opt, problem=problem,
        batch_size=schedule.batch_size, epochs=schedule.epochs,
        record=None if record is None else record if isinstance(record, str) else int(record),
        record_every=schedule.record_every if record is None else None, provenance=provenance,
    )


def _train_one(kernels: base.Backend, opt: Optimizer, problem: LinearRegression, schedule: _Schedule,
               params: np.ndarray, state: OptimizerState, order: np.ndarray,
               loss: np.ndarray | None) -> tuple[int, float, float]:
    """One configuration through the training of the backend ``kernels`` (the CPU:
    one lane, serial; the GPU: one thread; the reference: NumPy steps);
    ``params``, ``state`` and ``loss`` are updated. Returns (diverged update or
    -1, final loss, seconds)."""
    from .simulate import _finish_lane, _hyperparameters, _lane_arguments

    n = problem.dim
    p = params.reshape(1, n, 1)
    slots, d, dec, C, like = _lane_arguments(opt, state)
    final_loss = np.empty((1, 1))
    diverged = np.empty((1, 1), np.int64)
    X, y, H, pstar, fstar = _kernel_inputs(problem)
    run = kernels.train(opt.rule, p, slots, d, dec, C, like, X, y, order, schedule.batch_size,
                        schedule.record_every, H, pstar, fstar, None if loss is None else loss.reshape(1, loss.size, 1),
                        final_loss, diverged, hyper=(_hyperparameters(opt),))
    start = time.perf_counter()
    run()()
    elapsed = time.perf_counter() - start
    _finish_lane(state, d, schedule.steps, int(diverged[0, 0]))
    return int(diverged[0, 0]), float(final_loss[0, 0]), elapsed


# --------------------------------------------------------------------------- training sweeps


@dataclass
class _TrainingSweep:
    """What a training sweep adds to a sweep plan (see :mod:`rmsnum.sweep`)."""

    schedule: _Schedule
    init: tuple | np.ndarray

    @property
    def n_recorded(self) -> int:
        return self.schedule.n_recorded

    def _unpacker(self, out: dict[str, np.ndarray], members: np.ndarray, final_x: np.ndarray,
                  final_loss: np.ndarray, diverged: np.ndarray, loss_rec: np.ndarray | None) -> Callable[[], None]:
        """Copies the outputs of one seed's kernel call into ``out`` once it has run,
        keeping the recorded points of :attr:`_Schedule.selection`."""
        def unpack() -> None:
            selection = self.schedule.selection
            kept = loss_rec if loss_rec is None or selection is None else np.ascontiguousarray(
                loss_rec[:, selection, :])
            unpacker(out, members, {"final_x": final_x, "final_loss": final_loss, "diverged_at": diverged,
                                    "loss": kept})()
        return unpack

    def fingerprint_items(self) -> tuple:
        return (self.schedule, self.init)

    def start_group(self, plan: Any, group: Any, index: tuple[np.ndarray, ...], members: np.ndarray,
                    out: dict[str, np.ndarray], backend: base.Backend, queue: Any,
                    report: Callable[[int], Any] | None) -> Callable[[], None]:
        """Run one group's configurations, one kernel call per seed (all lanes
        of a call see the same minibatches) on ``backend``: on the CPU here
        and now, in slices of blocks when progress is reported (``report(n)``
        after each slice of n configurations); on the GPU enqueued on
        ``queue``. Returns the finishing step, which waits for the GPU and
        unpacks the outputs."""
        problem = plan.objective
        names = list(plan.axes)
        seeds = (plan.axes["seed"][index[names.index("seed")]] if "seed" in plan.axes
                 else np.full(members.size, plan.seed, np.uint64))
        unpackers, waits = [], []
        for seed in np.unique(seeds):
            sel = np.flatnonzero(seeds == seed)
            p0 = _initial(self.init, int(seed), problem)
            order = minibatch_order(problem.n, self.schedule.epochs, int(seed))
            packed = pack(plan, group, tuple(ix[sel] for ix in index),
                                  np.broadcast_to(p0, (sel.size, problem.dim)))
            nb, width = packed[0].shape[0], packed[0].shape[2]
            final_loss = np.empty((nb, width))
            diverged = np.empty((nb, width), np.int64)
            loss_rec = None if self.schedule.final else np.full((nb, self.schedule.n_kernel, width), np.nan)
            X, y, H, pstar, fstar = _kernel_inputs(problem)
            blocked = (*packed[:5], loss_rec, final_loss, diverged)
            schedule = (X, y, order, self.schedule.batch_size, self.schedule.record_every, H, pstar, fstar)
            rule = group.representative.rule
            count = sel.size

            def run(lo: int, hi: int) -> None:
                p, S, d, dec, C, rec, fin, div = (blocks(arr, lo, hi) for arr in blocked)
                waits.append(backend.train(rule, p, S, d, dec, C, packed[5], *schedule, rec, fin, div,
                                           count=min(hi * width, count) - lo * width, queue=queue)())
            in_slices(nb, width, count, run, report)
            unpackers.append(self._unpacker(out, members[sel], packed[0], final_loss, diverged, loss_rec))

        def finish() -> None:
            for wait in waits:
                wait()
            for unpack_seed in unpackers:
                unpack_seed()
        return finish


def train_sweep(
    optimizer: Callable[..., Optimizer],
    problem: LinearRegression,
    batch_size: int,
    epochs: int,
    grid: dict[str, Any],
    fixed: dict[str, Any] | None = None,
    *,
    seed: int | None = None,
    record: str | int | None = None,
    record_every: int | None = None,
    init: Any = DEFAULT_INIT,
    backend: Any = "cpu",
    chunk_size: int | None = None,
    checkpoint: Any = None,
    progress: bool = True,
) -> SweepResult:
    """Train every combination of ``grid``'s values, each a whole :func:`train` run.

    The machinery of :func:`rmsnum.sweep` (groups, chunks, checkpoints, Dask,
    progress) runs the training kernel: on the CPU, configurations move through
    every minibatch together in SIMD lanes, blocks of them in parallel on all
    cores; on the GPU (``backend="cuda"``), one thread per configuration.
    Every configuration sees the same minibatch order and starting
    parameters (those of ``seed``), unless the grid has a ``"seed"`` axis;
    each configuration's numbers equal :func:`train`'s on the same backend
    bit for bit.

    Parameters
    ----------
    optimizer : optimizer class, preset or instance
        E.g. ``rn.RMSProp`` or ``rn.RMSProp.torch``; or an instance, whose
        fields the grid overrides (as in :func:`rmsnum.sweep`).
    problem : LinearRegression
    batch_size, epochs : int
        As in :func:`train`.
    grid : dict
        Axis name -> values: any argument of ``optimizer``, and ``"seed"``
        (each seed its own initial weights and minibatch order).
    fixed : dict, optional
        Arguments held fixed over the grid.
    seed : int, optional
        The seed of every configuration when there is no ``"seed"`` axis (0 if None).
    record, record_every
        As in :func:`train`: ``record`` in updates (``"final"``: no ``loss``),
        or ``record_every`` in examples (the default: every 200).
    init : str or array_like, default "normal(0, 0.01)"
    backend : "cpu", "cuda", "dask" or a dask.distributed.Client
        ``"cuda"`` runs each chunk on the GPU (``pip install "rmsnum[cuda]"``),
        agreeing with ``"cpu"`` within a few ulp per update (fused
        multiply-adds) and with the same ``diverged_at``, as in :func:`train`.
    chunk_size, checkpoint, progress
        As in :func:`rmsnum.sweep`.

    Returns
    -------
    SweepResult
        ``final_x`` holds the final parameters (w..., b); ``final_loss`` and
        ``loss`` the full-data losses (float64), ``loss_steps`` the updates and
        ``loss_epochs`` the epochs at the recorded points; ``diverged_at``
        counts updates; ``training`` holds the schedule.

    Examples
    --------
    >>> import rmsnum as rn
    >>> problem = rn.LinearRegression(rn.data.synthetic_regression(n=300, d=3, seed=1))
    >>> res = rn.train_sweep(rn.RMSProp, problem, batch_size=10, epochs=2,
    ...                      grid={"lr": [0.001, 0.01, 0.1], "gamma": [0.9, 0.99]}, progress=False)
    >>> res.final_loss.shape, res.loss.shape, res.loss_epochs[-1]
    ((3, 2), (3, 2, 3), np.float64(2.0))
    """
    optimizer, name, names, fixed = optimizer_and_fixed(optimizer, fixed, grid)
    schedule, spec = _check_common(problem, batch_size, epochs, record, record_every, init)
    if isinstance(grid, dict) and "x0" in grid:
        raise ValueError("a training sweep has no 'x0' axis; the starting parameters come from init and seed")
    axes = grid_axes(grid, names, fixed, problem.dim)
    if "seed" in axes and seed is not None:
        raise ValueError("give seed=None when the grid has a 'seed' axis")
    seed_value = v.seed("seed", seed) or 0
    check_backend(backend)
    largest = MAX_CUDA_CHUNK_SIZE if isinstance(backend, str) and backend == "cuda" else MAX_CHUNK_SIZE
    chunk = (default_chunk_size(problem.dim, np.dtype(np.float64), max(schedule.n_kernel, 1) - 1, 1, None, largest)
             if chunk_size is None else v.integer("chunk_size", chunk_size))
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")
    progress = v.boolean("progress", progress)
    checkpoint = check_path("checkpoint", checkpoint)
    plan = make_plan(optimizer, fixed, axes, problem, None, seed_value, schedule.steps,
                     None if schedule.final else schedule.record_every, None, problem.dtype, chunk,
                     _TrainingSweep(schedule, spec))
    out = execute_plan(plan, name, backend, checkpoint, progress)
    shape = plan.shape
    training = {
        "batch_size": schedule.batch_size,
        "epochs": schedule.epochs,
        "record_every": schedule.record_every,
        "record": None if record is None else record if isinstance(record, str) else int(record),
        "init": init if isinstance(init, str) else spec.tolist(),
        "record_examples": schedule.record_examples.tolist(),
    }
    return SweepResult(
        axes=axes,
        final_x=out["final_x"].reshape(shape + (problem.dim,)),
        final_loss=out["final_loss"].reshape(shape),
        diverged_at=out["diverged_at"].reshape(shape),
        loss=None if schedule.final else out["loss"].reshape(shape + (plan.n_recorded,)),
        loss_steps=None if schedule.final else schedule.record_steps,
        tol=None,
        steps_to_tol=None,
        optimizer=name,
        fixed={k: _item(val) for k, val in fixed.items()},
        objective=problem,
        steps=schedule.steps,
        provenance=provenance(backend, problem.dtype, seed if "seed" not in axes else None, chunk),
        training=training,
    )
