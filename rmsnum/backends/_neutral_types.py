"""Numba typing of :data:`rmsnum._neutral.ZERO` and :data:`~rmsnum._neutral.ONE`.

Each singleton has its own Numba type, so a kernel compiled with a neutral
coefficient has the term folded away at compile time (no instruction is
emitted for ``x + ZERO * y``). The operators obey the algebra of
:class:`rmsnum._neutral.Neutral`; any other use is a typing error.
"""

from __future__ import annotations

import math
import operator

from numba.core import types
from numba.core.imputils import lower_constant
from numba.extending import NativeValue, box, models, overload, register_model, typeof_impl, unbox

from .._neutral import Neutral


class NeutralType(types.Type):
    """The type of ``ZERO`` (value 0), ``ONE`` (value 1), ``LOWEST`` (-inf) or ``HIGHEST`` (+inf)."""

    def __init__(self, value: float) -> None:
        self.value = value
        super().__init__(name=f"Neutral[{value}]")


ZERO_TYPE = NeutralType(0)
ONE_TYPE = NeutralType(1)
LOWEST_TYPE = NeutralType(-math.inf)
HIGHEST_TYPE = NeutralType(math.inf)
_TYPES = {ty.value: ty for ty in (ZERO_TYPE, ONE_TYPE, LOWEST_TYPE, HIGHEST_TYPE)}


@typeof_impl.register(Neutral)
def _typeof_neutral(val, c):
    return _TYPES[val.value]


register_model(NeutralType)(models.OpaqueModel)


@unbox(NeutralType)
def _unbox_neutral(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


@box(NeutralType)
def _box_neutral(typ, val, c):
    from .. import _neutral

    singleton = {0: _neutral.ZERO, 1: _neutral.ONE, -math.inf: _neutral.LOWEST, math.inf: _neutral.HIGHEST}[typ.value]
    return c.pyapi.unserialize(c.pyapi.serialize_object(singleton))


@lower_constant(NeutralType)
def _constant_neutral(context, builder, ty, pyval):
    return context.get_dummy_value()


_OPERAND = (types.Number, NeutralType)


def _is(ty, value):
    return isinstance(ty, NeutralType) and ty.value == value


@overload(operator.mul, inline="always")
def _mul(a, b):
    if not (isinstance(a, _OPERAND) and isinstance(b, _OPERAND)):
        return None
    if _is(a, 0) or _is(b, 1):
        return lambda a, b: a
    if _is(b, 0) or _is(a, 1):
        return lambda a, b: b
    return None


@overload(operator.add, inline="always")
def _add(a, b):
    if not (isinstance(a, _OPERAND) and isinstance(b, _OPERAND)):
        return None
    if _is(b, 0):
        return lambda a, b: a
    if _is(a, 0):
        return lambda a, b: b
    return None


@overload(operator.sub, inline="always")
def _sub(a, b):
    if isinstance(a, _OPERAND) and _is(b, 0):
        return lambda a, b: a
    return None


@overload(max, inline="always")
def _max(a, b):
    # ZERO in place of a running maximum that is not kept: max(ZERO, b) is b,
    # for the non-negative b the rules compare it with (see rmsnum.rules.adam).
    # max(ZERO, ZERO) is ZERO: a momentum's first-step term without dampening (rmsnum.rules.momentum).
    if _is(a, 0) and (isinstance(b, types.Number) or _is(b, 0)):
        return lambda a, b: b
    # a clip without a lower limit: max(a, LOWEST) is a
    if isinstance(a, types.Number) and _is(b, -math.inf):
        return lambda a, b: a
    return None


@overload(min, inline="always")
def _min(a, b):
    # a clip without an upper limit: min(a, HIGHEST) is a
    if isinstance(a, types.Number) and _is(b, math.inf):
        return lambda a, b: a
    return None


@overload(math.sqrt, inline="always")
def _sqrt(a):
    # sqrt(ONE) is ONE and sqrt(ZERO) is ZERO, exactly (a bias correction that is off).
    if isinstance(a, NeutralType):
        return lambda a: a
    return None
