"""Every tuning constant and flag of rmsnum, in one place; the flags are read from the environment once, at import.

The modules that use a constant import it by the same name (``from .._config import LANES``), so
``rmsnum.backends.cpu.LANES`` still names it. Nothing here imports from rmsnum (the lowest layer).

Environment variables (read when rmsnum is first imported; setting them later changes nothing):

``RMSNUM_NO_CACHE=1``
    Compile rmsnum's CPU kernels in every process instead of caching them on disk (the default caches
    them beside the sources, or in ``NUMBA_CACHE_DIR``; a cold start compiles for seconds, a warm one
    loads in well under one).
``RMSNUM_FASTMATH=1``
    Compile rmsnum's CPU kernels (the rules, the built-in objectives and the kernels around them) with
    LLVM's fast-math flags :data:`FASTMATH_FLAGS` (default off). **This changes results**: LLVM may
    reorder sums, contract ``a * b + c`` into fused multiply-adds and use approximate reciprocals and
    functions, so runs no longer equal the NumPy reference (nor ``backend="reference"``) bit for bit,
    and a sweep no longer equals :func:`rmsnum.simulate` bit for bit unless both run with the flag.
    Divergence is still detected (the flags keep NaN and inf semantics). Kernels cached with one
    setting are recompiled under the other, and a sweep checkpoint records the setting (resuming under
    the other one starts afresh). Dask workers read their own environment: set it for them too.

A flag accepts ``1``, ``true``, ``yes``, ``on`` or ``0``, ``false``, ``no``, ``off`` (any case);
unset or empty means the default. Any other value raises :class:`ValueError` at import, naming the
variable and the values allowed, rather than guessing what was meant.

>>> from rmsnum import _config
>>> _config.LANES, _config.MAX_STEPS == 2**62
(64, True)
"""

from __future__ import annotations

import os

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _flag(name: str) -> bool:
    """The boolean environment variable ``name``: False when unset or empty; ValueError for other words."""
    raw = os.environ.get(name, "").strip()
    if raw.lower() in _TRUE:
        return True
    if raw == "" or raw.lower() in _FALSE:
        return False
    raise ValueError(f"environment variable {name}={raw!r} is not a flag; allowed: "
                     f"{', '.join(_TRUE)} (on) or {', '.join(_FALSE)} (off), any case, or unset")


# --------------------------------------------------------------------------- flags (environment)

CACHE: bool = not _flag("RMSNUM_NO_CACHE")
"""Whether rmsnum's CPU kernels are cached on disk (``RMSNUM_NO_CACHE=1`` turns it off; default on)."""

FASTMATH: bool = _flag("RMSNUM_FASTMATH")
"""Whether rmsnum's CPU kernels compile with :data:`FASTMATH_FLAGS` (``RMSNUM_FASTMATH=1``; default off;
changes results, see above)."""

FASTMATH_FLAGS: tuple[str, ...] = ("reassoc", "contract", "arcp", "afn")
"""LLVM fast-math flags that :data:`FASTMATH` turns on: Numba's ``fastmath=True`` but ``nnan``, ``ninf`` and
``nsz``. The first two let LLVM delete the finiteness checks that report divergence; ``nsz`` with ``reassoc``
lets it fold away the terms through which an overflow reaches them (measured: a diverging run then went
unreported)."""

JIT_FASTMATH: set[str] | bool = set(FASTMATH_FLAGS) if FASTMATH else False
"""The ``fastmath=`` argument of every ``numba.njit`` of rmsnum's CPU kernels (a set of flags, or False)."""

# --------------------------------------------------------------------------- CPU backend (backends/cpu.py)

PARALLEL_THRESHOLD = 1 << 16
"""Arrays with at least this many elements are stepped with ``prange`` (under a
thread-safe threading layer, see :func:`rmsnum.backends.cpu.thread_safe_layer`); elements."""

MAX_UNROLLED_DIM = 8
"""Quadratics of up to this many coordinates get a kernel compiled for their dimension; coordinates."""

LANES = 64
"""Configurations per block of the multi-configuration kernel: they move through
each step together in SIMD lanes (a single trajectory runs in a serial instance with
one lane); configurations, a compile-time constant of the kernels."""

ZERO_SLOTS_MAX_DIM = 1024
"""A single run (one lane) of at most this many coordinates keeps the slots that
its options leave unused as arrays of zeros, where the rule allows it
(:attr:`rmsnum.rules.Rule.zero_slots`): all option sets of a rule then share one
kernel; for larger problems the extra memory traffic would cost more than the
compilation saves; coordinates."""

SMALL_GROUP = 16
"""A sweep's group of configurations (those sharing a kernel specialisation) with
fewer than this many configurations runs in blocks of one lane: the kernel of a
single run, compiled once per rule, slot pattern and dtype and shared with
:func:`rmsnum.simulate` and :func:`rmsnum.train`, where a block of :data:`LANES`
lanes would compute mostly padding (and compile a kernel of its own); configurations."""

# --------------------------------------------------------------------------- CUDA backend (backends/cuda.py)

THREADS_PER_BLOCK = 128
"""Threads per CUDA block of every kernel, a power of 2 (tests lower it so launches span several blocks); threads."""

STEP_BLOCKS = 8192
"""At most this many blocks for ``step``; each thread strides over the rest; CUDA blocks."""

WIDE_DIM = 16
"""Quadratics with more coordinates than this run one CUDA block per configuration, its
threads sharing the coordinates, instead of one thread per configuration; coordinates."""

# --------------------------------------------------------------------------- sweeps (sweep/)

MAX_STEPS = 2**62
"""The most updates a configuration may run (step counts are int64 in the kernels); updates."""

MAX_CHUNK_SIZE = 1 << 18
"""The most configurations in a default chunk of a CPU or Dask sweep; configurations."""

MAX_CUDA_CHUNK_SIZE = 1 << 21
"""The most configurations in a default chunk on the GPU, where a chunk must fill the device; configurations."""

CHUNK_BYTES = 256 << 20
"""A default chunk holds fewer configurations when their results (recorded losses above all) would pass this; bytes."""

MEMORY_FRACTION = 0.8
"""A sweep refuses to start (MemoryError) when its results need more than this share of the available memory;
a fraction of ``MemAvailable``."""

SLICE_SECONDS = 0.5
"""With a progress bar, a CPU chunk runs in slices of blocks of about this long each, so that the bar moves; seconds."""

# --------------------------------------------------------------------------- Dask (dask_executor.py)

NO_WORKERS_TIMEOUT = "60s"
"""A task of a cluster started here fails after waiting this long with no worker
at all (Dask's ``distributed.scheduler.no-workers-timeout``), instead of forever; a Dask duration."""

# --------------------------------------------------------------------------- data, results, analysis

DOWNLOAD_TIMEOUT = 30.0
"""How long a dataset download may wait for the server (``urllib`` timeout); seconds."""

READ_CHUNK_BYTES = 1 << 24
"""A saved result's arrays are read from their archive in pieces of at most this size; bytes."""

ROWS_PER_CHUNK = 2_000_000
"""Rate fits hold at most this many (configuration x candidate window) rows at once; rows."""
