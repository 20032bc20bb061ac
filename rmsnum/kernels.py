"""The update rules as scalar functions for users' own ``@numba.njit`` and ``@numba.cuda.jit`` code.

These are the functions of :mod:`rmsnum.rules`, the very ones every rmsnum
kernel compiles (not copies): importing this module registers them with
Numba, so a jitted function (CPU) or a CUDA kernel or device function calls
them like any other, and Numba compiles them inline for the caller's target.
Each works in float32 and float64 (give every argument the same dtype; the
rules contain no literal constants, so nothing is promoted).

Two ways to call a rule:

- The general form, shared with the package's kernels, covers every variant
  of every framework: ``x, *slots = rule(x, g, *slots, r1, r2, c)`` with the
  rule's slots in the order :data:`rmsnum.rules.REGISTRY` names them
  (``opt.spec.slots``): ``x, s, m, g_avg = rmsprop(x, g, s, m, g_avg, r1, r2, c)``,
  ``x, s, m, v_max = adam(x, g, s, m, v_max, r1, r2, c)``,
  ``x, s = adagrad(x, g, s, r1, r2, c)``, ``x, m = momentum(x, g, m, r1, r2, c)``,
  ``x = sgd(x, g, r1, r2, c)``; ``c = opt.coefficients(dtype)`` of the
  optimizer and ``r1``, ``r2`` the reciprocal denominators of the step (``1``
  when ``opt.decays(dtype)`` is None; else advance ``d1, d2`` from
  ``opt.init(x)``'s with :func:`debias` and pass ``1 / d``). Options that are
  off are the neutral ``ZERO``/``ONE`` (and ``LOWEST``/``HIGHEST`` for a
  clip's limits) and cost nothing; pass ``ZERO`` for a slot the optimizer does
  not keep (``opt.slots``). A CUDA kernel takes its arguments as numbers: pass
  ``numeric(c)``. A clip of the gradient's norm (``clip_norm``, Keras'
  ``clipnorm``; ``c[-1]`` a number) needs the whole gradient: once per step,
  before the element updates, take ``c = norm_clipped(c, squares)`` with
  ``squares`` the sum of ``g**2`` over the array (it returns ``c`` as it is
  when the clip is off).
- The chapter's rule with a short, stable signature:
  ``x, s = rmsprop_update(x, g, s, lr, gamma, eps)``.

Examples
--------
>>> import numba, numpy as np
>>> import rmsnum as rn
>>> from rmsnum import kernels as rk
>>> @numba.njit
... def chapter_step(x, g, s, lr, gamma, eps):
...     for i in range(x.size):
...         x[i], s[i] = rk.rmsprop_update(x[i], g[i], s[i], lr, gamma, eps)
>>> x, s = np.array([-5.0, -2.0]), np.zeros(2)
>>> chapter_step(x, np.array([0.2, 4.0]) * x, s, 0.4, 0.9, 1e-6)
>>> x.round(6)   # the same numbers as rn.RMSProp(lr=0.4).step
array([-3.735095, -0.735089])
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
from numba import types as nbtypes
from numba.extending import overload

from ._neutral import HIGHEST, LOWEST, ONE, ZERO, Neutral
from .backends import _neutral_types  # noqa: F401  (the Numba types of the neutrals)
from .backends import _parts  # noqa: F401  (norm_clipped's Numba implementation)
from .rules import REGISTRY, adagrad, adam, debias, momentum, norm_clipped, rmsprop, sgd  # noqa: F401 - for users

__all__ = [*REGISTRY, "debias", "norm_clipped", "rmsprop_update", "numeric", "ZERO", "ONE", "LOWEST", "HIGHEST"]


def _callable_from_jitted_code(fn: Callable) -> None:
    """Let Numba compile ``fn`` itself wherever jitted code (any target) calls it."""

    @functools.wraps(fn)  # Numba checks the typing function's signature against fn's
    def typer(*args: Any) -> Callable:
        return fn

    overload(fn)(typer)


for _rule in (*(rule.update for rule in REGISTRY.values()), debias):
    _callable_from_jitted_code(_rule)


def numeric(coefficients: tuple, dtype: Any = None) -> tuple:
    """A coefficient tuple with ``ZERO``/``ONE`` replaced by numbers, for a CUDA kernel's arguments.

    Parameters
    ----------
    coefficients : tuple
        From ``opt.coefficients(dtype)``.
    dtype : optional
        Type of the numbers; default the type of the tuple's first number
        (float64 if it has none).

    Examples
    --------
    >>> import rmsnum as rn
    >>> numeric(rn.SGD(lr=0.5).coefficients("float32"))
    (np.float32(1.0), np.float32(-inf), np.float32(inf), np.float32(0.0), np.float32(0.5), np.float32(inf))
    >>> numeric(rn.RMSProp(lr=0.4).coefficients())[:4]
    (np.float64(1.0), np.float64(0.0), np.float64(-inf), np.float64(inf))
    """
    if not isinstance(coefficients, tuple):
        raise TypeError(f"coefficients must be a tuple from opt.coefficients(dtype), got {type(coefficients).__name__}")
    numbers = [c for c in coefficients if not isinstance(c, Neutral)]
    if dtype is None:
        dt = np.dtype(type(numbers[0])) if numbers else np.dtype(np.float64)
    else:
        dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return tuple(dt.type(float(c)) for c in coefficients)


def rmsprop_update(x, g, s, lr, gamma, eps):
    """The chapter's RMSProp on one coordinate: returns the new ``(x, s)``.

    ``s <- gamma s + (1 - gamma) g^2``;  ``x <- x - lr g / sqrt(s + eps)``
    (eps inside the square root, no momentum, no weight decay), the
    arithmetic of ``rn.RMSProp(lr, gamma, eps).step``. Callable from Python,
    ``@numba.njit`` and ``@numba.cuda.jit`` code; every argument of one dtype
    (float32 or float64). ``1 - gamma`` is computed in that dtype, where
    ``RMSProp`` rounds the float64 value once: in float32 the two agree bit
    for bit when ``1 - gamma`` is exact (e.g. gamma 0.875, 0.5), otherwise
    within an ulp of ``1 - gamma`` (use the general form with
    ``opt.coefficients`` to match an optimizer exactly).

    Examples
    --------
    >>> x, s = rmsprop_update(-5.0, -1.0, 0.0, 0.4, 0.9, 1e-6)
    >>> round(x, 6), round(s, 6)
    (-3.735095, 0.1)
    """
    one = type(gamma)(1) if isinstance(gamma, np.floating) else 1.0
    return _chapter(x, g, s, lr, gamma, eps, one)


def _chapter(x, g, s, lr, gamma, eps, one):
    x, s, _, _ = rmsprop(x, g, s, ZERO, ZERO, ONE, ONE,
                         (ONE, ZERO, LOWEST, HIGHEST, ZERO, gamma, one - gamma, ZERO, eps, ZERO, ZERO, lr, ONE, ZERO,
                          ONE, LOWEST, HIGHEST, HIGHEST))
    return x, s


@overload(rmsprop_update)
def _rmsprop_update(x, g, s, lr, gamma, eps):
    if not isinstance(gamma, nbtypes.Float):
        return None
    one = np.dtype(gamma.name).type(1)

    def impl(x, g, s, lr, gamma, eps):
        return _chapter(x, g, s, lr, gamma, eps, one)

    return impl


_callable_from_jitted_code(_chapter)
