"""sweep(): every combination of a grid of hyperparameters, as fused compiled kernels.

A sweep is planned in Python and run in chunks of configurations; each chunk
is one call of the kernel that :func:`rmsnum.simulate` uses, so every
configuration of a sweep gives, bit for bit, what :func:`rmsnum.simulate`
gives with the same hyperparameters. The engine, one job a module:

- :mod:`.plan`: the grid's axes, groups of configurations that share a kernel, a plan's fingerprint;
- :mod:`.layout`: configurations packed into blocks of SIMD lanes, and chunk sizes from memory;
- :mod:`.chunk`: one chunk on a backend (pack, run or enqueue, unpack);
- :mod:`.executors`: all chunks, here, on the GPU or on Dask, with checkpoint and progress bar;
- :mod:`.api`: the public :func:`sweep`, which checks its arguments and labels the result.

:func:`rmsnum.train_sweep` shares the plan, layout and executors. Checkpoints
live in :mod:`rmsnum.checkpoint`, results in :mod:`rmsnum.results`, and the
tuning constants in :mod:`rmsnum._config`.
"""

from .api import sweep
from .chunk import in_slices
from .executors import BACKENDS
from .layout import result_nbytes
from .plan import SPECIAL_AXES

__all__ = ["BACKENDS", "SPECIAL_AXES", "in_slices", "result_nbytes", "sweep"]
