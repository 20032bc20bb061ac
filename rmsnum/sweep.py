"""sweep(): every combination of a grid of hyperparameters, as fused compiled kernels.

A sweep is planned in Python and run in chunks of configurations. Each chunk
is one call of the same kernel that :func:`rmsnum.simulate` uses, with blocks
of configurations moving through each step together in SIMD lanes and blocks
spread over all cores (``prange``). So every configuration of a sweep gives,
bit for bit, what :func:`rmsnum.simulate` gives with the same hyperparameters.

Configurations whose options differ (say ``centered`` True and False, or
``momentum`` 0 and 0.9) need differently specialised kernels; the plan splits
the grid into such groups, each a Cartesian sub-grid, and computes the
coefficients of a group for a whole column of configurations at once.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import inspect
import math
import numbers
import os
import time
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import _validation as v
from ._neutral import Neutral
from ._version import __version__
from .checkpoint import Checkpoint, check_path
from .dask_executor import ClusterLostError
from .objectives import Objective, Quadratic
from .optimizers import Optimizer
from .results import SweepResult, _item, _objective_record

BACKENDS = ("cpu", "cuda", "dask")
SPECIAL_AXES = ("x0", "seed")
"""Grid axes that are not hyperparameters: a batch of starting points, noise seeds."""

MAX_STEPS = 2**62
"""The most updates a configuration may run (step counts are int64 in the kernels)."""
MAX_CHUNK_SIZE = 1 << 18
MAX_CUDA_CHUNK_SIZE = 1 << 21
CHUNK_BYTES = 256 << 20
"""The default chunk holds at most MAX_CHUNK_SIZE configurations (MAX_CUDA_CHUNK_SIZE on
the GPU, where a chunk must fill the device) and about CHUNK_BYTES of results."""


# --------------------------------------------------------------------------- planning


def _factory_name(factory: Any) -> str:
    if isinstance(factory, type):
        return factory.__name__
    owner = getattr(factory, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, Optimizer):
        return f"{owner.__name__}.{factory.__name__}"
    return getattr(factory, "__qualname__", repr(factory))


def _check_factory(factory: Any) -> tuple[str, list[str]]:
    """The factory's name and the hyperparameter names it accepts."""
    name = _factory_name(factory)
    is_class = isinstance(factory, type) and issubclass(factory, Optimizer) and factory is not Optimizer
    owner = getattr(factory, "__self__", None)
    is_preset = isinstance(owner, type) and issubclass(owner, Optimizer) and callable(factory)
    if not (is_class or is_preset):
        raise TypeError(
            f"optimizer must be an optimizer class such as rn.RMSProp or a preset such as rn.RMSProp.torch, got {factory!r}"
        )
    params = inspect.signature(factory).parameters
    names = [p for p, spec in params.items() if spec.kind in (spec.POSITIONAL_OR_KEYWORD, spec.KEYWORD_ONLY)
             and p != "preset"]
    return name, names


def _grid_axes(grid: Any, names: list[str], fixed: dict, dim: int) -> dict[str, np.ndarray]:
    if not isinstance(grid, dict) or not grid:
        raise TypeError(f"grid must be a non-empty dict of name -> sequence of values, got {grid!r}")
    axes = {}
    for name, values in grid.items():
        if name not in names and name not in SPECIAL_AXES:
            raise ValueError(f"grid has unknown hyperparameter {name!r}; allowed: {names + list(SPECIAL_AXES)}")
        if name in fixed:
            raise ValueError(f"{name!r} is both in grid and in fixed")
        axes[name] = _axis_values(name, values, dim)
    return axes


def _axis_values(name: str, values: Any, dim: int) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") and not hasattr(values, "__iter__"):
        raise TypeError(f"grid[{name!r}] must be a sequence of values, got {values!r}")
    if name == "x0":
        arr = np.array(values, dtype=np.float64) if not isinstance(values, np.ndarray) else values.astype(np.float64)
        if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] == 0:
            raise ValueError(f"grid['x0'] must be a non-empty batch of starting points of shape (k, {dim}), "
                             f"got shape {arr.shape}")
        bad = np.argwhere(~np.isfinite(arr).all(axis=1))
        if bad.size:
            raise ValueError(f"grid['x0'][{int(bad[0, 0])}] is not finite: {arr[bad[0, 0]]}")
        return arr
    items = list(values)
    if not items:
        raise ValueError(f"grid[{name!r}] is empty; give at least one value")
    if name == "seed":
        return np.array([v.seed(f"grid['seed'][{k}]", s) for k, s in enumerate(items)], dtype=np.uint64)
    flags = [isinstance(item, (bool, np.bool_)) for item in items]
    if all(flags):
        return np.array(items, dtype=bool)
    if any(flags):
        k = flags.index(False)
        raise TypeError(f"grid[{name!r}][{k}] must be True or False like the other values, got {items[k]!r}")
    for k, item in enumerate(items):
        if not isinstance(item, numbers.Real):
            raise TypeError(f"grid[{name!r}][{k}] must be a real number, got {item!r}")
        if not math.isfinite(float(item)):
            raise ValueError(f"grid[{name!r}][{k}] must be finite, got {item!r}")
    return np.array(items, dtype=np.float64)


