"""The CUDA backend: the rules of :mod:`rmsnum.rules` compiled with ``numba.cuda.jit``.

The same scalar rules and the same kernel parts (:mod:`._parts`) as the CPU
backend, compiled as device functions; no second copy of the math. Kernels:

- ``step``: one in-place update of device arrays of any size, a grid-stride
  loop over elements.
- ``run_objective``: whole trajectories on an objective, one thread per
  configuration with x, the gradient and the state in registers (local arrays
  of the compile-time dimension). A user's :class:`rmsnum.Objective` runs
  its value and gradient as device functions bound into the kernel instance.
  A quadratic of more than :data:`WIDE_DIM` coordinates runs one block per
  configuration whose threads share the coordinates (a single trajectory of a
  large quadratic then runs one thread per element). It takes the blocked layout of
  :func:`rmsnum.backends.cpu.run_objective` (blocks, ..., lanes), so consecutive
  threads read consecutive lanes (coalesced) and the host side of a sweep is
  shared by both backends. :func:`rmsnum.simulate` is this kernel with one
  configuration, :func:`rmsnum.sweep` with many.
- ``train``: minibatch training on a linear regression, one thread per
  configuration with the parameters, the gradient and the state in registers,
  the CPU's arithmetic in the CPU's order; :func:`rmsnum.train` with one
  configuration, :func:`rmsnum.train_sweep` with many.

Differences from the CPU backend: NVVM contracts ``a * b + c`` into fused
multiply-adds, so results agree with the CPU within a few ulp per step rather
than bit for bit; a thread whose run diverges simply stops (no SIMD lane to
keep busy). A coefficient of an option that is off is still folded away at
compile time (the ZERO/ONE pattern is bound into each kernel instance).

Nothing here touches the GPU until a kernel runs: importing this module does
not initialise CUDA, and :func:`require` says what is missing, if anything.
Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the kernels run as
Python, which is how CI tests them.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import numpy as np
from numba import cuda
from numba.core import config

from .. import rules
from .._neutral import ONE, Neutral
from .._validation import on_device
from ..objectives import Objective, _kind, _source
from ._compile import compile_plain, rebind
from ._parts import (_copy_slots, _full_loss, _gather, _get, _objective_value, _quadratic_value, _row, _squares,
                     _store, _views, element_update, norm_clipped)

from .._config import STEP_BLOCKS, THREADS_PER_BLOCK, WIDE_DIM

INSTALL_HINT = 'pip install "rmsnum[cuda]" (numba-cuda with the CUDA 13 toolkit wheels)'


NAME = "cuda"
"""This backend's name, as ``backend=`` spells it."""

def missing() -> str | None:
    """Why the CUDA backend cannot run here, or None when it can.

    Checks, in order: the simulator (always usable), the ``numba-cuda``
    package, and a usable GPU with its driver (this initialises CUDA).
    """
    if config.ENABLE_CUDASIM:
        return None
    if importlib.util.find_spec("numba_cuda") is None:
        return f"the CUDA backend needs the numba-cuda package, which is not installed: {INSTALL_HINT}"
    if not cuda.is_available():
        return ("the CUDA backend found no usable NVIDIA GPU: numba.cuda.is_available() is False "
                "(numba.cuda.detect() says why, e.g. no driver or no device)")
    return None


def require() -> None:
    """Raise ImportError (no numba-cuda) or RuntimeError (no GPU) unless the backend can run."""
    reason = missing()
    if reason is None:
        return
    if "not installed" in reason:
        raise ImportError(reason)
    raise RuntimeError(reason)


def view(name: str, obj: Any, *, writeable: bool = False):
    """A zero-copy Numba view of a device array, checked: float32/float64,
    C-contiguous and, when asked, writeable."""
    if not on_device(obj):
        raise TypeError(f"{name} must be a CUDA device array like x, got {type(obj).__name__}")
    interface = getattr(obj, "__cuda_array_interface__", None)
    arr = obj if interface is None else cuda.as_cuda_array(obj)  # simulator arrays have no interface
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {arr.dtype}")
    if not arr.is_c_contiguous():
        raise ValueError(f"{name} must be C-contiguous")
    if writeable and interface is not None and interface["data"][1]:
        raise ValueError(f"{name} must be writeable (it is updated in place), got a read-only device array")
    return arr


