"""Building blocks shared by the compiled kernels of every backend.

Each helper is a plain Python function (which is what runs under the CUDA
simulator, and documents the semantics) with a Numba ``@overload`` that
specialises it on argument types at compile time; the overloads use the
generic target, so the CPU (``njit``) and CUDA (``cuda.jit``) kernels share them.

:func:`element_update`, the element update, calls a global ``rule`` that each
backend binds to its compiled copy of a rule of :mod:`rmsnum.rules` (see
:func:`rmsnum.backends._compile.rebind`). The state slots travel as one tuple
``S`` of arrays (None for a slot without array), any number of them; the tuple
helpers below are generated for each tuple type.
"""

from __future__ import annotations

import functools
import math
import types

import numba
import numpy as np
from numba.extending import overload

from .._neutral import ZERO, Neutral
from ..rules import norm_clipped
from ._neutral_types import NeutralType


def _get(arr, idx, absent):
    """``arr[idx]``, or ``absent`` when there is no array (``arr`` None)."""
    return absent if arr is None else arr[idx]


@overload(_get)
def _get_impl(arr, idx, absent):
    if isinstance(arr, numba.types.NoneType):
        return lambda arr, idx, absent: absent
    return lambda arr, idx, absent: arr[idx]


def _store(arr, idx, value):
    """``arr[idx] = value``; nothing for an absent slot."""
    if arr is not None:
        arr[idx] = value


@overload(_store)
def _store_impl(arr, idx, value):
    if isinstance(arr, numba.types.NoneType):
        return lambda arr, idx, value: None

    def store(arr, idx, value):
        arr[idx] = value
    return store


def _generated(source: str, name: str, **names) -> types.FunctionType:
    """The function ``name`` defined by ``source``, with ``names`` and this module's helpers as globals."""
    namespace = dict(_get=_get, _store=_store, ZERO=ZERO, **names)
    exec(source, namespace)
    return namespace[name]


@functools.cache
def element_update(nslots: int) -> types.FunctionType:
    """The element update of a rule with ``nslots`` state slots::

        _update(x, g, idx, S, r1, r2, c)   # x and the slots S[k] at idx <- the rule applied there

    ``S`` is a tuple holding an array for each slot, in the rule's order, or
    None for a slot without array (the rule then gets ``ZERO`` there, and what
    it returns for that slot is dropped). The function calls a global ``rule``
    that each backend binds to its compiled copy of the rule (see
    :func:`rmsnum.backends._compile.rebind`); it is generated for ``nslots`` so
    that the rule's arguments are spelled out, as the compilers need them.
    """
    args = "".join(f"_get(S[{k}], idx, ZERO), " for k in range(nslots))
    lines = ["def _update(x, g, idx, S, r1, r2, c):"]
    if nslots == 0:
        lines.append("    x[idx] = rule(x[idx], g[idx], r1, r2, c)")
    else:
        lines.append(f"    xi, {', '.join(f'v{k}' for k in range(nslots))}, = rule(x[idx], g[idx], {args}r1, r2, c)")
        lines.append("    x[idx] = xi")
        lines.extend(f"    _store(S[{k}], idx, v{k})" for k in range(nslots))
    return _generated("\n".join(lines) + "\n", "_update", rule=None)


def _slots_at(S, idx):
    """The tuple of ``S[k][idx]`` (None for a slot without array)."""
    return tuple(None if arr is None else arr[idx] for arr in S)


@overload(_slots_at)
def _slots_at_impl(S, idx):
    items = ["None" if isinstance(ty, numba.types.NoneType) else f"S[{k}][idx]" for k, ty in enumerate(S.types)]
    return _generated(f"def at(S, idx):\n    return ({''.join(item + ', ' for item in items)})\n", "at")


def _zero_slots(S, idx):
    """``S[k][idx] = 0`` for every slot with an array."""
    for arr in S:
        _store(arr, idx, 0)


@overload(_zero_slots)
def _zero_slots_impl(S, idx):
    lines = [f"    _store(S[{k}], idx, 0)" for k in range(len(S.types))]
    return _generated("def zero(S, idx):\n" + "\n".join(lines or ["    pass"]) + "\n", "zero")


def _copy_slots(dst, dst_idx, src, src_idx):
    """``dst[k][dst_idx] = src[k][src_idx]`` for every slot with an array in both."""
    for a, b in zip(dst, src):
        if a is not None and b is not None:
            a[dst_idx] = b[src_idx]


@overload(_copy_slots)
def _copy_slots_impl(dst, dst_idx, src, src_idx):
    none = numba.types.NoneType
    lines = [f"    dst[{k}][dst_idx] = src[{k}][src_idx]" for k, (a, b) in enumerate(zip(dst.types, src.types))
             if not isinstance(a, none) and not isinstance(b, none)]
    return _generated("def copy(dst, dst_idx, src, src_idx):\n" + "\n".join(lines or ["    pass"]) + "\n", "copy")


def _views(S, local):
    """``local[k]`` for every slot of ``S`` with an array, None for the others."""
    return tuple(None if arr is None else local[k] for k, arr in enumerate(S))


@overload(_views)
def _views_impl(S, local):
    items = ["None" if isinstance(ty, numba.types.NoneType) else f"local[{k}]" for k, ty in enumerate(S.types)]
    return _generated(f"def views(S, local):\n    return ({''.join(item + ', ' for item in items)})\n", "views")