@dataclass
class _Group:
    """Configurations that share one kernel specialisation: a Cartesian sub-grid."""

    classes: tuple  # per structural axis: the value class of this group
    representative: Optimizer
    fields: dict[str, Any]  # field -> constant, or (axis index, table over that axis' values)


@dataclass
class _Plan:
    """Everything a worker needs to run any chunk of the sweep (picklable)."""

    factory: Any
    fixed: dict
    axes: dict[str, np.ndarray]
    objective: Quadratic | Objective
    x0: np.ndarray | None
    seed: int
    steps: int
    every: int | None
    tol: np.ndarray | None
    dtype: np.dtype
    chunk_size: int
    structural: list[int]  # axis indices whose values select the group
    choices: list[list]  # per structural axis: its value classes, sorted
    groups: list[_Group]  # one per combination of choices, in C order
    training: Any = None  # a training sweep's minibatch schedule (rmsnum.training), None for a quadratic


    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(values) for values in self.axes.values())

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def n_chunks(self) -> int:
        return -(-self.size // self.chunk_size)

    @property
    def n_recorded(self) -> int:
        if self.training is not None:
            return self.training.n_recorded
        return 0 if self.every is None else self.steps // self.every + 1

    def value_class(self, axis: int, value: Any) -> Any:
        """The group-selecting class of a value: itself for booleans, else whether it is zero."""
        return bool(value) if self.axes_list[axis].dtype == bool else bool(value == 0)

    @property
    def axes_list(self) -> list[np.ndarray]:
        return list(self.axes.values())


def _hyper_kwargs(plan_fixed: dict, axes: dict[str, np.ndarray], index: tuple[int, ...]) -> dict:
    kwargs = dict(plan_fixed)
    for (name, values), i in zip(axes.items(), index):
        if name not in SPECIAL_AXES:
            kwargs[name] = _item(values[i])
    return kwargs


def _build(factory: Any, kwargs: dict, where: str) -> Optimizer:
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None


def _make_plan(factory, fixed, axes, objective, x0, seed, steps, every, tol, dtype, chunk_size, training=None) -> _Plan:
    values = list(axes.values())
    hyper = [k for k, name in enumerate(axes) if name not in SPECIAL_AXES]
    for k in hyper:  # a value that rounds to 0 or overflows in the run's dtype names itself
        if values[k].dtype != bool:
            with np.errstate(over="ignore", under="ignore"):
                rounded = values[k].astype(dtype)
            for i in np.flatnonzero(((rounded == 0) & (values[k] != 0)) | ~np.isfinite(rounded)):
                v.representable(f"grid[{list(axes)[k]!r}][{i}]", values[k][i], dtype)
    for key, value in fixed.items():
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            v.representable(f"fixed[{key!r}]", value, dtype)
    # Axes whose values switch options on and off select the kernel specialisation.
    structural = [k for k in hyper if values[k].dtype == bool or (np.any(values[k] == 0) and np.any(values[k] != 0))]
    plan = _Plan(factory, fixed, axes, objective, x0, seed, steps, every, tol, dtype, chunk_size, structural, [], [],
                 training)
    plan.choices = [sorted({plan.value_class(k, val) for val in values[k]}) for k in structural]
    for classes in _product(plan.choices):
        plan.groups.append(_make_group(plan, hyper, classes))
    return plan


def _product(choices: list[list]) -> list[tuple]:
    out: list[tuple] = [()]
    for options in choices:
        out = [prefix + (option,) for prefix in out for option in options]
    return out


def _make_group(plan: _Plan, hyper: list[int], classes: tuple) -> _Group:
    """The group's representative optimizer (at its first values) and, for each
    optimizer field a grid axis drives, that field's value over the axis."""
    names = list(plan.axes)
    values = plan.axes_list
    members = {k: [i for i in range(len(values[k])) if k not in plan.structural
                   or plan.value_class(k, values[k][i]) == classes[plan.structural.index(k)]] for k in hyper}
    base = tuple(members[k][0] if k in members else 0 for k in range(len(names)))
    representative = _build(plan.factory, _hyper_kwargs(plan.fixed, plan.axes, base),
                            "the grid's first values " + ", ".join(f"{names[k]}={_item(values[k][base[k]])!r}"
                                                                   for k in hyper))
    own = {f.name: getattr(representative, f.name) for f in dataclasses.fields(representative)}
    fields: dict[str, Any] = dict(own)
    owner: dict[str, int] = {}
    for k in hyper:
        for name, table in _axis_tables(plan, k, members[k], base, own).items():
            if name in owner:
                raise NotImplementedError(
                    f"{_factory_name(plan.factory)}'s field {name!r} depends on both grid axes "
                    f"{names[owner[name]]!r} and {names[k]!r}; sweep one of them in a loop instead")
            owner[name] = k
            fields[name] = (k, table)
    return _Group(classes, representative, fields)


def _axis_tables(plan: _Plan, k: int, members: list[int], base: tuple, own: dict) -> dict[str, np.ndarray]:
    """{field: its value at every value of axis k} for the fields axis k changes.

    Fast path: build the optimizer only at the axis' first, smallest and
    largest values (the valid range of a hyperparameter is an interval, so
    those validate the rest); when each field that changes simply takes the
    axis' value (a plain or renamed argument), the axis values are the table.
    Otherwise every value is built, which also names the first bad one.
    """
    names = list(plan.axes)
    column = plan.axes_list[k]

    def build(i: int) -> Optimizer:
        index = base[:k] + (i,) + base[k + 1:]
        return _build(plan.factory, _hyper_kwargs(plan.fixed, plan.axes, index),
                      f"grid[{names[k]!r}][{i}] = {_item(column[i])!r}")

    sub = column[members]
    probes = sorted({members[0], members[int(np.argmin(sub))], members[int(np.argmax(sub))]})
    try:
        built = {i: build(i) for i in probes}
    except (TypeError, ValueError):
        built = {i: build(i) for i in members}  # raises, naming the first bad index
    changed = [name for name in own if any(getattr(o, name) != own[name] for o in built.values())]
    if all(getattr(o, name) == _item(column[i]) for name in changed for i, o in built.items()):
        return {name: column for name in changed}
    built = {i: build(i) for i in members}
    return {name: np.array([getattr(built.get(i, built[members[0]]), name) for i in range(len(column))])
            for name in changed}


def _columnar(plan: _Plan, group: _Group, index: tuple[np.ndarray, ...]) -> Optimizer:
    """An optimizer object whose varying fields are arrays over the configurations at ``index``."""
    cls = type(group.representative)
    obj = object.__new__(cls)
    for name, spec in group.fields.items():
        value = spec[1][index[spec[0]]] if isinstance(spec, tuple) else spec
        object.__setattr__(obj, name, value)
    return obj


# --------------------------------------------------------------------------- running


def _chunk_bounds(plan: _Plan, chunk: int) -> tuple[int, int]:
    lo = chunk * plan.chunk_size
    return lo, min(lo + plan.chunk_size, plan.size)


def _empty_outputs(plan: _Plan, count: int) -> dict[str, np.ndarray]:
    dt = plan.dtype
    loss_dt = np.float64 if plan.training is not None else dt  # training losses are computed in float64
    out = {
        "final_x": np.empty((count, plan.objective.dim), dt),
        "final_loss": np.empty(count, loss_dt),
        "diverged_at": np.empty(count, np.int64),
    }
    if plan.every is not None:
        out["loss"] = np.full((count, plan.n_recorded), np.nan, loss_dt)
    if plan.tol is not None:
        out["steps_to_tol"] = np.full((count, plan.tol.size), -1, np.int64)
    return out


def _run_chunk(plan: _Plan, chunk: int, report: Callable[[int], Any] | None = None) -> dict[str, np.ndarray]:
    """Run one chunk of configurations on the CPU; the outputs are in flat grid order.
    ``report(n)``, when given, is called as each slice of n configurations finishes."""
    return _start_chunk(plan, chunk, report=report)()


def _chunk_count(plan: _Plan, chunk: int) -> int:
    lo, hi = _chunk_bounds(plan, chunk)
    return hi - lo


def _start_chunk(plan: _Plan, chunk: int, stream: Any = None,
                 report: Callable[[int], Any] | None = None) -> Callable[[], dict[str, np.ndarray]]:
    """Start one chunk: on the CPU (``stream`` None) it runs here and now; with a
    ``numba.cuda`` stream its kernels are only enqueued there. Returns ``finish``,
    which waits for the chunk and gives its outputs in flat grid order."""
    lo, hi = _chunk_bounds(plan, chunk)
    flat = np.arange(lo, hi)
    index = np.unravel_index(flat, plan.shape)
    out = _empty_outputs(plan, hi - lo)
    group_of = np.zeros(hi - lo, np.int64)
    if plan.structural:
        codes = []
        for k, options in zip(plan.structural, plan.choices):
            code_of_value = np.array([options.index(plan.value_class(k, val)) for val in plan.axes_list[k]])
            codes.append(code_of_value[index[k]])
        group_of = np.ravel_multi_index(codes, [len(options) for options in plan.choices])
    finishers = []
    for n, group in enumerate(plan.groups):
        members = np.flatnonzero(group_of == n)
        if members.size:
            finishers.append(_start_group(plan, group, tuple(ix[members] for ix in index), members, out, stream,
                                          report))

    def finish() -> dict[str, np.ndarray]:
        for finish_group in finishers:
            finish_group()
        return out
    return finish


def _blocked(column: np.ndarray, nb: int, width: int) -> np.ndarray:
    """(count, ...) per-configuration values -> (blocks, ..., width), padding with the last one."""
    count = column.shape[0]
    padded = np.concatenate([column, np.repeat(column[-1:], nb * width - count, axis=0)])
    return np.ascontiguousarray(np.moveaxis(padded.reshape((nb, width) + column.shape[1:]), 1, -1))


def _unblocked(arr: np.ndarray, count: int) -> np.ndarray:
    return np.moveaxis(arr, -1, 1).reshape((arr.shape[0] * arr.shape[-1],) + arr.shape[1:-1])[:count]


def _pack(plan: _Plan, group: _Group, index: tuple[np.ndarray, ...], x0: np.ndarray) -> tuple:
    """Blocks of the starting points ``x0`` (count, n) and of the optimizer state
    and coefficients of the configurations at ``index``: ``(x, S, d, dec, C, like)``
    as the kernels take them."""
    from .backends import cpu

    dt = plan.dtype
    count, n = x0.shape
    width = cpu.LANES
    nb = -(-count // width)
    opt = _columnar(plan, group, index)

    def column(value: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (count,)).astype(dt)

    x = _blocked(x0.astype(dt), nb, width)
    slots = tuple(_blocked(np.repeat(column(opt._initial(slot))[:, None], n, axis=1), nb, width)
                  if slot in group.representative.slots else None for slot in opt.spec.slots)
    decays = opt._decays()
    d = dec = None
    if decays is not None:
        d = np.zeros((nb, 2, width), dt)
        dec = _blocked(np.stack([column(c) for c in decays], axis=1), nb, width)
    like = group.representative.coefficients(dt)
    numeric = [column(c) for c in opt._coefficients() if not isinstance(c, Neutral)]
    C = _blocked(np.stack(numeric, axis=1) if numeric else np.empty((count, 0), dt), nb, width)
    return (x, slots, d, dec, C, like)


def _unpacker(out: dict[str, np.ndarray], members: np.ndarray, blocked: dict[str, np.ndarray]) -> Callable[[], None]:
    """A function that copies blocked kernel outputs (name -> array) into ``out`` at ``members``."""
    def unpack() -> None:
        for key, arr in blocked.items():
            if arr is not None:
                out[key][members] = _unblocked(arr, members.size)
    return unpack


SLICE_SECONDS = 0.5
"""With a progress bar, a chunk runs in slices of blocks of about this many seconds each."""

_BLOCKED_ARGS = frozenset(("x", "S", "d", "dec", "C", "seeds", "loss_rec", "x_rec", "final_loss",
                           "diverged", "hit"))
"""The arguments of :func:`rmsnum.backends.cpu.run_objective` that have a leading block axis."""


def _blocks(arr: Any, lo: int, hi: int) -> Any:
    """Blocks lo..hi of a blocked array (a C-contiguous view), or None for None; of each
    array of a tuple (the state slots)."""
    if isinstance(arr, tuple):
        return tuple(_blocks(item, lo, hi) for item in arr)
    return None if arr is None else arr[lo:hi]


def in_slices(nblocks: int, width: int, count: int, run: Callable[[int, int], None],
              report: Callable[[int], Any] | None) -> None:
    """Call ``run(lo, hi)`` over the ``nblocks`` blocks (of ``width`` lanes, ``count``
    configurations in all): at once without ``report``; with it, in slices of about
    :data:`SLICE_SECONDS` each (the first one small, the next sized from the time
    per block so far), calling ``report(n)`` with the n configurations each slice
    finished. Blocks are independent, so slicing never changes a number."""
    if report is None:
        run(0, nblocks)
        return
    import numba

    smallest = numba.get_num_threads()
    lo, size, spent = 0, smallest, 0.0
    while lo < nblocks:
        hi = min(nblocks, lo + size)
        start = time.perf_counter()
        run(lo, hi)
        spent += time.perf_counter() - start
        report(min(hi * width, count) - min(lo * width, count))
        lo = hi
        size = max(smallest, min(4 * size, int(SLICE_SECONDS * lo / max(spent, 1e-9))))


def _start_group(plan: _Plan, group: _Group, index: tuple[np.ndarray, ...], members: np.ndarray,
                 out: dict[str, np.ndarray], stream: Any, report: Callable[[int], Any] | None) -> Callable[[], None]:
    """Pack one group's configurations into blocks and run them (CPU) or enqueue
    them on ``stream`` (CUDA); the returned ``finish`` unpacks the outputs."""
    if plan.training is not None:
        return plan.training.start_group(plan, group, index, members, out, report)
    dt = plan.dtype
    count = members.size
    n = plan.objective.dim
    names = list(plan.axes)
    x0 = plan.axes["x0"][index[names.index("x0")]] if "x0" in plan.axes else np.broadcast_to(plan.x0, (count, n))
    packed = _pack(plan, group, index, x0)
    nb, width = packed[0].shape[0], packed[0].shape[2]
    seeds = None
    if plan.objective.noise > 0:
        seed_col = (plan.axes["seed"][index[names.index("seed")]] if "seed" in plan.axes
                    else np.full(count, plan.seed, np.uint64))
        seeds = _blocked(seed_col.astype(np.uint64), nb, width)
    final_loss = np.empty((nb, width), dt)
    diverged = np.empty((nb, width), np.int64)
    loss_rec = None if plan.every is None else np.full((nb, plan.n_recorded, width), np.nan, dt)
    hit = None if plan.tol is None else np.full((nb, plan.tol.size, width), -1, np.int64)
    tol = np.empty(0, dt) if plan.tol is None else plan.tol.astype(dt)
    functions, P = plan.objective._kernel_form(dt, "cpu" if stream is None else "cuda")
    args = (group.representative.rule, functions, *packed, P, plan.objective.noise, seeds,
            plan.objective.f_star or 0.0, tol, plan.steps, plan.every or 1, loss_rec, None, final_loss, diverged, hit)
    unpack = _unpacker(out, members, {"final_x": packed[0], "final_loss": final_loss, "diverged_at": diverged,
                                      "loss": loss_rec, "steps_to_tol": hit})
    if stream is None:
        from .backends import cpu

        named = inspect.signature(cpu.run_objective).bind(*args).arguments

        def run(lo: int, hi: int) -> None:
            cpu.run_objective(**{k: _blocks(arg, lo, hi) if k in _BLOCKED_ARGS else arg for k, arg in named.items()})
        in_slices(nb, width, count, run, report)
        return unpack
    from .backends import cuda

    wait = cuda.run_objective(*args, stream=stream)

    def finish() -> None:
        wait()
        unpack()
    return finish


# --------------------------------------------------------------------------- checkpoints


def _fingerprint(plan: _Plan, name: str, arithmetic: str) -> str:
    """A digest of every argument that changes the result or the chunking;
    ``arithmetic`` is "cpu" (shared by the dask backend, bit for bit) or "cuda"."""
    h = hashlib.sha256()

    def add(item: Any) -> None:
        if isinstance(item, np.ndarray):
            h.update(f"{item.dtype.str}{item.shape}".encode())
            h.update(np.ascontiguousarray(item).tobytes())
        else:
            h.update(repr(item).encode())
        h.update(b"|")

    from .backends import _cache

    arrays, meta = _objective_record(plan.objective)
    training = None if plan.training is None else plan.training.fingerprint_items()
    # What a user objective's functions compute, and the sources of the kernels' arithmetic.
    code = plan.objective._digest() if isinstance(plan.objective, Objective) else None
    kernels = (_cache.sources_digest(), hashlib.sha256(Path(_cache.PACKAGE_DIR, "backends", f"{arithmetic}.py")
                                                       .read_bytes()).hexdigest())
    for item in (__version__, name, sorted(plan.fixed.items()), list(plan.axes), *plan.axes.values(),
                 *arrays.values(), sorted(meta.items()), plan.x0, plan.seed, plan.steps,
                 plan.every, plan.tol, plan.dtype.str, plan.chunk_size, arithmetic, training, code, kernels):
        add(item)
    return h.hexdigest()


# --------------------------------------------------------------------------- memory


def _available_memory() -> int | None:
    """Bytes of memory available to this process (Linux), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _bytes_per_config(dim: int, dtype: np.dtype, n_recorded: int, tol: np.ndarray | None) -> int:
    per_config = (dim + 1 + n_recorded) * dtype.itemsize + 8
    return per_config + (0 if tol is None else tol.size * 8)


def result_nbytes(plan: _Plan) -> int:
    """Bytes the result arrays of a sweep will take."""
    return plan.size * _bytes_per_config(plan.objective.dim, plan.dtype, plan.n_recorded, plan.tol)


def _default_chunk_size(dim: int, dtype: np.dtype, steps: int, every: int | None, tol: np.ndarray | None,
                        largest: int = MAX_CHUNK_SIZE) -> int:
    from .backends.cpu import LANES

    n_recorded = 0 if every is None else steps // every + 1
    fit = CHUNK_BYTES // _bytes_per_config(dim, dtype, n_recorded, tol)
    return max(LANES, min(largest, fit) // LANES * LANES)


# --------------------------------------------------------------------------- the public function


def _record(record: Any, steps: int) -> int | None:
    if record == "final":
        return None
    if record == "loss":
        return 1
    if isinstance(record, (bool, np.bool_)) or not isinstance(record, (int, np.integer)):
        raise TypeError(f"record must be 'final', 'loss' or a positive int k (every k-th step), got {record!r}")
    if record < 1:
        raise ValueError(f"record must be a positive int k (every k-th step), got {record}")
    return int(record)


def _tolerances(tol: Any) -> np.ndarray | None:
    if tol is None:
        return None
    arr = np.atleast_1d(np.asarray(tol, dtype=np.float64)) if not isinstance(tol, str) else None
    if arr is None or arr.ndim != 1 or arr.size == 0:
        raise TypeError(f"tol must be a positive number or a sequence of them, got {tol!r}")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"tol values must be finite and > 0, got {arr}")
    return arr


def sweep(
    optimizer: Callable[..., Optimizer],
    objective: Quadratic | Objective,
    x0: Any,
    steps: int,
    grid: dict[str, Any],
    fixed: dict[str, Any] | None = None,
    *,
    record: str | int = "final",
    tol: Any = None,
    backend: Any = "cpu",
    chunk_size: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    seed: int | None = None,
    dtype: Any = np.float64,
) -> SweepResult:
    """Run every combination of ``grid``'s values, each a whole trajectory.

    Chunks of configurations run as one compiled kernel on all cores, with
    configurations in SIMD lanes. Every configuration's numbers equal
    :func:`rmsnum.simulate` with the same hyperparameters, bit for bit.
    A configuration whose iterate or loss stops being finite is marked in
    ``diverged_at`` and stops; the others carry on.

    Parameters
    ----------
    optimizer : optimizer class or preset
        E.g. ``rn.RMSProp`` or ``rn.RMSProp.torch``; the grid and ``fixed``
        use its argument names (``alpha`` for the torch preset).
    objective : Quadratic or Objective
        A quadratic, a classic of :mod:`rmsnum.classics`, or an
        :class:`Objective` of the user's own Numba functions.
    x0 : array_like of shape (d,), or None
        The start of every run; None when the grid has an ``"x0"`` axis.
    steps : int
        Updates per configuration.
    grid : dict
        Axis name -> values; the sweep runs their Cartesian product, axes in
        the dict's order. Any argument of ``optimizer`` (booleans too, e.g.
        ``"centered": [False, True]``), plus ``"x0"`` (a batch of starting
        points, shape (k, d)) and ``"seed"`` (noise seeds).
    fixed : dict, optional
        Arguments held fixed over the grid.
    record : "final", "loss" or int k
        Keep only the final values, the loss at every step, or every k-th step.
    tol : float or sequence of float, optional
        Also find the first step with ``loss - f* < tol`` for each value.
    backend : "cpu", "cuda", "dask" or a dask.distributed.Client
        ``"cuda"`` runs each chunk on the GPU, one thread per configuration,
        with the next chunk packed while the previous one runs
        (``pip install "rmsnum[cuda]"``); results agree with ``"cpu"`` within a
        few ulp per step (fused multiply-adds). ``"dask"`` runs chunks on a
        temporary local cluster of worker processes (one per core; it prints
        its dashboard link); a Client runs them on its cluster, e.g. one from
        :func:`rmsnum.local_cluster` that many sweeps share
        (``pip install "rmsnum[dask]"``); results equal ``"cpu"`` bit for bit.
        Worker processes re-import the main script, so a script must call a
        Dask sweep under ``if __name__ == "__main__":``, else
        :class:`~rmsnum.dask_executor.MainGuardError` before any cluster
        starts. A cluster that loses its workers raises
        :class:`~rmsnum.dask_executor.ClusterLostError` (chunks finished
        before stay in the checkpoint).
    chunk_size : int, optional
        Configurations per chunk; by default up to 262144 (2097152 on the
        GPU), fewer when the recorded loss curves of a chunk would pass 256 MiB.
        A chunk must fit in GPU memory with room to spare, so a sweep larger
        than the GPU runs chunk by chunk.
    checkpoint : path, optional
        A directory where each finished chunk is saved atomically; running the
        same sweep again resumes from it, after a kill at any moment. The
        directory is locked while the sweep runs; a checkpoint made with
        different arguments (or an edited objective) is refused, and a chunk
        that fails its checks (SHA-256, index, fingerprint, shapes) is named in a
        :class:`rmsnum.checkpoint.CheckpointWarning` and computed again.
    progress : bool
        Show a progress bar over configurations, with an ETA (only when stderr
        is a terminal); on the CPU a chunk then runs in slices of about
        :data:`SLICE_SECONDS` so that the bar moves within it.
    seed : int, optional
        Seed of the gradient noise when there is no ``"seed"`` axis (0 if None).
    dtype : float32 or float64

    Returns
    -------
    SweepResult

    Raises
    ------
    TypeError, ValueError
        Before any work, for bad arguments (the message names the grid axis
        and index of a bad value, also one that rounds to 0 or overflows in
        ``dtype``), or for a checkpoint of other arguments.
    MemoryError
        Before any work, when the results would not fit in available memory.
    RuntimeError
        When another process holds the checkpoint directory.
    OSError
        When a checkpoint file cannot be written (the chunks finished before
        are kept).

    Examples
    --------
    >>> import numpy as np, rmsnum as rn
    >>> res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), x0=(-5, -2), steps=20,
    ...                grid={"lr": [0.1, 0.4, 4.0], "gamma": [0.9, 0.99]}, progress=False)
    >>> res.final_loss.shape, res.dims
    ((3, 2), ('lr', 'gamma'))
    >>> round(float(res.final_x[1, 0, 0]), 6)   # lr 0.4, gamma 0.9: the chapter's run
    -0.010599
    """
    name, names = _check_factory(optimizer)
    if not isinstance(objective, (Quadratic, Objective)):
        raise TypeError(f"objective must be a Quadratic or an Objective, got {type(objective).__name__}")
    steps = v.integer("steps", steps)
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS} (the kernels count steps in int64), got {steps}")
    dt = v.float_dtype("dtype", dtype)
    fixed = dict(fixed or {})
    for key in fixed:
        if key not in names:
            raise ValueError(f"fixed has unknown hyperparameter {key!r}; allowed: {names}")
    axes = _grid_axes(grid, names, fixed, objective.dim)
    if "x0" in axes:
        if x0 is not None:
            raise ValueError("give x0=None when the grid has an 'x0' axis")
        start = None
    else:
        from .simulate import _start

        start = _start(x0, objective.dim, np.dtype(np.float64))
    if "seed" in axes and seed is not None:
        raise ValueError("give seed=None when the grid has a 'seed' axis")
    seed_value = v.seed("seed", seed) or 0
    every = _record(record, steps)
    tols = _tolerances(tol)
    if tols is not None and objective.f_star is None:
        raise ValueError(f"tol needs the minimum value f* of the objective {objective.name!r}: "
                         "give Objective(f_star=...) or Objective(minimum=...)")
    _check_backend(backend)
    largest = MAX_CUDA_CHUNK_SIZE if isinstance(backend, str) and backend == "cuda" else MAX_CHUNK_SIZE
    chunk = (_default_chunk_size(objective.dim, dt, steps, every, tols, largest) if chunk_size is None
             else v.integer("chunk_size", chunk_size))
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")
    progress = v.boolean("progress", progress)
    checkpoint = check_path("checkpoint", checkpoint)
    plan = _make_plan(optimizer, fixed, axes, objective, start, seed_value, steps, every, tols, dt, chunk)

    out = _execute_plan(plan, name, backend, checkpoint, progress)
    shape = plan.shape
    return SweepResult(
        axes=axes,
        final_x=out["final_x"].reshape(shape + (objective.dim,)),
        final_loss=out["final_loss"].reshape(shape),
        diverged_at=out["diverged_at"].reshape(shape),
        loss=None if every is None else out["loss"].reshape(shape + (plan.n_recorded,)),
        loss_steps=None if every is None else np.arange(0, steps + 1, every),
        tol=tols,
        steps_to_tol=None if tols is None else out["steps_to_tol"].reshape(shape + (tols.size,)),
        optimizer=name,
        fixed={k: _item(val) for k, val in fixed.items()},
        objective=objective,
        steps=steps,
        provenance=_provenance(backend, dt, seed if "seed" not in axes else None, chunk),
    )


def _provenance(backend: Any, dtype: np.dtype, seed: int | None, chunk_size: int) -> dict:
    return {
        "rmsnum": __version__,
        "backend": backend if isinstance(backend, str) else "dask",
        "dtype": dtype.name,
        "seed": seed,
        "chunk_size": chunk_size,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _execute_plan(plan: _Plan, name: str, backend: Any, checkpoint: Path | None,
                  progress: bool) -> dict[str, np.ndarray]:
    """Run every chunk of ``plan`` not yet in ``checkpoint`` (after checking
    that the results fit in memory); the outputs in flat grid order.

    The checkpoint directory is locked for the whole run; each chunk is saved
    as soon as it finishes, so an error or a kill loses at most the chunks in
    flight."""
    need = result_nbytes(plan)
    available = _available_memory()
    if available is not None and need > 0.8 * available:
        raise MemoryError(
            f"this sweep's results need {need / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB of memory "
            "is available; record less (record='final', or record=k with a larger k), sweep a smaller grid, "
            "or split the grid into several sweeps, each with its own checkpoint= file"
        )
    if checkpoint is None:
        return _run_chunks(plan, backend, None, progress)
    arithmetic = "cuda" if backend == "cuda" else "cpu"
    store = Checkpoint(checkpoint, _fingerprint(plan, name, arithmetic), plan.n_chunks,
                       lambda c: _expected_outputs(plan, c))
    with store:
        return _run_chunks(plan, backend, store, progress)


def _expected_outputs(plan: _Plan, chunk: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{name: (shape, dtype)} of the outputs of one chunk."""
    lo, hi = _chunk_bounds(plan, chunk)
    return {key: ((hi - lo,) + arr.shape[1:], arr.dtype) for key, arr in _empty_outputs(plan, 0).items()}


