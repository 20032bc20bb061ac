"""One result model: the base :class:`Result` of :class:`~rmsnum.Trajectory`,
:class:`~rmsnum.TrainResult` and :class:`SweepResult`, and their file format.

A result saves to one ``.npz`` file: its arrays, the objective's arrays, and a
JSON ``meta`` entry with the axes, the optimizer, the objective's description
and the provenance. ``load`` reads it back exactly, or raises
``ValueError("... is not a valid rmsnum result file: <reason>")``.

This module sits in the data layer: it knows optimizers and objectives, never
the engine (simulate, training, sweep), which imports it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import numbers
import os
import zipfile
import zlib
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

import numpy as np

from ._config import READ_CHUNK_BYTES
from .objectives import LinearRegression, Objective, Quadratic, known_f_star
from .optimizers import Optimizer, OptimizerState

FORMAT = "rmsnum.SweepResult/1"
_OUTPUTS = ("final_x", "final_loss", "diverged_at", "loss", "loss_steps", "tol", "steps_to_tol")
_META_KEYS = ("format", "axes", "optimizer", "fixed", "objective", "steps", "training", "provenance")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)


def _function_path(fn: Any) -> str:
    """``module:qualname`` of the Python function behind ``fn``."""
    source = getattr(fn, "py_func", None) or getattr(fn, "fn", None) or fn
    return f"{source.__module__}:{source.__qualname__}"


def _import_function(path: str, objective: str) -> Any:
    """The function at ``module:qualname``, or a ValueError saying how to load without it."""
    module, _, qualname = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"the saved sweep ran on the objective {objective!r}, whose function {path} cannot be "
                         "imported here; give it again: SweepResult.load(path, objective=...)") from err
    return found


def _objective_record(objective: Any) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and JSON metadata that describe an objective exactly (to save it);
    a user objective's functions are recorded by their import path."""
    if isinstance(objective, Objective):
        value, grad = objective.functions
        arrays = {f"objective_arg_{k}": arg for k, arg in enumerate(objective.args) if isinstance(arg, np.ndarray)}
        return arrays, {"kind": "objective", "name": objective.name, "dim": objective.dim, "noise": objective.noise,
                        "f_star": objective.f_star,
                        "minimum": None if objective.minimum is None else objective.minimum.tolist(),
                        "value": _function_path(value), "grad": _function_path(grad),
                        "args": [None if isinstance(arg, np.ndarray) else arg for arg in objective.args]}
    if isinstance(objective, LinearRegression):
        return {"objective_X": objective.X, "objective_y": objective.y}, {"kind": "linear_regression",
                                                                          "name": objective.name}
    return ({"objective_A": objective.A, "objective_b": objective.b},
            {"kind": "quadratic", "noise": objective.noise, "name": objective.name})


class _Invalid(Exception):
    """Why a file is not a valid result file; :meth:`SweepResult.load` raises it as a
    ValueError that names the file."""


_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError, TypeError, SyntaxError,
                NotImplementedError, RuntimeError, OverflowError)
"""What zipfile and numpy.lib.format raise on a damaged archive: a flipped byte can
give a bad CRC (BadZipFile), an unknown zip version or flag (NotImplementedError),
an "encrypted" flag (RuntimeError), an unreadable .npy header (ValueError, SyntaxError)
or dtype (TypeError)."""


