"""Compile plain functions (and the plain functions they call) for a backend."""

from __future__ import annotations

import types
from typing import Any, Callable


def rebind(fn: types.FunctionType, **names: Any) -> types.FunctionType:
    """A copy of ``fn`` whose global ``names`` are replaced (the original is untouched)."""
    namespace = dict(fn.__globals__)
    namespace.update(names)
    copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__
    copy.__doc__ = fn.__doc__
    return copy


def compile_plain(fn: types.FunctionType, jit: Callable) -> Any:
    """``jit(fn)`` after compiling, the same way, every plain function of ``fn``'s
    module that ``fn`` calls by global name.

    Numba cannot call an undecorated Python function, and the rules stay
    undecorated so that every backend compiles the same source; this gives
    each backend its own compiled copy of the call graph.
    """
    helpers = {}
    for name in fn.__code__.co_names:
        obj = fn.__globals__.get(name)
        if isinstance(obj, types.FunctionType) and obj.__module__ == fn.__module__ and obj is not fn:
            helpers[name] = compile_plain(obj, jit)
    return jit(rebind(fn, **helpers) if helpers else fn)
