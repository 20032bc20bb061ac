"""How a sweep's configurations lie in memory: blocks of SIMD lanes, and how many fit in a chunk.

The kernels take every per-configuration array as blocks of
:data:`rmsnum._config.LANES` lanes, shape ``(blocks, ..., lanes)``; this module
packs a group's starting points, state slots and coefficients into that layout
(:func:`pack`), slices and unpacks it, and sizes chunks from the bytes their
results need (:func:`default_chunk_size`, :func:`result_nbytes`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._config import CHUNK_BYTES, LANES, MAX_CHUNK_SIZE, SMALL_GROUP, ZERO_SLOTS_MAX_DIM
from .._neutral import Neutral
from .plan import Group, Plan, columnar


def blocked(column: np.ndarray, nb: int, width: int) -> np.ndarray:
    """(count, ...) per-configuration values -> (blocks, ..., width), padding with the last one."""
    count = column.shape[0]
    padded = np.concatenate([column, np.repeat(column[-1:], nb * width - count, axis=0)])
    return np.ascontiguousarray(np.moveaxis(padded.reshape((nb, width) + column.shape[1:]), 1, -1))


def _unblocked(arr: np.ndarray, count: int) -> np.ndarray:
    return np.moveaxis(arr, -1, 1).reshape((arr.shape[0] * arr.shape[-1],) + arr.shape[1:-1])[:count]


def lane_slots(spec: Any, present: tuple[str, ...], shape: tuple[int, int, int], dtype: Any,
               fill: Callable[[str], np.ndarray]) -> tuple:
    """The state slots of ``spec`` (a rule of the registry) in blocks of ``shape``
    (blocks, n, lanes): ``fill(slot)`` for a slot in ``present``, None for another;
    but single runs (one lane) of at most :data:`rmsnum._config.ZERO_SLOTS_MAX_DIM`
    coordinates keep the rule's :attr:`~rmsnum.rules.Rule.zero_slots` as arrays of
    zeros, so that every option set of the rule shares their kernel."""
    zeros = shape[2] == 1 and shape[1] <= ZERO_SLOTS_MAX_DIM
    return tuple(fill(slot) if slot in present else np.zeros(shape, dtype) if zeros and slot in spec.zero_slots
                 else None for slot in spec.slots)


def pack(plan: Plan, group: Group, index: tuple[np.ndarray, ...], x0: np.ndarray) -> tuple:
    """Blocks of the starting points ``x0`` (count, n) and of the optimizer state
    and coefficients of the configurations at ``index``: ``(x, S, d, dec, C, like)``, ``S`` the
    tuple of the rule's state slots (None for one the group's optimizers do not keep),
    as the kernels take them: blocks of :data:`LANES` lanes, or of one lane for
    fewer than :data:`rmsnum._config.SMALL_GROUP` configurations."""
    dt = plan.dtype
    count, n = x0.shape
    width = LANES if count >= SMALL_GROUP else 1
    nb = -(-count // width)
    opt = columnar(plan, group, index)

    def column(value: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (count,)).astype(dt)

    x = blocked(x0.astype(dt), nb, width)
    slots = lane_slots(opt.spec, group.representative.slots, (nb, n, width), dt,
                       lambda slot: blocked(np.repeat(column(opt._initial(slot))[:, None], n, axis=1), nb, width))
    decays = opt._decays()
    d = dec = None
    if decays is not None:
        d = blocked(np.stack([column(c) for c in opt._initial_denominators()], axis=1), nb, width)
        dec = blocked(np.stack([column(c) for c in decays], axis=1), nb, width)
    like = group.representative.coefficients(dt)
    numeric = [column(c) for c in opt._coefficients() if not isinstance(c, Neutral)]
    C = blocked(np.stack(numeric, axis=1) if numeric else np.empty((count, 0), dt), nb, width)
    return (x, slots, d, dec, C, like)


def unpacker(out: dict[str, np.ndarray], members: np.ndarray, blocked: dict[str, np.ndarray]) -> Callable[[], None]:
    """A function that copies blocked kernel outputs (name -> array) into ``out`` at ``members``."""
    def unpack() -> None:
        for key, arr in blocked.items():
            if arr is not None:
                out[key][members] = _unblocked(arr, members.size)
    return unpack


def blocks(arr: Any, lo: int, hi: int) -> Any:
    """Blocks lo..hi of a blocked array (a C-contiguous view), or None for None; of each
    array of a tuple (the state slots)."""
    if isinstance(arr, tuple):
        return tuple(blocks(item, lo, hi) for item in arr)
    return None if arr is None else arr[lo:hi]


def available_memory() -> int | None:
    """Bytes of memory available to this process (Linux), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _bytes_per_config(dim: int, dtype: np.dtype, n_recorded: int, tol: np.ndarray | None) -> int:
    per_config = (dim + 1 + n_recorded) * dtype.itemsize + 8
    return per_config + (0 if tol is None else tol.size * 8)


def result_nbytes(plan: Plan) -> int:
    """Bytes the result arrays of a sweep will take."""
    return plan.size * _bytes_per_config(plan.objective.dim, plan.dtype, plan.n_recorded, plan.tol)


def default_chunk_size(dim: int, dtype: np.dtype, steps: int, every: int | None, tol: np.ndarray | None,
                       largest: int = MAX_CHUNK_SIZE) -> int:
    """Configurations per chunk: at most ``largest``, fewer when their results would pass
    :data:`rmsnum._config.CHUNK_BYTES`; a multiple of the lanes of a block."""
    n_recorded = 0 if every is None else steps // every + 1
    fit = CHUNK_BYTES // _bytes_per_config(dim, dtype, n_recorded, tol)
    return max(LANES, min(largest, fit) // LANES * LANES)
