"""Shared pieces of the benchmarks: seeded datasets, JIT warm-up, in-run ratios.

Datasets are append-only: a dataset, once a benchmark uses it, never changes
(same name, same seed, same values on every commit), so a point on the
dashboard differs from its neighbours only because the code did. A new dataset
gets a new name in :data:`SEEDS`; an old name is never reused or re-seeded.

The standalone report scripts (``core_speed.py``, ``sweep_speed.py``,
``train_speed.py``, ``cuda_speed.py``) hold the baselines (the NumPy versions,
the bandwidth probe); the asv suites import them from there.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable

import numpy as np

SEEDS = {
    "step-vectors-v1": 20261124,  # x and g of the in-place step
    "quadratic-dense-v1": 20261125,  # eigenvectors of the dense quadratics
    "logistic-data-v1": 20261126,  # the classification data of the logistic-regression benchmark
}
"""Seed of every dataset, by name. Append-only: add names, never change a value."""



def step_vectors(n: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``g`` for the step benchmarks: standard normal, the same for every commit."""
    rng = np.random.default_rng([SEEDS["step-vectors-v1"], n])
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    return x, g


def warm_up(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` once so that JIT compilation (or loading the kernel from Numba's cache),
    page faults and thread start-up happen before asv times it; returns its result."""
    return fn()


def ratio(numerator: Callable[[], Any], denominator: Callable[[], Any], reps: int = 7, *,
          per_call: tuple[float, float] = (1.0, 1.0)) -> float:
    """Median time of ``numerator`` over median time of ``denominator``, timed in turn.

    The two calls alternate within each repetition so that a change in the
    machine's load affects both alike; each timed call follows an untimed one
    of the same function (idle worker threads take milliseconds to wake).
    ``per_call`` divides each median, e.g. by the steps each call runs when
    the baseline runs fewer.
    """
    warm_up(numerator)
    warm_up(denominator)
    times: list[list[float]] = [[], []]
    for _ in range(reps):
        for k, fn in enumerate((numerator, denominator)):
            fn()
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return (statistics.median(times[0]) / per_call[0]) / (statistics.median(times[1]) / per_call[1])


def require_gpu() -> None:
    """Raise ``NotImplementedError`` (asv: skipped) unless a real CUDA GPU is usable."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise NotImplementedError("the CUDA simulator is not a GPU")
    try:
        from numba import cuda

        available = cuda.is_available()
    except Exception:  # numba-cuda missing or no driver
        available = False
    if not available:
        raise NotImplementedError("no CUDA GPU")


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows of cells as left-aligned columns, indented by two spaces (for the report scripts)."""
    ncol = max(len(row) for row in rows)
    rows = [row + ("",) * (ncol - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(ncol)]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