def _read_archive(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every entry of the ``.npz`` archive at ``path``, each read whole, so that its
    CRC is checked. Opening the file raises as ``open`` does (a missing file stays
    FileNotFoundError); anything wrong in its content is an :class:`_Invalid`."""
    with open(path, "rb") as file:
        try:
            entries: dict[str, np.ndarray] = {}
            with zipfile.ZipFile(file) as archive:
                for info in archive.infolist():
                    name = info.filename
                    if not name.endswith(".npy") or name[:-4] in entries:
                        raise _Invalid(f"its archive entry {name!r} is not one .npy array of an npz file")
                    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        raise _Invalid(f"its archive entry {name!r} has compression method {info.compress_type}, "
                                       "which NumPy never writes")
                    with archive.open(info) as member:
                        entries[name[:-4]] = _read_npy(member, info.file_size, name)
        except _READ_ERRORS as err:
            raise _Invalid(f"it is not an intact .npz archive ({type(err).__name__}: {err})") from err
    return entries


def _read_npy(member: Any, size: int, name: str) -> np.ndarray:
    """The array in the ``.npy`` entry ``member`` of ``size`` bytes, whose header must
    describe exactly the data that follows it."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise _Invalid(f"its archive entry {name!r} has .npy format version {version}, not 1.0 or 2.0")
    if dtype.hasobject:
        raise _Invalid(f"its archive entry {name!r} holds Python objects")
    nbytes = math.prod(shape) * dtype.itemsize
    if member.tell() + nbytes != size:
        raise _Invalid(f"its archive entry {name!r} has {size} bytes, but its header describes "
                       f"{member.tell() + nbytes}")
    data = bytearray(nbytes)
    view = memoryview(data)
    filled = 0
    while filled < nbytes:
        got = member.readinto(view[filled:filled + READ_CHUNK_BYTES])
        if not got:
            break
        filled += got
    if filled != nbytes or member.read(1):
        raise _Invalid(f"its archive entry {name!r} does not have the {nbytes} bytes of data its header describes")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")


def _keys(record: dict, expected: Iterable[str], where: str) -> None:
    """``record`` must have exactly the keys ``expected``."""
    expected = tuple(expected)
    missing = [key for key in expected if key not in record]
    if missing:
        raise _Invalid(f"{where} lacks {', '.join(map(repr, missing))}")
    unexpected = sorted(set(record) - set(expected))
    if unexpected:
        raise _Invalid(f"{where} has unexpected {', '.join(map(repr, unexpected))}")


def _integer(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _Invalid(f"{where} is {value!r}, not an integer >= {low}")
    return value


def _real(value: Any, where: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _Invalid(f"{where} is {value!r}, not a finite real number{' or null' if optional else ''}")


def _typed(value: Any, kinds: tuple, where: str, what: str) -> Any:
    if not isinstance(value, kinds):
        raise _Invalid(f"{where} is {value!r}, not {what}")
    return value


def _array(entries: dict[str, np.ndarray], name: str, dtypes: tuple, shape: tuple | None = None) -> np.ndarray:
    """The entry ``name``, which must exist, have one of ``dtypes`` and, when given, ``shape``."""
    arr = entries.get(name)
    if arr is None:
        raise _Invalid(f"it has no {name!r} array")
    if arr.dtype not in dtypes:
        raise _Invalid(f"its {name!r} array has dtype {arr.dtype}, not {' or '.join(str(dt) for dt in dtypes)}")
    if shape is not None and arr.shape != shape:
        raise _Invalid(f"its {name!r} array has shape {arr.shape}, not {shape}")
    return arr


def _meta(entries: dict[str, np.ndarray]) -> dict:
    """The checked JSON ``meta`` entry (its keys and their types)."""
    meta = _run_meta(entries, FORMAT, "SweepResult")
    _keys(meta, _META_KEYS, "its meta")
    names = _typed(meta["axes"], (list,), "meta['axes']", "a list of axis names")
    if not names or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise _Invalid(f"meta['axes'] is {names!r}, not a non-empty list of distinct axis names")
    _typed(meta["optimizer"], (str,), "meta['optimizer']", "an optimizer's name")
    _typed(meta["fixed"], (dict,), "meta['fixed']", "a dict of hyperparameters")
    _typed(meta["objective"], (dict,), "meta['objective']", "an objective record")
    _integer(meta["steps"], "meta['steps']", 0)
    _typed(meta["training"], (dict, type(None)), "meta['training']", "a training record or null")
    _typed(meta["provenance"], (dict,), "meta['provenance']", "a dict")
    return meta


def _axes(entries: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """The grid's axes: ``x0`` a (k, d) float64 batch, ``seed`` uint64, others bool or float64."""
    axes = {}
    for k, name in enumerate(names):
        key = f"axis_{k}"
        if name == "x0":
            values = _array(entries, key, (_FLOAT64,))
        elif name == "seed":
            values = _array(entries, key, (np.dtype(np.uint64),))
        else:
            values = _array(entries, key, (np.dtype(bool), _FLOAT64))
        if values.ndim != (2 if name == "x0" else 1) or values.shape[0] == 0:
            raise _Invalid(f"its {key!r} array (axis {name!r}) has shape {values.shape}, not that of a non-empty "
                           + ("batch of points (k, d)" if name == "x0" else "vector"))
        if values.dtype == _FLOAT64 and not np.all(np.isfinite(values)):
            raise _Invalid(f"its {key!r} array (axis {name!r}) is not finite")
        axes[name] = values
    return axes


def _counts(arr: np.ndarray, name: str, steps: int) -> np.ndarray:
    """Step numbers, -1 for none: every value in [-1, steps]."""
    if arr.size and (arr.min() < -1 or arr.max() > steps):
        raise _Invalid(f"its {name!r} array has values outside [-1, {steps}] (steps {steps})")
    return arr


def _outputs(entries: dict[str, np.ndarray], meta: dict, shape: tuple[int, ...]) -> dict[str, np.ndarray | None]:
    """The per-configuration arrays, of the dtypes and shapes that :func:`rmsnum.sweep`
    and :func:`rmsnum.train_sweep` write (training losses are float64, other losses
    in the dtype of ``final_x``), and the recorded steps and tolerances."""
    steps = meta["steps"]
    training = meta["training"] is not None
    final_x = _array(entries, "final_x", _FLOATS)
    if final_x.shape[:-1] != shape or final_x.ndim != len(shape) + 1 or final_x.shape[-1] < 1:
        raise _Invalid(f"its 'final_x' array has shape {final_x.shape}, not the grid's {shape} + (d,)")
    loss_dt = _FLOAT64 if training else final_x.dtype
    out: dict[str, np.ndarray | None] = dict.fromkeys(_OUTPUTS)
    out["final_x"] = final_x
    out["final_loss"] = _array(entries, "final_loss", (loss_dt,), shape)
    out["diverged_at"] = _counts(_array(entries, "diverged_at", (_INT64,), shape), "diverged_at", steps)
    for values, series in (("loss", "loss_steps"), ("steps_to_tol", "tol")):
        if (values in entries) != (series in entries):
            raise _Invalid(f"it has {(values if values in entries else series)!r} without "
                           f"{(series if values in entries else values)!r}")
    if training and "loss" not in entries and (not isinstance(meta["training"], dict)
                                              or meta["training"].get("record") != "final"):
        raise _Invalid("it is a training sweep without a 'loss' array")
    if training and "tol" in entries:
        raise _Invalid("it is a training sweep with a 'tol' array")
    if "loss_steps" in entries:
        recorded = _array(entries, "loss_steps", (_INT64,))
        if (recorded.ndim != 1 or recorded.size == 0 or recorded[0] < 0 or recorded[-1] > steps
                or np.any(np.diff(recorded) <= 0)):
            raise _Invalid(f"its 'loss_steps' array {recorded} is not increasing step numbers in [0, {steps}]")
        every = int(recorded[1] - recorded[0]) if recorded.size > 1 else steps + 1
        if not training and not np.array_equal(recorded, np.arange(0, steps + 1, every)):
            raise _Invalid(f"its 'loss_steps' array {recorded} is not every k-th step of 0..{steps}")
        out["loss_steps"] = recorded
        out["loss"] = _array(entries, "loss", (loss_dt,), shape + (recorded.size,))
    if "tol" in entries:
        tol = _array(entries, "tol", (_FLOAT64,))
        if tol.ndim != 1 or tol.size == 0 or not np.all(np.isfinite(tol) & (tol > 0)):
            raise _Invalid(f"its 'tol' array {tol} is not a vector of finite tolerances > 0")
        out["tol"] = tol
        out["steps_to_tol"] = _counts(_array(entries, "steps_to_tol", (_INT64,), shape + (tol.size,)),
                                      "steps_to_tol", steps)
    return out


def _function_path_of(record: dict, key: str) -> str:
    path = _typed(record[key], (str,), f"the objective record's {key!r}", "a function's import path")
    module, colon, qualname = path.partition(":")
    if not colon or not qualname or not all(part.isidentifier() for part in module.split(".")):
        raise _Invalid(f"the objective record's {key!r} is {path!r}, not a function's import path module:qualname")
    return path


def _check_record(record: dict, entries: dict[str, np.ndarray], dim: int, dtype: np.dtype) -> list[str]:
    """Check the objective record ``meta['objective']`` of a sweep whose points have
    ``dim`` coordinates in ``dtype``; returns the names of the arrays it uses."""
    kind = record.get("kind")
    where = "the objective record"
    if kind == "quadratic":
        _keys(record, ("kind", "noise", "name"), where)
        A = _array(entries, "objective_A", (_FLOAT64,))
        if A.shape not in ((dim,), (dim, dim)):
            raise _Invalid(f"its 'objective_A' array has shape {A.shape}, not ({dim},) or ({dim}, {dim}) "
                           f"for points of {dim} coordinates")
        _array(entries, "objective_b", (_FLOAT64,), (dim,))
        used = ["objective_A", "objective_b"]
    elif kind == "linear_regression":
        _keys(record, ("kind", "name"), where)
        X = _array(entries, "objective_X", (dtype,))
        if X.ndim != 2 or X.shape[1] + 1 != dim:
            raise _Invalid(f"its 'objective_X' array has shape {X.shape}, not (n, {dim - 1}) for {dim} parameters")
        _array(entries, "objective_y", (dtype,), (X.shape[0],))
        used = ["objective_X", "objective_y"]
    elif kind == "objective":
        _keys(record, ("kind", "name", "dim", "noise", "f_star", "minimum", "value", "grad", "args"), where)
        if _integer(record["dim"], f"{where}'s 'dim'", 1) != dim:
            raise _Invalid(f"{where}'s 'dim' is {record['dim']}, but 'final_x' has points of {dim} coordinates")
        _real(record["noise"], f"{where}'s 'noise'")
        _real(record["f_star"], f"{where}'s 'f_star'", optional=True)
        _typed(record["minimum"], (list, type(None)), f"{where}'s 'minimum'", "a list of numbers or null")
        for key in ("value", "grad"):
            _function_path_of(record, key)
        used = []
        for k, arg in enumerate(_typed(record["args"], (list,), f"{where}'s 'args'", "a list")):
            if arg is None:
                arr = entries.get(f"objective_arg_{k}")
                if arr is None or arr.dtype.kind not in "iuf":
                    raise _Invalid(f"it has no numeric 'objective_arg_{k}' array for the objective's args[{k}]")
                used.append(f"objective_arg_{k}")
            else:
                _real(arg, f"{where}'s args[{k}]")
    else:
        raise _Invalid(f"{where} has kind {kind!r}, not 'quadratic', 'linear_regression' or 'objective'")
    _typed(record["name"], (str,), f"{where}'s 'name'", "a str")
    return used


def _check_training(training: dict, meta: dict, loss_steps: np.ndarray, n: int) -> None:
    """A training sweep's record must fit its ``loss_steps`` and its ``n`` examples."""
    where = "meta['training']"
    _keys(training, ("batch_size", "epochs", "record_every", *(("record",) if "record" in training else ()), "init",
                     "record_examples"), where)  # files of 0.1 have no 'record' (it was always record_every)
    record = training.get("record")
    if record is not None and not (record in ("final", "loss") or (isinstance(record, int)
                                                                  and not isinstance(record, bool) and record >= 1)):
        raise _Invalid(f"{where}['record'] is {record!r}, not 'final', 'loss', an int >= 1 or null")
    if record == "final" and loss_steps is not None:
        raise _Invalid(f"{where}['record'] is 'final', but it has a 'loss' array")
    batch_size = _integer(training["batch_size"], f"{where}['batch_size']", 1)
    epochs = _integer(training["epochs"], f"{where}['epochs']", 1)
    _integer(training["record_every"], f"{where}['record_every']", 1)
    init = _typed(training["init"], (str, list), f"{where}['init']", "an init name or a list of numbers")
    for k, value in enumerate(init if isinstance(init, list) else []):
        _real(value, f"{where}['init'][{k}]")
    if meta["steps"] != epochs * -(-n // batch_size):
        raise _Invalid(f"meta['steps'] is {meta['steps']}, not the {epochs * -(-n // batch_size)} updates of "
                       f"{epochs} epochs of {n} examples in batches of {batch_size}")
    examples = _typed(training["record_examples"], (list,), f"{where}['record_examples']", "a list")
    recorded = 0 if loss_steps is None else loss_steps.size
    if (len(examples) != recorded or not all(isinstance(e, int) and not isinstance(e, bool) for e in examples)
            or np.any(np.diff(examples) <= 0)):
        raise _Invalid(f"{where}['record_examples'] is not {recorded} increasing example counts, "
                       "one per recorded step")


def _objective_from_record(entries: dict[str, np.ndarray], record: dict) -> Any:
    """The objective that a checked record of :func:`_objective_record` describes; the
    ValueError of a user function that cannot be imported here is raised as it is."""
    kind = record["kind"]
    if kind == "objective":
        value = _import_function(record["value"], record["name"])
        grad = _import_function(record["grad"], record["name"])
        args = tuple(entries[f"objective_arg_{k}"] if arg is None else arg for k, arg in enumerate(record["args"]))
    try:
        if kind == "objective":
            return Objective(value, grad, record["dim"], record["minimum"], record["f_star"], args=args,
                             noise=record["noise"], name=record["name"])
        if kind == "linear_regression":
            return LinearRegression(entries["objective_X"], entries["objective_y"], name=record["name"])
        return Quadratic(entries["objective_A"], entries["objective_b"], noise=record["noise"], name=record["name"])
    except (TypeError, ValueError) as err:
        raise _Invalid(f"its {kind} objective {record['name']!r} cannot be rebuilt: {err}") from err


# --------------------------------------------------------------------------- the one result model

def record_interval(record: Any, name: str = "record", unit: str = "step") -> int | None:
    """The recording interval that ``record`` asks for: None for ``"final"``, 1 for
    ``"loss"``, ``k`` for a positive int ``k``; a TypeError or ValueError naming
    ``name`` and the allowed values otherwise.

    >>> record_interval("final"), record_interval("loss"), record_interval(5)
    (None, 1, 5)
    """
    if isinstance(record, str) and record in ("final", "loss"):
        return None if record == "final" else 1
    if isinstance(record, (bool, np.bool_)) or not isinstance(record, (int, np.integer)):
        raise TypeError(f"{name} must be 'final', 'loss' or a positive int k (every k-th {unit}), got {record!r}")
    if record < 1:
        raise ValueError(f"{name} must be a positive int k (every k-th {unit}), 'final' or 'loss', got {record}")
    return int(record)


class Result:
    """The base of every result: :class:`~rmsnum.Trajectory` (:func:`rmsnum.simulate`),
    :class:`~rmsnum.TrainResult` (:func:`rmsnum.train`) and :class:`SweepResult`
    (:func:`rmsnum.sweep`, :func:`rmsnum.train_sweep`).

    The same names mean the same things in all three (for a sweep each has the
    grid's shape as leading dimensions):

    - ``final_x``: the parameters at the end, shape (d,) (for a training run the
      weights, then the bias); for a run that diverged, the parameters at its
      first non-finite value.
    - ``final_loss``: the loss there.
    - ``loss`` and ``loss_steps``: the recorded losses and the step (update)
      numbers at which they were recorded; both None for ``record="final"``.
    - ``hyperparameters``: a dict of the optimizer's arguments (for a sweep, the
      fixed ones and each grid axis's values).
    - ``diverged_at`` and ``diverged``: see below.
    - ``steps``: the updates asked for. ``objective``: what was minimised.
    - ``provenance``: rmsnum version, backend, dtype, seed and date, and what
      the entry point adds.
    - :meth:`save`, ``load`` (an exact round trip: arrays bit for bit, the
      optimizer, its state, the objective and the provenance equal), :meth:`to_xarray`.

    **record=** means the same everywhere: ``"final"`` keeps only the final
    values, ``"loss"`` the loss at every step, an int ``k`` everything the
    function records every k-th step (:func:`rmsnum.simulate`: x and loss at
    steps 0, k, 2k, ...; :func:`rmsnum.sweep`: the loss; :func:`rmsnum.train`:
    the full-data loss after updates k, 2k, ...).

    **diverged_at** counts the updates done when the run first held a
    non-finite value: the first step t whose x_t or f(x_t) is not finite
    (simulate, sweep), or the updates done when a minibatch loss was first not
    finite (training). Where the run stayed finite it is ``None`` for one run
    (Trajectory, TrainResult: ``if run.diverged_at is None``) and ``-1`` in the
    int64 array of a sweep, which needs an integer sentinel. ``diverged`` is
    the boolean (map) in all three.
    """

    FORMAT: ClassVar[str] = ""

    @property
    def diverged(self) -> Any:
        """True (for a sweep: a boolean map) where the run stopped on a non-finite value."""
        return self.diverged_at is not None

    @property
    def gap(self) -> Any:
        """loss - f*, the suboptimality at the recorded steps (a ValueError when f* is unknown)."""
        if self.loss is None:
            raise ValueError('gap needs the recorded loss; this result kept only its final values (record="final")')
        return self.loss - known_f_star(self.objective)

    def save(self, path: str | os.PathLike) -> None:
        """Write the result to a ``.npz`` file; ``load`` reads it back exactly."""
        arrays, meta = self._entries()
        arrays["meta"] = np.array(json.dumps({"format": self.FORMAT, **meta}))
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, objective: Any = None) -> Any:
        """Read a result written by :meth:`save`, checking all of it.

        A run on a user's :class:`~rmsnum.Objective` is saved with the import
        paths (``module:qualname``) of its functions and rebuilt from them;
        when they cannot be imported, give the objective again as ``objective``.

        Raises
        ------
        FileNotFoundError
            When there is no file at ``path``.
        ValueError
            ``"<path> is not a valid rmsnum result file: <reason>"`` for a file
            that is damaged (truncated, a changed byte), foreign, of another
            kind or format version, or inconsistent; when the objective's
            functions cannot be imported; when ``objective`` has another dimension.
        TypeError
            When ``objective`` is given for a run not saved on an Objective,
            or is not an Objective.
        """
        try:
            entries = _read_archive(path)
            meta = _run_meta(entries, cls.FORMAT, cls.__name__)
            return cls._from_entries(entries, meta, objective)
        except _Invalid as err:
            raise ValueError(f"{path} is not a valid rmsnum result file: {err}") from err.__cause__

    def to_xarray(self) -> Any:
        """The result as an ``xarray.Dataset`` (needs ``pip install "rmsnum[xarray]"``):
        the arrays as variables on named dimensions (``step`` for the recorded
        points, ``coord`` for the parameters, the grid's axes for a sweep), the
        hyperparameters and provenance as attributes (``diverged_at`` -1 where
        the run stayed finite, as netCDF attributes cannot be None)."""
        try:
            import xarray as xr
        except ImportError as err:
            raise ImportError('to_xarray() needs xarray: pip install "rmsnum[xarray]"') from err
        data, coords, attrs = self._xarray_parts()
        return xr.Dataset(data, coords=coords, attrs=attrs)

    # subclasses: _entries() -> (arrays, meta), _from_entries(entries, meta, objective), _xarray_parts()


def _run_meta(entries: dict[str, np.ndarray], format: str, kind: str) -> dict:
    """The checked JSON ``meta`` entry of a single run's file of ``format``."""
    raw = entries.get("meta")
    if raw is None:
        raise _Invalid("it has no 'meta' entry")
    if raw.shape != () or raw.dtype.kind != "U":
        raise _Invalid(f"its 'meta' entry is a {raw.dtype} array of shape {raw.shape}, not a JSON string")
    try:
        meta = json.loads(raw.item())
    except json.JSONDecodeError as err:
        raise _Invalid(f"its 'meta' entry is not JSON ({err})") from err
    _typed(meta, (dict,), "its 'meta' entry", "a JSON object")
    if meta.get("format") != format:
        raise _Invalid(f"its meta format is {meta.get('format')!r}: not a saved rmsnum {kind} ({format!r})")
    return meta


def optimizer_record(opt: Optimizer) -> dict:
    """The JSON record of an optimizer instance: its class's import path and its
    constructor's fields (exact: JSON keeps every float64 bit)."""
    return {"class": f"{type(opt).__module__}:{type(opt).__qualname__}",
            "fields": {f.name: getattr(opt, f.name) for f in dataclasses.fields(opt) if f.init}}


def optimizer_from_record(record: Any) -> Optimizer:
    """The optimizer that a record of :func:`optimizer_record` describes (an :class:`_Invalid` if none)."""
    where = "meta['optimizer']"
    _typed(record, (dict,), where, "an optimizer record")
    _keys(record, ("class", "fields"), where)
    path = _typed(record["class"], (str,), f"{where}['class']", "a class's import path")
    module, colon, qualname = path.partition(":")
    if not colon or not module.startswith("rmsnum.") or not all(p.isidentifier() for p in qualname.split(".")):
        raise _Invalid(f"{where}['class'] is {path!r}, not the import path of an rmsnum optimizer class")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as err:
        raise _Invalid(f"{where}['class'] {path!r} cannot be imported here") from err
    if not (isinstance(found, type) and issubclass(found, Optimizer)):
        raise _Invalid(f"{where}['class'] {path!r} is not an optimizer class")
    fields = _typed(record["fields"], (dict,), f"{where}['fields']", "a dict of hyperparameters")
    try:
        return found(**fields)
    except (TypeError, ValueError) as err:
        raise _Invalid(f"its optimizer {qualname} cannot be rebuilt: {err}") from err


def state_entries(state: OptimizerState) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and JSON record of an optimizer state (the denominators as a
    (2,) array in the state's dtype, so that every bit survives)."""
    arrays = {f"state_{name}": arr for name, arr in state.arrays.items()}
    arrays["state_d"] = np.array([state.d1, state.d2])
    return arrays, {"rule": state.rule, "t": state.t, "slots": list(state.arrays)}


def state_from_entries(entries: dict[str, np.ndarray], record: Any, opt: Optimizer, dim: int, dtype: np.dtype,
                       steps: int) -> tuple[OptimizerState, list[str]]:
    """The checked state of ``opt`` for ``dim`` parameters in ``dtype``; returns it
    and the names of the entries it used."""
    where = "meta['state']"
    _typed(record, (dict,), where, "a state record")
    _keys(record, ("rule", "t", "slots"), where)
    if record["rule"] != opt.name:
        raise _Invalid(f"{where}['rule'] is {record['rule']!r}, but the optimizer's rule is {opt.name!r}")
    t = _integer(record["t"], f"{where}['t']", 0)
    if t > steps:
        raise _Invalid(f"{where}['t'] is {t}, more than the run's {steps} steps")
    if record["slots"] != list(opt.slots):
        raise _Invalid(f"{where}['slots'] is {record['slots']!r}, not the optimizer's slots {list(opt.slots)}")
    arrays = {name: _array(entries, f"state_{name}", (dtype,), (dim,)) for name in opt.slots}
    d = _array(entries, "state_d", (dtype,), (2,))
    return OptimizerState(arrays, t, d[0], d[1], opt.name), [*(f"state_{n}" for n in opt.slots), "state_d"]


def objective_from_entries(entries: dict[str, np.ndarray], record: Any, dim: int, dtype: np.dtype,
                           objective: Any) -> tuple[Any, list[str]]:
    """The checked objective of a run with ``dim`` parameters in ``dtype`` (``objective``
    given again replaces a user Objective's functions); returns it and the entries it used."""
    _typed(record, (dict,), "meta['objective']", "an objective record")
    used = _check_record(record, entries, dim, dtype)
    if objective is None:
        return _objective_from_record(entries, record), used
    if record["kind"] != "objective" or not isinstance(objective, Objective):
        raise TypeError("objective= is for a run saved on an Objective, and must be one")
    if objective.dim != dim:
        raise ValueError(f"objective must have dimension {dim} as the saved run's, got {objective.dim}")
    return objective, used


def check_entries(entries: dict[str, np.ndarray], used: Iterable[str]) -> None:
    """Refuse entries that nothing reads."""
    unexpected = sorted(set(entries) - {"meta", *used})
    if unexpected:
        raise _Invalid(f"it has unexpected entries {unexpected}")


def check_diverged(value: Any, steps: int) -> int | None:
    """A single run's ``diverged_at``: None or a step in [0, steps]."""
    if value is None:
        return None
    _integer(value, "meta['diverged_at']", 0)
    if value > steps:
        raise _Invalid(f"meta['diverged_at'] is {value}, more than the run's {steps} steps")
    return value


def check_provenance(provenance: Any, dtype: np.dtype) -> dict:
    _typed(provenance, (dict,), "meta['provenance']", "a dict")
    if provenance.get("dtype", dtype.name) != dtype.name:
        raise _Invalid(f"its provenance dtype is {provenance['dtype']!r}, but 'final_x' is {dtype}")
    return provenance


def array_entry(entries: dict[str, np.ndarray], name: str, dtypes: tuple, shape: tuple | None = None) -> np.ndarray:
    """The entry ``name`` of ``dtypes`` (and ``shape``), or an :class:`_Invalid`."""
    return _array(entries, name, dtypes, shape)


def meta_keys(meta: dict, expected: Iterable[str]) -> None:
    _keys(meta, ("format", *expected), "its meta")


def deprecated(old: str, new: str) -> None:
    """Warn that the name ``old`` is now ``new`` (kept for one release)."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}", DeprecationWarning,
                  stacklevel=3)


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(value, dict):
        return {k: jsonable(val) for k, val in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(val) for val in value]
    return _item(value)


@dataclass(eq=False)
class SweepResult(Result):
    """The outcome of a sweep, labelled by its grid (a :class:`Result`).

    Every per-configuration array has the grid's shape (one axis per grid
    entry, in the grid's order) as its leading dimensions.

    Attributes
    ----------
    axes : dict of str to numpy.ndarray
        Axis name -> values (for ``"x0"`` an array of shape (k, d)).
    final_x : numpy.ndarray, grid shape + (d,)
        The last iterate; for a diverged configuration, the first iterate
        that was not finite (with :attr:`final_loss` the value there).
    final_loss : numpy.ndarray, grid shape
    diverged_at : numpy.ndarray of int64, grid shape
        First step whose x or loss was not finite; -1 where the run stayed finite
        (the convention of :class:`Result`).
    loss : numpy.ndarray or None, grid shape + (len(loss_steps),)
        f at the steps in :attr:`loss_steps` when recorded; NaN after a divergence.
    loss_steps : numpy.ndarray or None
        The recorded step numbers (0, k, 2k, ...).
    tol : numpy.ndarray or None
        The tolerances asked for.
    steps_to_tol : numpy.ndarray of int64 or None, grid shape + (len(tol),)
        First step with ``loss - f* < tol``; -1 where never reached.
    optimizer : str
        The optimizer class or preset, e.g. ``"RMSProp"`` or ``"RMSProp.torch"``.
    fixed : dict
        Hyperparameters held fixed over the grid.
    objective : Quadratic, Objective or LinearRegression
    steps : int
        Updates per configuration.
    provenance : dict
        rmsnum version, backend, dtype, seed, chunk size and date.
    training : dict or None
        For a training sweep (:func:`rmsnum.train_sweep`): batch size, epochs,
        ``record_every``, init and the examples seen at each recorded point
        (``record_examples``); ``loss_steps`` then counts updates, and
        ``final_loss`` and ``loss`` are full-data losses in float64.
    """

    axes: dict[str, np.ndarray]
    final_x: np.ndarray
    final_loss: np.ndarray
    diverged_at: np.ndarray
    loss: np.ndarray | None
    loss_steps: np.ndarray | None
    tol: np.ndarray | None
    steps_to_tol: np.ndarray | None
    optimizer: str
    fixed: dict
    objective: Quadratic | Objective | LinearRegression
    steps: int
    provenance: dict = field(default_factory=dict)
    training: dict | None = None

    FORMAT: ClassVar[str] = FORMAT

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters of the sweep: the fixed ones, then each grid axis's
        values (an array; ``x0`` and ``seed`` are not hyperparameters).

        >>> import rmsnum as rn
        >>> res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 10, grid={"lr": [0.1, 0.4]},
        ...                fixed={"gamma": 0.9}, progress=False)
        >>> res.hyperparameters
        {'gamma': 0.9, 'lr': array([0.1, 0.4])}
        """
        return {**self.fixed, **{name: values for name, values in self.axes.items() if name not in ("x0", "seed")}}

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape."""
        return self.final_loss.shape

    @property
    def loss_epochs(self) -> np.ndarray | None:
        """For a training sweep, the recorded points in epochs (examples seen / examples)."""
        if self.training is None or self.loss_steps is None:
            return None
        return np.asarray(self.training["record_examples"], dtype=np.float64) / self.objective.n

    @property
    def dims(self) -> tuple[str, ...]:
        """The axis names, in order."""
        return tuple(self.axes)

    @property
    def diverged(self) -> np.ndarray:
        """Boolean map of the configurations that diverged."""
        return self.diverged_at >= 0

    @property
    def gap(self) -> np.ndarray:
        """final_loss - f* (a ValueError when f* is unknown)."""
        return self.final_loss - known_f_star(self.objective)

    def config(self, index: Iterable[int]) -> dict[str, Any]:
        """The grid values of the configuration at ``index`` (one integer per axis).

        >>> import numpy as np, rmsnum as rn
        >>> res = rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5, -2), 10,
        ...                grid={"lr": [0.1, 0.4], "gamma": [0.9, 0.99]}, progress=False)
        >>> res.config((1, 0))
        {'lr': 0.4, 'gamma': 0.9}
        """
        index = tuple(index)
        if len(index) != len(self.axes):
            raise ValueError(f"index must have one entry per axis {self.dims}, got {index}")
        return {name: _item(values[i]) for (name, values), i in zip(self.axes.items(), index)}

    def save(self, path: str | os.PathLike) -> None:
        """Write the result to a ``.npz`` file; :meth:`load` reads it back exactly."""
        arrays = {f"axis_{k}": values for k, values in enumerate(self.axes.values())}
        for name in ("final_x", "final_loss", "diverged_at", "loss", "loss_steps", "tol", "steps_to_tol"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        objective_arrays, objective_meta = _objective_record(self.objective)
        arrays.update(objective_arrays)
        meta = {
            "format": FORMAT,
            "axes": list(self.axes),
            "optimizer": self.optimizer,
            "fixed": self.fixed,
            "objective": objective_meta,
            "steps": self.steps,
            "training": self.training,
            "provenance": self.provenance,
        }
        arrays["meta"] = np.array(json.dumps(meta))
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, objective: Any = None) -> "SweepResult":
        """Read a result written by :meth:`save`, checking all of it.

        A sweep on a user's :class:`~rmsnum.Objective` is saved with the import
        paths (``module:qualname``) of its functions and rebuilt from them; when
        they cannot be imported (say, they were defined in a notebook), give
        the objective again as ``objective``.

        Raises
        ------
        FileNotFoundError
            When there is no file at ``path``.
        ValueError
            ``"<path> is not a valid rmsnum result file: <reason>"`` for a file
            that is damaged (truncated, a changed byte), foreign or inconsistent
            (an array missing or of the wrong dtype or shape for the grid, the
            objective or the recorded steps, the metadata incomplete); when the
            objective's functions cannot be imported; when ``objective`` does
            not have the saved sweep's dimension.
        TypeError
            When ``objective`` is given for a sweep not saved on an Objective,
            or is not an Objective.
        """
        try:
            entries = _read_archive(path)
            meta = _meta(entries)
            axes = _axes(entries, meta["axes"])
            shape = tuple(len(values) for values in axes.values())
            outputs = _outputs(entries, meta, shape)
            final_x = outputs["final_x"]
            dim = final_x.shape[-1]
            if "x0" in axes and axes["x0"].shape[1] != dim:
                raise _Invalid(f"its 'x0' axis has points of shape {axes['x0'].shape[1:]}, but 'final_x' points "
                               f"of ({dim},)")
            if meta["provenance"].get("dtype", final_x.dtype.name) != final_x.dtype.name:
                raise _Invalid(f"its provenance dtype is {meta['provenance']['dtype']!r}, but 'final_x' is "
                               f"{final_x.dtype}")
            record = meta["objective"]
            used = _check_record(record, entries, dim, final_x.dtype)
            if (record["kind"] == "linear_regression") != (meta["training"] is not None):
                raise _Invalid("its training record and its objective do not match: a training sweep runs on a "
                               "linear regression, a sweep on a quadratic or an Objective")
            if meta["training"] is not None:
                _check_training(meta["training"], meta, outputs["loss_steps"], entries["objective_X"].shape[0])
            known = {"meta", *(f"axis_{k}" for k in range(len(axes))), *(k for k, arr in outputs.items()
                                                                        if arr is not None), *used}
            unexpected = sorted(set(entries) - known)
            if unexpected:
                raise _Invalid(f"it has unexpected entries {unexpected}")
            if objective is None:
                objective = _objective_from_record(entries, record)
            elif record["kind"] != "objective" or not isinstance(objective, Objective):
                raise TypeError("objective= is for a sweep saved on an Objective, and must be one")
            elif objective.dim != dim:
                raise ValueError(f"objective must have dimension {dim} as the saved sweep's, got {objective.dim}")
        except _Invalid as err:
            raise ValueError(f"{path} is not a valid rmsnum result file: {err}") from err.__cause__
        return cls(axes=axes, optimizer=meta["optimizer"], fixed=meta["fixed"], objective=objective,
                   steps=meta["steps"], training=meta["training"], provenance=meta["provenance"], **outputs)

    def to_xarray(self):
        """The result as an ``xarray.Dataset`` (needs ``pip install "rmsnum[xarray]"``).

        Grid axes become dimensions with their values as coordinates (the
        ``x0`` axis is indexed 0..k-1, its points are the ``x0_points`` variable).
        """
        try:
            import xarray as xr
        except ImportError as err:
            raise ImportError('to_xarray() needs xarray: pip install "rmsnum[xarray]"') from err
        dims = list(self.axes)
        coords = {name: (np.arange(len(values)) if name == "x0" else values) for name, values in self.axes.items()}
        data = {
            "final_x": (dims + ["coord"], self.final_x),
            "final_loss": (dims, self.final_loss),
            "diverged_at": (dims, self.diverged_at),
        }
        if self.loss is not None:
            data["loss"] = (dims + ["step"], self.loss)
            coords["step"] = self.loss_steps
        if self.steps_to_tol is not None:
            data["steps_to_tol"] = (dims + ["tol"], self.steps_to_tol)
            coords["tol"] = self.tol
        if "x0" in self.axes:
            data["x0_points"] = (["x0", "coord"], self.axes["x0"])
        attrs = {"optimizer": self.optimizer, "steps": self.steps, "fixed": json.dumps(self.fixed),
                 **{k: str(val) for k, val in self.provenance.items()}}
        return xr.Dataset(data, coords=coords, attrs=attrs)


def _item(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value.item() if isinstance(value, np.generic) else value
