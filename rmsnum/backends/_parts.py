"""Building blocks shared by the compiled kernels of every backend.

Each helper is a plain Python function (which is what runs under the CUDA
simulator, and documents the semantics) with a Numba ``@overload`` that
specialises it on argument types at compile time; the overloads use the
generic target, so the CPU (``njit``) and CUDA (``cuda.jit``) kernels share them.

:func:`_update`, the element update, calls a global ``rule`` that each backend
binds to its compiled copy of a rule of :mod:`rmsnum.rules` (see
:func:`rmsnum.backends._compile.rebind`).
"""

from __future__ import annotations

import numba
from numba.extending import overload

from .._neutral import ZERO, Neutral
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


def _update(x, g, idx, s, m, a, r1, r2, c):
    """x and the state slots at ``idx`` <- the rule applied there."""
    xi, si, mi, ai = rule(  # noqa: F821 - bound per rule by each backend
        x[idx], g[idx], _get(s, idx, ZERO), _get(m, idx, ZERO), _get(a, idx, ZERO), r1, r2, c
    )
    x[idx] = xi
    _store(s, idx, si)
    _store(m, idx, mi)
    _store(a, idx, ai)


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
