"""The Numba CPU backend: the rules of :mod:`rmsnum.rules` compiled with ``numba.njit``.

Kernels are written once as templates whose element update,
:func:`_update_coordinate`, calls a global name ``rule``; for each rule,
:func:`kernels_for` makes copies in which ``rule`` is the
``njit(inline="always")`` compilation of that rule (inlined so that LLVM
vectorises the element loop). Kernels are private, take arrays and scalars,
write their outputs in place and return nothing. They are cached on disk; the
cache key includes a digest of ``rules.py`` (see :mod:`._cache`).

A state slot the rule does not use is passed as ``None``: Numba specialises
the kernel on it, so an absent slot costs no memory traffic.
"""

from __future__ import annotations

import functools
import math
import types
from typing import Callable

import numba
import numpy as np
from numba import prange
from numba.extending import overload

from .. import rules
from . import _cache
from ._compile import compile_plain, rebind

_cache.install()

PARALLEL_THRESHOLD = 1 << 16
"""Arrays with at least this many elements are stepped with ``prange``."""


def _load(arr, i, zero):
    if arr is None:
        return zero
    return arr[i]


def _store(arr, i, value):
    if arr is not None:
        arr[i] = value


_load = numba.njit(_load, inline="always")
_store = numba.njit(_store, inline="always")


def _update_coordinate(i, x_src, x_dst, g, s, m, a, r1, r2, c, zero):
    """x_dst[i] and the state slots at i <- the rule applied to x_src[i], g[i]."""
    xi, si, mi, ai = rule(  # noqa: F821 - bound per rule by _instantiate
        x_src[i], g[i], _load(s, i, zero), _load(m, i, zero), _load(a, i, zero), r1, r2, c
    )
    x_dst[i] = xi
    _store(s, i, si)
    _store(m, i, mi)
    _store(a, i, ai)


def _step_template(x, g, s, m, a, r1, r2, c, zero):
    for i in prange(x.size):
        _update_coordinate(i, x, x, g, s, m, a, r1, r2, c, zero)


def _matvec(A, x, out):
    """out <- A @ x, where a 1-D A is a diagonal (resolved at compile time)."""


@overload(_matvec, inline="always")
def _matvec_impl(A, x, out):
    if A.ndim == 1:
        def diagonal(A, x, out):
            for i in range(x.size):
                out[i] = A[i] * x[i]
        return diagonal

    def dense(A, x, out):
        n = x.size
        for i in range(n):
            acc = A[i, 0] * x[0]
            for j in range(1, n):
                acc += A[i, j] * x[j]
            out[i] = acc
    return dense


def _quadratic_grad(A, b, x, ax, g):
    """ax <- A @ x, g <- ax - b."""
    _matvec(A, x, ax)
    for i in range(x.size):
        g[i] = ax[i] - b[i]


def _quadratic_value(x, ax, b, half):
    """0.5 * x.(A x) - b.x given ax = A @ x."""
    quad = x[0] * ax[0]
    lin = b[0] * x[0]
    for i in range(1, x.size):
        quad += x[i] * ax[i]
        lin += b[i] * x[i]
    return half * quad - lin


_quadratic_grad = numba.njit(_quadratic_grad, inline="always")
_quadratic_value = numba.njit(_quadratic_value, inline="always")
_inline = functools.partial(numba.njit, inline="always")
_gaussian = compile_plain(rules.gaussian, _inline)
_debias = compile_plain(rules.debias, _inline)


def _finite_row(x, value):
    if not math.isfinite(value):
        return False
    for i in range(x.size):
        if not math.isfinite(x[i]):
            return False
    return True


_finite_row = numba.njit(_finite_row, inline="always")


