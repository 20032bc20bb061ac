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
from typing import Any, Callable

import numpy as np
from numba import cuda

from .. import rules
from .._neutral import ONE, Neutral
from .._validation import on_device
from ._compile import compile_plain, rebind
from ._parts import _copy_slots, _gather, _get, _objective_value, _quadratic_value, _row, _store, _views, element_update

from .._config import STEP_BLOCKS, THREADS_PER_BLOCK, WIDE_DIM

INSTALL_HINT = 'pip install "rmsnum[cuda]" (numba-cuda with the CUDA 13 toolkit wheels)'


def missing() -> str | None:
    """Why the CUDA backend cannot run here, or None when it can.

    Checks, in order: the simulator (always usable), the ``numba-cuda``
    package, and a usable GPU with its driver (this initialises CUDA).
    """
    from numba.core import config

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


@functools.cache
def _device_parts(rule: Callable) -> dict[str, Any]:
    """Device-function copies of the element update (with ``rule``) and of the helpers."""
    update = element_update(len(rules.lookup(rule).slots))
    return {
        "_update": _device(rebind(update, rule=compile_plain(rule, _device))),
        "_gaussian": compile_plain(rules.gaussian, _device),
        "_debias": compile_plain(rules.debias, _device),
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
    for i in range(n):
        xw[i, 0] = x[blk, i, j]
        _copy_slots(Sw, (i, 0), S, (blk, i, j))
    c = _gather(C[blk], j, LIKE)  # noqa: F821
    d1 = _get(d, (blk, 0, j), one)
    d2 = _get(d, (blk, 1, j), one)
    b1 = _get(dec, (blk, 0, j), one)
    omb1 = _get(dec, (blk, 1, j), one)
    b2 = _get(dec, (blk, 2, j), one)
    omb2 = _get(dec, (blk, 3, j), one)
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
        if d is None:
            for i in range(n):
                _update(xw, gw, (i, 0), Sw, ONE, ONE, c)  # noqa: F821
        else:
            d1 = _debias(d1, b1, omb1)
            d2 = _debias(d2, b2, omb2)
            r1 = one / d1
            r2 = one / d2
            for i in range(n):
                _update(xw, gw, (i, 0), Sw, r1, r2, c)  # noqa: F821
    final_loss[blk, j] = value
    diverged[blk, j] = div
    for i in range(n):
        x[blk, i, j] = xw[i, 0]
        _copy_slots(S, (blk, i, j), Sw, (i, 0))
    _store(d, (blk, 0, j), d1)
    _store(d, (blk, 1, j), d2)


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
        if d is None:
            for i in range(tid, n, THREADS):  # noqa: F821
                _update(x, g, (blk, i, j), S, ONE, ONE, c)  # noqa: F821
        else:
            d1 = _debias(d1, b1, omb1)
            d2 = _debias(d2, b2, omb2)
            r1 = one / d1
            r2 = one / d2
            for i in range(tid, n, THREADS):  # noqa: F821
                _update(x, g, (blk, i, j), S, r1, r2, c)  # noqa: F821
        cuda.syncthreads()  # every coordinate is updated before the next gradient reads it
    if tid == 0:
        final_loss[blk, j] = value
        diverged[blk, j] = div
        _store(d, (blk, 0, j), d1)
        _store(d, (blk, 1, j), d2)


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
def _run_quadratic_wide_kernel(rule: Callable, pattern: tuple, threads: int, dtype: np.dtype) -> Callable:
    parts = _device_parts(rule)
    fn = rebind(_run_quadratic_wide_template, LIKE=pattern, THREADS=threads, DTYPE=dtype.type, **parts)
    return cuda.jit(fn)


def step(rule: Callable, x, g, S: tuple, r1, r2, c: tuple) -> None:
    """One in-place update of C-contiguous device arrays (checked by the caller)."""
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
_WRITE_ONLY = ("final_loss", "diverged")


def run_objective(rule: Callable, functions: tuple | None, x: np.ndarray, S: tuple, d, dec, C: np.ndarray,
                  like: tuple, P: tuple, sigma, seeds, fstar, tol, steps: int, every: int, loss_rec, x_rec,
                  final_loss: np.ndarray, diverged: np.ndarray, hit, stream=None) -> Callable[[], None] | None:
    """Run blocks of configurations on an objective; host arrays in and out, as
    :func:`rmsnum.backends.cpu.run_objective` (``functions`` the user
    objective's ``(value, grad)`` as device functions, or None for a quadratic).

    Without ``stream`` the call waits and the outputs are in place when it
    returns (None). With a ``numba.cuda`` stream it only enqueues the copies and
    the kernel, and returns ``wait``: calling it waits for that stream and puts
    the outputs in place, so the host can prepare the next chunk meanwhile.
    """
    dt = x.dtype.type
    slot_names = [f"S{k}" for k in range(len(S))]
    arrays = dict(x=x, **dict(zip(slot_names, S)), d=d, dec=dec, C=C, seeds=seeds, tol=tol, loss_rec=loss_rec,
                  x_rec=x_rec, final_loss=final_loss, diverged=diverged, hit=hit)
    own = stream is None
    if own:
        stream = cuda.stream()
    dev = {}
    for name, arr in arrays.items():
        if arr is None:
            dev[name] = None
        elif name in _WRITE_ONLY:
            dev[name] = cuda.device_array(arr.shape, arr.dtype, stream=stream)
        else:
            dev[name] = cuda.to_device(np.ascontiguousarray(arr), stream=stream)
    dev_P = tuple(cuda.to_device(np.ascontiguousarray(p), stream=stream) if isinstance(p, np.ndarray) else p
                  for p in P)
    args = (dev["x"], tuple(dev[name] for name in slot_names) or (None,), dev["d"], dev["dec"], dev["C"], dev_P, dt(1),
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
    back = []
    for name in (*_OUTPUTS, *slot_names):
        if arrays[name] is not None:
            pinned = cuda.pinned_array(arrays[name].shape, arrays[name].dtype)
            dev[name].copy_to_host(pinned, stream=stream)
            back.append((arrays[name], pinned))

    def wait() -> None:
        stream.synchronize()
        for host, pinned in back:
            host[...] = pinned

    if own:
        wait()
        return None
    return wait
