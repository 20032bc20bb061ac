"""Exact neutral coefficients: ``ZERO`` and ``ONE``, and the unbounded clip limits ``LOWEST`` and ``HIGHEST``.

An option of a rule that is switched off (no weight decay, no momentum, eps
outside instead of inside the square root, no bias correction) is spelled as
a coefficient that changes nothing: ``+ 0`` or ``* 1``. When the coefficient
is one of these singletons rather than the number, the term disappears at
compile time (``ZERO * x`` is ``ZERO``, ``x + ZERO`` is ``x``, ``ONE * x`` is
``x``): Numba specialises each kernel on the types of its arguments (see
:mod:`rmsnum.backends._neutral_types`), so a kernel does only the arithmetic
of the options that are on, exactly as a hand-written variant would.

A clip that is off is spelled the same way: ``min(max(g, lo), hi)`` with
``lo = LOWEST`` and ``hi = HIGHEST`` (worth -inf and +inf) is ``g`` itself, NaN
included, and compiles to nothing.

The singletons also work in plain Python, so a rule can be called directly.

Examples
--------
>>> import math
>>> from rmsnum._neutral import ZERO, ONE, LOWEST, HIGHEST
>>> 2.5 + ZERO * 7.0, ONE * 2.5, 2.5 - ZERO, max(ZERO, 2.5), 2.5 * math.sqrt(ONE)
(2.5, 2.5, 2.5, 2.5, 2.5)
>>> min(max(-7.5, LOWEST), HIGHEST), float(HIGHEST)
(-7.5, inf)
"""

from __future__ import annotations

import math
from typing import Any


_NAMES = {0: "ZERO", 1: "ONE", -math.inf: "LOWEST", math.inf: "HIGHEST"}


class Neutral:
    """``ZERO`` (the neutral element of +), ``ONE`` (of *), ``LOWEST`` (of max) or
    ``HIGHEST`` (of min); use the four singletons."""

    __slots__ = ("value",)
    __array_ufunc__ = None  # NumPy scalars defer to the reflected operators below

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return _NAMES[self.value]

    def __reduce__(self) -> str:
        return repr(self)

    def __float__(self) -> float:
        return float(self.value)

    def __eq__(self, other: Any) -> bool:
        return float(self.value) == other

    def __hash__(self) -> int:
        return hash(float(self.value))

    def __mul__(self, other: Any) -> Any:
        if self.value not in (0, 1):
            return NotImplemented
        return self if self.value == 0 else other

    __rmul__ = __mul__

    def __add__(self, other: Any) -> Any:
        if self.value != 0:  # ONE + ZERO is ONE (between two Neutrals Python tries no reflected operator)
            return self if isinstance(other, Neutral) and other.value == 0 else NotImplemented
        return other

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        # ZERO - ZERO is ZERO (Python tries no reflected operator between two Neutrals)
        if self.value == 0 and isinstance(other, Neutral) and other.value == 0:
            return self
        return NotImplemented

    def __rsub__(self, other: Any) -> Any:
        if self.value != 0:
            return NotImplemented
        return other

    def __lt__(self, other: Any) -> bool:
        # max(ZERO, s) is s for s > 0 (and ZERO, worth 0, for s == 0): ZERO stands
        # for a running maximum that is not kept (see rmsnum.rules.adam). min(g, HIGHEST)
        # asks HIGHEST < g, never true (nor for a NaN g): g.
        return self.value < other

    def __gt__(self, other: Any) -> bool:
        # max(g, LOWEST) asks LOWEST > g, never true: g.
        return self.value > other


ZERO = Neutral(0)
ONE = Neutral(1)
LOWEST = Neutral(-math.inf)
HIGHEST = Neutral(math.inf)
