"""rmsnum: RMSProp-family optimizers, written once, compiled for NumPy and Numba.

>>> import rmsnum as rn
>>> traj = rn.simulate(rn.RMSProp(lr=0.4), rn.quadratic_2d(), x0=(-5.0, -2.0), steps=20)
>>> round(float(traj.x[-1, 0]), 6)
-0.010599
"""

import importlib
from typing import Any

from . import analysis, data
from ._version import __version__ as __version__
from .objectives import LinearRegression, Objective, Quadratic, quadratic_2d, rotated_quadratic_2d
from .optimizers import SGD, Adagrad, Adam, AdamW, Momentum, Optimizer, OptimizerState, RMSProp
from .simulate import Trajectory, simulate
from .results import SweepResult
from .sweep import sweep
from .training import TrainResult, train, train_sweep


_LAZY = ("classics", "classification", "interop", "kernels", "plot", "report", "studies")  # matplotlib, Numba registrations


def __getattr__(name: str) -> Any:
    """Import ``rn.plot``, ``rn.studies``, ``rn.classics``, ``rn.classification``, ``rn.interop``,
    ``rn.kernels`` and ``rn.report`` on first use; ``rn.local_cluster`` too (it imports Dask only when called)."""
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name == "local_cluster":
        from .dask_executor import local_cluster

        return local_cluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Adagrad",
    "Adam",
    "AdamW",
    "LinearRegression",
    "Momentum",
    "Objective",
    "Optimizer",
    "OptimizerState",
    "Quadratic",
    "RMSProp",
    "SGD",
    "SweepResult",
    "Trajectory",
    "TrainResult",
    "analysis",
    "classics",
    "classification",
    "data",
    "kernels",
    "local_cluster",
    "plot",
    "quadratic_2d",
    "report",
    "rotated_quadratic_2d",
    "simulate",
    "studies",
    "sweep",
    "train",
    "train_sweep",
]