def _extent(arr) -> tuple[int, int]:
    interface = getattr(arr, "__cuda_array_interface__", None)
    if interface is None:  # the simulator's arrays wrap a NumPy array
        return np.lib.array_utils.byte_bounds(arr._ary)
    return interface["data"][0], interface["data"][0] + arr.nbytes


def share_memory(a, b) -> bool:
    """Whether two device arrays' byte ranges overlap."""
    (lo_a, hi_a), (lo_b, hi_b) = _extent(a), _extent(b)
    return lo_a < hi_b and lo_b < hi_a


def _fill_template(arr, value):
    for i in range(cuda.grid(1), arr.size, cuda.gridsize(1)):
        arr[i] = value


_fill = cuda.jit(_fill_template)


def full(shape: tuple[int, ...], value: float, dtype: np.dtype):
    """A new device array of ``shape`` filled with ``value``."""
    arr = cuda.device_array(shape, dtype)
    if arr.size:
        _fill[_blocks(arr.size), THREADS_PER_BLOCK](arr.reshape(-1), np.dtype(dtype).type(value))
    return arr


def _blocks(n: int) -> int:
    return max(1, min(-(-n // THREADS_PER_BLOCK), STEP_BLOCKS))


def _pattern(coefficients: tuple) -> tuple:
    """The ZERO/ONE pattern of a coefficient tuple (None where it is a number)."""
    return tuple(c if isinstance(c, Neutral) else None for c in coefficients)


_device = functools.partial(cuda.jit, device=True)


def _lane_bias(d, dec, blk, j, one):
    """The bias-correction numbers of configuration (blk, j), as a thread keeps
    them: ``(d1, d2, beta1, 1 - beta1, beta2, 1 - beta2)``; all ``one`` when
    ``d`` and ``dec`` are None (a rule without bias correction)."""
    return (_get(d, (blk, 0, j), one), _get(d, (blk, 1, j), one), _get(dec, (blk, 0, j), one),
            _get(dec, (blk, 1, j), one), _get(dec, (blk, 2, j), one), _get(dec, (blk, 3, j), one))


def _lane_start(x, S, C, like, d, dec, blk, j, xw, Sw, one, n):
    """Copy configuration (blk, j) of the blocked ``x`` and state slots ``S``
    into a thread's ``xw`` and ``Sw`` (n, 1); return its coefficients (those of
    ``C`` with the ZERO/ONE pattern ``like``, see :func:`._parts._gather`) and
    its bias numbers (see :func:`_lane_bias`)."""
    for i in range(n):
        xw[i, 0] = x[blk, i, j]
        _copy_slots(Sw, (i, 0), S, (blk, i, j))
    return _gather(C[blk], j, like), _lane_bias(d, dec, blk, j, one)


def _lane_finish(x, S, d, blk, j, xw, Sw, bias, n):
    """Copy a thread's ``xw`` and ``Sw`` back to configuration (blk, j) of ``x``
    and ``S``, and its bias denominators to ``d`` (unless None)."""
    for i in range(n):
        x[blk, i, j] = xw[i, 0]
        _copy_slots(S, (blk, i, j), Sw, (i, 0))
    _store(d, (blk, 0, j), bias[0])
    _store(d, (blk, 1, j), bias[1])


def _lane_advance(x, g, S, c, d, bias, one, n):
    """One update of a thread's configuration: x and the state slots ``S`` (n, 1)
    <- the rule applied with gradient ``g`` (n, 1) and coefficients ``c``; the
    bias denominators of ``bias`` (see :func:`_lane_bias`) advance first unless
    ``d`` is None. Returns ``bias`` advanced."""
    ct = norm_clipped(c, _squares(g, 0, n, c))  # Keras' clipnorm, if on
    if d is None:
        for i in range(n):
            _update(x, g, (i, 0), S, ONE, ONE, ct)  # noqa: F821 - bound per rule
        return bias
    d1 = _debias(bias[0], bias[2], bias[3])  # noqa: F821 - bound per rule
    d2 = _debias(bias[1], bias[4], bias[5])  # noqa: F821
    r1 = one / d1
    r2 = one / d2
    for i in range(n):
        _update(x, g, (i, 0), S, r1, r2, ct)  # noqa: F821
    return (d1, d2, bias[2], bias[3], bias[4], bias[5])


@functools.cache
def _device_parts(rule: Callable) -> dict[str, Any]:
    """Device-function copies of the element update (with ``rule``) and of the helpers."""
    update = _device(rebind(element_update(len(rules.lookup(rule).slots)), rule=compile_plain(rule, _device)))
    debias = compile_plain(rules.debias, _device)
    return {
        "_update": update,
        "_gaussian": compile_plain(rules.gaussian, _device),
        "_debias": debias,
        "_lane_start": _device(rebind(_lane_start, _lane_bias=_device(_lane_bias))),
        "_lane_finish": _device(_lane_finish),
        "_lane_advance": _device(rebind(_lane_advance, _update=update, _debias=debias)),
    }


def _step_template(x, g, S, r1, r2, numeric):
    c = _gather(numeric, 0, LIKE)  # noqa: F821 - bound per instance
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        _update(x, g, i, S, r1, r2, c)  # noqa: F821 - bound per rule


def _run_objective_template(x, S, d, dec, C, P, one, half, sigma, seeds, fstar, tol, steps, every,
                            loss_rec, x_rec, final_loss, diverged, hit):
    """One thread runs one configuration; arguments as :func:`rmsnum.backends.cpu.run_objective`
    (without ``like``, which is bound per instance as LIKE, with DIM, DTYPE,
    NSLOTS (the rule's slot count, at least 1) and the objective's evaluation
    ``_evaluate``). A rule without slots gets ``S = (None,)`` (a kernel argument
    cannot be an empty tuple)."""
    k = cuda.grid(1)
    w = x.shape[2]
    blk = k // w
    j = k - blk * w
    if blk >= x.shape[0]:
        return
    n = DIM  # noqa: F821 - bound per instance
    xw = cuda.local.array((DIM, 1), DTYPE)  # noqa: F821
    gw = cuda.local.array((DIM, 1), DTYPE)  # noqa: F821
    Sw = _views(S, cuda.local.array((NSLOTS, DIM, 1), DTYPE))  # noqa: F821
    c, bias = _lane_start(x, S, C, LIKE, d, dec, blk, j, xw, Sw, one, n)  # noqa: F821 - LIKE bound per instance
    div = -1
    value = one
    for t in range(steps + 1):
        value = _evaluate(P, xw, gw, 0, n, half)  # noqa: F821 - bound per instance
        if loss_rec is not None and t % every == 0:
            loss_rec[blk, t // every, j] = value
        if x_rec is not None and t % every == 0:
            for i in range(n):
                x_rec[blk, t // every, i, j] = xw[i, 0]
        # A non-finite x makes the value non-finite (A is positive definite; a
        # user objective's value is made NaN).
        if not math.isfinite(value):
            div = t
            break
        if hit is not None:
            for q in range(tol.size):
                if hit[blk, q, j] < 0 and value - fstar < tol[q]:
                    hit[blk, q, j] = t
        if t == steps:
            break
        if seeds is not None:
            for i in range(n):
                gw[i, 0] = gw[i, 0] + sigma * DTYPE(_gaussian(seeds[blk, j], 0, t, i))  # noqa: F821
        bias = _lane_advance(xw, gw, Sw, c, d, bias, one, n)  # its device copy, bound per rule
    final_loss[blk, j] = value
    diverged[blk, j] = div
    _lane_finish(x, S, d, blk, j, xw, Sw, bias, n)  # its device copy, bound per instance


def _train_template(p, S, d, dec, C, X, y, order, batch, every, batch_size, last_size, one, H, pstar, fstar,
                    loss_rec, final_loss, diverged, count):
    """One thread trains one configuration of a linear regression; arguments as
    :func:`rmsnum.backends.cpu.train` (without ``like``, bound per instance as
    LIKE with DIM, DTYPE and NSLOTS as in :func:`_run_objective_template`), plus
    ``batch_size`` and ``last_size``, the two minibatch sizes in the working
    dtype, and ``count``, the configurations to run (the first ``count`` of the
    blocked layout; threads beyond, the padding lanes of the last block, return).

    The arithmetic is the CPU's :func:`rmsnum.backends.cpu._train_block` for one
    lane, in the same order: the minibatch gradient summed over its rows in
    order, divided by the minibatch size, then the rule's update; the full-data
    loss (:func:`._parts._full_loss`, float64) whenever the examples seen reach
    a multiple of ``every``. A thread whose minibatch loss is not finite stops
    there (``diverged`` the updates done, ``final_loss`` that loss), keeping
    its parameters and state of then, as a block of one lane does on the CPU.
    """
    k = cuda.grid(1)
    if k >= count:
        return
    w = p.shape[2]
    blk = k // w
    j = k - blk * w
    n = DIM  # noqa: F821 - bound per instance
    pw = cuda.local.array((DIM, 1), DTYPE)  # noqa: F821
    gw = cuda.local.array((DIM, 1), DTYPE)  # noqa: F821
    Sw = _views(S, cuda.local.array((NSLOTS, DIM, 1), DTYPE))  # noqa: F821
    c, bias = _lane_start(p, S, C, LIKE, d, dec, blk, j, pw, Sw, one, n)  # noqa: F821 - LIKE bound per instance
    nf = n - 1
    zero = one - one
    rows = order.shape[1]
    per_epoch = -(-rows // batch)
    div = -1
    final = 0.0
    seen = 0
    rec = 0
    # One loop over the updates (epoch e, minibatch rows start..stop), so that a divergence breaks it once.
    for t in range(order.shape[0] * per_epoch):
        e = t // per_epoch
        start = (t - e * per_epoch) * batch
        stop = min(start + batch, rows)
        batch_loss = zero
        for i in range(n):
            gw[i, 0] = zero
        for q in range(start, stop):
            row = order[e, q]
            pred = X[row, 0] * pw[0, 0]
            for f in range(1, nf):
                pred += X[row, f] * pw[f, 0]
            res = pred + pw[nf, 0] - y[row]
            batch_loss += res * res
            for f in range(nf):
                gw[f, 0] += res * X[row, f]
            gw[nf, 0] += res
        if not math.isfinite(batch_loss):
            div = t
            final = batch_loss
            break
        size = batch_size if stop - start == batch else last_size
        for i in range(n):
            gw[i, 0] = gw[i, 0] / size
        bias = _lane_advance(pw, gw, Sw, c, d, bias, one, n)  # its device copy, bound per rule
        seen += stop - start
        if seen % every == 0:
            if loss_rec is not None:
                loss_rec[blk, rec, j] = _full_loss(H, pstar, fstar, pw, 0, n)
            rec += 1
    if div < 0:
        final = _full_loss(H, pstar, fstar, pw, 0, n)
    final_loss[blk, j] = final
    diverged[blk, j] = div
    _lane_finish(p, S, d, blk, j, pw, Sw, bias, n)  # its device copy, bound per instance


def _run_quadratic_wide_template(x, S, d, dec, C, P, one, half, sigma, seeds, fstar, tol, steps, every,
                                 loss_rec, x_rec, final_loss, diverged, hit, g):
    """One block of THREADS threads (a power of 2) runs one configuration of a
    quadratic, ``P = (A, b)``, each thread a share of the coordinates; x, g
    (scratch) and the state stay in global memory. The value is reduced in a
    tree, so it may differ from the CPU's in the last bits."""
    A = P[0]
    b = P[1]
    cfg = cuda.blockIdx.x
    w = x.shape[2]
    blk = cfg // w
    j = cfg - blk * w
    tid = cuda.threadIdx.x
    n = x.shape[1]
    xb = x[blk]
    gb = g[blk]
    quad = cuda.shared.array(THREADS, DTYPE)  # noqa: F821 - bound per instance
    lin = cuda.shared.array(THREADS, DTYPE)  # noqa: F821
    c = _gather(C[blk], j, LIKE)  # noqa: F821
    d1 = _get(d, (blk, 0, j), one)
    d2 = _get(d, (blk, 1, j), one)
    b1 = _get(dec, (blk, 0, j), one)
    omb1 = _get(dec, (blk, 1, j), one)
    b2 = _get(dec, (blk, 2, j), one)
    omb2 = _get(dec, (blk, 3, j), one)
    zero = one - one
    div = -1
    value = one
    for t in range(steps + 1):
        q = zero
        lsum = zero
        for i in range(tid, n, THREADS):  # noqa: F821
            ax = _row(A, xb, i, j, n)
            gb[i, j] = ax - b[i]
            q += xb[i, j] * ax
            lsum += b[i] * xb[i, j]
        quad[tid] = q
        lin[tid] = lsum
        cuda.syncthreads()
        half_width = THREADS // 2  # noqa: F821
        while half_width > 0:
            if tid < half_width:
                quad[tid] += quad[tid + half_width]
                lin[tid] += lin[tid + half_width]
            cuda.syncthreads()
            half_width //= 2
        value = half * quad[0] - lin[0]
        if tid == 0 and loss_rec is not None and t % every == 0:
            loss_rec[blk, t // every, j] = value
        if x_rec is not None and t % every == 0:
            for i in range(tid, n, THREADS):  # noqa: F821
                x_rec[blk, t // every, i, j] = xb[i, j]
        if not math.isfinite(value):  # the same value in every thread: they all stop
            div = t
            break
        if tid == 0 and hit is not None:
            for k in range(tol.size):
                if hit[blk, k, j] < 0 and value - fstar < tol[k]:
                    hit[blk, k, j] = t
        if t == steps:
            break
        if seeds is not None:
            for i in range(tid, n, THREADS):  # noqa: F821
                gb[i, j] = gb[i, j] + sigma * DTYPE(_gaussian(seeds[blk, j], 0, t, i))  # noqa: F821
        ct = _wide_norm_clipped(c, gb, j, n, tid, quad)  # noqa: F821 - Keras' clipnorm, bound per instance
        if d is None:
            for i in range(tid, n, THREADS):  # noqa: F821
                _update(x, g, (blk, i, j), S, ONE, ONE, ct)  # noqa: F821
        else:
            d1 = _debias(d1, b1, omb1)
            d2 = _debias(d2, b2, omb2)
            r1 = one / d1
            r2 = one / d2
            for i in range(tid, n, THREADS):  # noqa: F821
                _update(x, g, (blk, i, j), S, r1, r2, ct)  # noqa: F821
        cuda.syncthreads()  # every coordinate is updated before the next gradient reads it
    if tid == 0:
        final_loss[blk, j] = value
        diverged[blk, j] = div
        _store(d, (blk, 0, j), d1)
        _store(d, (blk, 1, j), d2)


def _tree_sum(scratch, tid, width):
    """``scratch[0]`` <- the sum of ``scratch[:width]`` (shared; ``width`` a power of 2, one
    entry per thread of the block), in a tree: the same order on every call."""
    cuda.syncthreads()
    half_width = width // 2
    while half_width > 0:
        if tid < half_width:
            scratch[tid] += scratch[tid + half_width]
        cuda.syncthreads()
        half_width //= 2


def _wide_unclipped(c, g, j, n, tid, scratch):
    """No clip of the gradient's norm: the coefficients as they are."""
    return c


def _wide_clipped(c, g, j, n, tid, scratch):
    """``c`` for the gradient ``g[:, j]`` clipped to the norm ``c[-1]`` (see
    :func:`rmsnum.rules.norm_clipped`), its squares summed by the block's
    THREADS threads in a tree over the shared ``scratch``, as the value is."""
    total = c[-1] - c[-1]
    for i in range(tid, n, THREADS):  # noqa: F821
        total += g[i, j] * g[i, j]
    cuda.syncthreads()  # every thread has read the value from scratch
    scratch[tid] = total
    _tree_sum(scratch, tid, THREADS)  # noqa: F821 - THREADS bound per instance
    return norm_clipped(c, scratch[0])


def _squares_template(g, out):
    """``out[0]`` <- the sum of the squares of ``g`` (1-D), by one block of
    THREADS_PER_BLOCK threads: strided partial sums, then a tree (the same order on every call)."""
    scratch = cuda.shared.array(THREADS_PER_BLOCK, DTYPE)  # noqa: F821 - bound per instance
    tid = cuda.threadIdx.x
    total = DTYPE(0)  # noqa: F821
    for i in range(tid, g.size, THREADS_PER_BLOCK):
        total += g[i] * g[i]
    scratch[tid] = total
    _tree_sum(scratch, tid, THREADS_PER_BLOCK)
    if tid == 0:
        out[0] = scratch[0]


@functools.cache
def _squares_kernel(dtype: np.dtype) -> Callable:
    return cuda.jit(rebind(_squares_template, DTYPE=dtype.type, _tree_sum=_device(_tree_sum)))


def squares(g) -> np.floating:
    """The sum of the squares of the device array ``g``'s elements, in its dtype."""
    out = cuda.device_array(1, g.dtype)
    _squares_kernel(g.dtype)[1, THREADS_PER_BLOCK](g.reshape(g.size), out)
    return g.dtype.type(out.copy_to_host()[0])


@functools.cache
def _step_kernel(rule: Callable, pattern: tuple) -> Callable:
    parts = _device_parts(rule)
    return cuda.jit(rebind(_step_template, _update=parts["_update"], LIKE=pattern))


@functools.cache
def _run_objective_kernel(rule: Callable, pattern: tuple, dim: int, dtype: np.dtype,
                          functions: tuple | None = None) -> Callable:
    """The one-thread-per-configuration kernel, on a quadratic (``functions``
    None) or on the objective with these ``(value, grad)`` device functions."""
    parts = _device_parts(rule)
    evaluate = (_quadratic_value if functions is None
                else rebind(_objective_value, VALUE=functions[0], GRAD=functions[1]))
    fn = rebind(_run_objective_template, LIKE=pattern, DIM=dim, DTYPE=dtype.type, _evaluate=_device(evaluate),
                NSLOTS=max(1, len(rules.lookup(rule).slots)), **parts)
    return cuda.jit(fn)


@functools.cache
def _train_kernel(rule: Callable, pattern: tuple, dim: int, dtype: np.dtype) -> Callable:
    """The training kernel, one thread per configuration, for ``dim`` parameters."""
    parts = _device_parts(rule)
    fn = rebind(_train_template, LIKE=pattern, DIM=dim, DTYPE=dtype.type,
                NSLOTS=max(1, len(rules.lookup(rule).slots)), **parts)
    return cuda.jit(fn)


@functools.cache
def _run_quadratic_wide_kernel(rule: Callable, pattern: tuple, threads: int, dtype: np.dtype) -> Callable:
    parts = _device_parts(rule)
    clip = _wide_unclipped if isinstance(pattern[-1], Neutral) else _wide_clipped
    fn = rebind(_run_quadratic_wide_template, LIKE=pattern, THREADS=threads, DTYPE=dtype.type,
                _wide_norm_clipped=_device(rebind(clip, THREADS=threads, _tree_sum=_device(_tree_sum))), **parts)
    return cuda.jit(fn)


_DEVICE_FUNCTIONS: "weakref.WeakKeyDictionary[Objective, tuple]" = weakref.WeakKeyDictionary()


def kernel_form(objective: Any, dtype: Any) -> tuple[tuple | None, tuple]:
    """See :meth:`rmsnum.backends.base.Backend.kernel_form`: a user objective's
    functions as ``numba.cuda`` device functions (compiled from their Python
    source, or as given when they are device functions already), made once per objective."""
    if not isinstance(objective, Objective):
        return None, objective._kernel_args(dtype)
    functions = _DEVICE_FUNCTIONS.get(objective)
    if functions is None:
        functions = _DEVICE_FUNCTIONS[objective] = tuple(
            fn if _kind(fn) == "cuda" else cuda.jit(device=True)(_source(fn)) for fn in objective.functions)
    return functions, objective._kernel_args(dtype)


def pipeline(jobs: Iterable[tuple[Any, Callable[[Any], Callable[[], Any]]]]) -> Iterator[tuple[Any, Any]]:
    """Run ``jobs`` two at a time on two streams (see
    :meth:`rmsnum.backends.base.Backend.pipeline`): while one job's kernels run
    and its results stream back, the host prepares the next one."""
    streams = [cuda.stream(), cuda.stream()]
    pending: list[tuple[Any, Callable[[], Any]]] = []
    for k, (key, start) in enumerate(jobs):
        pending.append((key, start(streams[k % 2])))
        if len(pending) == 2:
            first, finish = pending.pop(0)
            yield first, finish()
    for key, finish in pending:
        yield key, finish()


def step(rule: Callable, x, g, S: tuple, r1, r2, c: tuple, *, hyper: Any = None, t: int = 0) -> None:
    """One in-place update of C-contiguous device arrays (checked by the caller);
    ``hyper`` and ``t`` are for the reference."""
    dt = x.dtype.type
    one = dt(1)
    numeric = tuple(dt(v) for v in c if not isinstance(v, Neutral))
    r1, r2 = (one if isinstance(r, Neutral) else dt(r) for r in (r1, r2))
    kernel = _step_kernel(rule, _pattern(c))
    flat = tuple(None if arr is None else arr.reshape(arr.size) for arr in S)
    # A kernel argument cannot be an empty tuple; the extra number (or None) is never read.
    kernel[_blocks(x.size), THREADS_PER_BLOCK](x.reshape(x.size), g.reshape(g.size), flat or (None,), r1, r2,
                                               numeric or (one,))


_OUTPUTS = ("x", "d", "loss_rec", "x_rec", "final_loss", "diverged", "hit")  # and the state slots
_TRAIN_OUTPUTS = ("p", "d", "loss_rec", "final_loss", "diverged")  # and the state slots
_WRITE_ONLY = ("final_loss", "diverged")


def _slot_arrays(S: tuple) -> dict[str, Any]:
    """The state slots by name, ``S0``, ``S1``, ... (None for a slot without array)."""
    return {f"S{k}": arr for k, arr in enumerate(S)}


def _to_device(arrays: dict[str, Any], stream) -> dict[str, Any]:
    """Device copies of the host ``arrays`` (name -> array or None), enqueued on
    ``stream``; the write-only outputs are allocated, not copied."""
    dev = {}
    for name, arr in arrays.items():
        if arr is None:
            dev[name] = None
        elif name in _WRITE_ONLY:
            dev[name] = cuda.device_array(arr.shape, arr.dtype, stream=stream)
        else:
            dev[name] = cuda.to_device(np.ascontiguousarray(arr), stream=stream)
    return dev


def _copy_back(arrays: dict[str, Any], dev: dict[str, Any], names: tuple, stream) -> Callable[[], None]:
    """Enqueue on ``stream`` the copies of the device arrays ``names`` into pinned
    buffers; returns ``wait``, which waits for the stream and puts them in the
    host ``arrays``."""
    back = []
    for name in names:
        if arrays[name] is not None:
            pinned = cuda.pinned_array(arrays[name].shape, arrays[name].dtype)
            dev[name].copy_to_host(pinned, stream=stream)
            back.append((arrays[name], pinned))

    def wait() -> None:
        stream.synchronize()
        for host, pinned in back:
            host[...] = pinned
    return wait


def run_objective(rule: Callable, functions: tuple | None, x: np.ndarray, S: tuple, d, dec, C: np.ndarray,
                  like: tuple, P: tuple, sigma, seeds, fstar, tol, steps: int, every: int, loss_rec, x_rec,
                  final_loss: np.ndarray, diverged: np.ndarray, hit, *, hyper: Any = None,
                  queue: Any = None) -> Callable[[], None]:
    """Run blocks of configurations on an objective; host arrays in and out, as
    :func:`rmsnum.backends.cpu.run_objective` (``functions`` the user
    objective's ``(value, grad)`` as device functions, or None for a quadratic).

    The copies and the kernel are enqueued on ``queue``, a ``numba.cuda``
    stream (a new one when None), and the call returns ``wait``: calling it
    waits for that stream and puts the outputs in place, so the host can
    prepare the next chunk meanwhile. ``hyper`` is for the reference.
    """
    stream = cuda.stream() if queue is None else queue
    dt = x.dtype.type
    slots = _slot_arrays(S)
    arrays = dict(x=x, **slots, d=d, dec=dec, C=C, seeds=seeds, tol=tol, loss_rec=loss_rec,
                  x_rec=x_rec, final_loss=final_loss, diverged=diverged, hit=hit)
    dev = _to_device(arrays, stream)
    dev_P = tuple(cuda.to_device(np.ascontiguousarray(p), stream=stream) if isinstance(p, np.ndarray) else p
                  for p in P)
    args = (dev["x"], tuple(dev[name] for name in slots) or (None,), dev["d"], dev["dec"], dev["C"], dev_P, dt(1),
            dt(0.5), dt(sigma), dev["seeds"], dt(fstar), dev["tol"], steps, every, dev["loss_rec"], dev["x_rec"],
            dev["final_loss"], dev["diverged"], dev["hit"])
    configs = x.shape[0] * x.shape[2]
    threads = THREADS_PER_BLOCK
    if x.shape[1] <= WIDE_DIM or functions is not None:
        kernel = _run_objective_kernel(rule, _pattern(like), x.shape[1], x.dtype, functions)
        kernel[-(-configs // threads), threads, stream](*args)
    else:
        kernel = _run_quadratic_wide_kernel(rule, _pattern(like), threads, x.dtype)
        kernel[configs, threads, stream](*args, cuda.device_array(x.shape, x.dtype, stream=stream))
    return _copy_back(arrays, dev, (*_OUTPUTS, *slots), stream)


def train(rule: Callable, p: np.ndarray, S: tuple, d, dec, C: np.ndarray, like: tuple, X: np.ndarray, y: np.ndarray,
          order: np.ndarray, batch: int, every: int, H: np.ndarray, pstar: np.ndarray, fstar: float, loss_rec,
          final_loss: np.ndarray, diverged: np.ndarray, *, count: int | None = None, hyper: Any = None,
          queue: Any = None) -> Callable[[], Callable[[], None]]:
    """Train blocks of configurations on a linear regression, one thread per
    configuration; host arrays in and out, with the arguments and outputs of
    :func:`rmsnum.backends.cpu.train` (see :func:`_train_template`).

    ``count`` is the number of configurations to train, the first of the
    blocked layout (all of it when None); the padding lanes after them are not
    computed and their outputs are undefined. As :func:`rmsnum.backends.cpu.train`,
    this prepares the run (the inputs are copied to the device on ``stream``,
    the kernel compiled for them) and returns ``run``. ``run()`` enqueues the
    kernel and the copies back on ``queue`` (a ``numba.cuda`` stream; a new one
    when None) and returns ``wait``, which waits for the stream and puts the
    outputs in place (see :func:`run_objective`). ``hyper`` is for the reference.
    """
    stream = cuda.stream() if queue is None else queue
    dt = p.dtype.type
    slots = _slot_arrays(S)
    arrays = dict(p=p, **slots, d=d, dec=dec, C=C, X=X, y=y, order=order, H=H, pstar=pstar, loss_rec=loss_rec,
                  final_loss=final_loss, diverged=diverged)
    dev = _to_device(arrays, stream)
    rows = order.shape[1]
    configs = p.shape[0] * p.shape[2] if count is None else int(count)
    args = (dev["p"], tuple(dev[name] for name in slots) or (None,), dev["d"], dev["dec"], dev["C"], dev["X"],
            dev["y"], dev["order"], batch, every, dt(batch), dt(rows - (-(-rows // batch) - 1) * batch), dt(1),
            dev["H"], dev["pstar"], float(fstar), dev["loss_rec"], dev["final_loss"], dev["diverged"], configs)
    kernel = _train_kernel(rule, _pattern(like), p.shape[1], p.dtype)
    if not config.ENABLE_CUDASIM:  # compile now, as the launch would (the simulator runs Python)
        kernel.compile(tuple(kernel.typeof_pyval(arg) for arg in args))
    threads = THREADS_PER_BLOCK

    def run() -> Callable[[], None]:
        if configs:
            kernel[-(-configs // threads), threads, stream](*args)
        return _copy_back(arrays, dev, (*_TRAIN_OUTPUTS, *slots), stream)
    return run
