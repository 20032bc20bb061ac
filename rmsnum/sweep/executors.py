"""Running a plan's chunks: here on a backend (the CPU, or the GPU with two chunks in flight), or on a Dask cluster.

The executors differ only in where and in which order chunks run; each chunk
is :func:`rmsnum.sweep.chunk.start_chunk` on a backend (its
:meth:`~rmsnum.backends.base.Backend.pipeline` decides how many are in
flight; Dask runs each on a worker's CPU), so the results do
not depend on the executor (CUDA aside: fused multiply-adds). This module also
checks that the results fit in memory, saves each finished chunk in the
checkpoint (and skips those found there), shows the progress bar, and says
what ran the sweep (:func:`provenance`). Dask itself lives in
:mod:`rmsnum.dask_executor`, imported only when a sweep uses it.
"""

from __future__ import annotations

import datetime
import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._config import MEMORY_FRACTION
from .._version import __version__
from ..checkpoint import Checkpoint
from ..dask_executor import ClusterLostError
from ..backends import base
from .chunk import empty_outputs, expected_outputs, run_chunk, start_chunk
from .layout import available_memory, result_nbytes
from .plan import Plan, chunk_bounds, fingerprint

BACKENDS = ("cpu", "cuda", "dask")


def check_backend(backend: Any) -> None:
    """Check ``backend`` before any work: a ``ValueError`` for an unknown name, the CUDA
    backend's error when it cannot run here, and Dask's checks for ``"dask"`` or a Client."""
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} or a dask.distributed.Client, got {backend!r}"
                             + (" (the reference runs one configuration: rn.simulate or rn.train)"
                                if backend == "reference" else ""))
        if backend != "dask":
            base.get(backend, BACKENDS, "a sweep")
            return
    from .. import dask_executor

    dask_executor.check_backend(backend, BACKENDS)


def execute_plan(plan: Plan, name: str, backend: Any, checkpoint: Path | None,
                 progress: bool) -> dict[str, np.ndarray]:
    """Run every chunk of ``plan`` not yet in ``checkpoint`` (after checking
    that the results fit in memory); the outputs in flat grid order.

    The checkpoint directory is locked for the whole run; each chunk is saved
    as soon as it finishes, so an error or a kill loses at most the chunks in
    flight."""
    need = result_nbytes(plan)
    available = available_memory()
    if available is not None and need > MEMORY_FRACTION * available:
        raise MemoryError(
            f"this sweep's results need {need / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB of memory "
            "is available; record less (record='final', or record=k with a larger k), sweep a smaller grid, "
            "or split the grid into several sweeps, each with its own checkpoint= file"
        )
    if checkpoint is None:
        return _run_chunks(plan, backend, None, progress)
    arithmetic = "cuda" if backend == "cuda" else "cpu"
    store = Checkpoint(checkpoint, fingerprint(plan, name, arithmetic), plan.n_chunks,
                       lambda c: expected_outputs(plan, c))
    with store:
        return _run_chunks(plan, backend, store, progress)


def _run_chunks(plan: Plan, backend: Any, store: Checkpoint | None, progress: bool) -> dict[str, np.ndarray]:
    out = empty_outputs(plan, plan.size)
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
        else:  # here: on the CPU reporting progress while a chunk runs, on the GPU two chunks in flight
            kernels = base.get(backend, ("cpu", "cuda"), "a sweep")
            report = None if bar is None or backend == "cuda" else bar.update
            chunks = kernels.pipeline((c, functools.partial(start_chunk, plan, c, kernels, report=report))
                                      for c in todo)
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


def _chunk_count(plan: Plan, chunk: int) -> int:
    lo, hi = chunk_bounds(plan, chunk)
    return hi - lo


def _place(plan: Plan, out: dict[str, np.ndarray], chunk: int, outputs: dict[str, np.ndarray]) -> None:
    lo, hi = chunk_bounds(plan, chunk)
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


def _execute(plan: Plan, todo: list[int], client: Any):
    """Yield (chunk, outputs) as chunks finish on ``client``'s Dask cluster;
    :class:`ClusterLostError` when the cluster loses chunks."""
    from .. import dask_executor

    return dask_executor.execute(client, run_chunk, plan, todo)


def _dask_client(backend: Any):
    """None for the cpu and cuda backends, the given Client, or a Client of a new local cluster."""
    if isinstance(backend, str) and backend in ("cpu", "cuda"):
        return None
    from .. import dask_executor

    return dask_executor.client_for(backend)


def _close_local_client(client: Any) -> None:
    """Close the client of a temporary local cluster, and the cluster with it."""
    from .. import dask_executor

    dask_executor.close(client)


def provenance(backend: Any, dtype: np.dtype, seed: int | None, chunk_size: int) -> dict:
    """What ran a sweep, for its result: rmsnum's version, the backend, dtype, seed, chunk size and date."""
    return {
        "rmsnum": __version__,
        "backend": backend if isinstance(backend, str) else "dask",
        "dtype": dtype.name,
        "seed": seed,
        "chunk_size": chunk_size,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
