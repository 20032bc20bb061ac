"""Where Dask pays off: ``rn.sweep`` on a local Dask cluster against ``backend="cpu"``.

Run from the repository root::

    python benchmarks/dask_speed.py           # about two minutes on 2 cores
    python benchmarks/dask_speed.py --quick   # one repetition, fewer sizes

It prints two tables and writes nothing.

The problem
-----------
The chapter's RMSProp on its 2-D quadratic from (-5, -2), float64,
``record="final"``, on a square grid ``lr = logspace(-3, 0, side)`` x
``gamma = linspace(0.5, 0.999, side)``, for several sizes and step counts.

What is timed
-------------
start-up
    ``rn.local_cluster(n_workers=cores)`` (worker processes started), then the
    first sweep on it (each worker imports rmsnum and loads the compiled
    kernels from Numba's cache), then closing it.
sweeps
    ``cpu``: the sweep in this process on all cores. ``dask, reused``: the
    same sweep on the cluster above, in 4 chunks per worker (each worker one
    thread, ``NUMBA_NUM_THREADS=1``), after an untimed sweep of the same
    size. ``dask, new``: ``backend="dask"``, which starts and closes a cluster
    of its own each call (start-up included). Medians over repetitions; every
    result is checked equal to the cpu one, bit for bit.

On one machine Dask spreads chunks over the same cores that ``cpu`` already
uses, so it cannot be faster there; it pays off when the cluster has more
cores than this machine, once a sweep is long enough to hide the scheduling
cost of each chunk (the ``dask/cpu`` column shows how long that is).

The asv class :class:`DaskSweep` times a sweep on a reused local cluster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable

import numpy as np

import rmsnum as rn

if __package__:  # imported by asv as benchmarks.dask_speed
    from .common import print_table
else:  # run as a script
    from common import print_table


def grid(side: int) -> dict[str, np.ndarray]:
    return {"lr": np.logspace(-3, 0, side), "gamma": np.linspace(0.5, 0.999, side)}


def run(side: int, steps: int, backend: Any = "cpu", chunks: int = 1) -> rn.SweepResult:
    chunk_size = None if chunks == 1 else -(-side * side // chunks)
    return rn.sweep(rn.RMSProp, rn.quadratic_2d(), (-5.0, -2.0), steps, grid(side), progress=False,
                    backend=backend, chunk_size=chunk_size)


def median_time(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Median seconds of ``reps`` calls of ``fn`` after an untimed one; and its last result."""
    result = fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class DaskSweep:
    """asv: a sweep on a local cluster that stays up between timings (start-up not timed)."""

    params = ([64, 256], [100, 1000])
    param_names = ["side", "steps"]
    timeout = 240

    def setup(self, side: int, steps: int) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise NotImplementedError("needs dask.distributed") from None
        self.client = rn.local_cluster(dashboard=False)
        self.chunks = 4 * cores()
        run(side, steps, self.client, self.chunks)  # workers load the kernels

    def teardown(self, side: int, steps: int) -> None:
        self.client.close()

    def time_reused_cluster(self, side: int, steps: int) -> None:
        run(side, steps, self.client, self.chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, fewer sizes")
    args = parser.parse_args(argv)
    reps = 1 if args.quick else 3
    sizes = [(64, 100), (256, 1000)] if args.quick else [(32, 100), (64, 1000), (256, 100), (256, 1000),
                                                         (512, 1000)]
    n = cores()
    chunks = 4 * n
    print(f"rmsnum {rn.__version__}, {n} cores, {reps} repetition(s); dask: {n} workers x 1 thread, {chunks} chunks")

    run(32, 10)  # the cpu kernels: compiled or loaded from the cache, never timed
    start = time.perf_counter()
    client = rn.local_cluster(dashboard=False)
    started = time.perf_counter() - start
    start = time.perf_counter()
    run(32, 10, client, chunks)
    first = time.perf_counter() - start
    rows = [("sweep", "configs", "steps", "cpu s", "dask reused s", "dask/cpu", "dask new s")]
    try:
        for side, steps in sizes:
            cpu_s, expected = median_time(lambda side=side, steps=steps: run(side, steps), reps)
            dask_s, remote = median_time(lambda side=side, steps=steps: run(side, steps, client, chunks), reps)
            assert np.array_equal(remote.final_x, expected.final_x, equal_nan=True)
            new = ""
            if (side, steps) in (sizes[0], sizes[-1]):
                start = time.perf_counter()
                fresh = run(side, steps, "dask", chunks)
                new = f"{time.perf_counter() - start:.2f}"
                assert np.array_equal(fresh.final_x, expected.final_x, equal_nan=True)
            rows.append((f"{side}x{side}", f"{side * side}", f"{steps}", f"{cpu_s:.3f}", f"{dask_s:.3f}",
                         f"{dask_s / cpu_s:.1f}", new))
    finally:
        start = time.perf_counter()
        client.close()
        closed = time.perf_counter() - start
    print("start-up of a local cluster (not in the sweep times below)")
    print_table([("start workers", "first sweep (workers load kernels)", "close"),
                 (f"{started:.2f} s", f"{first:.2f} s", f"{closed:.2f} s")])
    print("sweeps (medians; results equal to cpu bit for bit)")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
