"""sweep(): the public function; it checks every argument, then plans, executes and labels the result.

Nothing runs before every argument has been checked: a bad call raises
``TypeError`` or ``ValueError`` naming the argument (and the grid axis and
index of a bad value) and touches no data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _validation as v
from .._config import MAX_CHUNK_SIZE, MAX_CUDA_CHUNK_SIZE, MAX_STEPS
from ..checkpoint import check_path
from ..objectives import Objective, Quadratic
from ..optimizers import Optimizer
from ..results import SweepResult, _item, record_interval
from .executors import check_backend, execute_plan, provenance
from .layout import default_chunk_size
from .plan import grid_axes, make_plan, optimizer_and_fixed


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
    optimizer : optimizer class, preset or instance
        E.g. ``rn.RMSProp`` or ``rn.RMSProp.torch``; the grid and ``fixed``
        use its argument names (``alpha`` for the torch preset). An instance,
        e.g. ``rn.RMSProp.torch(lr=0.01, momentum=0.9)``, fixes every field the
        grid does not override; the grid and ``fixed`` then use the field names
        (``gamma``, not ``alpha``), and the result's ``fixed`` lists the fields.
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
        Keep only the final values, the loss at every step, or the loss every
        k-th step (steps 0, k, 2k, ...): the meaning of ``record=`` in
        :func:`rmsnum.simulate` and :func:`rmsnum.train` too (see :class:`rmsnum.results.Result`).
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
        :data:`rmsnum._config.SLICE_SECONDS` so that the bar moves within it.
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

    An instance whose fields the grid overrides (here the learning rate of a
    torch-style optimizer with momentum):

    >>> opt = rn.RMSProp.torch(lr=0.01, alpha=0.9, momentum=0.5)
    >>> res = rn.sweep(opt, rn.quadratic_2d(), x0=(-5.0, -2.0), steps=100, grid={"lr": [0.01, 0.1]},
    ...                progress=False)
    >>> res.optimizer, res.fixed["momentum"], res.fixed["eps_in_sqrt"]
    ('RMSProp', 0.5, False)
    """
    optimizer, name, names, fixed = optimizer_and_fixed(optimizer, fixed, grid)
    if not isinstance(objective, (Quadratic, Objective)):
        raise TypeError(f"objective must be a Quadratic or an Objective, got {type(objective).__name__}")
    steps = v.integer("steps", steps)
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS} (the kernels count steps in int64), got {steps}")
    dt = v.float_dtype("dtype", dtype)
    axes = grid_axes(grid, names, fixed, objective.dim)
    if "x0" in axes:
        if x0 is not None:
            raise ValueError("give x0=None when the grid has an 'x0' axis")
        start = None
    else:
        start = v.start_point("x0", x0, objective.dim, np.float64)
    if "seed" in axes and seed is not None:
        raise ValueError("give seed=None when the grid has a 'seed' axis")
    seed_value = v.seed("seed", seed) or 0
    every = record_interval(record)
    tols = _tolerances(tol)
    if tols is not None and objective.f_star is None:
        raise ValueError(f"tol needs the minimum value f* of the objective {objective.name!r}: "
                         "give Objective(f_star=...) or Objective(minimum=...)")
    check_backend(backend)
    largest = MAX_CUDA_CHUNK_SIZE if isinstance(backend, str) and backend == "cuda" else MAX_CHUNK_SIZE
    chunk = (default_chunk_size(objective.dim, dt, steps, every, tols, largest) if chunk_size is None
             else v.integer("chunk_size", chunk_size))
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")
    progress = v.boolean("progress", progress)
    checkpoint = check_path("checkpoint", checkpoint)
    plan = make_plan(optimizer, fixed, axes, objective, start, seed_value, steps, every, tols, dt, chunk)

    out = execute_plan(plan, name, backend, checkpoint, progress)
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
        provenance=provenance(backend, dt, seed if "seed" not in axes else None, chunk),
    )
