"""Exact neutral coefficients: ``ZERO`` and ``ONE``.

An option of a rule that is switched off (no weight decay, no momentum, eps
outside instead of inside the square root, no bias correction) is spelled as
a coefficient that changes nothing: ``+ 0`` or ``* 1``. When the coefficient
is one of these singletons rather than the number, the term disappears at
compile time (``ZERO * x`` is ``ZERO``, ``x + ZERO`` is ``x``, ``ONE * x`` is
``x``): Numba specialises each kernel on the types of its arguments (see
:mod:`rmsnum.backends._neutral_types`), so a kernel does only the arithmetic
of the options that are on, exactly as a hand-written variant would.

The singletons also work in plain Python, so a rule can be called directly.

Examples
--------
>>> import math
>>> from rmsnum._neutral import ZERO, ONE
>>> 2.5 + ZERO * 7.0, ONE * 2.5, 2.5 - ZERO, max(ZERO, 2.5), 2.5 * math.sqrt(ONE)
(2.5, 2.5, 2.5, 2.5, 2.5)
"""

from __future__ import annotations

from typing import Any


class Neutral:
    """``ZERO`` (the neutral element of +) or ``ONE`` (of *); use the two singletons."""

    __slots__ = ("value",)
    __array_ufunc__ = None  # NumPy scalars defer to the reflected operators below

    def __init__(self, value: int) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "ZERO" if self.value == 0 else "ONE"

    def __reduce__(self) -> str:
        return repr(self)

    def __float__(self) -> float:
        return float(self.value)

    def __eq__(self, other: Any) -> bool:
        return float(self.value) == other

    def __hash__(self) -> int:
        return hash(float(self.value))

    def __mul__(self, other: Any) -> Any:
        return self if self.value == 0 else other

    __rmul__ = __mul__

    def __add__(self, other: Any) -> Any:
        if self.value != 0:
            return NotImplemented
        return other

    __radd__ = __add__

    def __rsub__(self, other: Any) -> Any:
        if self.value != 0:
            return NotImplemented
        return other

    def __lt__(self, other: Any) -> bool:
        # max(ZERO, s) is s for s > 0 (and ZERO, worth 0, for s == 0): ZERO stands
        # for a running maximum that is not kept (see rmsnum.rules.adam).
        return self.value < other


ZERO = Neutral(0)
ONE = Neutral(1)