def _simulate_quadratic_template(X, loss, info, A, b, half, sigma, seed, config, s, m, a, dbs, dec, c, ax, g,
                                 noise, zero, one):
    """Run ``X.shape[0] - 1`` steps from ``X[0]`` on a quadratic.

    Writes ``X[t]`` and ``loss[t]``; ``info[0]`` = steps taken, ``info[1]`` = first
    step whose x or loss is not finite (-1 if none). Rows after a divergence are
    left untouched. ``dbs`` holds the bias denominators (d1, d2), updated in place.
    """
    steps = X.shape[0] - 1
    n = X.shape[1]
    d1 = dbs[0]
    d2 = dbs[1]
    b1, omb1, b2, omb2 = dec
    info[1] = -1
    for t in range(steps + 1):
        x = X[t]
        _quadratic_grad(A, b, x, ax, g)
        loss[t] = _quadratic_value(x, ax, b, half)
        info[0] = t
        if not _finite_row(x, loss[t]):
            info[1] = t
            break
        if t == steps:
            break
        if sigma != zero:
            for i in range(n):
                noise[0] = _gaussian(seed, config, t, i)
                g[i] = g[i] + sigma * noise[0]
        d1 = _debias(d1, b1, omb1)
        d2 = _debias(d2, b2, omb2)
        r1 = one / d1
        r2 = one / d2
        x_next = X[t + 1]
        for i in range(n):
            _update_coordinate(i, x, x_next, g, s, m, a, r1, r2, c, zero)
    dbs[0] = d1
    dbs[1] = d2


def _instantiate(template: Callable, rule: Callable, *, cache: bool = True, **jit_options) -> Callable:
    """A cached Numba dispatcher of ``template`` whose element update applies ``rule``."""
    update = _inline(rebind(_update_coordinate, rule=compile_plain(rule, _inline)))
    fn = rebind(template, _update_coordinate=update)
    suffix = "parallel" if jit_options.get("parallel") else "serial"
    # A distinct qualname gives each (template, rule, mode) its own cache file.
    fn.__qualname__ = f"{template.__name__.replace('_template', '')}__{rule.__name__}__{suffix}"
    return numba.njit(cache=cache, **jit_options)(fn)


@functools.cache
def kernels_for(rule: Callable) -> types.SimpleNamespace:
    """The compiled kernels of one rule (created lazily, compiled on first call)."""
    return types.SimpleNamespace(
        step_serial=_instantiate(_step_template, rule),
        step_parallel=_instantiate(_step_template, rule, parallel=True),
        simulate_quadratic=_instantiate(_simulate_quadratic_template, rule),
    )


def _flat(arr):
    return None if arr is None else arr.reshape(-1)


def step(rule: Callable, x: np.ndarray, g: np.ndarray, s, m, a, r1, r2, c: tuple) -> None:
    """One in-place update of C-contiguous arrays (checked by the caller)."""
    k = kernels_for(rule)
    kernel = k.step_parallel if x.size >= PARALLEL_THRESHOLD else k.step_serial
    kernel(x.reshape(-1), g.reshape(-1), _flat(s), _flat(m), _flat(a), r1, r2, c, x.dtype.type(0))


def simulate_quadratic(rule: Callable, X: np.ndarray, loss: np.ndarray, A: np.ndarray, b: np.ndarray,
                       sigma, seed: int, config: int, s, m, a, dbs: np.ndarray, dec: tuple, c: tuple) -> tuple[int, int]:
    """Fill ``X`` (steps+1, d) and ``loss`` from ``X[0]``; return (steps taken, diverged step or -1)."""
    dt = X.dtype.type
    n = X.shape[1]
    info = np.zeros(2, dtype=np.int64)
    ax = np.empty(n, X.dtype)
    g = np.empty(n, X.dtype)
    noise = np.empty(1, X.dtype)
    kernels_for(rule).simulate_quadratic(X, loss, info, A, b, dt(0.5), dt(sigma), np.uint64(seed), np.uint64(config),
                                         s, m, a, dbs, dec, c, ax, g, noise, dt(0), dt(1))
    return int(info[0]), int(info[1])
