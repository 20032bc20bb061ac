"""The one interface of the backends, and the one place that finds a backend by name.

Every backend (:mod:`.reference`, :mod:`.cpu`, :mod:`.cuda`) is a module with
the functions of :class:`Backend`; the engine (:func:`rmsnum.simulate`,
:func:`rmsnum.train`, :func:`rmsnum.sweep`, :func:`rmsnum.train_sweep`) and
:meth:`rmsnum.Optimizer.step` reach a backend only through :func:`get` and
call only these functions. Backends know the rules (:mod:`rmsnum.rules`) and
the problems' kernel forms; they never import an optimizer class or the engine.

The data layout is the same for every backend and every operation:
configurations in blocks of ``w`` lanes, so an array of one value per
coordinate is ``(blocks, n, w)`` (see :func:`rmsnum.backends.cpu.run_objective`
for every argument). A configuration reaches a backend twice over: as its
coefficient table ``C`` with the neutral pattern ``like`` (what the compiled
rules read, :meth:`rmsnum.Optimizer.coefficients`) and as its hyperparameters
``hyper`` (what the reference reads, so that it stays independent of the
coefficients: an error in a preset's mapping shows as a disagreement).

Dask is not a backend: it is an executor that runs a sweep's chunks, each on
the CPU backend (:mod:`rmsnum.sweep.executors`).

>>> from rmsnum.backends import base
>>> base.get("reference", ("cpu", "reference"), "simulate").__name__
'rmsnum.backends.reference'
>>> base.get("tpu", ("cpu", "reference"), "simulate")
Traceback (most recent call last):
    ...
ValueError: backend must be one of ('cpu', 'reference') for simulate, got 'tpu'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from ..objectives import Objective

NAMES = ("reference", "cpu", "cuda")
"""Every backend, by name."""

Key = TypeVar("Key")
Value = TypeVar("Value")


class Backend(Protocol):
    """What a backend module provides (a module satisfies this protocol).

    ``hyper`` is one ``{field: value}`` mapping per configuration (blocked
    order: block by block, lane by lane) or, for a single configuration under
    a schedule, one per update; only the reference reads it. ``queue`` is where
    the work is enqueued: a ``numba.cuda`` stream on the GPU, ignored by the
    host backends, which run at once.
    """

    NAME: str
    """The backend's name, as ``backend=`` spells it."""

    def missing(self) -> str | None:
        """Why this backend cannot run here, or None when it can."""

    def require(self) -> None:
        """Raise ``ImportError`` (saying how to install what is missing) unless this backend can run here."""

    def kernel_form(self, objective: Any, dtype: Any) -> tuple[tuple | None, tuple]:
        """``(functions, P)`` of a problem for :meth:`run_objective` in ``dtype``: None
        and ``(A, b)`` for a :class:`rmsnum.Quadratic`; for a user's
        :class:`rmsnum.Objective`, its ``(value, grad)`` compiled for this backend,
        and a placeholder then its extra arguments."""

    def step(self, rule: Callable, x: Any, g: Any, S: tuple, r1: Any, r2: Any, c: tuple, *,
             hyper: Mapping[str, Any] | None = None, t: int = 0) -> None:
        """One in-place update of ``x`` and the slots ``S`` (arrays of x's shape, or None),
        the ``t``-th update, with the bias-correction factors ``r1``, ``r2``."""

    def squares(self, g: Any) -> Any:
        """The sum of the squares of ``g``'s elements, a scalar of its dtype (for a step's
        clip of the gradient's norm, Keras' ``clipnorm``)."""

    def run_objective(self, rule: Callable, functions: tuple | None, x: np.ndarray, S: tuple, d: Any, dec: Any,
                      C: np.ndarray, like: tuple, P: tuple, sigma: float, seeds: Any, fstar: float, tol: np.ndarray,
                      steps: int, every: int, loss_rec: Any, x_rec: Any, final_loss: np.ndarray,
                      diverged: np.ndarray, hit: Any, *, hyper: Sequence | None = None,
                      queue: Any = None) -> Callable[[], None]:
        """Start ``steps`` updates of blocks of configurations on an objective; returns
        ``wait``, after which the outputs are in place."""

    def train(self, rule: Callable, p: np.ndarray, S: tuple, d: Any, dec: Any, C: np.ndarray, like: tuple,
              X: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int, every: int, H: np.ndarray,
              pstar: np.ndarray, fstar: float, loss_rec: Any, final_loss: np.ndarray, diverged: np.ndarray, *,
              count: int | None = None, hyper: Sequence | None = None,
              queue: Any = None) -> Callable[[], Callable[[], None]]:
        """Prepare minibatch training of blocks of configurations on a linear regression;
        returns ``run`` (so that callers can time the training alone), whose call
        starts it and returns ``wait``, after which the outputs are in place."""

    def pipeline(self, jobs: Iterable[tuple[Key, Callable[[Any], Callable[[], Value]]]]
                 ) -> Iterator[tuple[Key, Value]]:
        """Run ``jobs`` (key, start), where ``start(queue)`` starts a job and returns
        its ``finish``; yield ``(key, finish())`` in order. The GPU keeps two jobs
        in flight on two streams; the host backends run one after the other."""


def get(name: Any, allowed: Sequence[str], what: str) -> Backend:
    """The backend called ``name``, which must be one of ``allowed`` (those that can
    run ``what``): a ``ValueError`` listing them otherwise, and the backend's own
    ``ImportError`` when it cannot run here (e.g. no GPU)."""
    if not isinstance(name, str) or name not in allowed:
        raise ValueError(f"backend must be one of {tuple(allowed)} for {what}, got {name!r}")
    backend = importlib.import_module(f"{__package__}.{name}")
    backend.require()
    return backend


def nothing_missing() -> str | None:
    """:meth:`Backend.missing` of a host backend (the reference, the CPU): None, it runs wherever rmsnum does."""
    return None


def nothing_required() -> None:
    """:meth:`Backend.require` of a host backend: nothing to check."""


def host_kernel_form(objective: Any, dtype: Any) -> tuple[tuple | None, tuple]:
    """:meth:`Backend.kernel_form` on the host: a user objective's CPU-compiled functions."""
    if isinstance(objective, Objective):
        return objective.compiled(), objective._kernel_args(dtype)
    return None, objective._kernel_args(dtype)


def done() -> None:
    """The ``wait`` of work that is already finished (the host backends)."""


def in_order(jobs: Iterable[tuple[Key, Callable[[Any], Callable[[], Value]]]]) -> Iterator[tuple[Key, Value]]:
    """:meth:`Backend.pipeline` for a backend that runs at once: one job after the other."""
    for key, start in jobs:
        yield key, start(None)()
