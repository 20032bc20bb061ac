"""Planning a sweep: the grid's axes, the groups of configurations that share a kernel, and what identifies the plan.

A plan is everything a worker needs to run any chunk of a sweep, and nothing
is run here. Configurations whose options differ (say ``centered`` True and
False, or ``momentum`` 0 and 0.9) need differently specialised kernels, so the
plan splits the grid into such groups, each a Cartesian sub-grid, and gives
the coefficients of a group for a whole column of configurations at once
(:func:`columnar`). A plan's :func:`fingerprint` names every argument that
changes its results or its chunking (checkpoints refuse another's chunks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from .._config import FASTMATH
from .._version import __version__
from ..objectives import Objective, Quadratic
from ..optimizers import Optimizer
from ..results import _item, _objective_record

SPECIAL_AXES = ("x0", "seed")
"""Grid axes that are not hyperparameters: a batch of starting points, noise seeds."""


def _factory_name(factory: Any) -> str:
    if isinstance(factory, type):
        return factory.__name__
    owner = getattr(factory, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, Optimizer):
        return f"{owner.__name__}.{factory.__name__}"
    return getattr(factory, "__qualname__", repr(factory))


def check_factory(factory: Any) -> tuple[str, list[str]]:
    """The factory's name and the hyperparameter names it accepts."""
    name = _factory_name(factory)
    is_class = isinstance(factory, type) and issubclass(factory, Optimizer) and factory is not Optimizer
    owner = getattr(factory, "__self__", None)
    is_preset = isinstance(owner, type) and issubclass(owner, Optimizer) and callable(factory)
    if not (is_class or is_preset):
        raise TypeError(
            f"optimizer must be an optimizer class such as rn.RMSProp, a preset such as rn.RMSProp.torch or an "
            f"instance such as rn.RMSProp(lr=0.1), got {factory!r}"
        )
    params = inspect.signature(factory).parameters
    names = [p for p, spec in params.items() if spec.kind in (spec.POSITIONAL_OR_KEYWORD, spec.KEYWORD_ONLY)
             and p != "preset"]
    return name, names


def optimizer_and_fixed(optimizer: Any, fixed: Any, grid: Any) -> tuple[Any, str, list[str], dict[str, Any]]:
    """``(factory, name, names, fixed)`` of a sweep's ``optimizer`` argument: a class
    or preset (``fixed`` as given), or an instance, whose fields the grid
    overrides (its class is the factory; its other fields join ``fixed``, whose
    own entries win). ``names`` are those the grid and ``fixed`` may use."""
    given = dict(fixed or {})
    instance = optimizer if isinstance(optimizer, Optimizer) else None
    factory = type(optimizer) if instance is not None else optimizer
    name, names = check_factory(factory)
    for key in given:
        if key not in names:
            raise ValueError(f"fixed has unknown hyperparameter {key!r}; allowed: {names}")
    if instance is None:
        return factory, name, names, given
    accepted = inspect.signature(factory).parameters
    fields = {key: val for key, val in instance.hyperparameters().items() if key in accepted}
    if factory(**fields) != instance:
        raise ValueError(f"optimizer {instance!r} cannot be rebuilt from the arguments of {name} alone; pass the "
                         f"class or preset and its arguments as fixed= instead")
    keep = {key: val for key, val in fields.items() if key not in given and key not in (grid or {})}
    return factory, name, names, {**keep, **given}


def grid_axes(grid: Any, names: list[str], fixed: dict, dim: int) -> dict[str, np.ndarray]:
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
class Group:
    """Configurations that share one kernel specialisation: a Cartesian sub-grid."""

    classes: tuple  # per structural axis: the value class of this group
    representative: Optimizer
    fields: dict[str, Any]  # field -> constant, or (axis index, table over that axis' values)


@dataclass
class Plan:
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
    groups: list[Group]  # one per combination of choices, in C order
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


def hyper_kwargs(plan_fixed: dict, axes: dict[str, np.ndarray], index: tuple[int, ...]) -> dict:
    kwargs = dict(plan_fixed)
    for (name, values), i in zip(axes.items(), index):
        if name not in SPECIAL_AXES:
            kwargs[name] = _item(values[i])
    return kwargs


def build_optimizer(factory: Any, kwargs: dict, where: str) -> Optimizer:
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None


def make_plan(factory, fixed, axes, objective, x0, seed, steps, every, tol, dtype, chunk_size, training=None) -> Plan:
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
    plan = Plan(factory, fixed, axes, objective, x0, seed, steps, every, tol, dtype, chunk_size, structural, [], [],
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


def _make_group(plan: Plan, hyper: list[int], classes: tuple) -> Group:
    """The group's representative optimizer (at its first values) and, for each
    optimizer field a grid axis drives, that field's value over the axis."""
    names = list(plan.axes)
    values = plan.axes_list
    members = {k: [i for i in range(len(values[k])) if k not in plan.structural
                   or plan.value_class(k, values[k][i]) == classes[plan.structural.index(k)]] for k in hyper}
    base = tuple(members[k][0] if k in members else 0 for k in range(len(names)))
    representative = build_optimizer(plan.factory, hyper_kwargs(plan.fixed, plan.axes, base),
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
    return Group(classes, representative, fields)


def _axis_tables(plan: Plan, k: int, members: list[int], base: tuple, own: dict) -> dict[str, np.ndarray]:
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
        return build_optimizer(plan.factory, hyper_kwargs(plan.fixed, plan.axes, index),
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


def columnar(plan: Plan, group: Group, index: tuple[np.ndarray, ...]) -> Optimizer:
    """An optimizer object whose varying fields are arrays over the configurations at ``index``."""
    cls = type(group.representative)
    obj = object.__new__(cls)
    for name, spec in group.fields.items():
        value = spec[1][index[spec[0]]] if isinstance(spec, tuple) else spec
        object.__setattr__(obj, name, value)
    return obj


def chunk_bounds(plan: Plan, chunk: int) -> tuple[int, int]:
    """The flat grid indices ``lo:hi`` of chunk number ``chunk``."""
    lo = chunk * plan.chunk_size
    return lo, min(lo + plan.chunk_size, plan.size)


def fingerprint(plan: Plan, name: str, arithmetic: str) -> str:
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

    from ..backends import _cache

    arrays, meta = _objective_record(plan.objective)
    training = None if plan.training is None else plan.training.fingerprint_items()
    # What a user objective's functions compute, the sources of the kernels' arithmetic, and fastmath.
    code = plan.objective._digest() if isinstance(plan.objective, Objective) else None
    kernels = (_cache.sources_digest(), hashlib.sha256(Path(_cache.PACKAGE_DIR, "backends", f"{arithmetic}.py")
                                                       .read_bytes()).hexdigest(), FASTMATH)
    for item in (__version__, name, sorted(plan.fixed.items()), list(plan.axes), *plan.axes.values(),
                 *arrays.values(), sorted(meta.items()), plan.x0, plan.seed, plan.steps,
                 plan.every, plan.tol, plan.dtype.str, plan.chunk_size, arithmetic, training, code, kernels):
        add(item)
    return h.hexdigest()
