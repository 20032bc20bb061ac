"""Argument checks shared by the public functions.

Each check raises before any array is touched: ``TypeError`` for a wrong kind,
``ValueError`` for a wrong value, with a message that names the argument, what
was given and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def real(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite Python float inside the given interval.

    ``value`` may be any real number (int, float, NumPy scalar, ``fractions.Fraction``);
    bools are refused. An infinite bound is always open, since the value must be finite.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    left = "(" if low_open or math.isinf(low) else "["
    right = ")" if high_open or math.isinf(high) else "]"
    allowed = f"{left}{low:g}, {high:g}{right}"
    try:
        v = float(value)
    except OverflowError:  # an int or Fraction beyond the float range
        v = math.inf
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number in {allowed}, got {value!r}")
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if too_low or too_high:
        raise ValueError(f"{name} must be in {allowed}, got {value!r}")
    return v


def boolean(name: str, value: Any) -> bool:
    """Return ``value`` as a bool; only ``True``/``False`` are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def integer(name: str, value: Any, *, low: int = 0) -> int:
    """Return ``value`` as a Python int ``>= low``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    v = int(value)
    if v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return v


def optional_str(name: str, value: Any) -> str | None:
    """Return ``value`` when it is a str or None (a label, for instance)."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {value!r} of type {type(value).__name__}")
    return value


def float_dtype(name: str, value: Any) -> np.dtype:
    """Return ``value`` as ``np.dtype(float32)`` or ``np.dtype(float64)``."""
    try:
        dt = np.dtype(value)
    except TypeError as err:
        raise TypeError(f"{name} must be float32 or float64, got {value!r}") from err
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def float_array(name: str, value: Any) -> np.ndarray:
    """Check that ``value`` is a C-contiguous float32/float64 ndarray (no copy, no cast)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {value.dtype}; "
            "convert it explicitly (rmsnum never casts silently)"
        )
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass numpy.ascontiguousarray({name})")
    return value


def seed(name: str, value: Any) -> int | None:
    """Return a seed as a non-negative int below 2**63, or None."""
    if value is None:
        return None
    v = integer(name, value)
    if v >= 2**63:
        raise ValueError(f"{name} must be in [0, 2**63), got {value!r}")
    return v


def on_device(value: Any) -> bool:
    """Whether ``value`` is a CUDA device array: anything with
    ``__cuda_array_interface__`` (Numba, CuPy, PyTorch, ...), or an array of
    Numba's CUDA simulator, which lacks that interface. Imports nothing."""
    return hasattr(value, "__cuda_array_interface__") or type(value).__module__.startswith("numba.cuda.simulator")


def representable(name: str, value: Any, dtype: Any) -> None:
    """Raise ``ValueError`` when the real ``value`` of ``name`` does not survive rounding to
    ``dtype``: a non-zero value that rounds to 0, or a finite one that overflows to inf."""
    dt = np.dtype(dtype)
    v = float(value)
    value = value.item() if isinstance(value, np.generic) else value
    with np.errstate(over="ignore", under="ignore"):
        rounded = dt.type(v)
    if v != 0 and rounded == 0:
        raise ValueError(f"{name}={value!r} rounds to 0 in {dt.name} (the smallest positive {dt.name} is "
                         f"{np.finfo(dt).smallest_subnormal:g}); use a larger value or dtype=float64")
    if math.isfinite(v) and not np.isfinite(rounded):
        raise ValueError(f"{name}={value!r} overflows {dt.name} (largest {np.finfo(dt).max:g}); "
                         "use a smaller value or dtype=float64")


def start_point(name: str, value: Any, dim: int, dtype: Any) -> np.ndarray:
    """``value`` as a finite point of ``dim`` coordinates in ``dtype`` (a new array), or a
    ``TypeError``/``ValueError`` naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sequence of {dim} real numbers, got {value!r}") from err
    if arr.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},) to match the objective, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr}")
    with np.errstate(over="ignore"):
        cast = arr.astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(f"{name} overflows {np.dtype(dtype)}: {arr}")
    return cast
