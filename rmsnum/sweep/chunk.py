"""One chunk of a sweep on a backend: pack each group into blocks, run its kernel, unpack in flat grid order.

A chunk is a contiguous range of the grid's configurations in C order. Each
of its groups is one call of the same kernel that :func:`rmsnum.simulate`
uses, with blocks of configurations moving through each step together in SIMD
lanes and blocks spread over all cores (``prange``); so every configuration
of a sweep gives, bit for bit, what :func:`rmsnum.simulate` gives with the
same hyperparameters. On the CPU a chunk runs here and now (in slices when
progress is reported, :func:`in_slices`); on the GPU its kernels are enqueued
on a stream.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .._config import SLICE_SECONDS
from ..backends.base import Backend
from .layout import blocked, blocks, pack, unpacker
from .plan import Group, Plan, chunk_bounds

_BLOCKED_ARGS = frozenset(("x", "S", "d", "dec", "C", "seeds", "loss_rec", "x_rec", "final_loss",
                           "diverged", "hit"))
"""The arguments of :meth:`rmsnum.backends.base.Backend.run_objective` that have a leading block axis."""


def empty_outputs(plan: Plan, count: int) -> dict[str, np.ndarray]:
    """The output arrays of ``count`` configurations, in flat grid order (unset but ``loss`` and ``steps_to_tol``)."""
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


def expected_outputs(plan: Plan, chunk: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{name: (shape, dtype)} of the outputs of one chunk."""
    lo, hi = chunk_bounds(plan, chunk)
    return {key: ((hi - lo,) + arr.shape[1:], arr.dtype) for key, arr in empty_outputs(plan, 0).items()}


def run_chunk(plan: Plan, chunk: int, report: Callable[[int], Any] | None = None) -> dict[str, np.ndarray]:
    """Run one chunk of configurations on the CPU; the outputs are in flat grid order.
    ``report(n)``, when given, is called as each slice of n configurations finishes."""
    from ..backends import cpu

    return start_chunk(plan, chunk, cpu, report=report)()


def start_chunk(plan: Plan, chunk: int, backend: Backend, queue: Any = None,
                report: Callable[[int], Any] | None = None) -> Callable[[], dict[str, np.ndarray]]:
    """Start one chunk on ``backend``: on the CPU it runs here and now (in slices
    when ``report`` is given, see :func:`in_slices`); on the GPU its kernels are
    only enqueued on ``queue``. Returns ``finish``, which waits for the chunk and
    gives its outputs in flat grid order."""
    lo, hi = chunk_bounds(plan, chunk)
    flat = np.arange(lo, hi)
    index = np.unravel_index(flat, plan.shape)
    out = empty_outputs(plan, hi - lo)
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
            finishers.append(_start_group(plan, group, tuple(ix[members] for ix in index), members, out, backend,
                                          queue, report))

    def finish() -> dict[str, np.ndarray]:
        for finish_group in finishers:
            finish_group()
        return out
    return finish


def _start_group(plan: Plan, group: Group, index: tuple[np.ndarray, ...], members: np.ndarray,
                 out: dict[str, np.ndarray], backend: Backend, queue: Any,
                 report: Callable[[int], Any] | None) -> Callable[[], None]:
    """Pack one group's configurations into blocks and start them on ``backend``
    (see :func:`start_chunk`); the returned ``finish`` unpacks the outputs."""
    if plan.training is not None:
        return plan.training.start_group(plan, group, index, members, out, backend, queue, report)
    dt = plan.dtype
    count = members.size
    n = plan.objective.dim
    names = list(plan.axes)
    x0 = plan.axes["x0"][index[names.index("x0")]] if "x0" in plan.axes else np.broadcast_to(plan.x0, (count, n))
    packed = pack(plan, group, index, x0)
    nb, width = packed[0].shape[0], packed[0].shape[2]
    seeds = None
    if plan.objective.noise > 0:
        seed_col = (plan.axes["seed"][index[names.index("seed")]] if "seed" in plan.axes
                    else np.full(count, plan.seed, np.uint64))
        seeds = blocked(seed_col.astype(np.uint64), nb, width)
    final_loss = np.empty((nb, width), dt)
    diverged = np.empty((nb, width), np.int64)
    loss_rec = None if plan.every is None else np.full((nb, plan.n_recorded, width), np.nan, dt)
    hit = None if plan.tol is None else np.full((nb, plan.tol.size, width), -1, np.int64)
    tol = np.empty(0, dt) if plan.tol is None else plan.tol.astype(dt)
    functions, P = backend.kernel_form(plan.objective, dt)
    args = (group.representative.rule, functions, *packed, P, plan.objective.noise, seeds,
            0.0 if plan.tol is None else plan.objective.f_star, tol, plan.steps, plan.every or 1, loss_rec, None, final_loss, diverged, hit)
    unpack = unpacker(out, members, {"final_x": packed[0], "final_loss": final_loss, "diverged_at": diverged,
                                     "loss": loss_rec, "steps_to_tol": hit})
    named = inspect.signature(backend.run_objective).bind(*args).arguments
    waits = []

    def run(lo: int, hi: int) -> None:
        waits.append(backend.run_objective(**{k: blocks(arg, lo, hi) if k in _BLOCKED_ARGS else arg
                                              for k, arg in named.items()}, queue=queue))
    in_slices(nb, width, count, run, report)

    def finish() -> None:
        for wait in waits:
            wait()
        unpack()
    return finish


def in_slices(nblocks: int, width: int, count: int, run: Callable[[int, int], None],
              report: Callable[[int], Any] | None) -> None:
    """Call ``run(lo, hi)`` over the ``nblocks`` blocks (of ``width`` lanes, ``count``
    configurations in all): at once without ``report``; with it, in slices of about
    :data:`rmsnum._config.SLICE_SECONDS` each (the first one small, the next sized from the time
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