def _gather(C, j, like):
    """The coefficient tuple of configuration ``j``: ``like[k]`` where that is
    ZERO or ONE, else the next numeric coefficient, ``C[row, j]`` (or ``C[row]``
    when ``C`` is a tuple holding one configuration's numbers)."""
    values, row = [], 0
    for item in like:
        if isinstance(item, Neutral):
            values.append(item)
        else:
            values.append(C[row] if isinstance(C, tuple) else C[row, j])
            row += 1
    return tuple(values)


@overload(_gather)
def _gather_impl(C, j, like):
    items, row = [], 0
    for k, ty in enumerate(like.types):
        if isinstance(ty, NeutralType):
            items.append(f"like[{k}]")
        else:
            items.append(f"C[{row}]" if isinstance(C, numba.types.BaseTuple) else f"C[{row}, j]")
            row += 1
    namespace: dict = {}
    exec(f"def gather(C, j, like):\n    return ({', '.join(items)},)\n", namespace)
    return namespace["gather"]


def _squares(g, j, n, c):
    """The sum of ``g[i, j]**2`` over the n coordinates of lane j, in order, for the
    coefficients ``c`` (see :func:`rmsnum.rules.norm_clipped`). Compiled, nothing is
    computed when ``c`` does not clip the gradient's norm (its last, ``g_norm``, is HIGHEST)."""
    total = g[0, j] * g[0, j]
    for i in range(1, n):
        total += g[i, j] * g[i, j]
    return total


@overload(_squares)
def _squares_impl(g, j, n, c):
    if isinstance(c.types[-1], NeutralType):
        return lambda g, j, n, c: c[-1]
    return _squares  # the Python body


@overload(norm_clipped)  # rmsnum.rules.norm_clipped, compiled: nothing at all when off
def _norm_clipped_impl(c, squares):
    if isinstance(c.types[-1], NeutralType):
        return lambda c, squares: c
    one = np.dtype(squares.name).type(1)  # a constant of the working dtype, not a float64 literal

    def clipped(c, squares):
        limit = c[-1]
        norm = math.sqrt(squares)
        return (c[0] * (limit / norm if norm > limit else one),) + c[1:]
    return clipped


def _row(A, x, i, j, n):
    """(A @ x[:, j])[i], summed over coordinates in order; a 1-D A is a diagonal."""
    if A.ndim == 1:
        return A[i] * x[i, j]
    ax = A[i, 0] * x[0, j]
    for k in range(1, n):
        ax += A[i, k] * x[k, j]
    return ax


@overload(_row)
def _row_impl(A, x, i, j, n):
    if A.ndim == 1:
        return lambda A, x, i, j, n: A[i] * x[i, j]

    def dense(A, x, i, j, n):
        ax = A[i, 0] * x[0, j]
        for k in range(1, n):
            ax += A[i, k] * x[k, j]
        return ax
    return dense


def _lane_value(A, b, x, g, j, n, half):
    """For lane (column) j of x: g[:, j] <- A @ x[:, j] - b; return the value
    1/2 x.(A x) - b.x, both sums accumulated over coordinates in order."""
    ax = _row(A, x, 0, j, n)
    g[0, j] = ax - b[0]
    quad = x[0, j] * ax
    lin = b[0] * x[0, j]
    for i in range(1, n):
        ax = _row(A, x, i, j, n)
        g[i, j] = ax - b[i]
        quad += x[i, j] * ax
        lin += b[i] * x[i, j]
    return half * quad - lin


@overload(_lane_value)
def _lane_value_impl(A, b, x, g, j, n, half):
    return _lane_value  # the Python body; _row specialises on A


def _quadratic_value(P, x, g, j, n, half):
    """The built-in quadratic's evaluation, ``P = (A, b)``: see :func:`_lane_value`."""
    return _lane_value(P[0], P[1], x, g, j, n, half)


def _objective_value(P, x, g, j, n, half):
    """A user objective's evaluation at lane j of x (n, w): g[:, j] <- GRAD there;
    return VALUE there. GRAD and VALUE, the objective's functions, are bound per
    instance; ``P`` holds a placeholder (a CUDA kernel argument cannot be an
    empty tuple), then the objective's extra arguments, passed after the point.
    A coordinate of x that is not finite makes the value NaN (x - x is 0 for
    every finite x), so the kernels see the divergence even where the user's
    value would stay finite."""
    xj = x[:, j]
    GRAD(xj, g[:, j], *P[1:])  # noqa: F821 - bound per objective
    value = VALUE(xj, *P[1:])  # noqa: F821
    for i in range(n):
        value += x[i, j] - x[i, j]
    return value


def _full_loss(H, pstar, fstar, p, j, n):
    """The full-data loss of lane j of the parameters ``p`` (n, w) of a linear
    regression, from its exact expansion at the least-squares optimum:
    ``f* + 1/2 (p - p*)^T H (p - p*)``, in float64 (O(n^2) work, not O(data))."""
    acc = 0.0
    for i in range(n):
        row = 0.0
        for k in range(n):
            row += H[i, k] * (p[k, j] - pstar[k])
        acc += (p[i, j] - pstar[i]) * row
    return fstar + 0.5 * acc


@overload(_full_loss)
def _full_loss_impl(H, pstar, fstar, p, j, n):
    return _full_loss  # the Python body, compiled for the caller's target
