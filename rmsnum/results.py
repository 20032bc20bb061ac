"""The labelled result of a sweep (:class:`SweepResult`) and its file format.

A result saves to one ``.npz`` file: its arrays, the objective's arrays, and a
JSON ``meta`` entry with the axes, the optimizer, the objective's description
and the provenance. :meth:`SweepResult.load` reads it back exactly, or raises
``ValueError("... is not a valid rmsnum result file: <reason>")``.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .objectives import LinearRegression, Objective, Quadratic, known_f_star

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


def _objective_from_record(arrays: Any, meta: dict) -> Any:
    """The objective that :func:`_objective_record` described."""
    if meta.get("kind") == "objective":
        args = tuple(arrays[f"objective_arg_{k}"] if arg is None else arg for k, arg in enumerate(meta["args"]))
        return Objective(_import_function(meta["value"], meta["name"]), _import_function(meta["grad"], meta["name"]),
                         meta["dim"], meta["minimum"], meta["f_star"], args=args, noise=meta["noise"],
                         name=meta["name"])
    if meta.get("kind") == "linear_regression":
        return LinearRegression(arrays["objective_X"], arrays["objective_y"], name=meta["name"])
    return Quadratic(arrays["objective_A"], arrays["objective_b"], noise=meta["noise"], name=meta["name"])


@dataclass(eq=False)
class SweepResult:
    """The outcome of a sweep, labelled by its grid.

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
        First step whose x or loss was not finite; -1 where the run stayed finite.
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
            "format": "rmsnum.SweepResult/1",
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
        """Read a result written by :meth:`save`.

        A sweep on a user's :class:`~rmsnum.Objective` is saved with the import
        paths (``module:qualname``) of its functions and rebuilt from them; when
        they cannot be imported (say, they were defined in a notebook), give
        the objective again as ``objective``.
        """
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != "rmsnum.SweepResult/1":
                raise ValueError(f"{path} is not a saved rmsnum SweepResult")
            get = {name: (data[name] if name in data else None)
                   for name in ("final_x", "final_loss", "diverged_at", "loss", "loss_steps", "tol", "steps_to_tol")}
            axes = {name: data[f"axis_{k}"] for k, name in enumerate(meta["axes"])}
            if objective is None:
                objective = _objective_from_record(data, meta["objective"])
            elif meta["objective"].get("kind") != "objective" or not isinstance(objective, Objective):
                raise TypeError("objective= is for a sweep saved on an Objective, and must be one")
            elif objective.dim != meta["objective"]["dim"]:
                raise ValueError(f"objective must have dimension {meta['objective']['dim']} as the saved sweep's, "
                                 f"got {objective.dim}")
        return cls(axes=axes, optimizer=meta["optimizer"], fixed=meta["fixed"], objective=objective,
                   steps=meta["steps"], training=meta.get("training"), provenance=meta["provenance"], **get)

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