def _run_chunks(plan: _Plan, backend: Any, store: Checkpoint | None, progress: bool) -> dict[str, np.ndarray]:
    out = _empty_outputs(plan, plan.size)
    done = set()
    for c, outputs in (() if store is None else store.finished()):
        _place(plan, out, c, outputs)
        done.add(c)
    todo = [c for c in range(plan.n_chunks) if c not in done]
    bar = _progress_bar(progress, plan.size, sum(_chunk_count(plan, c) for c in done))
    client = _dask_client(backend) if todo and backend not in ("cpu", "cuda") else None
    try:
        if client is not None:
            chunks = _execute(plan, todo, client)
        elif backend == "cuda":
            chunks = _execute_cuda(plan, todo)
        else:  # here, reporting progress while a chunk runs
            chunks = ((c, _run_chunk(plan, c, None if bar is None else bar.update)) for c in todo)
        for c, outputs in chunks:
            if store is not None:
                store.save(c, outputs)
            _place(plan, out, c, outputs)
            if bar is not None and (client is not None or backend == "cuda"):
                bar.update(_chunk_count(plan, c))
    except ClusterLostError as err:
        kept = "" if store is None else (f"; the {len(store.chunks)} of {plan.n_chunks} chunks finished so far are "
                                         f"kept in the checkpoint {str(store.path)!r}: run the same sweep again to "
                                         "resume")
        raise ClusterLostError(f"{err}{kept}") from err
    finally:
        if bar is not None:
            bar.close()
        if backend == "dask" and client is not None:
            _close_local_client(client)
    return out


def _place(plan: _Plan, out: dict[str, np.ndarray], chunk: int, outputs: dict[str, np.ndarray]) -> None:
    lo, hi = _chunk_bounds(plan, chunk)
    for key, arr in out.items():
        part = outputs[key]
        if part.shape != arr[lo:hi].shape:
            raise ValueError(f"chunk {chunk} has {key} of shape {part.shape}, expected {arr[lo:hi].shape}")
        arr[lo:hi] = part


def _progress_bar(progress: bool, total: int, initial: int):
    """A tqdm bar over configurations (with an ETA), or None when off or stderr is not a terminal."""
    if not progress or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="config", desc="sweep")


def _execute(plan: _Plan, todo: list[int], client: Any):
    """Yield (chunk, outputs) as chunks finish on ``client``'s Dask cluster;
    :class:`ClusterLostError` when the cluster loses chunks."""
    from . import dask_executor

    return dask_executor.execute(client, _run_chunk, plan, todo)


def _execute_cuda(plan: _Plan, todo: list[int]):
    """Yield (chunk, outputs) from the GPU, two chunks in flight on two streams:
    while one chunk's kernels run and its results stream back, the host packs
    the next one."""
    from numba import cuda

    streams = [cuda.stream(), cuda.stream()]
    pending: list[tuple[int, Callable]] = []
    for k, c in enumerate(todo):
        pending.append((c, _start_chunk(plan, c, streams[k % 2])))
        if len(pending) == 2:
            c0, finish = pending.pop(0)
            yield c0, finish()
    for c0, finish in pending:
        yield c0, finish()


def _check_backend(backend: Any) -> None:
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} or a dask.distributed.Client, got {backend!r}")
        if backend == "cpu":
            return
        if backend == "cuda":
            from .backends import cuda

            cuda.require()
            return
    from . import dask_executor

    dask_executor.check_backend(backend, BACKENDS)


def _dask_client(backend: Any):
    """None for the cpu and cuda backends, the given Client, or a Client of a new local cluster."""
    if isinstance(backend, str) and backend in ("cpu", "cuda"):
        return None
    from . import dask_executor

    return dask_executor.client_for(backend)


def _close_local_client(client: Any) -> None:
    """Close the client of a temporary local cluster, and the cluster with it."""
    from . import dask_executor

    dask_executor.close(client)
